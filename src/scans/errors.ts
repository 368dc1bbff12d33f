/**
 * What the scan layer refuses, in its own words. The API maps each code to
 * its HTTP status and to the code of API.md (src/api/errors.ts); the CLI and
 * the worker read the code alone.
 */
export type ScanErrorCode =
  | 'NOT_FOUND'
  | 'ALREADY_TERMINAL'
  | 'ALREADY_PAUSED'
  | 'NOT_PAUSED'
  | 'NOT_PAUSABLE'
  | 'NOT_TERMINAL'
  | 'NOTHING_TO_RETRY'
  | 'INVALID_PAGE_TOKEN'
  | 'INVALID_SCHEDULE'
  | 'TOO_MANY_SCANS'
  | 'BUSY';

export class ScanError extends Error {
  constructor(
    readonly code: ScanErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ScanError';
  }
}

export const scanNotFound = (scanId: string): ScanError => new ScanError('NOT_FOUND', `job ${scanId} not found`);
export const scheduleNotFound = (scheduleId: string): ScanError => new ScanError('NOT_FOUND', `schedule ${scheduleId} not found`);
