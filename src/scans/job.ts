/**
 * A scan as clients see it (the job body of API.md), and what a start asks for.
 */
import { MAX_SUMMARY_ERRORS, type FileError, type ScanCounts, type ScanPhase, type ScanResult } from '../model/types';
import type { JobStatus } from './job-status';

/**
 * The job body of API.md: one scan. The API says "job" (`job_id`, `/jobs`)
 * because clients of the system it replaces know that word; the code says
 * "scan" and `scanId` everywhere. The two are one id, which is also the
 * scan's Temporal workflow id.
 */
export interface JobBody {
  job_id: string;
  status: JobStatus;
  progress: number | null;
  result: ScanResult | null;
  error: string | null;
  path: string;
  recursive: boolean;
  phase: ScanPhase;
  counts: ScanCounts;
  rate_per_s: number;
  eta_seconds: number | null;
  cancel_requested: boolean;
  /** A pause was asked and the batches it stopped are still ending (the scan reads `running` meanwhile). */
  pause_requested: boolean;
  retry_of: string | null;
  created_at: string;
  finished_at: string | null;
  temporal: { workflow_id: string; run_id: string; ui_url: string };
}

/** A started scan: its id, and whether this start created it (false: the root's running scan). */
export interface StartedScan {
  scanId: string;
  created: boolean;
}

/** What a start asks for. */
export interface StartScanRequest {
  /** Real, absolute, validated path of the root. */
  root: string;
  recursive: boolean;
  force: boolean;
  retryOf?: string | null;
  /** Batches per run before continue-as-new; MAX_BATCHES_PER_RUN when absent. */
  maxBatchesPerRun?: number;
  /** Whole-scan limit; SCAN_TIMEOUT when absent. */
  scanTimeoutMs?: number | null;
  /** The request's own globs of paths to leave out, added to SCAN_EXCLUDE. */
  exclude?: string[];
  /**
   * The whole exclusion list, SCAN_EXCLUDE included, kept from an earlier
   * start (a retry, a schedule's own request): used as it is, instead of
   * SCAN_EXCLUDE and `exclude`.
   */
  keptExclude?: string[];
  /** Files of this root in flight at once across all workers (max_parallel_files); unset: the workers' own limits alone. */
  maxParallelFiles?: number;
  /** The request's `thumbnails`: false, no picture phase; unset, the workers' THUMBNAILS default. */
  thumbnails?: boolean;
}

export const zeroCounts = (): ScanCounts => ({ discovered: 0, probed: 0, new: 0, updated: 0, skipped: 0, failed: 0, moved: 0, missing: 0 });

/** Counts as stored (the library's JSON, a memo), with every field a number. */
export function countsOf(stored: Record<string, number> | null | undefined): ScanCounts | null {
  if (!stored) return null;
  const counts = zeroCounts();
  for (const key of Object.keys(counts) as (keyof ScanCounts)[]) counts[key] = Number(stored[key] ?? 0);
  // Only scans with a thumbnail phase have this count.
  if (stored.thumbnails !== undefined) counts.thumbnails = Number(stored.thumbnails);
  return counts;
}

/** The result of an ended scan, from its final counts and its first file errors. */
export function resultOf(counts: ScanCounts, errors: FileError[]): ScanResult {
  return { scanned: counts.probed + counts.skipped, new: counts.new, updated: counts.updated, skipped: counts.skipped, errors: errors.slice(0, MAX_SUMMARY_ERRORS) };
}

/** The progress of an ended scan: exactly 1 when it completed, else the share it reached. */
export function endedProgress(status: JobStatus, counts: ScanCounts): number {
  if (status === 'completed') return 1;
  return counts.discovered === 0 ? 0 : Math.min((counts.probed + counts.skipped) / counts.discovered, 0.999);
}

/** An ended scan's average rate over its whole run, in files probed per second. */
export function averageRate(counts: ScanCounts, createdAt: string, finishedAt: string | null): number {
  const seconds = finishedAt === null ? 0 : (Date.parse(finishedAt) - Date.parse(createdAt)) / 1000;
  return seconds > 0 ? Math.round((counts.probed / seconds) * 10) / 10 : 0;
}
