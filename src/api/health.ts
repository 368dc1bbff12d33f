/**
 * The readiness body of API.md: one check per dependency in `checks` (the
 * shape the original frontend reads), and the flat `temporal` and `database`
 * fields older clients read.
 */
import type { Request, Response } from 'express';
import type { Config } from '../config';
import { errorLine } from '../errors';
import type { Logger } from '../logger';
import { openProber } from '../media-host/select';

/** A dependency that answered, and how fast; or why not. */
export type TimedCheck = { status: 'ok'; latency_ms: number } | { status: 'error'; error: string };
/** The prober's version line; or why it could not be read. */
export type VersionCheck = { status: 'ok'; version: string } | { status: 'error'; error: string };

/** `GET /health` and `/health/ready`. */
export interface HealthBody {
  status: 'ok' | 'degraded';
  /**
   * `ffmpeg` is the prober's check (libavformat's version line, or ffprobe's
   * with PROBER=ffprobe): the name is the API contract's, from when ffprobe was the only prober.
   */
  checks: { database: TimedCheck; temporal: TimedCheck; ffmpeg: VersionCheck };
  /** `ok` or `error: …`, kept for clients of the first API. */
  temporal: string;
  database: string;
}

export interface HealthDependencies {
  /** Throws when the library database does not answer. */
  checkDatabase: () => Promise<void>;
  /** Throws when the Temporal frontend does not answer. */
  checkTemporal: () => Promise<void>;
  /** First line of the prober's `-version`. */
  proberVersion: () => Promise<string>;
}

/**
 * Why 5 s: a check that hangs (a frontend that accepts but never answers)
 * must still give the load balancer an answer before its own timeout, which is
 * commonly 5–10 s.
 */
const CHECK_TIMEOUT_MS = 5_000;

/** Why 30 s: a broken prober binary is not spawned on every health poll, yet a fixed one is seen soon. */
const VERSION_FAILURE_TTL_MS = 30_000;

function withDeadline<T>(work: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${CHECK_TIMEOUT_MS / 1000} s`)), CHECK_TIMEOUT_MS);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

async function timed(what: string, check: () => Promise<void>): Promise<TimedCheck> {
  const started = process.hrtime.bigint();
  try {
    await withDeadline(check(), what);
    return { status: 'ok', latency_ms: Math.round(Number(process.hrtime.bigint() - started) / 1e5) / 10 };
  } catch (error) {
    return { status: 'error', error: errorLine(error) };
  }
}

/**
 * The prober's version, asked once: the binary does not change under a
 * running API, and a health poll must not spawn a process. A failure is
 * remembered for a while, then asked again.
 */
function cachedVersion(read: () => Promise<string>): () => Promise<string> {
  let cached: Promise<string> | undefined;
  return () => {
    if (cached === undefined) {
      const attempt = withDeadline(read(), 'the prober');
      cached = attempt;
      attempt.catch(() => {
        setTimeout(() => {
          if (cached === attempt) cached = undefined;
        }, VERSION_FAILURE_TTL_MS).unref();
      });
    }
    return cached;
  };
}

/**
 * The version line of the prober the workers probe with: PROBER as the
 * workers read it (openProber: libavformat unless PROBER says ffprobe or its
 * bindings do not load here), asked of a probe host started for the question
 * and stopped as soon as it answers. The API probes nothing itself, so a
 * version read from ffprobe alone would name a binary the workers may not use.
 */
export function serviceProberVersion(config: Pick<Config, 'prober' | 'ffprobePath'>, logger: Logger): () => Promise<string> {
  return async () => {
    const { prober, version } = await openProber({ prober: config.prober, ffprobePath: config.ffprobePath, probeConcurrency: 1 }, logger.child({ check: 'health' }));
    await prober.close();
    return version;
  };
}

const flat = (check: TimedCheck): string => (check.status === 'ok' ? 'ok' : `error: ${check.error}`);

/** Reads every check once: the body of `/health`, and the status the activity feed reports. */
export function healthReport({ checkDatabase, checkTemporal, proberVersion }: HealthDependencies): () => Promise<HealthBody> {
  const version = cachedVersion(proberVersion);
  return async () => {
    const [database, temporal, ffmpeg] = await Promise.all([
      timed('the library database', checkDatabase),
      timed('Temporal', checkTemporal),
      version().then(
        (line): VersionCheck => ({ status: 'ok', version: line }),
        (error: unknown): VersionCheck => ({ status: 'error', error: errorLine(error) }),
      ),
    ]);
    const ok = database.status === 'ok' && temporal.status === 'ok' && ffmpeg.status === 'ok';
    return { status: ok ? 'ok' : 'degraded', checks: { database, temporal, ffmpeg }, temporal: flat(temporal), database: flat(database) };
  };
}

/** The handler of `/health` and `/health/ready`: 200 when every check passes, else 503 `degraded`. */
export function healthHandler(report: () => Promise<HealthBody>): (req: Request, res: Response) => Promise<void> {
  return async (_req, res) => {
    const body = await report();
    res.status(body.status === 'ok' ? 200 : 503).json(body);
  };
}
