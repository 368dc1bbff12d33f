import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveScanRoot } from '../../src/api/paths';
import { DomainError } from '../../src/errors';

let base: string;

beforeAll(async () => {
  base = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'paths-')));
  await fs.mkdir(path.join(base, 'media', 'movies'), { recursive: true });
  await fs.mkdir(path.join(base, 'media-evil'));
  await fs.writeFile(path.join(base, 'media', 'file.mp4'), 'x');
  await fs.symlink(path.join(base, 'media-evil'), path.join(base, 'media', 'escape'));
  await fs.symlink(path.join(base, 'media', 'movies'), path.join(base, 'inside-link'));
});

afterAll(async () => {
  await fs.rm(base, { recursive: true, force: true });
});

async function codeOf(requested: string, roots?: string[]): Promise<string> {
  try {
    await resolveScanRoot(requested, roots);
    return 'ok';
  } catch (error) {
    return error instanceof DomainError ? `${error.status} ${error.code}` : String(error);
  }
}

describe('scan root validation', () => {
  it('accepts a directory inside an allowed root and returns its real path', async () => {
    await expect(resolveScanRoot(path.join(base, 'inside-link'), [path.join(base, 'media')])).resolves.toBe(path.join(base, 'media', 'movies'));
  });

  test.each([
    ['a missing directory inside the roots', () => path.join(base, 'media', 'nope'), '400 INVALID_PATH'],
    // Containment first: outside the roots the answer says nothing of existence.
    ['a missing directory outside the roots', () => path.join(base, 'nope'), '403 PATH_NOT_ALLOWED'],
    ['a file', () => path.join(base, 'media', 'file.mp4'), '400 INVALID_PATH'],
    ['a relative path', () => 'media', '400 INVALID_PATH'],
    ['a NUL byte', () => `${base}/media\0/x`, '400 INVALID_PATH'],
    ['a .. segment', () => `${base}/media/movies/../movies`, '400 INVALID_PATH'],
    ['a sibling sharing the prefix', () => path.join(base, 'media-evil'), '403 PATH_NOT_ALLOWED'],
    ['a symlink leading outside', () => path.join(base, 'media', 'escape'), '403 PATH_NOT_ALLOWED'],
    ['the parent of the root', () => base, '403 PATH_NOT_ALLOWED'],
  ])('rejects %s', async (_name, requested, expected) => {
    expect(await codeOf(requested(), [path.join(base, 'media')])).toBe(expected);
  });

  it('allows any directory when no roots are configured', async () => {
    expect(await codeOf(path.join(base, 'media-evil'))).toBe('ok');
  });
});
