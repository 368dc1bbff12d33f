/**
 * An event stream whose client stops reading, against the real stack: the
 * API keeps its buffer for that client bounded (progress events in between
 * are dropped, the end event never is), and nothing writes to the stream
 * after its end (a keep-alive written after end raised an unhandled error
 * that ended the process). The client is a raw socket that reads nothing
 * while its job waits, runs and ends; the API listens on a Unix socket,
 * whose kernel buffer is small and fixed (a TCP loopback connection absorbs
 * megabytes first), and its keep-alive interval is shortened through the
 * app's test-only timings so that the stream fills in a moment.
 */
import { promises as fs } from 'node:fs';
import http, { type Server } from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createApp } from '../../src/api/app';
import { createLogger } from '../../src/logger';
import { ScanService, type JobBody } from '../../src/scans';
import { TERMINAL_STATUSES } from '../../src/scans';
import { buildLibrary, ensureTestMedia } from '../support/media';
import { startStack, waitFor, withProbeHook, type Stack } from '../support/stack';

const KEEP_ALIVE_MS = 1;
/** Node's default highWaterMark of a socket: past it, write() returns false. */
const HIGH_WATER_MARK = 16 * 1024;

let stack: Stack;
let work: string;
let gate: { promise: Promise<void>; open: () => void };

/** Reads jobs like the real service, and notes when a read saw the job's end. */
class WatchedScans extends ScanService {
  readonly ended = new Set<string>();
  override async get(jobId: string): Promise<JobBody> {
    const job = await super.get(jobId);
    if (TERMINAL_STATUSES.has(job.status)) this.ended.add(jobId);
    return job;
  }
}

beforeAll(async () => {
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'events-backpressure-')));
  let open: () => void = () => undefined;
  gate = { promise: new Promise<void>((resolve) => (open = resolve)), open: () => open() };
  stack = await startStack(
    { SCAN_ROOTS: work, PROBE_CONCURRENCY: '1', SCAN_BATCH_SIZE: '5' },
    { wrapProber: (prober) => withProbeHook(prober, () => gate.promise) },
  );
});

afterAll(async () => {
  gate.open();
  await stack?.close();
  await fs.rm(work, { recursive: true, force: true });
});

it('keeps a non-reading client bounded and stays up after the job ends, the end event delivered last', async () => {
  await buildLibrary(path.join(work, 'media'), 40, await ensureTestMedia());
  const scans = new WatchedScans(stack.client, stack.config, stack.library, stack.taskQueue);
  const app = createApp({
    config: stack.config,
    scans,
    library: stack.library,
    logger: createLogger('test', 'silent'),
    checkTemporal: async () => undefined,
    eventStreams: { keepAliveMs: KEEP_ALIVE_MS },
  });
  const socketPath = path.join(work, 'api.sock');
  const server: Server = http.createServer(app);
  const connections: net.Socket[] = [];
  server.on('connection', (socket: net.Socket) => connections.push(socket));
  const streams: http.ServerResponse[] = [];
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (req.url?.endsWith('/events')) streams.push(res);
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  let mostBuffered = 0;
  const sampler = setInterval(() => {
    for (const socket of connections) mostBuffered = Math.max(mostBuffered, socket.writableLength);
  }, 5);
  try {
    const { scanId: jobId } = await scans.start({ root: path.join(work, 'media'), recursive: true, force: false });

    // The client asks for the stream and then reads nothing.
    const client = net.connect(socketPath);
    client.pause();
    client.write(`GET /api/v1/jobs/${jobId}/events HTTP/1.1\r\nHost: localhost\r\n\r\n`);
    const received: Buffer[] = [];
    client.on('data', (chunk: Buffer) => received.push(chunk));
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));

    // Keep-alives fill the kernel's buffer and then the socket's own, to its high-water mark: the stream is congested.
    await waitFor(async () => connections[0]?.writableLength ?? 0, (buffered) => buffered >= HIGH_WATER_MARK, 60_000, 10);

    // The job runs and ends while the client still reads nothing.
    gate.open();
    await waitFor(async () => scans.ended.has(jobId), (ended) => ended, 120_000, 50);
    // The stream's reader has read the end and the response has ended, its end still in the buffer:
    // the polls of this wait are hundreds of keep-alive intervals, in which a stray keep-alive shows itself.
    await waitFor(async () => streams[0]?.writableEnded ?? false, (ended) => ended, 10_000, 10);
    await waitFor(async () => connections[0]?.writableLength ?? 0, (buffered) => buffered > 0, 10_000, 10);

    // The API is up, and what it holds for the client stayed within a high-water mark and two events.
    const health = await new Promise<number>((resolve, reject) => {
      http.get({ socketPath, path: '/health/live', headers: { host: 'localhost' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on('error', reject);
    });
    expect(health).toBe(200);

    // Now the client reads: every event is whole, the last is `end` with the terminal job.
    client.resume();
    client.end();
    await closed;
    const text = Buffer.concat(received).toString('utf8');
    const events = [...text.matchAll(/event: (\w+)\ndata: (\{.*\})\n\n/g)].map((m) => ({ type: m[1], job: JSON.parse(m[2] as string) as JobBody }));
    expect(events.length).toBeGreaterThan(0);
    const last = events[events.length - 1];
    expect(last?.type).toBe('end');
    expect(last?.job.status).toBe('completed');
    expect(events.filter((e) => e.type === 'end')).toHaveLength(1);
    const largestEvent = Math.max(...events.map((e) => JSON.stringify(e.job).length + 64));
    expect(mostBuffered).toBeLessThanOrEqual(HIGH_WATER_MARK + 2 * largestEvent);
  } finally {
    clearInterval(sampler);
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
