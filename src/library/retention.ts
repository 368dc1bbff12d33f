/**
 * Background pruning of old scans' per-file records (SCAN_RECORD_RETENTION):
 * `scan_files` gains a row per file per scan, and only a retry of a scan, or
 * its error list, ever reads them again.
 */
import type { Logger } from '../logger';
import type { Library } from './library';

/** The first run, shortly after start: not in the way of a worker's start-up. */
const FIRST_RUN_AFTER_MS = 30_000;
/** Runs after that: often enough for short retentions, at most hourly. */
const MIN_INTERVAL_MS = 60_000;
const MAX_INTERVAL_MS = 3_600_000;

export interface ScanRecordPruningOptions {
  library: Library;
  /** Records of scans that finished longer ago than this are removed. */
  retentionMs: number;
  logger: Logger;
  /** Delay before the first run. */
  firstRunAfterMs?: number;
  /** Delay between runs; by default a quarter of the retention, within 1 min to 1 h. */
  intervalMs?: number;
}

/**
 * Prunes now-expired scan records once, logging what it removed.
 * Any number of processes may run it at once: deletes are idempotent.
 */
export async function pruneExpiredScanRecords(library: Library, retentionMs: number, logger: Logger): Promise<{ scans: number; rows: number }> {
  const finishedBefore = new Date(Date.now() - retentionMs);
  const removed = await library.pruneScanRecords(finishedBefore);
  logger.info({ rowsRemoved: removed.rows, scans: removed.scans, finishedBefore: finishedBefore.toISOString() }, 'pruned expired scan file records');
  return removed;
}

/**
 * Starts pruning on a timer: first run shortly after start, then
 * periodically. The timers are unref'd (they never keep a process alive) and
 * runs never overlap. Returns a function that stops it and waits for a run
 * in progress, to call before the library is closed.
 */
export function startScanRecordPruning(options: ScanRecordPruningOptions): () => Promise<void> {
  const { library, retentionMs, logger } = options;
  const interval = options.intervalMs ?? Math.min(MAX_INTERVAL_MS, Math.max(MIN_INTERVAL_MS, Math.round(retentionMs / 4)));
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  const schedule = (delay: number): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = pruneExpiredScanRecords(library, retentionMs, logger).then(
        () => undefined,
        // A failed run (database away) is retried at the next tick.
        (error: unknown) => logger.warn({ err: error }, 'pruning scan file records failed; retried later'),
      );
      void running.finally(() => {
        running = undefined;
        schedule(interval);
      });
    }, delay);
    timer.unref();
  };
  schedule(options.firstRunAfterMs ?? FIRST_RUN_AFTER_MS);
  return async () => {
    stopped = true;
    clearTimeout(timer);
    await running;
  };
}
