/**
 * Maps Temporal's execution status (and the outcome a scan recorded in the
 * library) onto the job status values of API.md.
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

/** The status of a scan whose end the library has recorded. */
export function recordedStatusOf(outcome: string): JobStatus {
  return outcome === 'completed' || outcome === 'cancelled' || outcome === 'timeout' ? outcome : 'failed';
}
