/**
 * Event streams that scale: one reader per job, however many streams watch it,
 * so that many streams on one scan cost one describe per interval, not one
 * each (which would slow every other status read). The
 * first stream of a job starts its reader, later ones subscribe to it, each
 * change is serialised once and fanned out, and the reader stops after the
 * terminal event or as soon as its last subscriber has gone. The number of
 * streams one client may hold open is bounded as well.
 */
import { DomainError } from '../errors';
import type { Logger } from '../logger';
import { TERMINAL_STATUSES, type JobBody, type ScanService } from '../scans';

/** How often a job's reader reads it: fast enough to look live, cheap enough to share. */
export const JOB_EVENTS_INTERVAL_MS = 250;

/** One change of a job, serialised once for every stream. */
export interface JobEvent {
  /** `progress` while the job runs; `end` once, with the terminal state. */
  type: 'progress' | 'end';
  job: JobBody;
  /** `job` as JSON, the `data:` line of the event. */
  data: string;
}

export type JobEventListener = (event: JobEvent) => void;

export interface JobSubscription {
  /** The job's state when the stream joined: its first event. */
  current: JobEvent;
  unsubscribe: () => void;
}

export interface JobEventsOptions {
  /** Reads a job; rejects with NOT_FOUND for a job that does not exist. */
  scans: Pick<ScanService, 'get'>;
  logger: Logger;
  /** Streams one client (remote address) may hold open at once. */
  maxStreamsPerClient: number;
  intervalMs?: number;
}

/** Reads one scan every interval for as long as anyone listens. */
class ScanPoller {
  readonly listeners = new Set<JobEventListener>();
  /** The last event sent, replayed to a stream that joins later. */
  latest: JobEvent | undefined;
  /** Settles with the first read: a subscriber waits for it to know the job exists. */
  readonly ready: Promise<void>;
  private settleReady: (error?: unknown) => void = () => undefined;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly scanId: string,
    private readonly options: Required<Pick<JobEventsOptions, 'intervalMs'>> & JobEventsOptions,
    private readonly onStop: (reader: ScanPoller) => void,
  ) {
    this.ready = new Promise<void>((resolve, reject) => {
      this.settleReady = (error?: unknown) => (error === undefined ? resolve() : reject(error));
    });
    // Nobody may be waiting yet when the first read fails; the subscriber that is sees the rejection.
    this.ready.catch(() => undefined);
    void this.read();
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    this.onStop(this);
  }

  private async read(): Promise<void> {
    let job: JobBody;
    try {
      job = await this.options.scans.get(this.scanId);
    } catch (error) {
      if (this.latest === undefined) {
        // The job does not exist (or cannot be read at all): every waiting stream answers with the error.
        this.stop();
        this.settleReady(error);
        return;
      }
      this.options.logger.warn({ err: error, scanId: this.scanId }, 'event stream could not read the job; retrying');
      this.schedule();
      return;
    }
    if (this.stopped) return;
    const data = JSON.stringify(job);
    const terminal = TERMINAL_STATUSES.has(job.status);
    if (terminal || data !== this.latest?.data) {
      const event: JobEvent = { type: terminal ? 'end' : 'progress', job, data };
      this.latest = event;
      // Stop before fanning out, so a stream that opens in response gets a fresh reader.
      if (terminal) this.stop();
      for (const listener of [...this.listeners]) listener(event);
    }
    this.settleReady();
    if (!terminal) this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.read(), this.options.intervalMs);
  }
}

/**
 * The shared readers of a process's event streams, and the per-client bound.
 * One per app: `createApp` builds it.
 */
export class JobEvents {
  private readonly readers = new Map<string, ScanPoller>();
  private readonly openByClient = new Map<string, number>();
  private readonly options: Required<Pick<JobEventsOptions, 'intervalMs'>> & JobEventsOptions;

  constructor(options: JobEventsOptions) {
    this.options = { ...options, intervalMs: options.intervalMs ?? JOB_EVENTS_INTERVAL_MS };
  }

  /**
   * Counts one more open stream for a client, or refuses with 429
   * TOO_MANY_STREAMS past the bound. Returns the release, safe to call more than once.
   */
  admit(client: string): () => void {
    const open = this.openByClient.get(client) ?? 0;
    if (open >= this.options.maxStreamsPerClient) {
      throw new DomainError(
        'TOO_MANY_STREAMS',
        429,
        `${open} event streams are open from this client, the most allowed (MAX_STREAMS_PER_CLIENT); close one first`,
      );
    }
    this.openByClient.set(client, open + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.openByClient.get(client) ?? 1) - 1;
      if (left > 0) this.openByClient.set(client, left);
      else this.openByClient.delete(client);
    };
  }

  /**
   * Subscribes to a job's changes. Resolves, once the job is known to exist,
   * with its current state (the terminal one, as `end`, for a finished job:
   * nothing follows it); the listener then gets every later change, `end`
   * last. Rejects as the read does (NOT_FOUND). The job's reader stops with
   * its last subscriber.
   */
  async subscribe(scanId: string, listener: JobEventListener): Promise<JobSubscription> {
    let reader = this.readers.get(scanId);
    if (reader === undefined) {
      reader = new ScanPoller(scanId, this.options, (stopped) => {
        if (this.readers.get(scanId) === stopped) this.readers.delete(scanId);
      });
      this.readers.set(scanId, reader);
    }
    const joined = reader;
    await joined.ready;
    // Nothing can read between the first read's fan-out and this line (reads
    // wait for a timer), so `latest` is what every other stream has seen last.
    const current = joined.latest as JobEvent;
    if (current.type === 'end') return { current, unsubscribe: () => undefined };
    joined.listeners.add(listener);
    return {
      current,
      unsubscribe: () => {
        joined.listeners.delete(listener);
        if (joined.listeners.size === 0) joined.stop();
      },
    };
  }

  /** Readers running now (one per watched job): for tests and metrics. */
  get activeReaders(): number {
    return this.readers.size;
  }
}

/** How often a quiet stream gets a comment line, so that proxies keep it open. */
export const KEEP_ALIVE_INTERVAL_MS = 15_000;

/** What an event stream writes to: the response, as far as backpressure goes. */
export interface EventStreamTarget {
  write(chunk: string): boolean;
  end(): void;
  on(event: 'drain' | 'close' | 'error', listener: (...args: unknown[]) => void): unknown;
  off(event: 'drain' | 'close' | 'error', listener: (...args: unknown[]) => void): unknown;
  readonly writableEnded: boolean;
  readonly destroyed: boolean;
}

/**
 * One client's event stream, written with respect for backpressure. While
 * the client does not take what was written (`write` returned false, until
 * 'drain'), progress events are not written: only the newest waits, and goes
 * out on 'drain' (a progress event is the whole job body, so skipping the
 * ones in between loses nothing but their moment). The `end` event is never
 * dropped: it is written whatever the state, and the stream ends. Keep-alive
 * comments go out only while the stream is quiet and flowing. Every timer
 * and listener is gone once the stream ends or closes, so nothing writes
 * after the end (a write after end is an 'error' that, unhandled, ends the
 * process).
 */
export class EventStream {
  private congested = false;
  private waiting: JobEvent | undefined;
  private finished = false;
  private readonly keepAlive: NodeJS.Timeout;
  private readonly onDrain = (): void => {
    this.congested = false;
    const next = this.waiting;
    this.waiting = undefined;
    if (next !== undefined) this.send(next);
  };
  private readonly onClose = (): void => this.stop();
  // A write that fails after the client has gone is no crash: the stream just stops.
  private readonly onError = (): void => this.stop();

  constructor(
    private readonly target: EventStreamTarget,
    keepAliveMs: number = KEEP_ALIVE_INTERVAL_MS,
  ) {
    target.on('drain', this.onDrain);
    target.on('close', this.onClose);
    target.on('error', this.onError);
    this.keepAlive = setInterval(() => {
      if (!this.congested) this.write(': keep-alive\n\n');
    }, keepAliveMs);
  }

  /** Writes an event, or keeps it for 'drain' (progress), or writes it and ends (end). */
  send(event: JobEvent): void {
    if (this.finished) return;
    if (event.type === 'end') {
      this.waiting = undefined;
      this.write(`event: end\ndata: ${event.data}\n\n`);
      this.stop();
      if (!this.target.writableEnded && !this.target.destroyed) this.target.end();
      return;
    }
    if (this.congested) {
      this.waiting = event;
      return;
    }
    this.write(`event: ${event.type}\ndata: ${event.data}\n\n`);
  }

  /** Whether the stream has ended or closed. */
  get ended(): boolean {
    return this.finished;
  }

  private write(chunk: string): void {
    if (this.target.writableEnded || this.target.destroyed) {
      this.stop();
      return;
    }
    if (!this.target.write(chunk)) this.congested = true;
  }

  /** Clears the timer and the drain listener; the error listener stays, so a late socket error is never unhandled. */
  stop(): void {
    if (this.finished) return;
    this.finished = true;
    this.waiting = undefined;
    clearInterval(this.keepAlive);
    this.target.off('drain', this.onDrain);
    this.target.off('close', this.onClose);
  }
}
