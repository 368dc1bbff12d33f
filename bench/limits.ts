/**
 * The limits a scan is measured against, each without Temporal and without a
 * database (bench/run.ts runs them beside the service):
 *
 * - the prober pool alone: `probeFile` through the probe hosts, as the probe
 *   activity calls it, over the scan's own files;
 * - a bare walk: the tree listed and stat-ed in this one process;
 *
 * and, through the API, the time of a page of jobs right after a burst of starts.
 */
import { lstatSync, promises as fs } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../src/logger';
import type { FileProbeRequest } from '../src/probe/contained';
import type { ProberKind } from '../src/media-host/protocol';
import type { IsolatedProber } from '../src/media-host/pool';
import { openProber } from '../src/media-host/select';
import { defaultFfprobePath } from '../src/probe/ffprobe';
import { hostProcesses } from '../test/support/media-hosts';

/** A JSON call to the API at `base`: its status, parsed body and time taken. */
export function apiCaller(base: string) {
  return async <T>(method: string, route: string, body?: unknown): Promise<{ status: number; body: T; ms: number }> => {
    const started = performance.now();
    const res = await fetch(`${base}${route}`, {
      method,
      headers: body !== undefined ? { 'content-type': 'application/json' } : {},
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const parsed = (await res.json()) as T;
    return { status: res.status, body: parsed, ms: performance.now() - started };
  };
}

/** The middle value (the mean of the two middle ones for an even count); 0 for none. */
export function median(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const half = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[half] as number) : ((sorted[half - 1] as number) + (sorted[half] as number)) / 2;
}

/** CPU seconds of a process so far, its reaped children included (0 when it is gone). */
async function processCpuSeconds(pid: number): Promise<number> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  if (stat === '') return 0;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / 100;
}

/** What the prober pool needs to run as a worker's does. */
export interface ProberPoolOptions {
  /** The prober B's worker runs; undefined picks as a worker with PROBER unset does. */
  kind: ProberKind | undefined;
  ffprobePath: string | undefined;
  /** PROBE_CONCURRENCY: files in flight across the hosts. */
  concurrency: number;
  /** THUMBNAIL_CONCURRENCY, as the worker passes it (no pictures are made here). */
  thumbnailConcurrency: number;
  probeTimeoutMs: number;
  logger: Logger;
}

/** One run of the pool over some files. */
export interface ProberPoolRun {
  files: number;
  seconds: number;
  /** Files whose outcome was `failed` (none expected on the generated clips). */
  failures: number;
  /** CPU seconds of the probe hosts (their ffprobe children included) during the run. */
  hostCpuSeconds: number;
  /** CPU seconds of this process during the run: the pool's own side, the worker's share of it in B. */
  callerCpuSeconds: number;
}

/** The prober pool of a worker, opened once and run over slices of the library. */
export interface ProberPool {
  kind: ProberKind;
  version: string;
  run(files: readonly string[]): Promise<ProberPoolRun>;
  close(): Promise<void>;
}

/**
 * Opens the pool a worker opens (openProber, createIsolatedProber: the same
 * hosts and limits) and waits for its first host. `run` hands every file to
 * `probeFile` at once, as a probe batch does with its files, and the pool's
 * own limit keeps PROBE_CONCURRENCY probing; each file's size and mtime are
 * taken before the clock starts (discovery's work in a scan, not the prober's).
 */
export async function openProberPool(root: string, options: ProberPoolOptions): Promise<ProberPool> {
  const realRoot = await fs.realpath(root);
  const { prober, version }: { prober: IsolatedProber; version: string } = await openProber(
    {
      prober: options.kind,
      ffprobePath: options.ffprobePath,
      probeConcurrency: options.concurrency,
      thumbnailConcurrency: options.thumbnailConcurrency,
    },
    options.logger,
  );
  const hostsCpu = async (): Promise<number> => (await Promise.all((await hostProcesses()).map(processCpuSeconds))).reduce((sum, s) => sum + s, 0);
  return {
    kind: prober.kind,
    version,
    async run(files) {
      const requests: FileProbeRequest[] = await Promise.all(
        files.map(async (file) => {
          const stat = await fs.lstat(file);
          return { file, realRoot, discovered: { size: stat.size, mtimeMs: stat.mtimeMs }, timeoutMs: options.probeTimeoutMs };
        }),
      );
      const hostCpuBefore = await hostsCpu();
      const callerBefore = process.cpuUsage();
      const started = performance.now();
      const outcomes = await Promise.all(requests.map(async (request) => (await prober.probeFile(request)).outcome));
      const seconds = (performance.now() - started) / 1000;
      const caller = process.cpuUsage(callerBefore);
      return {
        files: files.length,
        seconds,
        failures: outcomes.filter((outcome) => outcome.kind === 'failed').length,
        hostCpuSeconds: (await hostsCpu()) - hostCpuBefore,
        callerCpuSeconds: (caller.user + caller.system) / 1e6,
      };
    },
    close: () => prober.close(),
  };
}

/** One bare walk of a tree. */
export interface WalkRun {
  files: number;
  folders: number;
  seconds: number;
}

/**
 * Lists the tree under `root` and lstat-s every file in it, in this process:
 * readdir with file types per folder, one synchronous lstat per file (the
 * calls discovery makes on a local disk), nothing filtered, checked or kept.
 * What no rescan can beat, since a rescan has to see every file's size and mtime.
 */
export async function bareWalk(root: string): Promise<WalkRun> {
  const started = performance.now();
  const stack = [root];
  let files = 0;
  let folders = 0;
  let bytes = 0;
  for (let dir = stack.pop(); dir !== undefined; dir = stack.pop()) {
    folders += 1;
    for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        stack.push(full);
      } else {
        bytes += lstatSync(full).size;
        files += 1;
      }
    }
  }
  // The sizes are used, so the stats cannot be optimised away.
  if (bytes < 0) throw new Error('negative size');
  return { files, folders, seconds: (performance.now() - started) / 1000 };
}

/** What the jobs page measured. */
export interface JobsPageRun {
  /** Seconds for the whole burst of starts, every one answered. */
  startsSeconds: number;
  /** Each page read's time, in order. */
  pageMs: number[];
  /** Jobs on the last page read. */
  pageJobs: number;
  /** Seconds from the first start until every started scan had ended. */
  drainedSeconds: number;
}

const TERMINAL = ['completed', 'failed', 'cancelled', 'timeout'];

/**
 * Starts a scan of each root through the API at once (a burst), then reads
 * `GET /api/v1/jobs?limit=50` `reads` times one after the other, timing each;
 * then waits for every started scan to end, so the next phase starts on a
 * quiet service. Throws when a start is refused or a page does not answer 200.
 */
export async function jobsPageAfterStarts(base: string, roots: readonly string[], reads: number): Promise<JobsPageRun> {
  const started = performance.now();
  const jobIds = await Promise.all(
    roots.map(async (root) => {
      const res = await fetch(`${base}/api/v1/videos/scan`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ path: root }),
      });
      const body = (await res.json()) as { job_id?: string };
      if (res.status !== 202 || body.job_id === undefined) throw new Error(`start of ${root} answered ${res.status} ${JSON.stringify(body)}`);
      return body.job_id;
    }),
  );
  const startsSeconds = (performance.now() - started) / 1000;
  const pageMs: number[] = [];
  let pageJobs = 0;
  for (let read = 0; read < reads; read += 1) {
    const t = performance.now();
    const res = await fetch(`${base}/api/v1/jobs?limit=50`);
    const body = (await res.json()) as { jobs?: unknown[] };
    pageMs.push(performance.now() - t);
    if (res.status !== 200 || !Array.isArray(body.jobs)) throw new Error(`GET /api/v1/jobs?limit=50 answered ${res.status}`);
    pageJobs = body.jobs.length;
  }
  const waiting = new Set(jobIds);
  const deadline = Date.now() + 600_000;
  while (waiting.size > 0) {
    for (const id of [...waiting]) {
      const res = await fetch(`${base}/api/v1/jobs/${id}`);
      const job = (await res.json()) as { status?: string };
      if (TERMINAL.includes(job.status ?? '')) waiting.delete(id);
    }
    if (waiting.size === 0) break;
    if (Date.now() > deadline) throw new Error(`${waiting.size} of the ${jobIds.length} started scans had not ended after 10 minutes`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { startsSeconds, pageMs, pageJobs, drainedSeconds: (performance.now() - started) / 1000 };
}

/** How promptly a probe that hangs ends: past its limit, and after an abort (a cancel, a pause, a worker's stop). */
export interface ProbeStopRun {
  /** Milliseconds from the probe's limit to its `timeout` outcome, per run. */
  overrunMs: number[];
  /** Milliseconds from an abort to the probe's rejection, per run. */
  abortMs: number[];
}

/**
 * Probes `file` through the pool a worker opens, with an ffprobe that never
 * answers (a script that sleeps an hour), `runs` times with a limit of
 * `limitMs`, then `runs` times with no limit to speak of, aborted 200 ms in.
 * The speed claims behind "reliable timeouts" and "prompt cancellation", for
 * ffprobe, whose process is killed; the tests assert only the outcome.
 */
export async function probeStopTimes(file: string, workDir: string, options: { limitMs: number; runs: number; logger: Logger }): Promise<ProbeStopRun> {
  const hanging = path.join(workDir, 'ffprobe-that-hangs.sh');
  // It tells its version (the pool asks at start), then hangs on every file.
  await fs.writeFile(hanging, `#!/bin/sh\ncase "$1" in -version) exec '${defaultFfprobePath()}' -version ;; esac\nexec sleep 3600\n`, { mode: 0o755 });
  const { prober } = await openProber({ prober: 'ffprobe', ffprobePath: hanging, probeConcurrency: 1, thumbnailConcurrency: 1 }, options.logger);
  try {
    const stat = await fs.lstat(file);
    const request: FileProbeRequest = { file, realRoot: await fs.realpath(path.dirname(file)), discovered: { size: stat.size, mtimeMs: stat.mtimeMs }, timeoutMs: options.limitMs };
    const overrunMs: number[] = [];
    const abortMs: number[] = [];
    for (let run = 0; run < options.runs; run += 1) {
      const started = performance.now();
      const { outcome } = await prober.probeFile(request);
      if (outcome.kind !== 'failed' || outcome.reason !== 'timeout') throw new Error(`a hanging probe ended ${JSON.stringify(outcome)}, not timeout`);
      overrunMs.push(performance.now() - started - options.limitMs);
    }
    for (let run = 0; run < options.runs; run += 1) {
      const controller = new AbortController();
      let abortedAt = 0;
      const timer = setTimeout(() => {
        abortedAt = performance.now();
        controller.abort(new Error('aborted by the benchmark'));
      }, 200);
      const ended = await prober.probeFile({ ...request, timeoutMs: 3_600_000, signal: controller.signal }).then(
        () => 'resolved',
        () => 'rejected',
      );
      clearTimeout(timer);
      if (ended !== 'rejected' || abortedAt === 0) throw new Error(`an aborted probe ${ended}`);
      abortMs.push(performance.now() - abortedAt);
    }
    return { overrunMs, abortMs };
  } finally {
    await prober.close();
  }
}
