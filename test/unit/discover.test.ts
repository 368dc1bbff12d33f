import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { walkVideoFiles } from '../../src/activities/discover';
import { VIDEO_EXTENSIONS } from '../../src/scan/types';

let root: string;
let outside: string;

beforeAll(async () => {
  const base = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'walk-')));
  root = path.join(base, 'root');
  outside = path.join(base, 'outside');
  await fs.mkdir(path.join(root, 'b', 'deep'), { recursive: true });
  await fs.mkdir(path.join(root, 'a'), { recursive: true });
  await fs.mkdir(path.join(root, 'fake.mkv'));
  await fs.mkdir(outside);
  for (const file of ['z.mp4', 'A.MKV', 'notes.txt', 'a/2.webm', 'a/1.avi', 'b/deep/x.mov', 'b/y.ts']) {
    await fs.writeFile(path.join(root, file), 'x');
  }
  await fs.writeFile(path.join(outside, 'secret.mp4'), 'x');
  await fs.symlink(outside, path.join(root, 'out-link'));
  await fs.symlink(path.join(outside, 'secret.mp4'), path.join(root, 'secret-link.mp4'));
  await fs.symlink(root, path.join(root, 'b', 'loop'));
  await fs.symlink(path.join(root, 'missing.mp4'), path.join(root, 'dangling.mp4'));
  execFileSync('mkfifo', [path.join(root, 'pipe.mp4')]);
  await fs.writeFile(Buffer.concat([Buffer.from(root + '/bad-'), Buffer.from([0xff, 0xfe]), Buffer.from('.mp4')]), 'x');
});

afterAll(async () => {
  await fs.rm(path.dirname(root), { recursive: true, force: true });
});

async function walkAll(recursive: boolean, at = root): Promise<{ name: string; error?: string }[]> {
  const found: { name: string; error?: string }[] = [];
  for await (const file of walkVideoFiles({ root: at, recursive, extensions: new Set(VIDEO_EXTENSIONS) })) {
    found.push({ name: path.relative(at, file.path), ...(file.error ? { error: file.error } : {}) });
  }
  return found;
}

async function walk(recursive: boolean): Promise<string[]> {
  return (await walkAll(recursive)).filter((f) => f.error === undefined).map((f) => f.name);
}

describe('the discovery walk', () => {
  it('yields regular video files in a fixed sorted order, folders depth-first', async () => {
    expect(await walk(true)).toEqual(['A.MKV', 'z.mp4', 'a/1.avi', 'a/2.webm', 'b/y.ts', 'b/deep/x.mov']);
  });

  it('stays in the top folder when not recursive', async () => {
    expect(await walk(false)).toEqual(['A.MKV', 'z.mp4']);
  });

  it('never follows links out of the root, into a loop, or to nothing, and never offers FIFOs or folders named like videos', async () => {
    const found = await walk(true);
    for (const name of ['secret-link.mp4', 'out-link/secret.mp4', 'dangling.mp4', 'pipe.mp4', 'fake.mkv']) expect(found).not.toContain(name);
    expect(found.some((f) => f.includes('loop'))).toBe(false);
  });

  it('reports what it will not probe, with the reason, instead of losing it', async () => {
    const problems = (await walkAll(true)).filter((f) => f.error !== undefined);
    expect(problems).toEqual(
      expect.arrayContaining([
        { name: 'dangling.mp4', error: 'broken_link' },
        { name: 'secret-link.mp4', error: 'outside_scan_root' },
        { name: 'pipe.mp4', error: 'not_a_regular_file' },
        { name: 'bad-\ufffd\ufffd.mp4', error: 'invalid_file_name' },
      ]),
    );
    expect(problems).toHaveLength(4);
  });

  it('walks 10,000 files in one folder and 50 nested folders', async () => {
    const big = path.join(path.dirname(root), 'big');
    await fs.mkdir(big);
    await Promise.all(Array.from({ length: 10_000 }, (_, i) => fs.writeFile(path.join(big, `v${String(i).padStart(5, '0')}.mp4`), '')));
    let deep = path.join(path.dirname(root), 'deep');
    const deepRoot = deep;
    for (let i = 0; i < 50; i += 1) deep = path.join(deep, `level-${i}`);
    await fs.mkdir(deep, { recursive: true });
    await fs.writeFile(path.join(deep, 'bottom.mkv'), '');
    const all = await walkAll(true, big);
    expect(all).toHaveLength(10_000);
    expect(all[0]?.name).toBe('v00000.mp4');
    expect(all[9999]?.name).toBe('v09999.mp4');
    const nested = await walkAll(true, deepRoot);
    expect(nested).toEqual([{ name: `${Array.from({ length: 50 }, (_, i) => `level-${i}`).join('/')}/bottom.mkv` }]);
  });
});
