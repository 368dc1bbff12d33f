/**
 * Errors the API turns into `{"code", "message"}` bodies. Codes are the
 * contract of API.md; the HTTP status travels with them.
 */
export type ErrorCode =
  | 'INVALID_PATH'
  | 'PATH_NOT_ALLOWED'
  | 'NOT_FOUND'
  | 'ALREADY_TERMINAL'
  | 'NOT_TERMINAL'
  | 'NOTHING_TO_RETRY'
  | 'INVALID_REQUEST'
  | 'UNAUTHORIZED'
  | 'PAYLOAD_TOO_LARGE'
  | 'TOO_MANY_SCANS'
  | 'UNAVAILABLE'
  | 'INTERNAL';

export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

export const notFound = (what: string): DomainError => new DomainError('NOT_FOUND', 404, `${what} not found`);
