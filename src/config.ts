import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { parseDuration } from './model/duration';
import { redactSecrets } from './errors';
import { DEFAULT_SCAN_EXCLUDE } from './model/types';

/**
 * The one place that reads `process.env`. Every variable of API.md is parsed
 * once through this schema; a bad value stops start-up with one line naming
 * the variable.
 */
const positiveInt = z.coerce.number().int().positive();

const absoluteDirList = z
  .string()
  .transform((value) => value.split(':').filter((part) => part.length > 0))
  .refine((parts) => parts.every((part) => path.isAbsolute(part)), 'every entry must be an absolute path');

/**
 * PATH_MAP: `from=to` pairs, comma-separated, translating the paths Sonarr or
 * Radarr put in their webhooks into the paths the workers see. Longest `from`
 * first, so the most specific mapping wins.
 */
const pathMapSchema = z
  .string()
  .transform((value) => value.split(',').map((pair) => pair.trim()).filter((pair) => pair.length > 0))
  .refine((pairs) => pairs.every((pair) => /^[^=]+=[^=]+$/.test(pair)), 'expected from=to pairs separated by commas')
  .transform((pairs) => pairs.map((pair) => {
    const [from, to] = pair.split('=') as [string, string];
    return { from: from.trim(), to: to.trim() };
  }))
  .refine((pairs) => pairs.every((pair) => path.isAbsolute(pair.to)), 'every "to" must be an absolute path')
  .transform((pairs) => pairs.sort((a, b) => b.from.length - a.from.length));

/**
 * SCAN_EXCLUDE: globs separated by commas (a comma inside `{…}` belongs to
 * the glob). Bounded like the request's own list.
 */
const globList = z
  .string()
  .transform((value) => value.split(/,(?![^{]*\})/).map((glob) => glob.trim()).filter((glob) => glob.length > 0))
  .refine((globs) => globs.length <= 100, 'at most 100 globs')
  .refine((globs) => globs.every((glob) => glob.length <= 256 && !glob.includes('\0')), 'every glob must be at most 256 characters');

const envSchema = z.object({
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65535).default(8000),
  TEMPORAL_ADDRESS: z.string().min(1).default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default('video-scan'),
  TEMPORAL_UI_PORT: z.coerce.number().int().min(1).max(65535).default(8233),
  TEMPORAL_UI_URL: z.string().url().optional(),
  TEMPORAL_CLI_PATH: z.string().min(1).optional(),
  TEMPORAL_DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\/./, 'expected postgres://…').default('postgres://postgres@127.0.0.1:5432/temporal'),
  WORKER_METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  DATA_DIR: z.string().min(1).default('./data'),
  DATABASE_URL: z.string().min(1).optional(),
  SCAN_ROOTS: absoluteDirList.optional(),
  API_TOKEN: z.string().min(1).optional(),
  FFPROBE_PATH: z.string().min(1).optional(),
  PROBER: z.enum(['libav', 'ffprobe']).optional(),
  PROBE_TIMEOUT_MS: positiveInt.default(30_000),
  PROBE_CONCURRENCY: positiveInt.max(256).optional(),
  THUMBNAIL_DIR: z.string().min(1).optional(),
  THUMBNAIL_WIDTH: positiveInt.min(16).max(4096).default(320),
  THUMBNAIL_CONCURRENCY: positiveInt.max(256).default(1),
  SCAN_TIMEOUT: z
    .string()
    .optional()
    .refine((value) => value === undefined || value === '' || parseDuration(value) !== undefined, {
      message: 'expected a duration such as 90s, 30m or 2h',
    }),
  SCAN_RECORD_RETENTION: z
    .string()
    .default('30d')
    // Zero would prune a scan's records as it ends, leaving nothing for its retry.
    .refine((value) => (parseDuration(value) ?? 0) > 0, { message: 'expected a duration such as 30d, 12h or 90m' }),
  SCAN_EXCLUDE: globList.optional(),
  FS_CALL_TIMEOUT: z
    .string()
    .default('30s')
    .refine((value) => parseDuration(value) !== undefined, { message: 'expected a duration such as 30s, 1500ms or 2m' }),
  // A file name, not a path: it is looked for in the root itself.
  SCAN_ROOT_MARKER: z
    .string()
    .refine((value) => !value.includes('/') && !value.includes('\0') && value !== '.' && value !== '..', { message: 'expected a file name such as .media-online' })
    .optional(),
  SCAN_SETTLE_SECONDS: z.coerce.number().min(0).max(86_400).default(0),
  MAX_CONCURRENT_SCANS: positiveInt.max(10_000).default(32),
  MAX_STREAMS_PER_CLIENT: positiveInt.max(100_000).default(20),
  SCAN_BATCH_SIZE: positiveInt.max(1000).default(250),
  SCAN_WINDOW: positiveInt.max(64).default(4),
  CORS_ORIGINS: z.string().optional(),
  PATH_MAP: pathMapSchema.optional(),
  /** Seconds between `heartbeat` messages on /ws; fractions allowed (tests). */
  WS_HEARTBEAT_INTERVAL: z.coerce.number().positive().max(86_400).default(30),
  THUMBNAILS: z.enum(['on', 'off']).default('on'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  // Deployment: TLS to Temporal, the frontend's own TLS, and what may listen unauthenticated.
  TEMPORAL_TLS_CA: z.string().min(1).optional(),
  TEMPORAL_TLS_CERT: z.string().min(1).optional(),
  TEMPORAL_TLS_KEY: z.string().min(1).optional(),
  TEMPORAL_TLS_SERVER_NAME: z.string().min(1).optional(),
  TEMPORAL_API_KEY: z.string().min(1).optional(),
  TEMPORAL_SERVER_TLS_CERT: z.string().min(1).optional(),
  TEMPORAL_SERVER_TLS_KEY: z.string().min(1).optional(),
  TEMPORAL_SERVER_TLS_CLIENT_CA: z.string().min(1).optional(),
  TEMPORAL_UI_TLS_CERT: z.string().min(1).optional(),
  TEMPORAL_UI_TLS_KEY: z.string().min(1).optional(),
  ALLOW_UNAUTHENTICATED: z.enum(['true', 'false']).default('false'),
  WORKER_METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  WORKFLOW_BUNDLE: z.string().min(1).refine((value) => path.isAbsolute(value), 'expected an absolute path').optional(),
});

/** A PEM file named by a variable: read now, so that a bad path stops start-up naming the variable. */
function pemFile(name: string, file: string | undefined, kind: 'CERTIFICATE' | 'PRIVATE KEY'): { path: string; pem: Buffer } | undefined {
  if (file === undefined) return undefined;
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ConfigError(`invalid ${name}: cannot read ${file} (${code})`);
  }
  const text = pem.toString('latin1');
  const ok = kind === 'CERTIFICATE' ? text.includes('-----BEGIN CERTIFICATE-----') : /-----BEGIN (\w+ )?PRIVATE KEY-----/.test(text);
  if (!ok) throw new ConfigError(`invalid ${name}: ${file} holds no PEM ${kind === 'CERTIFICATE' ? 'certificate' : 'private key'}`);
  return { path: path.resolve(file), pem };
}

/** Both or neither: a certificate without its key (or the reverse) is a mistake, said naming the missing one. */
function pair(certName: string, keyName: string, cert: string | undefined, key: string | undefined): void {
  if (cert !== undefined && key === undefined) throw new ConfigError(`invalid ${keyName}: required when ${certName} is set`);
  if (key !== undefined && cert === undefined) throw new ConfigError(`invalid ${certName}: required when ${keyName} is set`);
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost']);

/** True when HOST is reachable from this machine only. */
export function isLoopbackHost(host: string): boolean {
  return LOOPBACK_HOSTS.has(host) || /^127\./.test(host) || host === '[::1]';
}

/** A PEM file read at start-up: its path (for the Temporal server's configuration) and its contents (for the SDK). */
export interface PemFile {
  path: string;
  pem: Buffer;
}

/** How a process reaches the Temporal frontend: TLS (server-verified or mutual) and/or an API key. */
export interface TemporalClientSecurity {
  /** Unset: plaintext (the default, as for a local server). */
  tls:
    | {
        ca: PemFile | undefined;
        cert: PemFile | undefined;
        key: PemFile | undefined;
        serverName: string | undefined;
      }
    | undefined;
  apiKey: string | undefined;
}

/** What `npm run temporal:server` serves its frontend with. */
export interface TemporalServerTls {
  cert: PemFile;
  key: PemFile;
  /** Set: every client must present a certificate signed by it (mutual TLS). */
  clientCa: PemFile | undefined;
  /** The Web UI server's client certificate. */
  uiCert: PemFile | undefined;
  uiKey: PemFile | undefined;
}

export interface Config {
  host: string;
  port: number;
  temporal: {
    address: string;
    namespace: string;
    taskQueue: string;
    uiPort: number;
    uiUrl: string;
    cliPath: string | undefined;
    /** PostgreSQL of `npm run temporal:server` (persistence; visibility in `<db>_visibility`). */
    databaseUrl: string;
    /** TLS and API key of every client connection (API, workers, temporal:server's own calls). */
    security: TemporalClientSecurity;
    /** TLS of the frontend `npm run temporal:server` serves; unset: plaintext. */
    serverTls: TemporalServerTls | undefined;
  };
  /** Where a worker serves its Prometheus metrics; unset: it serves none. */
  workerMetricsPort: number | undefined;
  /** The address those metrics listen on (WORKER_METRICS_HOST, loopback by default). */
  workerMetricsHost: string;
  /**
   * WORKFLOW_BUNDLE: the workflow code bundled ahead by the same release
   * (`npm run bundle:workflows -- FILE`); unset, a worker bundles it at start.
   */
  workflowBundlePath: string | undefined;
  /** ALLOW_UNAUTHENTICATED: the API may listen on a non-loopback HOST without API_TOKEN. */
  allowUnauthenticated: boolean;
  dataDir: string;
  /** `sqlite:<file>` or a `postgres://` URL. */
  databaseUrl: string;
  scanRoots: string[] | undefined;
  apiToken: string | undefined;
  ffprobePath: string | undefined;
  /** PROBER: libavformat in the probe hosts, or an ffprobe process per file; unset picks libav when it loads. */
  prober: 'libav' | 'ffprobe' | undefined;
  probeTimeoutMs: number;
  probeConcurrency: number;
  /** Where video thumbnails live (THUMBNAIL_DIR, default DATA_DIR/thumbnails); shared by every worker and the API. */
  thumbnailDir: string;
  /** Width of a thumbnail in pixels; its height follows the video's display aspect. */
  thumbnailWidth: number;
  /** Thumbnails made at once per worker. */
  thumbnailConcurrency: number;
  scanTimeoutMs: number | undefined;
  /** How long a finished scan's per-file records are kept (a retry needs them); then pruned. */
  scanRecordRetentionMs: number;
  /** Globs of paths no scan enters or lists (SCAN_EXCLUDE; NAS and desktop system folders by default). */
  scanExclude: string[];
  /** A file modified less than this many seconds before discovery is left for the next scan (SCAN_SETTLE_SECONDS). */
  scanSettleSeconds: number;
  /** FS_CALL_TIMEOUT: the deadline of one filesystem call on a media path; past it the file or folder is `fs_timeout`. */
  fsCallTimeoutMs: number;
  /** SCAN_ROOT_MARKER: a file name that must exist in a scan root for it to count as online; unset: no such check. */
  scanRootMarker: string | undefined;
  /** THUMBNAILS: whether a scan makes pictures when its request does not say (a worker's default). */
  thumbnails: boolean;
  /** Running scans beyond which new starts are refused with 429. */
  maxConcurrentScans: number;
  /** Event streams one client (remote address) may hold open; past it 429 TOO_MANY_STREAMS. */
  maxStreamsPerClient: number;
  batchSize: number;
  window: number;
  corsOrigins: string[];
  /** Webhook path prefixes and what they are on the workers, most specific first. */
  pathMap: PathMapping[];
  /** Milliseconds between `heartbeat` messages on /ws (WS_HEARTBEAT_INTERVAL, in seconds). */
  wsHeartbeatMs: number;
  logLevel: string;
}

/** One PATH_MAP pair. */
export interface PathMapping {
  from: string;
  to: string;
}

export class ConfigError extends Error {}

/** Parses an environment (by default the process's) into a Config, or throws ConfigError naming the variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const parsed = envSchema.safeParse(cleaned);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const name = issue?.path.join('.') ?? 'environment';
    throw new ConfigError(`invalid ${name}: ${issue?.message ?? 'bad value'} (got ${redactSecrets(JSON.stringify(env[name]) ?? 'nothing')})`);
  }
  const e = parsed.data;
  const dataDir = path.resolve(e.DATA_DIR);
  const databaseUrl = e.DATABASE_URL ?? `sqlite:${path.join(dataDir, 'library.sqlite')}`;
  if (!/^(postgres(ql)?:\/\/|sqlite:)/.test(databaseUrl)) {
    throw new ConfigError(`invalid DATABASE_URL: expected postgres://… or sqlite:<file> (got ${redactSecrets(JSON.stringify(databaseUrl))})`);
  }
  pair('TEMPORAL_TLS_CERT', 'TEMPORAL_TLS_KEY', e.TEMPORAL_TLS_CERT, e.TEMPORAL_TLS_KEY);
  pair('TEMPORAL_SERVER_TLS_CERT', 'TEMPORAL_SERVER_TLS_KEY', e.TEMPORAL_SERVER_TLS_CERT, e.TEMPORAL_SERVER_TLS_KEY);
  pair('TEMPORAL_UI_TLS_CERT', 'TEMPORAL_UI_TLS_KEY', e.TEMPORAL_UI_TLS_CERT, e.TEMPORAL_UI_TLS_KEY);
  if (e.TEMPORAL_SERVER_TLS_CLIENT_CA !== undefined && e.TEMPORAL_SERVER_TLS_CERT === undefined) {
    throw new ConfigError('invalid TEMPORAL_SERVER_TLS_CERT: required when TEMPORAL_SERVER_TLS_CLIENT_CA is set (client certificates need TLS)');
  }
  const clientTls =
    e.TEMPORAL_TLS_CA !== undefined || e.TEMPORAL_TLS_CERT !== undefined || e.TEMPORAL_TLS_SERVER_NAME !== undefined
      ? {
          ca: pemFile('TEMPORAL_TLS_CA', e.TEMPORAL_TLS_CA, 'CERTIFICATE'),
          cert: pemFile('TEMPORAL_TLS_CERT', e.TEMPORAL_TLS_CERT, 'CERTIFICATE'),
          key: pemFile('TEMPORAL_TLS_KEY', e.TEMPORAL_TLS_KEY, 'PRIVATE KEY'),
          serverName: e.TEMPORAL_TLS_SERVER_NAME,
        }
      : undefined;
  const serverCert = pemFile('TEMPORAL_SERVER_TLS_CERT', e.TEMPORAL_SERVER_TLS_CERT, 'CERTIFICATE');
  const serverKey = pemFile('TEMPORAL_SERVER_TLS_KEY', e.TEMPORAL_SERVER_TLS_KEY, 'PRIVATE KEY');
  const serverTls =
    serverCert && serverKey
      ? {
          cert: serverCert,
          key: serverKey,
          clientCa: pemFile('TEMPORAL_SERVER_TLS_CLIENT_CA', e.TEMPORAL_SERVER_TLS_CLIENT_CA, 'CERTIFICATE'),
          uiCert: pemFile('TEMPORAL_UI_TLS_CERT', e.TEMPORAL_UI_TLS_CERT, 'CERTIFICATE'),
          uiKey: pemFile('TEMPORAL_UI_TLS_KEY', e.TEMPORAL_UI_TLS_KEY, 'PRIVATE KEY'),
        }
      : undefined;
  return {
    host: e.HOST,
    port: e.PORT,
    temporal: {
      address: e.TEMPORAL_ADDRESS,
      namespace: e.TEMPORAL_NAMESPACE,
      taskQueue: e.TEMPORAL_TASK_QUEUE,
      uiPort: e.TEMPORAL_UI_PORT,
      uiUrl: (e.TEMPORAL_UI_URL ?? `http://127.0.0.1:${e.TEMPORAL_UI_PORT}`).replace(/\/+$/, ''),
      cliPath: e.TEMPORAL_CLI_PATH,
      databaseUrl: e.TEMPORAL_DATABASE_URL,
      security: { tls: clientTls, apiKey: e.TEMPORAL_API_KEY },
      serverTls,
    },
    workerMetricsPort: e.WORKER_METRICS_PORT,
    workerMetricsHost: e.WORKER_METRICS_HOST,
    workflowBundlePath: e.WORKFLOW_BUNDLE,
    allowUnauthenticated: e.ALLOW_UNAUTHENTICATED === 'true',
    dataDir,
    databaseUrl,
    scanRoots: e.SCAN_ROOTS?.map((root) => path.resolve(root)),
    apiToken: e.API_TOKEN,
    ffprobePath: e.FFPROBE_PATH,
    prober: e.PROBER,
    probeTimeoutMs: e.PROBE_TIMEOUT_MS,
    probeConcurrency: e.PROBE_CONCURRENCY ?? Math.max(1, os.availableParallelism()),
    thumbnailDir: path.resolve(e.THUMBNAIL_DIR ?? path.join(dataDir, 'thumbnails')),
    thumbnailWidth: e.THUMBNAIL_WIDTH,
    thumbnailConcurrency: e.THUMBNAIL_CONCURRENCY,
    scanTimeoutMs: e.SCAN_TIMEOUT ? parseDuration(e.SCAN_TIMEOUT) : undefined,
    scanRecordRetentionMs: parseDuration(e.SCAN_RECORD_RETENTION) as number,
    scanExclude: e.SCAN_EXCLUDE ?? [...DEFAULT_SCAN_EXCLUDE],
    scanSettleSeconds: e.SCAN_SETTLE_SECONDS,
    fsCallTimeoutMs: parseDuration(e.FS_CALL_TIMEOUT) as number,
    scanRootMarker: e.SCAN_ROOT_MARKER,
    thumbnails: e.THUMBNAILS === 'on',
    maxConcurrentScans: e.MAX_CONCURRENT_SCANS,
    maxStreamsPerClient: e.MAX_STREAMS_PER_CLIENT,
    batchSize: e.SCAN_BATCH_SIZE,
    window: e.SCAN_WINDOW,
    corsOrigins: (e.CORS_ORIGINS ?? '').split(',').map((o) => o.trim()).filter((o) => o.length > 0),
    pathMap: e.PATH_MAP ?? [],
    wsHeartbeatMs: Math.round(e.WS_HEARTBEAT_INTERVAL * 1000),
    logLevel: e.LOG_LEVEL,
  };
}

/**
 * Loads the configuration for a process entry point; on a bad value prints
 * the one line and exits with status 2.
 */
export function loadConfigOrExit(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`configuration error: ${redactSecrets(error.message)}\n`);
      process.exit(2);
    }
    throw error;
  }
}

/**
 * The `scanctl` client's own variables: a schema of their own, so that a
 * server variable set for another process in the same shell (a bad PORT, say)
 * cannot stop the client.
 */
const cliEnvSchema = z.object({
  API_URL: z.string().url().default('http://127.0.0.1:8000'),
  API_TOKEN: z.string().min(1).optional(),
});

export interface CliConfig {
  /** Base URL of the API, without a trailing slash. */
  apiUrl: string;
  apiToken: string | undefined;
}

/** Parses the client's environment, or throws ConfigError naming the variable. */
export function loadCliConfig(env: NodeJS.ProcessEnv = process.env): CliConfig {
  const cleaned = Object.fromEntries(
    Object.entries({ API_URL: env.API_URL, API_TOKEN: env.API_TOKEN }).filter(([, value]) => value !== undefined && value !== ''),
  );
  const parsed = cliEnvSchema.safeParse(cleaned);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const name = issue?.path.join('.') ?? 'environment';
    throw new ConfigError(`invalid ${name}: ${issue?.message ?? 'bad value'} (got ${redactSecrets(JSON.stringify(env[name]) ?? 'nothing')})`);
  }
  return { apiUrl: parsed.data.API_URL.replace(/\/+$/, ''), apiToken: parsed.data.API_TOKEN };
}

/**
 * SCANNER_CACHE_DIR: the per-user cache shared by every clone on the machine
 * (the Go programs the project builds, the test media), by default
 * `${XDG_CACHE_HOME:-$HOME/.cache}/video-library-scanner`.
 */
export function scannerCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SCANNER_CACHE_DIR) return path.resolve(env.SCANNER_CACHE_DIR);
  const base = env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : path.join(os.homedir(), '.cache');
  return path.join(base, 'video-library-scanner');
}
