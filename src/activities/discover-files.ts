/**
 * Discovery, the scan's first phase: the walk (or a retry's earlier files),
 * every file recorded in the library, the ones to probe picked out, and the
 * known videos the walk did not find settled (settle-vanished.ts).
 */
import path from 'node:path';
import { CancelledFailure, Context } from '@temporalio/activity';
import type { Library } from '../library/library';
import type { NewScanFile } from '../library/types';
import { KnownFiles } from '../library/known-files';
import { DEFAULT_SCAN_EXCLUDE, ErrorType, VIDEO_EXTENSIONS, type DiscoverInput, type DiscoverResult } from '../model/types';
import { mediaErrorReason, type MediaFs } from '../filesystem/media-fs';
import { checkScanRoot, resolveInside, rootOffline } from '../filesystem/containment';
import { createExcludeMatcher, walkVideoFileBatches, type WalkedFile } from '../filesystem/walk';
import { settleVanished } from './settle-vanished';
import { startHeartbeatTicker, type ActivityContext } from './shared';

/** Files judged per round during discovery (rows written in one insert): large enough to be cheap, small enough to heartbeat often. */
const DISCOVERY_CHUNK = 1000;

/** How often discovery updates its count of unchanged files without a row while it walks: what the job's discovered count shows meanwhile. */
const UNRECORDED_COUNT_EVERY_MS = 500;

/** The discoverFiles activity, around its dependencies. */
export function createDiscoverFiles({ library, scanRoots, mediaCalls, scanRootMarker, thumbnailsByDefault }: ActivityContext) {
  /**
   * With SCAN_ROOT_MARKER set, a root without that file is offline (a share
   * not mounted shows the empty folder under it): the scan fails
   * `root_offline` before anything is marked missing.
   */
  const checkRootOnline = async (realRoot: string, media: MediaFs): Promise<void> => {
    if (scanRootMarker === undefined) return;
    const marker = path.join(realRoot, scanRootMarker);
    try {
      await media.lstat(marker);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR' || mediaErrorReason(error) !== null) {
        throw await rootOffline(`${realRoot} has no ${scanRootMarker} file (SCAN_ROOT_MARKER), or it did not answer`);
      }
      throw error;
    }
  };

  /**
   * Walks the root (or, for a retry, takes the files the earlier scan failed
   * or never reached), records the files in the library with their
   * positions, and decides which need ffprobe: unchanged files (same size
   * and mtime as the library's record) are skipped unless `force` is set,
   * and only counted, without a row each, unless their video still needs a
   * picture; a file modified
   * within SCAN_SETTLE_SECONDS is left for the next scan (`still_changing`).
   * Excluded paths are never entered. A full scan (not a retry) then settles
   * the known videos it did not find: a record whose file turns up at a new
   * path (same size and fingerprint) moves there, the rest are marked
   * missing (see settleVanished).
   */
  async function discoverFiles(input: DiscoverInput): Promise<DiscoverResult> {
    const ctx = Context.current();
    let discovered = 0;
    let toProbe = 0;
    let skipped = 0;
    let failed = 0;
    let moved = 0;
    let missing = 0;
    /** Unchanged files whose video has no picture yet (numberPicturelessFiles). */
    let pictureless = 0;
    /** Video files found that can be probed: none at all means the root as a whole looks gone. */
    let found = 0;
    /** Folders whose files the walk could not see (unreadable, vanished, led out): nothing under them is missing. */
    const unseen: string[] = [];
    /** Folders below the root that hold nothing at all: unmounted mount points, as far as the walk can tell. */
    const emptyFolders: string[] = [];
    const settleMs = (input.settleSeconds ?? 0) * 1000;
    const isExcluded = createExcludeMatcher(input.exclude ?? DEFAULT_SCAN_EXCLUDE);
    // From the start: the library calls below may retry a busy database for longer than the heartbeat timeout.
    const stopTicker = startHeartbeatTicker(() => ({ discovered }));
    const pending: WalkedFile[] = [];
    const makesPictures = input.thumbnails ?? thumbnailsByDefault;
    /**
     * The present videos under the root, as the library knew them when the
     * walk began (a full scan only: a retry sees only some files). Each file
     * the walk finds is taken out; what is left at the end, the walk did not
     * find (settleVanished).
     */
    let known = new KnownFiles(input.root);
    /** Unchanged files counted without a row of their own: the scan's row keeps the count (recordUnrecordedSkips). */
    let unrecorded = 0;
    let unrecordedWritten = 0;
    let unrecordedWrittenAt = 0;
    /** Unchanged files recorded as `skipped` rows because their video still needs a picture (numberPicturelessFiles numbers them). */
    let picturelessRows = 0;

    const flush = async (last: boolean): Promise<void> => {
      const rows: NewScanFile[] = [];
      for (const file of pending) {
        const position = discovered;
        discovered += 1;
        const record = known.take(file.path);
        if (file.error !== undefined) {
          if (file.folder === true || file.error === ErrorType.UnreadableFolder) unseen.push(file.path);
          failed += 1;
          rows.push({ position, probeIndex: null, path: file.path, size: file.size, mtimeMs: file.mtimeMs, status: 'failed', error: file.error });
          continue;
        }
        found += 1;
        const unchanged = !input.force && record !== undefined && record.size === file.size && record.mtimeMs === file.mtimeMs;
        if (unchanged) {
          skipped += 1;
          // A row only where the picture phase needs one: the rest are counted (a rescan of an unchanged library writes no row per file).
          if (makesPictures && record.pictureless) {
            picturelessRows += 1;
            rows.push({ position, probeIndex: null, path: file.path, size: file.size, mtimeMs: file.mtimeMs, status: 'skipped' });
          } else {
            unrecorded += 1;
          }
          continue;
        }
        if (settleMs > 0 && Date.now() - file.mtimeMs < settleMs) {
          // Modified moments ago: likely a copy still under way. The next scan takes it.
          failed += 1;
          rows.push({ position, probeIndex: null, path: file.path, size: file.size, mtimeMs: file.mtimeMs, status: 'failed', error: ErrorType.StillChanging });
          continue;
        }
        toProbe += 1;
        rows.push({ position, probeIndex: toProbe - 1, path: file.path, size: file.size, mtimeMs: file.mtimeMs, status: 'pending' });
      }
      pending.length = 0;
      if (rows.length > 0) await library.addScanFiles(input.scanId, rows);
      // The count of unrecorded skips shows in the job's discovered count while discovery runs: kept current every so often, and exact at the end.
      if (unrecorded !== unrecordedWritten && (last || Date.now() - unrecordedWrittenAt >= UNRECORDED_COUNT_EVERY_MS)) {
        await library.recordUnrecordedSkips(input.scanId, unrecorded);
        unrecordedWritten = unrecorded;
        unrecordedWrittenAt = Date.now();
      }
      ctx.heartbeat({ discovered });
    };

    const signal = ctx.cancellationSignal;
    const media = mediaCalls(signal);
    try {
      const realRoot = await checkScanRoot(input.root, scanRoots, media);
      await checkRootOnline(realRoot, media);
      await library.createScan({
        scanId: input.scanId,
        root: input.root,
        recursive: input.recursive,
        force: input.force,
        retryOf: input.retryOf,
      });
      // A retried attempt starts over: the walk is cheap next to probing, and a
      // clean slate keeps probe indexes consistent if the library changed since.
      await library.resetScanFiles(input.scanId);
      if (input.retryOf === null) known = await library.knownFilesUnder(input.root, input.recursive);
      // The walk takes the cancellation signal itself: a tree of many folders
      // and few videos yields rarely, and a cancel must not wait for a yield.
      const walk = (from: string): AsyncGenerator<WalkedFile[]> =>
        walkVideoFileBatches({
          root: input.root,
          from,
          recursive: input.recursive,
          extensions: new Set(input.extensions.length > 0 ? input.extensions : VIDEO_EXTENSIONS),
          signal,
          fs: media,
          isExcluded,
          onEmptyFolder: (dir) => emptyFolders.push(dir),
          onSkip: (dir, error) => {
            unseen.push(dir);
            ctx.log.warn('folder passed over during the walk', { dir, code: error.code });
          },
        });
      const files = input.retryOf === null ? walk(input.root) : filesOfEarlierScan(library, input.retryOf, realRoot, walk, signal, media);
      for await (const batch of files) {
        if (signal.aborted) throw new CancelledFailure('discovery cancelled');
        for (const file of batch) pending.push(file);
        if (pending.length >= DISCOVERY_CHUNK) await flush(false);
      }
      await flush(true);
      if (input.retryOf === null) {
        // A retry sees only some files: only a full walk knows what is gone.
        const vanished = [...known.keys()];
        known.clear();
        const settled = await settleVanished(library, { input, realRoot, vanished, found, unseen, emptyFolders, isExcluded, nextPosition: discovered, signal, media });
        moved = settled.moved;
        missing = settled.missing;
        toProbe -= settled.moved;
        for (const warning of settled.warnings) {
          // Shown in the job's result errors (and counted as failed), so a user sees why nothing was marked.
          await library.addScanFiles(input.scanId, [
            { position: discovered, probeIndex: null, path: warning.path, size: 0, mtimeMs: 0, status: 'failed', error: warning.error },
          ]);
          discovered += 1;
          failed += 1;
        }
      }
      // Unchanged videos still without a picture follow the probed files in the picture phase.
      if (makesPictures && picturelessRows > 0) pictureless = await library.numberPicturelessFiles(input.scanId, toProbe);
    } catch (error) {
      // The walk throws the signal's reason; Temporal reports a cancelled
      // activity only when it ends with a CancelledFailure.
      if (signal.aborted && !(error instanceof CancelledFailure)) throw new CancelledFailure('discovery cancelled');
      throw error;
    } finally {
      stopTicker();
    }
    // No picture phase at all when this scan makes no pictures (the request's thumbnails: false, or THUMBNAILS=off).
    const toThumbnail = makesPictures ? toProbe + pictureless : 0;
    return { discovered, toProbe, toThumbnail, skipped, failed, moved, missing };
  }

  return discoverFiles;
}

/**
 * The files an earlier scan failed on or never reached, with their current
 * size and mtime; a folder it could not read is walked now. Each path is
 * resolved again and must still lie inside this scan's root: a link the
 * earlier scan recorded as `outside_scan_root` stays recorded so, never
 * followed, whether it leads to a file or to a folder.
 */
async function* filesOfEarlierScan(
  library: Library,
  scanId: string,
  realRoot: string,
  walk: (from: string) => AsyncGenerator<WalkedFile[]>,
  signal: AbortSignal,
  media: MediaFs,
): AsyncGenerator<WalkedFile[]> {
  for (const file of await library.unfinishedFiles(scanId)) {
    signal.throwIfAborted();
    const resolved = await resolveInside(realRoot, file, media);
    if (!resolved.ok) {
      // A file gone since is still listed: probing records it as vanished.
      if (resolved.reason === ErrorType.FileVanished) yield [{ path: file, size: 0, mtimeMs: 0 }];
      else yield [{ path: file, size: 0, mtimeMs: 0, error: resolved.reason }];
      continue;
    }
    if (resolved.stat.isDirectory()) yield* walk(file);
    else if (!resolved.stat.isFile()) yield [{ path: file, size: 0, mtimeMs: 0, error: ErrorType.NotARegularFile }];
    else yield [{ path: file, size: resolved.stat.size, mtimeMs: resolved.stat.mtimeMs }];
  }
}
