/**
 * The action of a scan schedule (src/scans/schedules.ts). Temporal gives
 * every scheduled run a workflow id of its own (the schedule's, with the
 * scheduled time appended), so a run cannot itself be the root's guard: it
 * starts the guard as a child under the root's guard id, exactly as a scan
 * start through the API does, and waits for it. Whoever holds the guard id
 * holds the root: a scheduled run that finds it taken (a scan of the root is
 * running or pending, started by hand or by a webhook) starts nothing and
 * ends, and a start through the API that finds the scheduled guard running
 * answers with its scan (the guard carries the scan id in its memo). The
 * schedule's overlap policy (SKIP) keeps one run of a schedule at a time.
 */
import {
  ParentClosePolicy,
  patched,
  proxyActivities,
  setHandler,
  startChild,
  upsertMemo,
  upsertSearchAttributes,
  uuid4,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { createActivities } from '../activities';
import type { ScanMemo, ScanRootGuardInput, ScanRootGuardMemo } from '../model/types';
import { pendingPauseSignal, scanRootSearchAttribute } from './definitions';
import { scanRootGuard } from './scan-root-guard';

type Activities = ReturnType<typeof createActivities>;

/** Patch id of scheduled runs whose scan memo keeps the schedule's exclusions. */
export const SCHEDULE_KEEPS_REQUEST_PATCH = 'schedule-keeps-request';

/** What a schedule's action carries: the guard to start, without the scan id and time each run chooses. */
export interface ScheduledScanInput {
  /** The root's guard id (guardIdOf in src/scans/guard.ts): hashing needs Node, so the schedule computes it. */
  guardId: string;
  scan: ScanRootGuardInput['scan'];
  executionTimeoutMs: number | null;
}

/** What a scheduled run publishes in its memo: the scan it started, or why it started none. */
export interface ScheduledScanMemo {
  scanId: string | null;
  skipped: string | null;
}

/** Patch id of scheduled runs that wait for a slot of MAX_CONCURRENT_SCANS before they start their guard. */
export const SCHEDULED_ADMISSION_PATCH = 'scheduled-admission';

/**
 * Patch id of scheduled runs whose job exists while they wait for a slot: the
 * run publishes it (memo and ScanRoot, as a pending guard does), so it is
 * listed, read, cancelled and paused like any pending job.
 */
export const SCHEDULED_PENDING_JOB_PATCH = 'scheduled-pending-job';

/** Patch id of scheduled runs that free a root whose guard is closing (its scan just ended) and start their scan. */
export const SCHEDULED_CLOSING_GUARD_PATCH = 'scheduled-closing-guard';

/** Attempts to start the guard of a root found closing. */
const CLOSING_GUARD_ATTEMPTS = 3;

/** One run of a scan schedule: starts the root's guard (and so its scan) unless the root is held. */
export async function scheduledScan(input: ScheduledScanInput): Promise<ScheduledScanMemo> {
  const scanId = `scan-${uuid4()}`;
  /** Set when the run waited for a slot as a pending job: its creation time. */
  let waitedSince: string | undefined;
  /** A pause (or resume) of the pending job while the run waited. */
  let startPaused: boolean | undefined;
  if (patched(SCHEDULED_ADMISSION_PATCH)) {
    // Admission is the API's rule too (src/scans/admission.ts): a burst of
    // schedules firing together must not overshoot MAX_CONCURRENT_SCANS.
    const { awaitScanSlot } = proxyActivities<Activities>({
      // Waits as long as slots stay taken; the heartbeat shows the run is alive and lets a cancel in.
      startToCloseTimeout: '7d',
      heartbeatTimeout: '10s',
      retry: { initialInterval: '1s', maximumInterval: '30s' },
    });
    if (!patched(SCHEDULED_PENDING_JOB_PATCH)) {
      await awaitScanSlot({ guardId: input.guardId });
    } else if (!(await awaitScanSlot({ guardId: input.guardId, once: true }))) {
      // Every slot is taken: the job exists from now on, pending, found by
      // the jobs list (ScanRoot) and by GET, cancel and pause (the memo), as
      // a pending guard's; a trigger through the API answers with it.
      waitedSince = new Date(Date.now()).toISOString();
      setHandler(pendingPauseSignal, (pause: boolean) => {
        startPaused = pause;
        upsertMemo({ pauseRequested: pause });
      });
      const pending: ScanRootGuardMemo & ScheduledScanMemo = {
        path: input.scan.root,
        recursive: input.scan.recursive,
        retryOf: null,
        createdAt: waitedSince,
        exclude: input.scan.exclude,
        scanId,
        force: input.scan.force,
        skipped: null,
      };
      upsertMemo({ ...pending });
      upsertSearchAttributes([{ key: scanRootSearchAttribute, value: input.scan.root }]);
      await awaitScanSlot({ guardId: input.guardId });
    }
  }
  const memo: ScanMemo = {
    path: input.scan.root,
    recursive: input.scan.recursive,
    retryOf: null,
    createdAt: waitedSince ?? new Date(Date.now()).toISOString(),
    // Kept for a retry of the scan (runs started before this keep none).
    ...(patched(SCHEDULE_KEEPS_REQUEST_PATCH) ? { exclude: input.scan.exclude } : {}),
  };
  const guardMemo: ScanRootGuardMemo = { ...memo, scanId, force: input.scan.force, ...(startPaused !== undefined ? { pauseRequested: startPaused } : {}) };
  const scan = startPaused !== undefined ? { ...input.scan, startPaused } : input.scan;
  const guardInput: ScanRootGuardInput = { scanId, scan, memo, executionTimeoutMs: input.executionTimeoutMs };
  const startGuard = () =>
    startChild(scanRootGuard, {
      workflowId: input.guardId,
      args: [guardInput],
      memo: { ...guardMemo },
      // As a guard started by the API: the jobs list finds the pending job by it until the scan starts.
      typedSearchAttributes: [{ key: scanRootSearchAttribute, value: input.scan.root }],
      staticSummary: `Holds ${input.scan.root} for one scan at a time`.slice(0, 200),
      // The guard holds the root for its scan: deleting the schedule or ending this run must not free it early.
      parentClosePolicy: ParentClosePolicy.ABANDON,
    });
  let child;
  for (let attempt = 1; ; attempt += 1) {
    try {
      child = await startGuard();
      break;
    } catch (error) {
      if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
      // The root's previous scan may have just ended, its guard not closed yet:
      // freed (as the API does), the root takes this run's scan.
      if (attempt < CLOSING_GUARD_ATTEMPTS && patched(SCHEDULED_CLOSING_GUARD_PATCH)) {
        const { releaseClosingGuard } = proxyActivities<Activities>({ startToCloseTimeout: '1m', retry: { maximumAttempts: 5 } });
        if (await releaseClosingGuard({ guardId: input.guardId })) continue;
      }
      const result: ScheduledScanMemo = { scanId: null, skipped: 'a scan of this root is already running or pending' };
      upsertMemo({ ...result });
      return result;
    }
  }
  const result: ScheduledScanMemo = { scanId, skipped: null };
  upsertMemo({ ...result });
  // The guard lists the pending job from now on (and its scan, once started).
  if (waitedSince !== undefined) upsertSearchAttributes([{ key: scanRootSearchAttribute, value: null }]);
  try {
    // Held until the scan ends, so that the schedule's overlap policy sees it running.
    await child.result();
  } catch {
    // However the scan ended (cancelled, failed, timed out), this run is done.
  }
  return result;
}
