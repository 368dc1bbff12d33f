/**
 * A scan keeps everything its request gave: a retry of a scan runs with the
 * scan's exclusions, max_parallel_files and thumbnails, and a start on a
 * schedule's behalf (its run found the root's previous scan just closing)
 * with the schedule's.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { defaultPayloadConverter } from '@temporalio/common';
import type { ScanRootGuardInput } from '../../src/model/types';
import { guardIdOf, ScanService } from '../../src/scans';
import { http, startStack, waitFor, type Stack } from '../support/stack';

jest.setTimeout(180_000);

let work: string;
let stack: Stack;

beforeAll(async () => {
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'kept-request-')));
  stack = await startStack({ THUMBNAIL_DIR: path.join(work, 'thumbnails') });
});

afterAll(async () => {
  await stack?.close();
  await fs.rm(work, { recursive: true, force: true });
});

/** The scan a root's guard was started to run, from the guard's first event. */
async function guardInput(root: string): Promise<ScanRootGuardInput> {
  const history = await stack.client.workflow.getHandle(guardIdOf(root)).fetchHistory();
  const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  if (!payload) throw new Error('the guard has no input');
  return defaultPayloadConverter.fromPayload(payload);
}

it('a retry of a scan that never started keeps its exclusions, max_parallel_files and thumbnails', async () => {
  const folder = path.join(work, 'retried');
  await fs.mkdir(folder, { recursive: true });
  // No worker polls this queue: the job stays pending until cancelled, and its retry is started afresh.
  const idle = new ScanService(stack.client, stack.config, stack.library, `kept-request-idle-${process.pid}-${Date.now()}`);
  const first = await idle.start({ root: folder, recursive: true, force: false, exclude: ['samples/**'], maxParallelFiles: 3, thumbnails: false });
  await idle.cancel(first.scanId);
  await waitFor(() => idle.get(first.scanId), (job) => job.status === 'cancelled', 60_000, 100);
  const retry = await idle.retry(first.scanId);
  expect(retry.created).toBe(true);
  const input = await guardInput(folder);
  expect(input.scanId).toBe(retry.scanId);
  expect(input.scan.exclude).toContain('samples/**');
  expect(input.scan).toMatchObject({ maxParallelFiles: 3, thumbnails: false });
  await idle.cancel(retry.scanId);
});

it('a retry through the API of a scan that ran keeps its max_parallel_files and thumbnails', async () => {
  const folder = path.join(work, 'ran');
  await fs.mkdir(folder, { recursive: true });
  // Not a video: the scan completes with a file error, which a retry probes again.
  await fs.writeFile(path.join(folder, 'broken.mp4'), 'not a video');
  const started = await http<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: folder, max_parallel_files: 2, thumbnails: false });
  expect(started.status).toBe(202);
  const ended = await waitFor(
    async () => (await http<{ status: string; counts: { failed: number } }>(stack.baseUrl, 'GET', `/api/v1/jobs/${started.body.job_id}`)).body,
    (job) => job.status === 'completed',
    90_000,
    100,
  );
  expect(ended.counts.failed).toBe(1);
  const retry = await http<{ job_id: string }>(stack.baseUrl, 'POST', `/api/v1/jobs/${started.body.job_id}/retry`);
  expect(retry.status).toBe(202);
  const input = await guardInput(folder);
  expect(input.scanId).toBe(retry.body.job_id);
  expect(input.scan).toMatchObject({ retryOf: started.body.job_id, maxParallelFiles: 2, thumbnails: false });
  await waitFor(
    async () => (await http<{ status: string }>(stack.baseUrl, 'GET', `/api/v1/jobs/${retry.body.job_id}`)).body,
    (job) => job.status === 'completed',
    90_000,
    100,
  );
});

it('a start on behalf of a schedule keeps the schedule\'s exclusions', async () => {
  const folder = path.join(work, 'scheduled');
  await fs.mkdir(folder, { recursive: true });
  const created = await http<{ schedule_id: string }>(stack.baseUrl, 'POST', '/api/v1/schedules', { path: folder, every: '24h', exclude: ['extras/**'] });
  expect(created.status).toBe(201);
  const request = await stack.scans.schedules().scanRequestOf(created.body.schedule_id);
  expect(request).toMatchObject({ root: folder, recursive: true, force: false });
  expect(request.keptExclude).toContain('extras/**');
  const idle = new ScanService(stack.client, stack.config, stack.library, `kept-request-idle-${process.pid}-${Date.now()}`);
  const started = await idle.start(request);
  expect((await guardInput(folder)).scan.exclude).toContain('extras/**');
  await idle.cancel(started.scanId);
  await http(stack.baseUrl, 'DELETE', `/api/v1/schedules/${created.body.schedule_id}`);
});
