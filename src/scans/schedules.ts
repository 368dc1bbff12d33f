/**
 * Scheduled rescans as Temporal Schedules: visible and editable in the
 * Temporal Web UI's Schedules page and in `temporal schedule list`, kept by
 * the Temporal server (so they survive restarts of everything else). Each
 * schedule's action is a `scheduledScan` run (src/workflows/scheduled-scan.ts)
 * that starts the root's guard as a scan start through the API does, so a
 * scheduled run and any other start of the root share the one-scan-per-root
 * rule; the overlap policy SKIP keeps a schedule from starting a run while its
 * previous one (and so its scan) is still going.
 */
import { randomUUID } from 'node:crypto';
import {
  type Client,
  type ScheduleDescription,
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  ServiceError,
  type ScheduleSummary,
  WorkflowNotFoundError,
} from '@temporalio/client';
import type { Config } from '../config';
import { SCHEDULED_SCAN_WORKFLOW_TYPE } from '../workflows/definitions';
import type { ScheduledScanInput, ScheduledScanMemo } from '../workflows/scheduled-scan';
import { ScanError, scheduleNotFound } from './errors';
import { guardIdOf } from './guard';
import type { StartScanRequest } from './job';
import { guardedScanOf } from './scan-input';

/** The schedule body of API.md. */
export interface ScheduleBody {
  schedule_id: string;
  path: string;
  every?: string;
  cron?: string;
  recursive: boolean;
  force: boolean;
  paused: boolean;
  next_run_at: string | null;
  last_job_id: string | null;
}

export interface CreateScheduleRequest {
  /** Real, absolute, validated path of the root. */
  root: string;
  /** A duration as the request gave it (`12h`) with its value in ms; or a cron expression. */
  every?: { text: string; ms: number };
  cron?: string;
  recursive: boolean;
  force: boolean;
  /** The request's own globs of paths to leave out, added to SCAN_EXCLUDE. */
  exclude?: string[];
}

/** What a schedule keeps in its memo, so that its body needs no other store. */
interface ScheduleMemo {
  path: string;
  every?: string;
  cron?: string;
  recursive: boolean;
  force: boolean;
}

/** Schedule ids this service creates: a prefix tells them from any other schedule in the namespace. */
const SCHEDULE_PREFIX = 'scan-schedule-';

/** gRPC status of a request the server finds malformed. */
const GRPC_INVALID_ARGUMENT = 3;

/** How long a trigger waits for its run to start its scan before answering 503. */
const TRIGGER_DEADLINE_MS = 30_000;

export class ScheduleService {
  constructor(
    private readonly client: Client,
    private readonly config: Config,
    private readonly taskQueue: string = config.temporal.taskQueue,
  ) {}

  /** Creates a schedule of scans of one root. */
  async create(request: CreateScheduleRequest): Promise<ScheduleBody> {
    const scheduleId = `${SCHEDULE_PREFIX}${randomUUID()}`;
    const input: ScheduledScanInput = {
      guardId: guardIdOf(request.root),
      ...guardedScanOf(this.config, { root: request.root, recursive: request.recursive, force: request.force, ...(request.exclude ? { exclude: request.exclude } : {}) }),
    };
    const memo: ScheduleMemo = {
      path: request.root,
      ...(request.every ? { every: request.every.text } : {}),
      ...(request.cron ? { cron: request.cron } : {}),
      recursive: request.recursive,
      force: request.force,
    };
    let handle;
    try {
      handle = await this.client.schedule.create({
        scheduleId,
        spec: request.cron ? { cronExpressions: [request.cron] } : { intervals: [{ every: request.every?.ms ?? 0 }] },
        action: {
          type: 'startWorkflow',
          workflowType: SCHEDULED_SCAN_WORKFLOW_TYPE,
          // Temporal appends the scheduled time to this id for each run.
          workflowId: scheduleId,
          taskQueue: this.taskQueue,
          args: [input],
          staticSummary: `Scheduled scan of ${request.root}`.slice(0, 200),
        },
        policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' },
        memo: { ...memo },
      });
    } catch (error) {
      // The SDK (a TypeError) and the server judge a cron expression: what they refuse is the request's fault.
      if (error instanceof TypeError) throw new ScanError('INVALID_SCHEDULE', `the schedule was refused: ${error.message}`);
      const grpc = (error instanceof ServiceError ? error.cause : error) as { code?: number; details?: string; message?: string } | undefined;
      if (grpc?.code === GRPC_INVALID_ARGUMENT) {
        throw new ScanError('INVALID_SCHEDULE', `the schedule was refused: ${grpc.details ?? grpc.message ?? 'invalid'}`);
      }
      throw error;
    }
    return this.bodyOf(scheduleId, await handle.describe());
  }

  /** Every schedule of scans, newest first as the server lists them. */
  async list(): Promise<ScheduleBody[]> {
    const bodies: ScheduleBody[] = [];
    for await (const summary of this.client.schedule.list()) {
      if (!summary.scheduleId.startsWith(SCHEDULE_PREFIX)) continue;
      if (summary.action?.type !== 'startWorkflow' || summary.action.workflowType !== SCHEDULED_SCAN_WORKFLOW_TYPE) continue;
      bodies.push(await this.bodyOf(summary.scheduleId, summary));
    }
    return bodies;
  }

  /** One schedule; 404 when there is none. */
  async get(scheduleId: string): Promise<ScheduleBody> {
    return this.bodyOf(scheduleId, await this.describe(scheduleId));
  }

  async delete(scheduleId: string): Promise<void> {
    await this.describe(scheduleId);
    await this.client.schedule.getHandle(scheduleId).delete();
  }

  async pause(scheduleId: string): Promise<ScheduleBody> {
    await this.describe(scheduleId);
    await this.client.schedule.getHandle(scheduleId).pause('paused through the API');
    return this.get(scheduleId);
  }

  async unpause(scheduleId: string): Promise<ScheduleBody> {
    await this.describe(scheduleId);
    await this.client.schedule.getHandle(scheduleId).unpause('unpaused through the API');
    return this.get(scheduleId);
  }

  /**
   * Runs a schedule now and answers with the scan its run started; null when
   * the root was held by another scan (the caller finds that one). A trigger
   * always starts a run (overlap ALLOW_ALL): a run that finds the root held
   * starts no scan, so two scans of a root never overlap either way.
   */
  async trigger(scheduleId: string): Promise<{ runId: string; scanId: string | null }> {
    const before = await this.describe(scheduleId);
    const seen = new Set(before.info.recentActions.map((action) => action.action.workflow.workflowId));
    const handle = this.client.schedule.getHandle(scheduleId);
    await handle.trigger(ScheduleOverlapPolicy.ALLOW_ALL);
    const deadline = Date.now() + TRIGGER_DEADLINE_MS;
    let runId: string | undefined;
    while (Date.now() < deadline) {
      if (runId === undefined) {
        const now = await handle.describe();
        runId = now.info.recentActions.map((action) => action.action.workflow.workflowId).find((id) => !seen.has(id));
      }
      if (runId !== undefined) {
        const memo = await this.runMemo(runId);
        if (memo !== null) return { runId, scanId: memo.scanId };
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new ScanError('BUSY', `schedule ${scheduleId} was triggered, but no worker has started its run yet; see the schedule's last_job_id`);
  }

  /**
   * The scan request a schedule makes, everything its creation gave
   * (exclusions included): what a start on its behalf must use when its own
   * run could not start the scan (the root's previous scan was just closing).
   */
  async scanRequestOf(scheduleId: string): Promise<StartScanRequest> {
    const description = await this.describe(scheduleId);
    const action = description.action as { args?: unknown[] };
    const input = action.args?.[0] as Partial<ScheduledScanInput> | undefined;
    const memo = (description.memo ?? {}) as Partial<ScheduleMemo>;
    const scan = input?.scan;
    return {
      root: scan?.root ?? memo.path ?? '',
      recursive: scan?.recursive ?? memo.recursive ?? true,
      force: scan?.force ?? memo.force ?? false,
      ...(Array.isArray(scan?.exclude) ? { keptExclude: scan.exclude } : {}),
      ...(typeof scan?.maxParallelFiles === 'number' ? { maxParallelFiles: scan.maxParallelFiles } : {}),
      ...(typeof scan?.thumbnails === 'boolean' ? { thumbnails: scan.thumbnails } : {}),
    };
  }

  /** What a scheduled run published: the scan it started, or null while it has not decided yet. */
  private async runMemo(workflowId: string): Promise<ScheduledScanMemo | null> {
    try {
      const run = await this.client.workflow.getHandle(workflowId).describe();
      const memo = (run.memo ?? {}) as Partial<ScheduledScanMemo>;
      if (typeof memo.scanId === 'string') return { scanId: memo.scanId, skipped: null };
      // A run that started nothing: its upsert of `scanId: null` removes the field, and `skipped` says why.
      if (typeof memo.skipped === 'string') return { scanId: null, skipped: memo.skipped };
      return null;
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return null;
      throw error;
    }
  }

  private async describe(scheduleId: string): Promise<ScheduleDescription> {
    if (!scheduleId.startsWith(SCHEDULE_PREFIX)) throw scheduleNotFound(scheduleId);
    try {
      const description = await this.client.schedule.getHandle(scheduleId).describe();
      if (description.action.type !== 'startWorkflow' || description.action.workflowType !== SCHEDULED_SCAN_WORKFLOW_TYPE) {
        throw scheduleNotFound(scheduleId);
      }
      return description;
    } catch (error) {
      if (error instanceof ScheduleNotFoundError) throw scheduleNotFound(scheduleId);
      throw error;
    }
  }

  /** The body of a schedule; last_job_id is the scan its latest run started (runs that found the root held started none). */
  private async bodyOf(scheduleId: string, schedule: ScheduleSummary | ScheduleDescription): Promise<ScheduleBody> {
    const memo = (schedule.memo ?? {}) as Partial<ScheduleMemo>;
    let lastScanId: string | null = null;
    for (const action of [...schedule.info.recentActions].reverse()) {
      const run = await this.runMemo(action.action.workflow.workflowId);
      if (run?.scanId) {
        lastScanId = run.scanId;
        break;
      }
    }
    const next = schedule.info.nextActionTimes[0];
    return {
      schedule_id: scheduleId,
      path: memo.path ?? '',
      ...(memo.every !== undefined ? { every: memo.every } : {}),
      ...(memo.cron !== undefined ? { cron: memo.cron } : {}),
      recursive: memo.recursive ?? true,
      force: memo.force ?? false,
      paused: schedule.state.paused,
      next_run_at: next && !schedule.state.paused ? next.toISOString() : null,
      last_job_id: lastScanId,
    };
  }
}
