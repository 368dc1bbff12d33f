import { type Dirent, type Stats } from 'node:fs';
import path from 'node:path';
import picomatch from 'picomatch';
import { DEFAULT_FS_CALL_TIMEOUT_MS, createMediaFs, mediaErrorReason, type MediaFs } from './media-fs';
import { ErrorType } from '../scan/types';
import { isInside, resolveInside } from './containment';

/**
 * Files stat-ed per round while walking a folder (at once, through the
 * thread pool, as many in flight as the media calls allow), with the signal
 * checked between rounds.
 */
const STAT_PARALLELISM = 64;

/** A file the walk found: a regular file to probe, or one named like a video that cannot be (with the reason). */
export interface WalkedFile {
  path: string;
  size: number;
  mtimeMs: number;
  /** Set when the file cannot be probed: recorded as failed with this reason. */
  error?: string;
  /** A folder whose files the walk could not see (its listing failed): none of them may be marked missing. */
  folder?: boolean;
}

/** Options of walkVideoFiles. */
export interface WalkOptions {
  /** The scan root: nothing outside its real path is listed, stat-ed or yielded as a file to probe. */
  root: string;
  /** The folder to walk, inside the root (a retry walks a folder it could not read before); the root by default. */
  from?: string;
  recursive: boolean;
  extensions: ReadonlySet<string>;
  /**
   * Stops the walk: checked before every folder and every round of stats,
   * so a cancel lands within one folder listing, whatever the tree holds.
   * The walk then throws the signal's reason.
   */
  signal?: AbortSignal;
  onSkip?: (dir: string, error: NodeJS.ErrnoException) => void;
  /**
   * A folder below the start that holds nothing at all: what an unmounted
   * mount point looks like (see settleVanished). Told, not fatal.
   */
  onEmptyFolder?: (dir: string) => void;
  /**
   * The calls on the tree (media-fs.ts): each bounded by FS_CALL_TIMEOUT, a
   * limited number in flight. By default FS_CALL_TIMEOUT's default and the signal.
   */
  fs?: MediaFs;
  /**
   * Says whether an entry is left out (see createExcludeMatcher): an excluded
   * folder is never listed or entered, an excluded file never stat-ed.
   * Given the path relative to the root; the root itself is never excluded.
   */
  isExcluded?: (relativePath: string, isDirectory: boolean) => boolean;
}

/**
 * Builds the test of exclusion globs (picomatch syntax). A glob without a
 * slash matches an entry's name at any depth (`@eaDir`, `._*`); one with a
 * slash matches the path relative to the scan's root (`Movies/tmp/**`); a
 * trailing slash limits a glob to folders (`.*` with one: hidden folders,
 * not hidden files). Dots are not special: `*` matches names that start with one.
 */
export function createExcludeMatcher(globs: readonly string[]): (relativePath: string, isDirectory: boolean) => boolean {
  // Names and paths are told apart here rather than with picomatch's
  // `basename` option, which misses a glob with both a slash and braces.
  const compile = (list: string[]): ((relativePath: string) => boolean) => {
    const byName = list.filter((glob) => !glob.includes('/'));
    const byPath = list.filter((glob) => glob.includes('/'));
    const name = byName.length > 0 ? picomatch(byName, { dot: true }) : null;
    const full = byPath.length > 0 ? picomatch(byPath, { dot: true }) : null;
    return (relativePath) => (name !== null && name(path.basename(relativePath))) || (full !== null && full(relativePath));
  };
  const matchAny = compile(globs.filter((glob) => !glob.endsWith('/')));
  const matchFolder = compile(globs.filter((glob) => glob.endsWith('/')).map((glob) => glob.replace(/\/+$/, '')).filter((glob) => glob.length > 0));
  return (relativePath, isDirectory) => matchAny(relativePath) || (isDirectory && matchFolder(relativePath));
}

/** A folder waiting to be walked: its path as the scan names it, and the real path it had when found. */
interface PendingDir {
  dir: string;
  real: string;
  /** `dir` relative to the root ('' for the root), as exclusion globs see it. */
  relative: string;
}

/**
 * Walks a tree in a fixed order (names sorted by byte), yielding the files
 * whose extension is in `extensions`.
 *
 * Symlinks are followed only while their target stays inside the root, and
 * every directory is entered once by its real path, so loops are impossible.
 * A folder is listed through its real path, checked against the root right
 * before, so a folder swapped for a link after it was found is not followed
 * out. Names that are not valid UTF-8, FIFOs and devices, and links that
 * dangle or lead out of the root are yielded with the reason they cannot be
 * probed, so that the scan records them instead of losing them. A folder
 * that cannot be listed (no permission: `unreadable_folder`; a read error:
 * `io_error`; no answer within FS_CALL_TIMEOUT: `fs_timeout`) is yielded with
 * the reason too, as a folder (its own path, so a retry can walk it once it
 * answers); one that vanished mid-walk is passed over through `onSkip`. A
 * file whose stat fails so gets the same reasons. None is fatal: the walk
 * goes on around it, and no call on the tree runs on the event loop.
 */
export async function* walkVideoFiles(options: WalkOptions): AsyncGenerator<WalkedFile> {
  const { signal } = options;
  const fs = options.fs ?? createMediaFs({ timeoutMs: DEFAULT_FS_CALL_TIMEOUT_MS, signal });
  const realRoot = await fs.realpath(options.root);
  const from = options.from ?? options.root;
  let start = realRoot;
  if (options.from !== undefined) {
    try {
      start = await fs.realpath(from);
    } catch (error) {
      signal?.throwIfAborted();
      const reason = mediaErrorReason(error);
      if (reason !== null) yield { path: from, size: 0, mtimeMs: 0, error: folderReason(reason), folder: true };
      else options.onSkip?.(from, error as NodeJS.ErrnoException);
      return;
    }
    if (!isInside(realRoot, start)) {
      yield { path: from, size: 0, mtimeMs: 0, error: ErrorType.OutsideScanRoot };
      return;
    }
  }
  const visited = new Set<string>([start]);
  const isVideoName = (name: string): boolean => options.extensions.has(path.extname(name).toLowerCase());
  // Depth-first with an explicit stack of sorted directories, so the order is
  // deterministic and deep trees cannot overflow the call stack.
  const stack: PendingDir[] = [{ dir: from, real: start, relative: path.relative(options.root, from) }];
  while (stack.length > 0) {
    signal?.throwIfAborted();
    const { dir, real: foundAt, relative: relativeDir } = stack.pop() as PendingDir;
    // The folder may have been swapped for a link since it was found: list it
    // only where it really is now, and only if that is still inside the root.
    let realDir: string;
    try {
      realDir = foundAt === start && dir === from ? start : await fs.realpath(dir);
    } catch (error) {
      signal?.throwIfAborted();
      const reason = mediaErrorReason(error);
      if (reason !== null) yield { path: dir, size: 0, mtimeMs: 0, error: folderReason(reason), folder: true };
      else options.onSkip?.(dir, error as NodeJS.ErrnoException);
      continue;
    }
    if (!isInside(realRoot, realDir)) {
      options.onSkip?.(dir, Object.assign(new Error(`${dir} now leads out of the scan root`), { code: 'EXDEV' }));
      continue;
    }
    if (realDir !== foundAt) {
      // Moved within the root since it was found: still entered once only.
      if (visited.has(realDir)) continue;
      visited.add(realDir);
    }
    let raw: Dirent<Buffer>[];
    try {
      // Names as bytes: a name that is not UTF-8 must be seen, not silently mangled.
      raw = await fs.readdir(realDir);
    } catch (error) {
      signal?.throwIfAborted();
      const reason = mediaErrorReason(error);
      if (reason !== null) yield { path: dir, size: 0, mtimeMs: 0, error: folderReason(reason), folder: true };
      else options.onSkip?.(dir, error as NodeJS.ErrnoException);
      continue;
    }
    signal?.throwIfAborted();
    if (raw.length === 0 && relativeDir !== '') options.onEmptyFolder?.(dir);
    raw.sort((a, b) => Buffer.compare(a.name, b.name));
    const subdirs: PendingDir[] = [];
    // A candidate's name in the scan, and the real path to stat (never through a link out).
    const candidates: { path: string; real: string }[] = [];
    const problems: WalkedFile[] = [];
    for (const entry of raw) {
      const bytes = entry.name;
      const name = bytes.toString('utf8');
      const full = path.join(dir, name);
      const relative = relativeDir === '' ? name : `${relativeDir}${path.sep}${name}`;
      if (!Buffer.from(name, 'utf8').equals(bytes)) {
        if (isVideoName(name)) problems.push({ path: full, size: 0, mtimeMs: 0, error: ErrorType.InvalidFileName });
        continue;
      }
      let isDir = entry.isDirectory();
      let isFile = entry.isFile();
      // Judged by name before anything else, so an excluded folder costs nothing (a link once resolved, below).
      const excluded = (asFolder: boolean): boolean => options.isExcluded?.(relative, asFolder) ?? false;
      if (!entry.isSymbolicLink() && excluded(isDir)) continue;
      let real = path.join(realDir, name);
      if (entry.isSymbolicLink()) {
        // Links cost a realpath each: a tree of links checks the signal between them.
        signal?.throwIfAborted();
        const resolved = await resolveInside(realRoot, real, fs);
        if (!resolved.ok) {
          if (isVideoName(name) && resolved.reason !== ErrorType.FileVanished) {
            problems.push({ path: full, size: 0, mtimeMs: 0, error: LINK_REASONS.has(resolved.reason) ? resolved.reason : ErrorType.BrokenLink });
          }
          continue;
        }
        real = resolved.real;
        isDir = resolved.stat.isDirectory();
        isFile = resolved.stat.isFile();
        if (excluded(isDir)) continue;
        if (isDir) {
          if (visited.has(real)) continue;
          visited.add(real);
        }
      } else if (isDir) {
        if (visited.has(real)) continue;
        visited.add(real);
      }
      if (isDir) {
        if (options.recursive) subdirs.push({ dir: full, real, relative });
        continue;
      }
      if (!isVideoName(name)) continue;
      if (!isFile) {
        // A FIFO named like a video would hang ffprobe forever; a device is no video either.
        problems.push({ path: full, size: 0, mtimeMs: 0, error: ErrorType.NotARegularFile });
        continue;
      }
      candidates.push({ path: full, real });
    }
    for (const problem of problems) yield problem;
    // Stat a folder's files a round at a time, the signal checked between
    // rounds. lstat of the real path: a file swapped for a link since the
    // listing is not followed. A stat that fails other than by the file's
    // vanishing is the file's reason (fs_timeout, io_error, permission_denied).
    for (let i = 0; i < candidates.length; i += STAT_PARALLELISM) {
      signal?.throwIfAborted();
      const slice = candidates.slice(i, i + STAT_PARALLELISM);
      const answers = await fs.lstatMany(slice.map((file) => file.real));
      signal?.throwIfAborted();
      // Told apart by shape, not instanceof: errors from Node's own fs may come from another realm (a VM context).
      const stats = answers.map((answer): Stats | string | null => (typeof (answer as Stats).isFile === 'function' ? (answer as Stats) : mediaErrorReason(answer)));
      for (let j = 0; j < slice.length; j += 1) {
        const stat = stats[j];
        const file = slice[j] as { path: string; real: string };
        if (stat === null || stat === undefined) continue;
        if (typeof stat === 'string') {
          yield { path: file.path, size: 0, mtimeMs: 0, error: stat };
          continue;
        }
        if (stat.isSymbolicLink()) {
          // Swapped for a link since the listing: judged like any link, never stat-ed through.
          const resolved = await resolveInside(realRoot, file.real, fs);
          if (!resolved.ok) {
            if (resolved.reason !== ErrorType.FileVanished) yield { path: file.path, size: 0, mtimeMs: 0, error: resolved.reason };
            continue;
          }
          if (resolved.stat.isFile()) yield { path: file.path, size: resolved.stat.size, mtimeMs: resolved.stat.mtimeMs };
          continue;
        }
        if (!stat.isFile()) continue;
        yield { path: file.path, size: stat.size, mtimeMs: stat.mtimeMs };
      }
    }
    // Push in reverse so the smallest name is walked first.
    for (let i = subdirs.length - 1; i >= 0; i -= 1) stack.push(subdirs[i] as PendingDir);
  }
}

/** Reasons of a link that cannot be followed, kept as they are; any other is a broken link. */
const LINK_REASONS = new Set<string>([ErrorType.OutsideScanRoot, ErrorType.FsTimeout, ErrorType.IoError]);

/** A folder that refused its listing for want of permission is `unreadable_folder`; other reasons stand. */
function folderReason(reason: string): string {
  return reason === ErrorType.PermissionDenied ? ErrorType.UnreadableFolder : reason;
}
