/**
 * The API token (API_TOKEN): how a request proves it holds it. Every route
 * but health takes `Authorization: Bearer <token>`; the webhook route also
 * takes HTTP Basic with the token as the password, which is all Sonarr and
 * Radarr could send before late 2024 (docs/webhooks.md); the WebSocket also
 * takes it as the subprotocol `bearer.<token>`, which is all a browser's
 * WebSocket can send.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { RequestHandler } from 'express';
import { DomainError } from '../errors';

/** The route that also takes HTTP Basic. */
export const BASIC_AUTH_ROUTES = new Set(['/api/v1/hooks/arr']);

/** The subprotocol prefix that carries the token on a WebSocket. */
export const WS_TOKEN_PROTOCOL_PREFIX = 'bearer.';

/** Compares secrets in constant time (hashing first makes the lengths equal). */
export function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** The token of a `Bearer` Authorization header. */
export function bearerTokenOf(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1];
}

/** The password of a `Basic` Authorization header (RFC 7617: base64 of `user:password`; the user name may be empty). */
export function basicPasswordOf(header: string | undefined): string | undefined {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : decoded.slice(colon + 1);
}

/** The token a WebSocket upgrade carries as a `bearer.<token>` subprotocol. */
export function protocolTokenOf(req: IncomingMessage): string | undefined {
  const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
  const protocol = offered.find((p) => p.startsWith(WS_TOKEN_PROTOCOL_PREFIX));
  return protocol?.slice(WS_TOKEN_PROTOCOL_PREFIX.length);
}

/** Whether a request carries the token in a form its route accepts. */
export function holdsToken(token: string, req: IncomingMessage, route: string, options: { webSocket?: boolean } = {}): boolean {
  const header = req.headers.authorization;
  const candidates = [bearerTokenOf(header)];
  if (BASIC_AUTH_ROUTES.has(route)) candidates.push(basicPasswordOf(header));
  if (options.webSocket) candidates.push(protocolTokenOf(req));
  // Every candidate is compared, so the time taken says nothing about which form was near.
  return candidates.map((given) => given !== undefined && given.length > 0 && sameSecret(given, token)).includes(true);
}

/** Answers 401 UNAUTHORIZED to a request without the token, when API_TOKEN is set. */
export function tokenGuard(token: string | undefined): RequestHandler {
  if (token === undefined) return (_req, _res, next) => next();
  return (req, res, next) => {
    if (holdsToken(token, req, req.path)) return next();
    const basic = BASIC_AUTH_ROUTES.has(req.path);
    res.setHeader('WWW-Authenticate', basic ? 'Basic realm="video-library-scanner", charset="UTF-8"' : 'Bearer realm="video-library-scanner"');
    next(new DomainError('UNAUTHORIZED', 401, basic ? 'a valid bearer token, or HTTP Basic with the token as password, is required' : 'a valid bearer token is required'));
  };
}
