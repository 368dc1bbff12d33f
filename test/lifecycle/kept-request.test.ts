/**
 * A scan keeps everything its request gave: a retry of a scan runs with the
 * scan's exclusions, and a start on a schedule's behalf (its run found the
 * root's previous scan just closing) with the schedule's.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { defaultPayloadConverter } from '@temporalio/common';
import type { ScanRootGuardInput } from '../../src/scan/types';
import { guardIdOf, ScanService } from '../../src/temporal/scans';
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

it('a retry of a scan keeps its exclusions', async () => {
  const folder = path.join(work, 'retried');
  await fs.mkdir(folder, { recursive: true });
  // No worker polls this queue: the job stays pending until cancelled, and its retry is started afresh.
  const idle = new ScanService(stack.client, stack.config, stack.library, `kept-request-idle-${process.pid}-${Date.now()}`);
  const first = await idle.start({ root: folder, recursive: true, force: false, exclude: ['samples/**'] });
  await idle.cancel(first.jobId);
  await waitFor(() => idle.get(first.jobId), (job) => job.status === 'cancelled', 60_000, 100);
  const retry = await idle.retry(first.jobId);
  expect(retry.created).toBe(true);
  const input = await guardInput(folder);
  expect(input.scanId).toBe(retry.jobId);
  expect(input.scan.exclude).toContain('samples/**');
  await idle.cancel(retry.jobId);
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
  await idle.cancel(started.jobId);
  await http(stack.baseUrl, 'DELETE', `/api/v1/schedules/${created.body.schedule_id}`);
});
