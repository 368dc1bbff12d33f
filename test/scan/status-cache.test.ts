/**
 * Status reads of one job share a short-lived answer (ScanService.get), and a
 * cancel through the service drops it: the job never reads as it was before
 * the cancel once Temporal has ended it.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { JobBody } from '../../src/temporal/scans';
import { buildLibrary, ensureTestMedia } from '../support/media';
import { holdingProber, http, startStack, waitFor, type Stack } from '../support/stack';

let stack: Stack;
let work: string;

const getJob = async (jobId: string): Promise<JobBody> => (await http<JobBody>(stack.baseUrl, 'GET', `/api/v1/jobs/${jobId}`)).body;

beforeAll(async () => {
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'status-cache-')));
  stack = await startStack({ SCAN_BATCH_SIZE: '5', PROBE_CONCURRENCY: '2' }, { wrapProber: holdingProber });
});

afterAll(async () => {
  await stack?.close();
  await fs.rm(work, { recursive: true, force: true });
});

it('reads a job cancelled through the API as cancelled as soon as Temporal has ended it', async () => {
  const root = path.join(work, 'held');
  await buildLibrary(root, 4, await ensureTestMedia());
  const started = await http<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: root });
  const jobId = started.body.job_id;
  // Probing is held until the cancel: the job runs as long as the test needs.
  const running = await waitFor(() => getJob(jobId), (job) => job.status === 'running' && job.phase === 'probing');
  expect(running.cancel_requested).toBe(false);
  // Read right before the cancel: this answer must not outlive it.
  expect((await getJob(jobId)).status).toBe('running');
  const cancel = await http<JobBody>(stack.baseUrl, 'POST', `/api/v1/jobs/${jobId}/cancel`);
  expect(cancel.status).toBe(202);
  expect(cancel.body.cancel_requested).toBe(true);
  // Only Temporal is asked meanwhile; the first read through the API after it says so must agree.
  await waitFor(
    () => stack.client.workflow.getHandle(jobId).describe(),
    (description) => description.status.name === 'CANCELLED',
    60_000,
    10,
  );
  const after = await getJob(jobId);
  expect(after).toMatchObject({ status: 'cancelled', cancel_requested: true, phase: 'done' });
});

it('answers reads of an unknown job with 404 every time, never from an earlier answer', async () => {
  const first = await http(stack.baseUrl, 'GET', '/api/v1/jobs/scan-does-not-exist');
  const second = await http(stack.baseUrl, 'GET', '/api/v1/jobs/scan-does-not-exist');
  expect([first.status, second.status]).toEqual([404, 404]);
});
