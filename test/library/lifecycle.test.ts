/**
 * The library's part in keeping it current, on both dialects: vanished
 * videos found by index, move candidates, a record moved with its id, probe
 * indexes renumbered after moves, videos marked missing (never deleted).
 */
import { Library } from '../../src/library/library';
import type { NewScanFile } from '../../src/library/types';
import { bothDialects, sampleMetadata } from '../support/library-dialects';
import { recordProbe, videoByPath } from '../support/library-rows';

const dialects = bothDialects('scanner_lifecycle');
const metadata = sampleMetadata;

describe.each(dialects)('on %s', (_name, url) => {
  let library: Library;

  beforeAll(async () => {
    library = await Library.open(url());
  });

  afterAll(async () => {
    await library.close();
  });

  it('finds vanished videos under the root only, moves one with its id, renumbers what is left to probe and marks the rest missing', async () => {
    // A first scan records four videos under /m and one beside it in /m2.
    const known = ['/m/a.mp4', '/m/b.mp4', '/m/sub/c.mp4', '/m/sub/d.mp4', '/m2/e.mp4'];
    await library.createScan({ scanId: 'first', root: '/m', recursive: true, force: false, retryOf: null });
    await library.addScanFiles('first', known.map((p, i): NewScanFile => ({ position: i, probeIndex: i, path: p, size: 100 + i, mtimeMs: 1000, status: 'pending' })));
    for (const [i, p] of known.entries()) {
      await recordProbe(library, 'first', i, { kind: 'probed', file: { path: p, size: 100 + i, mtimeMs: 1000, fingerprint: `fp-${i}` }, metadata });
    }
    const before = await videoByPath(url(), '/m/sub/c.mp4');

    // The rescan finds a.mp4, two new files (one of c's size) and misses b, c and d.
    await library.createScan({ scanId: 'second', root: '/m', recursive: true, force: false, retryOf: null });
    await library.addScanFiles('second', [
      { position: 0, probeIndex: null, path: '/m/a.mp4', size: 100, mtimeMs: 1000, status: 'skipped' },
      { position: 1, probeIndex: 0, path: '/m/new/c.mp4', size: 102, mtimeMs: 1000, status: 'pending' },
      { position: 2, probeIndex: 1, path: '/m/new/z.mp4', size: 999, mtimeMs: 1000, status: 'pending' },
    ]);
    // What the library knew under /m, less what the walk found.
    const underRoot = await library.knownFilesUnder('/m', true);
    for (const found of ['/m/a.mp4', '/m/new/c.mp4', '/m/new/z.mp4']) underRoot.delete(found);
    const vanished = await library.presentVideos([...underRoot.keys()].reverse());
    expect(vanished.map((v) => v.path)).toEqual(['/m/b.mp4', '/m/sub/c.mp4', '/m/sub/d.mp4']);
    expect(vanished[1]).toMatchObject({ size: 102, fingerprint: 'fp-2' });

    const candidates = await library.moveCandidates('second', vanished.map((v) => v.size));
    expect(candidates.map((c) => c.path)).toEqual(['/m/new/c.mp4']);
    expect(await library.recordMove('second', candidates[0]!, vanished[1]!)).toBe(true);
    await library.renumberProbeIndexes('second');
    expect((await library.getProbeFiles('second', 0, 10)).map((f) => [f.probeIndex, f.path])).toEqual([[0, '/m/new/z.mp4']]);

    const moved = await videoByPath(url(), '/m/new/c.mp4');
    expect(moved).toMatchObject({ id: before?.id, moved_from: '/m/sub/c.mp4', status: 'present', width: 320 });
    expect(await videoByPath(url(), '/m/sub/c.mp4')).toBeUndefined();

    expect(await library.markMissing('second', [vanished[0]!, vanished[2]!], 3)).toBe(2);
    const missing = await library.listVideos({ limit: 10, offset: 0, status: 'missing' });
    expect(missing.items.map((v) => v.path)).toEqual(['/m/b.mp4', '/m/sub/d.mp4']);
    expect(missing.items.every((v) => v.missing_since !== null)).toBe(true);
    expect(await library.countScanFiles('second')).toEqual({ discovered: 3, toProbe: 1, skipped: 1 });
    expect((await library.scanTotals('second')).counts).toMatchObject({ discovered: 3, moved: 1, missing: 2 });
    // Unchanged files counted without a row each add to the discovered and skipped files.
    await library.recordUnrecordedSkips('second', 40);
    expect(await library.countScanFiles('second')).toEqual({ discovered: 43, toProbe: 1, skipped: 41 });
    expect((await library.scanTotals('second')).counts).toMatchObject({ discovered: 43, skipped: 41, moved: 1, missing: 2 });
    // A retried discovery starts its count over with its rows.
    await library.resetScanFiles('second');
    expect(await library.countScanFiles('second')).toEqual({ discovered: 0, toProbe: 0, skipped: 0 });
    expect((await videoByPath(url(), '/m2/e.mp4'))?.status).toBe('present');
  });
});
