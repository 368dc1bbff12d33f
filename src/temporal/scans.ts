/**
 * The scan service: starts scans as workflows and reads them back as the job
 * bodies of API.md. The API's only way to Temporal.
 */
import { createHash } from 'node:crypto';
import {
  type Client,
  WithStartWorkflowOperation,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type WorkflowExecutionDescription,
} from '@temporalio/client';
import { ApplicationFailure, WorkflowIdConflictPolicy } from '@temporalio/common';
import type { Config } from '../config';
import { DomainError, notFound } from '../errors';
import type { Library } from '../library/library';
import {
  MAX_SUMMARY_ERRORS,
  type ScanClaim,
  type ScanCounts,
  type ScanMemo,
  type ScanPhase,
  type ScanProgress,
  type ScanResult,
  type ScanRootGuardInput,
} from '../scan/types';
import { claimScanUpdate, GUARD_CLOSING, GUARD_WORKFLOW_TYPE, progressQuery, SCAN_WORKFLOW_TYPE } from '../workflows/definitions';
import { jobStatusOf, TERMINAL_STATUSES, visibilityFilterOf, type JobStatus } from './status';

/** The job body of API.md. */
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
  retry_of: string | null;
  created_at: string;
  finished_at: string | null;
  temporal: { workflow_id: string; run_id: string; ui_url: string };
}

export interface StartScanRequest {
  /** Real, absolute, validated path of the root. */
  root: string;
  recursive: boolean;
  force: boolean;
  retryOf?: string | null;
  /** Batches per run before continue-as-new (the workflow's default when absent). */
  maxBatchesPerRun?: number;
  /** Whole-scan limit; SCAN_TIMEOUT when absent. */
  scanTimeoutMs?: number | null;
}

/** How long a progress query may take before the job is described from the library instead. */
const QUERY_DEADLINE_MS = 3000;

const zeroCounts = (): ScanCounts => ({ discovered: 0, probed: 0, new: 0, updated: 0, skipped: 0, failed: 0 });

export class ScanService {
  private startQueue: Promise<void> = Promise.resolve();

  constructor(
    private readonly client: Client,
    private readonly config: Config,
    private readonly library: Library,
    private readonly taskQueue: string = config.temporal.taskQueue,
  ) {}

  /**
   * Starts a scan of a root, or returns the one already running for it
   * (`created: false`). Race-free: see scan-root-guard.ts.
   */
  async start(request: StartScanRequest): Promise<ScanClaim> {
    const scanTimeoutMs = request.scanTimeoutMs !== undefined ? request.scanTimeoutMs : (this.config.scanTimeoutMs ?? null);
    const input: ScanRootGuardInput = {
      scan: {
        root: request.root,
        recursive: request.recursive,
        force: request.force,
        extensions: [],
        retryOf: request.retryOf ?? null,
        batchSize: this.config.batchSize,
        window: this.config.window,
        probeTimeoutMs: this.config.probeTimeoutMs,
        scanTimeoutMs,
        ...(request.maxBatchesPerRun !== undefined ? { maxBatchesPerRun: request.maxBatchesPerRun } : {}),
      },
      memo: {
        path: request.root,
        recursive: request.recursive,
        retryOf: request.retryOf ?? null,
        createdAt: new Date().toISOString(),
      },
      // The workflow stops itself at its limit with a summary; this is the
      // backstop should it be unable to (no worker at all, say).
      executionTimeoutMs: scanTimeoutMs !== null ? scanTimeoutMs + 5 * 60_000 : null,
    };
    const guardId = `root-${createHash('sha256').update(request.root).digest('hex').slice(0, 32)}`;
    // Starts through this API are serialised around the count, so a burst of
    // them cannot all see room for one more.
    const previous = this.startQueue;
    let release: () => void = () => undefined;
    this.startQueue = new Promise<void>((resolve) => {
      release = resolve;
    });
    await previous;
    try {
      await this.refuseWhenFull(guardId);
      return await this.claim(guardId, input, request.root);
    } finally {
      release();
    }
  }

  private async claim(guardId: string, input: ScanRootGuardInput, root: string): Promise<ScanClaim> {
    for (let attempt = 0; ; attempt += 1) {
      try {
        const claim = await this.client.workflow.executeUpdateWithStart(claimScanUpdate, {
          startWorkflowOperation: new WithStartWorkflowOperation(GUARD_WORKFLOW_TYPE, {
            workflowId: guardId,
            taskQueue: this.taskQueue,
            args: [input],
            workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
            staticSummary: `Holds ${root} for one scan at a time`.slice(0, 200),
          }),
        });
        // The scan this guard holds may have ended a moment before the guard
        // heard of it; such a claim names a finished scan, so try again.
        if (claim.created || !(await this.hasEnded(claim.jobId)) || attempt >= 50) return claim;
        await new Promise((resolve) => setTimeout(resolve, 100));
      } catch (error) {
        // The root's previous scan ended a moment ago and its guard is closing:
        // wait for it to close, then the next attempt starts a fresh guard.
        const closing =
          error instanceof WorkflowUpdateFailedError &&
          error.cause instanceof ApplicationFailure &&
          error.cause.type === GUARD_CLOSING;
        if (!closing || attempt >= 50) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  private async hasEnded(jobId: string): Promise<boolean> {
    const { status } = await this.client.workflow.getHandle(jobId).describe();
    return status.name !== 'RUNNING';
  }

  /**
   * A flood of starts must not flood the workers: past MAX_CONCURRENT_SCANS
   * running scans a new root is refused (a root already being scanned still
   * answers with its running scan). Visibility lags by moments, so the bound
   * is soft by the few starts that arrive within that lag.
   */
  private async refuseWhenFull(guardId: string): Promise<void> {
    const { count } = await this.client.workflow.count(
      `WorkflowType = '${SCAN_WORKFLOW_TYPE}' AND ExecutionStatus = 'Running' AND TaskQueue = '${this.taskQueue}'`,
    );
    if (count < this.config.maxConcurrentScans) return;
    const existing = await this.client.workflow
      .getHandle(guardId)
      .describe()
      .then((d) => d.status.name === 'RUNNING', () => false);
    if (existing) return;
    throw new DomainError('TOO_MANY_SCANS', 429, `${count} scans are running, the most this service runs at once; try again when one ends`);
  }

  /** The job body of a scan; NOT_FOUND when there is no such scan. */
  async get(jobId: string): Promise<JobBody> {
    const handle = this.client.workflow.getHandle(jobId);
    let description: WorkflowExecutionDescription;
    try {
      description = await handle.describe();
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) throw notFound(`job ${jobId}`);
      throw error;
    }
    if (description.type !== SCAN_WORKFLOW_TYPE) throw notFound(`job ${jobId}`);
    return this.toJob(description);
  }

  /** Requests cancellation; the scan ends as cancelled once its in-flight files are stopped. */
  async cancel(jobId: string): Promise<JobBody> {
    const job = await this.get(jobId);
    if (TERMINAL_STATUSES.has(job.status)) {
      throw new DomainError('ALREADY_TERMINAL', 409, `job ${jobId} has already ended (${job.status})`);
    }
    await this.client.workflow.getHandle(jobId).cancel();
    return { ...job, cancel_requested: true };
  }

  /**
   * Starts a new scan of what a finished scan failed on or never reached.
   * NOT_TERMINAL while the scan runs; NOTHING_TO_RETRY after a clean completion.
   */
  async retry(jobId: string): Promise<ScanClaim> {
    const job = await this.get(jobId);
    if (!TERMINAL_STATUSES.has(job.status)) {
      throw new DomainError('NOT_TERMINAL', 409, `job ${jobId} is still ${job.status}; cancel it or wait for it to end`);
    }
    if (job.status === 'completed' && job.counts.failed === 0) {
      throw new DomainError('NOTHING_TO_RETRY', 409, `job ${jobId} completed without file errors; start a new scan instead`);
    }
    // Its file records were pruned (SCAN_RECORD_RETENTION): what failed is no longer known.
    if ((await this.library.getScan(jobId))?.filesPrunedAt) {
      throw new DomainError('NOTHING_TO_RETRY', 409, `job ${jobId} is older than SCAN_RECORD_RETENTION and its file records are gone; start a new scan instead`);
    }
    return this.start({ root: job.path, recursive: job.recursive, force: true, retryOf: jobId });
  }

  /** Scans, newest first, a page at a time, through Temporal visibility. */
  async list(options: { status?: JobStatus; limit: number; pageToken?: string }): Promise<{ jobs: JobBody[]; nextPageToken: string | null }> {
    const clauses = [`WorkflowType = '${SCAN_WORKFLOW_TYPE}'`, `ExecutionStatus != 'ContinuedAsNew'`];
    if (options.status) clauses.push(visibilityFilterOf(options.status));
    let nextPageToken: Uint8Array | undefined;
    if (options.pageToken) {
      nextPageToken = Buffer.from(options.pageToken, 'base64url');
      if (nextPageToken.length === 0) throw new DomainError('INVALID_REQUEST', 400, 'page_token is not valid');
    }
    let response;
    try {
      response = await this.client.workflowService.listWorkflowExecutions({
        namespace: this.config.temporal.namespace,
        pageSize: options.limit,
        query: clauses.join(' AND '),
        ...(nextPageToken ? { nextPageToken } : {}),
      });
    } catch (error) {
      // If the same listing works without the token, the token was what the server refused.
      if (options.pageToken) {
        const { pageToken: _bad, ...rest } = options;
        const withoutToken = await this.list(rest).then(() => true, () => false);
        if (withoutToken) throw new DomainError('INVALID_REQUEST', 400, 'page_token is not valid');
      }
      throw error;
    }
    const ids = (response.executions ?? []).map((e) => e.execution?.workflowId).filter((id): id is string => typeof id === 'string');
    const jobs = await Promise.all(ids.map((id) => this.get(id).catch(() => null)));
    const token = response.nextPageToken && response.nextPageToken.length > 0 ? Buffer.from(response.nextPageToken).toString('base64url') : null;
    return {
      // Visibility orders running executions first; within a page, newest first by creation.
      jobs: jobs
        .filter((job): job is JobBody => job !== null && (options.status === undefined || job.status === options.status))
        .sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0)),
      nextPageToken: token,
    };
  }

  private async toJob(description: WorkflowExecutionDescription): Promise<JobBody> {
    const memo = (description.memo ?? {}) as Partial<ScanMemo>;
    const jobId = description.workflowId;
    const scan = await this.library.getScan(jobId);
    let status = jobStatusOf(description.status.name, scan?.outcome);
    let live: ScanProgress | null = null;
    if (status === 'running') {
      // Two events (started, first task scheduled) mean no worker has picked the scan up yet.
      const firstRun = description.raw.workflowExecutionInfo?.firstRunId;
      if (description.historyLength <= 2 && (firstRun === undefined || firstRun === null || firstRun === description.runId)) {
        status = 'pending';
      } else {
        // Published by the workflow at every step; older scans answer the query.
        const published = (description.memo as { progress?: ScanProgress } | undefined)?.progress;
        live = published ?? (await this.queryProgress(jobId));
      }
    }
    const terminal = TERMINAL_STATUSES.has(status);
    let counts: ScanCounts = live?.counts ?? zeroCounts();
    let result: ScanResult | null = null;
    let progress: number | null = live?.progress ?? null;
    let phase: ScanPhase = live?.phase ?? 'discovering';
    if (terminal) {
      phase = 'done';
      counts = this.countsOf(scan?.counts) ?? ((await this.library.scanTotals(jobId)).counts);
      const errors = await this.library.scanErrors(jobId, MAX_SUMMARY_ERRORS, 0);
      result = {
        scanned: counts.probed + counts.skipped,
        new: counts.new,
        updated: counts.updated,
        skipped: counts.skipped,
        errors: errors.errors,
      };
      progress = status === 'completed' ? 1 : counts.discovered === 0 ? 0 : Math.min((counts.probed + counts.skipped) / counts.discovered, 0.999);
    } else if (live === null && status === 'running') {
      counts = (await this.library.scanTotals(jobId)).counts;
    } else if (phase === 'discovering') {
      counts = { ...counts, discovered: (await this.library.countScanFiles(jobId)).discovered };
    }
    // A finished scan reports its average rate over its whole run.
    const createdAt = memo.createdAt ?? description.startTime.toISOString();
    const runSeconds = description.closeTime ? (description.closeTime.getTime() - Date.parse(createdAt)) / 1000 : 0;
    const ratePerS = terminal ? (runSeconds > 0 ? Math.round((counts.probed / runSeconds) * 10) / 10 : 0) : (live?.ratePerS ?? 0);
    return {
      job_id: jobId,
      status,
      progress,
      result,
      error: status === 'failed' || status === 'timeout' ? (scan?.error ?? `scan ${description.status.name.toLowerCase()}`) : null,
      path: memo.path ?? '',
      recursive: memo.recursive ?? true,
      phase,
      counts,
      rate_per_s: ratePerS,
      eta_seconds: live?.etaSeconds ?? null,
      cancel_requested: status === 'cancelled' || (live?.cancelRequested ?? false),
      retry_of: memo.retryOf ?? null,
      created_at: createdAt,
      finished_at: description.closeTime?.toISOString() ?? null,
      temporal: {
        workflow_id: jobId,
        run_id: description.runId,
        ui_url: `${this.config.temporal.uiUrl}/namespaces/${encodeURIComponent(this.config.temporal.namespace)}/workflows/${encodeURIComponent(jobId)}/${description.runId}/history`,
      },
    };
  }

  private async queryProgress(jobId: string): Promise<ScanProgress | null> {
    try {
      return await this.client.withDeadline(Date.now() + QUERY_DEADLINE_MS, () =>
        this.client.workflow.getHandle(jobId).query(progressQuery),
      );
    } catch {
      // No worker answered in time (all down, or busy): the library still knows the counts.
      return null;
    }
  }

  private countsOf(stored: Record<string, number> | null | undefined): ScanCounts | null {
    if (!stored) return null;
    const counts = zeroCounts();
    for (const key of Object.keys(counts) as (keyof ScanCounts)[]) counts[key] = Number(stored[key] ?? 0);
    return counts;
  }

}
