/**
 * Probing, the scan's second phase: a batch of files probed in the probe
 * hosts, each result recorded in the library as it comes.
 */
import { setMaxListeners } from 'node:events';
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import { ErrorType, type ProbeBatchCheckpoint, type ProbeBatchInput, type ProbeBatchResult } from '../model/types';
import { scanMetrics } from '../metrics';
import { checkScanRoot } from '../filesystem/containment';
import { createProbeRecorder } from './probe-recorder';
import { batchLimit, settledOrCancelled, startHeartbeatTicker, type ActivityContext } from './shared';

/** The probeBatch activity, around its dependencies. */
export function createProbeBatch({ library, prober, scanRoots, mediaCalls }: ActivityContext) {
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
    const stopTicker = startHeartbeatTicker(() => ({ done: [...done] }));
    const signal = ctx.cancellationSignal;
    try {
      // The root is checked again here, not trusted from discovery: every path
      // this batch probes must lie inside it, whatever route recorded the path.
      const scan = await library.getScan(input.scanId);
      if (scan === undefined) throw ApplicationFailure.nonRetryable(`scan ${input.scanId} has no record: discovery never ran`, ErrorType.InvalidScanRoot);
      const realRoot = await checkScanRoot(scan.root, scanRoots, mediaCalls(signal));
      const files = await library.getProbeFiles(input.scanId, input.fromIndex, input.toIndex);
      // The heartbeat checkpoint is throttled (at most one per HEARTBEAT_THROTTLE_MS reaches
      // the server); the library knows exactly which files were recorded, so a retry
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
        // No heartbeat per file: the ticker sends the indexes done four times a second,
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

  return probeBatch;
}
