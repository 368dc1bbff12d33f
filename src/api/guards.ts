/**
 * Middleware that refuses forged requests before any route runs: bodies
 * other than JSON, state-changing requests from a foreign browser origin, and
 * (bound to loopback) a Host that is not loopback, the mark of DNS rebinding.
 *
 * Why all three: a page on any site may POST a `text/plain` body with no CORS
 * preflight, and a rebinding domain makes the browser treat our loopback port
 * as that page's own origin. CORS alone protects reads, not writes.
 */
import net from 'node:net';
import type { Request, RequestHandler } from 'express';
import { DomainError } from '../errors';

const LOOPBACK = new net.BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** Methods a browser may send cross-site without a preflight or that change state: everything but reads. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** A Host header is a name or an IP literal and an optional port, nothing else (no `@`, `/`, spaces). */
const HOST_HEADER = /^(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i;

/**
 * Whether a host name or address is loopback: `localhost` and names under
 * `.localhost` (RFC 6761 keeps them on the machine), 127.0.0.0/8 and ::1,
 * bracketed or not.
 */
export function isLoopbackHost(host: string): boolean {
  let name = host.toLowerCase();
  if (name.startsWith('[') && name.endsWith(']')) name = name.slice(1, -1);
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  if (net.isIPv4(name)) return LOOPBACK.check(name, 'ipv4');
  if (net.isIPv6(name)) return LOOPBACK.check(name, 'ipv6');
  return false;
}

/** `host[:port]` of a Host header, normalised as a browser would (`127.1` → `127.0.0.1`); undefined when malformed. */
function parseHostHeader(value: string): URL | undefined {
  if (!HOST_HEADER.test(value)) return undefined;
  try {
    return new URL(`http://${value}`);
  } catch {
    return undefined;
  }
}

/**
 * Bound to a loopback HOST, answers 403 FORBIDDEN_HOST to a request whose Host
 * header is not a loopback name or address. A request without Host (HTTP/1.0
 * tools) passes: browsers always send one. Bound elsewhere, does nothing.
 */
export function hostGuard(bindHost: string): RequestHandler {
  if (!isLoopbackHost(bindHost)) return (_req, _res, next) => next();
  return (req, _res, next) => {
    const refusal = hostRefusal(bindHost, req.headers.host);
    next(refusal === undefined ? undefined : new DomainError('FORBIDDEN_HOST', 403, refusal));
  };
}

/** Why hostGuard refuses a Host header, or undefined when it passes (for routes outside Express, such as /ws). */
export function hostRefusal(bindHost: string, header: string | undefined): string | undefined {
  if (!isLoopbackHost(bindHost) || header === undefined) return undefined;
  const url = parseHostHeader(header);
  if (url !== undefined && isLoopbackHost(url.hostname)) return undefined;
  return `the API is bound to loopback and answers only to a loopback Host, not ${JSON.stringify(header.slice(0, 100))}`;
}

/** `scheme://host[:port]` of an origin, or undefined for `null` and anything unparsable. */
function normaliseOrigin(value: string): string | undefined {
  try {
    const url = new URL(value);
    return url.origin === 'null' ? undefined : url.origin;
  } catch {
    return undefined;
  }
}

/** Whether the request's Origin names this API: the same host and port as its Host header (scheme aside, so a TLS proxy that forwards Host works). */
function isOwnOrigin(req: Pick<Request, 'headers'>, origin: string): boolean {
  const host = req.headers.host === undefined ? undefined : parseHostHeader(req.headers.host);
  if (host === undefined) return false;
  try {
    return new URL(origin).host === host.host;
  } catch {
    return false;
  }
}

/**
 * Answers 403 FORBIDDEN_ORIGIN to a state-changing request (anything but
 * GET, HEAD, OPTIONS) whose Origin is neither this API's own nor one of
 * `allowed` (CORS_ORIGINS). Requests without Origin (curl, the CLI, webhooks)
 * pass: only browsers send it, and they always do on such requests.
 */
export function originGuard(allowed: readonly string[]): RequestHandler {
  const allowedOrigin = originCheck(allowed);
  return (req, _res, next) => {
    if (SAFE_METHODS.has(req.method)) return next();
    const origin = req.headers.origin;
    if (origin === undefined || allowedOrigin(req, origin)) return next();
    next(new DomainError('FORBIDDEN_ORIGIN', 403, `requests from origin ${JSON.stringify(origin.slice(0, 100))} are not allowed (see CORS_ORIGINS)`));
  };
}

/**
 * Whether an Origin is this API's own or one of `allowed` (CORS_ORIGINS).
 * A WebSocket upgrade is a GET that a page on any site may open (browsers
 * apply no CORS to it): /ws checks every Origin with this.
 */
export function originCheck(allowed: readonly string[]): (req: Pick<Request, 'headers'>, origin: string) => boolean {
  const allowedOrigins = new Set(allowed.map((origin) => normaliseOrigin(origin) ?? origin));
  return (req, origin) => {
    const normalised = normaliseOrigin(origin);
    return normalised !== undefined && (allowedOrigins.has(normalised) || isOwnOrigin(req, normalised));
  };
}

/** Whether a request carries a body (the test type-is uses): a length other than 0, or chunked. */
function hasBody(req: Request): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * Answers 415 UNSUPPORTED_MEDIA_TYPE to a request with a body that is not
 * `application/json`. A bodiless POST (cancel, retry) passes whatever its
 * Content-Type: there is nothing to misread.
 */
export const jsonBodiesOnly: RequestHandler = (req, _res, next) => {
  if (!hasBody(req) || req.is('application/json') !== false) return next();
  next(new DomainError('UNSUPPORTED_MEDIA_TYPE', 415, 'request bodies must be application/json'));
};
