/**
 * The real Temporal server (not the dev server) with its persistence and
 * visibility in PostgreSQL, and the Temporal Web UI beside it: the binaries
 * built from the Go module proxy, the databases and schema set up with
 * Temporal's SQL tool on first start, the namespace and search attribute
 * registered. What `npm run temporal:server` runs.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import readline from 'node:readline';
import type { Readable } from 'node:stream';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Connection, type TLSConfig } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { Client as PgClient } from 'pg';
import type { TemporalClientSecurity, TemporalServerTls } from '../config';
import type { Logger } from '../logger';
import { temporalTls } from './client';
import { registerSearchAttributes, temporalAnswers } from './dev-server';
import { obtainGoBinary, type GoBinarySpec } from './go-binary';

const run = promisify(execFile);

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

/**
 * The two databases and the schema version the SQL tool of
 * TEMPORAL_SERVER_VERSION brings (its embedded `schema/postgresql/v12/*`;
 * the highest folder under `versioned/`). Bump with the version above.
 */
export const TEMPORAL_SCHEMAS = {
  persistence: { schemaName: 'postgresql/v12/temporal', version: '1.18' },
  visibility: { schemaName: 'postgresql/v12/visibility', version: '1.9' },
} as const;

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

/** Where the server keeps its data: a PostgreSQL server and the persistence database's name. */
export interface TemporalDatabase {
  host: string;
  port: number;
  user: string;
  password: string;
  /** Persistence; visibility lives beside it in `<database>_visibility`. */
  database: string;
  visibilityDatabase: string;
  tls: boolean;
  verifyHost: boolean;
}

/** Parses TEMPORAL_DATABASE_URL (`postgres://user:pass@host:port/db?sslmode=…`). */
export function parseTemporalDatabaseUrl(url: string): TemporalDatabase {
  const parsed = new URL(url);
  if (!/^postgres(ql)?:$/.test(parsed.protocol)) throw new Error(`expected postgres://… (got ${parsed.protocol})`);
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, '')) || 'temporal';
  const sslmode = parsed.searchParams.get('sslmode') ?? 'disable';
  return {
    host: parsed.hostname || '127.0.0.1',
    port: Number(parsed.port || 5432),
    user: decodeURIComponent(parsed.username) || 'postgres',
    password: decodeURIComponent(parsed.password),
    database,
    visibilityDatabase: `${database}_visibility`,
    tls: ['require', 'verify-ca', 'verify-full'].includes(sslmode),
    verifyHost: sslmode === 'verify-full',
  };
}

/** What a start found in one database before doing anything. */
type SchemaState = { kind: 'no-database' } | { kind: 'no-schema' } | { kind: 'schema'; version: string };

function pgConfig(db: TemporalDatabase, database: string): ConstructorParameters<typeof PgClient>[0] {
  return {
    host: db.host,
    port: db.port,
    user: db.user,
    password: db.password || undefined,
    database,
    ssl: db.tls ? { rejectUnauthorized: db.verifyHost } : undefined,
    connectionTimeoutMillis: 10_000,
  };
}

async function withPg<T>(db: TemporalDatabase, database: string, fn: (client: PgClient) => Promise<T>): Promise<T> {
  const client = new PgClient(pgConfig(db, database));
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function schemaState(db: TemporalDatabase, database: string): Promise<SchemaState> {
  const exists = await withPg(db, 'postgres', async (client) => (await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database])).rowCount);
  if (!exists) return { kind: 'no-database' };
  return withPg(db, database, async (client) => {
    const table = await client.query<{ t: string | null }>("SELECT to_regclass('schema_version')::text AS t");
    if (!table.rows[0]?.t) return { kind: 'no-schema' };
    const row = await client.query<{ curr_version: string | null }>('SELECT curr_version FROM schema_version WHERE db_name = $1', [database]);
    const version = row.rows[0]?.curr_version;
    return version ? { kind: 'schema', version } : { kind: 'no-schema' };
  });
}

/** Compares dotted versions numerically (`1.9` < `1.18`). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const diff = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (diff !== 0) return diff;
  }
  return 0;
}

async function sqlTool(binary: string, db: TemporalDatabase, database: string, args: string[]): Promise<void> {
  // Connection settings through the tool's environment variables: the password stays out of `ps`.
  const env = {
    ...process.env,
    SQL_PLUGIN: 'postgres12',
    SQL_HOST: db.host,
    SQL_PORT: String(db.port),
    SQL_USER: db.user,
    SQL_PASSWORD: db.password,
    SQL_DATABASE: database,
    ...(db.tls ? { SQL_TLS: 'true', ...(db.verifyHost ? {} : { SQL_TLS_DISABLE_HOST_VERIFICATION: 'true' }) } : {}),
  };
  try {
    await run(binary, args, { env, timeout: 5 * 60_000, maxBuffer: 16 * 1024 * 1024 });
  } catch (error) {
    const detail = error as { stderr?: string; stdout?: string; message: string };
    const text = `${detail.stderr ?? ''}${detail.stdout ?? ''}`.trim().split('\n').slice(-3).join(' | ');
    throw new Error(`temporal sql tool ${args.join(' ')} on ${database} failed: ${text || detail.message}`);
  }
}

/**
 * Brings both databases to the schema of TEMPORAL_SERVER_VERSION with the SQL
 * tool: creates what is missing, updates what is older, and touches nothing
 * that is current. Returns one line per step taken (none on a second start).
 */
export async function setUpTemporalDatabases(options: { sqlTool: string; database: TemporalDatabase; log: (line: string) => void }): Promise<string[]> {
  const steps: string[] = [];
  const step = (line: string): void => {
    steps.push(line);
    options.log(line);
  };
  const targets = [
    { name: options.database.database, ...TEMPORAL_SCHEMAS.persistence },
    { name: options.database.visibilityDatabase, ...TEMPORAL_SCHEMAS.visibility },
  ];
  for (const target of targets) {
    const state = await schemaState(options.database, target.name);
    if (state.kind === 'schema' && compareVersions(state.version, target.version) >= 0) continue;
    if (state.kind === 'no-database') {
      await sqlTool(options.sqlTool, options.database, target.name, ['create-database']);
      step(`created database ${target.name}`);
    }
    if (state.kind !== 'schema') {
      // Version 0.0 sets up only the version tables; update-schema then applies every versioned step.
      await sqlTool(options.sqlTool, options.database, target.name, ['setup-schema', '-v', '0.0']);
    }
    await sqlTool(options.sqlTool, options.database, target.name, ['update-schema', '--schema-name', target.schemaName]);
    step(`schema of ${target.name} ${state.kind === 'schema' ? `updated from ${state.version}` : 'set up'} to ${target.version}`);
  }
  return steps;
}

function splitAddress(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  const port = Number(address.slice(at + 1));
  if (at < 0 || !Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`expected host:port (got ${address})`);
  return { host: address.slice(0, at) || '127.0.0.1', port };
}

/**
 * Ports of one server process, a block from the frontend's: gRPC of the
 * frontend P, history P+1, matching P+2, internal worker P+3; their
 * membership ports P+4 … P+7; Prometheus metrics P+8 (loopback only).
 */
export function serverPorts(frontendPort: number): { grpc: number[]; membership: number[]; metrics: number } {
  // The server records membership ports in a smallint column: the block must end below 32768.
  if (frontendPort + 8 > 32767) throw new Error(`the frontend port ${frontendPort} must be at most 32759: the services after it (P+1 … P+8) need ports below 32768`);
  return {
    grpc: [0, 1, 2, 3].map((i) => frontendPort + i),
    membership: [4, 5, 6, 7].map((i) => frontendPort + i),
    metrics: frontendPort + 8,
  };
}

/**
 * The frontend's TLS (`global.tls`): its certificate; with a client CA, every
 * client must present a certificate it signed (requireClientAuth). The
 * server's own calls to its frontend (its system worker, the frontend client
 * of the other services) present the server certificate as their client
 * certificate, so it must carry clientAuth too and be signed by that CA, and
 * they verify the frontend by `serverName`.
 */
export function frontendTlsConfig(tls: TemporalServerTls, client: TemporalClientSecurity): unknown {
  const rootCaFiles = [client.tls?.ca?.path ?? tls.clientCa?.path].filter((file): file is string => file !== undefined);
  const serverName = client.tls?.serverName ?? 'localhost';
  const internalClient = { serverName, ...(rootCaFiles.length > 0 ? { rootCaFiles } : {}) };
  return {
    frontend: {
      server: {
        certFile: tls.cert.path,
        keyFile: tls.key.path,
        requireClientAuth: tls.clientCa !== undefined,
        ...(tls.clientCa ? { clientCaFiles: [tls.clientCa.path] } : {}),
      },
      client: internalClient,
    },
    systemWorker: { certFile: tls.cert.path, keyFile: tls.key.path, client: internalClient },
  };
}

/** The server's static configuration (YAML is a superset of JSON, so JSON it is). */
function serverConfig(
  db: TemporalDatabase,
  address: string,
  dynamicConfigFile: string,
  logLevel: string,
  tls: { server: TemporalServerTls; client: TemporalClientSecurity } | undefined,
): unknown {
  const { host, port } = splitAddress(address);
  const ports = serverPorts(port);
  const wildcard = host === '0.0.0.0' || host === '::';
  const bind = host === 'localhost' ? '127.0.0.1' : host;
  const store = (database: string, maxConns: number, maxIdleConns: number): unknown => ({
    sql: {
      pluginName: 'postgres12',
      databaseName: database,
      connectAddr: `${db.host}:${db.port}`,
      connectProtocol: 'tcp',
      user: db.user,
      password: db.password,
      maxConns,
      maxIdleConns,
      maxConnLifetime: '1h',
      ...(db.tls ? { tls: { enabled: true, enableHostVerification: db.verifyHost } } : {}),
    },
  });
  // Only the frontend is for clients: with a wildcard address the other services (and their
  // membership) stay on loopback, where the frontend reaches them, not on every interface.
  const service = (i: number): unknown => ({
    rpc: { grpcPort: ports.grpc[i], membershipPort: ports.membership[i], bindOnIP: i > 0 && wildcard ? '127.0.0.1' : bind },
  });
  return {
    log: { stdout: true, level: logLevel },
    persistence: {
      defaultStore: 'postgres-default',
      visibilityStore: 'postgres-visibility',
      // Fixed for the life of the database. 16 lets history work spread over
      // many cores and PostgreSQL connections without the idle cost of hundreds.
      numHistoryShards: 16,
      // Each of the four services keeps its own pools: at most 4 × (10 + 4) connections.
      datastores: { 'postgres-default': store(db.database, 10, 4), 'postgres-visibility': store(db.visibilityDatabase, 4, 1) },
    },
    global: {
      // Members find each other at this address; a wildcard bind has to name a reachable one.
      membership: { maxJoinDuration: '30s', broadcastAddress: wildcard ? '127.0.0.1' : bind },
      metrics: { prometheus: { framework: 'tally', timerType: 'histogram', listenAddress: `127.0.0.1:${ports.metrics}` } },
      ...(tls ? { tls: frontendTlsConfig(tls.server, tls.client) } : {}),
    },
    services: { frontend: service(0), history: service(1), matching: service(2), worker: service(3) },
    clusterMetadata: {
      enableGlobalNamespace: false,
      failoverVersionIncrement: 10,
      masterClusterName: 'active',
      currentClusterName: 'active',
      clusterInformation: {
        active: { enabled: true, initialFailoverVersion: 1, rpcName: 'frontend', rpcAddress: `${wildcard ? '127.0.0.1' : bind}:${port}` },
      },
    },
    dcRedirectionPolicy: { policy: 'noop' },
    dynamicConfigClient: { filepath: dynamicConfigFile, pollInterval: '60s' },
  };
}

/** Dynamic configuration: the server's defaults but where the service needs more. */
const DYNAMIC_CONFIG = {
  // The default 10 per second throttles job lists and the Web UI once a few operators poll.
  'frontend.namespaceRPS.visibility': [{ value: 100 }],
};

function uiConfig(address: string, uiHost: string, uiPort: number, namespace: string, tls: { server: TemporalServerTls; client: TemporalClientSecurity } | undefined): unknown {
  // Over TLS the UI server verifies the frontend like any client and presents its own certificate.
  const uiTls = tls
    ? {
        tls: {
          ...(tls.client.tls?.ca ? { caFile: tls.client.tls.ca.path } : tls.server.clientCa ? { caFile: tls.server.clientCa.path } : {}),
          ...(tls.server.uiCert && tls.server.uiKey ? { certFile: tls.server.uiCert.path, keyFile: tls.server.uiKey.path } : {}),
          serverName: tls.client.tls?.serverName ?? 'localhost',
          enableHostVerification: true,
        },
      }
    : {};
  return {
    ...uiTls,
    temporalGrpcAddress: address.replace(/^0\.0\.0\.0:/, '127.0.0.1:'),
    host: uiHost,
    port: uiPort,
    enableUi: true,
    defaultNamespace: namespace,
    notifyOnNewVersion: false,
    refreshInterval: '0s',
    cors: { cookieInsecure: false, allowOrigins: [], unsafeAllowAllOrigins: false },
  };
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
      workflowExecutionRetentionPeriod: msToTs(`${NAMESPACE_RETENTION_DAYS} days`),
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
