/**
 * Filesystem calls on media paths, each with a deadline: what discovery, the
 * missing-file check, the pictures and the probe hosts use to touch anything
 * under a scan root.
 *
 * Media usually sit on NFS or SMB, where one call may take seconds or never
 * return (a dead hard mount). So no such call runs on the event loop: each
 * goes through libuv's thread pool, and past FS_CALL_TIMEOUT its caller is
 * told `fs_timeout` and goes on, while the call itself keeps its pool thread
 * until the kernel lets go of it. A call counts against its owner's limit of
 * calls in flight until it really returns, not until its deadline: so hung
 * calls hold at most that many pool threads, and the rest of the process
 * (other scans, heartbeats, DNS, zlib) keeps the others.
 */
import nodeFs, { promises as fs, type Dirent, type Stats } from 'node:fs';
import { ErrorType } from '../model/types';
import { OPEN_FLAGS, fingerprintHandle } from './fingerprint';

/** FS_CALL_TIMEOUT's default: a share that has not answered in 30 s is not about to. */
export const DEFAULT_FS_CALL_TIMEOUT_MS = 30_000;

/** The code of the error a call past its deadline rejects with. */
export const FS_TIMEOUT_CODE = 'EFSTIMEOUT';

/** Errors of a share or a disk that failed a read: the file or folder gets `io_error`, the scan goes on. */
const IO_ERROR_CODES = new Set(['EIO', 'ESTALE', 'ENOTCONN', 'EHOSTDOWN', 'EHOSTUNREACH', 'EREMOTEIO', 'ECONNABORTED', 'ECONNRESET', 'ETIMEDOUT', 'ENXIO', 'EBADMSG']);

/**
 * Media-path calls one owner (a discovery, a picture batch, a probe host)
 * has in flight at once. Why 16: a walk's round of stats on a local disk
 * keeps the pool busy with that many, and a share that hangs can then hold
 * at most 16 pool threads of the worker (sized in thread-pool.ts); fewer
 * leave a local disk's pool idle between rounds, more gain little on 2 cores.
 */
export const MEDIA_CALLS_IN_FLIGHT = 16;

/** Options of createMediaFs. */
export interface MediaFsOptions {
  /** FS_CALL_TIMEOUT: the deadline of each call, from the moment it is asked for (waiting for a slot included). */
  timeoutMs: number;
  /** Calls in flight at once (MEDIA_CALLS_IN_FLIGHT when absent). */
  maxInFlight?: number;
  /** A limit shared with other owners' calls (a probe host's files share one), instead of one of maxInFlight. */
  slots?: MediaSlots;
  /** Aborts every call waiting or running: it rejects with the signal's reason at once. */
  signal?: AbortSignal;
}

/** Deadline-bounded filesystem calls (see the module's comment). */
export interface MediaFs {
  readonly timeoutMs: number;
  lstat(file: string): Promise<Stats>;
  /**
   * lstat of many files at once (a folder's round in the walk), under one
   * deadline: each entry is the file's Stats or its error (fs_timeout for
   * those unanswered at the deadline; those not issued by then never are).
   */
  lstatMany(files: readonly string[]): Promise<(Stats | NodeJS.ErrnoException)[]>;
  realpath(file: string): Promise<string>;
  /** stat, following a last link: what a requested scan root is checked with. */
  stat(file: string): Promise<Stats>;
  /** Entries with their names as bytes (a name that is not UTF-8 must be seen, not mangled). */
  readdir(dir: string): Promise<Dirent<Buffer>[]>;
  /** The content fingerprint of a regular file (fingerprint.ts); anything else fails (code ENOTREG) without being read. */
  fingerprint(file: string): Promise<{ fingerprint: string; size: number }>;
}

/** The error a call past its deadline rejects with. */
export function fsTimeoutError(what: string, timeoutMs: number): NodeJS.ErrnoException {
  return Object.assign(new Error(`${what} did not answer within ${timeoutMs} ms (FS_CALL_TIMEOUT)`), { code: FS_TIMEOUT_CODE });
}

/**
 * The per-file or per-folder reason of a failed media-path call: `fs_timeout`,
 * `io_error`, `permission_denied`; null for anything else (a vanished path, or
 * a shortage of the machine that a retry may cure).
 */
export function mediaErrorReason(error: unknown): string | null {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  if (code === FS_TIMEOUT_CODE) return ErrorType.FsTimeout;
  if (code === 'EACCES' || code === 'EPERM') return ErrorType.PermissionDenied;
  if (code !== undefined && IO_ERROR_CODES.has(code)) return ErrorType.IoError;
  return null;
}

/**
 * Calls in flight and a line of those waiting, shared by an owner's calls.
 * Hand-written rather than p-limit: a walk issues one per file, and a promise
 * and an async function per call cost more than the lstat itself on a local
 * disk.
 */
export class MediaSlots {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly max: number) {}

  /** Starts `start` now, or when a slot frees; it must call the release it is given once its call has returned. */
  acquire(start: (release: () => void) => void): void {
    if (this.active < this.max) {
      this.active += 1;
      start(this.release);
    } else {
      this.waiting.push(() => start(this.release));
    }
  }

  private readonly release = (): void => {
    const next = this.waiting.shift();
    if (next !== undefined) next();
    else this.active -= 1;
  };
}

/** Creates an owner's bounded calls: one limit of calls in flight, one deadline, one signal. */
export function createMediaFs({ timeoutMs, maxInFlight = MEDIA_CALLS_IN_FLIGHT, slots = new MediaSlots(maxInFlight), signal }: MediaFsOptions): MediaFs {

  const call = <T>(what: string, run: () => Promise<T>): Promise<T> => {
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const finish = (): boolean => {
        if (settled) return false;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        return true;
      };
      const onAbort = (): void => {
        if (finish()) reject(signal?.reason as Error);
      };
      const timer = setTimeout(() => {
        if (finish()) reject(fsTimeoutError(what, timeoutMs));
      }, timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      // The slot is held until the call itself returns, however long after its deadline.
      slots.acquire((release) => {
        if (settled) {
          // Given up while it waited: never issued.
          release();
          return;
        }
        run().then(
          (value) => {
            release();
            if (finish()) resolve(value);
          },
          (error: unknown) => {
            release();
            if (finish()) reject(error as Error);
          },
        );
      });
    });
  };

  const lstatMany = (files: readonly string[]): Promise<(Stats | NodeJS.ErrnoException)[]> => {
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    const results: (Stats | NodeJS.ErrnoException | undefined)[] = Array.from({ length: files.length }, () => undefined);
    if (files.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      let left = files.length;
      let over = false;
      const end = (): void => {
        over = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = (): void => {
        if (over) return;
        end();
        reject(signal?.reason as Error);
      };
      const timer = setTimeout(() => {
        if (over) return;
        end();
        resolve(results.map((result, i) => result ?? fsTimeoutError(`lstat ${files[i] as string}`, timeoutMs)));
      }, timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      files.forEach((file, i) =>
        slots.acquire((release) => {
          if (over) {
            release();
            return;
          }
          // The callback form: no promise per file (see MediaSlots).
          nodeFs.lstat(file, (error, stat) => {
            release();
            if (over) return;
            results[i] = error ?? stat;
            left -= 1;
            if (left === 0) {
              end();
              resolve(results as (Stats | NodeJS.ErrnoException)[]);
            }
          });
        }),
      );
    });
  };

  return {
    timeoutMs,
    lstat: (file) => call(`lstat ${file}`, () => fs.lstat(file)),
    lstatMany,
    realpath: (file) => call(`realpath ${file}`, () => fs.realpath(file)),
    stat: (file) => call(`stat ${file}`, () => fs.stat(file)),
    readdir: (dir) => call(`listing ${dir}`, () => fs.readdir(dir, { encoding: 'buffer', withFileTypes: true })),
    fingerprint: (file) =>
      // Open, stat, two reads and close as one call: one deadline, one slot. A
      // handle that opens after its deadline is still closed when the reads end.
      call(`fingerprint ${file}`, async () => {
        const handle = await fs.open(file, OPEN_FLAGS);
        try {
          return await fingerprintHandle(handle);
        } finally {
          await handle.close();
        }
      }),
  };
}
