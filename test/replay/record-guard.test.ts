/**
 * Records histories of the per-root guard workflow (`scanRootGuard`) for the
 * replay test. Runs only with RECORD_HISTORIES=1: the recorded files, not
 * this file, are what the replay test checks. `guard-v1-*` were recorded by
 * this file at commit 06c480c, with the guard that chose the scan id and
 * answered claims through update-with-start (its `guard-v1-claimed-twice`
 * came from a test, since removed, that claimed a root twice while its scan
 * ran); `guard-v2-*` with the guard given its scan id by the API, which a
 * second start no longer reaches.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { guardIdOf } from '../../src/temporal/scans';
import { recordingHistories, recordRun } from '../support/histories';
import { buildLibrary, ensureTestMedia, type TestClip } from '../support/media';
import { startStack, waitFor, writeProberWrapper, type Stack } from '../support/stack';


(recordingHistories() ? describe : describe.skip)('recording guard histories', () => {
  let clips: TestClip[];
  let work: string;
  let stack: Stack;

  beforeAll(async () => {
    clips = await ensureTestMedia();
    work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'record-guard-')));
    const realPath = (require('@ffprobe-installer/ffprobe') as { path: string }).path;
    const wrapper = await writeProberWrapper(work, { realPath, delayMs: 150 });
    stack = await startStack({ FFPROBE_PATH: wrapper.path, PROBE_CONCURRENCY: '2', SCAN_BATCH_SIZE: '5' });
  });

  afterAll(async () => {
    await stack?.close();
    await fs.rm(work, { recursive: true, force: true });
  });

  async function guardRunEnded(root: string): Promise<string> {
    const guardId = guardIdOf(root);
    const description = await waitFor(
      () => stack.client.workflow.getHandle(guardId).describe(),
      (d) => d.status.name !== 'RUNNING',
      90_000,
    );
    return description.runId;
  }

  it('records a guard whose scan completed', async () => {
    const folder = path.join(work, 'completed');
    await buildLibrary(folder, 6, clips);
    const claim = await stack.scans.start({ root: folder, recursive: true, force: false });
    expect(claim.created).toBe(true);
    await recordRun(stack.client, guardIdOf(folder), await guardRunEnded(folder), `guard-v2-completed`);
  });

  it('records a guard whose scan was cancelled', async () => {
    const folder = path.join(work, 'cancelled');
    await buildLibrary(folder, 30, clips);
    const claim = await stack.scans.start({ root: folder, recursive: true, force: false });
    await waitFor(() => stack.scans.get(claim.jobId), (job) => job.status === 'running');
    await stack.scans.cancel(claim.jobId);
    await recordRun(stack.client, guardIdOf(folder), await guardRunEnded(folder), `guard-v2-cancelled`);
  });
});
