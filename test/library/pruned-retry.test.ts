/**
 * What a retry of a scan whose file records were pruned answers, against the
 * real stack (Temporal dev server, worker, ffprobe, SQLite library, API).
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { JobBody } from '../../src/scans';
import { buildLibrary, ensureTestMedia } from '../support/media';
import { http as call, startStack, waitFor, type Stack } from '../support/stack';

let work: string;
let stack: Stack;

beforeAll(async () => {
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'pruned-retry-')));
  stack = await startStack({ PROBE_CONCURRENCY: '2' });
});

afterAll(async () => {
  await stack?.close();
  await fs.rm(work, { recursive: true, force: true });
});

it('refuses to retry a scan whose file records were pruned, and keeps its counts readable', async () => {
  await buildLibrary(work, 3, await ensureTestMedia());
  await fs.writeFile(path.join(work, 'broken.mp4'), 'this is not a video');
  const started = await call<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: work });
  expect(started.status).toBe(202);
  const readJob = async (): Promise<JobBody> => (await call<JobBody>(stack.baseUrl, 'GET', `/api/v1/jobs/${started.body.job_id}`)).body;
  const first = await waitFor(readJob, (job) => ['completed', 'failed', 'cancelled', 'timeout'].includes(job.status), 90_000);
  expect(first).toMatchObject({ status: 'completed', counts: { failed: 1 } });

  // Every finished scan is past a retention that ends now.
  expect(await stack.library.pruneScanRecords(new Date(Date.now() + 1000))).toMatchObject({ scans: 1, rows: 4 });

  const retry = await call<{ code: string; message: string }>(stack.baseUrl, 'POST', `/api/v1/jobs/${first.job_id}/retry`);
  expect(retry.status).toBe(409);
  expect(retry.body.code).toBe('NOTHING_TO_RETRY');
  expect(retry.body.message).toMatch(/SCAN_RECORD_RETENTION/);
  expect(await readJob()).toMatchObject({ status: 'completed', counts: { discovered: 4, failed: 1 } });
});
