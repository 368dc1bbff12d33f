/**
 * Containment: the one place that decides whether a path may be touched by a
 * scan. Every route to a file (the walk, a retry's list of earlier files, the
 * probe of a recorded file, and any later rescan or schedule, which run the
 * same activities) passes through these checks in the worker itself, because
 * anyone who can reach Temporal can start a workflow with any input: the API's
 * own validation of a root is a convenience, not the fence.
 */
import { promises as fs, type Stats } from 'node:fs';
import path from 'node:path';
import type { ApplicationFailure } from '@temporalio/activity';
import { ErrorType } from '../model/types';
import { mediaErrorReason, type MediaFs } from './media-fs';

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
 * directory inside an allowed root. The root is a media path: its calls go
 * through `calls` (bounded by FS_CALL_TIMEOUT); a root that does not answer
 * is offline (`root_offline`, non-retryable: the scan fails and marks nothing).
 */
export async function checkScanRoot(root: string, allowedRoots: readonly string[] | undefined, calls: Pick<MediaFs, 'realpath' | 'lstat'>): Promise<string> {
  if (!path.isAbsolute(root) || root.includes('\0')) throw await invalidRoot(`scan root must be an absolute path: ${JSON.stringify(root)}`);
  let realRoot: string | null = null;
  let stat: Stats | null = null;
  try {
    realRoot = await calls.realpath(root);
    // lstat of the real path: the real path of a directory is never a link.
    stat = await calls.lstat(realRoot);
  } catch (error) {
    const reason = mediaErrorReason(error);
    if (reason === ErrorType.FsTimeout || reason === ErrorType.IoError) throw await rootOffline(`${root} did not answer: ${(error as Error).message}`);
  }
  if (realRoot === null || stat === null || !stat.isDirectory()) throw await invalidRoot(`scan root is not a readable directory: ${root}`);
  if (allowedRoots !== undefined) {
    // The allowed roots are the worker's own configuration, not a share's content: plain calls.
    const realAllowed = await Promise.all(allowedRoots.map((allowed) => fs.realpath(allowed).catch(() => path.resolve(allowed))));
    if (!realAllowed.some((allowed) => isInside(allowed, realRoot))) {
      throw await invalidRoot(`scan root is outside this worker's SCAN_ROOTS: ${root}`);
    }
  }
  return realRoot;
}

/**
 * The failure of a scan whose root is offline: its message starts with
 * `root_offline`, which the job's `error` shows. Non-retryable: the scan
 * ends `failed` at once, before anything is marked missing.
 */
export async function rootOffline(detail: string): Promise<ApplicationFailure> {
  const { ApplicationFailure } = await import('@temporalio/activity');
  return ApplicationFailure.nonRetryable(`${ErrorType.RootOffline}: ${detail}; nothing was marked missing`, ErrorType.RootOffline);
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

/** The two file system calls resolveInside makes: media-fs.ts's, bounded by FS_CALL_TIMEOUT. */
export type PathCalls = Pick<MediaFs, 'realpath' | 'lstat'>;

/**
 * Resolves a path found under a scan's root to its real path, and says
 * whether that may be touched: only when it lies inside `realRoot`. A link
 * that dangles or loops is `broken_link`, one that leads out of the root
 * `outside_scan_root`; a path gone since is `file_vanished`; a call past its
 * deadline `fs_timeout`, a read error of the share (EIO, ESTALE) `io_error`.
 * Shortages of the machine (EMFILE) are thrown, so that the activity is retried.
 */
export async function resolveInside(realRoot: string, file: string, calls: PathCalls): Promise<Contained | NotContained> {
  if (!path.isAbsolute(file) || file.includes('\0')) return { ok: false, reason: ErrorType.OutsideScanRoot };
  let real: string;
  try {
    real = await calls.realpath(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') return { ok: false, reason: ErrorType.BrokenLink };
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ENAMETOOLONG') {
      // A link whose target is gone is a broken link; a path that is gone itself has vanished.
      const own = await calls.lstat(file).catch(() => null);
      return { ok: false, reason: own?.isSymbolicLink() ? ErrorType.BrokenLink : ErrorType.FileVanished };
    }
    const reason = mediaErrorReason(error);
    if (reason !== null) return { ok: false, reason };
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
    if (code === 'ENOENT' || code === 'ENOTDIR') return { ok: false, reason: ErrorType.FileVanished };
    const reason = mediaErrorReason(error);
    if (reason !== null) return { ok: false, reason };
    throw error;
  }
  return { ok: true, real, stat };
}
