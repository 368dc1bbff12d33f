/**
 * Following a scan to its end from its event stream, shown three ways: a live
 * progress bar on a terminal, one plain line per change (at most one a
 * second) when piped, or one JSON line per event with `--json`.
 */
import { Presets, SingleBar } from 'cli-progress';
import type { JobBody } from '../scans';
import { ApiUnreachableError, type ApiClient, type JobEvent } from './api-client';
import { filesDone, formatPercent, formatSeconds, jobLine, jobSummary, rateUnit, TERMINAL } from './format';

export type FollowMode = 'bar' | 'lines' | 'json';

/** How long a dropped stream is retried before the API counts as unreachable. */
const RECONNECT_ATTEMPTS = 15;
const RECONNECT_DELAY_MS = 1000;
/** The plain mode's pace: a line per change, but no more than one a second, for logs and CI. */
const LINE_INTERVAL_MS = 1000;
/** The bar's resolution: progress is a fraction, the bar counts in thousandths of it. */
const BAR_STEPS = 1000;

interface View {
  show(event: JobEvent): void;
  /** Called once with the terminal job. */
  finish(job: JobBody): void;
  /** Leaves the terminal tidy when following stops early (Ctrl-C). */
  abandon(): void;
}

function barView(out: NodeJS.WritableStream): View {
  const bar = new SingleBar(
    {
      stream: out,
      format: '{bar} {percent} | {done}/{discovered} files | {rate} {unit} | ETA {remaining} | {phase}',
      barsize: 30,
      hideCursor: true,
      clearOnComplete: false,
      // Redraws come from the stream; the timer only keeps the line fresh.
      fps: 5,
    },
    Presets.shades_classic,
  );
  let started = false;
  const payload = (job: JobBody): Record<string, string | number> => ({
    percent: formatPercent(job.progress).padStart(6),
    done: filesDone(job),
    discovered: job.counts.discovered,
    rate: job.rate_per_s,
    unit: rateUnit(job),
    // Not `eta`: that name is the library's own estimate; the API's is better informed.
    remaining: formatSeconds(job.eta_seconds),
    phase: job.cancel_requested ? 'cancelling' : job.pause_requested ? 'pausing' : job.status === 'running' ? job.phase : job.status,
  });
  return {
    show({ job }) {
      const value = Math.round((job.progress ?? 0) * BAR_STEPS);
      if (!started) {
        bar.start(BAR_STEPS, value, payload(job));
        started = true;
      } else {
        bar.update(value, payload(job));
      }
    },
    finish(job) {
      if (started) {
        bar.update(Math.round((job.progress ?? 0) * BAR_STEPS), payload(job));
        bar.stop();
      }
      out.write(`${jobSummary(job)}\n`);
    },
    abandon() {
      if (started) bar.stop();
    },
  };
}

function linesView(out: NodeJS.WritableStream): View {
  let lastText = '';
  let lastAt = 0;
  let pending: string | null = null;
  let timer: NodeJS.Timeout | undefined;
  const print = (text: string): void => {
    out.write(`${text}\n`);
    lastText = text;
    lastAt = Date.now();
    pending = null;
  };
  return {
    show({ job }) {
      const text = jobLine(job);
      if (text === lastText) return;
      const wait = lastAt + LINE_INTERVAL_MS - Date.now();
      if (wait <= 0) {
        print(text);
        return;
      }
      // Too soon: keep the newest state and print it when the second is up.
      pending = text;
      timer ??= setTimeout(() => {
        timer = undefined;
        if (pending !== null) print(pending);
      }, wait);
    },
    finish(job) {
      clearTimeout(timer);
      const text = jobLine(job);
      if (text !== lastText) print(text);
      out.write(`${jobSummary(job)}\n`);
    },
    abandon() {
      clearTimeout(timer);
    },
  };
}

function jsonView(out: NodeJS.WritableStream): View {
  return {
    show(event) {
      out.write(`${JSON.stringify({ event: event.event, job: event.job })}\n`);
    },
    finish(job) {
      out.write(`${JSON.stringify(job)}\n`);
    },
    abandon() {},
  };
}

export interface FollowOptions {
  client: ApiClient;
  jobId: string;
  mode: FollowMode;
  out: NodeJS.WritableStream;
  signal?: AbortSignal;
}

/**
 * Follows a job to its terminal state and returns it (or null when `signal`
 * stopped following first). A dropped stream is reopened; the API sends the
 * current state on every connection, so nothing is lost but the moments between.
 */
export async function followJob({ client, jobId, mode, out, signal }: FollowOptions): Promise<JobBody | null> {
  const view = mode === 'bar' ? barView(out) : mode === 'lines' ? linesView(out) : jsonView(out);
  signal?.addEventListener('abort', () => view.abandon(), { once: true });
  let failures = 0;
  for (;;) {
    try {
      for await (const event of client.events(jobId, signal)) {
        failures = 0;
        view.show(event);
        if (event.event === 'end' || TERMINAL.has(event.job.status)) {
          view.finish(event.job);
          return event.job;
        }
      }
      if (signal?.aborted) return null;
      // The server closed the stream before the end (restarting, say): reopen it.
      failures += 1;
      if (failures >= RECONNECT_ATTEMPTS) {
        view.abandon();
        throw new ApiUnreachableError(`the event stream of ${jobId} kept closing before the scan ended`);
      }
    } catch (error) {
      if (!(error instanceof ApiUnreachableError)) {
        view.abandon();
        throw error;
      }
      failures += 1;
      if (failures >= RECONNECT_ATTEMPTS) {
        view.abandon();
        throw error;
      }
    }
    if (signal?.aborted) return null;
    await new Promise((resolve) => setTimeout(resolve, RECONNECT_DELAY_MS));
  }
}
