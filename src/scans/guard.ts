/**
 * The guard protocol: one scan per root at a time. A root is held by its
 * guard workflow (src/workflows/scan-root-guard.ts), started under an id
 * derived from the root, so Temporal itself refuses a second one; the guard
 * carries its scan's id in its memo, and starts that scan as its child.
 * Everyone who starts a scan or reads a pending one asks here: the API's
 * starts, and a worker's scheduled runs (releaseEnded).
 */
import { createHash } from 'node:crypto';
import { type Client, type WorkflowExecutionDescription, type WorkflowExecutionInfo, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Library } from '../library/library';
import type { ScanRootGuardMemo } from '../model/types';
import { claimScanUpdate, GUARD_CLOSING, GUARD_WORKFLOW_TYPE, SCHEDULED_SCAN_WORKFLOW_TYPE } from '../workflows/definitions';
import { ScanError } from './errors';

/** The workflow id of a root's guard: one per root, so Temporal itself keeps one scan per root. */
export function guardIdOf(root: string): string {
  return `root-${createHash('sha256').update(root).digest('hex').slice(0, 32)}`;
}

/** An execution as a describe or a listing gives it. */
export type Execution = Pick<WorkflowExecutionInfo, 'workflowId' | 'runId' | 'startTime' | 'closeTime' | 'memo'> & { status: { name: string } };

/** The memo of what holds a pending scan: a guard, or a scheduled run waiting for a slot. */
export const holderMemoOf = (execution: Pick<Execution, 'memo'> | null | undefined): Partial<ScanRootGuardMemo> =>
  (execution?.memo ?? {}) as Partial<ScanRootGuardMemo>;

/** A quoted literal of a visibility query. */
export const literal = (text: string): string => `'${text.replace(/'/g, "''")}'`;

export class RootGuards {
  constructor(
    private readonly client: Client,
    private readonly library: Library,
    private readonly taskQueue: string,
  ) {}

  async describeOrNull(workflowId: string): Promise<WorkflowExecutionDescription | null> {
    try {
      return await this.client.workflow.getHandle(workflowId).describe();
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return null;
      throw error;
    }
  }

  /**
   * The scan a root's running guard holds, or null when the root is free: no
   * guard runs, or its scan has ended and the guard (which needs a worker to
   * close) was ended here. A start that finds the root's guard id taken asks
   * this, and tries again on null.
   */
  async holder(guardId: string): Promise<string | null> {
    const guard = await this.describeOrNull(guardId);
    if (guard === null || guard.status.name !== 'RUNNING') return null;
    const memo = holderMemoOf(guard);
    const children = (guard.raw.pendingChildren ?? []).map((child) => child.workflowId).filter((id): id is string => typeof id === 'string');
    if (memo.scanId === undefined && children.length === 0) return this.claimOfOldGuard(guardId, guard.runId);
    const scanId = memo.scanId ?? (children[0] as string);
    // Not trusted to mean running: the guard lists its child as pending until
    // the server has recorded the child's end in the guard's history, a moment
    // after the scan ended (a retry sent right then would get the ended scan).
    const scan = await this.describeOrNull(scanId);
    if (scan === null) {
      // Pending. Whoever started it may have stopped before recording it: record it now (idempotent).
      await this.record(scanId, memo);
      return scanId;
    }
    if (scan.status.name === 'RUNNING') return scanId;
    // The scan has ended; its guard has only to close, which takes a worker.
    // End exactly this run so the next attempt starts a fresh guard: two
    // starts racing here end the same run, and only one of them then starts
    // the new guard, the other answering with its scan.
    await this.end(guardId, guard.runId, 'its scan has ended; a new scan of the root replaces it');
    return null;
  }

  /**
   * Frees a root whose guard is closing (its scan has just ended), as a start
   * does before it starts a fresh guard: true when the root is free now.
   */
  async releaseEnded(guardId: string): Promise<boolean> {
    try {
      return (await this.holder(guardId)) === null;
    } catch (error) {
      // A guard of an earlier version that no worker answers for: held, as far as anyone can tell.
      if (error instanceof ScanError && error.code === 'BUSY') return false;
      throw error;
    }
  }

  /**
   * A guard started by an earlier version of the API, whose scan has not
   * started or has ended: only it knows, so it is asked as that version did.
   */
  private async claimOfOldGuard(guardId: string, runId: string): Promise<string | null> {
    try {
      const claim = await this.client.withDeadline(Date.now() + 1000, () => this.client.workflow.getHandle(guardId).executeUpdate(claimScanUpdate));
      // The claim is a recorded update result: its field keeps the name it was recorded with.
      return claim.jobId;
    } catch (error) {
      const closing = error instanceof WorkflowUpdateFailedError && error.cause instanceof ApplicationFailure && error.cause.type === GUARD_CLOSING;
      if (!closing) throw new ScanError('BUSY', 'the root is held by a scan that no worker has started yet; try again later');
      await this.end(guardId, runId, 'its scan has ended; a new scan of the root replaces it');
      return null;
    }
  }

  /** Terminates one run of a workflow (needs no worker); a run that has ended meanwhile is fine. */
  async end(workflowId: string, runId: string, reason: string): Promise<void> {
    await this.client.workflow
      .getHandle(workflowId, runId)
      .terminate(reason)
      .catch((error: unknown) => {
        if (!(error instanceof WorkflowNotFoundError)) throw error;
      });
  }

  /** Records a pending scan from its holder's memo, as a start does (a no-op when its row exists). */
  async record(scanId: string, memo: Partial<ScanRootGuardMemo>): Promise<void> {
    if (memo.path === undefined) return;
    await this.library.createScan({
      scanId,
      root: memo.path,
      recursive: memo.recursive ?? true,
      force: memo.force ?? false,
      retryOf: memo.retryOf ?? null,
      ...(memo.createdAt !== undefined ? { createdAt: memo.createdAt } : {}),
    });
  }

  /** The running guard of a root when it holds this scan. */
  async holdingGuard(root: string, scanId: string): Promise<WorkflowExecutionDescription | null> {
    const guard = await this.describeOrNull(guardIdOf(root));
    return guard !== null && guard.status.name === 'RUNNING' && holderMemoOf(guard).scanId === scanId ? guard : null;
  }

  /** The scheduled run that waits (or waited) for a slot as this scan, before it started the root's guard. */
  async waitingRun(root: string, scanId: string): Promise<Execution | null> {
    const query = `WorkflowType = '${SCHEDULED_SCAN_WORKFLOW_TYPE}' AND ScanRoot = ${literal(root)} AND TaskQueue = ${literal(this.taskQueue)}`;
    for await (const execution of this.client.workflow.list({ query })) {
      if (holderMemoOf(execution).scanId === scanId) return execution;
    }
    return null;
  }

  /** The run of a root's guard that held a scan which never started (it keeps its ScanRoot attribute). */
  async guardRunOf(root: string, scanId: string): Promise<Execution | null> {
    const query = `WorkflowId = '${guardIdOf(root)}' AND WorkflowType = '${GUARD_WORKFLOW_TYPE}' AND ScanRoot IS NOT NULL`;
    for await (const execution of this.client.workflow.list({ query })) {
      if (holderMemoOf(execution).scanId === scanId) return execution;
    }
    return null;
  }

  /**
   * Every execution that holds a pending scan now: guards whose scan has not
   * started and scheduled runs waiting for a slot (both carry ScanRoot until
   * their scan starts), a handful at most: MAX_CONCURRENT_SCANS bounds them.
   */
  async *pendingHolders(): AsyncIterable<Execution> {
    const types = `(WorkflowType = '${GUARD_WORKFLOW_TYPE}' OR WorkflowType = '${SCHEDULED_SCAN_WORKFLOW_TYPE}')`;
    yield* this.client.workflow.list({ query: `${types} AND ExecutionStatus = 'Running' AND ScanRoot IS NOT NULL AND TaskQueue = ${literal(this.taskQueue)}` });
  }
}
