/**
 * The cluster path with real processes: `npm run temporal:server` (the real
 * Temporal server on PostgreSQL, not the dev server), the library in
 * PostgreSQL, the API and three workers. A scan of 400 files survives a
 * worker killed with SIGKILL and the Temporal server stopped and started again;
 * every worker probes, every file ends in the library once, and only files in
 * flight at a fault are probed twice. The server's restart mid-scan, a
 * second start on the same databases, sets nothing up again.
 *
 * The server runs as compose runs it: its frontend behind mutual TLS, with
 * certificates from scripts/make-certs.sh. A client without a certificate is
 * refused; the API, the workers, the command's own calls and the Web UI
 * present theirs, and the scan runs end to end over them.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Connection, type TLSConfig } from '@temporalio/client';
import pg from 'pg';
import { findProjectRoot } from '../../src/temporal/go-binary';
import { NAMESPACE_RETENTION_DAYS, obtainTemporalBinaries } from '../../src/temporal/server';
import { withPgClient } from '../support/postgres';
import { buildLibrary, ensureTestMedia } from '../support/media';
import { freePort, freeServerPorts, killPart, startPart, type Part } from '../support/processes';
import { processesMatching, waitFor, writeProberWrapper } from '../support/stack';

const realFfprobe = (require('@ffprobe-installer/ffprobe') as { path: string }).path;
const adminUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const serverUrl = (database: string): string => adminUrl.replace(/\/[^/]*$/, `/${database}`);
const name = `cluster_${randomBytes(4).toString('hex')}`;
const temporalDb = name;
const libraryDb = `${name}_library`;
const FILES = 400;
const WORKERS = 3;
const SERVER_READY = /Ctrl-C stops it/;
const TERMINAL = ['completed', 'failed', 'cancelled', 'timeout'];

let work: string;
let address: string;
let uiPort: number;
let serverEnv: Record<string, string>;
let certs: string;
/** What every client of the frontend sets: the CA, its own certificate, the name to verify. */
let clientTls: (who: 'api' | 'worker') => Record<string, string>;
const parts: Part[] = [];

function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  return withPgClient(adminUrl, fn);
}

async function startServer(): Promise<Part> {
  const part = await startPart('temporal/server-main', serverEnv, SERVER_READY, 300_000);
  parts.push(part);
  return part;
}

/** SIGTERM, as an operator would stop it; resolves with its exit code. */
async function stopServer(part: Part): Promise<number | NodeJS.Signals | null> {
  part.child.kill('SIGTERM');
  return part.exited;
}

beforeAll(async () => {
  // Built from the Go module proxy on a fresh machine (minutes), cached under .cache/ after.
  await obtainTemporalBinaries({ projectRoot: findProjectRoot(), log: (line) => process.stderr.write(`${line}\n`) });
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'cluster-')));
  const ports = await freeServerPorts();
  address = `127.0.0.1:${ports.frontend}`;
  uiPort = ports.ui;
  certs = path.join(work, 'certs');
  execFileSync('sh', [path.join(findProjectRoot(), 'scripts', 'make-certs.sh'), certs, path.join(work, 'ca')], { stdio: 'ignore' });
  const tlsFor = (who: string): Record<string, string> => ({
    TEMPORAL_TLS_CA: path.join(certs, 'ca.pem'),
    TEMPORAL_TLS_CERT: path.join(certs, `${who}.pem`),
    TEMPORAL_TLS_KEY: path.join(certs, `${who}.key`),
    TEMPORAL_TLS_SERVER_NAME: 'localhost',
  });
  clientTls = tlsFor;
  serverEnv = {
    TEMPORAL_DATABASE_URL: serverUrl(temporalDb),
    TEMPORAL_ADDRESS: address,
    TEMPORAL_UI_PORT: String(uiPort),
    TEMPORAL_SERVER_TLS_CERT: path.join(certs, 'server.pem'),
    TEMPORAL_SERVER_TLS_KEY: path.join(certs, 'server.key'),
    TEMPORAL_SERVER_TLS_CLIENT_CA: path.join(certs, 'ca.pem'),
    TEMPORAL_UI_TLS_CERT: path.join(certs, 'ui.pem'),
    TEMPORAL_UI_TLS_KEY: path.join(certs, 'ui.key'),
    ...tlsFor('temporal-client'),
  };
  await admin((client) => client.query(`create database ${libraryDb}`));
}, 45 * 60_000);

afterEach(async () => {
  // SIGTERM first: a server part stops its Temporal server and UI children; SIGKILL would orphan them.
  await Promise.all(
    parts.splice(0).map(async (part) => {
      if (part.child.exitCode === null && part.child.signalCode === null) part.child.kill('SIGTERM');
      // Unref'd: once the part has exited, the timer must not hold the test process open.
      await Promise.race([part.exited, new Promise((resolve) => setTimeout(resolve, 30_000).unref())]);
      await killPart(part);
    }),
  );
});

afterAll(async () => {
  await admin(async (client) => {
    for (const db of [temporalDb, `${temporalDb}_visibility`, libraryDb]) await client.query(`drop database if exists ${db} with (force)`);
  });
  if (work) await fs.rm(work, { recursive: true, force: true });
});

/** The Temporal database's schema_version rows: a start that set it up again would rewrite them. */
function schemaVersion(): Promise<unknown[]> {
  return withPgClient(serverUrl(temporalDb), async (client) => (await client.query('select curr_version, creation_time from schema_version')).rows);
}

/** Whether the frontend answers a health check from a client with these TLS settings. */
async function answers(tls: TLSConfig | undefined): Promise<string> {
  try {
    const connection = await Connection.connect({ address, tls, connectTimeout: '10s' });
    try {
      await connection.withDeadline(Date.now() + 10_000, () => connection.healthService.check({}));
      return 'answered';
    } finally {
      await connection.close();
    }
  } catch (error) {
    return `refused: ${String(error instanceof Error ? error.message : error).split('\n')[0]}`;
  }
}

describe('npm run temporal:server', () => {
  it('sets up databases, schema, namespace and ScanRoot on a first start, and stops on SIGTERM', async () => {
    const first = await startServer();
    const firstOutput = first.output();
    expect(firstOutput).toMatch(/mutual TLS/);
    // Mutual TLS: neither a plaintext client nor a TLS client without a certificate gets an answer.
    const ca = await fs.readFile(path.join(certs, 'ca.pem'));
    expect(await answers(undefined)).toMatch(/^refused/);
    expect(await answers({ serverRootCACertificate: ca, serverNameOverride: 'localhost' })).toMatch(/^refused/);
    // A certificate its CA did not sign is refused too.
    const stranger = path.join(work, 'stranger');
    execFileSync('sh', [path.join(findProjectRoot(), 'scripts', 'make-certs.sh'), path.join(stranger, 'certs'), path.join(stranger, 'ca')], { stdio: 'ignore' });
    expect(
      await answers({
        serverRootCACertificate: ca,
        serverNameOverride: 'localhost',
        clientCertPair: { crt: await fs.readFile(path.join(stranger, 'certs', 'api.pem')), key: await fs.readFile(path.join(stranger, 'certs', 'api.key')) },
      }),
    ).toMatch(/^refused/);
    expect(
      await answers({
        serverRootCACertificate: ca,
        serverNameOverride: 'localhost',
        clientCertPair: { crt: await fs.readFile(path.join(certs, 'api.pem')), key: await fs.readFile(path.join(certs, 'api.key')) },
      }),
    ).toBe('answered');
    expect(firstOutput).toMatch(`created database ${temporalDb}`);
    expect(firstOutput).toMatch(`created database ${temporalDb}_visibility`);
    expect(firstOutput).toMatch(/schema of \S+ set up to 1\.18/);
    expect(firstOutput).toMatch(/registered namespace default/);
    expect(firstOutput).toMatch(/registered search attribute ScanRoot/);
    // The Web UI answers, and knows the namespace through the server.
    const namespaces = await (await fetch(`http://127.0.0.1:${uiPort}/api/v1/namespaces`)).text();
    expect(namespaces).toMatch(/"name":\s*"default"/);
    // Registered with the retention the command gives it (a Duration in JSON: "<seconds>s").
    const registered = (JSON.parse(namespaces) as { namespaces: { namespaceInfo: { name: string }; config: { workflowExecutionRetentionTtl: string } }[] }).namespaces;
    const retention = registered.find((namespace) => namespace.namespaceInfo.name === 'default')?.config.workflowExecutionRetentionTtl;
    expect(retention).toBe(`${NAMESPACE_RETENTION_DAYS * 24 * 60 * 60}s`);
    expect(await stopServer(first)).toBe(0);
    // Nothing left behind: neither the server nor the UI answers.
    await expect(fetch(`http://127.0.0.1:${uiPort}/`)).rejects.toThrow();
  }, 15 * 60_000);
});

interface JobBody {
  status: string;
  counts: { probed: number; discovered: number };
  result: { scanned: number } | null;
}

describe('a scan on the cluster', () => {
  it('finishes through a worker SIGKILL and a server restart: every worker probes, each file once in the library', async () => {
    const clips = await ensureTestMedia();
    const root = path.join(work, 'media');
    const files = await buildLibrary(root, FILES, clips);
    const taskQueue = `cluster-${process.pid}-${Date.now()}`;
    const appEnv = {
      ...clientTls('worker'),
      TEMPORAL_ADDRESS: address,
      TEMPORAL_TASK_QUEUE: taskQueue,
      DATABASE_URL: serverUrl(libraryDb),
      DATA_DIR: path.join(work, 'data'),
      PROBER: 'ffprobe',
      PROBE_CONCURRENCY: '1',
      // Batches of 10: 40 of them, so the task queue spreads them over every worker (40 a batch made 15 of 600, and one worker could get none).
      SCAN_BATCH_SIZE: '10',
      // Pictures are the thumbnail tests' matter: these scans end after probing.
      THUMBNAILS: 'off',
    };
    // One prober wrapper per worker: its log says which worker probed what.
    const logs: string[] = [];
    const wrappers: string[] = [];
    const workerEnvs: Record<string, string>[] = [];
    for (let i = 0; i < WORKERS; i++) {
      const logFile = path.join(work, `worker-${i}.log`);
      // 20 ms per file keeps the scan long enough to put the faults in its middle.
      const wrapper = await writeProberWrapper(work, { realPath: realFfprobe, delayMs: 20, logFile });
      logs.push(logFile);
      wrappers.push(wrapper.path);
      workerEnvs.push({ ...appEnv, FFPROBE_PATH: wrapper.path, WORKER_METRICS_PORT: String(await freePort()) });
    }
    const calls = async (): Promise<string[][]> =>
      Promise.all(logs.map(async (log) => (await fs.readFile(log, 'utf8').catch(() => '')).split('\n').filter((line) => line.startsWith(`file:${root}`))));
    const library = new pg.Client({ connectionString: serverUrl(libraryDb) });
    const recorded = async (): Promise<number> => {
      const { rows } = await library.query<{ n: number }>("select count(*)::int as n from videos where path like $1 || '/%'", [root]);
      return rows[0]?.n ?? 0;
    };
    /** Probes started whose result the library has not recorded: what a fault may cost twice. */
    const inFlight = async (): Promise<number> => (await calls()).flat().length - (await recorded());

    let server = await startServer();
    const workers = await Promise.all(
      workerEnvs.map((env) =>
        startPart('worker-main', env, /worker running/, 180_000).then((part) => {
          parts.push(part);
          return part;
        }),
      ),
    );
    const apiPort = await freePort();
    parts.push(await startPart('api/server', { ...appEnv, ...clientTls('api'), PORT: String(apiPort) }, /api listening/, 120_000));
    await library.connect();
    try {
      const base = `http://127.0.0.1:${apiPort}`;
      const started = Date.now();
      const response = await fetch(`${base}/api/v1/videos/scan`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ path: root }),
      });
      expect(response.status).toBe(202);
      const { job_id: jobId } = (await response.json()) as { job_id: string };
      // While the server is down the API answers errors; the poll just tries again.
      const job = async (): Promise<JobBody | null> => {
        try {
          const res = await fetch(`${base}/api/v1/jobs/${jobId}`);
          return res.ok ? ((await res.json()) as JobBody) : null;
        } catch {
          return null;
        }
      };
      const probed = async (): Promise<number> => (await calls()).flat().length;

      // Fault 1: a worker killed half-way through its share: one that has probed, so the kill lands on work it holds.
      await waitFor(probed, (n) => n >= FILES * 0.3, 300_000, 100);
      const probedEach = (await calls()).map((list) => list.length);
      const victimIndex = probedEach.indexOf(Math.max(...probedEach));
      const victim = workers[victimIndex] as Part;
      victim.child.kill('SIGKILL');
      await victim.exited;
      // Its probe host follows it; once no wrapper of its runs, its log is final.
      await waitFor(() => processesMatching(wrappers[victimIndex] as string), (pids) => pids.length === 0, 30_000, 100);
      const inFlightAtKill = await inFlight();
      const probedAtKill = await probed();

      // Fault 2: the Temporal server stopped and started again mid-scan.
      const versionBefore = await schemaVersion();
      await waitFor(probed, (n) => n >= FILES * 0.55, 300_000, 100);
      const inFlightAtStop = await inFlight();
      const stopAsked = Date.now();
      expect(await stopServer(server)).toBe(0);
      const stoppedMs = Date.now() - stopAsked;
      const probedAtStop = await probed();
      const inFlightAtRestart = await inFlight();
      const restartAsked = Date.now();
      server = await startServer();
      const restartMs = Date.now() - restartAsked;
      // A second start on the same databases sets nothing up again.
      expect(server.output()).toMatch(/setup\s+nothing to set up/);
      expect(server.output()).not.toMatch(/created database|set up to|registered/);
      expect(await schemaVersion()).toEqual(versionBefore);
      const probedAtRestart = await probed();

      const end = await waitFor(job, (j) => j !== null && TERMINAL.includes(j.status), 600_000, 250);
      const totalMs = Date.now() - started;
      expect(end?.status).toBe('completed');
      expect(end?.result?.scanned).toBe(FILES);

      // Every file once in the library.
      const { rows } = await library.query<{ n: number; paths: number }>(
        "select count(*)::int as n, count(distinct path)::int as paths from videos where path like $1 || '/%'",
        [root],
      );
      expect(rows[0]).toEqual({ n: FILES, paths: FILES });
      // Every worker probed some files, and every file was probed.
      const perWorker = await calls();
      for (const list of perWorker) expect(list.length).toBeGreaterThan(0);
      const all = perWorker.flat();
      expect(new Set(all).size).toBe(FILES);
      expect(new Set(all)).toEqual(new Set(files.map((file) => `file:${file}`)));
      // Probed twice: at most what was in flight at the kill and around the restart.
      const twice = all.length - FILES;
      expect(twice).toBeLessThanOrEqual(inFlightAtKill + inFlightAtStop + inFlightAtRestart);

      // The surviving workers serve their scan counters and the SDK's worker metrics.
      for (const env of workerEnvs.filter((_, i) => i !== victimIndex)) {
        const page = await (await fetch(`http://127.0.0.1:${env.WORKER_METRICS_PORT}/metrics`)).text();
        const probedHere = page
          .split('\n')
          .filter((line) => line.startsWith('scanner_files_probed_total{'))
          .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
        expect(probedHere).toBeGreaterThan(0);
        expect(page).toMatch(/^temporal_\w+/m);
      }

      process.stderr.write(
        `${JSON.stringify({
          cluster_scan: {
            files: FILES,
            seconds: totalMs / 1000,
            per_worker: perWorker.map((list) => list.length),
            probed_twice: twice,
            kill: { probed: probedAtKill, in_flight: inFlightAtKill },
            server_restart: { probed_at_stop: probedAtStop, probed_at_restart: probedAtRestart, stop_ms: stoppedMs, restart_ms: restartMs, in_flight: [inFlightAtStop, inFlightAtRestart] },
          },
        })}\n`,
      );
    } finally {
      await library.end();
    }
  }, 30 * 60_000);
});
