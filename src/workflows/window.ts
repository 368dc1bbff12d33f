/**
 * The sliding window a scan runs its batches through, probes and pictures
 * alike: at most `size` batches in flight, each over a range [from, to) of
 * the scan's file indexes, a new one launched as one ends, until the indexes
 * run out or the run hands over to a new one (continue-as-new).
 *
 * Workflow code: the commands it issues (one activity per batch, the
 * cancellations of this round's shape) are those recorded histories hold, so
 * the two shapes below must keep issuing exactly what they did.
 */
import { CancellationScope, condition, isCancellation } from '@temporalio/workflow';

/** A batch's range of file indexes, [from, to). */
export type IndexRange = [fromIndex: number, toIndex: number];

export interface WindowPlan<R> {
  /** Batches in flight at most. */
  size: number;
  /** Indexes per batch. */
  batchSize: number;
  /** Where the indexes end (exclusive). */
  end: number;
  /** The first index not yet launched, kept in the scan's cursor. */
  next(): number;
  /** Moves the cursor's next index on, before the batch up to it starts. */
  advance(toIndex: number): void;
  /** Starts the activity of one batch. */
  start(fromIndex: number, toIndex: number): Promise<R>;
  /** A batch's result, applied as it arrives. */
  done(result: R): void;
  /** Called as each batch is launched: the workflow counts batches per run. */
  launched(): void;
  /** Whether this run should launch no more and hand over to a new one. */
  handOver(): boolean;
  /** Whether the scan is paused: no new batches while it is. */
  paused(): boolean;
  /** Batches in flight, each time that number changes. */
  running(count: number): void;
  /**
   * This round's shape (STOPPABLE_BATCHES_PATCH): a pause cancels the batches
   * in flight (a probe that is running is stopped: an interruption, never a
   * verdict) and keeps their ranges in `relaunch`, launched first on resume;
   * a batch's failure cancels its siblings; `changed` is called when a batch
   * ends without a result and once a pause has stopped them all.
   * Absent: the shape of scans started before it, which a pause lets run to
   * their end and a failure lets finish, as their histories recorded.
   */
  stoppable?: { relaunch: IndexRange[]; changed(): void };
}

/**
 * Runs batches until every index is done ('done') or the run hands over with
 * some left ('continue'). A batch's failure, or the scan's cancellation, is
 * thrown once every batch in flight has heard it and ended.
 */
export async function runWindow<R>(plan: WindowPlan<R>): Promise<'done' | 'continue'> {
  const { stoppable } = plan;
  const relaunch = stoppable?.relaunch ?? [];
  const inFlight = new Map<number, number>();
  let failure: unknown;
  // The older shape runs its batches in the caller's scope, as it always did.
  let scope = stoppable ? new CancellationScope() : undefined;
  // Waits of this round's shape also end on a pause, which stops the batches in flight.
  const orPaused = (): boolean => stoppable !== undefined && plan.paused();

  const launch = (fromIndex: number, toIndex: number): void => {
    plan.launched();
    inFlight.set(fromIndex, toIndex);
    plan.running(inFlight.size);
    const batchScope = scope;
    const work = batchScope ? batchScope.run(() => plan.start(fromIndex, toIndex)) : plan.start(fromIndex, toIndex);
    work.then(
      (result) => {
        inFlight.delete(fromIndex);
        plan.running(inFlight.size);
        plan.done(result);
      },
      (error: unknown) => {
        inFlight.delete(fromIndex);
        plan.running(inFlight.size);
        if (!stoppable) {
          if (failure === undefined) failure = error;
          return;
        }
        if (plan.paused() && isCancellation(error) && failure === undefined) {
          // Stopped by the pause: launched again on resume.
          relaunch.push([fromIndex, toIndex]);
        } else if (failure === undefined) {
          failure = error;
          // Its siblings stop too: the scan is failing, their work would be for nothing.
          if (!isCancellation(error)) scope?.cancel();
        }
        stoppable.changed();
      },
    );
  };

  try {
    for (;;) {
      if (failure !== undefined) throw failure;
      if (plan.paused()) {
        if (stoppable && scope && inFlight.size > 0) {
          scope.cancel();
          await condition(() => inFlight.size === 0);
          // A fresh scope for the batches after the resume.
          scope = new CancellationScope();
          stoppable.changed();
        }
        // The older shape: no new batches; the ones in flight finish and are
        // counted. The scan timeout keeps running, and a cancel ends this wait.
        await condition(() => !plan.paused() || failure !== undefined);
        continue;
      }
      const handOver = plan.handOver();
      if ((plan.next() >= plan.end && relaunch.length === 0) || handOver) {
        await condition(() => inFlight.size === 0 || failure !== undefined || orPaused());
        if (failure !== undefined) throw failure;
        if (orPaused()) continue;
        return plan.next() < plan.end || relaunch.length > 0 ? 'continue' : 'done';
      }
      if (inFlight.size >= plan.size) {
        await condition(() => inFlight.size < plan.size || failure !== undefined || orPaused());
        continue;
      }
      const again = relaunch.shift();
      if (again !== undefined) {
        launch(again[0], again[1]);
        continue;
      }
      const fromIndex = plan.next();
      const toIndex = Math.min(fromIndex + plan.batchSize, plan.end);
      plan.advance(toIndex);
      launch(fromIndex, toIndex);
    }
  } catch (error) {
    // Let the batches in flight hear the cancellation (the scan's, or the one
    // a sibling's failure sent) and stop their ffprobe or ffmpeg before the
    // scan reports an end.
    await CancellationScope.nonCancellable(() => condition(() => inFlight.size === 0));
    throw error;
  }
}
