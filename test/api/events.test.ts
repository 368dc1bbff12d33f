/**
 * Event streams that scale, against the real stack: many streams of one job
 * share one Temporal read per interval (counted at ScanService.get, not
 * timed), and one client may hold only so many streams open (429 past it).
 * A prober held at a gate keeps a scan running for as long as a test needs.
 */
import { promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Server } from 'node:http';
import { createApp } from '../../src/api/app';
import { JOB_EVENTS_INTERVAL_MS } from '../../src/api/job-events';
import { createLogger } from '../../src/logger';
import { ScanService, type JobBody } from '../../src/scans';
import { buildLibrary, ensureTestMedia, type TestClip } from '../support/media';
import { http as call, startStack, waitFor, type Stack, withProbeHook, type StackProber } from '../support/stack';

let clips: TestClip[];
let work: string;
let stack: Stack;

/** Probes wait here while it is closed. */
let gate: { promise: Promise<void>; open: () => void } = openGate();

function openGate(): { promise: Promise<void>; open: () => void } {
  return { promise: Promise.resolve(), open: () => undefined };
}

function closeGate(): void {
  let open: () => void = () => undefined;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  gate = { promise, open };
}

/** ScanService whose reads of a job are recorded: when each began, and how many overlapped. */
class CountingScans extends ScanService {
  readonly reads = new Map<string, number[]>();
  private inFlight = new Map<string, number>();
  readonly mostInFlight = new Map<string, number>();

  override async get(jobId: string): Promise<JobBody> {
    this.reads.set(jobId, [...(this.reads.get(jobId) ?? []), performance.now()]);
    const now = (this.inFlight.get(jobId) ?? 0) + 1;
    this.inFlight.set(jobId, now);
    this.mostInFlight.set(jobId, Math.max(now, this.mostInFlight.get(jobId) ?? 0));
    try {
      return await super.get(jobId);
    } finally {
      this.inFlight.set(jobId, (this.inFlight.get(jobId) ?? 1) - 1);
    }
  }

  readsOf(jobId: string): number[] {
    return this.reads.get(jobId) ?? [];
  }
}

interface Api {
  scans: CountingScans;
  baseUrl: string;
  close: () => Promise<void>;
}

/** The real app on its own port, reading jobs through a CountingScans. */
async function startApi(maxStreamsPerClient: number): Promise<Api> {
  const scans = new CountingScans(stack.client, stack.config, stack.library, stack.taskQueue);
  const app = createApp({
    config: { ...stack.config, maxStreamsPerClient },
    scans,
    library: stack.library,
    logger: createLogger('test', 'silent'),
    checkTemporal: async () => undefined,
  });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return {
    scans,
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

interface Stream {
  status: number;
  events: { event: string; data: JobBody }[];
  /** The error body when the status is not 200. */
  error: { code: string; message: string } | null;
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  /** Resolves with the first event. */
  first: Promise<void>;
  close: () => void;
}

/** Opens an event stream on its own connection and parses it as it comes. */
function openStream(baseUrl: string, jobId: string): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${baseUrl}/api/v1/jobs/${jobId}/events`, { agent: false }, (res) => {
      let buffer = '';
      let endStream: () => void = () => undefined;
      let firstEvent: () => void = () => undefined;
      const stream: Stream = {
        status: res.statusCode ?? 0,
        events: [],
        error: null,
        ended: new Promise<void>((r) => {
          endStream = r;
        }),
        first: new Promise<void>((r) => {
          firstEvent = r;
        }),
        close: () => req.destroy(),
      };
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let at: number;
        while ((at = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, at);
          buffer = buffer.slice(at + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event !== undefined && data !== undefined) {
            stream.events.push({ event, data: JSON.parse(data) as JobBody });
            firstEvent();
          }
        }
      });
      res.on('end', () => {
        if (stream.status !== 200) stream.error = JSON.parse(buffer) as { code: string; message: string };
        endStream();
      });
      res.on('error', () => endStream());
      res.on('close', () => endStream());
      resolve(stream);
    });
    req.on('error', reject);
  });
}

async function startScan(baseUrl: string, folder: string): Promise<string> {
  const started = await call<{ job_id: string }>(baseUrl, 'POST', '/api/v1/videos/scan', { path: folder });
  expect(started.status).toBe(202);
  return started.body.job_id;
}

beforeAll(async () => {
  clips = await ensureTestMedia();
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'events-')));
  stack = await startStack(
    { SCAN_BATCH_SIZE: '5', PROBE_CONCURRENCY: '2' },
    {
      wrapProber: (prober: StackProber): StackProber => withProbeHook(prober, async () => {
        await gate.promise;
      }),
    },
  );
});

afterAll(async () => {
  gate.open();
  await stack?.close();
  await fs.rm(work, { recursive: true, force: true });
});

describe('event streams', () => {
  it('give twenty streams of one job one read per interval, and each the whole story to its end', async () => {
    const api = await startApi(50);
    try {
      const folder = path.join(work, 'shared');
      await buildLibrary(folder, 40, clips);
      closeGate();
      const jobId = await startScan(api.baseUrl, folder);
      // Running, and held at the gate: every stream joins the same running scan.
      await waitFor(() => stack.scans.get(jobId), (job) => job.status === 'running');

      const streams = await Promise.all(Array.from({ length: 20 }, () => openStream(api.baseUrl, jobId)));
      expect(streams.map((s) => s.status)).toEqual(streams.map(() => 200));
      await Promise.all(streams.map((s) => s.first));
      gate.open();
      await Promise.all(streams.map((s) => s.ended));

      for (const stream of streams) {
        const kinds = stream.events.map((e) => e.event);
        expect(kinds[kinds.length - 1]).toBe('end');
        expect(kinds.slice(0, -1).every((kind) => kind === 'progress')).toBe(true);
        const last = stream.events[stream.events.length - 1]?.data;
        expect(last).toMatchObject({ job_id: jobId, status: 'completed', progress: 1 });
        const progress = stream.events.map((e) => e.data.progress ?? 0);
        expect([...progress].sort((a, b) => a - b)).toEqual(progress);
      }

      // One reader for the twenty streams: its reads never overlapped, and
      // each began at least an interval after the one before (a few ms of
      // slack for timer granularity); twenty readers would read twenty times
      // per interval, most of them less than an interval after another.
      const reads = api.scans.readsOf(jobId);
      expect(reads.length).toBeGreaterThan(1);
      expect(api.scans.mostInFlight.get(jobId)).toBe(1);
      const gaps = reads.slice(1).map((at, i) => at - (reads[i] as number));
      expect(Math.min(...gaps)).toBeGreaterThanOrEqual(JOB_EVENTS_INTERVAL_MS - 5);

      // A stream of a finished job is its terminal state, once, and nothing else.
      const late = await openStream(api.baseUrl, jobId);
      await late.ended;
      expect(late.events.map((e) => [e.event, e.data.status])).toEqual([['end', 'completed']]);
    } finally {
      gate.open();
      await api.close();
    }
  });

  it('bounds the streams one client holds open with 429 TOO_MANY_STREAMS, and stops reading once the last one closes', async () => {
    const api = await startApi(3);
    try {
      const folder = path.join(work, 'bounded');
      await buildLibrary(folder, 10, clips);
      closeGate();
      const jobId = await startScan(api.baseUrl, folder);
      await waitFor(() => stack.scans.get(jobId), (job) => job.status === 'running');

      // Refusals for a job that does not exist hold no place.
      for (let i = 0; i < 5; i += 1) {
        const missing = await openStream(api.baseUrl, 'scan-00000000-0000-0000-0000-000000000000');
        await missing.ended;
        expect(missing.status).toBe(404);
      }

      const open = await Promise.all([1, 2, 3].map(() => openStream(api.baseUrl, jobId)));
      expect(open.map((s) => s.status)).toEqual([200, 200, 200]);
      await Promise.all(open.map((s) => s.first));

      const refused = await openStream(api.baseUrl, jobId);
      expect(refused.status).toBe(429);
      await refused.ended;
      expect(refused.error?.code).toBe('TOO_MANY_STREAMS');
      expect(refused.error?.message).toMatch(/MAX_STREAMS_PER_CLIENT/);
      // Other requests of the same client are not affected.
      expect((await call(api.baseUrl, 'GET', `/api/v1/jobs/${jobId}`)).status).toBe(200);

      // A closed stream gives its place back.
      open[0]?.close();
      const again = await waitFor(
        async () => {
          const stream = await openStream(api.baseUrl, jobId);
          if (stream.status !== 200) await stream.ended;
          return stream;
        },
        (stream) => stream.status === 200,
        30_000,
        100,
      );
      await again.first;

      // With every stream gone, the job's reader stops: no read for several intervals.
      for (const stream of [...open, again]) stream.close();
      await waitFor(
        async () => api.scans.readsOf(jobId),
        (reads) => performance.now() - (reads[reads.length - 1] ?? 0) > 6 * JOB_EVENTS_INTERVAL_MS,
        30_000,
        100,
      );
      const settled = api.scans.readsOf(jobId).length;
      await new Promise((resolve) => setTimeout(resolve, 4 * JOB_EVENTS_INTERVAL_MS));
      expect(api.scans.readsOf(jobId)).toHaveLength(settled);
    } finally {
      gate.open();
      await api.close();
    }
  });
});
