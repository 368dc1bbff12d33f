/**
 * `node dist/bench/walk.js [--files N] [--rounds R] [--before MODULE]`: the
 * discovery walk alone on a local disk, its ways side by side in one run,
 * alternated round by round (the median of each is printed, in ms and files/s):
 *
 *   thread  walkVideoFiles as discovery runs it (listings and stats on the walk threads)
 *   pool    walkVideoFiles with every call through the thread pool (thread: false)
 *   sync    readdirSync and lstatSync on the event loop, no walk logic: the floor
 *   before  (with --before) the walkVideoFiles exported by MODULE, e.g. an
 *           older version's walk, loaded from its own checkout
 *
 * The tree: N empty files named like videos, 50 to a folder, in groups of 50
 * folders (the benchmark's layout), under the system's temporary folder.
 */
import { lstatSync, promises as fs, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { walkVideoFiles, type WalkOptions, type WalkedFile } from '../src/filesystem/walk';
import { VIDEO_EXTENSIONS } from '../src/model/types';
import { median } from './limits';

const FILES_PER_FOLDER = 50;

type Walk = (options: WalkOptions) => AsyncGenerator<WalkedFile>;

async function buildTree(root: string, files: number): Promise<void> {
  const marker = path.join(root, '.complete');
  if (await fs.stat(marker).then(() => true, () => false)) return;
  await fs.rm(root, { recursive: true, force: true });
  for (let index = 0; index < files; index += FILES_PER_FOLDER) {
    const folder = Math.floor(index / FILES_PER_FOLDER);
    const dir = path.join(root, `group-${String(Math.floor(folder / FILES_PER_FOLDER)).padStart(3, '0')}`, `folder-${String(folder % FILES_PER_FOLDER).padStart(3, '0')}`);
    await fs.mkdir(dir, { recursive: true });
    const count = Math.min(FILES_PER_FOLDER, files - index);
    await Promise.all(Array.from({ length: count }, (_, i) => fs.writeFile(path.join(dir, `video-${String(index + i).padStart(6, '0')}.mp4`), '')));
  }
  await fs.writeFile(marker, '');
}

async function timeWalk(walk: Walk, root: string, thread?: boolean): Promise<number> {
  const started = performance.now();
  let found = 0;
  for await (const file of walk({ root, recursive: true, extensions: new Set(VIDEO_EXTENSIONS), ...(thread === undefined ? {} : { thread }) })) {
    if (file.error === undefined) found += 1;
  }
  const ms = performance.now() - started;
  if (found === 0) throw new Error('the walk found nothing');
  return ms;
}

function timeSync(root: string): number {
  const started = performance.now();
  const stack = [root];
  while (stack.length > 0) {
    const dir = stack.pop() as string;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) stack.push(full);
      else if (entry.name.endsWith('.mp4')) lstatSync(full);
    }
  }
  return performance.now() - started;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      files: { type: 'string', default: '5000' },
      rounds: { type: 'string', default: '15' },
      before: { type: 'string' },
      dir: { type: 'string', default: path.join(os.tmpdir(), 'scanner-walk-bench') },
    },
  });
  const files = Number(values.files);
  const rounds = Number(values.rounds);
  const root = path.join(path.resolve(values.dir), `tree-${files}`);
  await buildTree(root, files);
  const before = values.before === undefined ? null : ((await import(path.resolve(values.before))) as { walkVideoFiles: Walk }).walkVideoFiles;
  const ways: Record<string, () => Promise<number>> = {
    thread: () => timeWalk(walkVideoFiles, root, true),
    pool: () => timeWalk(walkVideoFiles, root, false),
    sync: () => Promise.resolve(timeSync(root)),
    ...(before === null ? {} : { before: () => timeWalk(before, root) }),
  };
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(ways).map((way) => [way, []]));
  // One warm-up round (the page cache, the walk thread's start), then the rounds, alternated.
  for (const run of Object.values(ways)) await run();
  for (let round = 0; round < rounds; round += 1) {
    for (const [way, run] of Object.entries(ways)) (times[way] as number[]).push(await run());
  }
  process.stdout.write(`${files} files in ${Math.ceil(files / FILES_PER_FOLDER)} folders, ${rounds} rounds, median:\n`);
  for (const [way, list] of Object.entries(times)) {
    const ms = median(list);
    process.stdout.write(`  ${way.padEnd(7)} ${ms.toFixed(1).padStart(7)} ms  ${Math.round(files / (ms / 1000)).toString().padStart(8)} files/s  (min ${Math.min(...list).toFixed(1)}, max ${Math.max(...list).toFixed(1)})\n`);
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
