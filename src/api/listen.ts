/**
 * Binding the API's port, with the reasons it can fail said in one line each
 * instead of a stack trace (an `npm start` on a machine where something
 * already holds port 8000 is the usual first-run problem).
 */
import type { Server } from 'node:http';
import net from 'node:net';
import { isLoopbackHost, type Config } from '../config';

/** A port that could not be bound; the message is the whole story, fit for one line on stderr. */
export class ListenError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = 'ListenError';
  }
}

function explain(error: NodeJS.ErrnoException, port: number, host: string): ListenError {
  switch (error.code) {
    case 'EADDRINUSE':
      return new ListenError(`port ${port} on ${host} is already in use: stop what holds it, or set PORT to a free port`, error.code);
    case 'EACCES':
      return new ListenError(`not allowed to listen on port ${port} on ${host} (ports below 1024 need privileges): set PORT`, error.code);
    case 'EADDRNOTAVAIL':
      return new ListenError(`cannot listen on ${host}:${port}: HOST is not an address of this machine`, error.code);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new ListenError(`cannot listen on ${host}:${port}: HOST does not resolve`, error.code);
    default:
      return new ListenError(`cannot listen on ${host}:${port}: ${error.message}`, error.code);
  }
}

/** Binds `server` to host:port; rejects with a ListenError that names the port. */
export function listen(server: Server | net.Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      reject(explain(error, port, host));
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

/**
 * Rejects with the same ListenError when host:port cannot be bound now: lets
 * `npm start` refuse before it starts a Temporal server and a worker for an
 * API that could not listen.
 */
export async function ensurePortFree(port: number, host: string): Promise<void> {
  const probe = net.createServer();
  await listen(probe, port, host);
  await new Promise<void>((resolve) => probe.close(() => resolve()));
}

/**
 * No open door by default: an API reachable from other machines (a HOST that
 * is not loopback) needs API_TOKEN, or ALLOW_UNAUTHENTICATED=true to say that
 * something in front of it authenticates. Returns the refusal's one line, or
 * the warning to log, or nothing.
 */
export function exposureCheck(config: Pick<Config, 'host' | 'apiToken' | 'allowUnauthenticated'>): { refuse?: string; warn?: string } {
  if (config.apiToken !== undefined || isLoopbackHost(config.host)) return {};
  if (config.allowUnauthenticated) {
    return { warn: `the API listens on ${config.host} without API_TOKEN (ALLOW_UNAUTHENTICATED=true): anyone who reaches it can start and cancel scans` };
  }
  return {
    refuse: `HOST=${config.host} is reachable from other machines and API_TOKEN is not set: set API_TOKEN, or HOST=127.0.0.1, or ALLOW_UNAUTHENTICATED=true when something in front of the API authenticates`,
  };
}
