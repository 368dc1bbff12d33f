/**
 * Records histories of the per-root guard workflow (`scanRootGuard`) into
 * test/replay/histories, for the replay test (test/replay/replay.test.ts),
 * which checks the recorded files against the workflow code:
 *
 *   npm run record:guard-histories
 *
 * It runs what the tests run (the jest global setup's Temporal dev server and
 * workflow bundle, a stack of test/support/stack.ts) and writes
 * `guard-v2-completed.binpb` and `guard-v2-cancelled.binpb`. `guard-v1-*` were
 * recorded at commit 06c480c, with the guard that chose the scan id and
 * answered claims through update-with-start (its `guard-v1-claimed-twice`
 * came from a test, since removed, that claimed a root twice while its scan
 * ran); `guard-v2-*` with the guard given its scan id by the API, which a
 * second start no longer reaches.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ffprobe from '@ffprobe-installer/ffprobe';
import { guardIdOf } from '../src/scans';
import globalSetup from '../test/support/global-setup';
import globalTeardown from '../test/support/global-teardown';
import { HISTORIES_DIR, recordRun } from '../test/support/histories';
import { buildLibrary, ensureTestMedia } from '../test/support/media';
import { startStack, waitFor, writeProberWrapper, type Stack } from '../test/support/stack';

async function guardRunEnded(stack: Stack, root: string): Promise<string> {
  const description = await waitFor(
    () => stack.client.workflow.getHandle(guardIdOf(root)).describe(),
    (d) => d.status.name !== 'RUNNING',
    90_000,
  );
  return description.runId;
}

async function main(): Promise<void> {
  // recordRun writes only when asked to: this script is that request.
  process.env.RECORD_HISTORIES = '1';
  await globalSetup();
  const work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'record-guard-')));
  let stack: Stack | undefined;
  try {
    const clips = await ensureTestMedia();
    const wrapper = await writeProberWrapper(work, { realPath: ffprobe.path, delayMs: 150 });
    stack = await startStack({ FFPROBE_PATH: wrapper.path, PROBE_CONCURRENCY: '2', SCAN_BATCH_SIZE: '5' });

    // A guard whose scan completed.
    const completed = path.join(work, 'completed');
    await buildLibrary(completed, 6, clips);
    const first = await stack.scans.start({ root: completed, recursive: true, force: false });
    if (!first.created) throw new Error(`a scan of ${completed} was already running`);
    await recordRun(stack.client, guardIdOf(completed), await guardRunEnded(stack, completed), 'guard-v2-completed');

    // A guard whose scan was cancelled while it ran.
    const cancelled = path.join(work, 'cancelled');
    await buildLibrary(cancelled, 30, clips);
    const second = await stack.scans.start({ root: cancelled, recursive: true, force: false });
    const scans = stack.scans;
    await waitFor(() => scans.get(second.scanId), (job) => job.status === 'running');
    await scans.cancel(second.scanId);
    await recordRun(stack.client, guardIdOf(cancelled), await guardRunEnded(stack, cancelled), 'guard-v2-cancelled');
    process.stdout.write(`recorded guard-v2-completed and guard-v2-cancelled in ${HISTORIES_DIR}\n`);
  } finally {
    await stack?.close();
    await globalTeardown();
    await fs.rm(work, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
