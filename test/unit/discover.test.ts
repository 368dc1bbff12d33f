import { execFileSync } from 'node:child_process';
import { promises as fs, renameSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { walkVideoFiles } from '../../src/filesystem/walk';
import { VIDEO_EXTENSIONS } from '../../src/model/types';

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

/** Whether the walks of the tests below list and stat on the walk thread (true) or through the thread pool. */
let onThread = true;

async function walkAll(
  recursive: boolean,
  at = root,
  options: { from?: string; signal?: AbortSignal; onFile?: () => void; onEntry?: (relative: string) => void } = {},
): Promise<{ name: string; error?: string; size?: number }[]> {
  const found: { name: string; error?: string; size?: number }[] = [];
  const walk = walkVideoFiles({
    root: at,
    from: options.from,
    recursive,
    extensions: new Set(VIDEO_EXTENSIONS),
    signal: options.signal,
    thread: onThread,
    // Asked of every entry right after its folder's listing, before any stat: a hook into the walk's steps.
    isExcluded: (relative) => {
      options.onEntry?.(relative);
      return false;
    },
  });
  for await (const file of walk) {
    found.push({ name: path.relative(at, file.path), ...(file.error ? { error: file.error } : { size: file.size }) });
    options.onFile?.();
  }
  return found;
}

/** Makes `count` folders of `perFolder` empty files named `name(i)` under `at`. */
async function makeTree(at: string, count: number, perFolder: number, name: (i: number) => string): Promise<void> {
  for (let d = 0; d < count; d += 1) {
    const folder = path.join(at, `f${String(d).padStart(3, '0')}`);
    await fs.mkdir(folder, { recursive: true });
    await Promise.all(Array.from({ length: perFolder }, (_, i) => fs.writeFile(path.join(folder, name(i)), '')));
  }
}

async function walk(recursive: boolean): Promise<string[]> {
  return (await walkAll(recursive)).filter((f) => f.error === undefined).map((f) => f.name);
}

describe.each([
  ['on its thread', true],
  ['through the thread pool', false],
])('the discovery walk %s', (_mode, thread) => {
  beforeAll(() => {
    onThread = thread;
  });

  it('yields regular video files in a fixed sorted order, folders depth-first', async () => {
    expect(await walk(true)).toEqual(['A.MKV', 'z.mp4', 'a/1.avi', 'a/2.webm', 'b/y.ts', 'b/deep/x.mov']);
  });

  it('names each file as path.join names it, from a root given with a trailing slash or a dot in its path', async () => {
    const expected = (await walk(true)).map((name) => path.join(root, name));
    for (const given of [`${root}/`, `${path.dirname(root)}/./root`]) {
      const paths: string[] = [];
      for await (const file of walkVideoFiles({ root: given, recursive: true, extensions: new Set(VIDEO_EXTENSIONS), thread: onThread })) {
        if (file.error === undefined) paths.push(file.path);
      }
      expect(paths).toEqual(expected);
    }
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

  it('walks a folder given as its start only inside the root: a link out of it is reported, never walked', async () => {
    expect(await walkAll(true, root, { from: path.join(root, 'out-link') })).toEqual([{ name: 'out-link', error: 'outside_scan_root' }]);
    expect(await walkAll(true, root, { from: path.join(root, 'a') })).toEqual([{ name: 'a/1.avi', size: 1 }, { name: 'a/2.webm', size: 1 }]);
  });

  describe('against a tree that changes while it is walked', () => {
    let tree: string;
    let away: string;
    beforeEach(async () => {
      tree = await fs.mkdtemp(path.join(path.dirname(root), 'changing-'));
      away = await fs.mkdtemp(path.join(path.dirname(root), 'away-'));
      await fs.mkdir(path.join(tree, 'a'));
      await fs.mkdir(path.join(tree, 'b'));
      await fs.mkdir(path.join(tree, 'c'));
      await fs.writeFile(path.join(tree, 'a', '1.mp4'), 'a');
      await fs.writeFile(path.join(tree, 'b', '2.mp4'), 'b');
      await fs.writeFile(path.join(tree, 'c', '3.mp4'), 'c');
      await fs.writeFile(path.join(away, 'secret.mp4'), 'a secret held outside');
    });

    /** A hook that runs `change` once, right after the folder `name` (below the tree) has been listed, before anything in it is stat-ed. */
    function afterListing(name: string, change: () => void): (relative: string) => void {
      let done = false;
      return (relative) => {
        if (!done && path.dirname(relative) === name) {
          done = true;
          change();
        }
      };
    }

    it('does not list a folder swapped for a link out of the root after it was found', async () => {
      // Right after the root's listing, in which b was found as a folder.
      const onEntry = afterListing('.', () => {
        renameSync(path.join(tree, 'b'), path.join(away, 'b-moved'));
        symlinkSync(away, path.join(tree, 'b'));
      });
      const found = await walkAll(true, tree, { onEntry });
      expect(found.map((f) => f.name)).toEqual(['a/1.mp4', 'c/3.mp4']);
    });

    it('does not stat through a file swapped for a link out of the root after its folder was listed', async () => {
      const onEntry = afterListing('c', () => {
        rmSync(path.join(tree, 'c', '3.mp4'));
        symlinkSync(path.join(away, 'secret.mp4'), path.join(tree, 'c', '3.mp4'));
      });
      const found = await walkAll(true, tree, { onEntry });
      expect(found).toEqual([
        { name: 'a/1.mp4', size: 1 },
        { name: 'b/2.mp4', size: 1 },
        // On the walk thread the file was stat-ed with its folder's listing, before the swap:
        // what was there then, never the secret's size. Through the pool it is stat-ed after.
        thread ? { name: 'c/3.mp4', size: 1 } : { name: 'c/3.mp4', error: 'outside_scan_root' },
      ]);
    });
  });

  describe('with a cancellation signal', () => {
    let tree: string;
    beforeAll(async () => {
      tree = path.join(path.dirname(root), 'cancel');
      await makeTree(path.join(tree, 'quiet'), 60, 50, (i) => `note-${i}.txt`);
      await makeTree(path.join(tree, 'loud'), 1, 1000, (i) => `v${String(i).padStart(4, '0')}.mp4`);
    });

    it('stops before the next folder once the signal aborts, in a tree with no videos', async () => {
      const controller = new AbortController();
      // The folders listed: the root's own entries are its sub-folders, each other's their files.
      const listed = new Set<string>();
      const onEntry = (relative: string): void => {
        listed.add(path.dirname(relative));
        if (listed.size === 5) controller.abort(new Error('cancelled by the test'));
      };
      await expect(walkAll(true, path.join(tree, 'quiet'), { signal: controller.signal, onEntry })).rejects.toThrow('cancelled by the test');
      // 61 folders in all: the walk stopped right after the listing during which the signal aborted.
      expect(listed.size).toBe(5);
    });

    it('stops between rounds of stats once the signal aborts, in a folder of many videos', async () => {
      const controller = new AbortController();
      let yielded = 0;
      await expect(
        walkAll(true, path.join(tree, 'loud'), {
          signal: controller.signal,
          onFile: () => {
            yielded += 1;
            controller.abort(new Error('cancelled by the test'));
          },
        }),
      ).rejects.toThrow('cancelled by the test');
      // One round of stats (64 files) at most, of the folder's 1,000.
      expect(yielded).toBeLessThanOrEqual(64);
    });
  });

  it('walks 10,000 files in one folder and 50 nested folders', async () => {
    const big = path.join(path.dirname(root), `big-${String(thread)}`);
    await fs.mkdir(big);
    await Promise.all(Array.from({ length: 10_000 }, (_, i) => fs.writeFile(path.join(big, `v${String(i).padStart(5, '0')}.mp4`), '')));
    let deep = path.join(path.dirname(root), `deep-${String(thread)}`);
    const deepRoot = deep;
    for (let i = 0; i < 50; i += 1) deep = path.join(deep, `level-${i}`);
    await fs.mkdir(deep, { recursive: true });
    await fs.writeFile(path.join(deep, 'bottom.mkv'), '');
    const all = await walkAll(true, big);
    expect(all).toHaveLength(10_000);
    expect(all[0]?.name).toBe('v00000.mp4');
    expect(all[9999]?.name).toBe('v09999.mp4');
    const nested = await walkAll(true, deepRoot);
    expect(nested).toEqual([{ name: `${Array.from({ length: 50 }, (_, i) => `level-${i}`).join('/')}/bottom.mkv`, size: 0 }]);
  });
});

it('walks a tree of many folders, listed ahead on two walk threads, as the thread pool walks it', async () => {
  const many = path.join(path.dirname(root), 'many');
  for (let group = 0; group < 3; group += 1) {
    await makeTree(path.join(many, `g${group}`), 20, 5, (i) => `v${i}.mkv`);
  }
  const walkIt = async (thread: boolean): Promise<string[]> => {
    const paths: string[] = [];
    for await (const file of walkVideoFiles({ root: many, recursive: true, extensions: new Set(VIDEO_EXTENSIONS), thread })) paths.push(file.path);
    return paths;
  };
  const onThreads = await walkIt(true);
  expect(onThreads).toHaveLength(300);
  expect(onThreads[0]).toBe(path.join(many, 'g0', 'f000', 'v0.mkv'));
  expect(onThreads).toEqual(await walkIt(false));
});
