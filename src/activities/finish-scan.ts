/**
 * The scan's end: its outcome and counts written to the library.
 */
import { Context } from '@temporalio/activity';
import type { FinishScanInput, FinishScanResult } from '../model/types';
import { scanMetrics } from '../metrics';
import { startHeartbeatTicker, type ActivityContext } from './shared';

/** The finishScan activity, around its dependencies. */
export function createFinishScan({ library }: ActivityContext) {
  /** Writes the scan's end to the library and returns its counts, recomputed from the per-file records. */
  async function finishScan(input: FinishScanInput): Promise<FinishScanResult> {
    // The library retries a busy database for up to 30 s, longer than the
    // 10 s heartbeat timeout: without heartbeats a slow finish would be taken
    // for a dead worker and run again.
    const stopTicker = startHeartbeatTicker(() => ({ finishing: input.scanId }));
    try {
      const { counts, errors } = await library.scanTotals(input.scanId);
      // This is the scan's last run: its id makes the row's link to the Temporal UI.
      const runId = Context.current().info.workflowExecution?.runId;
      await library.finishScan(input.scanId, { outcome: input.outcome, counts, error: input.error, ...(runId !== undefined ? { runId } : {}) });
      scanMetrics.scans.inc({ outcome: input.outcome });
      return { counts, errors };
    } finally {
      stopTicker();
    }
  }

  return finishScan;
}
