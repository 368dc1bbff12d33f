import type { Dirent } from 'node:fs';
import path from 'node:path';
import picomatch from 'picomatch';
import { DEFAULT_FS_CALL_TIMEOUT_MS, createMediaFs, mediaErrorReason, type MediaFs } from './media-fs';
import { ErrorType } from '../model/types';
import { isInside, resolveInside } from './containment';
import { borrowWalkThread, EntryKind, WalkThreadStuck, type FileFacts, type ListedEntry, type Listing, type WalkThread } from './walker-thread';

/**
 * Files stat-ed per round while walking a folder (at once, through the
 * thread pool, as many in flight as the media calls allow), with the signal
 * checked between rounds.
 */
const STAT_PARALLELISM = 64;

/** Folders listed on the walk threads ahead of their turn (in messages of at least half as many, split among the threads). */
const LISTINGS_AHEAD = 32;

/**
 * Walk threads one walk lists on at most: a local walk is mostly the
 * kernel's lstat, and a second thread lists the next folders while the
 * first lists these (bench/walk.ts times it).
 */
const LISTERS = 2;

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
   * Lists and stats on a walk thread (walker-thread.ts), each call bounded by
   * `fs`'s deadline, and through `fs` once that thread was stuck past it; true
   * by default. False: every call through `fs`.
   */
  thread?: boolean;
  /**
   * Says whether an entry is left out (see createExcludeMatcher): an excluded
   * folder is never listed or entered, an excluded file never yielded (on
   * the walk thread it may be stat-ed with its folder's listing, before it is judged).
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
  for await (const files of walkVideoFileBatches(options)) yield* files;
}

/**
 * walkVideoFiles a few files at a time (a folder's round of stats, or its
 * files that cannot be probed), in the same order: what discovery takes, a
 * step of an async generator a round rather than a file.
 */
export async function* walkVideoFileBatches(options: WalkOptions): AsyncGenerator<WalkedFile[]> {
  const listers = new Listers(options.thread !== false);
  try {
    yield* walk(options, listers);
  } finally {
    listers.giveBack();
  }
}

/**
 * The walk threads of one walk: one lent at its start, the others (up to
 * LISTERS) only once it asks listings ahead, so that a walk of a folder or
 * two costs one thread. Once one is stuck (a share that stopped answering),
 * no other is lent: what is left goes through the thread pool.
 */
class Listers {
  private readonly threads: WalkThread[] = [];

  constructor(enabled: boolean) {
    if (enabled) this.threads.push(borrowWalkThread());
  }

  /** The thread a folder's own listing and its files' stats go to; null once none is usable. */
  get first(): WalkThread | null {
    return this.threads.find((thread) => thread.usable) ?? null;
  }

  /** The threads to share a batch of listings ahead among. */
  ahead(): WalkThread[] {
    const usable = this.threads.filter((thread) => thread.usable);
    if (this.threads.length === 0 || usable.length < this.threads.length) return usable;
    while (this.threads.length < LISTERS) this.threads.push(borrowWalkThread());
    return this.threads;
  }

  giveBack(): void {
    for (const thread of this.threads) thread.giveBack();
  }
}

/** A Dirent as the walk sees it. */
function entryOf(dirent: Dirent<Buffer>): ListedEntry {
  const kind = dirent.isFile() ? EntryKind.File : dirent.isDirectory() ? EntryKind.Directory : dirent.isSymbolicLink() ? EntryKind.Link : EntryKind.Other;
  return { name: dirent.name, kind };
}

async function* walk(options: WalkOptions, listers: Listers): AsyncGenerator<WalkedFile[]> {
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
      if (reason !== null) yield [{ path: from, size: 0, mtimeMs: 0, error: folderReason(reason), folder: true }];
      else options.onSkip?.(from, error as NodeJS.ErrnoException);
      return;
    }
    if (!isInside(realRoot, start)) {
      yield [{ path: from, size: 0, mtimeMs: 0, error: ErrorType.OutsideScanRoot }];
      return;
    }
  }
  const visited = new Set<string>([start]);
  // Listings asked of the walk thread ahead of their turn (see prefetchNext).
  const prefetched = new Map<PendingDir, Promise<Listing>>();
  // Extensions as the thread sees them, to stat the files named like videos with their folder's listing.
  const exts = [...options.extensions].map((ext) => ext.toLowerCase());
  const isVideoName = (name: string): boolean => options.extensions.has(path.extname(name).toLowerCase());
  // Depth-first with an explicit stack of sorted directories, so the order is
  // deterministic and deep trees cannot overflow the call stack.
  const stack: PendingDir[] = [{ dir: from, real: start, relative: path.relative(options.root, from) }];
  while (stack.length > 0) {
    signal?.throwIfAborted();
    const pending = stack.pop() as PendingDir;
    const { dir, real: foundAt, relative: relativeDir } = pending;
    // The folder may have been swapped for a link since it was found: list it
    // only where it really is now, and only if that is still inside the root.
    const isStart = foundAt === start && dir === from;
    let realDir: string;
    let raw: ListedEntry[];
    const thread = listers.first;
    try {
      if (thread !== null) {
        // Real path, containment and listing in one message to a walk thread.
        let listing: Listing;
        const early = prefetched.get(pending);
        prefetched.delete(pending);
        try {
          listing = await (early ?? thread.list(isStart ? start : dir, !isStart, realRoot, exts, fs.timeoutMs, signal));
        } catch (error) {
          if (!(error instanceof WalkThreadStuck)) throw error;
          // The thread may have been stuck on the listing, on a file's stat
          // taken with it, or on another folder's stats asked before it: asked
          // again through the pool, which tells which (fs_timeout of the folder or of the file).
          listing = await listThroughPool(dir, isStart ? start : null, realRoot, fs);
        }
        realDir = listing.real;
        if (listing.outside) {
          options.onSkip?.(dir, Object.assign(new Error(`${dir} now leads out of the scan root`), { code: 'EXDEV' }));
          continue;
        }
        if (realDir !== foundAt) {
          if (visited.has(realDir)) continue;
          visited.add(realDir);
        }
        raw = listing.entries;
      } else {
        realDir = isStart ? start : await fs.realpath(dir);
        if (!isInside(realRoot, realDir)) {
          options.onSkip?.(dir, Object.assign(new Error(`${dir} now leads out of the scan root`), { code: 'EXDEV' }));
          continue;
        }
        if (realDir !== foundAt) {
          // Moved within the root since it was found: still entered once only.
          if (visited.has(realDir)) continue;
          visited.add(realDir);
        }
        // Names as bytes: a name that is not UTF-8 must be seen, not silently mangled.
        raw = (await fs.readdir(realDir)).map(entryOf);
      }
    } catch (error) {
      signal?.throwIfAborted();
      const reason = mediaErrorReason(error);
      if (reason !== null) yield [{ path: dir, size: 0, mtimeMs: 0, error: folderReason(reason), folder: true }];
      else options.onSkip?.(dir, error as NodeJS.ErrnoException);
      continue;
    }
    signal?.throwIfAborted();
    if (raw.length === 0 && relativeDir !== '') options.onEmptyFolder?.(dir);
    raw.sort((a, b) => Buffer.compare(a.name, b.name));
    // The start as path.join would give its entries; every folder after it is named by childPath, already so.
    const base = isStart ? path.normalize(dir) : dir;
    const subdirs: PendingDir[] = [];
    // A candidate's name in the scan, and the real path to stat (never through a link out).
    const candidates: { path: string; real: string; stat?: FileFacts | NodeJS.ErrnoException }[] = [];
    const problems: WalkedFile[] = [];
    for (const entry of raw) {
      const bytes = entry.name;
      const name = bytes.toString('utf8');
      const full = childPath(base, name);
      const relative = relativeDir === '' ? name : `${relativeDir}${path.sep}${name}`;
      if (!Buffer.from(name, 'utf8').equals(bytes)) {
        if (isVideoName(name)) problems.push({ path: full, size: 0, mtimeMs: 0, error: ErrorType.InvalidFileName });
        continue;
      }
      let isDir = entry.kind === EntryKind.Directory;
      let isFile = entry.kind === EntryKind.File;
      // Judged by name before anything else, so an excluded folder costs nothing (a link once resolved, below).
      const excluded = (asFolder: boolean): boolean => options.isExcluded?.(relative, asFolder) ?? false;
      if (entry.kind !== EntryKind.Link && excluded(isDir)) continue;
      let real = childPath(realDir, name);
      if (entry.kind === EntryKind.Link) {
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
      candidates.push({ path: full, real, ...(entry.stat === undefined ? {} : { stat: entry.stat }) });
    }
    // The folders walked next are listed on the walk threads, several ahead
    // and several to a message, while the walk handles what it was given: it
    // seldom waits on them. Each is still listed through its real path,
    // checked against the root right before.
    const prefetchNext = (): void => {
      if (listers.first === null || !options.recursive) return;
      const wanted: PendingDir[] = [];
      let seen = 0;
      let more = false;
      const consider = (next: PendingDir): boolean => {
        if (seen >= LISTINGS_AHEAD) {
          more = true;
          return false;
        }
        seen += 1;
        if (!prefetched.has(next)) wanted.push(next);
        return true;
      };
      let going = true;
      for (let i = 0; going && i < subdirs.length; i += 1) going = consider(subdirs[i] as PendingDir);
      for (let i = stack.length - 1; going && i >= 0; i -= 1) going = consider(stack[i] as PendingDir);
      // Asked once there are enough of them for a message (or no more to come).
      if (wanted.length === 0 || (more && wanted.length < LISTINGS_AHEAD / 2)) return;
      // In one run of folders per thread, each thread's in one message.
      const threads = listers.ahead();
      const share = Math.ceil(wanted.length / threads.length);
      threads.forEach((lister, t) => {
        const part = wanted.slice(t * share, (t + 1) * share);
        if (part.length === 0) return;
        const batch = lister.listMany(
          part.map((next) => next.dir),
          true,
          realRoot,
          exts,
          fs.timeoutMs,
          signal,
        );
        batch.catch(() => undefined);
        part.forEach((next, i) => {
          const listing = batch.then((listings) => {
            const one = listings[i];
            if (one === undefined || one instanceof Error) throw one ?? new Error(`no listing of ${next.dir}`);
            return one;
          });
          listing.catch(() => undefined);
          prefetched.set(next, listing);
        });
      });
    };
    if (candidates.length === 0) prefetchNext();
    if (problems.length > 0) yield problems;
    // Stat a folder's files a round at a time, the signal checked between
    // rounds. lstat of the real path: a file swapped for a link since the
    // listing is not followed. A stat that fails other than by the file's
    // vanishing is the file's reason (fs_timeout, io_error, permission_denied).
    for (let i = 0; i < candidates.length; i += STAT_PARALLELISM) {
      signal?.throwIfAborted();
      const slice = candidates.slice(i, i + STAT_PARALLELISM);
      const round = statRound(slice, fs, listers.first, signal);
      if (i === 0) prefetchNext();
      const answers = await round;
      signal?.throwIfAborted();
      // Told apart by shape, not instanceof: errors from Node's own fs may come from another realm (a VM context).
      const stats = answers.map((answer): FileFacts | string | null => (typeof (answer as FileFacts).isFile === 'function' ? (answer as FileFacts) : mediaErrorReason(answer)));
      const found: WalkedFile[] = [];
      for (let j = 0; j < slice.length; j += 1) {
        const stat = stats[j];
        const file = slice[j] as { path: string; real: string };
        if (stat === null || stat === undefined) continue;
        if (typeof stat === 'string') {
          found.push({ path: file.path, size: 0, mtimeMs: 0, error: stat });
          continue;
        }
        if (stat.isSymbolicLink()) {
          // Swapped for a link since the listing: judged like any link, never stat-ed through.
          const resolved = await resolveInside(realRoot, file.real, fs);
          if (!resolved.ok) {
            if (resolved.reason !== ErrorType.FileVanished) found.push({ path: file.path, size: 0, mtimeMs: 0, error: resolved.reason });
            continue;
          }
          if (resolved.stat.isFile()) found.push({ path: file.path, size: resolved.stat.size, mtimeMs: resolved.stat.mtimeMs });
          continue;
        }
        if (!stat.isFile()) continue;
        found.push({ path: file.path, size: stat.size, mtimeMs: stat.mtimeMs });
      }
      if (found.length > 0) yield found;
    }
    // Push in reverse so the smallest name is walked first.
    for (let i = subdirs.length - 1; i >= 0; i -= 1) stack.push(subdirs[i] as PendingDir);
  }
}

/**
 * An entry of a folder by its listed name: what path.join gives for a name
 * from a listing (never empty, '.', '..' or with a separator) in a folder
 * path already normalised, without path.join's pass over the whole path,
 * which would be a good share of the walk's own time per file.
 */
function childPath(dir: string, name: string): string {
  return dir.endsWith(path.sep) ? dir + name : dir + path.sep + name;
}

/** A folder's real path, containment and listing through the thread pool (`start`: the walk's start, already real). */
async function listThroughPool(dir: string, start: string | null, realRoot: string, fs: MediaFs): Promise<Listing> {
  const real = start ?? (await fs.realpath(dir));
  if (!isInside(realRoot, real)) return { real, outside: true, entries: [] };
  return { real, outside: false, entries: (await fs.readdir(real)).map(entryOf) };
}

/**
 * lstat of a round of files: on the walk thread while it answers; what it
 * left unanswered when found stuck, and every round after, through the
 * thread pool (each file bounded by the deadline there).
 */
async function statRound(
  round: readonly { real: string; stat?: FileFacts | NodeJS.ErrnoException }[],
  fs: MediaFs,
  thread: WalkThread | null,
  signal: AbortSignal | undefined,
): Promise<(FileFacts | NodeJS.ErrnoException)[]> {
  // Those stat-ed with their folder's listing are not asked again.
  const answers = round.map((file) => file.stat);
  const left = round.flatMap((file, i) => (file.stat === undefined ? [i] : []));
  if (left.length === 0) return answers as (FileFacts | NodeJS.ErrnoException)[];
  const files = left.map((i) => (round[i] as { real: string }).real);
  let more: (FileFacts | NodeJS.ErrnoException | undefined)[];
  if (thread?.usable !== true) more = await fs.lstatMany(files);
  else {
    try {
      more = await thread.lstatMany(files, fs.timeoutMs, signal);
    } catch (error) {
      if (!(error instanceof WalkThreadStuck)) throw error;
      more = files.map((_, i) => error.answered[i]);
      const unanswered = files.flatMap((_, i) => (more[i] === undefined ? [i] : []));
      const again = await fs.lstatMany(unanswered.map((i) => files[i] as string));
      unanswered.forEach((index, i) => {
        more[index] = again[i];
      });
    }
  }
  left.forEach((index, i) => {
    answers[index] = more[i];
  });
  return answers as (FileFacts | NodeJS.ErrnoException)[];
}

/** Reasons of a link that cannot be followed, kept as they are; any other is a broken link. */
const LINK_REASONS = new Set<string>([ErrorType.OutsideScanRoot, ErrorType.FsTimeout, ErrorType.IoError]);

/** A folder that refused its listing for want of permission is `unreadable_folder`; other reasons stand. */
function folderReason(reason: string): string {
  return reason === ErrorType.PermissionDenied ? ErrorType.UnreadableFolder : reason;
}
