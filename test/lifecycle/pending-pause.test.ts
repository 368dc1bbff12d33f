/**
 * A job started through the API that no worker has taken yet can be paused:
 * the pause is held by the root's guard (a signal, recorded without a
 * worker), and the scan starts paused when a worker comes; resumed, it runs
 * to its end.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { guardIdOf, ScanService } from '../../src/scans';
import { createScanWorker } from '../../src/worker';
import { recordRun } from '../support/histories';
import { buildLibrary, ensureTestMedia } from '../support/media';
import { startStack, waitFor, workflowBundle, type Stack } from '../support/stack';

jest.setTimeout(240_000);

let work: string;
let stack: Stack;

beforeAll(async () => {
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'pending-pause-')));
  stack = await startStack({ THUMBNAIL_DIR: path.join(work, 'thumbnails') });
});

afterAll(async () => {
  await stack?.close();
  await fs.rm(work, { recursive: true, force: true });
});

it('pauses a pending job: its scan starts paused once a worker takes it', async () => {
  const clips = await ensureTestMedia();
  const root = path.join(work, 'library');
  await buildLibrary(path.join(root, 'shows'), 2, clips);
  // No worker polls this queue until the test starts one: the job stays pending.
  const taskQueue = `pending-pause-${process.pid}-${Date.now()}`;
  const scans = new ScanService(stack.client, stack.config, stack.library, taskQueue);
  const { scanId: jobId } = await scans.start({ root, recursive: true, force: false });
  expect((await scans.get(jobId)).status).toBe('pending');

  const paused = await scans.pause(jobId);
  expect(paused.status).toBe('pending');
  expect(paused.pause_requested).toBe(true);

  const native = await NativeConnection.connect({ address: stack.config.temporal.address });
  let worker: Worker | undefined;
  let running: Promise<void> | undefined;
  try {
    worker = await createScanWorker({ config: stack.config, connection: native, library: stack.library, prober: stack.prober, taskQueue, workflowBundle: await workflowBundle() });
    running = worker.run();
    // Started paused: it probes nothing until resumed.
    const held = await waitFor(() => scans.get(jobId), (job) => job.status === 'paused', 120_000, 200);
    expect(held.counts.probed).toBe(0);
    await scans.resume(jobId);
    const done = await waitFor(() => scans.get(jobId), (job) => job.status === 'completed', 180_000, 200);
    expect(done.counts.new).toBe(2);
    // For the replay test: a guard that held a pause of its pending job.
    const guard = await waitFor(() => stack.client.workflow.getHandle(guardIdOf(root)).describe(), (d) => d.status.name !== 'RUNNING', 120_000, 200);
    await recordRun(stack.client, guard.workflowId, guard.runId, 'guard-v3-paused-pending');
  } finally {
    if (worker?.getState() === 'RUNNING') worker.shutdown();
    await running?.catch(() => undefined);
    await native.close();
  }
});
