/**
 * "Run now" on a schedule when the root's previous scan has just ended and
 * its guard has not closed yet (closing takes a worker): the schedule's own
 * run frees the root and starts its scan, with everything the schedule's
 * request gave (exclusions included), instead of starting nothing.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ScanMemo } from '../../src/model/types';
import type { JobBody } from '../../src/scans';
import { guardIdOf, ScanService } from '../../src/scans';
import { GUARD_WORKFLOW_TYPE, SCAN_WORKFLOW_TYPE } from '../../src/workflows/definitions';
import { recordRun } from '../support/histories';
import { buildLibrary, ensureTestMedia } from '../support/media';
import { http, startStack, waitFor, type Stack } from '../support/stack';

jest.setTimeout(240_000);

let work: string;
let stack: Stack;

beforeAll(async () => {
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'scheduled-closing-guard-')));
  stack = await startStack({ THUMBNAIL_DIR: path.join(work, 'thumbnails') });
});

afterAll(async () => {
  await stack?.close();
  await fs.rm(work, { recursive: true, force: true });
});

it('a schedule run now while the root\'s guard is closing starts its own scan, with the schedule\'s exclusions', async () => {
  const clips = await ensureTestMedia();
  const root = path.join(work, 'library');
  await buildLibrary(path.join(root, 'shows'), 2, clips);
  await buildLibrary(path.join(root, 'extras'), 1, clips);

  // The root's state right after its scan ended: the scan closed, its guard
  // still running (on a queue no worker polls, so it stays so).
  const idleQueue = `closing-guard-idle-${process.pid}-${Date.now()}`;
  const endedScan = `scan-${'0'.repeat(8)}-0000-4000-8000-${Date.now().toString(16).padStart(12, '0')}`;
  await stack.client.workflow.start(SCAN_WORKFLOW_TYPE, { workflowId: endedScan, taskQueue: idleQueue, args: [] });
  await stack.client.workflow.getHandle(endedScan).terminate('the previous scan of the root, ended');
  const memo: ScanMemo & { scanId: string; force: boolean } = { path: root, recursive: true, retryOf: null, createdAt: new Date().toISOString(), scanId: endedScan, force: false };
  const closing = await stack.client.workflow.start(GUARD_WORKFLOW_TYPE, { workflowId: guardIdOf(root), taskQueue: idleQueue, args: [], memo: { ...memo } });

  const created = await http<{ schedule_id: string }>(stack.baseUrl, 'POST', '/api/v1/schedules', { path: root, every: '24h', exclude: ['extras/**'] });
  expect(created.status).toBe(201);
  const scheduleId = created.body.schedule_id;
  const triggered = await http<{ job_id: string }>(stack.baseUrl, 'POST', `/api/v1/schedules/${scheduleId}/trigger`);
  expect(triggered.status).toBe(202);
  const jobId = triggered.body.job_id;

  // The closing guard was ended, and the job is the scan the schedule's run started.
  expect((await stack.client.workflow.getHandle(guardIdOf(root), closing.firstExecutionRunId).describe()).status.name).toBe('TERMINATED');
  const schedule = await http<{ last_job_id: string | null }>(stack.baseUrl, 'GET', `/api/v1/schedules/${scheduleId}`);
  expect(schedule.body.last_job_id).toBe(jobId);

  // With the schedule's exclusions: the extras are never recorded.
  const done = await waitFor(
    async () => (await http<JobBody>(stack.baseUrl, 'GET', `/api/v1/jobs/${jobId}`)).body,
    (job) => job.status === 'completed',
    180_000,
    200,
  );
  expect(done.counts.new).toBe(2);
  const scanMemo = (await stack.client.workflow.getHandle(jobId).describe()).memo as Partial<ScanMemo>;
  expect(scanMemo.exclude).toContain('extras/**');
  const run = await waitFor(
    async () => {
      for await (const r of stack.client.workflow.list({ query: `WorkflowType = 'scheduledScan' AND TaskQueue = '${stack.taskQueue}' AND ExecutionStatus != 'Running'` })) {
        if (r.workflowId.startsWith(scheduleId)) return r;
      }
      return null;
    },
    (r) => r !== null,
    120_000,
    300,
  );
  if (run !== null) await recordRun(stack.client, run.workflowId, run.runId, 'scheduled-closing-guard');

  await http(stack.baseUrl, 'DELETE', `/api/v1/schedules/${scheduleId}`);
});

it('a schedule run now while a pending scan holds the root answers with that scan', async () => {
  const root = path.join(work, 'held');
  await fs.mkdir(root, { recursive: true });
  // Pending for as long as the test needs: no worker polls its queue.
  const idle = new ScanService(stack.client, stack.config, stack.library, `closing-guard-held-${process.pid}-${Date.now()}`);
  const holder = await idle.start({ root, recursive: true, force: false });
  const created = await http<{ schedule_id: string }>(stack.baseUrl, 'POST', '/api/v1/schedules', { path: root, every: '24h' });
  expect(created.status).toBe(201);
  const triggered = await http<{ job_id: string }>(stack.baseUrl, 'POST', `/api/v1/schedules/${created.body.schedule_id}/trigger`);
  expect(triggered.status).toBe(202);
  expect(triggered.body.job_id).toBe(holder.scanId);
  await idle.cancel(holder.scanId);
  await http(stack.baseUrl, 'DELETE', `/api/v1/schedules/${created.body.schedule_id}`);
});
