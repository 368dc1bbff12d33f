/**
 * The client side of the REST API for `scanctl`: JSON calls and the job's
 * Server-Sent Events stream, with failures sorted into the two kinds a script
 * must tell apart (the API said no, or the API could not be reached).
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import type { JobBody } from '../scans';

/** The API answered with a 4xx: it understood and refused. */
export class ApiRefusedError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiRefusedError';
  }
}

/** No answer (connection refused, DNS, timeout), or a 5xx: the API could not do it now. */
export class ApiUnreachableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ApiUnreachableError';
  }
}

/** One event of a job's stream: `progress` while it runs, `end` with the terminal body. */
export interface JobEvent {
  event: string;
  job: JobBody;
}

export interface ApiClientOptions {
  baseUrl: string;
  token: string | undefined;
  /** Per-request limit for plain calls (the event stream has none). */
  timeoutMs?: number;
}

function describeNetworkError(error: unknown, url: string): string {
  const cause = (error as { cause?: { code?: string; message?: string } } | undefined)?.cause;
  const reason = cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : String(error));
  return `cannot reach the API at ${url}: ${reason}`;
}

/** A small typed client of API.md's routes. */
export class ApiClient {
  private readonly baseUrl: string;
  private readonly token: string | undefined;
  private readonly timeoutMs: number;

  constructor(options: ApiClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.token = options.token;
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...extra, ...(this.token !== undefined ? { authorization: `Bearer ${this.token}` } : {}) };
  }

  /** Sends a request and returns its JSON body; throws ApiRefusedError or ApiUnreachableError. */
  async call<T>(method: 'GET' | 'POST' | 'DELETE', route: string, body?: unknown): Promise<{ status: number; body: T }> {
    const url = `${this.baseUrl}${route}`;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: this.headers(body !== undefined ? { 'content-type': 'application/json' } : {}),
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      throw new ApiUnreachableError(describeNetworkError(error, this.baseUrl));
    }
    const text = await res.text().catch(() => '');
    if (!res.ok) throw this.failure(res.status, text);
    try {
      return { status: res.status, body: (text.length > 0 ? JSON.parse(text) : {}) as T };
    } catch {
      throw new ApiUnreachableError(`the API at ${this.baseUrl} answered ${res.status} with a body that is not JSON`);
    }
  }

  private failure(status: number, text: string): Error {
    let code = `HTTP_${status}`;
    let message = text.trim().slice(0, 500) || `HTTP ${status}`;
    try {
      const parsed = JSON.parse(text) as { code?: unknown; message?: unknown };
      if (typeof parsed.code === 'string') code = parsed.code;
      if (typeof parsed.message === 'string') message = parsed.message;
    } catch {
      // Not the API's error body (a proxy's page, say): keep the text.
    }
    if (status >= 400 && status < 500) return new ApiRefusedError(status, code, message);
    return new ApiUnreachableError(`the API at ${this.baseUrl} failed: ${status} ${code}: ${message}`);
  }

  /**
   * The job's event stream (GET /api/v1/jobs/{id}/events), as an async
   * iterator of parsed events. Ends after the `end` event or when the server
   * closes the stream; `signal` stops it early.
   */
  async *events(jobId: string, signal?: AbortSignal): AsyncGenerator<JobEvent> {
    const url = `${this.baseUrl}/api/v1/jobs/${encodeURIComponent(jobId)}/events`;
    let res: Response;
    try {
      // The bearer token travels in a header, which the browser's EventSource cannot send; fetch can.
      res = await fetch(url, { headers: this.headers({ accept: 'text/event-stream' }), signal });
    } catch (error) {
      if (signal?.aborted) return;
      throw new ApiUnreachableError(describeNetworkError(error, this.baseUrl));
    }
    if (!res.ok || res.body === null) throw this.failure(res.status, await res.text().catch(() => ''));
    const queue: EventSourceMessage[] = [];
    const parser = createParser({ onEvent: (message) => queue.push(message) });
    const decoder = new TextDecoder();
    const reader = res.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        parser.feed(decoder.decode(value, { stream: true }));
        while (queue.length > 0) {
          const message = queue.shift() as EventSourceMessage;
          const job = JSON.parse(message.data) as JobBody;
          yield { event: message.event ?? 'message', job };
          if (message.event === 'end') return;
        }
      }
    } catch (error) {
      if (signal?.aborted) return;
      throw new ApiUnreachableError(describeNetworkError(error, this.baseUrl));
    } finally {
      // Closes the connection when the caller stops early (end event, Ctrl-C).
      await reader.cancel().catch(() => undefined);
    }
  }
}
