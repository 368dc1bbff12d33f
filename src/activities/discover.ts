import { lstatSync, promises as fs, type Dirent, type Stats } from 'node:fs';
import path from 'node:path';
import picomatch from 'picomatch';
import { ErrorType } from '../scan/types';
import { isInside, resolveInside } from './containment';

/** Files stat-ed per round while walking a folder (at once, through the thread pool), with the signal checked between rounds. */
const STAT_PARALLELISM = 64;

/**
 * A synchronous lstat slower than this (ms) sends the rest of the walk to the
 * thread pool. On a local disk an lstat of a just-listed folder's file takes a
 * few microseconds, and through the thread pool it cost 20 µs of CPU and a
 * round trip each (measured: 5,000 files in 15-35 ms synchronously, 80-170 ms
 * through promises): most of an unchanged library's rescan. A network share
 * answers in a round trip of its own, and must not stall the event loop.
 */
const SLOW_SYNC_STAT_MS = 2;

/** Slow synchronous lstats before the walk turns to the thread pool: one alone may be the process being descheduled. */
const SLOW_SYNC_STATS = 3;

/**
 * lstat of a round of a folder's files: synchronously while that stays
 * fast, all at once through the thread pool once a few were slow. A file
 * that cannot be stat-ed (gone since the listing) is null.
 */
function createFolderStatter(): (files: readonly string[]) => Promise<(Stats | null)[]> {
  let slow = 0;
  return async (files) => {
    const stats: (Stats | null)[] = [];
    while (slow < SLOW_SYNC_STATS && stats.length < files.length) {
      const started = performance.now();
      try {
        stats.push(lstatSync(files[stats.length] as string));
      } catch {
        stats.push(null);
      }
      if (performance.now() - started > SLOW_SYNC_STAT_MS) slow += 1;
    }
    const rest = await Promise.all(files.slice(stats.length).map(async (file) => fs.lstat(file).catch(() => null)));
    return [...stats, ...rest];
  };
}

/** A file the walk found: a regular file to probe, or one named like a video that cannot be (with the reason). */
export interface WalkedFile {
  path: string;
  size: number;
  mtimeMs: number;
  /** Set when the file cannot be probed: recorded as failed with this reason. */
  error?: string;
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
 * that cannot be listed for want of permission is yielded with the reason too
 * (its own path, so a retry can walk it once it is readable); one that
 * vanished mid-walk is passed over through `onSkip`. Neither is fatal.
 */
export async function* walkVideoFiles(options: WalkOptions): AsyncGenerator<WalkedFile> {
  const { signal } = options;
  const realRoot = await fs.realpath(options.root);
  const from = options.from ?? options.root;
  let start = realRoot;
  if (options.from !== undefined) {
    try {
      start = await fs.realpath(from);
    } catch (error) {
      options.onSkip?.(from, error as NodeJS.ErrnoException);
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
  const statFolder = createFolderStatter();
  while (stack.length > 0) {
    signal?.throwIfAborted();
    const { dir, real: foundAt, relative: relativeDir } = stack.pop() as PendingDir;
    // The folder may have been swapped for a link since it was found: list it
    // only where it really is now, and only if that is still inside the root.
    let realDir: string;
    try {
      realDir = foundAt === start && dir === from ? start : await fs.realpath(dir);
    } catch (error) {
      options.onSkip?.(dir, error as NodeJS.ErrnoException);
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
      raw = await fs.readdir(realDir, { encoding: 'buffer', withFileTypes: true });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EACCES' || code === 'EPERM') yield { path: dir, size: 0, mtimeMs: 0, error: ErrorType.UnreadableFolder };
      else options.onSkip?.(dir, error as NodeJS.ErrnoException);
      continue;
    }
    signal?.throwIfAborted();
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
        const resolved = await resolveInside(realRoot, real);
        if (!resolved.ok) {
          if (isVideoName(name) && resolved.reason !== ErrorType.FileVanished) {
            problems.push({ path: full, size: 0, mtimeMs: 0, error: resolved.reason === ErrorType.OutsideScanRoot ? ErrorType.OutsideScanRoot : ErrorType.BrokenLink });
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
    // Stat a folder's files a round at a time (see createFolderStatter), the
    // signal checked between rounds. lstat of the real path: a file swapped
    // for a link since the listing is not followed.
    for (let i = 0; i < candidates.length; i += STAT_PARALLELISM) {
      signal?.throwIfAborted();
      const slice = candidates.slice(i, i + STAT_PARALLELISM);
      const stats = await statFolder(slice.map((file) => file.real));
      for (let j = 0; j < slice.length; j += 1) {
        const stat = stats[j];
        const file = slice[j] as { path: string; real: string };
        if (stat === null || stat === undefined) continue;
        if (stat.isSymbolicLink()) {
          // Swapped for a link since the listing: judged like any link, never stat-ed through.
          const resolved = await resolveInside(realRoot, file.real);
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
