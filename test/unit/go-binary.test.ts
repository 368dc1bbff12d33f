/**
 * The cache of the Go programs (src/temporal/go-binary.ts): one build at a
 * time under the lock, and a binary found in the per-user cache that every
 * clone shares.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { scannerCacheDir } from '../../src/config';
import { findCachedGoBinary, goBinaryCandidates, obtainGoBinary, withLock, type GoBinarySpec } from '../../src/temporal/go-binary';

let work: string;

beforeEach(async () => {
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'go-binary-'));
});

afterEach(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

describe('withLock', () => {
  it('lets one holder in at a time, and the next in once it is released', async () => {
    const lockFile = path.join(work, '.build.lock');
    let inside = 0;
    let most = 0;
    const order: string[] = [];
    await Promise.all(
      Array.from({ length: 8 }, (_, index) =>
        withLock(
          lockFile,
          async () => {
            inside++;
            most = Math.max(most, inside);
            order.push(`in ${index}`);
            // Hand the event loop to the other callers while holding the lock.
            for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve));
            order.push(`out ${index}`);
            inside--;
          },
          60_000,
          20,
        ),
      ),
    );
    expect(most).toBe(1);
    expect(order).toHaveLength(16);
    // Released: the next caller gets it at once.
    await expect(withLock(lockFile, async () => 'again', 1_000, 20)).resolves.toBe('again');
  });

  it('keeps out a second caller while the holder is slow to write its lock', async () => {
    // A loaded machine: every file handle's first write lags. A lock that is
    // created empty and filled in later looks dead to a caller that reads it
    // in between; the lock must not depend on that.
    const open = fs.open.bind(fs);
    const spy = jest.spyOn(fs, 'open').mockImplementation(async (...args: Parameters<typeof fs.open>) => {
      const handle = await open(...args);
      const write = handle.writeFile.bind(handle);
      handle.writeFile = async (...writeArgs: Parameters<typeof handle.writeFile>) => {
        await new Promise((resolve) => setTimeout(resolve, 300));
        return write(...writeArgs);
      };
      return handle;
    });
    try {
      const lockFile = path.join(work, '.build.lock');
      let inside = 0;
      let most = 0;
      const holder = async (): Promise<void> => {
        inside++;
        most = Math.max(most, inside);
        await new Promise((resolve) => setTimeout(resolve, 50));
        inside--;
      };
      await Promise.all([withLock(lockFile, holder, 60_000, 20), withLock(lockFile, holder, 60_000, 20)]);
      expect(most).toBe(1);
    } finally {
      spy.mockRestore();
    }
  });

  it('gives up with a clear error when the lock stays held', async () => {
    const lockFile = path.join(work, '.build.lock');
    await withLock(lockFile, async () => {
      await expect(withLock(lockFile, async () => 'never', 100, 20)).rejects.toThrow(/timed out waiting for .*\.build\.lock/);
    });
  });
});

describe('the binary cache', () => {
  const spec: GoBinarySpec = {
    title: 'a test program',
    module: 'example.invalid/none/cmd/tool@v0.0.0',
    cacheDir: 'tool/v0.0.0',
    binary: 'tool',
    checkArgs: ['--version'],
  };

  async function writeTool(file: string): Promise<void> {
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, '#!/bin/sh\necho "tool v0.0.0"\n', { mode: 0o755 });
  }

  it('defaults to the per-user cache folder, which SCANNER_CACHE_DIR overrides', () => {
    expect(scannerCacheDir({ HOME: '/home/x', XDG_CACHE_HOME: '/xdg' })).toBe('/xdg/video-library-scanner');
    expect(scannerCacheDir({ SCANNER_CACHE_DIR: '/elsewhere/cache', XDG_CACHE_HOME: '/xdg' })).toBe('/elsewhere/cache');
    expect(scannerCacheDir({})).toBe(path.join(os.homedir(), '.cache', 'video-library-scanner'));
  });

  it("uses a binary from the per-user cache when the project's .cache has none, without building", async () => {
    const project = path.join(work, 'clone');
    const userCache = path.join(work, 'user-cache');
    await fs.mkdir(project);
    const [inProject, inUserCache] = goBinaryCandidates(spec, project, userCache) as [string, string];
    expect(inProject).toBe(path.join(project, '.cache', 'tool', 'v0.0.0', 'tool'));
    expect(inUserCache).toBe(path.join(userCache, 'tool', 'v0.0.0', 'tool'));
    expect(await findCachedGoBinary(spec, project, userCache)).toBeNull();
    await writeTool(inUserCache);
    // The module does not exist: a build would fail, so success means the cache was used.
    await expect(obtainGoBinary(spec, { projectRoot: project, cacheRoot: userCache })).resolves.toBe(inUserCache);
    // The project's own .cache (the image's layout) is looked at first.
    await writeTool(inProject);
    await expect(obtainGoBinary(spec, { projectRoot: project, cacheRoot: userCache })).resolves.toBe(inProject);
  });
});
