/**
 * Scans end to end: the HTTP API, a real Temporal server, a worker, the real
 * ffprobe on real clips, a real SQLite library.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Video } from '../../src/library/types';
import type { JobBody } from '../../src/scans';
import { recordHistory } from '../support/histories';
import { scanFileRows } from '../support/library-rows';
import { buildLibrary, ensureTestMedia, type TestClip } from '../support/media';
import { http, processesMatching, startStack, waitFor, writeProberWrapper, type Stack, withProbeHook, type StackProber } from '../support/stack';

const realFfprobe = (require('@ffprobe-installer/ffprobe') as { path: string }).path;

const TERMINAL = ['completed', 'failed', 'cancelled', 'timeout'];

let clips: TestClip[];
let work: string;

beforeAll(async () => {
  clips = await ensureTestMedia();
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'scan-test-'));
});

afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

async function getJob(stack: Stack, jobId: string): Promise<JobBody> {
  const res = await http<JobBody>(stack.baseUrl, 'GET', `/api/v1/jobs/${jobId}`);
  expect(res.status).toBe(200);
  return res.body;
}

async function startScan(stack: Stack, folder: string, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await http<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: folder, ...extra });
  expect(res.status).toBe(202);
  expect(res.body.job_id).toMatch(/^scan-/);
  return res.body.job_id;
}

function waitForEnd(stack: Stack, jobId: string, timeoutMs = 90_000): Promise<JobBody> {
  return waitFor(() => getJob(stack, jobId), (job) => TERMINAL.includes(job.status), timeoutMs, 100);
}

describe('a scan through the API on a real Temporal server', () => {
  let stack: Stack;
  let wrapper: { path: string; hangMarker: string };

  beforeAll(async () => {
    // A prober that takes ~40 ms more per file than ffprobe alone, so that a
    // hundred or two files make a scan long enough to watch.
    wrapper = await writeProberWrapper(work, { realPath: realFfprobe, delayMs: 40, hangOn: 'HANG' });
    // Pictures only where a test asks for them (`thumbnails: true`), four at once;
    // the other scans end after probing (pictures are the thumbnail tests' matter).
    // The time limit is what the hanging file waits out: long enough that a good
    // file on a machine running at a third of its speed never reaches it.
    stack = await startStack({
      FFPROBE_PATH: wrapper.path,
      PROBE_TIMEOUT_MS: '5000',
      PROBE_CONCURRENCY: '2',
      SCAN_BATCH_SIZE: '20',
      THUMBNAIL_CONCURRENCY: '4',
      THUMBNAILS: 'off',
    });
  });

  afterAll(async () => {
    await stack?.close();
  });

  it('answers every status request while 200 files are probed, with progress that only grows', async () => {
    const folder = path.join(work, 'big');
    // Ten batches of 20: the 200 polls below take a small part of the scan.
    const files = await buildLibrary(folder, 200, clips);
    const jobId = await startScan(stack, folder);

    const polls: JobBody[] = [];
    const latencies: number[] = [];
    for (let i = 0; i < 200; i += 1) {
      const res = await http<JobBody>(stack.baseUrl, 'GET', `/api/v1/jobs/${jobId}`);
      expect(res.status).toBe(200);
      latencies.push(res.ms);
      polls.push(res.body);
    }
    // All 200 answered while the scan was still going (how fast is the benchmark's question).
    expect(TERMINAL).not.toContain(polls[polls.length - 1]?.status);
    const sorted = [...latencies].sort((a, b) => a - b);
    process.stderr.write(`status latency during the scan: p50 ${sorted[100]?.toFixed(1)} ms, max ${sorted[199]?.toFixed(1)} ms\n`);

    for (;;) {
      const job = await getJob(stack, jobId);
      polls.push(job);
      if (TERMINAL.includes(job.status)) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const final = polls[polls.length - 1] as JobBody;
    expect(final.status).toBe('completed');
    expect(final.progress).toBe(1);
    expect(final.phase).toBe('done');
    expect(final.result?.scanned).toBe(files.length);
    // Errors first: a failed file says why, where the count would only say how many.
    expect(final.result?.errors).toEqual([]);
    expect(final.counts.failed).toBe(0);
    expect(final.result?.new).toBe(files.length);
    expect(final.finished_at).not.toBeNull();
    expect(final.temporal.ui_url).toContain(jobId);
    // A finished scan reports its average rate, and no time left.
    const runSeconds = (Date.parse(final.finished_at as string) - Date.parse(final.created_at)) / 1000;
    expect(final.rate_per_s).toBeCloseTo(files.length / runSeconds, 0);
    expect(final.eta_seconds).toBeNull();

    const values = polls.map((p) => p.progress).filter((p): p is number => p !== null);
    for (let i = 1; i < values.length; i += 1) expect(values[i]).toBeGreaterThanOrEqual(values[i - 1] as number);
    const between = new Set(values.filter((v) => v > 0 && v < 1));
    expect(between.size).toBeGreaterThanOrEqual(5);
    await recordHistory(stack.client, jobId, 'completed');
  });

  it('records the metadata ffmpeg generated, for every container', async () => {
    const folder = path.join(work, 'clips');
    await fs.mkdir(folder, { recursive: true });
    for (const clip of clips) await fs.copyFile(clip.file, path.join(folder, path.basename(clip.file)));
    const jobId = await startScan(stack, folder);
    const job = await waitForEnd(stack, jobId);
    expect(job.status).toBe('completed');
    expect(job.result?.scanned).toBe(clips.length);

    for (const clip of clips) {
      const file = path.join(folder, path.basename(clip.file));
      const found = await http<{ videos: Video[] }>(stack.baseUrl, 'GET', `/api/v1/videos/search?q=${encodeURIComponent(file)}`);
      if (!clip.hasVideo) {
        expect(found.body.videos).toHaveLength(0);
        expect(job.result?.errors).toContainEqual({ path: file, error: 'no_video_stream' });
        continue;
      }
      expect(found.body.videos).toHaveLength(1);
      const video = found.body.videos[0] as Video;
      expect(video).toMatchObject({
        path: file,
        filename: path.basename(file),
        width: clip.width,
        height: clip.height,
        frame_rate_numerator: clip.fps[0],
        frame_rate_denominator: clip.fps[1],
        video_codec: clip.videoCodec,
        audio_codec: clip.audioCodec,
        container: clip.container,
        status: 'present',
        stream_counts: { video: 1, audio: clip.audioCodec === null ? 0 : 1, subtitle: 0, data: 0 },
      });
      expect(video.bit_rate).toBeGreaterThan(0);
      expect(video.file_size).toBe((await fs.stat(file)).size);
      expect(Math.abs((video.duration_seconds ?? 0) - clip.durationSeconds)).toBeLessThan(0.1);
    }
  });

  it('cancels a running scan short of its end, kills its ffprobe processes and keeps what was probed', async () => {
    const folder = path.join(work, 'cancel-me');
    await buildLibrary(folder, 400, clips);
    const jobId = await startScan(stack, folder);
    await waitFor(() => getJob(stack, jobId), (job) => job.counts.probed >= 40, 60_000, 50);

    const cancel = await http<JobBody>(stack.baseUrl, 'POST', `/api/v1/jobs/${jobId}/cancel`);
    expect(cancel.status).toBe(202);
    expect(cancel.body.cancel_requested).toBe(true);
    const job = await waitForEnd(stack, jobId);
    // Cancelled, not run to its end: it stopped short of its 400 files.
    expect(job.status).toBe('cancelled');

    expect(await processesMatching(folder)).toEqual([]);
    expect(job.counts.probed).toBeGreaterThanOrEqual(40);
    expect(job.counts.probed).toBeLessThan(400);
    const inFolder = await stack.library.searchVideos(folder + path.sep, 1000, 0);
    expect(inFolder.total).toBe(job.counts.new);

    const again = await http<{ code: string }>(stack.baseUrl, 'POST', `/api/v1/jobs/${jobId}/cancel`);
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('ALREADY_TERMINAL');
    await recordHistory(stack.client, jobId, 'cancelled');
  });

  it('stops a scan that runs past its time limit and reports it as timeout', async () => {
    const folder = path.join(work, 'too-slow');
    await buildLibrary(folder, 400, clips);
    const { scanId: jobId } = await stack.scans.start({ root: folder, recursive: true, force: false, scanTimeoutMs: 1500 });
    const job = await waitForEnd(stack, jobId);
    expect(job.status).toBe('timeout');
    expect(job.error).toMatch(/time limit/);
    expect(job.counts.probed).toBeGreaterThan(0);
    expect(job.counts.probed).toBeLessThan(400);
    expect(job.progress).toBeLessThan(1);
    expect(await processesMatching(folder)).toEqual([]);
    await recordHistory(stack.client, jobId, 'timeout');
  });

  it('kills a prober that hangs past PROBE_TIMEOUT_MS, records the file as timed out and probes the rest', async () => {
    const folder = path.join(work, 'hang');
    const files = await buildLibrary(folder, 30, clips);
    const hanging = path.join(folder, 'HANG.mp4');
    await fs.copyFile(files[0] as string, hanging);
    const jobId = await startScan(stack, folder);
    const job = await waitForEnd(stack, jobId);
    expect(job.status).toBe('completed');
    expect(job.result?.scanned).toBe(31);
    expect(job.counts.failed).toBe(1);
    expect(job.result?.errors).toEqual([{ path: hanging, error: 'timeout' }]);
    expect(await processesMatching(wrapper.hangMarker)).toEqual([]);
  });

  it('runs two scans side by side: both advance before either finishes', async () => {
    const a = path.join(work, 'side-a');
    const b = path.join(work, 'side-b');
    // Six batches each, more than a window (SCAN_WINDOW 4 batches of 20): a scan's window queues its
    // files for the two probe slots ahead of the other scan's, which advances once the first's window moves on.
    await buildLibrary(a, 120, clips);
    await buildLibrary(b, 120, clips);
    const jobA = await startScan(stack, a);
    const jobB = await startScan(stack, b);
    let sawBothAdvancing = false;
    for (;;) {
      const [ja, jb] = await Promise.all([getJob(stack, jobA), getJob(stack, jobB)]);
      const running = !TERMINAL.includes(ja.status) && !TERMINAL.includes(jb.status);
      if (running && ja.counts.probed > 0 && jb.counts.probed > 0) sawBothAdvancing = true;
      if (TERMINAL.includes(ja.status) && TERMINAL.includes(jb.status)) {
        expect(ja.status).toBe('completed');
        expect(jb.status).toBe('completed');
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(sawBothAdvancing).toBe(true);
  });

  it('skips unchanged files on a rescan and probes them again with force', async () => {
    const folder = path.join(work, 'rescan');
    // A full batch and a part of one (SCAN_BATCH_SIZE 20).
    const files = await buildLibrary(folder, 30, clips);
    const withPictures = { thumbnails: true };
    const first = await waitForEnd(stack, await startScan(stack, folder, withPictures));
    expect(first.result?.new).toBe(30);
    const second = await waitForEnd(stack, await startScan(stack, folder, withPictures));
    expect(second.status).toBe('completed');
    expect(second.result).toMatchObject({ scanned: 30, new: 0, updated: 0, skipped: 30 });
    expect(second.counts).toMatchObject({ discovered: 30, skipped: 30, probed: 0, missing: 0 });
    expect(second.progress).toBe(1);
    // Unchanged files with their pictures are counted, not written a row each: a rescan costs the walk.
    expect(await scanFileRows(stack.config.databaseUrl, second.job_id)).toBe(0);
    expect((await stack.library.getScan(second.job_id))?.counts).toMatchObject({ discovered: 30, skipped: 30 });
    // Files are hard links to a few clips: give one file an inode of its own before touching it.
    const changed = files[0] as string;
    await fs.copyFile(changed, `${changed}.tmp`);
    await fs.rename(`${changed}.tmp`, changed);
    await fs.utimes(changed, new Date(), new Date(Date.now() - 1000));
    const third = await waitForEnd(stack, await startScan(stack, folder, withPictures));
    expect(third.result).toMatchObject({ scanned: 30, updated: 1, skipped: 29 });
    const forced = await waitForEnd(stack, await startScan(stack, folder, { ...withPictures, force: true }));
    expect(forced.result).toMatchObject({ scanned: 30, updated: 30, skipped: 0 });
    expect((await stack.library.searchVideos(folder + path.sep, 1000, 0)).total).toBe(30);
  });

  it('hands a long scan over to new runs with continue-as-new without losing count', async () => {
    const folder = path.join(work, 'continued');
    // Three batches of probes, then three of pictures, two a run: three runs.
    const files = await buildLibrary(folder, 60, clips);
    const { scanId: jobId } = await stack.scans.start({ root: folder, recursive: true, force: false, maxBatchesPerRun: 2, thumbnails: true });
    const firstRun = (await getJob(stack, jobId)).temporal.run_id;
    const polls: number[] = [];
    const job = await waitFor(
      async () => {
        const j = await getJob(stack, jobId);
        if (j.progress !== null) polls.push(j.progress);
        return j;
      },
      (j) => TERMINAL.includes(j.status),
      90_000,
      50,
    );
    expect(job.error).toBeNull();
    expect(job.status).toBe('completed');
    expect(job.result?.scanned).toBe(files.length);
    expect(job.temporal.run_id).not.toBe(firstRun);
    // Handed over twice at least: the scan's runs, as Temporal lists them.
    const runs: string[] = [];
    for await (const execution of stack.client.workflow.list({ query: `WorkflowId = '${jobId}'` })) runs.push(execution.runId);
    expect(runs.length).toBeGreaterThanOrEqual(3);
    expect(job.path).toBe(folder);
    for (let i = 1; i < polls.length; i += 1) expect(polls[i]).toBeGreaterThanOrEqual(polls[i - 1] as number);
    await recordHistory(stack.client, jobId, 'continued');
  });

  it('rejects a scan of a path that is missing, relative or not a directory', async () => {
    for (const bad of [{ path: '/does/not/exist' }, { path: 'relative/dir' }, { path: wrapper.path }, {}, { path: 7 }]) {
      const res = await http<{ code: string; message: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', bad);
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('INVALID_PATH');
      expect(res.body.message.length).toBeGreaterThan(0);
    }
    const notFound = await http<{ code: string }>(stack.baseUrl, 'GET', '/api/v1/jobs/scan-nope');
    expect(notFound.status).toBe(404);
    expect(notFound.body.code).toBe('NOT_FOUND');
  });
});

describe('a probe batch that fails part-way', () => {
  let stack: Stack;
  let logFile: string;
  let failures = 0;

  beforeAll(async () => {
    logFile = path.join(work, 'calls.log');
    const wrapper = await writeProberWrapper(work, { realPath: realFfprobe, logFile });
    stack = await startStack(
      { FFPROBE_PATH: wrapper.path, PROBE_CONCURRENCY: '2', SCAN_BATCH_SIZE: '10', THUMBNAILS: 'off' },
      {
        // The seventh call fails as if the worker had run out of file
        // descriptors: a transient fault that Temporal retries.
        wrapProber: (prober: StackProber): StackProber => {
          let calls = 0;
          return withProbeHook(prober, async () => {
            calls += 1;
            if (calls === 7) {
              failures += 1;
              throw Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE' });
            }
          });
        },
      },
    );
  });

  afterAll(async () => {
    await stack?.close();
  });

  it('is retried from its heartbeat checkpoint without probing finished files again', async () => {
    const folder = path.join(work, 'checkpoint');
    const files = await buildLibrary(folder, 40, clips);
    const jobId = await startScan(stack, folder);
    const job = await waitForEnd(stack, jobId);
    expect(failures).toBe(1);
    expect(job.status).toBe('completed');
    expect(job.result?.scanned).toBe(40);
    expect(job.counts.failed).toBe(0);
    const calls = (await fs.readFile(logFile, 'utf8')).trim().split('\n');
    expect(calls).toHaveLength(files.length);
    expect(new Set(calls).size).toBe(files.length);
  });
});
