/**
 * Pictures, the scan's third phase: a batch of the videos it probed new or
 * changed (and unchanged ones still without one) given their pictures.
 */
import { setMaxListeners } from 'node:events';
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import { ErrorType, type ProbeBatchCheckpoint, type ThumbnailBatchInput, type ThumbnailBatchResult } from '../model/types';
import { isInterruption } from '../model/interruption';
import { ThumbnailError, type ThumbnailResult } from '../thumbnails/thumbnailer';
import { checkScanRoot, resolveInside } from '../filesystem/containment';
import { batchLimit, settledOrCancelled, startHeartbeatTicker, type ActivityContext } from './shared';

/** Why a picture could not be made, in a line: the error's code and message. */
function pictureErrorText(error: unknown): string {
  const e = (typeof error === 'object' && error !== null ? error : {}) as { code?: unknown; message?: unknown };
  const message = typeof e.message === 'string' ? e.message : String(error);
  return (typeof e.code === 'string' && !message.includes(e.code) ? `${e.code}: ${message}` : message).slice(0, 300);
}

/** The makeThumbnails activity, around its dependencies. */
export function createMakeThumbnails({ library, scanRoots, thumbnailer, thumbnailSlots, mediaCalls }: ActivityContext) {
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
        // No heartbeat per picture (as none per probe): the ticker sends the
        // indexes done, and a retry reads from the library which pictures are made.
        done.add(target.probeIndex);
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

  return makeThumbnails;
}
