/**
 * The scan service: starts scans as workflows, reads them back as the job
 * bodies of API.md, cancels, pauses, resumes, retries and lists them, and
 * keeps their schedules. The API's only way to Temporal.
 *
 * A start claims the root by starting its guard workflow (guard.ts) under an
 * id derived from the root, with a plain start: the service chooses the
 * scan's id and gives it to the guard in its input and memo, so the answer
 * needs only the server to record the guard, never a worker to run it. The
 * scan's library row is written right after; until a worker has started the
 * scan, it reads `pending`.
 */
import { randomUUID } from 'node:crypto';
import { type Client, WorkflowExecutionAlreadyStartedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure, WorkflowIdConflictPolicy, WorkflowIdReusePolicy } from '@temporalio/common';
import type { Config } from '../config';
import type { Library } from '../library/library';
import type { ScanMemo, ScanRootGuardInput, ScanRootGuardMemo } from '../model/types';
import { GUARD_WORKFLOW_TYPE, PauseRejection, pauseScanUpdate, pendingPauseSignal, resumeScanUpdate, scanRootSearchAttribute } from '../workflows/definitions';
import { ScanAdmission } from './admission';
import { ScanError } from './errors';
import { guardIdOf, holderMemoOf, RootGuards } from './guard';
import type { JobBody, StartedScan, StartScanRequest } from './job';
import { JobList, type ListRequest } from './job-list';
import { JobReader } from './job-reader';
import { TERMINAL_STATUSES, type JobStatus } from './job-status';
import { guardedScanOf } from './scan-input';
import { ScheduleService } from './schedules';

/** A start that keeps finding the root's guard closing gives up after this many tries. */
const START_ATTEMPTS = 5;

/** How long a pause or resume waits for a worker to answer. */
const PAUSE_DEADLINE_MS = 30_000;

export class ScanService {
  /** Admission of new roots under MAX_CONCURRENT_SCANS: the one place every way of starting a scan asks. */
  private readonly admission: ScanAdmission;
  private readonly guards: RootGuards;
  private readonly reader: JobReader;
  private readonly jobs: JobList;
  private scheduleService: ScheduleService | undefined;

  constructor(
    private readonly client: Client,
    private readonly config: Config,
    private readonly library: Library,
    private readonly taskQueue: string = config.temporal.taskQueue,
  ) {
    this.admission = new ScanAdmission(client, config.maxConcurrentScans, taskQueue);
    this.guards = new RootGuards(client, library, taskQueue);
    this.reader = new JobReader(client, config, library, this.guards);
    this.jobs = new JobList(client, library, this.reader, this.guards, taskQueue);
  }

  /**
   * Starts a scan of a root, or returns the one already running or pending
   * for it (`created: false`). Answers without waiting for a worker. Starts
   * of different roots run side by side; two starts of one root race on the
   * guard's workflow id, which the server gives to one of them only.
   */
  async start(request: StartScanRequest): Promise<StartedScan> {
    const { root } = request;
    const guardId = guardIdOf(root);
    const scanId = `scan-${randomUUID()}`;
    const { scan, executionTimeoutMs } = guardedScanOf(this.config, request);
    const memo: ScanMemo = {
      path: root,
      recursive: request.recursive,
      retryOf: scan.retryOf,
      createdAt: new Date().toISOString(),
      exclude: scan.exclude ?? [],
      // Kept for a retry, which asks for what this request asked.
      ...(request.maxParallelFiles !== undefined ? { maxParallelFiles: request.maxParallelFiles } : {}),
      ...(request.thumbnails !== undefined ? { thumbnails: request.thumbnails } : {}),
    };
    const guardMemo: ScanRootGuardMemo = { ...memo, scanId, force: request.force };
    const input: ScanRootGuardInput = { scanId, scan, memo, executionTimeoutMs };
    for (let attempt = 1; ; attempt += 1) {
      const release = await this.admission.reserve(guardId);
      try {
        await this.client.workflow.start(GUARD_WORKFLOW_TYPE, {
          workflowId: guardId,
          taskQueue: this.taskQueue,
          args: [input],
          memo: { ...guardMemo },
          // Cleared by the guard once its scan has started: pending scans are found by it.
          typedSearchAttributes: [{ key: scanRootSearchAttribute, value: root }],
          workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
          workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
          staticSummary: `Holds ${root} for one scan at a time`.slice(0, 200),
        });
      } catch (error) {
        release();
        if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
        const held = await this.guards.holder(guardId);
        if (held !== null) return { scanId: held, created: false };
        if (attempt >= START_ATTEMPTS) throw new ScanError('BUSY', `the previous scan of ${root} is still being closed; try again in a moment`);
        continue;
      }
      // The scan's row from its start on: GET and the jobs list find it by this.
      await this.guards.record(scanId, guardMemo);
      return { scanId, created: true };
    }
  }

  /** The job body of a scan; NOT_FOUND when there is none. Reads within a moment share one answer (JobReader.get). */
  async get(scanId: string): Promise<JobBody> {
    return this.reader.get(scanId);
  }

  /** Scans newest first, a page at a time, from the library (see job-list.ts). */
  async list(request: ListRequest): Promise<{ jobs: JobBody[]; nextPageToken: string | null }> {
    return this.jobs.list(request);
  }

  /** The scan schedules of the same Temporal client and task queue (schedules.ts). */
  schedules(): ScheduleService {
    this.scheduleService ??= new ScheduleService(this.client, this.config, this.taskQueue);
    return this.scheduleService;
  }

  /**
   * Runs a schedule now: the scan its run started, or, when the root was
   * held, the scan holding it (or, when that one has just ended, a scan
   * started with everything the schedule's request gave).
   */
  async triggerSchedule(scheduleId: string): Promise<StartedScan & { runId: string }> {
    const schedules = this.schedules();
    const run = await schedules.trigger(scheduleId);
    if (run.scanId === null) return { ...(await this.start(await schedules.scanRequestOf(scheduleId))), runId: run.runId };
    // Its row from now on, as a start's (the run's own first activity would write it later).
    const schedule = await schedules.get(scheduleId);
    await this.library.createScan({ scanId: run.scanId, root: schedule.path, recursive: schedule.recursive, force: schedule.force, retryOf: null });
    return { scanId: run.scanId, created: true, runId: run.runId };
  }

  /**
   * Requests cancellation; the scan ends as cancelled once its in-flight
   * files are stopped. A pending scan (no worker has run anything of it) is
   * ended at once by termination, which needs no worker: a cancel request
   * would wait for one, holding the root and a slot of MAX_CONCURRENT_SCANS.
   */
  async cancel(scanId: string): Promise<JobBody> {
    this.forget(scanId);
    const job = await this.reader.read(scanId);
    if (TERMINAL_STATUSES.has(job.status)) throw alreadyEnded(scanId, job.status);
    if (job.status !== 'pending') {
      await this.client.workflow.getHandle(scanId).cancel();
      // Read again by the next get: the scan now says its cancel was requested.
      this.forget(scanId);
      return { ...job, cancel_requested: true };
    }
    // Recorded first, so the scan reads cancelled however the terminations below interleave with a worker.
    await this.library.finishScan(scanId, { outcome: 'cancelled', counts: {}, error: null });
    // Its slot is free at once, for starts through this process too.
    this.admission.forget(guardIdOf(job.path));
    // A scheduled run waiting for a slot as this scan: ended first, so that it cannot start the guard after the look below.
    const waiting = await this.guards.waitingRun(job.path, scanId);
    if (waiting !== null && waiting.status.name === 'RUNNING') await this.guards.end(waiting.workflowId, waiting.runId, 'scan cancelled while it waited for a slot');
    const guard = await this.guards.holdingGuard(job.path, scanId);
    if (guard !== null) await this.guards.end(guard.workflowId, guard.runId, 'scan cancelled before it started');
    // A worker may have started the scan just before the guard ended: stop it too.
    const scan = await this.guards.describeOrNull(scanId);
    if (scan !== null && scan.status.name === 'RUNNING') {
      if (scan.historyLength <= 2) await this.client.workflow.getHandle(scanId, scan.runId).terminate('scan cancelled before a worker took it');
      else await this.client.workflow.getHandle(scanId).cancel();
    }
    this.forget(scanId);
    return { ...(await this.get(scanId)), cancel_requested: true };
  }

  /** Pauses a running scan (see scan-library.ts): ALREADY_TERMINAL, ALREADY_PAUSED, NOT_FOUND where it does not apply. */
  async pause(scanId: string): Promise<JobBody> {
    return this.setPaused(scanId, true);
  }

  /** Resumes a paused scan where it stopped: ALREADY_TERMINAL, NOT_PAUSED, NOT_FOUND where it does not apply. */
  async resume(scanId: string): Promise<JobBody> {
    return this.setPaused(scanId, false);
  }

  private async setPaused(scanId: string, pause: boolean): Promise<JobBody> {
    this.forget(scanId);
    const job = await this.reader.read(scanId);
    if (TERMINAL_STATUSES.has(job.status)) throw alreadyEnded(scanId, job.status);
    const alreadyPaused = new ScanError('ALREADY_PAUSED', `job ${scanId} is already paused`);
    if (pause && (job.status === 'paused' || job.pause_requested)) throw alreadyPaused;
    if (!pause && job.status !== 'paused' && !job.pause_requested) throw new ScanError('NOT_PAUSED', `job ${scanId} is not paused (${job.status})`);
    // A pending scan's holder keeps the pause until the scan starts, which then begins paused.
    const startedMeanwhile = job.status === 'pending' && !(await this.setPendingPaused(scanId, job.path, pause));
    if (job.status === 'pending' && !startedMeanwhile) {
      this.forget(scanId);
      return { ...job, pause_requested: pause };
    }
    try {
      // The workflow's validator decides (a pause racing another, a scan that has just begun finishing).
      await this.client.withDeadline(Date.now() + PAUSE_DEADLINE_MS, () =>
        this.client.workflow.getHandle(scanId).executeUpdate(pause ? pauseScanUpdate : resumeScanUpdate),
      );
    } catch (error) {
      if (error instanceof WorkflowUpdateFailedError && error.cause instanceof ApplicationFailure) {
        switch (error.cause.type) {
          case PauseRejection.AlreadyPaused:
            // Its scan started paused: the pause sent while it was pending has taken.
            if (startedMeanwhile && pause) return this.get(scanId);
            throw alreadyPaused;
          case PauseRejection.NotPaused:
            if (startedMeanwhile && !pause) return this.get(scanId);
            throw new ScanError('NOT_PAUSED', `job ${scanId} is not paused`);
          case PauseRejection.Finishing:
            throw new ScanError('ALREADY_TERMINAL', `job ${scanId} is finishing; its probing is over`);
          case PauseRejection.NotPausable:
            throw new ScanError('NOT_PAUSABLE', `job ${scanId} started before scans could be paused`);
        }
      }
      const now = await this.reader.read(scanId);
      if (TERMINAL_STATUSES.has(now.status)) throw alreadyEnded(scanId, now.status);
      if (error instanceof WorkflowUpdateFailedError) throw error;
      throw new ScanError('BUSY', `no worker answered the ${pause ? 'pause' : 'resume'} of job ${scanId}; try again later`);
    }
    this.forget(scanId);
    return this.get(scanId);
  }

  /**
   * Sends a pause (or resume) of a pending scan to what holds it: the root's
   * guard, or the scheduled run waiting for a slot (a signal, recorded
   * without a worker); the scan then starts paused. False when the scan has
   * started meanwhile, and so is to be paused as a running one.
   */
  private async setPendingPaused(scanId: string, root: string, pause: boolean): Promise<boolean> {
    const signalGuard = async (): Promise<boolean> => {
      const guard = await this.guards.holdingGuard(root, scanId);
      if (guard === null) return false;
      await this.client.workflow.getHandle(guard.workflowId, guard.runId).signal(pendingPauseSignal, pause);
      return true;
    };
    let sent = await signalGuard();
    if (!sent) {
      const waiting = await this.guards.waitingRun(root, scanId);
      if (waiting !== null && waiting.status.name === 'RUNNING') {
        await this.client.workflow.getHandle(waiting.workflowId, waiting.runId).signal(pendingPauseSignal, pause);
        sent = true;
        // It may have started the guard just before the signal: the guard holds the pause then.
        await signalGuard();
      }
    }
    // A scan that started before the guard took the signal did not start paused.
    if ((await this.guards.describeOrNull(scanId)) !== null) return false;
    if (!sent) throw new ScanError('BUSY', `job ${scanId} is between its guard and its scan; try again in a moment`);
    return true;
  }

  /** Forgets what this process read of a scan (its body, the live view): the next reads see a change made here. */
  private forget(scanId: string): void {
    this.reader.forget(scanId);
    this.jobs.invalidate();
  }

  /**
   * Starts a new scan of what an ended scan failed on or never reached, with
   * what the ended scan's request asked (exclusions, max_parallel_files,
   * thumbnails). NOT_TERMINAL while the scan runs; NOTHING_TO_RETRY after a
   * clean completion.
   */
  async retry(scanId: string): Promise<StartedScan> {
    const job = await this.reader.read(scanId);
    if (!TERMINAL_STATUSES.has(job.status)) {
      throw new ScanError('NOT_TERMINAL', `job ${scanId} is still ${job.status}; cancel it or wait for it to end`);
    }
    if (job.status === 'completed' && job.counts.failed === 0) {
      throw new ScanError('NOTHING_TO_RETRY', `job ${scanId} completed without file errors; start a new scan instead`);
    }
    const kept = await this.keptRequestOf(scanId, job.path);
    const request: StartScanRequest = { root: job.path, recursive: job.recursive, force: false, ...kept };
    // A scan with no run (cancelled before it started, or one whose history
    // Temporal has dropped) has no file records to go by: it is started afresh.
    if (job.temporal.run_id === '') return this.start(request);
    // Its file records were pruned (SCAN_RECORD_RETENTION): what failed is no longer known.
    if ((await this.library.getScan(scanId))?.filesPrunedAt) {
      throw new ScanError('NOTHING_TO_RETRY', `job ${scanId} is older than SCAN_RECORD_RETENTION and its file records are gone; start a new scan instead`);
    }
    return this.start({ ...request, force: true, retryOf: scanId });
  }

  /** What a scan's request asked beyond its root, as its memo (or, before it started, its guard's) kept it. */
  private async keptRequestOf(scanId: string, root: string): Promise<Pick<StartScanRequest, 'keptExclude' | 'maxParallelFiles' | 'thumbnails'>> {
    const scan = await this.guards.describeOrNull(scanId);
    const memo: Partial<ScanMemo> = scan !== null ? holderMemoOf(scan) : holderMemoOf(await this.guards.guardRunOf(root, scanId));
    return {
      ...(Array.isArray(memo.exclude) ? { keptExclude: memo.exclude.filter((glob): glob is string => typeof glob === 'string') } : {}),
      ...(typeof memo.maxParallelFiles === 'number' ? { maxParallelFiles: memo.maxParallelFiles } : {}),
      ...(typeof memo.thumbnails === 'boolean' ? { thumbnails: memo.thumbnails } : {}),
    };
  }
}

const alreadyEnded = (scanId: string, status: JobStatus): ScanError => new ScanError('ALREADY_TERMINAL', `job ${scanId} has already ended (${status})`);
