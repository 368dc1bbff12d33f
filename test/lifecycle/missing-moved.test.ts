/**
 * Keeping a library current, against the real stack (Temporal, the worker's
 * default prober, SQLite, the API): vanished files are marked missing and
 * come back with their records, a renamed folder keeps every id without a
 * probe, a root that looks gone marks nothing, excluded folders are never
 * listed, files still being written are left for the next scan, and a size
 * change under an unchanged mtime is probed again.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Video } from '../../src/library/types';
import type { JobBody } from '../../src/scans';
import { mountFaultFs, type FaultFs } from '../shares/fault-fs';
import { ensureTestMedia, type TestClip } from '../support/media';
import { http, startStack, waitFor, withProbeHook, type Stack, type StackProber } from '../support/stack';

const TERMINAL = ['completed', 'failed', 'cancelled', 'timeout'];

let clips: TestClip[];
let work: string;

beforeAll(async () => {
  clips = (await ensureTestMedia()).filter((c) => c.hasVideo);
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'lifecycle-')));
});

afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

/** Copies `count` distinct real clips into `folder` as `<prefix>-N<ext>`. */
async function placeClips(folder: string, prefix: string, count: number): Promise<string[]> {
  await fs.mkdir(folder, { recursive: true });
  const files: string[] = [];
  for (let i = 0; i < count; i += 1) {
    const clip = clips[i % clips.length] as TestClip;
    const file = path.join(folder, `${prefix}-${i}${path.extname(clip.file)}`);
    await fs.copyFile(clip.file, file);
    files.push(file);
  }
  return files;
}

/** The worker's prober, recording every file it is asked to open and running `before` first. */
function countingProber(asked: string[], before?: (file: string) => Promise<void>): (prober: StackProber) => StackProber {
  return (prober) =>
    withProbeHook(prober, async (file) => {
      asked.push(file);
      if (before) await before(file);
    });
}

async function scan(stack: Stack, body: Record<string, unknown>): Promise<JobBody> {
  let res = await http<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', body);
  // The previous scan of the root may still hold it for a moment after it ended (200 with its id).
  while (res.status === 200) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    res = await http<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', body);
  }
  expect(res.status).toBe(202);
  const job = await waitFor(() => stack.scans.get(res.body.job_id), (j) => TERMINAL.includes(j.status), 120_000, 100);
  expect(job.status).toBe('completed');
  // What a user reads over HTTP is the same body.
  const seen = await http<JobBody>(stack.baseUrl, 'GET', `/api/v1/jobs/${job.job_id}`);
  expect(seen.body.counts).toEqual(job.counts);
  return job;
}

async function videos(stack: Stack, query = ''): Promise<Video[]> {
  const res = await http<{ videos: Video[]; total: number }>(stack.baseUrl, 'GET', `/api/v1/videos?limit=500${query}`);
  expect(res.status).toBe(200);
  return res.body.videos;
}

const byPath = (list: Video[]): Map<string, Video> => new Map(list.map((v) => [v.path, v]));

describe('vanished, returning and moved files', () => {
  let stack: Stack;
  const asked: string[] = [];

  beforeAll(async () => {
    stack = await startStack({ PROBE_CONCURRENCY: '2' }, { wrapProber: countingProber(asked) });
  });

  afterAll(async () => {
    await stack?.close();
  });

  it('marks deleted files missing (never deletes them) and makes them present again, same ids, when they come back', async () => {
    const root = path.join(work, 'vanish');
    const files = await placeClips(path.join(root, 'Shows'), 'ep', 4);
    await scan(stack, { path: root });
    const before = byPath(await videos(stack));
    expect(files.every((f) => before.get(f)?.status === 'present')).toBe(true);

    const gone = files.slice(0, 2);
    const kept = path.join(work, 'vanish-kept');
    await fs.mkdir(kept);
    for (const file of gone) await fs.rename(file, path.join(kept, path.basename(file)));
    const rescan = await scan(stack, { path: root });
    expect(rescan.counts).toMatchObject({ missing: 2, moved: 0, new: 0 });

    const after = byPath(await videos(stack));
    for (const file of gone) {
      expect(after.get(file)).toMatchObject({ id: before.get(file)?.id, status: 'missing' });
      expect(Date.parse(after.get(file)?.missing_since ?? '')).not.toBeNaN();
    }
    for (const file of files.slice(2)) expect(after.get(file)).toMatchObject({ id: before.get(file)?.id, status: 'present', missing_since: null });
    expect((await videos(stack, '&status=missing')).map((v) => v.path).sort()).toEqual([...gone].sort());

    for (const file of gone) await fs.rename(path.join(kept, path.basename(file)), file);
    const back = await scan(stack, { path: root });
    expect(back.counts.missing).toBe(0);
    const restored = byPath(await videos(stack));
    for (const file of files) {
      expect(restored.get(file)).toMatchObject({ id: before.get(file)?.id, status: 'present', missing_since: null, width: before.get(file)?.width });
    }
    expect(await videos(stack, '&status=missing')).toEqual([]);
  });

  it('keeps every id when a folder of files is renamed, and probes none of them again', async () => {
    const root = path.join(work, 'rename');
    const files = await placeClips(path.join(root, 'Season 1'), 'ep', 5);
    await scan(stack, { path: root });
    const before = byPath(await videos(stack));

    await fs.rename(path.join(root, 'Season 1'), path.join(root, 'Season 01'));
    asked.length = 0;
    const rescan = await scan(stack, { path: root });
    expect(asked).toEqual([]);
    expect(rescan.counts).toMatchObject({ moved: 5, missing: 0, new: 0, probed: 0 });

    const after = byPath(await videos(stack));
    for (const file of files) {
      const moved = path.join(root, 'Season 01', path.basename(file));
      expect(after.get(moved)).toMatchObject({ id: before.get(file)?.id, status: 'present', moved_from: file, width: before.get(file)?.width });
      expect(after.has(file)).toBe(false);
    }
  });

  it('marks nothing missing when the root as a whole is empty, and says why in the job', async () => {
    const root = path.join(work, 'unmounted');
    const files = await placeClips(root, 'film', 3);
    await scan(stack, { path: root });
    // An unmounted disk leaves its empty mount point behind.
    for (const file of files) await fs.rm(file);
    const rescan = await scan(stack, { path: root });
    expect(rescan.counts.missing).toBe(0);
    expect(rescan.result?.errors).toEqual([{ path: root, error: expect.stringMatching(/^missing_check_skipped: .*nothing was marked missing/) }]);
    const after = byPath(await videos(stack));
    for (const file of files) expect(after.get(file)?.status).toBe('present');
  });

  it('marks nothing missing when the root itself is gone, and the scan fails saying why', async () => {
    const root = path.join(work, 'dropped-share');
    const files = await placeClips(root, 'film', 2);
    await scan(stack, { path: root });
    await fs.rm(root, { recursive: true });
    // Started as a schedule would, past the API's own check of the path.
    const { scanId: jobId } = await stack.scans.start({ root, recursive: true, force: false });
    const job = await waitFor(() => stack.scans.get(jobId), (j) => TERMINAL.includes(j.status), 120_000, 100);
    expect(job.status).toBe('failed');
    expect(job.error).toMatch(/not a readable directory/);
    const after = byPath(await videos(stack));
    for (const file of files) expect(after.get(file)?.status).toBe('present');
  });

  it('in a scan that is not recursive, marks missing only the files directly in its root', async () => {
    const root = path.join(work, 'flat');
    const top = await placeClips(root, 'top', 2);
    const deep = await placeClips(path.join(root, 'sub'), 'deep', 1);
    await scan(stack, { path: root });
    await fs.rm(top[0] as string);
    const rescan = await scan(stack, { path: root, recursive: false });
    expect(rescan.counts.missing).toBe(1);
    const after = byPath(await videos(stack));
    expect(after.get(top[0] as string)?.status).toBe('missing');
    expect(after.get(deep[0] as string)?.status).toBe('present');
  });
});

describe('exclusions', () => {
  let stack: Stack;
  /** The library, served by a real filesystem that counts the folder listings it is asked for (the FUSE share of test/shares). */
  let share: FaultFs;

  beforeAll(async () => {
    stack = await startStack({ SCAN_EXCLUDE: '@eaDir,#recycle,.*/,._*,Private' });
    await fs.mkdir(path.join(work, 'nas-source'));
    share = await mountFaultFs(path.join(work, 'nas-source'), path.join(work, 'nas'), work, { maxHangSeconds: 60 });
  });

  afterAll(async () => {
    await stack?.close();
    await share?.destroy();
  });

  it('never enters an excluded folder, from SCAN_EXCLUDE or from the request', async () => {
    const source = path.join(work, 'nas-source');
    const root = share.mountpoint;
    await placeClips(path.join(source, 'Movies'), 'film', 1);
    await placeClips(path.join(source, 'Movies', '@eaDir'), 'thumb', 1);
    await placeClips(path.join(source, '#recycle'), 'old', 1);
    await placeClips(path.join(source, '.hidden'), 'secret', 1);
    await placeClips(path.join(source, 'Private'), 'mine', 1);
    await placeClips(path.join(source, 'Extras'), 'extra', 1);
    await fs.copyFile((clips[0] as TestClip).file, path.join(source, 'Movies', '._film-0.mp4'));

    await scan(stack, { path: root, exclude: ['Extras'] });
    // Listings asked of the filesystem, by folder (a folder's count includes those below it).
    const listings = async (folder: string): Promise<number> => share.calls('readdir', folder);
    expect(await listings('/Movies')).toBeGreaterThan(0);
    for (const excluded of ['/Movies/@eaDir', '/#recycle', '/.hidden', '/Private', '/Extras']) expect([excluded, await listings(excluded)]).toEqual([excluded, 0]);
    expect((await videos(stack)).map((v) => path.relative(root, v.path))).toEqual(['Movies/film-0.mp4']);
  });

  it('refuses a request with too many or too long exclusion globs', async () => {
    const many = await http(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: work, exclude: Array.from({ length: 51 }, (_, i) => `g${i}`) });
    expect(many.status).toBe(400);
    const long = await http(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: work, exclude: ['x'.repeat(257)] });
    expect(long.status).toBe(400);
  });
});

describe('files still being written', () => {
  let stack: Stack;
  const asked: string[] = [];

  beforeAll(async () => {
    // The prober appends to any file named "growing" while it is being probed: a copy still under way.
    const grow = async (file: string): Promise<void> => {
      if (path.basename(file).startsWith('growing') && asked.filter((f) => f === file).length === 1) await fs.appendFile(file, Buffer.alloc(4096));
    };
    stack = await startStack({ PROBE_CONCURRENCY: '2' }, { wrapProber: countingProber(asked, grow) });
  });

  afterAll(async () => {
    await stack?.close();
  });

  it('records a file appended to during its probe as still_changing, keeps it out, and takes it on the next scan', async () => {
    const root = path.join(work, 'copying');
    await placeClips(root, 'done', 1);
    await fs.copyFile((clips[1] as TestClip).file, path.join(root, 'growing.mkv'));
    const growing = path.join(root, 'growing.mkv');

    const first = await scan(stack, { path: root });
    expect(first.result?.errors).toEqual([{ path: growing, error: 'still_changing' }]);
    expect((await videos(stack)).map((v) => v.path)).toEqual([path.join(root, 'done-0.mp4')]);

    const second = await scan(stack, { path: root });
    expect(second.counts).toMatchObject({ new: 1, failed: 0 });
    expect((await videos(stack)).map((v) => v.path).sort()).toEqual([path.join(root, 'done-0.mp4'), growing].sort());
  });

  it('probes again a file whose size changed while its mtime did not', async () => {
    const root = path.join(work, 'same-mtime');
    const [file] = (await placeClips(root, 'clip', 1)) as [string];
    // Whole seconds: utimes can set those exactly.
    const second = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
    await fs.utimes(file, second, second);
    await scan(stack, { path: root });
    const stat = await fs.stat(file);
    await fs.appendFile(file, Buffer.alloc(1024));
    await fs.utimes(file, stat.atime, stat.mtime);
    expect((await fs.stat(file)).mtimeMs).toBe(stat.mtimeMs);
    asked.length = 0;
    const rescan = await scan(stack, { path: root });
    expect(rescan.counts).toMatchObject({ updated: 1, skipped: 0 });
    expect(asked).toHaveLength(1);
    expect((await videos(stack)).find((v) => v.path === file)?.file_size).toBe(stat.size + 1024);
  });
});

describe('SCAN_SETTLE_SECONDS', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ SCAN_SETTLE_SECONDS: '3600' });
  });

  afterAll(async () => {
    await stack?.close();
  });

  it('leaves for later a file modified more recently than that, and takes one that has settled', async () => {
    const root = path.join(work, 'settle');
    const [settled, fresh] = (await placeClips(root, 'clip', 2)) as [string, string];
    const anHourAndMoreAgo = new Date(Date.now() - 2 * 3600_000);
    await fs.utimes(settled, anHourAndMoreAgo, anHourAndMoreAgo);
    const job = await scan(stack, { path: root });
    expect(job.result?.errors).toEqual([{ path: fresh, error: 'still_changing' }]);
    expect((await videos(stack)).map((v) => v.path)).toEqual([settled]);
  });
});
