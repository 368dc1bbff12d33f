/**
 * The scan service: starts scans as workflows and reads them back as the job
 * bodies of API.md. The API's only way to Temporal.
 *
 * A start claims the root by starting its guard workflow (scan-root-guard.ts)
 * under an id derived from the root, with a plain start: the API chooses the
 * scan's id and gives it to the guard in its input and memo, so the answer
 * needs only the server to record the guard, never a worker to run it. Until
 * a worker has started the scan, the job is `pending`: the library's scans
 * row (written right after the start) says where to find its guard.
 */
import { createHash, randomUUID } from 'node:crypto';
import {
  type Client,
  type RawWorkflowExecutionInfo,
  type WorkflowExecutionDescription,
  type WorkflowExecutionInfo,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
} from '@temporalio/client';
import { ApplicationFailure, WorkflowExecutionAlreadyStartedError, WorkflowIdConflictPolicy, WorkflowIdReusePolicy } from '@temporalio/common';
import type { Config } from '../config';
import { DomainError, notFound } from '../errors';
import type { Library } from '../library/library';
import type { ScanRecord } from '../library/types';
import {
  MAX_BATCHES_PER_RUN,
  MAX_SUMMARY_ERRORS,
  type ScanClaim,
  type ScanCounts,
  type ScanMemo,
  type ScanPhase,
  type ScanProgress,
  type ScanResult,
  type ScanRootGuardInput,
  type ScanRootGuardMemo,
} from '../scan/types';
import {
  claimScanUpdate,
  GUARD_CLOSING,
  GUARD_WORKFLOW_TYPE,
  PauseRejection,
  pauseScanUpdate,
  pendingPauseSignal,
  progressQuery,
  resumeScanUpdate,
  scanRootSearchAttribute,
  SCAN_WORKFLOW_TYPE,
  SCHEDULED_SCAN_WORKFLOW_TYPE,
} from '../workflows/definitions';
import { ScanAdmission } from './admission';
import { ScheduleService } from './schedules';
import { jobListQueriesOf, jobStatusOf, liveJobStatusOf, TERMINAL_STATUSES, unstartedJobStatusOf, type JobStatus } from './status';

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
  /** A pause was asked and the batches it stopped are still ending (the job reads `running` meanwhile). */
  pause_requested: boolean;
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

/** How long a progress query may take before the job is described from the library instead. */
const QUERY_DEADLINE_MS = 3000;

/**
 * Clock skew allowed between the API (which stamps a job's created_at) and
 * the Temporal server (which stamps start and close times); see list(). Hosts
 * kept by NTP are within milliseconds; each second of slack costs the list
 * the rows of a second's worth of scans read beyond the page. Skew beyond it
 * can only move a job to the next page, never drop it.
 */
const CLOCK_SKEW_MS = 1_000;

/**
 * How long a job body read from Temporal answers later reads of the same job
 * in this process. A client polling a running scan (the dashboard, the
 * benchmark at 20 Hz) made a describe and its server work per poll; well
 * within the contract's freshness of a second, and a cancel, pause or resume
 * through this process forgets the job at once.
 */
const JOB_CACHE_MS = 250;

/**
 * A young job's body is kept for this share of its age at most: a scan that
 * takes half a second (a rescan of an unchanged library) would otherwise be
 * seen ending up to JOB_CACHE_MS late, half as long again, while a long one
 * is polled many times a second and is where the cache pays.
 */
const JOB_CACHE_AGE_SHARE = 0.1;

/** Job bodies kept at most (see JOB_CACHE_MS): expired ones are swept past this. */
const JOB_CACHE_SIZE = 1000;

/** A start that keeps finding the root's guard closing gives up after this many tries. */
const START_ATTEMPTS = 5;

const zeroCounts = (): ScanCounts => ({ discovered: 0, probed: 0, new: 0, updated: 0, skipped: 0, failed: 0, moved: 0, missing: 0 });

/** The workflow id of a root's guard: one per root, so Temporal itself keeps one scan per root. */
export function guardIdOf(root: string): string {
  return `root-${createHash('sha256').update(root).digest('hex').slice(0, 32)}`;
}

/** What a job body is built from: a describe, a listed execution, or a row of a visibility listing (executionOfRow). */
type Execution = Pick<WorkflowExecutionInfo, 'workflowId' | 'runId' | 'startTime' | 'closeTime' | 'memo'> & { status: { name: string } };

/** A row of a visibility listing, as the jobs list orders and filters it. */
interface ListedRow {
  /** Decoded in full only once selected for the page: most rows read are only compared. */
  raw: RawWorkflowExecutionInfo;
  jobId: string;
  /** created_at in ms: what the list orders by. */
  key: number;
  /** The guard of a job whose scan has not started, rather than the scan. */
  isGuard: boolean;
  /** Where it sits in its listing: start time (running) or close time (closed), in ms, an upper bound of `key`. */
  bound: number;
}

/** Temporal's execution status codes (temporal.api.enums.v1.WorkflowExecutionStatus), by the names the SDK gives them. */
const STATUS_NAMES: Record<number, string> = {
  1: 'RUNNING',
  2: 'COMPLETED',
  3: 'FAILED',
  4: 'CANCELLED',
  5: 'TERMINATED',
  6: 'CONTINUED_AS_NEW',
  7: 'TIMED_OUT',
};

const msOf = (timestamp: { seconds?: { toNumber(): number } | number | null; nanos?: number | null } | null | undefined): number | null =>
  timestamp?.seconds === undefined || timestamp.seconds === null
    ? null
    : (typeof timestamp.seconds === 'number' ? timestamp.seconds : timestamp.seconds.toNumber()) * 1000 + Math.floor((timestamp.nanos ?? 0) / 1e6);

/** One listing as read for a page: see ScanService.readListing. */
interface Listing {
  rows: ListedRow[];
  readDownTo: number;
  complete: boolean;
}

/**
 * Where a list page resumes: after `cursor`, each listing from the rows whose
 * start (running) or close (closed) time is at most this many ms, or from its
 * top ('top'), or not at all (null: read to its end).
 */
interface ListPosition {
  cursor: [number, string] | null;
  running: number | 'top' | null;
  closed: number | 'top' | null;
}

const isAfterCursor = (row: ListedRow, cursor: [number, string] | null): boolean =>
  cursor === null || row.key < cursor[0] || (row.key === cursor[0] && row.jobId < cursor[1]);

/** Newest first; a job listed both as its guard and as its scan sorts the scan first. */
const newestFirst = (a: ListedRow, b: ListedRow): number =>
  b.key - a.key || (a.jobId < b.jobId ? 1 : a.jobId > b.jobId ? -1 : 0) || Number(a.isGuard) - Number(b.isGuard);

export class ScanService {
  private scheduleService: ScheduleService | undefined;

  /** Job bodies read in the last JOB_CACHE_MS, by job id (see get). */
  private readonly recentJobs = new Map<string, { until: number; body: Promise<JobBody> }>();

  /** Admission of new roots under MAX_CONCURRENT_SCANS: the one place every way of starting a scan asks. */
  private readonly admission: ScanAdmission;

  constructor(
    private readonly client: Client,
    private readonly config: Config,
    private readonly library: Library,
    private readonly taskQueue: string = config.temporal.taskQueue,
  ) {
    this.admission = new ScanAdmission(client, config.maxConcurrentScans, taskQueue);
  }

  /**
   * Starts a scan of a root, or returns the one already running or pending
   * for it (`created: false`). Answers without waiting for a worker. Starts
   * of different roots run side by side; two starts of one root race on the
   * guard's workflow id, which the server gives to one of them only.
   */
  async start(request: StartScanRequest): Promise<ScanClaim> {
    const { root } = request;
    const guardId = guardIdOf(root);
    const scanId = `scan-${randomUUID()}`;
    const retryOf = request.retryOf ?? null;
    const scanTimeoutMs = request.scanTimeoutMs !== undefined ? request.scanTimeoutMs : (this.config.scanTimeoutMs ?? null);
    const exclude = request.keptExclude ?? [...this.config.scanExclude, ...(request.exclude ?? [])];
    const memo: ScanMemo = { path: root, recursive: request.recursive, retryOf, createdAt: new Date().toISOString(), exclude };
    const guardMemo: ScanRootGuardMemo = { ...memo, scanId, force: request.force };
    const input: ScanRootGuardInput = {
      scanId,
      scan: {
        root,
        recursive: request.recursive,
        force: request.force,
        extensions: [],
        exclude,
        settleSeconds: this.config.scanSettleSeconds,
        retryOf,
        batchSize: this.config.batchSize,
        window: this.config.window,
        probeTimeoutMs: this.config.probeTimeoutMs,
        scanTimeoutMs,
        // Always in the input, so that a later change of the default leaves running scans alone.
        maxBatchesPerRun: request.maxBatchesPerRun ?? MAX_BATCHES_PER_RUN,
        ...(request.maxParallelFiles !== undefined ? { maxParallelFiles: request.maxParallelFiles } : {}),
        ...(request.thumbnails !== undefined ? { thumbnails: request.thumbnails } : {}),
      },
      memo,
      // The workflow stops itself at its limit with a summary; this is the
      // backstop should it be unable to (no worker at all, say).
      executionTimeoutMs: scanTimeoutMs !== null ? scanTimeoutMs + 5 * 60_000 : null,
    };
    for (let attempt = 1; ; attempt += 1) {
      const release = await this.admission.reserve(guardId);
      try {
        await this.client.workflow.start(GUARD_WORKFLOW_TYPE, {
          workflowId: guardId,
          taskQueue: this.taskQueue,
          args: [input],
          memo: { ...guardMemo },
          // Cleared by the guard once its scan has started: the jobs list finds pending jobs by it.
          typedSearchAttributes: [{ key: scanRootSearchAttribute, value: root }],
          workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
          workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
          staticSummary: `Holds ${root} for one scan at a time`.slice(0, 200),
        });
      } catch (error) {
        release();
        if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
        const held = await this.heldJob(guardId);
        if (held !== null) return { jobId: held, created: false };
        if (attempt >= START_ATTEMPTS) {
          throw new DomainError('UNAVAILABLE', 503, `the previous scan of ${root} is still being closed; try again in a moment`);
        }
        continue;
      }
      // GET finds a job whose scan has not started yet through this row.
      await this.library.createScan({ scanId, root, recursive: request.recursive, force: request.force, retryOf });
      return { jobId: scanId, created: true };
    }
  }

  /**
   * The job a running guard holds, or null when there is none and a start
   * should try again: the guard closed meanwhile, or its scan has ended and
   * the guard (which needs a worker to close) was ended here.
   */
  private async heldJob(guardId: string): Promise<string | null> {
    const guard = await this.describeOrNull(guardId);
    if (guard === null || guard.status.name !== 'RUNNING') return null;
    const memo = (guard.memo ?? {}) as Partial<ScanRootGuardMemo>;
    const children = (guard.raw.pendingChildren ?? []).map((child) => child.workflowId).filter((id): id is string => typeof id === 'string');
    if (memo.scanId === undefined && children.length === 0) {
      // A guard started by an earlier version of this API, whose scan has not
      // started or has ended: only it knows, so ask it as that version did.
      try {
        const claim = await this.client.withDeadline(Date.now() + 1000, () => this.client.workflow.getHandle(guardId).executeUpdate(claimScanUpdate));
        return claim.jobId;
      } catch (error) {
        const closing = error instanceof WorkflowUpdateFailedError && error.cause instanceof ApplicationFailure && error.cause.type === GUARD_CLOSING;
        if (!closing) throw new DomainError('UNAVAILABLE', 503, 'the root is held by a scan that no worker has started yet; try again later');
        await this.endGuard(guardId, guard.runId, 'its scan has ended; a new scan of the root replaces it');
        return null;
      }
    }
    const scanId = memo.scanId ?? (children[0] as string);
    // Not trusted to mean running: the guard lists its child as pending until
    // the server has recorded the child's end in the guard's history, a moment
    // after the scan ended (a retry sent right then would get the ended scan).
    const scan = await this.describeOrNull(scanId);
    if (scan === null) {
      // Pending. The API that started it may have stopped before recording it: record it now (idempotent).
      if (memo.scanId !== undefined && memo.path !== undefined) {
        await this.library.createScan({ scanId, root: memo.path, recursive: memo.recursive ?? true, force: memo.force ?? false, retryOf: memo.retryOf ?? null });
      }
      return scanId;
    }
    if (scan.status.name === 'RUNNING') return scanId;
    // The scan has ended; its guard has only to close, which takes a worker.
    // End exactly this run so the next attempt starts a fresh guard: two
    // starts racing here end the same run, and only one of them then starts
    // the new guard, the other answering with its scan.
    await this.endGuard(guardId, guard.runId, 'its scan has ended; a new scan of the root replaces it');
    return null;
  }

  /** Terminates one run of a guard (needs no worker); a run that has ended meanwhile is fine. */
  private async endGuard(guardId: string, runId: string, reason: string): Promise<void> {
    await this.client.workflow
      .getHandle(guardId, runId)
      .terminate(reason)
      .catch((error: unknown) => {
        if (!(error instanceof WorkflowNotFoundError)) throw error;
      });
  }

  /**
   * The job body of a scan; NOT_FOUND when there is no such scan. Reads of
   * one job within JOB_CACHE_MS share one answer from Temporal.
   */
  async get(jobId: string): Promise<JobBody> {
    const now = Date.now();
    const recent = this.recentJobs.get(jobId);
    if (recent !== undefined && now < recent.until) return recent.body;
    if (this.recentJobs.size >= JOB_CACHE_SIZE) {
      for (const [id, entry] of this.recentJobs) if (now >= entry.until) this.recentJobs.delete(id);
    }
    // Reads while Temporal answers share the answer; once it is in, it serves for its job's share of age.
    const entry = { until: now + JOB_CACHE_MS, body: this.readJob(jobId) };
    this.recentJobs.set(jobId, entry);
    // A failed read (NOT_FOUND, Temporal unreachable) is not kept: the next
    // read tries again. Neither is a job about to end (cancel requested,
    // finalizing): whoever waits for its end sees it without the cache's delay.
    entry.body.then(
      (body) => {
        const age = now - Date.parse(body.created_at);
        entry.until = now + Math.min(JOB_CACHE_MS, Number.isFinite(age) ? Math.max(0, age * JOB_CACHE_AGE_SHARE) : 0);
        if ((body.cancel_requested || body.phase === 'finalizing') && this.recentJobs.get(jobId) === entry) this.recentJobs.delete(jobId);
      },
      () => {
        if (this.recentJobs.get(jobId) === entry) this.recentJobs.delete(jobId);
      },
    );
    return entry.body;
  }

  /** The job body as Temporal and the library tell it now (get without its cache). */
  private async readJob(jobId: string): Promise<JobBody> {
    const description = await this.describeOrNull(jobId);
    if (description === null) return this.unstartedJob(jobId);
    if (description.type !== SCAN_WORKFLOW_TYPE) throw notFound(`job ${jobId}`);
    // Two events (started, first task scheduled) mean no worker has picked the scan up yet.
    const firstRun = description.raw.workflowExecutionInfo?.firstRunId;
    const untouched = description.historyLength <= 2 && (firstRun === undefined || firstRun === null || firstRun === description.runId);
    return this.scanJob(description, { pending: untouched, query: true });
  }

  /**
   * A job without a scan workflow: pending in its root's guard, or ended
   * before its scan started (cancelled while pending). Jobs are known to the
   * library from their start on, so the library says which root, and so
   * which guard, to look at.
   */
  private async unstartedJob(jobId: string): Promise<JobBody> {
    const scan = (await this.library.getScan(jobId)) ?? (await this.recordPendingGuardJob(jobId));
    if (scan === undefined) throw notFound(`job ${jobId}`);
    const guardId = guardIdOf(scan.root);
    const guard = await this.describeOrNull(guardId);
    const holds = guard !== null && (guard.memo as Partial<ScanRootGuardMemo> | undefined)?.scanId === jobId;
    if (holds && guard.status.name === 'RUNNING' && scan.outcome === null) return this.guardJob(guard, 'pending', scan);
    // Not pending: its scan may have started a moment ago.
    const started = await this.describeOrNull(jobId);
    if (started !== null) return this.readJob(jobId);
    // A scheduled run waiting for a slot of MAX_CONCURRENT_SCANS holds the job until it starts the guard.
    const waiting = holds ? null : await this.waitingRun(scan.root, jobId);
    if (waiting !== null && waiting.status.name === 'RUNNING' && scan.outcome === null) return this.guardJob(waiting, 'pending', scan);
    const run = holds ? guard : ((await this.findGuardRun(guardId, jobId)) ?? waiting);
    if (run === null && scan.outcome !== null) {
      // The scan ran, and Temporal has since dropped its history (namespace retention): the library remembers it.
      return this.recordedJob(scan);
    }
    return this.guardJob(run, unstartedJobStatusOf(run?.status.name ?? null, scan.outcome), scan);
  }

  /**
   * A pending job the library does not know yet: one a scheduled run started
   * (its guard, not the API, chose the scan id) or waits for a slot to start
   * (the run publishes it as a guard does), or one whose API stopped
   * before recording it. The jobs list finds such a job by its guard, so GET,
   * cancel and pause find it the same way, among the guards whose scan has
   * not started (a handful at most: MAX_CONCURRENT_SCANS bounds them), and
   * record it, as a start through the API does.
   */
  private async recordPendingGuardJob(jobId: string): Promise<ScanRecord | undefined> {
    if (!/^scan-[0-9a-f-]{36}$/.test(jobId)) return undefined;
    const types = `(WorkflowType = '${GUARD_WORKFLOW_TYPE}' OR WorkflowType = '${SCHEDULED_SCAN_WORKFLOW_TYPE}')`;
    const query = `${types} AND ExecutionStatus = 'Running' AND ScanRoot IS NOT NULL AND TaskQueue = '${this.taskQueue.replace(/'/g, "''")}'`;
    for await (const execution of this.client.workflow.list({ query })) {
      const memo = (execution.memo ?? {}) as Partial<ScanRootGuardMemo>;
      if (memo.scanId !== jobId || memo.path === undefined) continue;
      await this.library.createScan({ scanId: jobId, root: memo.path, recursive: memo.recursive ?? true, force: memo.force ?? false, retryOf: memo.retryOf ?? null });
      return this.library.getScan(jobId);
    }
    return undefined;
  }

  /** The scheduled run that waits (or waited) for a slot as this job, before it started the root's guard. */
  private async waitingRun(root: string, jobId: string): Promise<Execution | null> {
    const query = `WorkflowType = '${SCHEDULED_SCAN_WORKFLOW_TYPE}' AND ScanRoot = '${root.replace(/'/g, "''")}' AND TaskQueue = '${this.taskQueue.replace(/'/g, "''")}'`;
    for await (const execution of this.client.workflow.list({ query })) {
      if ((execution.memo as Partial<ScanRootGuardMemo> | undefined)?.scanId === jobId) return execution;
    }
    return null;
  }

  /** The run of a root's guard that held a job whose scan never started (it keeps its ScanRoot attribute). */
  private async findGuardRun(guardId: string, jobId: string): Promise<Execution | null> {
    const query = `WorkflowId = '${guardId}' AND WorkflowType = '${GUARD_WORKFLOW_TYPE}' AND ScanRoot IS NOT NULL`;
    for await (const execution of this.client.workflow.list({ query })) {
      if ((execution.memo as Partial<ScanRootGuardMemo> | undefined)?.scanId === jobId) return execution;
    }
    return null;
  }

  /**
   * Requests cancellation; the scan ends as cancelled once its in-flight
   * files are stopped. A pending job (no worker has run anything of it) is
   * ended at once by termination, which needs no worker: a cancel request
   * would wait for one, holding the root and a slot of MAX_CONCURRENT_SCANS.
   */
  async cancel(jobId: string): Promise<JobBody> {
    this.recentJobs.delete(jobId);
    const job = await this.readJob(jobId);
    if (TERMINAL_STATUSES.has(job.status)) {
      throw new DomainError('ALREADY_TERMINAL', 409, `job ${jobId} has already ended (${job.status})`);
    }
    if (job.status !== 'pending') {
      await this.client.workflow.getHandle(jobId).cancel();
      // Read again by the next get: the scan now says its cancel was requested.
      this.recentJobs.delete(jobId);
      return { ...job, cancel_requested: true };
    }
    // Recorded first, so the job reads cancelled however the terminations below interleave with a worker.
    await this.library.finishScan(jobId, { outcome: 'cancelled', counts: {}, error: null });
    const guardId = guardIdOf(job.path);
    // Its slot is free at once, for starts through this process too.
    this.admission.forget(guardId);
    // A scheduled run waiting for a slot as this job: ended first, so that it cannot start the guard after the look below.
    const waiting = await this.waitingRun(job.path, jobId);
    if (waiting !== null && waiting.status.name === 'RUNNING') await this.endGuard(waiting.workflowId, waiting.runId, 'job cancelled while it waited for a slot');
    const guard = await this.describeOrNull(guardId);
    if (guard !== null && guard.status.name === 'RUNNING' && (guard.memo as Partial<ScanRootGuardMemo> | undefined)?.scanId === jobId) {
      await this.endGuard(guardId, guard.runId, 'job cancelled before its scan started');
    }
    // A worker may have started the scan just before the guard ended: stop it too.
    const scan = await this.describeOrNull(jobId);
    if (scan !== null && scan.status.name === 'RUNNING') {
      if (scan.historyLength <= 2) await this.client.workflow.getHandle(jobId, scan.runId).terminate('job cancelled before a worker took it');
      else await this.client.workflow.getHandle(jobId).cancel();
    }
    this.recentJobs.delete(jobId);
    return { ...(await this.get(jobId)), cancel_requested: true };
  }

  /** The scan schedules of the same Temporal client and task queue (schedules.ts). */
  schedules(): ScheduleService {
    this.scheduleService ??= new ScheduleService(this.client, this.config, this.taskQueue);
    return this.scheduleService;
  }

  /** Pauses a running scan (see scan-library.ts): ALREADY_TERMINAL, ALREADY_PAUSED, 404 where it does not apply. */
  async pause(jobId: string): Promise<JobBody> {
    return this.setPaused(jobId, true);
  }

  /** Resumes a paused scan where it stopped: ALREADY_TERMINAL, NOT_PAUSED, 404 where it does not apply. */
  async resume(jobId: string): Promise<JobBody> {
    return this.setPaused(jobId, false);
  }

  private async setPaused(jobId: string, pause: boolean): Promise<JobBody> {
    this.recentJobs.delete(jobId);
    const job = await this.readJob(jobId);
    const terminal = (status: JobStatus): DomainError => new DomainError('ALREADY_TERMINAL', 409, `job ${jobId} has already ended (${status})`);
    if (TERMINAL_STATUSES.has(job.status)) throw terminal(job.status);
    if (pause && (job.status === 'paused' || job.pause_requested)) throw new DomainError('ALREADY_PAUSED', 409, `job ${jobId} is already paused`);
    if (!pause && job.status !== 'paused' && !job.pause_requested) throw new DomainError('NOT_PAUSED', 409, `job ${jobId} is not paused (${job.status})`);
    // A pending job holds the pause until its scan starts, which then begins paused.
    const startedMeanwhile = job.status === 'pending' && !(await this.setPendingPaused(jobId, job.path, pause));
    if (job.status === 'pending' && !startedMeanwhile) {
      this.recentJobs.delete(jobId);
      return { ...job, pause_requested: pause };
    }
    try {
      // The workflow's validator decides (a pause racing another, a scan that has just begun finishing).
      await this.client.withDeadline(Date.now() + 30_000, () =>
        this.client.workflow.getHandle(jobId).executeUpdate(pause ? pauseScanUpdate : resumeScanUpdate),
      );
    } catch (error) {
      if (error instanceof WorkflowUpdateFailedError && error.cause instanceof ApplicationFailure) {
        switch (error.cause.type) {
          case PauseRejection.AlreadyPaused:
            // Its scan started paused: the pause sent while it was pending has taken.
            if (startedMeanwhile && pause) return this.get(jobId);
            throw new DomainError('ALREADY_PAUSED', 409, `job ${jobId} is already paused`);
          case PauseRejection.NotPaused:
            if (startedMeanwhile && !pause) return this.get(jobId);
            throw new DomainError('NOT_PAUSED', 409, `job ${jobId} is not paused`);
          case PauseRejection.Finishing:
            throw new DomainError('ALREADY_TERMINAL', 409, `job ${jobId} is finishing; its probing is over`);
          case PauseRejection.NotPausable:
            throw new DomainError('INVALID_REQUEST', 409, `job ${jobId} started before scans could be paused`);
        }
      }
      const now = await this.readJob(jobId);
      if (TERMINAL_STATUSES.has(now.status)) throw terminal(now.status);
      if (error instanceof WorkflowUpdateFailedError) throw error;
      throw new DomainError('UNAVAILABLE', 503, `no worker answered the ${pause ? 'pause' : 'resume'} of job ${jobId}; try again later`);
    }
    this.recentJobs.delete(jobId);
    return this.get(jobId);
  }

  /**
   * Sends a pause (or resume) of a pending job to what holds it: the root's
   * guard, or the scheduled run waiting for a slot (a signal, recorded
   * without a worker); the scan then starts paused. False when the scan has
   * started meanwhile, and so is to be paused as a running one.
   */
  private async setPendingPaused(jobId: string, root: string, pause: boolean): Promise<boolean> {
    const guardId = guardIdOf(root);
    const signalGuard = async (): Promise<boolean> => {
      const guard = await this.describeOrNull(guardId);
      if (guard === null || guard.status.name !== 'RUNNING' || (guard.memo as Partial<ScanRootGuardMemo> | undefined)?.scanId !== jobId) return false;
      await this.client.workflow.getHandle(guardId, guard.runId).signal(pendingPauseSignal, pause);
      return true;
    };
    let sent = await signalGuard();
    if (!sent) {
      const waiting = await this.waitingRun(root, jobId);
      if (waiting !== null && waiting.status.name === 'RUNNING') {
        await this.client.workflow.getHandle(waiting.workflowId, waiting.runId).signal(pendingPauseSignal, pause);
        sent = true;
        // It may have started the guard just before the signal: the guard holds the pause then.
        await signalGuard();
      }
    }
    // A scan that started before the guard took the signal did not start paused.
    if ((await this.describeOrNull(jobId)) !== null) return false;
    if (!sent) throw new DomainError('UNAVAILABLE', 503, `job ${jobId} is between its guard and its scan; try again in a moment`);
    return true;
  }

  /**
   * Starts a new scan of what a finished scan failed on or never reached.
   * NOT_TERMINAL while the scan runs; NOTHING_TO_RETRY after a clean completion.
   */
  async retry(jobId: string): Promise<ScanClaim> {
    const job = await this.readJob(jobId);
    if (!TERMINAL_STATUSES.has(job.status)) {
      throw new DomainError('NOT_TERMINAL', 409, `job ${jobId} is still ${job.status}; cancel it or wait for it to end`);
    }
    if (job.status === 'completed' && job.counts.failed === 0) {
      throw new DomainError('NOTHING_TO_RETRY', 409, `job ${jobId} completed without file errors; start a new scan instead`);
    }
    // The retry keeps the scan's exclusions, from the memo of its scan or, before it started, of its guard.
    const keptExclude = await this.keptExcludeOf(jobId, job.path);
    // A job with no scan run (cancelled before its scan started, or one whose
    // history Temporal has dropped) has no file records to go by: it is started afresh.
    if (job.temporal.run_id === '') return this.start({ root: job.path, recursive: job.recursive, force: false, keptExclude });
    // Its file records were pruned (SCAN_RECORD_RETENTION): what failed is no longer known.
    if ((await this.library.getScan(jobId))?.filesPrunedAt) {
      throw new DomainError('NOTHING_TO_RETRY', 409, `job ${jobId} is older than SCAN_RECORD_RETENTION and its file records are gone; start a new scan instead`);
    }
    return this.start({ root: job.path, recursive: job.recursive, force: true, retryOf: jobId, keptExclude });
  }

  /** The exclusion list a job ran with, when it was kept (ScanMemo.exclude). */
  private async keptExcludeOf(jobId: string, root: string): Promise<string[] | undefined> {
    const scan = await this.describeOrNull(jobId);
    const memo = (scan?.memo ?? (await this.findGuardRun(guardIdOf(root), jobId))?.memo ?? {}) as Partial<ScanMemo>;
    return Array.isArray(memo.exclude) ? memo.exclude.filter((glob): glob is string => typeof glob === 'string') : undefined;
  }

  /**
   * Jobs newest first (by created_at), a page at a time, from Temporal
   * visibility: the status filter is part of the visibility queries, and
   * each body is built from its listing row (whose memo carries the
   * published progress) and the library, with no call to Temporal per job.
   *
   * Visibility orders running executions by start time and closed ones by
   * close time, newest first, and SQL visibility takes no ORDER BY. Both
   * times are upper bounds of a job's created_at (it is stamped before its
   * guard starts), which is what makes a page exact without reading either
   * listing to its end (see readListing). The two listings are merged; the
   * page token keeps the cursor and, per listing, the time to resume from,
   * so a deep page does not read the listings from the top.
   */
  async list(options: { status?: JobStatus; limit: number; pageToken?: string }): Promise<{ jobs: JobBody[]; nextPageToken: string | null }> {
    const position: ListPosition = options.pageToken ? this.parsePosition(options.pageToken) : { cursor: null, running: 'top', closed: 'top' };
    const queries = jobListQueriesOf(options.status, { scanType: SCAN_WORKFLOW_TYPE, guardType: GUARD_WORKFLOW_TYPE, scheduledType: SCHEDULED_SCAN_WORKFLOW_TYPE, taskQueue: this.taskQueue });
    const read = async (kind: 'running' | 'closed'): Promise<Listing | null> => {
      const query = queries[kind];
      const from = position[kind];
      if (query === null || from === null) return null;
      return this.readListing(query, from, kind, position.cursor, options);
    };
    const [running, closed] = await Promise.all([read('running'), read('closed')]);
    // Merge; a job listed both as its guard and as its scan (for the moment between the scan's start and the guard clearing its marker) counts once.
    const all = [...(running?.rows ?? []), ...(closed?.rows ?? [])].sort(newestFirst);
    const selected: ListedRow[] = [];
    const consumed = new Set<ListedRow>();
    for (const row of all) {
      const last = selected[selected.length - 1];
      if (last !== undefined && last.jobId === row.jobId) {
        consumed.add(row);
        continue;
      }
      if (selected.length >= options.limit) break;
      selected.push(row);
      consumed.add(row);
    }
    // Resume each listing at its newest row not yet returned, and no lower
    // than where its reading stopped: below that, rows may not have been read.
    const resume = (listing: Listing | null): number | null => {
      if (listing === null) return null;
      const waiting = listing.rows.filter((row) => !consumed.has(row)).map((row) => row.bound);
      const newest = waiting.length > 0 ? Math.max(...waiting) : null;
      if (listing.complete) return newest;
      return newest === null ? listing.readDownTo : Math.max(newest, listing.readDownTo);
    };
    const last = selected[selected.length - 1];
    const next: ListPosition = {
      cursor: last ? [last.key, last.jobId] : position.cursor,
      running: resume(running),
      closed: resume(closed),
    };
    const jobs = await Promise.all(
      selected.map(async (row) => {
        const info = this.executionOfRow(row.raw);
        if (!row.isGuard) return this.scanJob(info, { pending: false, query: false });
        const scan = await this.library.getScan(row.jobId);
        return this.guardJob(info, info.status.name === 'RUNNING' ? 'pending' : unstartedJobStatusOf(info.status.name, scan?.outcome), scan ?? null);
      }),
    );
    const more = next.running !== null || next.closed !== null;
    return { jobs, nextPageToken: more ? Buffer.from(JSON.stringify(next)).toString('base64url') : null };
  }

  /**
   * Reads one listing (newest start or close time first) from a position
   * until it holds every job that can be among the `limit` newest after the
   * cursor. Once it has `limit` of them, K being the created_at of the
   * limit-th: a row further down started or closed before K (less the clock
   * skew) was created before K and cannot enter, so reading stops there.
   * Where scans overlap (a burst of starts, scans closing long after they
   * were created), the running listing still stops soon (start order is
   * nearly creation order), but the closed one might read far: so it reads
   * the rest of what can enter with a second query, narrowed to rows that
   * started after K (created_at <= start time) and closed before the point
   * reached. Returns the rows after the cursor, the time read down to (the
   * position to resume from), and whether the listing was read to its end.
   */
  private async readListing(
    baseQuery: string,
    from: number | 'top',
    kind: 'running' | 'closed',
    cursor: [number, string] | null,
    options: { status?: JobStatus; limit: number },
  ): Promise<Listing> {
    const field = kind === 'running' ? 'StartTime' : 'CloseTime';
    // Inclusive, a millisecond wide: rows at the boundary already returned are behind the cursor.
    const atMost = (ms: number): string => ` AND ${field} <= '${new Date(ms + 1).toISOString()}'`;
    const query = from === 'top' ? baseQuery : baseQuery + atMost(from);
    const rows: ListedRow[] = [];
    const seen = new Set<string>();
    const take = async (executions: RawWorkflowExecutionInfo[]): Promise<number> => {
      let lastBound = Infinity;
      const kept: ListedRow[] = [];
      for (const raw of executions) {
        const start = msOf(raw.startTime) ?? 0;
        lastBound = kind === 'running' ? start : (msOf(raw.closeTime) ?? start);
        const runId = raw.execution?.runId ?? '';
        if (seen.has(runId)) continue;
        seen.add(runId);
        const row = this.listedRow(raw, lastBound, start);
        if (row !== null && isAfterCursor(row, cursor)) kept.push(row);
      }
      // Visibility cannot tell a scan that hit its time limit from a failed one; the library can.
      const split = options.status === 'failed' || options.status === 'timeout' || options.status === 'running' || options.status === 'paused';
      const keep = await Promise.all(kept.map((row) => (split ? this.hasStatus(row, options.status as JobStatus) : true)));
      kept.forEach((row, i) => {
        if (keep[i]) rows.push(row);
      });
      return lastBound;
    };
    const limitth = (): number | null => (rows.length >= options.limit ? ([...rows].sort(newestFirst)[options.limit - 1] as ListedRow).key : null);
    // A few rows past the page: stopping takes a row older than the page's last.
    const pageSize = Math.min(options.limit + 10, 1000);
    let token: Uint8Array | undefined;
    for (;;) {
      let response;
      try {
        response = await this.listPage(query, pageSize, token);
      } catch (error) {
        // A position the server refuses came from a forged token.
        if (from !== 'top' && token === undefined) throw new DomainError('INVALID_REQUEST', 400, 'page_token is not valid');
        throw error;
      }
      const lastBound = await take(response.executions ?? []);
      token = response.nextPageToken && response.nextPageToken.length > 0 ? response.nextPageToken : undefined;
      if (token === undefined) return { rows, readDownTo: lastBound, complete: true };
      const k = limitth();
      if (k === null) continue;
      if (lastBound < k - CLOCK_SKEW_MS) return { rows, readDownTo: lastBound, complete: false };
      if (kind === 'closed') {
        const narrowed = `${baseQuery} AND StartTime >= '${new Date(k - CLOCK_SKEW_MS).toISOString()}'${atMost(lastBound)}`;
        let next: Uint8Array | undefined;
        do {
          const more = await this.listPage(narrowed, 1000, next);
          await take(more.executions ?? []);
          next = more.nextPageToken && more.nextPageToken.length > 0 ? more.nextPageToken : undefined;
        } while (next !== undefined);
        return { rows, readDownTo: lastBound, complete: false };
      }
    }
  }

  private async listPage(query: string, pageSize: number, nextPageToken: Uint8Array | undefined) {
    return this.client.workflowService.listWorkflowExecutions({
      namespace: this.config.temporal.namespace,
      pageSize,
      query,
      ...(nextPageToken ? { nextPageToken } : {}),
    });
  }

  /**
   * The parts of a raw listing row a job body reads, decoded with the
   * client's payload converter: the SDK's public API lists executions only
   * through an iterator that hides the page token the list resumes from.
   */
  private executionOfRow(raw: RawWorkflowExecutionInfo): Execution {
    const converter = this.client.options.loadedDataConverter.payloadConverter;
    const memo: Record<string, unknown> = {};
    for (const [name, payload] of Object.entries(raw.memo?.fields ?? {})) {
      try {
        memo[name] = converter.fromPayload(payload);
      } catch {
        // A field this version cannot read is left out, as an absent one.
      }
    }
    const date = (timestamp: Parameters<typeof msOf>[0]): Date | undefined => {
      const ms = msOf(timestamp);
      return ms === null ? undefined : new Date(ms);
    };
    return {
      workflowId: raw.execution?.workflowId ?? '',
      runId: raw.execution?.runId ?? '',
      status: { name: STATUS_NAMES[raw.status ?? 0] ?? 'UNKNOWN' },
      startTime: date(raw.startTime) ?? new Date(0),
      closeTime: date(raw.closeTime),
      memo,
    };
  }

  /** A listing row as the list orders it; null for a row that is no job. */
  private listedRow(raw: RawWorkflowExecutionInfo, bound: number, startMs: number): ListedRow | null {
    const fields = raw.memo?.fields ?? {};
    const memoString = (name: string): string | undefined => {
      const payload = fields[name];
      if (!payload) return undefined;
      try {
        const value = this.client.options.loadedDataConverter.payloadConverter.fromPayload(payload);
        return typeof value === 'string' ? value : undefined;
      } catch {
        return undefined;
      }
    };
    // A scheduled run listed is one waiting for a slot: its memo names its pending job, as a guard's does.
    const isGuard = raw.type?.name === GUARD_WORKFLOW_TYPE || raw.type?.name === SCHEDULED_SCAN_WORKFLOW_TYPE;
    const jobId = isGuard ? memoString('scanId') : (raw.execution?.workflowId ?? undefined);
    if (jobId === undefined) return null;
    const created = Date.parse(memoString('createdAt') ?? '');
    return { raw, jobId, key: Number.isFinite(created) ? created : startMs, isGuard, bound };
  }

  /** Whether a closed row has the job status asked for (failed or timeout: the library's recorded outcome decides). */
  private async hasStatus(row: ListedRow, status: JobStatus): Promise<boolean> {
    const name = STATUS_NAMES[row.raw.status ?? 0] ?? 'UNKNOWN';
    if (row.isGuard) return unstartedJobStatusOf(name, null) === status;
    if (name === 'RUNNING') {
      // Running or paused: the progress the scan publishes in its memo says which.
      const payload = row.raw.memo?.fields?.progress;
      let progress: { paused?: boolean; pauseRequested?: boolean } | null = null;
      try {
        progress = payload
          ? (this.client.options.loadedDataConverter.payloadConverter.fromPayload(payload) as { paused?: boolean; pauseRequested?: boolean })
          : null;
      } catch {
        progress = null;
      }
      return liveJobStatusOf(progress) === status;
    }
    const outcome = name === 'FAILED' ? (await this.library.getScan(row.jobId))?.outcome : null;
    return jobStatusOf(name, outcome) === status;
  }

  private parsePosition(token: string): ListPosition {
    try {
      const value = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as ListPosition;
      // A place becomes a timestamp in a visibility query: it must be one a Date can hold (±8.64e15 ms), or toISOString throws.
      const placeOk = (place: unknown): boolean => place === null || place === 'top' || (typeof place === 'number' && Number.isFinite(place) && Math.abs(place) < 8.64e15);
      const cursorOk =
        value.cursor === null || (Array.isArray(value.cursor) && Number.isFinite(value.cursor[0]) && typeof value.cursor[1] === 'string');
      if (typeof value === 'object' && value !== null && cursorOk && placeOk(value.running) && placeOk(value.closed)) return value;
    } catch {
      // Falls through to the error below.
    }
    throw new DomainError('INVALID_REQUEST', 400, 'page_token is not valid');
  }

  private async describeOrNull(workflowId: string): Promise<WorkflowExecutionDescription | null> {
    try {
      return await this.client.workflow.getHandle(workflowId).describe();
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return null;
      throw error;
    }
  }

  /** The body of a job whose scan has not started (pending) or never did, from its guard's memo and the library. */
  private guardJob(guard: Execution | null, status: JobStatus, scan: ScanRecord | null): JobBody {
    const memo = (guard?.memo ?? {}) as Partial<ScanRootGuardMemo>;
    const jobId = memo.scanId ?? scan?.scanId ?? '';
    const terminal = TERMINAL_STATUSES.has(status);
    return {
      job_id: jobId,
      status,
      progress: terminal ? 0 : null,
      result: terminal ? { scanned: 0, new: 0, updated: 0, skipped: 0, errors: [] } : null,
      error: status === 'failed' || status === 'timeout' ? (scan?.error ?? 'the scan never started: its root guard ended first') : null,
      path: memo.path ?? scan?.root ?? '',
      recursive: memo.recursive ?? scan?.recursive ?? true,
      phase: terminal ? 'done' : 'discovering',
      counts: zeroCounts(),
      rate_per_s: 0,
      eta_seconds: null,
      cancel_requested: status === 'cancelled',
      // A pause sent while the scan had not started (held by its guard or scheduled run).
      pause_requested: !terminal && memo.pauseRequested === true,
      retry_of: memo.retryOf ?? scan?.retryOf ?? null,
      created_at: memo.createdAt ?? scan?.createdAt ?? guard?.startTime.toISOString() ?? '',
      finished_at: terminal ? (scan?.finishedAt ?? guard?.closeTime?.toISOString() ?? null) : null,
      // The scan has no run yet: the link shows the guard it waits in.
      temporal: { workflow_id: jobId, run_id: '', ui_url: guard ? this.uiUrl(guard.workflowId, guard.runId) : '' },
    };
  }

  /** The body of a finished scan whose Temporal history is gone: all from the library. */
  private async recordedJob(scan: ScanRecord): Promise<JobBody> {
    const status = jobStatusOf(scan.outcome === 'completed' ? 'COMPLETED' : scan.outcome === 'cancelled' ? 'CANCELLED' : 'FAILED', scan.outcome);
    const counts = this.countsOf(scan.counts) ?? zeroCounts();
    const errors = await this.library.scanErrors(scan.scanId, MAX_SUMMARY_ERRORS, 0);
    return {
      ...this.guardJob(null, status, scan),
      counts,
      progress: status === 'completed' ? 1 : counts.discovered === 0 ? 0 : Math.min((counts.probed + counts.skipped) / counts.discovered, 0.999),
      result: { scanned: counts.probed + counts.skipped, new: counts.new, updated: counts.updated, skipped: counts.skipped, errors: errors.errors },
    };
  }

  /**
   * The body of a scan workflow, from a describe or a listing row: both
   * carry the memo with the published progress. `query`: a scan that
   * publishes none (started before it did) is asked through a worker.
   */
  private async scanJob(execution: Execution, options: { pending: boolean; query: boolean }): Promise<JobBody> {
    const memo = (execution.memo ?? {}) as Partial<ScanMemo> & { progress?: ScanProgress };
    const jobId = execution.workflowId;
    const ended = execution.status.name !== 'RUNNING' && execution.status.name !== 'CONTINUED_AS_NEW';
    // A scan that ended normally published its final counts (the library's
    // totals, from finishScan) in its memo. The library record is needed for
    // the rest: a failed scan's outcome and error, and the counts of scans
    // that ended without publishing them (terminated, or started before memo progress).
    const finalCounts = ended && memo.progress?.phase === 'done' ? this.countsOf(memo.progress.counts as unknown as Record<string, number>) : null;
    const scan = execution.status.name === 'FAILED' || (ended && finalCounts === null) ? await this.library.getScan(jobId) : undefined;
    let status = jobStatusOf(execution.status.name, scan?.outcome);
    let live: ScanProgress | null = null;
    if (status === 'running') {
      if (options.pending) {
        status = 'pending';
      } else {
        // Published by the workflow at every step; older scans answer the query.
        live = memo.progress ?? (options.query ? await this.queryProgress(jobId) : null);
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
      counts = finalCounts ?? this.countsOf(scan?.counts) ?? ((await this.library.scanTotals(jobId)).counts);
      // Every file error counts as failed: with none, there is nothing to read.
      const errors = counts.failed === 0 ? [] : (await this.library.scanErrors(jobId, MAX_SUMMARY_ERRORS, 0)).errors;
      result = {
        scanned: counts.probed + counts.skipped,
        new: counts.new,
        updated: counts.updated,
        skipped: counts.skipped,
        errors,
      };
      progress = status === 'completed' ? 1 : counts.discovered === 0 ? 0 : Math.min((counts.probed + counts.skipped) / counts.discovered, 0.999);
    } else if (live === null && status === 'running') {
      counts = (await this.library.scanTotals(jobId)).counts;
    } else if (phase === 'discovering' && (status === 'running' || status === 'paused')) {
      counts = { ...counts, discovered: (await this.library.countScanFiles(jobId)).discovered };
    }
    // A finished scan reports its average rate over its whole run.
    const createdAt = memo.createdAt ?? execution.startTime.toISOString();
    const runSeconds = execution.closeTime ? (execution.closeTime.getTime() - Date.parse(createdAt)) / 1000 : 0;
    const ratePerS = terminal ? (runSeconds > 0 ? Math.round((counts.probed / runSeconds) * 10) / 10 : 0) : (live?.ratePerS ?? 0);
    return {
      job_id: jobId,
      status,
      progress,
      result,
      error: status === 'failed' || status === 'timeout' ? (scan?.error ?? `scan ${execution.status.name.toLowerCase()}`) : null,
      path: memo.path ?? '',
      recursive: memo.recursive ?? true,
      phase,
      counts,
      rate_per_s: ratePerS,
      eta_seconds: live?.etaSeconds ?? null,
      cancel_requested: status === 'cancelled' || (live?.cancelRequested ?? false),
      pause_requested: status === 'running' && live?.pauseRequested === true,
      retry_of: memo.retryOf ?? null,
      created_at: createdAt,
      finished_at: execution.closeTime?.toISOString() ?? null,
      temporal: { workflow_id: jobId, run_id: execution.runId, ui_url: this.uiUrl(jobId, execution.runId) },
    };
  }

  private uiUrl(workflowId: string, runId: string): string {
    return `${this.config.temporal.uiUrl}/namespaces/${encodeURIComponent(this.config.temporal.namespace)}/workflows/${encodeURIComponent(workflowId)}/${runId}/history`;
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
    // Only scans with a thumbnail phase have this count.
    if (stored.thumbnails !== undefined) counts.thumbnails = Number(stored.thumbnails);
    return counts;
  }
}
