/**
 * A probe host's per-file checks (containment.ts's resolveInside, and the
 * fingerprint) on threads of their own, called synchronously there, with the
 * host's event loop watching the deadline: what the walk does for its
 * listings (walker-thread.ts), for the same reason.
 *
 * Through media-fs.ts a file's checks are seven calls on libuv's pool
 * (realpath and lstat before the probe; open, fstat, two reads, close,
 * realpath and lstat after it), each a wake-up of a pool thread and of the
 * loop. On a busy machine each wake-up waits for a core: measured in a probe
 * host (5,000 small files, 2 probing, 2 cores under load), the checks took
 * 0.45 ms before and 1.2 ms after each probe of 1.7 ms, and the host probed
 * 0.7 as many files a second as with synchronous calls on its loop. Here
 * each side of the probe is one request to a thread: 0.4 ms each in the same
 * measure.
 *
 * A thread runs one request at a time, and a host has at most `max` of them
 * (its calls in flight, as media-fs.ts's slots): a request waits for a free
 * one. Its deadline, FS_CALL_TIMEOUT, runs from the moment it is asked; past
 * it the request fails `fs_timeout`, and a thread still in its call is
 * abandoned: told to end (it does when the kernel lets the call go), its
 * place taken by a new thread only once it has ended, so that hung calls
 * hold at most `max` threads. An aborted request is answered at once; its
 * thread serves again once its call returns.
 */
import nodeFs, { type Stats } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { PathCalls } from './containment';
import { FINGERPRINT_EDGE_BYTES, OPEN_FLAGS } from './fingerprint';
import { fsTimeoutError } from './media-fs';

/**
 * The thread's code: plain JavaScript, so that it runs the same from the
 * sources (tests) and from dist/. For `file`: its real path and that path's
 * lstat, or, when the real path fails as a vanished path does, the lstat of
 * `file` itself (resolveInside's calls, in its order). Before them, when
 * asked, the fingerprint of `fingerprint` as fingerprint.ts takes it (opened
 * without following a link nor blocking on a FIFO, a regular file only, its
 * ends read into buffers zeroed past what was read, and hashed with its size; the unit tests
 * compare the two).
 */
const THREAD_CODE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const fs = require('node:fs');
const EDGE = ${FINGERPRINT_EDGE_BYTES};
const failure = (e) => ({ code: e && e.code, message: String(e && e.message) });
// What resolveInside's callers read of a Stats: a whole one costs more to send than the call.
const facts = (s) => [s.mode, s.size, s.mtimeMs];
// The ends' buffers, reused: what a read leaves of them is zeroed.
const heads = Buffer.alloc(EDGE);
const tails = Buffer.alloc(EDGE);
const readAt = (fd, buffer, position) => {
  const read = fs.readSync(fd, buffer, 0, buffer.length, position);
  if (read < buffer.length) buffer.fill(0, read);
};
const fingerprint = (file) => {
  const fd = fs.openSync(file, ${OPEN_FLAGS});
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'ENOTREG' });
    const size = stat.size;
    const tailStart = Math.max(0, size - EDGE);
    const head = heads.subarray(0, Math.min(size, EDGE));
    const tail = tails.subarray(0, size - tailStart);
    readAt(fd, head, 0);
    readAt(fd, tail, tailStart);
    return { fingerprint: createHash('sha1').update(size + ':').update(head).update(tail).digest('hex'), size };
  } finally {
    fs.closeSync(fd);
  }
};
parentPort.on('message', (m) => {
  const answer = {};
  if (m.fingerprint !== null) {
    try {
      answer.print = fingerprint(m.fingerprint);
    } catch (e) {
      answer.printError = failure(e);
    }
  }
  try {
    answer.real = fs.realpathSync.native(m.file);
    try {
      answer.stat = facts(fs.lstatSync(answer.real));
    } catch (e) {
      answer.statError = failure(e);
    }
  } catch (e) {
    answer.realError = failure(e);
    if (e && (e.code === 'ENOENT' || e.code === 'ENOTDIR' || e.code === 'ENAMETOOLONG')) {
      try {
        answer.own = facts(fs.lstatSync(m.file));
      } catch (e2) {
        answer.ownError = failure(e2);
      }
    }
  }
  parentPort.postMessage(answer);
});
`;

type Failure = { code?: string; message: string };

interface Answer {
  print?: { fingerprint: string; size: number };
  printError?: Failure;
  real?: string;
  stat?: Facts;
  statError?: Failure;
  realError?: Failure;
  own?: Facts;
  ownError?: Failure;
}

/** What one request found: resolveInside's calls, answered from it, and the fingerprint when asked for. */
export interface CheckAnswer {
  calls: PathCalls;
  /** The fingerprint asked for, its error, or null when none was asked for. */
  fingerprint: { fingerprint: string; size: number } | Error | null;
}

function asError(failure: Failure): NodeJS.ErrnoException {
  return Object.assign(new Error(failure.message), failure.code === undefined ? {} : { code: failure.code });
}

/** A Stats as the thread sends it: mode, size, mtimeMs. */
type Facts = [number, number, number];

/** The Stats of the thread's facts: Stats's methods read its mode; size and mtimeMs are all resolveInside's callers read else. */
function asStats([mode, size, mtimeMs]: Facts): Stats {
  return Object.setPrototypeOf({ mode, size, mtimeMs }, nodeFs.Stats.prototype) as Stats;
}

/** The answers of resolveInside's calls on `file`, as the thread gave them; every call fails with `error` when given. */
function answeredCalls(file: string, answer: Answer | null, error: Error | null): PathCalls {
  const fail = (what: string): Promise<never> => Promise.reject(error ?? new Error(`${what}: not asked of the check thread`));
  return {
    realpath: (p) => {
      if (error !== null || answer === null || p !== file) return fail(`realpath ${p}`);
      return answer.real !== undefined ? Promise.resolve(answer.real) : Promise.reject(asError(answer.realError as Failure));
    },
    lstat: (p) => {
      if (error !== null || answer === null) return fail(`lstat ${p}`);
      if (answer.real !== undefined && p === answer.real) {
        return answer.stat !== undefined ? Promise.resolve(asStats(answer.stat)) : Promise.reject(asError(answer.statError as Failure));
      }
      if (p === file && (answer.own !== undefined || answer.ownError !== undefined)) {
        return answer.own !== undefined ? Promise.resolve(asStats(answer.own)) : Promise.reject(asError(answer.ownError as Failure));
      }
      return fail(`lstat ${p}`);
    },
  };
}

/** A host's check threads (see the module's comment). */
export class CheckThreads {
  private readonly idle: Worker[] = [];
  /** Threads not yet ended: serving, idle, or abandoned in a call. */
  private live = 0;
  private readonly waiting: Array<(thread: Worker) => void> = [];

  constructor(
    private readonly max: number,
    readonly timeoutMs: number,
  ) {}

  /**
   * Resolves `file` as resolveInside does, and before that reads the
   * fingerprint of `fingerprint` (a real path) when not null. Never rejects
   * but when the signal aborts: a request past its deadline answers every
   * call (and the fingerprint) with `fs_timeout`'s error.
   */
  check(file: string, fingerprint: string | null, signal: AbortSignal): Promise<CheckAnswer> {
    if (signal.aborted) return Promise.reject(signal.reason as Error);
    return new Promise((resolve, reject) => {
      let settled = false;
      let running: Worker | null = null;
      const finish = (): boolean => {
        if (settled) return false;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        return true;
      };
      const onAbort = (): void => {
        if (finish()) reject(signal.reason as Error);
      };
      const timer = setTimeout(() => {
        if (!finish()) return;
        const error = fsTimeoutError(`check of ${file}`, this.timeoutMs);
        // Still in its call: it serves no one again.
        if (running !== null) this.abandon(running);
        resolve({ calls: answeredCalls(file, null, error), fingerprint: fingerprint === null ? null : error });
      }, this.timeoutMs);
      signal.addEventListener('abort', onAbort, { once: true });
      this.acquire((thread) => {
        if (settled) {
          // Given up while it waited: never asked.
          this.release(thread);
          return;
        }
        running = thread;
        const onError = (error: Error): void => {
          thread.off('message', onAnswer);
          this.abandon(thread);
          if (finish()) resolve({ calls: answeredCalls(file, null, error), fingerprint: fingerprint === null ? null : error });
        };
        const onAnswer = (answer: Answer): void => {
          thread.off('error', onError);
          // Answered in time, or after an abort: the thread serves again.
          if (!settled || signal.aborted) this.release(thread);
          if (!finish()) return;
          const print = answer.print ?? (answer.printError !== undefined ? asError(answer.printError) : null);
          resolve({ calls: answeredCalls(file, answer, null), fingerprint: print });
        };
        thread.once('message', onAnswer);
        thread.once('error', onError);
        thread.postMessage({ file, fingerprint });
      });
    });
  }

  private acquire(take: (thread: Worker) => void): void {
    const thread = this.idle.pop();
    if (thread !== undefined) take(thread);
    else if (this.live < this.max) take(this.spawn());
    else this.waiting.push(take);
  }

  private spawn(): Worker {
    this.live += 1;
    const thread = new Worker(THREAD_CODE, { eval: true, name: 'checks' });
    // The host's channel keeps it alive; a thread, idle or stuck, never does.
    thread.unref();
    // A failure is its request's (check's onError); one that ends it idle must not leave it among the idle.
    thread.on('error', () => undefined);
    thread.once('exit', () => {
      this.live -= 1;
      const idle = this.idle.indexOf(thread);
      if (idle >= 0) this.idle.splice(idle, 1);
      const next = this.waiting.shift();
      if (next !== undefined) next(this.spawn());
    });
    return thread;
  }

  private release(thread: Worker): void {
    const next = this.waiting.shift();
    if (next !== undefined) next(thread);
    else this.idle.push(thread);
  }

  private abandon(thread: Worker): void {
    thread.removeAllListeners('message');
    // Ends once the kernel lets its call go; its place is freed then ('exit').
    thread.terminate().catch(() => undefined);
  }
}
