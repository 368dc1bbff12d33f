/**
 * Starting scans: a start answers without waiting for a worker (the job reads
 * `pending` until one takes it), starts of different roots do not wait for
 * each other, one root gets one scan however many starts race for it, and a
 * pending job can be cancelled, which frees its root and its slot.
 */
import { promises as fs } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import { NativeConnection } from '@temporalio/worker';
import { createApp } from '../../src/api/app';
import type { Config } from '../../src/config';
import { createLogger } from '../../src/logger';
import { MAX_BATCHES_PER_RUN, type ScanInput } from '../../src/model/types';
import { connectClient } from '../../src/temporal/client';
import { ScanService, type JobBody } from '../../src/scans';
import { createScanWorker } from '../../src/worker';
import { buildLibrary, ensureTestMedia, type TestClip } from '../support/media';
import { http, startStack, waitFor, workflowBundle, type Stack, type StackProber } from '../support/stack';

const TERMINAL = ['completed', 'failed', 'cancelled', 'timeout'];

/** Generous: today's code never answers at all when no worker polls. */
const ANSWER_DEADLINE_MS = 30_000;

let clips: TestClip[];
let work: string;
let stack: Stack;

/** An API on a task queue no worker polls (until `startWorker`), sharing the stack's library and Temporal server. */
interface IdleApi {
  baseUrl: string;
  taskQueue: string;
  client: Client;
  /** A worker for the API's task queue, with the stack's prober unless given another. */
  startWorker(prober?: StackProber): Promise<void>;
  stopWorker(): Promise<void>;
  close(): Promise<void>;
}

let idleCounter = 0;

async function startIdleApi(overrides: Partial<Config> = {}): Promise<IdleApi> {
  const config: Config = { ...stack.config, ...overrides };
  const taskQueue = `idle-${process.pid}-${Date.now()}-${idleCounter++}`;
  const { client, connection } = await connectClient(config);
  const scans = new ScanService(client, config, stack.library, taskQueue);
  const app = createApp({ config, scans, library: stack.library, logger: createLogger('test', 'silent'), checkTemporal: async () => undefined });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  let worker: Worker | undefined;
  let running: Promise<void> | undefined;
  let native: NativeConnection | undefined;
  return {
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    taskQueue,
    client,
    startWorker: async (prober = stack.prober) => {
      native = await NativeConnection.connect({ address: config.temporal.address });
      worker = await createScanWorker({ config, connection: native, library: stack.library, prober, taskQueue, workflowBundle: await workflowBundle() });
      running = worker.run();
    },
    stopWorker: async () => {
      if (worker?.getState() === 'RUNNING') worker.shutdown();
      await running?.catch(() => undefined);
      await native?.close();
      worker = undefined;
      native = undefined;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (worker?.getState() === 'RUNNING') worker.shutdown();
      await running?.catch(() => undefined);
      await native?.close();
      await connection.close();
    },
  };
}

/** POST a scan, failing if no answer comes within ANSWER_DEADLINE_MS. */
async function postScan(baseUrl: string, folder: string): Promise<{ status: number; body: { job_id: string; code?: string } }> {
  const res = await fetch(`${baseUrl}/api/v1/videos/scan`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ path: folder }),
    signal: AbortSignal.timeout(ANSWER_DEADLINE_MS),
  });
  return { status: res.status, body: (await res.json()) as { job_id: string; code?: string } };
}

const getJob = async (baseUrl: string, jobId: string): Promise<JobBody> => (await http<JobBody>(baseUrl, 'GET', `/api/v1/jobs/${jobId}`)).body;

beforeAll(async () => {
  clips = await ensureTestMedia();
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'start-')));
  stack = await startStack({ SCAN_BATCH_SIZE: '5', PROBE_CONCURRENCY: '2' });
});

afterAll(async () => {
  await stack?.close();
  await fs.rm(work, { recursive: true, force: true });
});

describe('a start with no worker polling', () => {
  it('answers 202 at once with a pending job, which completes once a worker starts', async () => {
    const api = await startIdleApi();
    try {
      const folder = path.join(work, 'later');
      await buildLibrary(folder, 8, clips);
      const started = await postScan(api.baseUrl, folder);
      expect(started.status).toBe(202);
      const jobId = started.body.job_id;
      expect(jobId).toMatch(/^scan-/);

      const pending = await getJob(api.baseUrl, jobId);
      expect(pending).toMatchObject({ job_id: jobId, status: 'pending', path: folder, recursive: true, progress: null, result: null, finished_at: null });
      expect(Date.parse(pending.created_at)).not.toBeNaN();
      const listed = await http<{ jobs: JobBody[] }>(api.baseUrl, 'GET', '/api/v1/jobs?status=pending&limit=10');
      expect(listed.body.jobs.map((j) => j.job_id)).toEqual([jobId]);
      // A second start of the root answers with the same pending job.
      const again = await postScan(api.baseUrl, folder);
      expect(again).toMatchObject({ status: 200, body: { job_id: jobId } });

      await api.startWorker();
      const done = await waitFor(() => getJob(api.baseUrl, jobId), (j) => TERMINAL.includes(j.status), 90_000);
      expect(done.status).toBe('completed');
      expect(done.result?.new).toBe(8);
      expect(done.created_at).toBe(pending.created_at);
    } finally {
      await api.close();
    }
  });

  it('cancels a pending job, which frees its root and its slot', async () => {
    const api = await startIdleApi({ maxConcurrentScans: 1 });
    try {
      const first = path.join(work, 'cancel-first');
      const second = path.join(work, 'cancel-second');
      await buildLibrary(first, 2, clips);
      await buildLibrary(second, 2, clips);
      const started = await postScan(api.baseUrl, first);
      expect(started.status).toBe(202);
      const jobId = started.body.job_id;
      // The one slot is held by the pending job.
      const refused = await postScan(api.baseUrl, second);
      expect(refused.status).toBe(429);
      expect(refused.body.code).toBe('TOO_MANY_SCANS');

      const cancel = await http<JobBody>(api.baseUrl, 'POST', `/api/v1/jobs/${jobId}/cancel`);
      expect(cancel.status).toBe(202);
      expect(cancel.body.cancel_requested).toBe(true);
      const cancelled = await waitFor(() => getJob(api.baseUrl, jobId), (j) => TERMINAL.includes(j.status), 30_000);
      expect(cancelled).toMatchObject({ status: 'cancelled', phase: 'done', path: first });
      expect(cancelled.finished_at).not.toBeNull();
      expect((await http<{ code: string }>(api.baseUrl, 'POST', `/api/v1/jobs/${jobId}/cancel`)).body.code).toBe('ALREADY_TERMINAL');
      const listed = await http<{ jobs: JobBody[] }>(api.baseUrl, 'GET', '/api/v1/jobs?status=cancelled&limit=10');
      expect(listed.body.jobs.map((j) => j.job_id)).toEqual([jobId]);

      // Root and slot are free again, with no worker having run anything.
      const other = await waitFor(() => postScan(api.baseUrl, second), (r) => r.status !== 429, 30_000, 200);
      expect(other.status).toBe(202);
      await http(api.baseUrl, 'POST', `/api/v1/jobs/${other.body.job_id}/cancel`);
      const restarted = await postScan(api.baseUrl, first);
      expect(restarted.status).toBe(202);
      expect(restarted.body.job_id).not.toBe(jobId);
    } finally {
      await api.close();
    }
  });

  it('gives many roots started at once distinct jobs, and one root started many times at once one job', async () => {
    const api = await startIdleApi();
    try {
      const folders = await Promise.all(
        Array.from({ length: 30 }, async (_, i) => {
          const folder = path.join(work, 'many', `root-${i}`);
          await fs.mkdir(folder, { recursive: true });
          return folder;
        }),
      );
      const many = await Promise.all(folders.map((folder) => postScan(api.baseUrl, folder)));
      expect(many.map((r) => r.status)).toEqual(folders.map(() => 202));
      expect(new Set(many.map((r) => r.body.job_id)).size).toBe(folders.length);

      const one = path.join(work, 'one-root');
      await fs.mkdir(one);
      const same = await Promise.all(Array.from({ length: 8 }, () => postScan(api.baseUrl, one)));
      expect(new Set(same.map((r) => r.body.job_id)).size).toBe(1);
      expect(same.filter((r) => r.status === 202)).toHaveLength(1);
      expect(same.filter((r) => r.status === 200)).toHaveLength(7);

      // Every job is one the list knows, pending until a worker comes. The
      // list reads the library, which the services of this file share (each on
      // its own task queue): an earlier test's pending job is listed too.
      const started = new Set([...many, ...same].map((r) => r.body.job_id));
      const listed = new Set((await http<{ jobs: JobBody[] }>(api.baseUrl, 'GET', '/api/v1/jobs?status=pending&limit=100')).body.jobs.map((j) => j.job_id));
      expect([...started].filter((id) => !listed.has(id))).toEqual([]);
      await api.startWorker();
      for (const { body } of [...many, same[0]!]) {
        const job = await waitFor(() => getJob(api.baseUrl, body.job_id), (j) => TERMINAL.includes(j.status), 120_000, 200);
        expect(job.status).toBe('completed');
      }
    } finally {
      await api.close();
    }
  });
});

describe('a root whose scan ended while no worker could close its guard', () => {
  it('starts a new scan at once', async () => {
    const api = await startIdleApi();
    // Probes that never end (until cancelled), so the scan is surely running when its worker goes.
    const hang = (signal: AbortSignal | undefined): Promise<never> =>
      new Promise((_resolve, reject) => {
        signal?.addEventListener('abort', () => reject(signal.reason as Error));
      });
    const hanging: StackProber = {
      path: 'hanging',
      version: async () => 'hanging',
      probeFile: ({ signal }) => hang(signal),
    };
    try {
      const folder = path.join(work, 'orphaned-guard');
      await buildLibrary(folder, 2, clips);
      const first = await postScan(api.baseUrl, folder);
      expect(first.status).toBe(202);
      await api.startWorker(hanging);
      await waitFor(() => getJob(api.baseUrl, first.body.job_id), (j) => j.status === 'running' && j.phase === 'probing', 60_000);
      await api.stopWorker();
      // The scan ends (an operator terminates it); its guard needs a worker to notice, and there is none.
      await api.client.workflow.getHandle(first.body.job_id).terminate('test: the scan ends while no worker runs');
      // Status reads may be served from the job cache for a moment (well under a second): wait for the end to show.
      expect((await waitFor(() => getJob(api.baseUrl, first.body.job_id), (j) => j.status !== 'running', 10_000)).status).toBe('cancelled');

      const second = await postScan(api.baseUrl, folder);
      expect(second.status).toBe(202);
      expect(second.body.job_id).not.toBe(first.body.job_id);
      expect((await getJob(api.baseUrl, second.body.job_id)).status).toBe('pending');
      await http(api.baseUrl, 'POST', `/api/v1/jobs/${second.body.job_id}/cancel`);
    } finally {
      await api.close();
    }
  });
});

describe('a scan started through the service', () => {
  it('carries its batches-per-run limit in its input, so a new default leaves it alone', async () => {
    const folder = path.join(work, 'limit');
    await buildLibrary(folder, 2, clips);
    const started = await postScan(stack.baseUrl, folder);
    await waitFor(() => getJob(stack.baseUrl, started.body.job_id), (j) => TERMINAL.includes(j.status));
    const history = await stack.client.workflow.getHandle(started.body.job_id).fetchHistory();
    const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
    const input = JSON.parse(Buffer.from(payload?.data ?? new Uint8Array()).toString('utf8')) as ScanInput;
    expect(typeof input.maxBatchesPerRun).toBe('number');
    expect(input.maxBatchesPerRun).toBe(MAX_BATCHES_PER_RUN);
  });
});

describe('a start right after the previous scan of its root ended', () => {
  it('starts a new scan, never answering with the one that ended', async () => {
    const folder = path.join(work, 'back-to-back');
    await buildLibrary(folder, 1, clips);
    let previous: string | undefined;
    // The guard hears of its scan's end a moment after the scan has ended: a
    // start in that moment must not take the ended scan for a running one.
    for (let round = 0; round < 12; round += 1) {
      const started = await postScan(stack.baseUrl, folder);
      if (previous !== undefined) {
        expect(started.body.job_id).not.toBe(previous);
        expect(started.status).toBe(202);
      }
      const handle = stack.client.workflow.getHandle(started.body.job_id);
      // Waits on the scan itself (not through a poll), so the next start comes as soon as it ended.
      await waitFor(() => handle.describe().catch(() => null), (d) => d !== null && d.status.name !== 'RUNNING', 60_000, 5);
      previous = started.body.job_id;
    }
  });
});
