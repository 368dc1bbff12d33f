/**
 * Pause and resume of one scan, against the real stack: a pause stops the
 * batches in flight (the job reads `running` with `pause_requested` until
 * they have stopped), a paused scan starts no new probes, reports `paused`
 * with readable counts, and resumes where it stopped with every file
 * recorded exactly once (a file whose probe the pause stopped is probed again); a cancel ends a
 * paused scan; and the pause holds across a worker killed with SIGKILL.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { loadConfig } from '../../src/config';
import { Library } from '../../src/library/library';
import { ScanService, type JobBody } from '../../src/scans';
import { progressQuery } from '../../src/workflows/definitions';
import { recordHistory } from '../support/histories';
import { buildLibrary, ensureTestMedia, type TestClip } from '../support/media';
import { scanctl } from '../support/scanctl';
import { killPart, startPart, type Part } from '../support/processes';
import { http, startStack, temporalAddress, waitFor, writeProberWrapper, type Stack, withProbeHook, type StackProber } from '../support/stack';

jest.setTimeout(300_000);

const realFfprobe = (require('@ffprobe-installer/ffprobe') as { path: string }).path;
const TERMINAL = ['completed', 'failed', 'cancelled', 'timeout'];
/** How long a paused scan is watched for probes it should not start: long against a probe (about 0.2 s here). */
const QUIET_MS = 3_000;

let clips: TestClip[];
let work: string;

beforeAll(async () => {
  clips = await ensureTestMedia();
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'pause-')));
});

afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});


const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until the scan has no activity in flight: the batches running at the pause have finished. */
async function waitForNoActivities(client: Client, jobId: string): Promise<void> {
  await waitFor(
    async () => (await client.workflow.getHandle(jobId).describe()).raw.pendingActivities?.length ?? 0,
    (pending) => pending === 0,
    120_000,
    100,
  );
}

describe('pause and resume through the API', () => {
  let stack: Stack;
  const asked: string[] = [];
  /** Files whose probe ran to its end; a probe the pause stopped (it rejects) is asked but not here. */
  const probed: string[] = [];

  beforeAll(async () => {
    // Every call to the worker's prober counted, and slowed so that a scan is long enough to pause.
    const counting = (prober: StackProber): StackProber =>
      withProbeHook(
        prober,
        async (file) => {
          asked.push(file);
          await sleep(150);
        },
        (file) => probed.push(file),
      );
    stack = await startStack({ PROBE_CONCURRENCY: '1', SCAN_BATCH_SIZE: '2', SCAN_WINDOW: '2' }, { wrapProber: counting });
  });

  afterAll(async () => {
    await stack?.close();
  });

  const job = async (jobId: string): Promise<JobBody> => (await http<JobBody>(stack.baseUrl, 'GET', `/api/v1/jobs/${jobId}`)).body;
  const endOf = (jobId: string): Promise<JobBody> => waitFor(() => job(jobId), (j) => TERMINAL.includes(j.status), 240_000, 200);
  const askedUnder = (folder: string): string[] => asked.filter((file) => file.startsWith(folder + path.sep));
  const probedUnder = (folder: string): string[] => probed.filter((file) => file.startsWith(folder + path.sep));

  it('a paused scan starts no new probes, reads paused, and resumes to every file exactly once', async () => {
    const folder = path.join(work, 'api');
    const files = await buildLibrary(folder, 40, clips);
    const start = await http<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: folder });
    expect(start.status).toBe(202);
    const jobId = start.body.job_id;
    await waitFor(() => job(jobId), (j) => j.counts.probed >= 4, 120_000, 50);

    const paused = await http<JobBody>(stack.baseUrl, 'POST', `/api/v1/jobs/${jobId}/pause`);
    expect(paused.status).toBe(202);
    expect(paused.body.status === 'paused' || (paused.body.status === 'running' && paused.body.pause_requested)).toBe(true);
    const again = await http<{ code: string }>(stack.baseUrl, 'POST', `/api/v1/jobs/${jobId}/pause`);
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('ALREADY_PAUSED');

    // The batches in flight at the pause stop; after that, nothing more reaches the prober.
    await waitFor(() => job(jobId), (j) => j.status === 'paused' && !j.pause_requested, 60_000, 50);
    await waitForNoActivities(stack.client, jobId);
    const atRest = askedUnder(folder).length;
    const probedAtRest = probedUnder(folder).length;
    await sleep(QUIET_MS);
    expect(askedUnder(folder).length).toBe(atRest);
    expect(atRest).toBeLessThan(files.length);
    // The workflow counts the last batch's files once it has handled that batch's completion:
    // every probe that ran to its end, and none the pause stopped (those are probed again on resume).
    const held = await waitFor(() => job(jobId), (j) => j.counts.probed === probedAtRest, 60_000, 100);
    expect(held.status).toBe('paused');
    expect(held.phase).toBe('probing');
    expect(held.counts.discovered).toBe(files.length);
    const listed = await http<{ jobs: JobBody[] }>(stack.baseUrl, 'GET', '/api/v1/jobs?status=paused&limit=50');
    expect(listed.body.jobs.map((j) => j.job_id)).toContain(jobId);

    const resumed = await http<JobBody>(stack.baseUrl, 'POST', `/api/v1/jobs/${jobId}/resume`);
    expect(resumed.status).toBe(202);
    expect(resumed.body.status).toBe('running');
    const resumedAgain = await http<{ code: string }>(stack.baseUrl, 'POST', `/api/v1/jobs/${jobId}/resume`);
    expect(resumedAgain.status).toBe(409);
    expect(['NOT_PAUSED', 'ALREADY_TERMINAL']).toContain(resumedAgain.body.code);

    const end = await endOf(jobId);
    expect(end.status).toBe('completed');
    expect(end.result?.scanned).toBe(files.length);
    // Every file probed, and recorded once.
    expect(new Set(askedUnder(folder))).toEqual(new Set(files));
    const videos = await stack.library.searchVideos(folder + path.sep, 1000, 0);
    expect(videos.total).toBe(files.length);
    expect(new Set(videos.items.map((v) => v.path))).toEqual(new Set(files));

    const late = await http<{ code: string }>(stack.baseUrl, 'POST', `/api/v1/jobs/${jobId}/pause`);
    expect(late.status).toBe(409);
    expect(late.body.code).toBe('ALREADY_TERMINAL');
    await recordHistory(stack.client, jobId, 'paused');
  });

  it('a running scan cannot be resumed, and an unknown job is 404', async () => {
    const folder = path.join(work, 'not-paused');
    await buildLibrary(folder, 12, clips);
    const start = await http<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: folder });
    const jobId = start.body.job_id;
    await waitFor(() => job(jobId), (j) => j.status === 'running', 120_000, 50);
    const resumed = await http<{ code: string }>(stack.baseUrl, 'POST', `/api/v1/jobs/${jobId}/resume`);
    expect(resumed.status).toBe(409);
    expect(['NOT_PAUSED', 'ALREADY_TERMINAL']).toContain(resumed.body.code);
    expect((await http(stack.baseUrl, 'POST', '/api/v1/jobs/scan-00000000-0000-0000-0000-000000000000/pause')).status).toBe(404);
    await endOf(jobId);
  });

  it('scanctl pauses and resumes a scan', async () => {
    const folder = path.join(work, 'cli');
    await buildLibrary(folder, 24, clips);
    const start = await http<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: folder });
    const jobId = start.body.job_id;
    await waitFor(() => job(jobId), (j) => j.counts.probed >= 2, 120_000, 50);
    const paused = await scanctl(stack.baseUrl, 'pause', jobId);
    expect(paused.code).toBe(0);
    expect([`${jobId} paused\n`, `${jobId} pausing\n`]).toContain(paused.stdout);
    await waitFor(() => job(jobId), (j) => j.status === 'paused', 60_000, 50);
    const twice = await scanctl(stack.baseUrl, 'pause', jobId);
    expect(twice.code).toBe(3);
    expect(twice.stderr).toContain('ALREADY_PAUSED');
    const resumed = await scanctl(stack.baseUrl, '--json', 'resume', jobId);
    expect(resumed.code).toBe(0);
    expect(['running', 'completed']).toContain((JSON.parse(resumed.stdout) as JobBody).status);
    expect((await endOf(jobId)).status).toBe('completed');
  });

  it('a paused scan can be cancelled', async () => {
    const folder = path.join(work, 'cancel');
    await buildLibrary(folder, 40, clips);
    const start = await http<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: folder });
    const jobId = start.body.job_id;
    await waitFor(() => job(jobId), (j) => j.counts.probed >= 2, 120_000, 50);
    expect((await http(stack.baseUrl, 'POST', `/api/v1/jobs/${jobId}/pause`)).status).toBe(202);
    await waitForNoActivities(stack.client, jobId);
    const cancel = await http<JobBody>(stack.baseUrl, 'POST', `/api/v1/jobs/${jobId}/cancel`);
    expect(cancel.status).toBe(202);
    const end = await endOf(jobId);
    expect(end.status).toBe('cancelled');
    expect(end.counts.probed).toBeLessThan(40);
    await recordHistory(stack.client, jobId, 'paused-cancelled');
  });
});

describe('a paused scan and its time limit', () => {
  let stack: Stack;

  beforeAll(async () => {
    const slow = (prober: StackProber): StackProber => withProbeHook(prober, async () => {
      await sleep(150);
    });
    stack = await startStack({ PROBE_CONCURRENCY: '1', SCAN_BATCH_SIZE: '2', SCAN_WINDOW: '2', SCAN_TIMEOUT: '10s' }, { wrapProber: slow });
  });

  afterAll(async () => {
    await stack?.close();
  });

  it('keeps counting while paused: a scan paused past SCAN_TIMEOUT ends as timeout', async () => {
    const folder = path.join(work, 'timeout');
    const files = await buildLibrary(folder, 60, clips);
    const start = await http<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: folder });
    const jobId = start.body.job_id;
    await waitFor(() => stack.scans.get(jobId), (j) => j.counts.probed >= 2, 120_000, 50);
    const paused = await http<JobBody>(stack.baseUrl, 'POST', `/api/v1/jobs/${jobId}/pause`);
    expect(paused.status).toBe(202);
    const end = await waitFor(() => stack.scans.get(jobId), (j) => TERMINAL.includes(j.status), 120_000, 200);
    expect(end.status).toBe('timeout');
    expect(end.counts.probed).toBeLessThan(files.length);
  });
});

describe('a pause across a worker killed with SIGKILL', () => {
  let env: Record<string, string>;
  let logFile: string;
  let library: Library;
  let connection: Connection;
  let client: Client;
  let scans: ScanService;
  const parts: Part[] = [];

  beforeAll(async () => {
    logFile = path.join(work, 'calls.log');
    const wrapper = await writeProberWrapper(work, { realPath: realFfprobe, delayMs: 150, logFile });
    env = {
      TEMPORAL_ADDRESS: temporalAddress(),
      TEMPORAL_TASK_QUEUE: `pause-${process.pid}-${Date.now()}`,
      DATABASE_URL: `sqlite:${path.join(work, 'library.sqlite')}`,
      DATA_DIR: path.join(work, 'data'),
      // The wrapper counts probes, so the workers run ffprobe, not the in-process prober.
      PROBER: 'ffprobe',
      FFPROBE_PATH: wrapper.path,
      PROBE_CONCURRENCY: '1',
      SCAN_BATCH_SIZE: '2',
      SCAN_WINDOW: '2',
      // Pictures are the thumbnail tests' matter: these scans end after probing.
      THUMBNAILS: 'off',
    };
    const config = loadConfig(env);
    library = await Library.open(config.databaseUrl);
    connection = await Connection.connect({ address: config.temporal.address });
    client = new Client({ connection });
    scans = new ScanService(client, config, library, config.temporal.taskQueue);
  });

  afterAll(async () => {
    await Promise.all(parts.splice(0).map((part) => killPart(part)));
    await connection?.close();
    await library?.close();
  });

  const startWorker = async (): Promise<Part> => {
    const part = await startPart('worker-main', env, /worker running/);
    parts.push(part);
    return part;
  };
  const calls = async (folder: string): Promise<string[]> => {
    const text = await fs.readFile(logFile, 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter((line) => line.startsWith(`file:${folder}${path.sep}`))
      .map((line) => line.slice('file:'.length));
  };

  it('stays paused under a new worker, then resumes and completes with every file once', async () => {
    const folder = path.join(work, 'sigkill');
    const files = await buildLibrary(folder, 40, clips);
    const first = await startWorker();
    const { scanId: jobId } = await scans.start({ root: folder, recursive: true, force: false });
    await waitFor(() => scans.get(jobId), (job) => job.counts.probed >= 4, 120_000, 50);
    const pausing = await scans.pause(jobId);
    expect(pausing.status === 'paused' || pausing.pause_requested).toBe(true);
    await waitFor(() => scans.get(jobId), (job) => job.status === 'paused', 60_000, 50);
    await waitForNoActivities(client, jobId);

    first.child.kill('SIGKILL');
    await first.exited;
    const atKill = (await calls(folder)).length;
    await startWorker();
    // The query is answered by the new worker, from the scan's history replayed: it is still paused.
    const progress = await waitFor(
      () => client.workflow.getHandle(jobId).query(progressQuery).catch(() => null),
      (p) => p !== null,
      120_000,
      200,
    );
    expect(progress?.paused).toBe(true);
    await sleep(QUIET_MS);
    expect((await calls(folder)).length).toBe(atKill);
    expect(atKill).toBeLessThan(files.length);
    expect((await scans.get(jobId)).status).toBe('paused');

    expect((await scans.resume(jobId)).status).toBe('running');
    const end = await waitFor(() => scans.get(jobId), (job) => TERMINAL.includes(job.status), 240_000, 200);
    expect(end.status).toBe('completed');
    expect(new Set(await calls(folder))).toEqual(new Set(files));
    // Probed again: only the files whose probe the pause stopped (at most the worker's probes in flight).
    expect((await calls(folder)).length - files.length).toBeLessThanOrEqual(4);
    const videos = await library.searchVideos(folder + path.sep, 1000, 0);
    expect(videos.total).toBe(files.length);
    await recordHistory(client, jobId, 'paused-worker-killed');
  });
});
