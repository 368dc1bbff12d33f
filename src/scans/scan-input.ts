/**
 * The scan a start asks a root's guard to run, built in one place for every
 * way a scan starts: a start through the API (REST, retry, webhook) and a
 * schedule's action, which a scheduled run hands to the guard it starts.
 */
import type { Config } from '../config';
import { MAX_BATCHES_PER_RUN, type ScanRootGuardInput } from '../model/types';
import type { StartScanRequest } from './job';

/** What a guard is given to run: the scan (without the id each start chooses) and its backstop timeout. */
export type GuardedScan = Pick<ScanRootGuardInput, 'scan' | 'executionTimeoutMs'>;

/** How long past its own limit a scan may run before Temporal ends it: the workflow stops itself at the limit, this is the backstop. */
const BACKSTOP_MS = 5 * 60_000;

/** The scan a request asks for, with the service's settings (SCAN_EXCLUDE, SCAN_TIMEOUT, batch and window sizes). */
export function guardedScanOf(config: Config, request: StartScanRequest): GuardedScan {
  const scanTimeoutMs = request.scanTimeoutMs !== undefined ? request.scanTimeoutMs : (config.scanTimeoutMs ?? null);
  return {
    scan: {
      root: request.root,
      recursive: request.recursive,
      force: request.force,
      extensions: [],
      exclude: request.keptExclude ?? [...config.scanExclude, ...(request.exclude ?? [])],
      settleSeconds: config.scanSettleSeconds,
      retryOf: request.retryOf ?? null,
      batchSize: config.batchSize,
      window: config.window,
      probeTimeoutMs: config.probeTimeoutMs,
      scanTimeoutMs,
      // Always in the input, so that a later change of the default leaves running scans alone.
      maxBatchesPerRun: request.maxBatchesPerRun ?? MAX_BATCHES_PER_RUN,
      ...(request.maxParallelFiles !== undefined ? { maxParallelFiles: request.maxParallelFiles } : {}),
      ...(request.thumbnails !== undefined ? { thumbnails: request.thumbnails } : {}),
    },
    executionTimeoutMs: scanTimeoutMs !== null ? scanTimeoutMs + BACKSTOP_MS : null,
  };
}
