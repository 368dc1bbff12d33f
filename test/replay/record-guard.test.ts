/**
 * Records histories of the per-root guard workflow (`scanRootGuard`) for the
 * replay test. Runs only with RECORD_HISTORIES=1: the recorded files, not
 * this file, are what the replay test checks. `guard-v1-*` were recorded
 * with the guard that answered claims through update-with-start.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { recordingHistories, recordRun } from '../support/histories';
import { buildLibrary, ensureTestMedia, type TestClip } from '../support/media';
import { startStack, waitFor, writeProberWrapper, type Stack } from '../support/stack';

const guardIdOf = (root: string): string => `root-${createHash('sha256').update(root).digest('hex').slice(0, 32)}`;

(recordingHistories() ? describe : describe.skip)('recording guard histories', () => {
  let clips: TestClip[];
  let work: string;
  let stack: Stack;

  beforeAll(async () => {
    clips = await ensureTestMedia();
    work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'record-guard-')));
    const realPath = (await import('../../src/config')).loadConfig({}).ffprobePath;
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
    await recordRun(stack.client, guardIdOf(folder), await guardRunEnded(folder), `guard-v1-completed`);
  });

  it('records a guard that answered a second claim while its scan ran', async () => {
    const folder = path.join(work, 'claimed-twice');
    await buildLibrary(folder, 20, clips);
    const first = await stack.scans.start({ root: folder, recursive: true, force: false });
    const second = await stack.scans.start({ root: folder, recursive: true, force: false });
    expect(second.jobId).toBe(first.jobId);
    expect(second.created).toBe(false);
    await recordRun(stack.client, guardIdOf(folder), await guardRunEnded(folder), `guard-v1-claimed-twice`);
  });

  it('records a guard whose scan was cancelled', async () => {
    const folder = path.join(work, 'cancelled');
    await buildLibrary(folder, 30, clips);
    const claim = await stack.scans.start({ root: folder, recursive: true, force: false });
    await waitFor(() => stack.scans.get(claim.jobId), (job) => job.status === 'running');
    await stack.scans.cancel(claim.jobId);
    await recordRun(stack.client, guardIdOf(folder), await guardRunEnded(folder), `guard-v1-cancelled`);
  });
});
