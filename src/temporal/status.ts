/**
 * Maps Temporal's execution status (and our recorded outcome) onto the job
 * status values of API.md.
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

/** The Temporal visibility query that selects executions with a given job status. */
export function visibilityFilterOf(status: JobStatus): string {
  switch (status) {
    case 'pending':
    case 'running':
    case 'paused':
      return "ExecutionStatus = 'Running'";
    case 'completed':
      return "ExecutionStatus = 'Completed'";
    case 'cancelled':
      return "(ExecutionStatus = 'Canceled' OR ExecutionStatus = 'Terminated')";
    case 'timeout':
      return "(ExecutionStatus = 'TimedOut' OR ExecutionStatus = 'Failed')";
    case 'failed':
      return "ExecutionStatus = 'Failed'";
  }
}
