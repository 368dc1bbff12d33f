/**
 * A scheduled run that finds every slot of MAX_CONCURRENT_SCANS taken waits
 * for one as a pending job: "run now" answers 202 with that job, the jobs
 * list shows it, GET reads it, and it can be paused (its scan then starts
 * paused), resumed and cancelled (its run ends and never starts a scan)
 * while it waits.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { JobBody } from '../../src/scans';
import { guardIdOf } from '../../src/scans';
import { recordRun } from '../support/histories';
import { buildLibrary, ensureTestMedia } from '../support/media';
import { holdingProber, http, startStack, waitFor, type Stack } from '../support/stack';

jest.setTimeout(300_000);

let work: string;
let stack: Stack;

beforeAll(async () => {
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'scheduled-waiting-job-')));
  stack = await startStack({ MAX_CONCURRENT_SCANS: '1', THUMBNAIL_DIR: path.join(work, 'thumbnails') }, { wrapProber: holdingProber });
});

afterAll(async () => {
  await stack?.close();
  await fs.rm(work, { recursive: true, force: true });
});

/** Whether the root's guard has ever run. */
async function guardExists(root: string): Promise<boolean> {
  try {
    await stack.client.workflow.getHandle(guardIdOf(root)).describe();
    return true;
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return false;
    throw error;
  }
}

const job = async (id: string): Promise<JobBody> => {
  const read = await http<JobBody>(stack.baseUrl, 'GET', `/api/v1/jobs/${id}`);
  expect(read.status).toBe(200);
  return read.body;
};

/** The ended scheduled run of a job (for the replay test's recorded histories). */
async function endedRunOf(jobId: string): Promise<{ workflowId: string; runId: string }> {
  return waitFor(
    async () => {
      for await (const run of stack.client.workflow.list({ query: `WorkflowType = 'scheduledScan' AND TaskQueue = '${stack.taskQueue}' AND ExecutionStatus != 'Running'` })) {
        const memo = (await stack.client.workflow.getHandle(run.workflowId, run.runId).describe()).memo as { scanId?: string };
        if (memo?.scanId === jobId) return { workflowId: run.workflowId, runId: run.runId };
      }
      return null;
    },
    (run): run is { workflowId: string; runId: string } => run !== null,
    120_000,
    300,
  ) as Promise<{ workflowId: string; runId: string }>;
}

const listed = async (): Promise<JobBody[]> => (await http<{ jobs: JobBody[] }>(stack.baseUrl, 'GET', '/api/v1/jobs?limit=50')).body.jobs;

async function schedule(root: string): Promise<string> {
  const created = await http<{ schedule_id: string }>(stack.baseUrl, 'POST', '/api/v1/schedules', { path: root, every: '24h' });
  expect(created.status).toBe(201);
  return created.body.schedule_id;
}

it('a scheduled run waiting for a slot is a pending job that can be read, listed, paused, resumed and cancelled', async () => {
  const clips = await ensureTestMedia();
  // The one slot, held by a scan through the API until it is cancelled.
  const busy = path.join(work, 'busy');
  const files = await buildLibrary(path.join(busy, 'shows'), 1, clips);
  await fs.mkdir(path.join(busy, 'held'), { recursive: true });
  await fs.copyFile(files[0] as string, path.join(busy, 'held', 'held.mp4'));
  const started = await http<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: busy });
  expect(started.status).toBe(202);
  const busyJob = started.body.job_id;
  await waitFor(() => job(busyJob), (body) => body.status === 'running', 120_000, 200);

  // Two schedules run now: both wait for the slot, each as a pending job the trigger answers with.
  const waitingRoot = path.join(work, 'waiting');
  await buildLibrary(path.join(waitingRoot, 'shows'), 2, clips);
  const droppedRoot = path.join(work, 'dropped');
  await buildLibrary(path.join(droppedRoot, 'shows'), 1, clips);
  const waitingSchedule = await schedule(waitingRoot);
  const droppedSchedule = await schedule(droppedRoot);
  const triggered = await http<{ job_id: string }>(stack.baseUrl, 'POST', `/api/v1/schedules/${waitingSchedule}/trigger`);
  expect(triggered.status).toBe(202);
  const waitingJob = triggered.body.job_id;
  const triggeredDropped = await http<{ job_id: string }>(stack.baseUrl, 'POST', `/api/v1/schedules/${droppedSchedule}/trigger`);
  expect(triggeredDropped.status).toBe(202);
  const droppedJob = triggeredDropped.body.job_id;
  expect(new Set([busyJob, waitingJob, droppedJob]).size).toBe(3);

  // Read and listed as pending, with the schedule's root; no guard, so no slot taken.
  const read = await job(waitingJob);
  expect(read.status).toBe('pending');
  expect(read.path).toBe(waitingRoot);
  await waitFor(listed, (jobs) => [waitingJob, droppedJob].every((id) => jobs.some((j) => j.job_id === id && j.status === 'pending')), 60_000, 200);
  expect(await guardExists(waitingRoot)).toBe(false);

  // Paused while it waits: the pause is held, and a second pause is refused as for a running scan.
  const paused = await http<JobBody>(stack.baseUrl, 'POST', `/api/v1/jobs/${waitingJob}/pause`);
  expect(paused.status).toBe(202);
  expect(paused.body.pause_requested).toBe(true);
  await waitFor(() => job(waitingJob), (body) => body.status === 'pending' && body.pause_requested, 60_000, 200);
  expect((await http<{ code: string }>(stack.baseUrl, 'POST', `/api/v1/jobs/${waitingJob}/pause`)).body.code).toBe('ALREADY_PAUSED');

  // Cancelled while it waits: it reads cancelled, and its run never starts a scan.
  const cancelled = await http<JobBody>(stack.baseUrl, 'POST', `/api/v1/jobs/${droppedJob}/cancel`);
  expect(cancelled.status).toBe(202);
  await waitFor(() => job(droppedJob), (body) => body.status === 'cancelled', 60_000, 200);

  // The slot frees: the paused job's scan starts, paused before it probes anything.
  await http(stack.baseUrl, 'POST', `/api/v1/jobs/${busyJob}/cancel`);
  await waitFor(() => job(waitingJob), (body) => body.status === 'paused', 120_000, 200);
  expect((await job(waitingJob)).counts.probed).toBe(0);
  expect(await guardExists(droppedRoot)).toBe(false);

  const resumed = await http<JobBody>(stack.baseUrl, 'POST', `/api/v1/jobs/${waitingJob}/resume`);
  expect(resumed.status).toBe(202);
  const done = await waitFor(() => job(waitingJob), (body) => body.status === 'completed', 180_000, 200);
  expect(done.counts.new).toBe(2);
  expect(await guardExists(droppedRoot)).toBe(false);
  expect((await job(droppedJob)).status).toBe('cancelled');

  const waited = await endedRunOf(waitingJob);
  await recordRun(stack.client, waited.workflowId, waited.runId, 'scheduled-waited-paused');
  const dropped = await endedRunOf(droppedJob);
  await recordRun(stack.client, dropped.workflowId, dropped.runId, 'scheduled-waiting-cancelled');

  for (const id of [waitingSchedule, droppedSchedule]) await http(stack.baseUrl, 'DELETE', `/api/v1/schedules/${id}`);
});
