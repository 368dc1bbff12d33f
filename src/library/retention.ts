/**
 * Pruning of old scans' per-file records (SCAN_RECORD_RETENTION), in the
 * background: `scan_files` gains a row per file per scan, and only a retry
 * of a scan, or its error list, ever reads them again.
 */
import type { Logger } from '../logger';
import { Repository } from './repository';

/** File records deleted per statement when pruning: a few ms of SQLite's write lock each. */
const PRUNE_CHUNK = 5000;

export class RetentionRepository extends Repository {
  /**
   * Deletes the file records of scans that finished before `finishedBefore`
   * (SCAN_RECORD_RETENTION ago), and marks those scans as pruned. Kept: the
   * records of scans still running (no finished_at) and of a scan whose retry
   * is still running (the retry reads them). A pruned scan keeps its row and
   * its counts; a retry of it has nothing to go on (the API answers
   * NOTHING_TO_RETRY). Deletes in chunks, each its own statement, so a large
   * scan never holds SQLite's write lock for long. Returns the rows removed.
   */
  async pruneScanRecords(finishedBefore: Date): Promise<{ scans: number; rows: number }> {
    const cutoff = finishedBefore.toISOString();
    const candidates = await this.retrying(async () =>
      this.db
        .selectFrom('scans as s')
        .select('s.scan_id')
        // finished_at is ISO-8601 UTC from toISOString(): text order is time order.
        .where('s.finished_at', '<', cutoff)
        .where(({ exists, selectFrom }) => exists(selectFrom('scan_files as f').select('f.scan_id').whereRef('f.scan_id', '=', 's.scan_id')))
        .where(({ not, exists, selectFrom }) =>
          not(exists(selectFrom('scans as r').select('r.scan_id').whereRef('r.retry_of', '=', 's.scan_id').where('r.finished_at', 'is', null))),
        )
        .orderBy('s.finished_at')
        .execute(),
    );
    let rows = 0;
    for (const { scan_id: scanId } of candidates) {
      // Marked first: from now on a retry of this scan is refused rather than
      // started on a partial list. A crash midway leaves rows that the next
      // run finds (the scan still has records) and finishes.
      await this.retrying(async () => {
        await this.db
          .updateTable('scans')
          .set((eb) => ({ files_pruned_at: eb.fn.coalesce('files_pruned_at', eb.val(new Date().toISOString())) }))
          .where('scan_id', '=', scanId)
          .execute();
      });
      const last = await this.retrying(async () =>
        this.db.selectFrom('scan_files').select((eb) => eb.fn.max('position').as('p')).where('scan_id', '=', scanId).executeTakeFirst(),
      );
      const lastPosition = Number(last?.p ?? -1);
      for (let from = 0; from <= lastPosition; from += PRUNE_CHUNK) {
        const result = await this.retrying(async () =>
          this.db
            .deleteFrom('scan_files')
            .where('scan_id', '=', scanId)
            .where('position', '<', from + PRUNE_CHUNK)
            .executeTakeFirst(),
        );
        rows += Number(result.numDeletedRows);
      }
    }
    return { scans: candidates.length, rows };
  }
}

/** What pruning needs of the library. */
export interface PrunableLibrary {
  pruneScanRecords(finishedBefore: Date): Promise<{ scans: number; rows: number }>;
}

/** The first run, shortly after start: not in the way of a worker's start-up. */
const FIRST_RUN_AFTER_MS = 30_000;
/** Runs after that: often enough for short retentions, at most hourly. */
const MIN_INTERVAL_MS = 60_000;
const MAX_INTERVAL_MS = 3_600_000;

export interface ScanRecordPruningOptions {
  library: PrunableLibrary;
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
export async function pruneExpiredScanRecords(library: PrunableLibrary, retentionMs: number, logger: Logger): Promise<{ scans: number; rows: number }> {
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
