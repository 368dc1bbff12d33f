/**
 * Status reads of one job share a short-lived answer (ScanService.get): reads
 * that arrive together reach Temporal once (counted at the client's workflow
 * service). A cancel through the service drops the answer: the job never
 * reads as it was before the cancel once Temporal has ended it.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { JobBody } from '../../src/scans';
import { buildLibrary, ensureTestMedia } from '../support/media';
import { holdingProber, http, startStack, temporalCallsOf, waitFor, type Stack } from '../support/stack';

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

it('reaches Temporal once for twenty reads of one job that arrive together', async () => {
  const root = path.join(work, 'shared', 'held');
  await buildLibrary(root, 4, await ensureTestMedia());
  const started = await http<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: root });
  const jobId = started.body.job_id;
  await waitFor(() => getJob(jobId), (job) => job.status === 'running' && job.phase === 'probing');
  const before = temporalCallsOf(stack, 'describeWorkflowExecution', jobId);
  // Twenty reads issued before any answer is in: they share one describe (or
  // none, should an answer from the wait above still be fresh); without the
  // shared answer each would ask Temporal.
  const reads = await Promise.all(Array.from({ length: 20 }, () => stack.scans.get(jobId)));
  expect(reads.map((job) => job.job_id)).toEqual(Array(20).fill(jobId));
  expect(temporalCallsOf(stack, 'describeWorkflowExecution', jobId) - before).toBeLessThanOrEqual(1);
  await http(stack.baseUrl, 'POST', `/api/v1/jobs/${jobId}/cancel`);
  await waitFor(() => getJob(jobId), (job) => job.status === 'cancelled');
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
