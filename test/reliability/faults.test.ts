/**
 * Faults below the service: a locked SQLite file, dropped PostgreSQL
 * connections, the Temporal server stopped and restarted mid-scan, and twenty
 * scans at once on one worker. Scans finish and lose nothing.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Client, Connection } from '@temporalio/client';
import pg from 'pg';
import { loadConfig } from '../../src/config';
import { Library } from '../../src/library/library';
import { createLogger } from '../../src/logger';
import { ensureTemporalServer } from '../../src/temporal/dev-server';
import { ScanService, type JobBody } from '../../src/scans';
import { buildLibrary, ensureTestMedia, type TestClip } from '../support/media';
import { freePort, killPart, startPart, type Part } from '../support/processes';
import { startStack, temporalAddress, waitFor, writeProberWrapper, type Stack } from '../support/stack';

const realFfprobe = (require('@ffprobe-installer/ffprobe') as { path: string }).path;
const TERMINAL = ['completed', 'failed', 'cancelled', 'timeout'];

let clips: TestClip[];
let work: string;
let slowProber: string;

beforeAll(async () => {
  clips = await ensureTestMedia();
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'faults-')));
  // Pictures are the thumbnail tests' matter: these scans end after probing.
  slowProber = (await writeProberWrapper(work, { realPath: realFfprobe, delayMs: 40 })).path;
});

afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

/** Whether nothing listens on the port any more. */
function refusesConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

/** Reads a job, riding out a read that fails while the database is being disturbed. */
const readJob = async (scans: ScanService, jobId: string): Promise<JobBody | null> => scans.get(jobId).catch(() => null);

const endOf = (scans: ScanService, jobId: string, timeoutMs = 180_000): Promise<JobBody> =>
  waitFor(() => readJob(scans, jobId), (job) => job !== null && TERMINAL.includes(job.status), timeoutMs, 250) as Promise<JobBody>;

describe('a database that fails for a while', () => {
  it('SQLite locked by another writer: the writes are retried and nothing is lost', async () => {
    const progress: string[] = [];
    const stack: Stack = await startStack({ FFPROBE_PATH: slowProber, SCAN_BATCH_SIZE: '10', THUMBNAILS: 'off' });
    try {
      const folder = path.join(work, 'sqlite-busy');
      const files = await buildLibrary(folder, 120, clips);
      const { scanId: jobId } = await stack.scans.start({ root: folder, recursive: true, force: false });
      await waitFor(() => stack.scans.get(jobId), (job) => job.counts.probed >= 20, 60_000, 50);
      // Another writer holds the lock until two batches' writes have met it
      // (the first has been turned away by the time the second begins).
      const other = new BetterSqlite3(stack.config.databaseUrl.slice('sqlite:'.length));
      other.exec('BEGIN EXCLUSIVE');
      const recordProbes = stack.library.recordProbes.bind(stack.library);
      let writesWhileLocked = 0;
      const spy = jest.spyOn(stack.library, 'recordProbes').mockImplementation((...args) => {
        writesWhileLocked += 1;
        return recordProbes(...args);
      });
      try {
        await waitFor(async () => writesWhileLocked, (n) => n >= 2, 120_000, 20);
      } finally {
        spy.mockRestore();
        other.exec('COMMIT');
        other.close();
      }
      const job = await waitFor(
        () => readJob(stack.scans, jobId),
        (j) => {
          progress.push(`${j?.status} ${j?.counts.probed}`);
          return j !== null && TERMINAL.includes(j.status);
        },
        150_000,
        1000,
      ).catch((error: unknown) => {
        throw new Error(`${String(error)}\n${progress.join(' | ')}`);
      });
      expect(job?.status).toBe('completed');
      expect(job?.result).toMatchObject({ scanned: files.length, new: files.length, errors: [] });
      expect((await stack.library.searchVideos(folder + path.sep, 1000, 0)).total).toBe(files.length);
    } finally {
      await stack.close();
    }
  }, 240_000);

  it('PostgreSQL connections dropped mid-scan: the writes are retried and nothing is lost', async () => {
    const adminUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
    const name = `scanner_faults_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    await admin.query(`create database ${name}`);
    const stack = await startStack({ FFPROBE_PATH: slowProber, SCAN_BATCH_SIZE: '10', THUMBNAILS: 'off' }, { databaseUrl: adminUrl.replace(/\/[^/]*$/, `/${name}`) });
    try {
      const folder = path.join(work, 'pg-drop');
      const files = await buildLibrary(folder, 120, clips);
      const { scanId: jobId } = await stack.scans.start({ root: folder, recursive: true, force: false });
      for (const at of [20, 60]) {
        await waitFor(() => readJob(stack.scans, jobId), (job) => (job?.counts.probed ?? 0) >= at, 60_000, 50);
        const dropped = await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [name]);
        expect(dropped.rowCount).toBeGreaterThan(0);
      }
      const job = await endOf(stack.scans, jobId);
      expect(job.status).toBe('completed');
      expect(job.result).toMatchObject({ scanned: files.length, new: files.length, errors: [] });
      expect((await stack.library.searchVideos(folder + path.sep, 1000, 0)).total).toBe(files.length);
    } finally {
      await stack.close().catch(() => undefined);
      await admin.query(`drop database if exists ${name} with (force)`);
      await admin.end();
    }
  });
});

describe('the Temporal server stopped and restarted on the same database file mid-scan', () => {
  it('finishes the scan', async () => {
    const port = await freePort();
    const options = {
      address: `127.0.0.1:${port}`,
      uiPort: await freePort(),
      dataDir: path.join(work, 'temporal-data'),
      namespace: 'default',
      cliPath: process.env.TEMPORAL_TEST_CLI,
      projectRoot: path.join(__dirname, '..', '..'),
      logger: createLogger('test', 'silent'),
    };
    let server = await ensureTemporalServer(options);
    expect(server.started).toBe(true);
    const stack = await startStack({ TEMPORAL_ADDRESS: options.address, FFPROBE_PATH: slowProber, SCAN_BATCH_SIZE: '10', THUMBNAILS: 'off' });
    try {
      const folder = path.join(work, 'server-restart');
      const files = await buildLibrary(folder, 150, clips);
      const { scanId: jobId } = await stack.scans.start({ root: folder, recursive: true, force: false });
      await waitFor(() => stack.scans.get(jobId), (job) => job.counts.probed >= 30, 60_000, 50);
      await server.stop();
      // Down: its port refuses connections (the worker's calls fail) until it is started again.
      await waitFor(() => refusesConnections(port), (refused) => refused, 30_000, 100);
      server = await ensureTemporalServer(options);
      expect(server.started).toBe(true);
      const job = await endOf(stack.scans, jobId);
      expect(job.status).toBe('completed');
      expect(job.result?.scanned).toBe(files.length);
      expect((await stack.library.searchVideos(folder + path.sep, 1000, 0)).total).toBe(files.length);
    } finally {
      await stack.close().catch(() => undefined);
      await server.stop();
    }
  });
});

describe('twenty scans at once on one worker process', () => {
  let worker: Part | undefined;

  afterAll(async () => {
    await killPart(worker);
  });

  it('all complete and the worker stays under 500 MB', async () => {
    const env = {
      TEMPORAL_ADDRESS: temporalAddress(),
      TEMPORAL_TASK_QUEUE: `twenty-${process.pid}-${Date.now()}`,
      DATABASE_URL: `sqlite:${path.join(work, 'twenty.sqlite')}`,
      DATA_DIR: path.join(work, 'twenty-data'),
    };
    const config = loadConfig(env);
    worker = await startPart('worker-main', env, /worker running/);
    const library = await Library.open(config.databaseUrl);
    const connection = await Connection.connect({ address: config.temporal.address });
    const scans = new ScanService(new Client({ connection }), config, library, config.temporal.taskQueue);
    try {
      const roots: string[] = [];
      for (let i = 0; i < 20; i += 1) {
        roots.push(path.join(work, 'twenty', `root-${i}`));
        await buildLibrary(roots[i] as string, 25, clips);
      }
      const jobs = await Promise.all(roots.map((root) => scans.start({ root, recursive: true, force: false })));
      expect(new Set(jobs.map((j) => j.scanId)).size).toBe(20);
      let peakMb = 0;
      const sample = async (): Promise<void> => {
        const status = await fs.readFile(`/proc/${worker?.child.pid}/status`, 'utf8').catch(() => '');
        const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
        if (hwm) peakMb = Math.max(peakMb, Number(hwm[1]) / 1024);
      };
      const ends = await waitFor(
        async () => {
          await sample();
          return Promise.all(jobs.map((j) => scans.get(j.scanId)));
        },
        (all) => all.every((job) => TERMINAL.includes(job.status)),
        300_000,
        500,
      );
      expect(ends.map((job) => job.status)).toEqual(Array(20).fill('completed'));
      expect(ends.every((job) => job.result?.scanned === 25)).toBe(true);
      await sample();
      expect(peakMb).toBeGreaterThan(0);
      expect(peakMb).toBeLessThan(500);
      process.stderr.write(`worker peak RSS with 20 scans: ${peakMb.toFixed(0)} MB\n`);
    } finally {
      await connection.close();
      await library.close();
    }
  });
});
