/**
 * The application layer: starting (with its one admission check), reading,
 * cancelling, pausing, retrying, listing and scheduling scans. The API, the
 * worker's scheduled runs and the benchmark use it; Temporal plumbing (the
 * client connection, the servers, the CLI binary) stays in src/temporal.
 */
export { ScanAdmission } from './admission';
export { ScanError, type ScanErrorCode } from './errors';
export { guardIdOf, RootGuards } from './guard';
export type { JobBody, StartedScan, StartScanRequest } from './job';
export { JOB_STATUSES, TERMINAL_STATUSES, type JobStatus } from './job-status';
export { ScheduleService, type CreateScheduleRequest, type ScheduleBody } from './schedules';
export { ScanService } from './service';
