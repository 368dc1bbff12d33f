/**
 * Reads one scan back as its job body: from Temporal (a describe, whose memo
 * carries the progress the scan publishes) and the library (its row: when it
 * was asked for, how it ended). Reads of one scan within a moment share one
 * answer (see get).
 */
import type { Client } from '@temporalio/client';
import type { Config } from '../config';
import type { Library } from '../library/library';
import type { ScanRecord } from '../library/types';
import { MAX_SUMMARY_ERRORS, type ScanCounts, type ScanMemo, type ScanPhase, type ScanProgress, type ScanResult } from '../model/types';
import { progressQuery, SCAN_WORKFLOW_TYPE } from '../workflows/definitions';
import { scanNotFound } from './errors';
import { holderMemoOf, type Execution, type RootGuards } from './guard';
import { averageRate, countsOf, endedProgress, resultOf, zeroCounts, type JobBody } from './job';
import { jobStatusOf, liveJobStatusOf, recordedStatusOf, TERMINAL_STATUSES, unstartedJobStatusOf, type JobStatus } from './job-status';

/** How long a progress query may take before the scan is described from the library instead. */
const QUERY_DEADLINE_MS = 3000;

/**
 * How long a body read from Temporal answers later reads of the same scan in
 * this process: a client polling a running scan (the dashboard, the
 * benchmark at 20 Hz) would otherwise cost a describe per poll. Well within
 * the contract's freshness of a second; a cancel, pause or resume through
 * this process forgets the scan at once.
 */
const JOB_CACHE_MS = 250;

/**
 * A young scan's body is kept for this share of its age at most: a scan that
 * takes half a second (a rescan of an unchanged library) would otherwise be
 * seen ending up to JOB_CACHE_MS late.
 */
const JOB_CACHE_AGE_SHARE = 0.1;

/** Bodies kept at most (see JOB_CACHE_MS): expired ones are swept past this. */
const JOB_CACHE_SIZE = 1000;

export class JobReader {
  /** Bodies read in the last JOB_CACHE_MS, by scan id (see get). */
  private readonly recent = new Map<string, { until: number; body: Promise<JobBody> }>();

  constructor(
    private readonly client: Client,
    private readonly config: Config,
    private readonly library: Library,
    private readonly guards: RootGuards,
  ) {}

  /** The body of a scan; NOT_FOUND when there is none. Reads of one scan within JOB_CACHE_MS share one answer. */
  get(scanId: string): Promise<JobBody> {
    const now = Date.now();
    const recent = this.recent.get(scanId);
    if (recent !== undefined && now < recent.until) return recent.body;
    if (this.recent.size >= JOB_CACHE_SIZE) {
      for (const [id, entry] of this.recent) if (now >= entry.until) this.recent.delete(id);
    }
    // Reads while Temporal answers share the answer; once it is in, it serves for its scan's share of age.
    const entry = { until: now + JOB_CACHE_MS, body: this.read(scanId) };
    this.recent.set(scanId, entry);
    // A failed read (NOT_FOUND, Temporal unreachable) is not kept: the next
    // read tries again. Neither is a scan about to end (cancel requested,
    // finalizing): whoever waits for its end sees it without the cache's delay.
    entry.body.then(
      (body) => {
        const age = now - Date.parse(body.created_at);
        entry.until = now + Math.min(JOB_CACHE_MS, Number.isFinite(age) ? Math.max(0, age * JOB_CACHE_AGE_SHARE) : 0);
        if ((body.cancel_requested || body.phase === 'finalizing') && this.recent.get(scanId) === entry) this.recent.delete(scanId);
      },
      () => {
        if (this.recent.get(scanId) === entry) this.recent.delete(scanId);
      },
    );
    return entry.body;
  }

  /** Forgets a scan's cached body: the next get reads it anew. */
  forget(scanId: string): void {
    this.recent.delete(scanId);
  }

  /** The body as Temporal and the library tell it now (get without its cache). */
  async read(scanId: string): Promise<JobBody> {
    const [description, row] = await Promise.all([this.guards.describeOrNull(scanId), this.library.getScan(scanId)]);
    if (description === null) return this.unstarted(scanId, row);
    if (description.type !== SCAN_WORKFLOW_TYPE) throw scanNotFound(scanId);
    // Two events (started, first task scheduled) mean no worker has picked the scan up yet.
    const firstRun = description.raw.workflowExecutionInfo?.firstRunId;
    const untouched = description.historyLength <= 2 && (firstRun === undefined || firstRun === null || firstRun === description.runId);
    return this.scanBody(description, row ?? null, { pending: untouched, query: true });
  }

  /**
   * A scan without a workflow: pending in its root's guard (or in a
   * scheduled run waiting for a slot), or ended before it started
   * (cancelled while pending). The library says which root, and so which
   * guard, to look at.
   */
  private async unstarted(scanId: string, known: ScanRecord | undefined): Promise<JobBody> {
    const row = known ?? (await this.recordPending(scanId));
    if (row === undefined) throw scanNotFound(scanId);
    const guard = await this.guards.holdingGuard(row.root, scanId);
    if (guard !== null && row.outcome === null) return this.pendingBody(guard, 'pending', row);
    // Not pending: its scan may have started a moment ago.
    if ((await this.guards.describeOrNull(scanId)) !== null) return this.read(scanId);
    const waiting = await this.guards.waitingRun(row.root, scanId);
    if (waiting !== null && waiting.status.name === 'RUNNING' && row.outcome === null) return this.pendingBody(waiting, 'pending', row);
    const run = (await this.guards.guardRunOf(row.root, scanId)) ?? waiting;
    // The scan ran, and Temporal has since dropped its history (namespace retention): the library remembers it.
    if (run === null && row.outcome !== null) return this.recordedBody({ ...row, outcome: row.outcome });
    return this.pendingBody(run, unstartedJobStatusOf(run?.status.name ?? null, row.outcome), row);
  }

  /**
   * A pending scan the library does not know yet: one a scheduled run
   * started (its guard, not the API, chose the id) or waits for a slot to
   * start, or one whose API stopped before recording it. Found among the
   * holders of pending scans, and recorded as a start does.
   */
  private async recordPending(scanId: string): Promise<ScanRecord | undefined> {
    if (!/^scan-[0-9a-f-]{36}$/.test(scanId)) return undefined;
    for await (const holder of this.guards.pendingHolders()) {
      const memo = holderMemoOf(holder);
      if (memo.scanId !== scanId || memo.path === undefined) continue;
      await this.guards.record(scanId, memo);
      return this.library.getScan(scanId);
    }
    return undefined;
  }

  /** The body of a scan that has not started (pending) or never did, from its holder's memo and its row. */
  pendingBody(holder: Execution | null, status: JobStatus, row: ScanRecord | null): JobBody {
    const memo = holderMemoOf(holder);
    const scanId = row?.scanId ?? memo.scanId ?? '';
    const terminal = TERMINAL_STATUSES.has(status);
    return {
      job_id: scanId,
      status,
      progress: terminal ? 0 : null,
      result: terminal ? resultOf(zeroCounts(), []) : null,
      error: status === 'failed' || status === 'timeout' ? (row?.error ?? 'the scan never started: its root guard ended first') : null,
      path: row?.root ?? memo.path ?? '',
      recursive: row?.recursive ?? memo.recursive ?? true,
      phase: terminal ? 'done' : 'discovering',
      counts: zeroCounts(),
      rate_per_s: 0,
      eta_seconds: null,
      cancel_requested: status === 'cancelled',
      // A pause sent while the scan had not started (held by its guard or scheduled run).
      pause_requested: !terminal && memo.pauseRequested === true,
      retry_of: row?.retryOf ?? memo.retryOf ?? null,
      created_at: row?.createdAt ?? memo.createdAt ?? holder?.startTime.toISOString() ?? '',
      finished_at: terminal ? (row?.finishedAt ?? holder?.closeTime?.toISOString() ?? null) : null,
      // The scan has no run yet: the link shows what holds it.
      temporal: { workflow_id: scanId, run_id: '', ui_url: holder ? this.uiUrl(holder.workflowId, holder.runId) : '' },
    };
  }

  /** The body of a scan whose end the library has recorded, from its row alone (the jobs list; a scan whose history is gone). */
  async recordedBody(row: ScanRecord & { outcome: string }): Promise<JobBody> {
    const status = recordedStatusOf(row.outcome);
    const counts = countsOf(row.counts) ?? zeroCounts();
    const errors = counts.failed === 0 ? [] : (await this.library.scanErrors(row.scanId, MAX_SUMMARY_ERRORS, 0)).errors;
    const runId = row.runId ?? '';
    return {
      ...this.pendingBody(null, status, row),
      counts,
      progress: endedProgress(status, counts),
      result: resultOf(counts, errors),
      error: status === 'failed' || status === 'timeout' ? (row.error ?? `scan ${status}`) : null,
      rate_per_s: averageRate(counts, row.createdAt, row.finishedAt),
      temporal: { workflow_id: row.scanId, run_id: runId, ui_url: runId === '' ? '' : this.uiUrl(row.scanId, runId) },
    };
  }

  /**
   * The body of a scan workflow, from a describe or a listing: both carry
   * the memo with the published progress. `query`: a scan that publishes
   * none (started before it did) is asked through a worker.
   */
  async scanBody(execution: Execution, row: ScanRecord | null, options: { pending: boolean; query: boolean }): Promise<JobBody> {
    const memo = (execution.memo ?? {}) as Partial<ScanMemo> & { progress?: ScanProgress };
    const scanId = execution.workflowId;
    const ended = execution.status.name !== 'RUNNING' && execution.status.name !== 'CONTINUED_AS_NEW';
    // A scan that ended normally published its final counts (the library's
    // totals, from finishScan) in its memo; the row has the rest: a failed
    // scan's outcome and error, and the counts of scans that ended without
    // publishing them (terminated, or started before memo progress).
    const finalCounts = ended && memo.progress?.phase === 'done' ? countsOf(memo.progress.counts as unknown as Record<string, number>) : null;
    let status = jobStatusOf(execution.status.name, row?.outcome);
    let live: ScanProgress | null = null;
    if (status === 'running') {
      if (options.pending) {
        status = 'pending';
      } else {
        // Published by the workflow at every step; older scans answer the query.
        live = memo.progress ?? (options.query ? await this.queryProgress(scanId) : null);
        status = liveJobStatusOf(live);
      }
    }
    const terminal = TERMINAL_STATUSES.has(status);
    let counts: ScanCounts = live?.counts ?? zeroCounts();
    let result: ScanResult | null = null;
    let progress: number | null = live?.progress ?? null;
    let phase: ScanPhase = live?.phase ?? 'discovering';
    if (terminal) {
      phase = 'done';
      counts = finalCounts ?? countsOf(row?.counts) ?? (await this.library.scanTotals(scanId)).counts;
      // Every file error counts as failed: with none, there is nothing to read.
      result = resultOf(counts, counts.failed === 0 ? [] : (await this.library.scanErrors(scanId, MAX_SUMMARY_ERRORS, 0)).errors);
      progress = endedProgress(status, counts);
    } else if (live === null && status === 'running') {
      counts = (await this.library.scanTotals(scanId)).counts;
    } else if (phase === 'discovering' && (status === 'running' || status === 'paused')) {
      counts = { ...counts, discovered: (await this.library.countScanFiles(scanId)).discovered };
    }
    // The row's times when there is one: the jobs list orders and shows them.
    const createdAt = row?.createdAt ?? memo.createdAt ?? execution.startTime.toISOString();
    const finishedAt = ended ? (row?.finishedAt ?? execution.closeTime?.toISOString() ?? null) : null;
    return {
      job_id: scanId,
      status,
      progress,
      result,
      error: status === 'failed' || status === 'timeout' ? (row?.error ?? `scan ${execution.status.name.toLowerCase()}`) : null,
      path: row?.root ?? memo.path ?? '',
      recursive: row?.recursive ?? memo.recursive ?? true,
      phase,
      counts,
      // A finished scan reports its average rate over its whole run.
      rate_per_s: terminal ? averageRate(counts, createdAt, finishedAt) : (live?.ratePerS ?? 0),
      eta_seconds: live?.etaSeconds ?? null,
      cancel_requested: status === 'cancelled' || (live?.cancelRequested ?? false),
      pause_requested: status === 'running' && live?.pauseRequested === true,
      retry_of: row?.retryOf ?? memo.retryOf ?? null,
      created_at: createdAt,
      finished_at: finishedAt,
      temporal: { workflow_id: scanId, run_id: execution.runId, ui_url: this.uiUrl(scanId, execution.runId) },
    };
  }

  private uiUrl(workflowId: string, runId: string): string {
    const { uiUrl, namespace } = this.config.temporal;
    return `${uiUrl}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}/${runId}/history`;
  }

  private async queryProgress(scanId: string): Promise<ScanProgress | null> {
    try {
      return await this.client.withDeadline(Date.now() + QUERY_DEADLINE_MS, () => this.client.workflow.getHandle(scanId).query(progressQuery));
    } catch {
      // No worker answered in time (all down, or busy): the library still knows the counts.
      return null;
    }
  }
}
