/**
 * A real stack for integration tests: the test run's Temporal dev server, a
 * worker on its own task queue, the real prober, a SQLite library in a temp
 * dir, and the HTTP API on a free port.
 */
import { promises as fs } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Server } from 'node:http';
import type { Client } from '@temporalio/client';
import { NativeConnection, type Worker, type WorkflowBundle } from '@temporalio/worker';
import { createApp } from '../../src/api/app';
import { loadConfig, type Config } from '../../src/config';
import { Library } from '../../src/library/library';
import { createLogger } from '../../src/logger';
import type { FileProber } from '../../src/probe/contained';
import { createIsolatedProber, type IsolatedProber } from '../../src/media-host/pool';
import { hostileHost } from './media-hosts';
import { connectClient } from '../../src/temporal/client';
import { ScanService } from '../../src/scans';
import { bundleWorkflows as bundleWorkerWorkflows, createScanWorker } from '../../src/worker';

let bundle: Promise<WorkflowBundle> | undefined;

/**
 * The workflow code's bundle: the one the jest global setup built for the whole
 * run (TEMPORAL_TEST_WORKFLOW_BUNDLE), read once per test file; bundled here
 * only when the tests run without that setup.
 */
export function workflowBundle(): Promise<WorkflowBundle> {
  const built = process.env.TEMPORAL_TEST_WORKFLOW_BUNDLE;
  bundle ??= built ? fs.readFile(built, 'utf8').then((code) => ({ code })) : bundleWorkflows();
  return bundle;
}

/** Bundles the workflow code with webpack, as a worker without a bundle would. */
export async function bundleWorkflows(): Promise<WorkflowBundle> {
  return { code: await bundleWorkerWorkflows() };
}

export function temporalAddress(): string {
  const address = process.env.TEMPORAL_TEST_ADDRESS;
  if (!address) throw new Error('TEMPORAL_TEST_ADDRESS is not set: the jest global setup starts the dev server');
  return address;
}

export interface Stack {
  config: Config;
  dir: string;
  library: Library;
  prober: StackProber;
  client: Client;
  scans: ScanService;
  worker: Worker;
  baseUrl: string;
  taskQueue: string;
  /**
   * Every call the stack's client (ScanService, the API) made to Temporal's
   * workflow service, in order: the reads that reached Temporal, countable.
   */
  temporalCalls: TemporalCall[];
  /** Stops the worker (waiting for it), the API, the connections and removes the temp dir. */
  close(): Promise<void>;
}

/** One call of Temporal's workflow service: its method and the workflow it names, if any. */
export interface TemporalCall {
  method: string;
  workflowId: string | undefined;
}

/**
 * Records every call the connection's workflow service makes into `calls`
 * (the client looks the service up on its connection at every call).
 */
function recordWorkflowServiceCalls(connection: { workflowService: object }, calls: TemporalCall[]): void {
  const service = connection.workflowService;
  const recorded = new Proxy(service, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function' || typeof property !== 'string') return value;
      return (request?: { execution?: { workflowId?: string | null } | null; workflowId?: string | null }, ...rest: unknown[]) => {
        calls.push({ method: property, workflowId: request?.execution?.workflowId ?? request?.workflowId ?? undefined });
        return (value as (...args: unknown[]) => unknown).call(target, request, ...rest);
      };
    },
  });
  Object.defineProperty(connection, 'workflowService', { value: recorded, configurable: true, writable: true });
}

/** How many calls of `method` (e.g. 'describeWorkflowExecution') named the workflow `workflowId`. */
export function temporalCallsOf(stack: Pick<Stack, 'temporalCalls'>, method: string, workflowId: string): number {
  return stack.temporalCalls.filter((call) => call.method === method && call.workflowId === workflowId).length;
}

let queueCounter = 0;

/** Starts a full stack; `env` overrides configuration variables (FFPROBE_PATH, PROBE_TIMEOUT_MS, …). */
export async function startStack(
  env: Record<string, string> = {},
  options: {
    databaseUrl?: string;
    wrapProber?: (prober: StackProber) => StackProber;
    proberCrashMarker?: string;
    probeLog?: string;
    /** How long past a probe's limit, or a cancel, a probe host may take to answer before it is killed (the pool's default when absent). */
    proberGraceMs?: number;
  } = {},
): Promise<Stack> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'scanner-stack-'));
  const config = loadConfig({
    TEMPORAL_ADDRESS: temporalAddress(),
    DATA_DIR: path.join(dir, 'data'),
    PORT: '0',
    LOG_LEVEL: 'silent',
    ...(options.databaseUrl ? { DATABASE_URL: options.databaseUrl } : {}),
    ...env,
  });
  const taskQueue = `test-${process.pid}-${Date.now()}-${queueCounter++}`;
  const logger = createLogger('test', 'silent');
  const library = await Library.open(config.databaseUrl);
  // The worker's default prober (libavformat in the probe hosts), except where a
  // test brings its own ffprobe (a wrapper that hangs, logs or slows it down).
  const realProber = createIsolatedProber({
    kind: config.prober ?? (config.ffprobePath !== undefined ? 'ffprobe' : 'libav'),
    ffprobePath: config.ffprobePath,
    concurrency: config.probeConcurrency,
    thumbnailConcurrency: config.thumbnailConcurrency,
    ...(options.proberCrashMarker !== undefined || options.probeLog !== undefined
      ? { host: hostileHost({ crashOn: options.proberCrashMarker, probeLog: options.probeLog }) }
      : {}),
    fsCallTimeoutMs: config.fsCallTimeoutMs,
    graceMs: options.proberGraceMs,
  });
  const prober = options.wrapProber ? options.wrapProber(realProber) : realProber;
  const nativeConnection = await NativeConnection.connect({ address: config.temporal.address });
  const { client, connection } = await connectClient(config);
  const temporalCalls: TemporalCall[] = [];
  recordWorkflowServiceCalls(connection, temporalCalls);
  const worker = await createScanWorker({
    config,
    connection: nativeConnection,
    library,
    prober,
    taskQueue,
    workflowBundle: await workflowBundle(),
    client,
  });
  const running = worker.run();
  const scans = new ScanService(client, config, library, taskQueue);
  const app = createApp({
    config,
    scans,
    library,
    logger,
    checkTemporal: async () => {
      await connection.healthService.check({});
    },
  });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const port = (server.address() as AddressInfo).port;
  return {
    config,
    dir,
    library,
    prober,
    client,
    scans,
    worker,
    taskQueue,
    temporalCalls,
    baseUrl: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running.catch(() => undefined);
      await nativeConnection.close();
      await connection.close();
      await realProber.close();
      await library.close();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

/** A worker's prober as the stack hands it to the worker: the probe hosts, or a test's wrapper of them. */
export type StackProber = Pick<IsolatedProber, 'path' | 'version'> & FileProber;

/**
 * The same prober, running `before(file)` ahead of every probe (ahead of its
 * turn at the prober, and of its checks inside the root in the host), and
 * `after(file)` once a probe has run to its end (not when it rejects, as a
 * stopped one does): how tests count, slow down, fail or hold back the probes
 * of the worker's real prober.
 */
export function withProbeHook(
  prober: StackProber,
  before: (file: string, options: { timeoutMs: number; signal?: AbortSignal }) => Promise<void> | void,
  after?: (file: string) => void,
): StackProber {
  return {
    get path() {
      return prober.path;
    },
    version: () => prober.version(),
    probeFile: async (request) => {
      await before(request.file, request);
      const result = await prober.probeFile(request);
      after?.(request.file);
      return result;
    },
  };
}

/**
 * Files under a folder named `held` are not probed until their scan is
 * cancelled: a scan of such a folder runs as long as a test needs it to.
 */
export function holdingProber(prober: StackProber): StackProber {
  return withProbeHook(prober, async (file, options) => {
    if (!file.includes(`${path.sep}held${path.sep}`)) return;
    await new Promise((_resolve, reject) => {
      options.signal?.addEventListener('abort', () => reject(options.signal?.reason), { once: true });
    });
  });
}

/** JSON over real HTTP. */
export async function http<T = Record<string, unknown>>(
  baseUrl: string,
  method: string,
  route: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: T; ms: number }> {
  const started = performance.now();
  const res = await fetch(`${baseUrl}${route}`, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  const ms = performance.now() - started;
  return { status: res.status, body: (text.length > 0 ? JSON.parse(text) : {}) as T, ms };
}

/** Polls until the predicate holds, or fails after the timeout. */
export async function waitFor<T>(read: () => Promise<T>, until: (value: T) => boolean, timeoutMs = 60_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (until(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(value).slice(0, 500)}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/**
 * Writes an ffprobe wrapper script: logs every call's file to `logFile`,
 * sleeps `delayMs` before probing, and hangs (exec sleep) on files whose
 * name contains `hangOn`. The real ffprobe does the work otherwise.
 */
export async function writeProberWrapper(
  dir: string,
  options: { realPath: string; delayMs?: number; hangOn?: string; logFile?: string },
): Promise<{ path: string; hangMarker: string }> {
  const file = path.join(dir, `ffprobe-wrapper-${Math.random().toString(36).slice(2)}.sh`);
  // A unique sleep length, so that the hanging process can be found by its command line.
  const hangMarker = `299.${Math.floor(Math.random() * 1e6)}`;
  const lines = [
    '#!/bin/sh',
    'last=""',
    'for a in "$@"; do last="$a"; done',
    options.logFile ? `printf '%s\\n' "$last" >> '${options.logFile}'` : '',
    options.hangOn ? `case "$last" in *${options.hangOn}*) exec sleep ${hangMarker} ;; esac` : '',
    options.delayMs ? `sleep ${(options.delayMs / 1000).toFixed(3)}` : '',
    `exec '${options.realPath}' "$@"`,
  ];
  await fs.writeFile(file, lines.filter((l) => l.length > 0).join('\n') + '\n', { mode: 0o755 });
  return { path: file, hangMarker };
}

/** Processes whose command line mentions `needle` (read from /proc). */
export async function processesMatching(needle: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmdline = await fs.readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(needle)) pids.push(Number(entry));
  }
  return pids;
}
