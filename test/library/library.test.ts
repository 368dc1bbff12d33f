/**
 * The library on both dialects: a SQLite file and a real PostgreSQL database
 * (created for the run at 127.0.0.1:5432, or TEST_DATABASE_URL's server).
 */
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Library } from '../../src/library/library';
import type { NewScanFile } from '../../src/library/types';
import { bothDialects, sampleMetadata } from '../support/library-dialects';
import { addVideos, recordProbe, setVideoStatus, videoByPath } from '../support/library-rows';

const dialects = bothDialects('scanner_test', path.join('lib', 'library.sqlite'));
const metadata = sampleMetadata;

/** Fake timers that fake only the clock: timers and I/O run for real (pg needs them). */
const ALL_BUT_DATE: NonNullable<FakeTimersConfig['doNotFake']> = ['hrtime', 'nextTick', 'performance', 'queueMicrotask', 'setImmediate', 'clearImmediate', 'setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'];

/** Runs `work` with the clock standing at `time`. */
async function at(time: number, work: () => Promise<void>): Promise<void> {
  jest.useFakeTimers({ now: time, doNotFake: ALL_BUT_DATE });
  try {
    await work();
  } finally {
    jest.useRealTimers();
  }
}

describe.each(dialects)('the library on %s', (_name, url) => {
  let library: Library;

  beforeAll(async () => {
    // Two opens at once: migrations must not trip over each other.
    const [a, b] = await Promise.all([Library.open(url()), Library.open(url())]);
    await b.close();
    library = a;
  });

  afterAll(async () => {
    await library.close();
  });

  it('records discovered files once and counts them', async () => {
    await library.createScan({ scanId: 's1', root: '/m', recursive: true, force: false, retryOf: null });
    await library.createScan({ scanId: 's1', root: '/m', recursive: true, force: false, retryOf: null });
    const files = Array.from({ length: 1200 }, (_, i) => ({
      position: i,
      probeIndex: i % 3 === 0 ? null : i - Math.ceil(i / 3),
      path: `/m/f${String(i).padStart(4, '0')}.mp4`,
      size: 5_000_000_000 + i,
      mtimeMs: 1_700_000_000_123.456 + i,
      status: (i % 3 === 0 ? 'skipped' : 'pending') as 'skipped' | 'pending',
    }));
    await library.addScanFiles('s1', files);
    await library.addScanFiles('s1', files.slice(0, 10));
    expect(await library.countScanFiles('s1')).toEqual({ discovered: 1200, toProbe: 800, skipped: 400 });
    const batch = await library.getProbeFiles('s1', 0, 5);
    expect(batch.map((f) => f.probeIndex)).toEqual([0, 1, 2, 3, 4]);
    expect(batch[0]).toMatchObject({ path: '/m/f0001.mp4', size: 5_000_000_001, status: 'pending' });
  });

  it('upserts videos by path, tells new from updated, and keeps the verdict on a repeat', async () => {
    const [f0, f1] = await library.getProbeFiles('s1', 0, 2);
    const file = { path: f0!.path, size: f0!.size, mtimeMs: f0!.mtimeMs };
    expect(await recordProbe(library, 's1', f0!.position, { kind: 'probed', file, metadata })).toBe('new');
    expect(await recordProbe(library, 's1', f0!.position, { kind: 'probed', file, metadata })).toBe('new');
    expect(await recordProbe(library, 's1', f1!.position, { kind: 'failed', reason: 'timeout' })).toBe('failed');
    const video = await videoByPath(url(), file.path);
    expect(video).toMatchObject({ filename: 'f0001.mp4', file_size: 5_000_000_001, width: 320, frame_rate_numerator: 25, stream_counts: { video: 1, audio: 1, subtitle: 0, data: 0 }, status: 'present' });
    expect((await library.listVideos({ limit: 10, offset: 0 })).total).toBe(1);
    const known = await library.knownFilesUnder('/m', true);
    expect(known.get(file.path)).toEqual({ size: file.size, mtimeMs: file.mtimeMs, pictureless: true });
    expect(known.has('/m/none.mp4')).toBe(false);

    await library.createScan({ scanId: 's2', root: '/m', recursive: true, force: true, retryOf: null });
    await library.addScanFiles('s2', [{ position: 0, probeIndex: 0, path: file.path, size: file.size, mtimeMs: file.mtimeMs, status: 'pending' }]);
    expect(await recordProbe(library, 's2', 0, { kind: 'probed', file, metadata: { ...metadata, width: 640 } })).toBe('updated');
    expect((await videoByPath(url(), file.path))?.width).toBe(640);
    expect((await library.listVideos({ limit: 10, offset: 0 })).total).toBe(1);
  });

  it('records several results in one write, in order, and none of them when one cannot be written', async () => {
    await library.createScan({ scanId: 'group', root: '/g', recursive: true, force: false, retryOf: null });
    const files = Array.from({ length: 4 }, (_, i) => ({ position: i, probeIndex: i, path: `/g/v${i}.mkv`, size: 10 + i, mtimeMs: 1_700_000_000_000.25 + i, status: 'pending' as const }));
    await library.addScanFiles('group', files);
    const probed = (i: number) => ({ position: i, outcome: { kind: 'probed' as const, file: { path: files[i]!.path, size: files[i]!.size, mtimeMs: files[i]!.mtimeMs }, metadata } });
    // A path the videos table refuses (NOT NULL) fails the write after a good result was written in it.
    const unwritable = { position: 1, outcome: { kind: 'probed' as const, file: { path: null as unknown as string, size: 1, mtimeMs: 1 }, metadata } };
    await expect(library.recordProbes('group', [probed(0), unwritable])).rejects.toThrow();
    // All or nothing: the good result is not recorded either, so its file is still to probe (a retry probes it).
    expect((await library.getProbeFiles('group', 0, 4)).map((f) => f.status)).toEqual(['pending', 'pending', 'pending', 'pending']);
    expect(await videoByPath(url(), files[0]!.path)).toBeUndefined();

    expect(await library.recordProbes('group', [probed(2), { position: 1, outcome: { kind: 'failed', reason: 'timeout' } }, probed(0)])).toEqual(['new', 'failed', 'new']);
    expect((await library.getProbeFiles('group', 0, 4)).map((f) => f.status)).toEqual(['new', 'failed', 'new', 'pending']);
    // A repeat of the same results (a retried batch) keeps the first verdicts.
    expect(await library.recordProbes('group', [probed(0), probed(3)])).toEqual(['new', 'new']);
    expect(await library.recordProbes('group', [])).toEqual([]);
  });

  it('writes results for the same path or position in one group one after the other, as they come', async () => {
    await library.createScan({ scanId: 'twice', root: '/t', recursive: true, force: false, retryOf: null });
    await library.addScanFiles('twice', [0, 1].map((i) => ({ position: i, probeIndex: i, path: `/t/x${i}.mkv`, size: 1, mtimeMs: 1, status: 'pending' as const })));
    const probed = (position: number, filePath: string, width: number) => ({ position, outcome: { kind: 'probed' as const, file: { path: filePath, size: 1, mtimeMs: 1 }, metadata: { ...metadata, width } } });
    const statuses = await library.recordProbes('twice', [
      probed(0, '/t/x.mkv', 320),
      probed(1, '/t/x.mkv', 640),
      { position: 0, outcome: { kind: 'failed', reason: 'timeout' } },
      probed(0, '/t/y.mkv', 800),
    ]);
    expect(statuses).toEqual(['new', 'updated', 'failed', 'new']);
    expect((await videoByPath(url(), '/t/x.mkv'))?.width).toBe(640);
    expect((await videoByPath(url(), '/t/y.mkv'))?.width).toBe(800);
    expect((await library.getProbeFiles('twice', 0, 2)).map((f) => [f.status, f.error])).toEqual([
      ['new', null],
      ['updated', null],
    ]);
    // A result for a position the scan has no record of still says what its write did.
    expect(await library.recordProbes('twice', [probed(7, '/t/x.mkv', 1), probed(8, '/t/z.mkv', 1)])).toEqual(['updated', 'new']);
  });

  it('reads the thousands of known videos under a root, whatever characters their paths hold, with their exact size and mtime', async () => {
    await library.createScan({ scanId: 'many', root: '/k', recursive: true, force: false, retryOf: null });
    const odd = ['/k/it\'s "quoted".mkv', '/k/ünï cödé 映画.mp4', '/k/back\\slash %_.avi', "/k/semi;colon'); drop table videos;--.mkv", '/k/\u{1F600} smile.mp4'];
    // Beside the root, not under it: names that share its first characters, before and after it in any order.
    const beside = ['/k.mp4', '/k0/a.mp4', '/k-a/b.mp4', '/kk/c.mp4', '/j/k/d.mp4', '/K/e.mp4'];
    const paths = [...odd, ...beside, ...Array.from({ length: 6000 }, (_, i) => `/k/d${i % 7}/f${i}.mp4`)];
    const rows = paths.map((p, i) => ({ position: i, probeIndex: i, path: p, size: 5_000_000_000 + i, mtimeMs: 1_700_000_000_123.25 + i / 8, status: 'pending' as const }));
    await library.addScanFiles('many', rows);
    // The odd names, those beside the root and every tenth file become known videos.
    const known = rows.filter((_, i) => i < odd.length + beside.length || i % 10 === 0);
    for (let i = 0; i < known.length; i += 500) {
      await library.recordProbes(
        'many',
        known.slice(i, i + 500).map((r) => ({ position: r.position, outcome: { kind: 'probed' as const, file: { path: r.path, size: r.size, mtimeMs: r.mtimeMs }, metadata } })),
      );
    }
    const under = known.filter((r) => !beside.includes(r.path));
    const found = await library.knownFilesUnder('/k', true);
    expect(found.size).toBe(under.length);
    for (const r of under) expect(found.get(r.path)).toEqual({ size: r.size, mtimeMs: r.mtimeMs, pictureless: true });
    // Not recursive: the root's own files only.
    expect([...(await library.knownFilesUnder('/k/', false)).keys()].sort()).toEqual(odd.slice().sort());
    // A picture made (or its failure recorded) is known too.
    await library.recordThumbnail((await videoByPath(url(), odd[0]!))!.id, odd[0]!, { ok: false, reason: 'no frame' });
    expect((await library.knownFilesUnder('/k', false)).get(odd[0]!)?.pictureless).toBe(false);
    // What discovery wrote comes back exactly: a probe compares it with the file's stat.
    const recorded = await library.getProbeFiles('many', 0, 4);
    expect(recorded.map((f) => [f.path, f.size, f.mtimeMs])).toEqual(rows.slice(0, 4).map((r) => [r.path, r.size, r.mtimeMs]));
  });

  it('reads tens of thousands of known videos under a root a page at a time, each once, and none beside it', async () => {
    // Written in an order other than the paths', so that pages by id and pages by path both cross folders.
    const under = Array.from({ length: 25_003 }, (_, i) => `/p/d${(i * 7) % 13}/f${String((i * 7919) % 25_003).padStart(5, '0')}.mkv`);
    const beside = ['/p.mkv', '/p0/a.mkv', '/pp/b.mkv', '/o/p/c.mkv'];
    await addVideos(url(), [...beside.slice(0, 2), ...under.slice(0, 12_000), ...beside.slice(2), ...under.slice(12_000)]);
    const known = await library.knownFilesUnder('/p', true);
    expect(known.size).toBe(under.length);
    expect(new Set(known.keys())).toEqual(new Set(under));
    const last = under.length - 1;
    // Written after all four of the others beside the root: at position last + 4.
    expect(known.get(under[last]!)).toEqual({ size: 1000 + 4 + last, mtimeMs: 1_700_000_000_000 + (4 + last) / 4, pictureless: true });
    for (const path of beside) expect(known.has(path)).toBe(false);
    expect(known.delete(under[0]!)).toBe(true);
    expect(known.get(under[0]!)).toBeUndefined();
    expect(known.size).toBe(under.length - 1);
  });

  it('tells new from updated by the write itself, also when the clock shows the same millisecond', async () => {
    // Only Date is faked: the clock stands still, as for two writes in the
    // same millisecond or a worker whose clock lags another's.
    jest.useFakeTimers({ now: new Date('2026-03-01T12:00:00.000Z'), doNotFake: ALL_BUT_DATE });
    try {
      const file = { path: '/same-ms/clip.mp4', size: 10, mtimeMs: 1 };
      for (const scanId of ['same-ms-1', 'same-ms-2']) {
        await library.createScan({ scanId, root: '/same-ms', recursive: true, force: true, retryOf: null });
        await library.addScanFiles(scanId, [{ position: 0, probeIndex: 0, ...file, status: 'pending' }]);
      }
      expect(await recordProbe(library, 'same-ms-1', 0, { kind: 'probed', file, metadata })).toBe('new');
      const first = await videoByPath(url(), file.path);
      expect(first?.created_at).toBe('2026-03-01T12:00:00.000Z');
      // A second scan writes the same path at the same instant: an update.
      expect(await recordProbe(library, 'same-ms-2', 0, { kind: 'probed', file, metadata: { ...metadata, width: 1280 } })).toBe('updated');
      // Its retried batch writes it again: still the first verdict.
      expect(await recordProbe(library, 'same-ms-2', 0, { kind: 'probed', file, metadata: { ...metadata, width: 1280 } })).toBe('updated');
      expect(await library.batchSummary('same-ms-2', 0, 1)).toMatchObject({ probed: 1, new: 0, updated: 1 });
      expect(await videoByPath(url(), file.path)).toMatchObject({ id: first!.id, width: 1280, created_at: first!.created_at });
    } finally {
      jest.useRealTimers();
    }
  });

  it('summarises a batch and lists what failed or was never reached', async () => {
    expect(await library.batchSummary('s1', 0, 10)).toEqual({ probed: 2, new: 1, updated: 0, failed: 1, errors: [{ path: '/m/f0002.mp4', error: 'timeout' }] });
    expect(await library.scanErrors('s1', 10, 0)).toEqual({ errors: [{ path: '/m/f0002.mp4', error: 'timeout' }], total: 1 });
    const unfinished = await library.unfinishedFiles('s1');
    expect(unfinished).toHaveLength(799);
    expect(unfinished).toContain('/m/f0002.mp4');
    expect(unfinished).not.toContain('/m/f0001.mp4');
    await library.finishScan('s1', { outcome: 'completed', counts: { discovered: 1200 }, error: null });
    expect(await library.getScan('s1')).toMatchObject({ outcome: 'completed', counts: { discovered: 1200 }, root: '/m', recursive: true });
    await library.resetScanFiles('s1');
    expect((await library.countScanFiles('s1')).discovered).toBe(0);
  });

  it('searches names case-insensitively, treating wildcards literally, and deletes records', async () => {
    const base = { size: 1, mtimeMs: 1 };
    await library.createScan({ scanId: 's3', root: '/x', recursive: true, force: false, retryOf: null });
    const names = ['/x/Holiday 50%_off.mkv', '/x/holidayX50a-off.mkv', '/x/other.mp4'];
    await library.addScanFiles('s3', names.map((p, i) => ({ position: i, probeIndex: i, path: p, ...base, status: 'pending' as const })));
    for (let i = 0; i < names.length; i += 1) {
      await recordProbe(library, 's3', i, { kind: 'probed', file: { path: names[i] as string, ...base }, metadata });
    }
    const hits = await library.searchVideos('HOLIDAY 50%_', 10, 0);
    expect(hits.items.map((v) => v.path)).toEqual(['/x/Holiday 50%_off.mkv']);
    expect((await library.searchVideos('holiday', 10, 0)).total).toBe(2);
    const id = hits.items[0]!.id;
    expect(await library.deleteVideo(id)).toBe(true);
    expect(await library.deleteVideo(id)).toBe(false);
    expect(await library.getVideo(id)).toBeUndefined();
  });

  it('prunes the file records of scans that finished before the retention, keeping recent, running and retried ones', async () => {
    const day = 86_400_000;
    const now = Date.now();
    const files = (n: number, folder: string): NewScanFile[] =>
      Array.from({ length: n }, (_, i) => ({ position: i, probeIndex: i, path: `/${folder}/${i}.mp4`, size: 1, mtimeMs: 1, status: 'pending' }));
    const scan = (scanId: string, retryOf: string | null = null) => library.createScan({ scanId, root: '/r', recursive: true, force: false, retryOf });
    const finish = (scanId: string) => library.finishScan(scanId, { outcome: 'completed', counts: { discovered: 1 }, error: null });
    await at(now - 40 * day, async () => {
      // More rows than one delete takes, to go through the chunks.
      await scan('old-done');
      await library.addScanFiles('old-done', files(12_001, 'old-done'));
      await finish('old-done');
      await scan('old-running');
      await library.addScanFiles('old-running', files(3, 'old-running'));
      await scan('old-retried');
      await library.addScanFiles('old-retried', files(4, 'old-retried'));
      await finish('old-retried');
    });
    await at(now - 39 * day, async () => {
      await scan('retry-running', 'old-retried');
      await library.addScanFiles('retry-running', files(2, 'retry-running'));
    });
    await at(now - day, async () => {
      await scan('recent-done');
      await library.addScanFiles('recent-done', files(5, 'recent-done'));
      await finish('recent-done');
    });
    const records = async (scanId: string): Promise<number> => (await library.countScanFiles(scanId)).discovered;
    const cutoff = new Date(now - 30 * day);

    expect(await library.pruneScanRecords(cutoff)).toEqual({ scans: 1, rows: 12_001 });
    expect(await records('old-done')).toBe(0);
    expect(await records('old-running')).toBe(3);
    expect(await records('old-retried')).toBe(4);
    expect(await records('retry-running')).toBe(2);
    expect(await records('recent-done')).toBe(5);
    // The scan itself stays, with its counts, marked as pruned.
    expect(await library.getScan('old-done')).toMatchObject({ outcome: 'completed', counts: { discovered: 1 }, filesPrunedAt: expect.any(String) });
    expect((await library.getScan('recent-done'))?.filesPrunedAt).toBeNull();
    expect(await library.pruneScanRecords(cutoff)).toEqual({ scans: 0, rows: 0 });

    // Once its retry has ended, the retried scan's records are no longer needed.
    await finish('retry-running');
    expect(await library.pruneScanRecords(cutoff)).toEqual({ scans: 1, rows: 4 });
    expect(await records('old-retried')).toBe(0);
    expect(await records('retry-running')).toBe(2);
  });
});

describe('the library on SQLite', () => {
  const [, url] = dialects.find(([name]) => name === 'SQLite') as [string, () => string];
  let library: Library;

  beforeAll(async () => {
    library = await Library.open(url());
    // Beside the videos the tests above wrote under other roots: three pages of known videos under /q.
    await addVideos(url(), Array.from({ length: 20_001 }, (_, i) => `/q/f${String(i).padStart(5, '0')}.mkv`));
  });

  afterAll(async () => {
    await library.close();
  });

  /**
   * The statements on videos that better-sqlite3 reads rows of while `use`
   * runs: the query plan of each (one list of steps each), and the rows they gave in all.
   */
  async function readsDuring(use: () => Promise<unknown>): Promise<{ plans: string[][]; rows: number }> {
    // All statements share one prototype.
    const probe = new BetterSqlite3(':memory:');
    const statement = Object.getPrototypeOf(probe.prepare('select 1')) as { all: (...parameters: unknown[]) => unknown[] };
    probe.close();
    const reads: Array<{ source: string; parameters: unknown[] }> = [];
    let rows = 0;
    const all = statement.all;
    const spy = jest.spyOn(statement, 'all').mockImplementation(function (this: { source: string }, ...parameters: unknown[]) {
      const result = all.apply(this, parameters);
      if (/from "?videos"?/.test(this.source)) {
        reads.push({ source: this.source, parameters });
        rows += result.length;
      }
      return result;
    });
    try {
      await use();
    } finally {
      spy.mockRestore();
    }
    const db = new BetterSqlite3(url().slice('sqlite:'.length), { readonly: true });
    try {
      const plans = reads.map(({ source, parameters }) => (db.prepare(`explain query plan ${source}`).all(...parameters) as Array<{ detail: string }>).map((step) => step.detail));
      return { plans, rows };
    } finally {
      db.close();
    }
  }

  it('reads each page of known videos along the path index, without sorting or visiting the rest of the library', async () => {
    let size = 0;
    const { plans } = await readsDuring(async () => {
      size = (await library.knownFilesUnder('/q', true)).size;
    });
    expect(size).toBe(20_001);
    expect(plans).toHaveLength(3);
    for (const plan of plans) expect(plan).toEqual([expect.stringMatching(/^SEARCH videos USING INDEX sqlite_autoindex_videos_1 \(path>=?\? AND path<\?\)$/)]);
  });

  it('reads only the root\'s own known videos when not recursive, none of the thousands below its folders', async () => {
    await addVideos(url(), ['/r/a.mkv', '/r/b.mp4', ...Array.from({ length: 12_000 }, (_, i) => `/r/d${i % 3}/f${i}.mkv`), '/r/z.avi']);
    let names: string[] = [];
    const { rows } = await readsDuring(async () => {
      names = [...(await library.knownFilesUnder('/r', false)).keys()].sort();
    });
    expect(names).toEqual(['/r/a.mkv', '/r/b.mp4', '/r/z.avi']);
    expect(rows).toBe(3);
  });

  it('reads a page of the videos of one status in path order along an index, without sorting every video of that status', async () => {
    // A thousand of them missing: a status with few videos, beside one with most.
    await setVideoStatus(url(), '/q/f01', 'missing');
    for (const status of ['present', 'missing'] as const) {
      let page: Awaited<ReturnType<Library['listVideos']>> | undefined;
      const { plans } = await readsDuring(async () => {
        page = await library.listVideos({ status, limit: 50, offset: 100 });
      });
      expect(page?.items).toHaveLength(50);
      expect(page?.items.every((video) => video.status === status)).toBe(true);
      const paths = page?.items.map((video) => video.path) ?? [];
      expect(paths).toEqual([...paths].sort());
      // The count, then the page: each along the status and path index, and nothing sorted.
      expect(plans).toHaveLength(2);
      for (const plan of plans) expect(plan).toEqual([expect.stringMatching(/^SEARCH videos USING (COVERING )?INDEX videos_status_path \(status=\?\)$/)]);
    }
  });
});
