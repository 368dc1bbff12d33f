/**
 * What the scan's activities share: their dependencies (with defaults), a
 * heartbeat ticker, a cancel that does not wait for stuck files, and a
 * batch's own limit of files in flight.
 */
import { CancelledFailure, Context } from '@temporalio/activity';
import pLimit from 'p-limit';
import type { Library } from '../library/library';
import type { FileProber } from '../probe/contained';
import type { Thumbnailer } from '../thumbnails/thumbnailer';
import { createMediaFs, DEFAULT_FS_CALL_TIMEOUT_MS, type MediaFs } from '../filesystem/media-fs';

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
   * Admission under MAX_CONCURRENT_SCANS (src/scans/admission.ts), for
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

/** The dependencies as the activities use them: defaults applied, and what they share. */
export interface ActivityContext {
  library: Library;
  prober: FileProber;
  scanRoots: readonly string[] | undefined;
  thumbnailer: Thumbnailer | undefined;
  /** THUMBNAIL_CONCURRENCY's slots (times the thumbnailer's inFlightPerSlot), shared by every batch on this worker. */
  thumbnailSlots: pLimit.Limit;
  admission: ActivityDependencies['admission'];
  scanRootMarker: string | undefined;
  thumbnailsByDefault: boolean;
  /**
   * An activity's calls on media paths: each bounded by FS_CALL_TIMEOUT, a
   * few in flight at once (so a hung share holds a few pool threads, not
   * all), and all of them dropped at once on cancel.
   */
  mediaCalls: (signal: AbortSignal) => MediaFs;
}

/** The dependencies with their defaults applied, and the slots and media calls every activity shares. */
export function activityContext({
  library,
  prober,
  scanRoots,
  thumbnailer,
  thumbnailConcurrency = 1,
  fsCallTimeoutMs = DEFAULT_FS_CALL_TIMEOUT_MS,
  scanRootMarker,
  thumbnailsByDefault = true,
  admission,
}: ActivityDependencies): ActivityContext {
  return {
    library,
    prober,
    scanRoots,
    thumbnailer,
    // The hosts keep THUMBNAIL_CONCURRENCY themselves and hold as many more waiting (inFlightPerSlot).
    thumbnailSlots: pLimit(thumbnailConcurrency * (thumbnailer?.inFlightPerSlot ?? 1)),
    admission,
    scanRootMarker,
    thumbnailsByDefault,
    mediaCalls: (signal) => createMediaFs({ timeoutMs: fsCallTimeoutMs, signal }),
  };
}

/**
 * The most a heartbeat waits in the worker before it goes to the server (the
 * worker's heartbeat throttle): activities hear of a cancel only in a
 * heartbeat's answer, so this bounds how long a cancel or a pause takes to
 * reach a batch. A batch lasts seconds (SCAN_BATCH_SIZE files), so it always
 * has to hear.
 */
export const HEARTBEAT_THROTTLE_MS = 500;

/**
 * Activities hear about cancellation only through heartbeats, so every
 * activity heartbeats while it works, whatever it is waiting on (a slow file,
 * a full prober, the database): by default twice per throttle interval, so
 * that one is always waiting when the worker sends the next, however the
 * timer drifts.
 */
export function startHeartbeatTicker(details: () => unknown, everyMs = HEARTBEAT_THROTTLE_MS / 2): () => void {
  const ctx = Context.current();
  // A local activity (a completed scan's finish) has no heartbeat: the worker keeps its workflow task alive instead.
  if (ctx.info.isLocal) return () => undefined;
  const timer = setInterval(() => ctx.heartbeat(details()), everyMs);
  return () => clearInterval(timer);
}

/**
 * Waits for a batch's files, or for its cancel, whichever comes first: a
 * file stuck in a call that will not return (a share that stopped
 * answering) must not hold a cancel, which lands within 2 s. What is still
 * in flight is stopped by the same signal and recorded by no one.
 */
export async function settledOrCancelled<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
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
export function batchLimit(limit: number | undefined): <T>(run: () => Promise<T>) => Promise<T> {
  if (limit === undefined) return (run) => run();
  const slots = pLimit(limit);
  return (run) => slots(run);
}
