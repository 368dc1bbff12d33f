/**
 * Crashes and restarts with real processes: workers killed with SIGKILL and
 * stopped with SIGTERM mid-scan, the API killed and restarted. Scans finish,
 * nothing is lost, nothing is probed twice but what was in flight.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { loadConfig } from '../../src/config';
import { Library } from '../../src/library/library';
import { ScanService, type JobBody } from '../../src/scans';
import { buildLibrary, ensureTestMedia, type TestClip } from '../support/media';
import { freePort, killPart, startPart, type Part } from '../support/processes';
import { processesMatching, temporalAddress, waitFor, writeProberWrapper } from '../support/stack';

const realFfprobe = (require('@ffprobe-installer/ffprobe') as { path: string }).path;
const TERMINAL = ['completed', 'failed', 'cancelled', 'timeout'];
const WORKER_READY = /worker running/;

let clips: TestClip[];
let work: string;
let env: Record<string, string>;
let logFile: string;
let library: Library;
let connection: Connection;
let scans: ScanService;
const parts: Part[] = [];

async function start(entry: string, ready: RegExp, extra: Record<string, string> = {}): Promise<Part> {
  const part = await startPart(entry, { ...env, ...extra }, ready);
  parts.push(part);
  return part;
}

async function probeCalls(folder: string): Promise<string[]> {
  const text = await fs.readFile(logFile, 'utf8').catch(() => '');
  return text.split('\n').filter((line) => line.startsWith(`file:${folder}${path.sep}`));
}

beforeAll(async () => {
  clips = await ensureTestMedia();
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'crash-')));
  logFile = path.join(work, 'calls.log');
  const wrapper = await writeProberWrapper(work, { realPath: realFfprobe, delayMs: 30, logFile });
  env = {
    TEMPORAL_ADDRESS: temporalAddress(),
    TEMPORAL_TASK_QUEUE: `crash-${process.pid}-${Date.now()}`,
    DATABASE_URL: `sqlite:${path.join(work, 'library.sqlite')}`,
    DATA_DIR: path.join(work, 'data'),
    // The wrapper counts probes, so the workers must run ffprobe, not the in-process prober.
    PROBER: 'ffprobe',
    FFPROBE_PATH: wrapper.path,
    PROBE_CONCURRENCY: '2',
    SCAN_BATCH_SIZE: '20',
    // Pictures are the thumbnail tests' matter: these scans end after probing.
    THUMBNAILS: 'off',
  };
  const config = loadConfig(env);
  library = await Library.open(config.databaseUrl);
  connection = await Connection.connect({ address: config.temporal.address });
  scans = new ScanService(new Client({ connection }), config, library, config.temporal.taskQueue);
});

afterEach(async () => {
  await Promise.all(parts.splice(0).map((part) => killPart(part)));
});

afterAll(async () => {
  await connection?.close();
  await library?.close();
  await fs.rm(work, { recursive: true, force: true });
});

const endOf = (jobId: string, timeoutMs = 120_000): Promise<JobBody> =>
  waitFor(() => scans.get(jobId), (job) => TERMINAL.includes(job.status), timeoutMs, 200);

describe('a worker that dies mid-scan', () => {
  it('killed with SIGKILL: a new worker finishes the scan, each file has one row, only in-flight files are probed twice', async () => {
    const folder = path.join(work, 'sigkill');
    // Killed once 60 are probed: the rest are left for the new worker.
    const files = await buildLibrary(folder, 120, clips);
    const first = await start('worker-main', WORKER_READY);
    const { scanId: jobId } = await scans.start({ root: folder, recursive: true, force: false });
    await waitFor(() => scans.get(jobId), (job) => job.counts.probed >= 60, 60_000, 50);

    first.child.kill('SIGKILL');
    await first.exited;
    // Its probe host notices and takes its ffprobe processes with it.
    await waitFor(() => processesMatching(`file:${folder}`), (pids) => pids.length === 0, 10_000, 100);
    // In flight at the kill: probes started whose result the library has not recorded.
    const startedBeforeKill = (await probeCalls(folder)).length;
    const recordedBeforeKill = (await library.searchVideos(folder + path.sep, 1000, 0)).total;
    const inFlight = startedBeforeKill - recordedBeforeKill;

    await start('worker-main', WORKER_READY);
    const job = await endOf(jobId);
    expect(job.status).toBe('completed');
    expect(job.result?.scanned).toBe(files.length);
    expect((await library.searchVideos(folder + path.sep, 1000, 0)).total).toBe(files.length);
    const calls = await probeCalls(folder);
    expect(new Set(calls).size).toBe(files.length);
    expect(calls.length - files.length).toBeLessThanOrEqual(inFlight);
    // The checkpoint keeps that small: a slot's worth, not a batch's or the window's.
    expect(inFlight).toBeLessThanOrEqual(10);
  });

  it('stopped with SIGTERM: it shuts down by itself with status 0, leaves no ffprobe, and another worker finishes', async () => {
    const folder = path.join(work, 'sigterm');
    // Stopped once 60 are probed: the rest are left for the next worker.
    const files = await buildLibrary(folder, 120, clips);
    const first = await start('worker-main', WORKER_READY);
    const { scanId: jobId } = await scans.start({ root: folder, recursive: true, force: false });
    await waitFor(() => scans.get(jobId), (job) => job.counts.probed >= 60, 60_000, 50);

    first.child.kill('SIGTERM');
    // It shuts down by itself (its worker's shutdown, then a clean exit), not by the signal's default.
    expect(await first.exited).toBe(0);
    await waitFor(() => processesMatching(`file:${folder}`), (pids) => pids.length === 0, 3_000, 100);

    await start('worker-main', WORKER_READY);
    const job = await endOf(jobId);
    expect(job.status).toBe('completed');
    expect(job.result?.scanned).toBe(files.length);
    expect((await library.searchVideos(folder + path.sep, 1000, 0)).total).toBe(files.length);
  });
});

describe('an API that dies mid-scan', () => {
  it('leaves the scan running, and the restarted API reports it', async () => {
    const folder = path.join(work, 'api-crash');
    // The API is down while the first 40 are probed: the rest are probed around its restart.
    const files = await buildLibrary(folder, 120, clips);
    const port = String(await freePort());
    await start('worker-main', WORKER_READY);
    const api = await start('api/server', /api listening/, { PORT: port });
    const base = `http://127.0.0.1:${port}`;
    const started = await fetch(`${base}/api/v1/videos/scan`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ path: folder }),
    });
    expect(started.status).toBe(202);
    const { job_id: jobId } = (await started.json()) as { job_id: string };

    api.child.kill('SIGKILL');
    await api.exited;
    const probedWhileDown = await waitFor(() => scans.get(jobId), (job) => job.counts.probed >= 40, 60_000, 100);
    expect(probedWhileDown.status).toBe('running');

    await start('api/server', /api listening/, { PORT: port });
    const job = await waitFor(
      async () => (await (await fetch(`${base}/api/v1/jobs/${jobId}`)).json()) as JobBody,
      (j) => TERMINAL.includes(j.status),
      120_000,
      200,
    );
    expect(job.status).toBe('completed');
    expect(job.result?.scanned).toBe(files.length);
  });
});
