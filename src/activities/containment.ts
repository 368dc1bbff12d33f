/**
 * Containment: the one place that decides whether a path may be touched by a
 * scan. Every route to a file (the walk, a retry's list of earlier files, the
 * probe of a recorded file, and any later rescan or schedule, which run the
 * same activities) passes through these checks in the worker itself, because
 * anyone who can reach Temporal can start a workflow with any input: the API's
 * own validation of a root is a convenience, not the fence.
 */
import { promises as fs, lstatSync, realpathSync, type Stats } from 'node:fs';
import path from 'node:path';
import type { ApplicationFailure } from '@temporalio/activity';
import { ErrorType } from '../scan/types';

/**
 * True when `real` is `realRoot` or lies below it. Both must be real paths
 * (symlinks resolved); the comparison is by whole components, so `/media-evil`
 * is not inside `/media`.
 */
export function isInside(realRoot: string, real: string): boolean {
  if (real === realRoot) return true;
  const prefix = realRoot.endsWith(path.sep) ? realRoot : realRoot + path.sep;
  return real.startsWith(prefix);
}

async function invalidRoot(message: string): Promise<ApplicationFailure> {
  // Loaded here, not at the top: the probe hosts use this module's path
  // checks (probe/contained.ts) and have no use for Temporal's SDK.
  const { ApplicationFailure } = await import('@temporalio/activity');
  // Non-retryable: a root outside the allowed ones, or no directory at all,
  // does not become acceptable by trying again.
  return ApplicationFailure.nonRetryable(message, ErrorType.InvalidScanRoot);
}

/**
 * Checks a scan's root against the worker's own `SCAN_ROOTS` (undefined: any
 * directory, as for the API) and returns its real path, which every later
 * containment check compares against. Throws a non-retryable
 * `InvalidScanRoot` failure when the root is not an absolute path to a
 * directory inside an allowed root.
 */
export async function checkScanRoot(root: string, allowedRoots: readonly string[] | undefined): Promise<string> {
  if (!path.isAbsolute(root) || root.includes('\0')) throw await invalidRoot(`scan root must be an absolute path: ${JSON.stringify(root)}`);
  const realRoot = await fs.realpath(root).catch(() => null);
  const stat = realRoot === null ? null : await fs.stat(realRoot).catch(() => null);
  if (realRoot === null || stat === null || !stat.isDirectory()) throw await invalidRoot(`scan root is not a readable directory: ${root}`);
  if (allowedRoots !== undefined) {
    const realAllowed = await Promise.all(allowedRoots.map((allowed) => fs.realpath(allowed).catch(() => path.resolve(allowed))));
    if (!realAllowed.some((allowed) => isInside(allowed, realRoot))) {
      throw await invalidRoot(`scan root is outside this worker's SCAN_ROOTS: ${root}`);
    }
  }
  return realRoot;
}

/** A path resolved inside the root: its real path and what is there now (not following links). */
export interface Contained {
  ok: true;
  real: string;
  stat: Stats;
}

/** A path that may not be touched, with the reason recorded for it. */
export interface NotContained {
  ok: false;
  reason: string;
}

/** The two file system calls resolveInside makes. */
export interface PathCalls {
  realpath(file: string): Promise<string>;
  lstat(file: string): Promise<Stats>;
}

const asyncCalls: PathCalls = { realpath: (file) => fs.realpath(file), lstat: (file) => fs.lstat(file) };

/**
 * The same calls made synchronously, for a probe host: they take microseconds
 * on metadata the kernel has cached, where each asynchronous call is a round
 * trip through libuv's thread pool that costs the host more than the call.
 * A call stuck on a dead mount stalls the host until the worker kills it
 * past the probe's time limit, as a stuck probe would.
 */
export const syncPathCalls: PathCalls = {
  realpath: async (file) => realpathSync.native(file),
  lstat: async (file) => lstatSync(file),
};

/**
 * Resolves a path found under a scan's root to its real path, and says
 * whether that may be touched: only when it lies inside `realRoot`. A link
 * that dangles or loops is `broken_link`, one that leads out of the root
 * `outside_scan_root`; a path gone since is `file_vanished`. Errors of the
 * machine (EIO, EMFILE) are thrown, so that the activity is retried.
 */
export async function resolveInside(realRoot: string, file: string, calls: PathCalls = asyncCalls): Promise<Contained | NotContained> {
  if (!path.isAbsolute(file) || file.includes('\0')) return { ok: false, reason: ErrorType.OutsideScanRoot };
  let real: string;
  try {
    real = await calls.realpath(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') return { ok: false, reason: ErrorType.BrokenLink };
    if (code === 'EACCES' || code === 'EPERM') return { ok: false, reason: ErrorType.PermissionDenied };
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ENAMETOOLONG') {
      // A link whose target is gone is a broken link; a path that is gone itself has vanished.
      const own = await calls.lstat(file).catch(() => null);
      return { ok: false, reason: own?.isSymbolicLink() ? ErrorType.BrokenLink : ErrorType.FileVanished };
    }
    throw error;
  }
  if (!isInside(realRoot, real)) return { ok: false, reason: ErrorType.OutsideScanRoot };
  // lstat, not stat: should the real path have become a link since, it is
  // seen as one (not a regular file) instead of being followed.
  let stat: Stats;
  try {
    stat = await calls.lstat(real);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') return { ok: false, reason: ErrorType.PermissionDenied };
    if (code === 'ENOENT' || code === 'ENOTDIR') return { ok: false, reason: ErrorType.FileVanished };
    throw error;
  }
  return { ok: true, real, stat };
}
