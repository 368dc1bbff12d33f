/**
 * The prober: runs ffprobe on one file at a time per slot, bounded worker-wide,
 * killable by timeout or cancellation, and maps its failures to per-file reasons.
 *
 * Per-file problems (not media, no video, permission, vanished, timeout) come
 * back as `{ ok: false, reason }` because retrying cannot fix them. Problems of
 * the machine (the binary cannot start, out of file descriptors or processes)
 * are thrown, so that the calling activity fails and Temporal retries it.
 */
import path from 'node:path';
import ffprobeInstaller from '@ffprobe-installer/ffprobe';
import execa from 'execa';
import { interrupted, isStopSignal } from '../model/interruption';
import { ErrorType } from '../model/types';
import { parseFfprobeOutput, type ProbeResult } from './parse';
import { mediaChildEnv } from '../media/child-env';
import { killAtDeadlineOrAbort } from '../media/deadline';
import { ALLOWED_DEMUXERS } from '../media/demuxers';

export type { ProbeResult } from './parse';

/** Runs ffprobe. One instance per worker: its semaphore is the worker-wide limit. */
export interface Prober {
  /** The ffprobe binary in use. */
  readonly path: string;
  /**
   * Probes one file (absolute path). Resolves with metadata or a per-file reason;
   * rejects when the signal aborts (with the signal's reason, an AbortError by
   * default) and when ffprobe cannot be run at all (a retry may help).
   */
  probe(file: string, options: { timeoutMs: number; signal?: AbortSignal }): Promise<ProbeResult>;
  /** First line of `ffprobe -version`. */
  version(): Promise<string>;
  /** ffprobe processes alive now. */
  readonly running: number;
}

/** Options of createProber. */
export interface ProberOptions {
  /** The ffprobe binary; the static one from `@ffprobe-installer/ffprobe` when absent. */
  ffprobePath?: string;
  /** Most ffprobe processes alive at once, across all calls. */
  concurrency: number;
  /**
   * A second build, tried when the first crashes on a file (killed by a signal).
   * Defaults to the ffprobe of `ffprobe-static`; null turns the fallback off.
   */
  fallbackPath?: string | null;
}

/**
 * Why 2 MiB: a normal file's JSON is 2–10 KB, and even a file with hundreds of
 * streams stays far below; more than that is a hostile or broken file, and we
 * do not want to buffer (or store) megabytes of its metadata.
 */
const MAX_OUTPUT_BYTES = 2 * 1024 * 1024;

/** Why 200: enough for ffprobe's one-line error messages, short enough for a summary row. */
const MAX_REASON_MESSAGE_CHARS = 200;

/** Why 10 s: `-version` touches no file; the static build answers in ~10 ms, so 10 s only catches a wedged binary. */
const VERSION_TIMEOUT_MS = 10_000;

/** Spawn errors of the machine, not of the file: a retry later can succeed. */
const TRANSIENT_SPAWN_CODES = new Set(['ENOENT', 'EACCES', 'EMFILE', 'ENFILE', 'EAGAIN', 'ENOMEM']);

/** The same conditions reported by ffprobe itself once it runs. */
const TRANSIENT_STDERR = /Too many open files|Resource temporarily unavailable|Cannot allocate memory/i;

/** Default ffprobe: the static build shipped in an npm package (starts in ~9 ms vs ~85 ms for a dynamic one). */
/** A reason that says ffprobe crashed rather than judged the file. */
const CRASHED = /^probe_failed: ffprobe killed by SIG(SEGV|ILL|BUS|FPE|ABRT)/;

/** The older static build of `ffprobe-static`, when installed. */
function fallbackFfprobePath(): string | null {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require('ffprobe-static') as { path: string }).path;
  } catch {
    return null;
  }
}

/** The static ffprobe shipped in `@ffprobe-installer/ffprobe`. */
export function defaultFfprobePath(): string {
  return ffprobeInstaller.path;
}

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  const error = new Error('The probe was aborted', { cause: reason });
  error.name = 'AbortError';
  return error;
}

/** A FIFO counting semaphore whose waits can be abandoned through an AbortSignal. */
class Semaphore {
  private free: number;
  private readonly waiters: Array<() => void> = [];

  constructor(size: number) {
    this.free = size;
  }

  acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortError(signal));
    if (this.free > 0 && this.waiters.length === 0) {
      this.free--;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const index = this.waiters.indexOf(grant);
        if (index >= 0) this.waiters.splice(index, 1);
        reject(abortError(signal as AbortSignal));
      };
      // Granting removes the listener synchronously, so a slot is never both granted and abandoned.
      const grant = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      this.waiters.push(grant);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.free++;
  }
}

/** How a run ended: its output, or execa's error with what we know about the process. */
type Settled = { stdout: string } | { error: unknown; pid: number | undefined; timedOut: boolean };

interface FfprobeFailure {
  code?: string;
  name?: string;
  exitCode?: number;
  signal?: string;
  stderr?: string;
}

function firstLine(text: string): string {
  const line = text.split(/\r?\n/).find((candidate) => candidate.trim() !== '') ?? '';
  return line.trim().slice(0, MAX_REASON_MESSAGE_CHARS);
}

/** Maps a failed run to a per-file reason, or throws when the failure is the machine's. */
function failureReason({ error, pid, timedOut }: { error: unknown; pid: number | undefined; timedOut: boolean }): string {
  const failure = (typeof error === 'object' && error !== null ? error : {}) as FfprobeFailure;
  if (pid === undefined) throw error; // never started: missing binary, EMFILE, EAGAIN…
  if (timedOut) return ErrorType.Timeout;
  if (failure.name === 'MaxBufferError') return ErrorType.OutputTooLarge;
  if (failure.code !== undefined && TRANSIENT_SPAWN_CODES.has(failure.code)) throw error;

  const stderr = failure.stderr ?? '';
  if (TRANSIENT_STDERR.test(stderr)) throw error;
  if (/No such file or directory|Not a directory/.test(stderr)) return ErrorType.FileVanished;
  if (/Permission denied/.test(stderr)) return ErrorType.PermissionDenied;
  if (/Is a directory/.test(stderr)) return ErrorType.NotARegularFile;
  if (/Invalid data found when processing input|Format not on whitelist/.test(stderr)) return ErrorType.NotAMediaFile;

  const message = firstLine(stderr);
  // Killed from outside (our own kills are the timeout and the abort, handled
  // above and by the caller): a stop of the worker, not a verdict on the file.
  if (failure.exitCode === undefined && isStopSignal(failure.signal)) throw interrupted('ffprobe', failure.signal);
  if (failure.exitCode === undefined && failure.signal !== undefined) {
    // ffprobe crashed (SIGSEGV on a malformed file, or a bad build): the same file will crash it again.
    return `${ErrorType.ProbeFailed}: ffprobe killed by ${failure.signal}${message ? ` (${message})` : ''}`;
  }
  return `${ErrorType.ProbeFailed}: ${message || `ffprobe exited with code ${String(failure.exitCode)}`}`;
}

/**
 * Creates the worker's prober. `concurrency` bounds ffprobe processes across all
 * calls; waiting callers are served first come, first served.
 */
export function createProber(options: ProberOptions): Prober {
  if (!Number.isSafeInteger(options.concurrency) || options.concurrency < 1) {
    throw new RangeError(`concurrency must be a positive integer, got ${String(options.concurrency)}`);
  }
  const ffprobePath = options.ffprobePath ?? defaultFfprobePath();
  const fallbackPath = options.fallbackPath !== undefined ? options.fallbackPath : fallbackFfprobePath();
  const slots = new Semaphore(options.concurrency);
  let running = 0;

  /**
   * Runs ffprobe in a slot and settles only once the process is gone: execa
   * settles an over-long run as soon as it stops reading (the process may still
   * be writing), so whatever ended the run, we kill what is left and await 'exit'.
   */
  async function runFfprobe<T>(
    binary: string,
    args: string[],
    runOptions: { timeoutMs: number; signal?: AbortSignal },
    onSettled: (outcome: Settled) => T,
  ): Promise<T> {
    const { signal } = runOptions;
    await slots.acquire(signal);
    try {
      if (signal?.aborted) throw abortError(signal);
      const subprocess = execa(binary, args, {
        stdin: 'ignore',
        maxBuffer: MAX_OUTPUT_BYTES,
        windowsHide: true,
        // An allow-list of the environment, not ours: ffprobe parses untrusted media.
        env: mediaChildEnv(),
        extendEnv: false,
      });
      const pid = subprocess.pid;
      let exited: Promise<void> = Promise.resolve();
      if (pid !== undefined) {
        running++;
        exited = new Promise<void>((resolve) => {
          subprocess.once('exit', () => resolve());
        }).finally(() => {
          running--;
        });
      }
      const deadline = killAtDeadlineOrAbort(subprocess, runOptions.timeoutMs, signal);

      let outcome: Settled;
      try {
        outcome = { stdout: (await subprocess).stdout };
      } catch (error) {
        outcome = { error, pid, timedOut: deadline.timedOut };
      } finally {
        deadline.stop();
        if (subprocess.exitCode === null && subprocess.signalCode === null) deadline.kill();
        await exited;
      }
      if (signal?.aborted) throw abortError(signal);
      return onSettled(outcome);
    } finally {
      slots.release();
    }
  }

  return {
    path: ffprobePath,

    get running(): number {
      return running;
    },

    async probe(file, probeOptions) {
      if (!path.isAbsolute(file)) throw new TypeError(`probe needs an absolute path, got ${JSON.stringify(file)}`);
      if (!Number.isFinite(probeOptions.timeoutMs) || probeOptions.timeoutMs <= 0) {
        throw new RangeError(`timeoutMs must be a positive number, got ${String(probeOptions.timeoutMs)}`);
      }
      // `file:` keeps names like `-x.mp4` or `a|b:c.mp4` from being read as options or protocols;
      // the protocol whitelist keeps ffprobe off the network, the format
      // whitelist keeps it from following a playlist to any other file.
      const args = [
        '-v', 'error', '-print_format', 'json', '-show_format', '-show_streams',
        '-protocol_whitelist', 'file', '-format_whitelist', ALLOWED_DEMUXERS.join(','), `file:${file}`,
      ];
      const interpret = (outcome: Settled): ProbeResult => {
        if ('error' in outcome) return { ok: false, reason: failureReason(outcome) };
        let json: unknown;
        try {
          json = JSON.parse(outcome.stdout);
        } catch {
          return { ok: false, reason: `${ErrorType.ProbeFailed}: ffprobe printed invalid JSON` };
        }
        return parseFfprobeOutput(json, file);
      };
      const first = await runFfprobe(ffprobePath, args, probeOptions, interpret);
      // Measured here: the fast static build (N-66595) segfaults on every MPEG-TS
      // file on some CPUs, where the older ffprobe-static build reads them fine.
      if (!first.ok && fallbackPath !== null && CRASHED.test(first.reason)) {
        return runFfprobe(fallbackPath, args, probeOptions, interpret);
      }
      return first;
    },

    async version() {
      return runFfprobe(ffprobePath, ['-version'], { timeoutMs: VERSION_TIMEOUT_MS }, (outcome) => {
        if ('error' in outcome) throw outcome.error;
        return firstLine(outcome.stdout);
      });
    },
  };
}
