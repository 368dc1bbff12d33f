/**
 * A job the jobs list shows can be read and cancelled from the moment it
 * exists, whoever started it. A scheduled run starts the root's guard itself
 * (src/workflows/scheduled-scan.ts), with a scan id of its own choosing the
 * library has never seen; until a worker starts the scan, that guard is the
 * job. Here the guard is started exactly as a scheduled run starts it, on a
 * task queue no worker polls, so the job stays pending for as long as the
 * test needs.
 */
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MAX_BATCHES_PER_RUN, type ScanMemo, type ScanRootGuardInput, type ScanRootGuardMemo } from '../../src/model/types';
import { guardIdOf, ScanService } from '../../src/scans';
import { GUARD_WORKFLOW_TYPE, scanRootSearchAttribute } from '../../src/workflows/definitions';
import { startStack, waitFor, type Stack } from '../support/stack';

jest.setTimeout(180_000);

let work: string;
let stack: Stack;

beforeAll(async () => {
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'scheduled-pending-')));
  stack = await startStack({ THUMBNAIL_DIR: path.join(work, 'thumbnails') });
});

afterAll(async () => {
  await stack?.close();
  await fs.rm(work, { recursive: true, force: true });
});

it('reads and cancels a pending job whose guard a scheduled run started', async () => {
  const root = path.join(work, 'media');
  await fs.mkdir(root, { recursive: true });
  const taskQueue = `scheduled-pending-${process.pid}-${Date.now()}`;
  const scans = new ScanService(stack.client, stack.config, stack.library, taskQueue);
  const scanId = `scan-${randomUUID()}`;
  const memo: ScanMemo = { path: root, recursive: true, retryOf: null, createdAt: new Date().toISOString() };
  const guardMemo: ScanRootGuardMemo = { ...memo, scanId, force: false };
  const input: ScanRootGuardInput = {
    scanId,
    scan: {
      root, recursive: true, force: false, extensions: [], exclude: [], settleSeconds: 0, retryOf: null,
      batchSize: 10, window: 2, probeTimeoutMs: 30_000, scanTimeoutMs: null, maxBatchesPerRun: MAX_BATCHES_PER_RUN,
    },
    memo,
    executionTimeoutMs: null,
  };
  await stack.client.workflow.start(GUARD_WORKFLOW_TYPE, {
    workflowId: guardIdOf(root),
    taskQueue,
    args: [input],
    memo: { ...guardMemo },
    typedSearchAttributes: [{ key: scanRootSearchAttribute, value: root }],
  });

  // Listed as pending...
  await waitFor(() => scans.list({ limit: 10 }), (page) => page.jobs.some((job) => job.job_id === scanId && job.status === 'pending'), 60_000, 100);
  // ...and so readable,
  const read = await scans.get(scanId);
  expect(read).toMatchObject({ job_id: scanId, status: 'pending', path: root });
  // and cancellable: it ends at once, freeing its root.
  const cancelled = await scans.cancel(scanId);
  expect(cancelled.cancel_requested).toBe(true);
  await waitFor(() => scans.get(scanId), (job) => job.status === 'cancelled', 60_000, 100);
  const guard = await stack.client.workflow.getHandle(guardIdOf(root)).describe();
  expect(guard.status.name).not.toBe('RUNNING');
});
