/**
 * Maps Temporal's execution status (and our recorded outcome) onto the job
 * status values of API.md, and job statuses onto visibility queries.
 */
export type JobStatus = 'pending' | 'running' | 'paused' | 'completed' | 'failed' | 'cancelled' | 'timeout';

export const JOB_STATUSES: readonly JobStatus[] = ['pending', 'running', 'paused', 'completed', 'failed', 'cancelled', 'timeout'];

export const TERMINAL_STATUSES: ReadonlySet<JobStatus> = new Set(['completed', 'failed', 'cancelled', 'timeout']);

/**
 * `recordedOutcome` is what the workflow wrote to the library as it ended; it
 * tells a scan that hit its own time limit (a failed execution) from a failure.
 */
export function jobStatusOf(executionStatus: string, recordedOutcome: string | null | undefined): JobStatus {
  switch (executionStatus) {
    case 'RUNNING':
    case 'CONTINUED_AS_NEW':
      return 'running';
    case 'COMPLETED':
      return 'completed';
    case 'CANCELLED':
      return 'cancelled';
    case 'TIMED_OUT':
      return 'timeout';
    case 'TERMINATED':
      return 'cancelled';
    case 'FAILED':
      return recordedOutcome === 'timeout' ? 'timeout' : 'failed';
    default:
      return 'failed';
  }
}

/**
 * The status of a running scan from its published progress: `paused` while a
 * pause holds it and nothing of it runs any more; `running` (with
 * `pause_requested`) while the batches the pause stopped are still ending.
 */
export function liveJobStatusOf(progress: { paused?: boolean; pauseRequested?: boolean } | null | undefined): 'running' | 'paused' {
  return progress?.paused === true && progress.pauseRequested !== true ? 'paused' : 'running';
}

/**
 * The job status of a job whose scan never started: its guard ended first.
 * A cancel of a pending job records `cancelled` and terminates the guard; a
 * guard otherwise ends early only when it fails to start the scan.
 */
export function unstartedJobStatusOf(guardStatus: string | null, recordedOutcome: string | null | undefined): JobStatus {
  if (recordedOutcome === 'cancelled' || recordedOutcome === 'timeout' || recordedOutcome === 'failed') return recordedOutcome;
  switch (guardStatus) {
    case 'CANCELLED':
    case 'TERMINATED':
      return 'cancelled';
    case 'TIMED_OUT':
      return 'timeout';
    default:
      return 'failed';
  }
}

/** The visibility queries that list jobs: one over running executions, one over closed ones; null where no job can match. */
export interface JobListQueries {
  running: string | null;
  closed: string | null;
}

/**
 * Visibility queries selecting the executions that are jobs with a given
 * status (any status when absent), on one task queue. A job is a scan
 * workflow, or, while its scan has not started, the root's guard: a guard
 * carries the ScanRoot search attribute from its start until it has started
 * its scan (see scan-root-guard.ts), so `ScanRoot IS NOT NULL` selects the
 * guards whose job is theirs alone. Visibility cannot tell a scan that hit
 * its own time limit from one that failed (both are Failed executions; the
 * library knows), so `failed` and `timeout` both select Failed executions
 * and the caller keeps those whose recorded outcome matches.
 */
export function jobListQueriesOf(
  status: JobStatus | undefined,
  names: { scanType: string; guardType: string; scheduledType: string; taskQueue: string },
): JobListQueries {
  const scan = `WorkflowType = '${names.scanType}'`;
  // Jobs whose scan has not started: a guard's, or a scheduled run's waiting for a slot (both carry ScanRoot meanwhile).
  const unstarted = `((WorkflowType = '${names.guardType}' OR WorkflowType = '${names.scheduledType}') AND ScanRoot IS NOT NULL)`;
  const both = `(${scan} OR ${unstarted})`;
  const running = "ExecutionStatus = 'Running'";
  const closed = "ExecutionStatus != 'Running' AND ExecutionStatus != 'ContinuedAsNew'";
  const queue = ` AND TaskQueue = '${names.taskQueue.replace(/'/g, "''")}'`;
  const q = (running: string | null, closed: string | null): JobListQueries => ({
    running: running === null ? null : running + queue,
    closed: closed === null ? null : closed + queue,
  });
  switch (status) {
    case undefined:
      return q(`${both} AND ${running}`, `${both} AND ${closed}`);
    case 'pending':
      return q(`${unstarted} AND ${running}`, null);
    case 'running':
      return q(`${scan} AND ${running}`, null);
    case 'paused':
      // Paused is running as far as visibility knows: the caller keeps the scans whose published progress says paused.
      return q(`${scan} AND ${running}`, null);
    case 'completed':
      return q(null, `${scan} AND ExecutionStatus = 'Completed'`);
    case 'cancelled':
      return q(null, `${both} AND (ExecutionStatus = 'Canceled' OR ExecutionStatus = 'Terminated')`);
    case 'timeout':
      return q(null, `${both} AND (ExecutionStatus = 'TimedOut' OR ExecutionStatus = 'Failed')`);
    case 'failed':
      return q(null, `((${scan} AND ExecutionStatus = 'Failed') OR (${unstarted} AND (ExecutionStatus = 'Failed' OR ExecutionStatus = 'Completed')))`);
  }
}
