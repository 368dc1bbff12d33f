/**
 * People pause a scan to give a disk or a share back: once the job reads
 * `paused`, no file of it is open and none is opened until it is resumed.
 * Counted at the prober itself (an ffprobe wrapper logs every file it is
 * given), with batches large enough that the ones in flight at the pause hold
 * many files not yet begun.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { JobBody } from '../../src/scans';
import { recordHistory } from '../support/histories';
import { buildLibrary, ensureTestMedia, type TestClip } from '../support/media';
import { http, startStack, waitFor, writeProberWrapper, type Stack } from '../support/stack';

jest.setTimeout(300_000);

const realFfprobe = (require('@ffprobe-installer/ffprobe') as { path: string }).path;
const TERMINAL = ['completed', 'failed', 'cancelled', 'timeout'];

let clips: TestClip[];
let work: string;
let logFile: string;
let stack: Stack;

beforeAll(async () => {
  clips = await ensureTestMedia();
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'pause-stops-')));
  logFile = path.join(work, 'calls.log');
  const wrapper = await writeProberWrapper(work, { realPath: realFfprobe, delayMs: 100, logFile });
  stack = await startStack({
    PROBER: 'ffprobe',
    FFPROBE_PATH: wrapper.path,
    PROBE_CONCURRENCY: '1',
    SCAN_BATCH_SIZE: '10',
    SCAN_WINDOW: '2',
    THUMBNAIL_DIR: path.join(work, 'thumbnails'),
  });
});

afterAll(async () => {
  await stack?.close();
  await fs.rm(work, { recursive: true, force: true });
});

const opened = async (folder: string): Promise<string[]> =>
  (await fs.readFile(logFile, 'utf8').catch(() => ''))
    .split('\n')
    .filter((line) => line.startsWith(`file:${folder}${path.sep}`))
    .map((line) => line.slice('file:'.length));

const job = async (jobId: string): Promise<JobBody> => (await http<JobBody>(stack.baseUrl, 'GET', `/api/v1/jobs/${jobId}`)).body;

it('reads pause_requested while its files in flight stop, then paused with nothing open and nothing opened after', async () => {
  const folder = path.join(work, 'media');
  const files = await buildLibrary(folder, 60, clips);
  const start = await http<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: folder });
  const jobId = start.body.job_id;
  await waitFor(() => job(jobId), (j) => j.counts.probed >= 4, 120_000, 50);

  const pause = await http<JobBody>(stack.baseUrl, 'POST', `/api/v1/jobs/${jobId}/pause`);
  expect(pause.status).toBe(202);
  expect(pause.body.status === 'paused' || (pause.body.status === 'running' && pause.body.pause_requested === true)).toBe(true);

  const paused = await waitFor(() => job(jobId), (j) => j.status === 'paused', 60_000, 50);
  expect(paused.pause_requested).toBe(false);
  const atPaused = (await opened(folder)).length;
  // The batches in flight held many files not begun: they were stopped, not worked through.
  expect(atPaused).toBeLessThan(files.length);

  // Paused means no batch of the scan is left to open anything.
  const description = await stack.client.workflow.getHandle(jobId).describe();
  expect(description.raw.pendingActivities ?? []).toHaveLength(0);
  expect((await opened(folder)).length).toBe(atPaused);

  const resume = await http<JobBody>(stack.baseUrl, 'POST', `/api/v1/jobs/${jobId}/resume`);
  expect(resume.status).toBe(202);
  const end = await waitFor(() => job(jobId), (j) => TERMINAL.includes(j.status), 240_000, 200);
  expect(end.status).toBe('completed');
  expect(end.result?.errors).toEqual([]);
  const videos = await stack.library.searchVideos(folder + path.sep, 1000, 0);
  expect(videos.total).toBe(files.length);
  await recordHistory(stack.client, jobId, 'stoppable-paused');
});
