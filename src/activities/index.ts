/**
 * The scan's activities: discovery, probing, the final summary. Everything
 * that touches the file system, ffprobe or the database happens here.
 */
import { setMaxListeners } from 'node:events';
import path from 'node:path';
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import pLimit from 'p-limit';
import type { Library } from '../library/library';
import type { NewScanFile, VanishedVideo } from '../library/types';
import type { FileProber } from '../probe/contained';
import {
  DEFAULT_SCAN_EXCLUDE,
  ErrorType,
  VIDEO_EXTENSIONS,
  type DiscoverInput,
  type DiscoverResult,
  type FinishScanInput,
  type FinishScanResult,
  type ProbeBatchCheckpoint,
  type ProbeBatchInput,
  type ProbeBatchResult,
  type AwaitScanSlotInput,
  type ThumbnailBatchInput,
  type ThumbnailBatchResult,
} from '../scan/types';
import { isInterruption } from '../scan/interruption';
import { ThumbnailError, type ThumbnailResult, type Thumbnailer } from '../thumbnails/thumbnailer';
import { createMediaFs, DEFAULT_FS_CALL_TIMEOUT_MS, mediaErrorReason, type MediaFs } from '../filesystem/media-fs';
import { checkScanRoot, resolveInside, rootOffline } from './containment';
import { createExcludeMatcher, walkVideoFiles, type WalkedFile } from './discover';
import { createProbeRecorder } from './probe-recorder';
import { scanMetrics } from '../metrics';

export interface ActivityDependencies {
  library: Library;
  /** Probes each file in a probe host, checked inside the scan's root there (probe/contained.ts). */
  prober: FileProber;
  /**
   * The worker's own SCAN_ROOTS (undefined: any directory). Checked by the
   * activities themselves on every scan, whoever started it: a workflow can be
   * started through Temporal without the API.
   */
  scanRoots: readonly string[] | undefined;
  /** Makes the videos' pictures; a worker without one fails thumbnail batches (and they retry elsewhere). */
  thumbnailer?: Thumbnailer;
  /** Pictures made at once on this worker (THUMBNAIL_CONCURRENCY). */
  thumbnailConcurrency?: number;
  /**
   * Admission under MAX_CONCURRENT_SCANS (src/temporal/admission.ts), for
   * scheduled runs; without it a scheduled run is admitted at once.
   */
  admission?: { reserve(guardId: string): Promise<() => void>; releaseEndedGuard(guardId: string): Promise<boolean> };
  /** FS_CALL_TIMEOUT: the deadline of every filesystem call on a media path (media-fs.ts); 30 s when absent. */
  fsCallTimeoutMs?: number;
  /** SCAN_ROOT_MARKER: a file name that must exist in a root for it to count as online; unset: no such check. */
  scanRootMarker?: string;
  /** THUMBNAILS: whether a scan whose request does not say makes pictures; true when absent. */
  thumbnailsByDefault?: boolean;
}

/** How often a scheduled run that waits for a slot asks again. */
const SLOT_RETRY_MS = 1000;

/** Why a picture could not be made, in a line: the error's code and message. */
function pictureErrorText(error: unknown): string {
  const e = (typeof error === 'object' && error !== null ? error : {}) as { code?: unknown; message?: unknown };
  const message = typeof e.message === 'string' ? e.message : String(error);
  return (typeof e.code === 'string' && !message.includes(e.code) ? `${e.code}: ${message}` : message).slice(0, 300);
}

/** Rows written to the library per insert during discovery: large enough to be cheap, small enough to heartbeat often. */
const DISCOVERY_CHUNK = 1000;

/**
 * Activities hear about cancellation only through heartbeats, so every
 * activity heartbeats at least once a second while it works, whatever it is
 * waiting on (a slow file, a full prober, the database).
 */
function startHeartbeatTicker(details: () => unknown, everyMs = 1000): () => void {
  const ctx = Context.current();
  const timer = setInterval(() => ctx.heartbeat(details()), everyMs);
  return () => clearInterval(timer);
}

/**
 * Waits for a batch's files, or for its cancel, whichever comes first: a
 * file stuck in a call that will not return (a share that stopped
 * answering) must not hold a cancel, which lands within 2 s. What is still
 * in flight is stopped by the same signal and recorded by no one.
 */
async function settledOrCancelled<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) throw new CancelledFailure('batch cancelled');
  let onAbort: () => void = () => undefined;
  const cancelled = new Promise<never>((_resolve, reject) => {
    onAbort = () => reject(new CancelledFailure('batch cancelled'));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([work, cancelled]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/** A batch's own limit of files in flight (max_parallel_files); none when unset. */
function batchLimit(limit: number | undefined): <T>(run: () => Promise<T>) => Promise<T> {
  if (limit === undefined) return (run) => run();
  const slots = pLimit(limit);
  return (run) => slots(run);
}

/** Builds the activities around their dependencies. */
export function createActivities({
  library,
  prober,
  scanRoots,
  thumbnailer,
  thumbnailConcurrency = 1,
  fsCallTimeoutMs = DEFAULT_FS_CALL_TIMEOUT_MS,
  scanRootMarker,
  thumbnailsByDefault = true,
  admission,
}: ActivityDependencies) {
  const thumbnailSlots = pLimit(thumbnailConcurrency);
  /**
   * An activity's calls on media paths: each bounded by FS_CALL_TIMEOUT, a
   * few in flight at once (so a hung share holds a few pool threads, not
   * all), and all of them dropped at once on cancel.
   */
  const mediaCalls = (signal: AbortSignal): MediaFs => createMediaFs({ timeoutMs: fsCallTimeoutMs, signal });

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
   * or never reached), records every file in the library with its position,
   * and decides which need ffprobe: unchanged files (same size and mtime as
   * the library's record) are skipped unless `force` is set; a file modified
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

    const flush = async (): Promise<void> => {
      if (pending.length === 0) return;
      const known = input.force || input.retryOf !== null ? new Map() : await library.knownFiles(pending.map((f) => f.path));
      const rows: NewScanFile[] = pending.map((file) => {
        const position = discovered;
        discovered += 1;
        if (file.error !== undefined) {
          if (file.folder === true || file.error === ErrorType.UnreadableFolder) unseen.push(file.path);
          failed += 1;
          return { position, probeIndex: null, path: file.path, size: file.size, mtimeMs: file.mtimeMs, status: 'failed', error: file.error };
        }
        const record = known.get(file.path);
        const unchanged = record !== undefined && record.size === file.size && record.mtimeMs === file.mtimeMs;
        found += 1;
        if (unchanged) {
          skipped += 1;
          return { position, probeIndex: null, path: file.path, size: file.size, mtimeMs: file.mtimeMs, status: 'skipped' };
        }
        if (settleMs > 0 && Date.now() - file.mtimeMs < settleMs) {
          // Modified moments ago: likely a copy still under way. The next scan takes it.
          failed += 1;
          return { position, probeIndex: null, path: file.path, size: file.size, mtimeMs: file.mtimeMs, status: 'failed', error: ErrorType.StillChanging };
        }
        toProbe += 1;
        return { position, probeIndex: toProbe - 1, path: file.path, size: file.size, mtimeMs: file.mtimeMs, status: 'pending' };
      });
      pending.length = 0;
      await library.addScanFiles(input.scanId, rows);
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
      // The walk takes the cancellation signal itself: a tree of many folders
      // and few videos yields rarely, and a cancel must not wait for a yield.
      const walk = (from: string): AsyncGenerator<WalkedFile> =>
        walkVideoFiles({
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
      for await (const file of files) {
        if (signal.aborted) throw new CancelledFailure('discovery cancelled');
        pending.push(file);
        if (pending.length >= DISCOVERY_CHUNK) await flush();
      }
      await flush();
      if (input.retryOf === null) {
        // A retry sees only some files: only a full walk knows what is gone.
        const settled = await settleVanished({ input, realRoot, found, unseen, emptyFolders, isExcluded, nextPosition: discovered, signal, media });
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
      if (input.thumbnails ?? thumbnailsByDefault) pictureless = await library.numberPicturelessFiles(input.scanId, toProbe);
    } catch (error) {
      // The walk throws the signal's reason; Temporal reports a cancelled
      // activity only when it ends with a CancelledFailure.
      if (signal.aborted && !(error instanceof CancelledFailure)) throw new CancelledFailure('discovery cancelled');
      throw error;
    } finally {
      stopTicker();
    }
    // No picture phase at all when this scan makes no pictures (the request's thumbnails: false, or THUMBNAILS=off).
    const toThumbnail = (input.thumbnails ?? thumbnailsByDefault) ? toProbe + pictureless : 0;
    return { discovered, toProbe, toThumbnail, skipped, failed, moved, missing };
  }

  /** What settleVanished needs: the scan, what its walk saw and could not see. */
  interface SettleOptions {
    input: DiscoverInput;
    realRoot: string;
    found: number;
    unseen: string[];
    emptyFolders: string[];
    isExcluded: (relativePath: string, isDirectory: boolean) => boolean;
    nextPosition: number;
    signal: AbortSignal;
    media: MediaFs;
  }

  /**
   * Settles the present videos under the root whose files the walk did not
   * find. Left alone: those of a non-recursive scan's subfolders, those under
   * a folder the walk could not see or that the scan excludes, those under
   * a folder below the root that is empty now (a share mounted there and not
   * any more looks just so), and all of them when the walk found no video
   * file at all (an unmounted disk or a dropped share looks like an empty
   * folder). A warning per such case says so instead.
   * A vanished record whose size and fingerprint match a new file of this
   * scan moves to it (fingerprints of new files are taken only for sizes a
   * vanished record has); the rest are marked missing, never deleted.
   */
  async function settleVanished(o: SettleOptions): Promise<{ moved: number; missing: number; warnings: { path: string; error: string }[] }> {
    const { input } = o;
    const under = (file: string, dir: string): boolean => file === dir || file.startsWith(dir.endsWith(path.sep) ? dir : dir + path.sep);
    const underUnseen = (file: string): boolean => o.unseen.some((dir) => under(file, dir));
    const isExcludedPath = (file: string): boolean => {
      const parts = path.relative(input.root, file).split(path.sep);
      for (let i = 1; i < parts.length; i += 1) if (o.isExcluded(parts.slice(0, i).join(path.sep), true)) return true;
      return o.isExcluded(parts.join(path.sep), false);
    };
    const candidates = (await library.vanishedVideos(input.scanId, input.root)).filter(
      (video) => (input.recursive || path.dirname(video.path) === input.root) && !underUnseen(video.path) && !isExcludedPath(video.path),
    );
    const warnings: { path: string; error: string }[] = [];
    if (candidates.length === 0) return { moved: 0, missing: 0, warnings };
    if (o.found === 0) {
      warnings.push({
        path: input.root,
        error: `${ErrorType.MissingCheckSkipped}: no video file was found under the root, where the library knows ${candidates.length}; nothing was marked missing (is the disk or share mounted?)`,
      });
      return { moved: 0, missing: 0, warnings };
    }
    // A record under a folder that is empty now may still have moved (its file
    // found again elsewhere in this scan, as after a rename that emptied the
    // folder); only what stays unmatched there is held back from missing.
    let moved = 0;
    const unmatched = new Set<VanishedVideo>(candidates);
    const sizes = candidates.filter((video) => video.fingerprint !== null).map((video) => video.size);
    if (sizes.length > 0) {
      for (const candidate of await library.moveCandidates(input.scanId, sizes)) {
        o.signal.throwIfAborted();
        const resolved = await resolveInside(o.realRoot, candidate.path, o.media);
        if (!resolved.ok || !resolved.stat.isFile() || resolved.stat.size !== candidate.size) continue;
        const taken = await o.media.fingerprint(resolved.real).catch(() => null);
        o.signal.throwIfAborted();
        if (taken === null || taken.size !== candidate.size) continue;
        // Copies of one file match each other: prefer the record of the same name (a renamed folder keeps its names).
        const matches = [...unmatched].filter((video) => video.size === candidate.size && video.fingerprint === taken.fingerprint);
        const match = matches.find((video) => path.basename(video.path) === path.basename(candidate.path)) ?? matches[0];
        if (match === undefined) continue;
        if (await library.recordMove(input.scanId, candidate, match)) {
          unmatched.delete(match);
          moved += 1;
        }
      }
      if (moved > 0) await library.renumberProbeIndexes(input.scanId);
    }
    const inEmptyFolder = (video: VanishedVideo): boolean => o.emptyFolders.some((dir) => under(video.path, dir));
    for (const dir of o.emptyFolders) {
      const held = [...unmatched].filter((video) => under(video.path, dir)).length;
      if (held === 0) continue;
      warnings.push({
        path: dir,
        error: `${ErrorType.MissingCheckSkipped}: this folder is empty, where the library knows ${held} videos under it; none was marked missing (is a share mounted here?)`,
      });
    }
    const missing = await library.markMissing(input.scanId, [...unmatched].filter((video) => !inEmptyFolder(video)), o.nextPosition);
    return { moved, missing, warnings };
  }

  /**
   * Probes the files at probe indexes [fromIndex, toIndex) with the prober
   * and records each result (see createProbeRecorder). Heartbeats every
   * second with the indexes done, and a retried attempt also skips every file
   * the library has recorded, so it resumes where the last one stopped.
   */
  async function probeBatch(input: ProbeBatchInput): Promise<ProbeBatchResult> {
    const ctx = Context.current();
    const checkpoint = ctx.info.heartbeatDetails as ProbeBatchCheckpoint | undefined;
    const done = new Set<number>(checkpoint?.done ?? []);
    // From the start: the library calls below may retry a busy database for longer than the heartbeat timeout.
    // Twice a second: the worker sends one heartbeat a second at most
    // (maxHeartbeatThrottleInterval), and one always waiting keeps that pace
    // however the timer drifts, so a cancel is heard within about a second.
    const stopTicker = startHeartbeatTicker(() => ({ done: [...done] }), 500);
    const signal = ctx.cancellationSignal;
    try {
      // The root is checked again here, not trusted from discovery: every path
      // this batch probes must lie inside it, whatever route recorded the path.
      const scan = await library.getScan(input.scanId);
      if (scan === undefined) throw ApplicationFailure.nonRetryable(`scan ${input.scanId} has no record: discovery never ran`, ErrorType.InvalidScanRoot);
      const realRoot = await checkScanRoot(scan.root, scanRoots, mediaCalls(signal));
      const files = await library.getProbeFiles(input.scanId, input.fromIndex, input.toIndex);
      // The heartbeat checkpoint is throttled (at most one a second reaches the
      // server); the library knows exactly which files were recorded, so a retry
      // after a crash re-probes only the files whose ffprobe was in flight.
      for (const file of files) if (file.status !== 'pending') done.add(file.probeIndex as number);
      // Every file of the batch listens on the one signal: that is by design, not a leak.
      setMaxListeners(files.length + 10, signal);
      const record = createProbeRecorder(async (records) => library.recordProbes(input.scanId, records));

      // max_parallel_files, this batch's share of it: on top of the worker's own limit.
      const batchSlots = batchLimit(input.maxParallelFiles);
      const probeOne = async (file: (typeof files)[number]): Promise<void> => {
        // The prober's limit (PROBE_CONCURRENCY) bounds the files in flight; the
        // host checks each one inside the root when its turn comes, right before
        // and after the probe.
        const { outcome, probeSeconds } = await batchSlots(() => prober.probeFile({
          file: file.path,
          realRoot,
          discovered: { size: file.size, mtimeMs: file.mtimeMs },
          timeoutMs: input.probeTimeoutMs,
          signal,
        }));
        if (signal.aborted) return;
        if (probeSeconds !== null) scanMetrics.probeSeconds.observe(probeSeconds);
        const status = await record({ position: file.position, outcome });
        scanMetrics.filesProbed.inc({ outcome: status });
        if (outcome.kind === 'failed') scanMetrics.probeFailures.inc({ reason: outcome.reason.split(':')[0] ?? 'unknown' });
        // No heartbeat per file: the ticker sends the indexes done every second,
        // and the SDK forwards at most one heartbeat per throttle interval to
        // the server anyway; a retry reads what was recorded from the library.
        // Encoding a heartbeat per file was worker CPU for nothing.
        done.add(file.probeIndex as number);
      };

      // Every file of the batch is started at once; the worker-wide probe
      // slots are what bound the number of files being probed.
      const results = await settledOrCancelled(Promise.allSettled(files.filter((f) => !done.has(f.probeIndex as number)).map(probeOne)), signal);
      if (signal.aborted) throw new CancelledFailure('probe batch cancelled');
      const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (rejected !== undefined) throw rejected.reason;
      return await library.batchSummary(input.scanId, input.fromIndex, input.toIndex);
    } finally {
      stopTicker();
    }
  }

  /**
   * Makes the pictures of the videos a scan probed new or changed at probe
   * indexes [fromIndex, toIndex). Like probeBatch it heartbeats the indexes
   * done, and the library knows which pictures are made or failed, so a retry
   * after a crash redoes only the pictures that were in flight. Each path is
   * checked inside the scan's root right before its picture is made (in a
   * slot), and the checked real path is what ffmpeg opens. A picture that
   * fails is recorded with its reason; the video stays in the library.
   */
  async function makeThumbnails(input: ThumbnailBatchInput): Promise<ThumbnailBatchResult> {
    const ctx = Context.current();
    const checkpoint = ctx.info.heartbeatDetails as ProbeBatchCheckpoint | undefined;
    const done = new Set<number>(checkpoint?.done ?? []);
    const stopTicker = startHeartbeatTicker(() => ({ done: [...done] }));
    const signal = ctx.cancellationSignal;
    let made = 0;
    let failed = 0;
    try {
      if (thumbnailer === undefined) throw new Error('this worker has no thumbnailer');
      const scan = await library.getScan(input.scanId);
      if (scan === undefined) throw ApplicationFailure.nonRetryable(`scan ${input.scanId} has no record: discovery never ran`, ErrorType.InvalidScanRoot);
      const media = mediaCalls(signal);
      const realRoot = await checkScanRoot(scan.root, scanRoots, media);
      const targets = await library.thumbnailTargets(input.scanId, input.fromIndex, input.toIndex);
      for (const target of targets) if (target.done) done.add(target.probeIndex);
      setMaxListeners(targets.length + 10, signal);

      const batchSlots = batchLimit(input.maxParallelFiles);
      const makeOne = async (target: (typeof targets)[number]): Promise<void> => {
        const result = await batchSlots(() => thumbnailSlots(async (): Promise<ThumbnailResult> => {
          signal.throwIfAborted();
          const contained = await resolveInside(realRoot, target.path, media);
          if (!contained.ok) return { ok: false, reason: contained.reason };
          if (!contained.stat.isFile()) return { ok: false, reason: ErrorType.NotARegularFile };
          try {
            return await thumbnailer.make({
              file: contained.real,
              videoId: target.videoId,
              durationSeconds: target.durationSeconds,
              timeoutMs: input.timeoutMs,
              signal,
            });
          } catch (error) {
            // A stop (cancel, shutdown, a lost host) leaves the picture to be made again;
            // anything else (THUMBNAIL_DIR not writable, a disk full) is this video's
            // picture failure, never the scan's: its metadata is recorded already.
            if (signal.aborted || isInterruption(error)) throw error;
            return { ok: false, reason: `${ThumbnailError.Failed}: ${pictureErrorText(error)}` };
          }
        }));
        if (signal.aborted) return;
        const kept = await library.recordThumbnail(target.videoId, target.path, result);
        // Deleted (or moved) while its picture was being made: nothing would ever remove this one.
        if (!kept && result.ok) await thumbnailer.remove(target.videoId);
        if (result.ok) made += 1;
        else failed += 1;
        done.add(target.probeIndex);
        ctx.heartbeat({ done: [...done] } satisfies ProbeBatchCheckpoint);
      };

      const results = await settledOrCancelled(Promise.allSettled(targets.filter((t) => !done.has(t.probeIndex)).map(makeOne)), signal);
      if (signal.aborted) throw new CancelledFailure('thumbnail batch cancelled');
      const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (rejected !== undefined) throw rejected.reason;
      return { made, failed };
    } finally {
      stopTicker();
    }
  }

  /** Writes the scan's end to the library and returns its counts, recomputed from the per-file records. */
  async function finishScan(input: FinishScanInput): Promise<FinishScanResult> {
    // The library retries a busy database for up to 30 s, longer than the
    // 10 s heartbeat timeout: without heartbeats a slow finish would be taken
    // for a dead worker and run again.
    const stopTicker = startHeartbeatTicker(() => ({ finishing: input.scanId }));
    try {
      const { counts, errors } = await library.scanTotals(input.scanId);
      await library.finishScan(input.scanId, { outcome: input.outcome, counts, error: input.error });
      scanMetrics.scans.inc({ outcome: input.outcome });
      return { counts, errors };
    } finally {
      stopTicker();
    }
  }

  /**
   * Waits until a scheduled run may start its root's guard: while every slot
   * of MAX_CONCURRENT_SCANS is taken, asks again every second (heartbeating,
   * so a cancel of the run ends the wait). The place it takes is reserved
   * for the moments until the guard is visible, as a start through the API's is.
   * With `once`, asks a single time and answers whether it took a place.
   */
  async function awaitScanSlot(input: AwaitScanSlotInput): Promise<boolean> {
    if (admission === undefined) return true;
    const ctx = Context.current();
    for (;;) {
      try {
        await admission.reserve(input.guardId);
        return true;
      } catch (error) {
        if ((error as { code?: unknown }).code !== 'TOO_MANY_SCANS') throw error;
      }
      if (input.once === true) return false;
      ctx.heartbeat();
      await ctx.sleep(SLOT_RETRY_MS);
    }
  }

  /**
   * Frees a root whose guard is closing (its scan has just ended; closing
   * takes a worker): a scheduled run that found it so starts its scan then,
   * instead of nothing. True when the root is free.
   */
  async function releaseClosingGuard(input: AwaitScanSlotInput): Promise<boolean> {
    if (admission === undefined) return false;
    return admission.releaseEndedGuard(input.guardId);
  }

  return { discoverFiles, probeBatch, makeThumbnails, finishScan, awaitScanSlot, releaseClosingGuard };
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
  walk: (from: string) => AsyncGenerator<WalkedFile>,
  signal: AbortSignal,
  media: MediaFs,
): AsyncGenerator<WalkedFile> {
  for (const file of await library.unfinishedFiles(scanId)) {
    signal.throwIfAborted();
    const resolved = await resolveInside(realRoot, file, media);
    if (!resolved.ok) {
      // A file gone since is still listed: probing records it as vanished.
      if (resolved.reason === ErrorType.FileVanished) yield { path: file, size: 0, mtimeMs: 0 };
      else yield { path: file, size: 0, mtimeMs: 0, error: resolved.reason };
      continue;
    }
    if (resolved.stat.isDirectory()) yield* walk(file);
    else if (!resolved.stat.isFile()) yield { path: file, size: 0, mtimeMs: 0, error: ErrorType.NotARegularFile };
    else yield { path: file, size: resolved.stat.size, mtimeMs: resolved.stat.mtimeMs };
  }
}
