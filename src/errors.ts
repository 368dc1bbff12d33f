/**
 * Errors the API turns into `{"code", "message"}` bodies. Codes are the
 * contract of API.md; the HTTP status travels with them.
 */
export type ErrorCode =
  | 'INVALID_PATH'
  | 'PATH_NOT_ALLOWED'
  | 'NOT_FOUND'
  | 'ALREADY_TERMINAL'
  | 'ALREADY_PAUSED'
  | 'NOT_PAUSED'
  | 'NOT_TERMINAL'
  | 'NOTHING_TO_RETRY'
  | 'INVALID_REQUEST'
  | 'UNAUTHORIZED'
  | 'PAYLOAD_TOO_LARGE'
  | 'TOO_MANY_SCANS'
  | 'TOO_MANY_STREAMS'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'FORBIDDEN_ORIGIN'
  | 'FORBIDDEN_HOST'
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

/**
 * A URL with user information, up to the last `@` before white space: WHATWG
 * URL parsing takes the last `@` of the authority, so a password holding an
 * unencoded `@` or `/` is still covered (at worst more than the password is hidden).
 */
const URL_USER_INFO = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s]*)@/gi;

/** libpq keyword strings and URL query parameters: `password=…`. */
const PASSWORD_PAIR = /\b(password|passwd|pwd)=[^\s&;,'"]*/gi;

/**
 * Hides credentials in text bound for a terminal or a log: the password of a
 * URL (`postgres://user:secret@host` → `postgres://user:***@host`) and
 * `password=` pairs. Every process edge passes its error lines through this,
 * because a connection string is the one secret start-up errors tend to echo.
 */
export function redactSecrets(text: string): string {
  return text
    .replace(URL_USER_INFO, (_match, scheme: string, userInfo: string) => {
      const colon = userInfo.indexOf(':');
      return colon < 0 ? `${scheme}${userInfo}@` : `${scheme}${userInfo.slice(0, colon)}:***@`;
    })
    .replace(PASSWORD_PAIR, '$1=***');
}

/** One line for a process's last words: the error's first message line, credentials hidden, no stack. */
export function errorLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return redactSecrets(message.split('\n')[0] ?? '');
}
