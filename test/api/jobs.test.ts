/**
 * The jobs list: the library's scans, filtered by status in the query (so a
 * page is never short because rows were dropped after fetching), newest
 * first across pages, running and finished jobs alike, with no call to
 * Temporal per job; and honest about scans that ended without recording it.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { JobBody } from '../../src/scans';
import { buildLibrary, ensureTestMedia, type TestClip } from '../support/media';
import { http, startStack, waitFor, writeProberWrapper, type Stack } from '../support/stack';

const realFfprobe = (require('@ffprobe-installer/ffprobe') as { path: string }).path;
const TERMINAL = ['completed', 'failed', 'cancelled', 'timeout'];

let clips: TestClip[];
let work: string;
let stack: Stack;
/** Job ids by the status each ended (or runs) with. */
const made: Record<'running' | 'failed' | 'timeout' | 'completed', string[]> = { running: [], failed: [], timeout: [], completed: [] };

const getJob = async (jobId: string): Promise<JobBody> => (await http<JobBody>(stack.baseUrl, 'GET', `/api/v1/jobs/${jobId}`)).body;
const endOf = (jobId: string): Promise<JobBody> => waitFor(() => getJob(jobId), (j) => TERMINAL.includes(j.status), 90_000);

/** Every page of a listing, as the API gives it. */
async function allPages(query: string): Promise<JobBody[][]> {
  const pages: JobBody[][] = [];
  let token: string | null = null;
  do {
    const route: string = `/api/v1/jobs?${query}${token ? `&page_token=${encodeURIComponent(token)}` : ''}`;
    const res: { status: number; body: { jobs: JobBody[]; next_page_token: string | null } } = await http(stack.baseUrl, 'GET', route);
    expect(res.status).toBe(200);
    pages.push(res.body.jobs);
    token = res.body.next_page_token;
    expect(pages.length).toBeLessThan(50);
  } while (token !== null);
  return pages;
}

const createdOrder = (jobs: JobBody[]): string[] => jobs.map((j) => j.created_at);
const newestFirst = (values: string[]): string[] => [...values].sort().reverse();

beforeAll(async () => {
  clips = await ensureTestMedia();
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'jobs-')));
  const wrapper = await writeProberWrapper(work, { realPath: realFfprobe, hangOn: 'HANG' });
  stack = await startStack({ FFPROBE_PATH: wrapper.path, PROBE_CONCURRENCY: '2', SCAN_BATCH_SIZE: '5' });

  // The oldest job is still running when the list is read (its prober hangs on one file).
  const hanging = path.join(work, 'hanging');
  await buildLibrary(hanging, 2, clips);
  await fs.copyFile((clips.find((c) => c.hasVideo) as TestClip).file, path.join(hanging, 'HANG.mp4'));
  const running = await stack.scans.start({ root: hanging, recursive: true, force: false });
  await waitFor(() => getJob(running.scanId), (j) => j.status === 'running' && j.phase === 'probing');
  made.running.push(running.scanId);

  // Then, round after round: timed-out scans (a file the prober hangs on,
  // and a limit of 3 s), failed scans (the root is gone by the time a worker
  // looks) and completed scans.
  // Each timed-out scan is created before the failed scan of its round but
  // ends after it, so that finishing order and creation order differ.
  for (let i = 0; i < 5; i += 1) {
    const slow = path.join(work, `slow-${i}`);
    await fs.mkdir(slow);
    await fs.copyFile((clips.find((c) => c.hasVideo) as TestClip).file, path.join(slow, 'HANG.mp4'));
    const late = await stack.scans.start({ root: slow, recursive: true, force: false, scanTimeoutMs: 3000 });
    const gone = await stack.scans.start({ root: path.join(work, `gone-${i}`), recursive: true, force: false });
    expect((await endOf(gone.scanId)).status).toBe('failed');
    expect((await endOf(late.scanId)).status).toBe('timeout');
    made.timeout.push(late.scanId);
    made.failed.push(gone.scanId);
    if (i < 2) {
      const folder = path.join(work, `small-${i}`);
      await buildLibrary(folder, 1, clips);
      const done = await stack.scans.start({ root: folder, recursive: true, force: false });
      expect((await endOf(done.scanId)).status).toBe('completed');
      made.completed.push(done.scanId);
    }
  }
});

afterAll(async () => {
  for (const jobId of made.running) await stack?.scans.cancel(jobId).catch(() => undefined);
  await stack?.close();
  await fs.rm(work, { recursive: true, force: true });
});

describe('GET /api/v1/jobs', () => {
  it.each(['failed', 'timeout'] as const)('returns full pages of %s jobs only, newest first across pages', async (status) => {
    const pages = await allPages(`status=${status}&limit=2`);
    // 5 jobs in pages of 2: 2, 2, 1 (a last page may be empty when the listing could not know it was done).
    const sizes = pages.map((p) => p.length);
    expect(sizes.slice(0, 3)).toEqual([2, 2, 1]);
    expect(sizes.slice(3).every((n) => n === 0)).toBe(true);
    const jobs = pages.flat();
    expect(jobs.every((j) => j.status === status)).toBe(true);
    expect(jobs.map((j) => j.job_id).sort()).toEqual([...made[status]].sort());
    expect(createdOrder(jobs)).toEqual(newestFirst(createdOrder(jobs)));
    expect(jobs.map((j) => j.job_id)).toEqual([...made[status]].reverse());
  });

  it('lists running and finished jobs together newest first across pages, each once', async () => {
    const pages = await allPages('limit=3');
    const jobs = pages.flat();
    const all = [...made.running, ...made.failed, ...made.timeout, ...made.completed];
    expect(jobs.map((j) => j.job_id).sort()).toEqual([...all].sort());
    expect(createdOrder(jobs)).toEqual(newestFirst(createdOrder(jobs)));
    // The running job is the oldest: it comes last, though it has not finished.
    const last = jobs[jobs.length - 1] as JobBody;
    expect(last.job_id).toBe(made.running[0]);
    expect(last.status).toBe('running');
    expect(last.counts.discovered).toBe(3);
    expect(pages.slice(0, -1).every((p) => p.length === 3)).toBe(true);
  });

  it.each([1, 2, 5])('gives the same order in pages of %i as in one page', async (limit) => {
    const whole = (await allPages('limit=100')).flat().map((j) => j.job_id);
    const paged = (await allPages(`limit=${limit}`)).flat().map((j) => j.job_id);
    expect(paged).toEqual(whole);
  });

  it('builds each body as GET /api/v1/jobs/{id} does', async () => {
    const { body } = await http<{ jobs: JobBody[] }>(stack.baseUrl, 'GET', '/api/v1/jobs?limit=50');
    for (const listed of body.jobs) {
      const single = await getJob(listed.job_id);
      if (listed.status === 'running') {
        expect(listed).toMatchObject({ job_id: single.job_id, status: single.status, path: single.path, created_at: single.created_at });
      } else {
        expect(listed).toEqual(single);
      }
    }
  });

  it('answers a running filter with the running job only, and a bad token with 400', async () => {
    const running = await http<{ jobs: JobBody[] }>(stack.baseUrl, 'GET', '/api/v1/jobs?status=running&limit=10');
    expect(running.body.jobs.map((j) => j.job_id)).toEqual(made.running);
    const completed = await http<{ jobs: JobBody[] }>(stack.baseUrl, 'GET', '/api/v1/jobs?status=completed&limit=10');
    expect(completed.body.jobs.map((j) => j.job_id)).toEqual([...made.completed].reverse());
    const bad = await http<{ code: string }>(stack.baseUrl, 'GET', `/api/v1/jobs?page_token=${Buffer.from('{"cursor":7}').toString('base64url')}`);
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('INVALID_REQUEST');
  });

  it('reads a page with no call to Temporal per job, at most one listing of what is live', async () => {
    const before = stack.temporalCalls.length;
    const { body } = await http<{ jobs: JobBody[] }>(stack.baseUrl, 'GET', '/api/v1/jobs?limit=50');
    expect(body.jobs.length).toBeGreaterThan(10);
    const calls = stack.temporalCalls.slice(before).map((call) => call.method);
    expect(calls.filter((method) => method !== 'listWorkflowExecutions')).toEqual([]);
    expect(calls.length).toBeLessThanOrEqual(1);
  });

  it('lists a scan terminated from outside (the Web UI, the CLI) as GET reads it, and records its end', async () => {
    const folder = path.join(work, 'terminated');
    await fs.mkdir(folder);
    await fs.copyFile((clips.find((c) => c.hasVideo) as TestClip).file, path.join(folder, 'HANG.mp4'));
    const { scanId } = await stack.scans.start({ root: folder, recursive: true, force: false });
    await waitFor(() => getJob(scanId), (j) => j.status === 'running' && j.phase === 'probing');
    // Ended with no chance to record it: its library row still says nothing of an end.
    await stack.client.workflow.getHandle(scanId).terminate('ended from outside');
    const ended = await endOf(scanId);
    expect(ended.status).toBe('cancelled');
    expect((await stack.library.getScan(scanId))?.outcome).toBeNull();
    const cancelled = await waitFor(
      async () => (await http<{ jobs: JobBody[] }>(stack.baseUrl, 'GET', '/api/v1/jobs?status=cancelled&limit=10')).body.jobs,
      (jobs) => jobs.some((j) => j.job_id === scanId),
      30_000,
      200,
    );
    expect(cancelled.find((j) => j.job_id === scanId)).toEqual(await getJob(scanId));
    expect((await stack.library.getScan(scanId))?.outcome).toBe('cancelled');
    const all = (await http<{ jobs: JobBody[] }>(stack.baseUrl, 'GET', '/api/v1/jobs?limit=50')).body.jobs;
    expect(all.find((j) => j.job_id === scanId)?.status).toBe('cancelled');
  });
});
