/**
 * The scan layer's refusals (src/scans/errors.ts) as the HTTP errors of API.md.
 */
import { DomainError, type ErrorCode } from '../errors';
import type { ScanError, ScanErrorCode } from '../scans';

const HTTP: Record<ScanErrorCode, { status: number; code: ErrorCode }> = {
  NOT_FOUND: { status: 404, code: 'NOT_FOUND' },
  ALREADY_TERMINAL: { status: 409, code: 'ALREADY_TERMINAL' },
  ALREADY_PAUSED: { status: 409, code: 'ALREADY_PAUSED' },
  NOT_PAUSED: { status: 409, code: 'NOT_PAUSED' },
  // A scan of an older shape: the request conflicts with the scan, not with the contract.
  NOT_PAUSABLE: { status: 409, code: 'INVALID_REQUEST' },
  NOT_TERMINAL: { status: 409, code: 'NOT_TERMINAL' },
  NOTHING_TO_RETRY: { status: 409, code: 'NOTHING_TO_RETRY' },
  INVALID_PAGE_TOKEN: { status: 400, code: 'INVALID_REQUEST' },
  INVALID_SCHEDULE: { status: 400, code: 'INVALID_REQUEST' },
  TOO_MANY_SCANS: { status: 429, code: 'TOO_MANY_SCANS' },
  BUSY: { status: 503, code: 'UNAVAILABLE' },
};

export function httpErrorOf(error: ScanError): DomainError {
  const { status, code } = HTTP[error.code];
  return new DomainError(code, status, error.message);
}
