/**
 * MAX_CONCURRENT_SCANS holds for scheduled runs too: schedules firing
 * together start at most the limit's worth of scans; a run that finds every
 * slot taken waits for one (its scan starts when another ends), and a start
 * through the API past the limit still gets 429 TOO_MANY_SCANS.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { JobBody } from '../../src/scans';
import { guardIdOf } from '../../src/scans';
import { buildLibrary, ensureTestMedia } from '../support/media';
import { holdingProber, http, startStack, waitFor, type Stack } from '../support/stack';

jest.setTimeout(240_000);

let work: string;
let stack: Stack;

beforeAll(async () => {
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'scheduled-admission-')));
  stack = await startStack({ MAX_CONCURRENT_SCANS: '2', THUMBNAIL_DIR: path.join(work, 'thumbnails') }, { wrapProber: holdingProber });
});

afterAll(async () => {
  await stack?.close();
  await fs.rm(work, { recursive: true, force: true });
});

/** Whether the root's guard runs: the root is held by a scan running or pending. */
async function held(root: string): Promise<boolean> {
  try {
    return (await stack.client.workflow.getHandle(guardIdOf(root)).describe()).status.name === 'RUNNING';
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return false;
    throw error;
  }
}

/** Scheduled runs of this stack that wait in awaitScanSlot. */
async function runsWaitingForSlot(): Promise<number> {
  let waiting = 0;
  const query = `WorkflowType = 'scheduledScan' AND ExecutionStatus = 'Running' AND TaskQueue = '${stack.taskQueue}'`;
  for await (const run of stack.client.workflow.list({ query })) {
    const description = await stack.client.workflow.getHandle(run.workflowId, run.runId).describe();
    if ((description.raw.pendingActivities ?? []).some((activity) => activity.activityType?.name === 'awaitScanSlot')) waiting += 1;
  }
  return waiting;
}

it('starts at most MAX_CONCURRENT_SCANS scans of schedules fired together; the others wait for a slot', async () => {
  const clips = await ensureTestMedia();
  const roots: string[] = [];
  const schedules: string[] = [];
  for (const name of ['a', 'b', 'c']) {
    const root = path.join(work, name);
    const files = await buildLibrary(path.join(root, 'shows'), 2, clips);
    // Held until cancelled: each scan keeps its slot as long as the test needs.
    await fs.mkdir(path.join(root, 'held'), { recursive: true });
    await fs.copyFile(files[0] as string, path.join(root, 'held', 'held.mp4'));
    roots.push(root);
    const created = await http<{ schedule_id: string }>(stack.baseUrl, 'POST', '/api/v1/schedules', { path: root, every: '24h' });
    expect(created.status).toBe(201);
    schedules.push(created.body.schedule_id);
  }
  await Promise.all(schedules.map((id) => stack.client.schedule.getHandle(id).trigger()));

  // Two roots held, the third run waiting for a slot rather than starting its scan.
  await waitFor(async () => (await Promise.all(roots.map(held))).filter(Boolean).length, (n) => n >= 2, 120_000, 100);
  await waitFor(runsWaitingForSlot, (n) => n === 1, 120_000, 200);
  expect((await Promise.all(roots.map(held))).filter(Boolean)).toHaveLength(2);

  // The API past the limit: 429 for a new root.
  const extra = path.join(work, 'extra');
  await fs.mkdir(extra, { recursive: true });
  const refused = await http<{ code: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: extra });
  expect(refused.status).toBe(429);
  expect(refused.body.code).toBe('TOO_MANY_SCANS');

  // One scan ends: the waiting run takes its slot, and the limit still holds.
  // A running scan (the waiting run is listed too, as a pending job that holds no slot); the list
  // reads a scan just started as pending until its live view, renewed within a second, shows it.
  const running = async (): Promise<JobBody[]> =>
    (await http<{ jobs: JobBody[] }>(stack.baseUrl, 'GET', '/api/v1/jobs?limit=50')).body.jobs.filter((job) => job.status === 'running');
  const first = (await waitFor(running, (jobs) => jobs.length > 0, 30_000, 100))[0] as JobBody;
  await http(stack.baseUrl, 'POST', `/api/v1/jobs/${first.job_id}/cancel`);
  await waitFor(runsWaitingForSlot, (n) => n === 0, 120_000, 200);
  await waitFor(async () => (await Promise.all(roots.map(held))).filter(Boolean).length, (n) => n === 2, 120_000, 100);
  expect(await held(first.path)).toBe(false);

  for (const id of schedules) await http(stack.baseUrl, 'DELETE', `/api/v1/schedules/${id}`);
  const open = (await http<{ jobs: JobBody[] }>(stack.baseUrl, 'GET', '/api/v1/jobs?limit=50')).body.jobs.filter((job) => ['pending', 'running'].includes(job.status));
  for (const job of open) await http(stack.baseUrl, 'POST', `/api/v1/jobs/${job.job_id}/cancel`);
});
