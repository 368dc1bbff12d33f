/**
 * `GET /ws`: the activity feed of the original system, which its dashboard
 * opens and shows. One JSON text message per event, in the original
 * envelope `{type, payload, correlation_id, timestamp}`: `scan_started`,
 * `scan_completed` (with `video_count`), `scan_cancelled`, `scan_failed`,
 * `scan_paused`, `scan_resumed`, `health_status` when the health status
 * changes (and once on joining), and a `heartbeat` every
 * WS_HEARTBEAT_INTERVAL seconds. Messages from clients are ignored.
 *
 * Scans start in many places (this API, another API process, scanctl, a
 * schedule, a webhook), so the feed does not count on seeing the starts:
 * while anyone listens, it reads the newest jobs from Temporal's visibility
 * (what every API process sees) every second, and turns what changed into
 * events. One reader per process, however many clients.
 *
 * The upgrade passes the same fences as every route: the Host check, the
 * Origin check (a page on any site may open a WebSocket to us, and browsers
 * apply no CORS to it: cross-site WebSocket hijacking), and with API_TOKEN
 * the token, as `Authorization: Bearer` or, since a browser's WebSocket
 * cannot send headers, as the subprotocol `bearer.<token>`.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Config } from '../config';
import type { Logger } from '../logger';
import type { JobBody, JobStatus, ScanService } from '../scans';
import { holdsToken } from './auth';
import { hostRefusal, originCheck } from './guards';
import type { HealthBody } from './health';

/** How often the newest jobs are read while anyone listens: events arrive within about this. */
export const ACTIVITY_POLL_MS = 1000;
/** Health is read at most this often (a database ping and a Temporal health check). */
const HEALTH_EVERY_MS = 5000;
/** The newest jobs read per poll: starts in a burst beyond this between two polls would be missed. */
const JOBS_PER_POLL = 50;
/** Jobs followed outside the newest (long scans overtaken by newer ones) read one by one per poll, at most. */
const FOLLOWED_OUTSIDE_PAGE = 20;
/** A client that lets this much go unread is dropped: it cannot keep up, and the API will not hold its backlog. */
const MAX_UNREAD_BYTES = 1 << 20;
/** Clients send nothing we read; a large frame is refused by the library. */
const MAX_CLIENT_FRAME = 4096;

export type ActivityType =
  | 'scan_started'
  | 'scan_completed'
  | 'scan_cancelled'
  | 'scan_failed'
  | 'scan_paused'
  | 'scan_resumed'
  | 'health_status'
  | 'heartbeat';

export interface ActivityFeedDependencies {
  config: Pick<Config, 'host' | 'apiToken' | 'corsOrigins' | 'wsHeartbeatMs'>;
  scans: Pick<ScanService, 'list' | 'get'>;
  readHealth: () => Promise<HealthBody>;
  logger: Logger;
  /** How often jobs are read; ACTIVITY_POLL_MS unless a test says otherwise. */
  pollMs?: number;
}

const TERMINAL_EVENT: Partial<Record<JobStatus, ActivityType>> = {
  completed: 'scan_completed',
  cancelled: 'scan_cancelled',
  failed: 'scan_failed',
  timeout: 'scan_failed',
};

/** The HTTP answer to an upgrade refused before it happens, in the API's error shape. */
function refuse(socket: Duplex, status: number, reason: string, code: string, message: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ code, message });
  const lines = [
    `HTTP/1.1 ${status} ${reason}`,
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
}

/** The feed of one API process: its clients, and while it has any, its reader of jobs and health. */
export class ActivityFeed {
  private readonly server: WebSocketServer;
  private readonly clients = new Set<WebSocket>();
  private readonly allowedOrigin: ReturnType<typeof originCheck>;
  private readonly pollMs: number;
  /** Each followed job's status when last read. */
  private readonly known = new Map<string, JobStatus>();
  private startedAt = 0;
  private poller: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private polling = false;
  private health: HealthBody['status'] | undefined;
  private healthReadAt = 0;

  constructor(private readonly deps: ActivityFeedDependencies) {
    this.allowedOrigin = originCheck(deps.config.corsOrigins);
    this.pollMs = deps.pollMs ?? ACTIVITY_POLL_MS;
    this.server = new WebSocketServer({
      noServer: true,
      maxPayload: MAX_CLIENT_FRAME,
      // A browser that offered subprotocols (the token's) fails the connection unless one is chosen.
      handleProtocols: (protocols) => protocols.values().next().value ?? false,
    });
  }

  /** The server's 'upgrade' listener: /ws through the fences, anything else refused. */
  readonly upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => socket.destroy());
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/ws') return refuse(socket, 404, 'Not Found', 'NOT_FOUND', 'no such route');
    const hostProblem = hostRefusal(this.deps.config.host, req.headers.host);
    if (hostProblem !== undefined) return refuse(socket, 403, 'Forbidden', 'FORBIDDEN_HOST', hostProblem);
    const origin = req.headers.origin;
    if (origin !== undefined && !this.allowedOrigin(req, origin)) {
      return refuse(socket, 403, 'Forbidden', 'FORBIDDEN_ORIGIN', `requests from origin ${JSON.stringify(origin.slice(0, 100))} are not allowed (see CORS_ORIGINS)`);
    }
    const token = this.deps.config.apiToken;
    if (token !== undefined && !holdsToken(token, req, '/ws', { webSocket: true })) {
      return refuse(socket, 401, 'Unauthorized', 'UNAUTHORIZED', 'a valid bearer token is required (Authorization header, or the subprotocol bearer.<token>)', {
        'WWW-Authenticate': 'Bearer realm="video-library-scanner"',
      });
    }
    this.server.handleUpgrade(req, socket, head, (ws) => this.join(ws));
  };

  /** Closes every client and stops reading. */
  close(): void {
    for (const ws of this.clients) ws.terminate();
    this.clients.clear();
    this.stop();
  }

  /** Clients connected now. */
  get size(): number {
    return this.clients.size;
  }

  private join(ws: WebSocket): void {
    this.clients.add(ws);
    // Messages from clients are ignored; errors end that client only.
    ws.on('message', () => undefined);
    ws.on('error', () => ws.terminate());
    ws.on('close', () => {
      this.clients.delete(ws);
      if (this.clients.size === 0) this.stop();
    });
    if (this.poller === undefined) this.start();
    // The health status as it stands, so that a new client need not wait for a change.
    if (this.health !== undefined) this.sendTo(ws, 'health_status', { status: this.health });
  }

  private start(): void {
    this.startedAt = Date.now();
    this.known.clear();
    this.health = undefined;
    this.healthReadAt = 0;
    this.poller = setInterval(() => void this.poll(), this.pollMs);
    this.heartbeat = setInterval(() => this.broadcast('heartbeat', {}), this.deps.config.wsHeartbeatMs);
    void this.poll(true);
  }

  private stop(): void {
    clearInterval(this.poller);
    clearInterval(this.heartbeat);
    this.poller = undefined;
    this.heartbeat = undefined;
  }

  /**
   * Reads the newest jobs (and the followed ones outside them) and health,
   * and sends what changed. The first read after the feed starts only learns
   * what is there, except for jobs created since it started.
   */
  private async poll(first = false): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      await this.pollJobs(first);
      if (Date.now() - this.healthReadAt >= HEALTH_EVERY_MS || this.health === undefined) {
        this.healthReadAt = Date.now();
        const status = (await this.deps.readHealth()).status;
        if (status !== this.health && this.poller !== undefined) {
          this.health = status;
          this.broadcast('health_status', { status });
        }
      }
    } catch (error) {
      this.deps.logger.warn({ err: error }, 'activity feed could not read jobs or health; trying again');
    } finally {
      this.polling = false;
    }
  }

  private async pollJobs(first: boolean): Promise<void> {
    const page = await this.deps.scans.list({ limit: JOBS_PER_POLL });
    const seen = new Set<string>();
    for (const job of page.jobs) {
      seen.add(job.job_id);
      this.observe(job, first);
    }
    const outside = [...this.known].filter(([id, status]) => !seen.has(id) && TERMINAL_EVENT[status] === undefined).slice(0, FOLLOWED_OUTSIDE_PAGE);
    for (const [id] of outside) {
      const job = await this.deps.scans.get(id).catch(() => null);
      if (job === null) this.known.delete(id);
      else this.observe(job, first);
    }
    // Finished jobs no longer among the newest are forgotten: the map stays the size of a page.
    for (const [id, status] of this.known) {
      if (!seen.has(id) && TERMINAL_EVENT[status] !== undefined) this.known.delete(id);
    }
  }

  /** Sends the events of one job's change since it was last read. */
  private observe(job: JobBody, first: boolean): void {
    const before = this.known.get(job.job_id);
    this.known.set(job.job_id, job.status);
    if (before === job.status) return;
    const scan = { path: job.path, job_id: job.job_id };
    if (before === undefined) {
      // Known from the start of the feed: only learned, unless it was created since.
      if (first && Date.parse(job.created_at) < this.startedAt) return;
      this.broadcast('scan_started', scan);
    } else if (before === 'paused' && job.status !== 'paused' && TERMINAL_EVENT[job.status] === undefined) {
      this.broadcast('scan_resumed', scan);
    }
    if (job.status === 'paused') this.broadcast('scan_paused', scan);
    const terminal = TERMINAL_EVENT[job.status];
    if (terminal === 'scan_completed') {
      this.broadcast(terminal, { ...scan, video_count: (job.result?.new ?? job.counts.new) + (job.result?.updated ?? job.counts.updated) });
    } else if (terminal !== undefined) {
      this.broadcast(terminal, { ...scan, ...(job.error ? { error: job.error } : {}) });
    }
  }

  private message(type: ActivityType, payload: Record<string, unknown>): string {
    return JSON.stringify({ type, payload, correlation_id: randomUUID(), timestamp: new Date().toISOString() });
  }

  private broadcast(type: ActivityType, payload: Record<string, unknown>): void {
    if (this.clients.size === 0) return;
    const text = this.message(type, payload);
    for (const ws of this.clients) this.deliver(ws, text);
  }

  private sendTo(ws: WebSocket, type: ActivityType, payload: Record<string, unknown>): void {
    this.deliver(ws, this.message(type, payload));
  }

  private deliver(ws: WebSocket, text: string): void {
    if (ws.readyState !== ws.OPEN) return;
    if (ws.bufferedAmount > MAX_UNREAD_BYTES) {
      ws.terminate();
      return;
    }
    ws.send(text);
  }
}
