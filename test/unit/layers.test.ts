/**
 * The lint rules that keep the shape of src/ (LAYERS in eslint.config.js):
 * an import that runs back up the layers fails, as does one between two
 * units of a layer that keep apart, and an import cycle; imports that run
 * down pass. Each case lints a file's text as if it stood at that path.
 */
import path from 'node:path';
import { ESLint } from 'eslint';

jest.setTimeout(60_000);

const root = path.join(__dirname, '..', '..');
// The project's config, handed over as it is (ESLint would load the file with a dynamic import, which Jest's VM refuses).
const config = require(path.join(root, 'eslint.config.js')) as ESLint.Options['overrideConfig'];
const eslint = new ESLint({ cwd: root, overrideConfigFile: true, overrideConfig: config });

/** The layer and cycle problems of `code`, were it the file `file`. */
async function shapeProblems(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(root, file) });
  return (result?.messages ?? []).map((message) => message.ruleId ?? 'parse error').filter((rule) => rule === 'no-restricted-imports' || rule === 'import-x/no-cycle' || rule === 'parse error');
}

test.each([
  ['probing reaches up into the activities', 'src/probe/new-file.ts', "export { createActivities } from '../activities';"],
  ['probing imports pictures, its peer', 'src/probe/new-file.ts', "export { makeFrameThumbnail } from '../thumbnails/libav-frame';"],
  ['pictures import probing, their peer', 'src/thumbnails/new-file.ts', "export { loadLibav } from '../probe/libav';"],
  ['pictures reach up into the media hosts', 'src/thumbnails/new-file.ts', "export type { IsolatedProber } from '../media-host/pool';"],
  ['an activity imports a workflow', 'src/activities/new-file.ts', "export { scanLibrary } from '../workflows/scan-library';"],
  ['the library reaches up into the file-system rules', 'src/library/new-file.ts', "export { createMediaFs } from '../filesystem/media-fs';"],
  ['Temporal plumbing imports the API', 'src/temporal/new-file.ts', "export { createApp } from '../api/app';"],
  ['the scan application imports the API', 'src/scans/new-file.ts', "export { createApp } from '../api/app';"],
  ['the configuration imports the library', 'src/config.ts', "export { Library } from './library/library';"],
  ['a file of a layer imports a nested path of a higher one', 'src/library/migrations/new-file.ts', "export { createApp } from '../../api/app';"],
])('fails when %s', async (_case, file, code) => {
  expect(await shapeProblems(file, code)).toContain('no-restricted-imports');
});

it('fails on an import cycle', async () => {
  // probe/parse.ts imports model/types.ts: model/types.ts importing it back closes a cycle.
  expect(await shapeProblems('src/model/types.ts', "export { parseFfprobeOutput } from '../probe/parse';")).toContain('import-x/no-cycle');
});

test.each([
  ['the media hosts import probing and pictures', 'src/media-host/new-file.ts', "export { loadLibav } from '../probe/libav';\nexport { makeFrameThumbnail } from '../thumbnails/libav-frame';"],
  ['probing imports the fences of media readers', 'src/probe/new-file.ts', "export { ALLOWED_DEMUXERS } from '../media/demuxers';"],
  ['the API imports the library', 'src/api/new-file.ts', "export { Library } from '../library/library';"],
  ['a plain module imports another', 'src/config.ts', "export { ErrorType } from './model/types';"],
])('passes when %s', async (_case, file, code) => {
  expect(await shapeProblems(file, code)).toEqual([]);
});
