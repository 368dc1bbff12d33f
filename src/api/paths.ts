import { promises as fs, type Stats } from 'node:fs';
import path from 'node:path';
import { DomainError } from '../errors';
import { isInside } from '../filesystem/containment';
import { mediaErrorReason } from '../filesystem/media-fs';
import { ErrorType } from '../model/types';

/** A realpath call: fs.realpath by default, or media-fs.ts's bounded one where the path may lie on a share that hangs. */
export type RealpathCall = (file: string) => Promise<string>;

const plainRealpath: RealpathCall = (file) => fs.realpath(file);

/** The calls a requested root is checked with: plain fs by default, media-fs.ts's bounded ones in the API. */
export interface RootCalls {
  realpath: RealpathCall;
  stat(file: string): Promise<Stats>;
}

const plainCalls: RootCalls = { realpath: plainRealpath, stat: (file) => fs.stat(file) };

/** A share that did not answer: the request may be tried again once it does (503, not the caller's fault). */
function shareUnanswered(requested: string, error: unknown): DomainError {
  const reason = mediaErrorReason(error);
  return new DomainError('UNAVAILABLE', 503, `path did not answer (${String(reason)}): ${requested}; its share may be offline or slow, try again`);
}

/** A share that did not answer (FS_CALL_TIMEOUT) or failed a read: nothing can be said of the path, so the error stands. */
export function unanswered(error: unknown): boolean {
  const reason = mediaErrorReason(error);
  return reason === ErrorType.FsTimeout || reason === ErrorType.IoError;
}

/**
 * The real path a requested path stands for, whether or not it exists: the
 * real path of its nearest existing ancestor (symlinks resolved) joined with
 * the components below it, which, not existing, cannot be links.
 */
async function realPathOf(requested: string, realpath: RealpathCall): Promise<string> {
  const rest: string[] = [];
  for (let current = path.resolve(requested); ; current = path.dirname(current)) {
    try {
      return path.join(await realpath(current), ...rest.reverse());
    } catch (error) {
      if (unanswered(error)) throw error;
      if (current === path.dirname(current)) return path.resolve(requested);
      rest.push(path.basename(current));
    }
  }
}

/** Whether `real` is one of `realRoots` or below one (containment.ts's isInside: by whole path components). */
function insideAny(real: string, realRoots: readonly string[]): boolean {
  return realRoots.some((root) => isInside(root, real));
}

/** The real paths of the allowed roots (as given where one cannot be resolved). */
export async function realRoots(allowedRoots: string[], realpath: RealpathCall = plainRealpath): Promise<string[]> {
  return Promise.all(allowedRoots.map((root) => realpath(root).catch(() => root)));
}

/**
 * Checks the form of a requested path and that it lies inside the allowed
 * roots, before anything about its existence is said: outside the roots the
 * answer is 403 PATH_NOT_ALLOWED whether or not the path exists, so the API
 * tells no caller which paths exist on the host. Returns the real path
 * (resolved through its nearest existing ancestor; it may not exist).
 * With `realpath` bounded (media-fs.ts), a share that does not answer
 * rejects with its fs_timeout or io_error instead of hanging the request.
 */
export async function containedPath(requested: string, allowedRoots: string[] | undefined, realpath: RealpathCall = plainRealpath): Promise<string> {
  if (requested.includes('\0')) throw new DomainError('INVALID_PATH', 400, 'path contains a NUL byte');
  if (!path.isAbsolute(requested)) throw new DomainError('INVALID_PATH', 400, 'path must be absolute');
  if (requested.split(/[\\/]/).includes('..')) throw new DomainError('INVALID_PATH', 400, 'path must not contain ".." segments');
  const real = await realPathOf(requested, realpath);
  if (allowedRoots !== undefined && !insideAny(real, await realRoots(allowedRoots, realpath))) {
    throw new DomainError('PATH_NOT_ALLOWED', 403, 'path is outside the allowed scan roots');
  }
  return real;
}

/** containedPath for a root to scan: a share that does not answer is 503 UNAVAILABLE. */
export async function containedRoot(requested: string, allowedRoots: string[] | undefined, calls: RootCalls = plainCalls): Promise<string> {
  try {
    return await containedPath(requested, allowedRoots, calls.realpath);
  } catch (error) {
    if (unanswered(error)) throw shareUnanswered(requested, error);
    throw error;
  }
}

/**
 * Turns the `path` of a scan request into the real path of a directory inside
 * the allowed roots, or throws INVALID_PATH / PATH_NOT_ALLOWED. Containment
 * first (see containedPath), then existence; containment is checked on real
 * paths (symlinks resolved). With bounded `calls` (media-fs.ts), a path on a
 * share that does not answer within FS_CALL_TIMEOUT is 503 UNAVAILABLE,
 * and the request never waits longer than that.
 */
export async function resolveScanRoot(requested: string, allowedRoots: string[] | undefined, calls: RootCalls = plainCalls): Promise<string> {
  const real = await containedRoot(requested, allowedRoots, calls);
  let stat;
  try {
    stat = await calls.stat(real);
  } catch (error) {
    if (unanswered(error)) throw shareUnanswered(requested, error);
    const code = (error as NodeJS.ErrnoException).code;
    throw new DomainError('INVALID_PATH', 400, code === 'ENOENT' || code === 'ENOTDIR' ? `path does not exist: ${requested}` : `path cannot be read: ${requested}`);
  }
  if (!stat.isDirectory()) throw new DomainError('INVALID_PATH', 400, `path is not a directory: ${requested}`);
  // Resolved again now that it exists: a link created since the first look is followed, and contained.
  let resolved: string;
  try {
    resolved = await calls.realpath(real);
  } catch (error) {
    if (unanswered(error)) throw shareUnanswered(requested, error);
    resolved = real;
  }
  if (allowedRoots !== undefined && !insideAny(resolved, await realRoots(allowedRoots, calls.realpath))) {
    throw new DomainError('PATH_NOT_ALLOWED', 403, 'path is outside the allowed scan roots');
  }
  return resolved;
}
