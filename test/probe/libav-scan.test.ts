/**
 * A scan end to end with the default prober (libavformat in the probe hosts):
 * the HTTP API, a real Temporal server, a worker, a real SQLite library. A
 * file that crashes its host fails alone, and the scan completes.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Video } from '../../src/library/types';
import type { IsolatedProber } from '../../src/media-host/pool';
import type { JobBody } from '../../src/scans';
import { buildLibrary, ensureTestMedia, type TestClip } from '../support/media';
import { http, startStack, waitFor, type Stack } from '../support/stack';

let clips: TestClip[];
let work: string;
let stack: Stack;
/** Every path the hosts handed their prober. */
let probeLog: string;

beforeAll(async () => {
  clips = await ensureTestMedia();
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'libav-scan-test-'));
  probeLog = path.join(work, 'probes.log');
  stack = await startStack({ PROBE_CONCURRENCY: '3', SCAN_BATCH_SIZE: '10' }, { proberCrashMarker: 'CRASHES-THE-PROBER', probeLog });
}, 120_000);

afterAll(async () => {
  await stack?.close();
  await fs.rm(work, { recursive: true, force: true });
});

async function scan(folder: string): Promise<JobBody> {
  const started = await http<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: folder });
  expect(started.status).toBe(202);
  return waitFor(
    async () => (await http<JobBody>(stack.baseUrl, 'GET', `/api/v1/jobs/${started.body.job_id}`)).body,
    (job) => ['completed', 'failed', 'cancelled', 'timeout'].includes(job.status),
    120_000,
    100,
  );
}

it('runs the in-process prober by default', () => {
  expect((stack.prober as IsolatedProber).kind).toBe('libav');
});

it('records every file of a scan, and a file that crashes the prober as probe_failed: prober crashed, alone', async () => {
  const folder = path.join(work, 'library');
  const files = await buildLibrary(folder, 60, clips);
  const culprit = path.join(folder, 'CRASHES-THE-PROBER.mp4');
  await fs.copyFile(clips[0]?.file as string, culprit);
  const job = await scan(folder);
  expect(job.status).toBe('completed');
  expect(job.result?.scanned).toBe(files.length + 1);
  expect(job.result?.errors).toEqual([{ path: culprit, error: 'probe_failed: prober crashed' }]);
  const listed = await http<{ videos: Video[]; total?: number }>(stack.baseUrl, 'GET', `/api/v1/videos?limit=100`);
  const paths = new Set(listed.body.videos.map((video) => video.path));
  for (const file of files) expect(paths.has(file)).toBe(true);
  expect(paths.has(culprit)).toBe(false);
  // Crashed twice (with others in flight, then alone), never retried after.
  expect((await fs.readFile(probeLog, 'utf8')).split('\n').filter((line) => line === culprit)).toHaveLength(2);
});
