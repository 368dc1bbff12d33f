/**
 * The real Temporal server (not the dev server) with its persistence and
 * visibility in PostgreSQL, and the Temporal Web UI beside it: the binaries
 * built from the Go module proxy, the databases and schema set up with
 * Temporal's SQL tool on first start, the namespace and search attribute
 * registered. What `npm run temporal:server` runs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import readline from 'node:readline';
import type { Readable } from 'node:stream';
import os from 'node:os';
import path from 'node:path';
import { Connection, type TLSConfig } from '@temporalio/client';
import Long from 'long';
import type { TemporalClientSecurity, TemporalServerTls } from '../config';
import type { Logger } from '../logger';
import { temporalTls } from './client';
import { registerSearchAttributes, temporalAnswers } from './dev-server';
import { obtainGoBinary, type GoBinarySpec } from './go-binary';
import { DYNAMIC_CONFIG, serverConfig, serverPorts, splitAddress, uiConfig } from './server-config';
import { parseTemporalDatabaseUrl, setUpTemporalDatabases } from './server-database';

/** Server and SQL tool come from one module version; their schema must match it. */
export const TEMPORAL_SERVER_VERSION = 'v1.29.1';

export const TEMPORAL_SERVER: GoBinarySpec = {
  title: 'the Temporal server',
  module: `go.temporal.io/server/cmd/server@${TEMPORAL_SERVER_VERSION}`,
  cacheDir: `temporal-server/${TEMPORAL_SERVER_VERSION}`,
  binary: 'server',
  // As the server's Makefile builds it: without the optional gRPC modules (no cgo needed).
  tags: ['disable_grpc_modules'],
  checkArgs: ['--version'],
};

export const TEMPORAL_SQL_TOOL: GoBinarySpec = {
  title: "the Temporal server's SQL tool",
  module: `go.temporal.io/server/cmd/tools/sql@${TEMPORAL_SERVER_VERSION}`,
  cacheDir: `temporal-sql/${TEMPORAL_SERVER_VERSION}`,
  binary: 'sql',
  checkArgs: ['--version'],
};

export const TEMPORAL_UI_SERVER: GoBinarySpec = {
  title: 'the Temporal Web UI server',
  module: 'github.com/temporalio/ui-server/v2/cmd/server@v2.42.1',
  cacheDir: 'temporal-ui/v2.42.1',
  binary: 'server',
  checkArgs: ['--version'],
};


/** Retention of closed scans' histories in a namespace this command registers. */
export const NAMESPACE_RETENTION_DAYS = 7;

export interface TemporalBinaries {
  server: string;
  sqlTool: string;
  uiServer: string;
}

/** Obtains the three binaries one after another (each build uses every core). */
export async function obtainTemporalBinaries(options: { projectRoot: string; log?: (line: string) => void }): Promise<TemporalBinaries> {
  const server = await obtainGoBinary(TEMPORAL_SERVER, options);
  const sqlTool = await obtainGoBinary(TEMPORAL_SQL_TOOL, options);
  const uiServer = await obtainGoBinary(TEMPORAL_UI_SERVER, options);
  return { server, sqlTool, uiServer };
}

/** Registers the namespace unless it exists; true when it was registered now. */
async function ensureNamespace(connection: Connection, namespace: string): Promise<boolean> {
  try {
    await connection.workflowService.describeNamespace({ namespace });
    return false;
  } catch (error) {
    if (!/not found/i.test(String(error))) throw error;
  }
  try {
    await connection.workflowService.registerNamespace({
      namespace,
      // A google.protobuf.Duration, whose seconds are a 64-bit Long.
      workflowExecutionRetentionPeriod: { seconds: Long.fromNumber(NAMESPACE_RETENTION_DAYS * 24 * 60 * 60) },
    });
    return true;
  } catch (error) {
    if (/already exists/i.test(String(error))) return false;
    throw error;
  }
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number, failed: () => string | null): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    const reason = failed();
    if (reason) throw new Error(`${what}: ${reason}`);
    if (Date.now() > deadline) throw new Error(`${what}: not within ${Math.round(timeoutMs / 1000)} s`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function retry<T>(fn: () => Promise<T>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

interface Child {
  process: ChildProcess;
  exited: Promise<void>;
  done: () => boolean;
  tail: () => string;
}

/**
 * util-linux's setpriv, where there is one: it sets the parent-death signal and
 * execs, so a child gets SIGTERM should this process die without stopping it
 * (a SIGKILL runs no exit handler).
 */
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((file) => existsSync(file));

/**
 * Calls `onLine` once per line of a child's output stream, whatever the
 * chunks the pipe delivers: a line split across two chunks is one line, and
 * a last line without a newline is passed on when the stream ends.
 */
export function forEachLine(stream: Readable, onLine: (line: string) => void): void {
  const lines = readline.createInterface({ input: stream, crlfDelay: Infinity });
  lines.on('line', (line) => {
    if (line.length > 0) onLine(line);
  });
}

function startChild(binary: string, args: string[], onLine: (line: string) => void): Child {
  const child = SETPRIV
    ? spawn(SETPRIV, ['--pdeathsig', 'TERM', '--', binary, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let done = false;
  const keep = (line: string): void => {
    lines.push(line);
    if (lines.length > 40) lines.shift();
    onLine(line);
  };
  if (child.stdout) forEachLine(child.stdout, keep);
  if (child.stderr) forEachLine(child.stderr, keep);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      done = true;
      resolve();
    });
    child.once('error', () => {
      done = true;
      resolve();
    });
  });
  return { process: child, exited, done: () => done, tail: () => lines.slice(-5).join(' | ') };
}

async function stopChild(child: Child | undefined, graceMs: number): Promise<void> {
  if (!child || child.done()) return;
  child.process.kill('SIGTERM');
  const timer = setTimeout(() => child.process.kill('SIGKILL'), graceMs);
  await child.exited;
  clearTimeout(timer);
}

export interface TemporalClusterOptions {
  binaries: TemporalBinaries;
  databaseUrl: string;
  /** The frontend's host:port; the other services take the ports after it (see serverPorts). */
  address: string;
  namespace: string;
  uiPort: number;
  logger: Logger;
  /** Level of the server's own log lines (passed through at warn or worse). */
  serverLogLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** TLS and API key of this command's own calls to the frontend (TEMPORAL_TLS_*, TEMPORAL_API_KEY). */
  security?: TemporalClientSecurity;
  /** Serve the frontend over TLS (and require client certificates when it names a client CA). */
  serverTls?: TemporalServerTls;
}

export interface TemporalClusterHandle {
  address: string;
  uiUrl: string;
  metricsUrl: string;
  /** Setup steps this start took: empty when the databases, namespace and attribute were there. */
  setUp: string[];
  /** Resolves when the server or the UI exits on its own (a crash), with which one. */
  died: Promise<string>;
  /** SIGTERM to the UI and the server, SIGKILL after the grace time; leaves no process. */
  stop(): Promise<void>;
}

/**
 * Sets up (idempotently) and starts the Temporal server with all four
 * services in one process, registers the namespace and the `ScanRoot` search
 * attribute, then starts the Web UI. Ready when it returns.
 */
export async function startTemporalCluster(options: TemporalClusterOptions): Promise<TemporalClusterHandle> {
  const { logger } = options;
  const db = parseTemporalDatabaseUrl(options.databaseUrl);
  const { host, port } = splitAddress(options.address);
  const security: TemporalClientSecurity = options.security ?? { tls: undefined, apiKey: undefined };
  const tls = options.serverTls ? { server: options.serverTls, client: security } : undefined;
  if (options.serverTls?.clientCa && !security.tls?.cert) {
    throw new Error('invalid TEMPORAL_TLS_CERT: the frontend requires client certificates (TEMPORAL_SERVER_TLS_CLIENT_CA), so this command needs one for its own calls');
  }
  if (options.serverTls && !security.tls) {
    throw new Error('invalid TEMPORAL_TLS_CA: the frontend serves TLS (TEMPORAL_SERVER_TLS_CERT), so this command must connect with TLS too (set TEMPORAL_TLS_CA, or TEMPORAL_TLS_SERVER_NAME for a publicly trusted certificate)');
  }
  const ownTls: TLSConfig | undefined = temporalTls(security);
  const ownOptions = { ...(ownTls ? { tls: ownTls } : {}), ...(security.apiKey !== undefined ? { apiKey: security.apiKey } : {}) };
  const setUp = await setUpTemporalDatabases({
    sqlTool: options.binaries.sqlTool,
    database: db,
    log: (line) => logger.info({ component: 'temporal-setup' }, line),
  });

  // Private folder: the configuration holds the database password.
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'temporal-server-'));
  await fs.chmod(dir, 0o700);
  const dynamicConfigFile = path.join(dir, 'dynamicconfig.yaml');
  await fs.mkdir(path.join(dir, 'config'));
  await fs.mkdir(path.join(dir, 'ui', 'config'), { recursive: true });
  await fs.writeFile(dynamicConfigFile, JSON.stringify(DYNAMIC_CONFIG, null, 2), { mode: 0o600 });
  const level = options.serverLogLevel ?? 'warn';
  await fs.writeFile(path.join(dir, 'config', 'production.yaml'), JSON.stringify(serverConfig(db, options.address, dynamicConfigFile, level, tls), null, 2), {
    mode: 0o600,
  });
  const uiHost = host === 'localhost' ? '127.0.0.1' : host;
  await fs.writeFile(path.join(dir, 'ui', 'config', 'production.yaml'), JSON.stringify(uiConfig(options.address, uiHost, options.uiPort, options.namespace, tls), null, 2));

  // Until it answers, the server logs errors that are part of starting (services dialling
  // each other before they listen): those go to debug, the rest keep their level.
  let serverReady = false;
  const passLine = (component: string) => (line: string): void => {
    const parsed = /^\{/.test(line) ? (JSON.parse(line) as { level?: string; msg?: string }) : null;
    if (!serverReady) logger.debug({ component, server: parsed ?? line }, parsed?.msg ?? line);
    else if (parsed?.level === 'error' || parsed?.level === 'fatal' || parsed?.level === 'panic') logger.error({ component, server: parsed }, parsed.msg ?? line);
    else if (parsed?.level === 'warn') logger.warn({ component, server: parsed }, parsed.msg ?? line);
    else logger.debug({ component }, line);
  };

  let server: Child | undefined;
  let ui: Child | undefined;
  const stopAll = async (): Promise<void> => {
    // Services leaving one by one log dial errors to each other: part of stopping.
    serverReady = false;
    await stopChild(ui, 5_000);
    await stopChild(server, 20_000);
    await fs.rm(dir, { recursive: true, force: true });
  };
  process.once('exit', () => {
    // Should this process die without stopping them, the server and UI must not linger.
    if (ui && !ui.done()) ui.process.kill('SIGKILL');
    if (server && !server.done()) server.process.kill('SIGKILL');
  });

  try {
    server = startChild(
      options.binaries.server,
      ['--root', dir, '--config', 'config', '--env', 'production', '--allow-no-auth', 'start', '--service', 'frontend', '--service', 'history', '--service', 'matching', '--service', 'worker'],
      (line) => {
        try {
          passLine('temporal-server')(line);
        } catch {
          logger.debug({ component: 'temporal-server' }, line);
        }
      },
    );
    const serverChild = server;
    await until(`the Temporal server at ${options.address}`, () => temporalAnswers(options.address.replace(/^0\.0\.0\.0:/, '127.0.0.1:'), 1000, ownOptions), 120_000, () =>
      serverChild.done() ? `exited: ${serverChild.tail() || 'no output'}` : null,
    );
    serverReady = true;
    const connection = await Connection.connect({ ...ownOptions, address: options.address.replace(/^0\.0\.0\.0:/, '127.0.0.1:') });
    try {
      if (await ensureNamespace(connection, options.namespace)) {
        setUp.push(`registered namespace ${options.namespace} (retention ${NAMESPACE_RETENTION_DAYS} days)`);
        logger.info({ component: 'temporal-setup' }, setUp[setUp.length - 1]);
      }
      // The frontend learns of a new namespace within its cache refresh (seconds).
      await until(`namespace ${options.namespace}`, async () => {
        await connection.workflowService.describeNamespace({ namespace: options.namespace });
        return true;
      }, 60_000, () => null);
      // Operator calls on a namespace just registered fail until the cluster has it everywhere.
      const before = await retry(() => connection.operatorService.listSearchAttributes({ namespace: options.namespace }), 60_000);
      if (!('ScanRoot' in (before.customAttributes ?? {}))) {
        await retry(() => registerSearchAttributes(connection, options.namespace), 60_000);
        setUp.push(`registered search attribute ScanRoot in ${options.namespace}`);
        logger.info({ component: 'temporal-setup' }, setUp[setUp.length - 1]);
      }
      // Usable once the frontend's namespace cache has it: a visibility query naming it succeeds.
      await until('the ScanRoot search attribute', async () => {
        await connection.workflowService.countWorkflowExecutions({ namespace: options.namespace, query: 'ScanRoot = "/"' });
        return true;
      }, 60_000, () => null);
    } finally {
      await connection.close();
    }

    ui = startChild(options.binaries.uiServer, ['--root', path.join(dir, 'ui'), '--config', 'config', '--env', 'production', 'start'], (line) =>
      logger.debug({ component: 'temporal-ui' }, line),
    );
    const uiChild = ui;
    const uiUrl = `http://${uiHost === '0.0.0.0' ? '127.0.0.1' : uiHost}:${options.uiPort}`;
    await until(`the Temporal Web UI at ${uiUrl}`, async () => (await fetch(uiUrl)).ok, 60_000, () =>
      uiChild.done() ? `exited: ${uiChild.tail() || 'no output'}` : null,
    );
    const died = Promise.race([serverChild.exited.then(() => 'temporal server'), uiChild.exited.then(() => 'temporal ui')]);
    return {
      address: options.address,
      uiUrl,
      metricsUrl: `http://127.0.0.1:${serverPorts(port).metrics}/metrics`,
      setUp,
      died,
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
