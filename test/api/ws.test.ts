/**
 * GET /ws, the original frontend's activity feed, with a real WebSocket
 * client against the real stack: the envelope, heartbeats at
 * WS_HEARTBEAT_INTERVAL, health on joining and on change, every scan event
 * for scans started elsewhere (another ScanService, as another API process,
 * scanctl, a schedule or a webhook would), client messages ignored, and the
 * same Host, Origin and token fences as every route.
 */
import { promises as fs } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { createApp } from '../../src/api/app';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { ScanService } from '../../src/scans';
import { buildLibrary, ensureTestMedia, type TestClip } from '../support/media';
import { http, startStack, waitFor, withProbeHook, type Stack } from '../support/stack';

const TOKEN = 'ws-test-token';
const auth = { authorization: `Bearer ${TOKEN}` };

interface Message {
  type: string;
  payload: Record<string, unknown>;
  correlation_id: string;
  timestamp: string;
}

let stack: Stack;
let work: string;
let clips: TestClip[];
/** Probes of files under a `slow` folder take a while each, so that a scan of one runs long enough to pause. */
const SLOW_PROBE_MS = 100;
const open: WebSocket[] = [];

/** A connected client and everything it has received. */
interface Client {
  ws: WebSocket;
  messages: Message[];
  next: (type: string, where?: (payload: Record<string, unknown>) => boolean, timeoutMs?: number) => Promise<Message>;
}

function wsUrl(baseUrl: string): string {
  return `${baseUrl.replace(/^http/, 'ws')}/ws`;
}

async function connect(baseUrl: string, options: { protocols?: string[]; headers?: Record<string, string> } = { headers: auth }): Promise<Client> {
  const ws = new WebSocket(wsUrl(baseUrl), options.protocols ?? [], { headers: options.headers ?? {} });
  open.push(ws);
  const messages: Message[] = [];
  ws.on('message', (data) => messages.push(JSON.parse(String(data)) as Message));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    ws,
    messages,
    next: (type, where = () => true, timeoutMs = 60_000) =>
      waitFor(async () => messages.find((m) => m.type === type && where(m.payload)), (m) => m !== undefined, timeoutMs, 20) as Promise<Message>,
  };
}

/** The status with which the server refuses an upgrade. */
async function refusal(baseUrl: string, protocols: string[], headers: Record<string, string>): Promise<number> {
  const ws = new WebSocket(wsUrl(baseUrl), protocols, { headers });
  open.push(ws);
  return new Promise<number>((resolve, reject) => {
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
    });
    ws.once('open', () => reject(new Error('the upgrade was accepted')));
    ws.once('error', () => undefined);
  });
}

/** Another process's view of the scans: its own ScanService, as another API process, scanctl, a schedule or a webhook has. */
function elsewhere(): ScanService {
  return new ScanService(stack.client, stack.config, stack.library, stack.taskQueue);
}

async function folder(name: string, count: number): Promise<string> {
  const dir = path.join(work, name);
  await buildLibrary(dir, count, clips);
  return dir;
}

beforeAll(async () => {
  clips = await ensureTestMedia();
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'ws-')));
  stack = await startStack(
    { API_TOKEN: TOKEN, SCAN_ROOTS: work, WS_HEARTBEAT_INTERVAL: '0.5', PROBE_CONCURRENCY: '1', SCAN_BATCH_SIZE: '5' },
    {
      wrapProber: (prober) =>
        withProbeHook(prober, async (file) => {
          if (file.includes(`${path.sep}slow`)) await new Promise((resolve) => setTimeout(resolve, SLOW_PROBE_MS));
        }),
    },
  );
});

afterAll(async () => {
  for (const ws of open) ws.terminate();
  await stack?.close();
  await fs.rm(work, { recursive: true, force: true });
});

describe('GET /ws', () => {
  it('sends the health status on joining and a heartbeat every WS_HEARTBEAT_INTERVAL, in the original envelope', async () => {
    const client = await connect(stack.baseUrl);
    const health = await client.next('health_status');
    expect(health.payload).toEqual({ status: 'ok' });
    await waitFor(async () => client.messages.filter((m) => m.type === 'heartbeat').length, (n) => n >= 2, 30_000, 20);
    for (const message of client.messages) {
      expect(Object.keys(message).sort()).toEqual(['correlation_id', 'payload', 'timestamp', 'type']);
      expect(message.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
      expect(typeof message.correlation_id).toBe('string');
      expect(message.correlation_id.length).toBeGreaterThan(0);
    }
    expect(client.messages.find((m) => m.type === 'heartbeat')?.payload).toEqual({});
    client.ws.close();
  });

  it('tells of a scan started elsewhere, from its start to its completion with the videos it recorded', async () => {
    const client = await connect(stack.baseUrl);
    const root = await folder('done', 3);
    const { scanId: jobId } = await elsewhere().start({ root, recursive: true, force: false });
    const started = await client.next('scan_started', (p) => p.job_id === jobId);
    expect(started.payload).toEqual({ path: root, job_id: jobId });
    const completed = await client.next('scan_completed', (p) => p.job_id === jobId);
    expect(completed.payload).toEqual({ path: root, job_id: jobId, video_count: 3 });
    client.ws.close();
  });

  it('tells of a pause, a resume and a cancel', async () => {
    const client = await connect(stack.baseUrl);
    const root = await folder('slow-pause', 60);
    const other = elsewhere();
    const { scanId: jobId } = await other.start({ root, recursive: true, force: false });
    await client.next('scan_started', (p) => p.job_id === jobId);
    await waitFor(async () => (await other.get(jobId)).status, (status) => status === 'running');
    await http(stack.baseUrl, 'POST', `/api/v1/jobs/${jobId}/pause`, undefined, auth);
    expect((await client.next('scan_paused', (p) => p.job_id === jobId)).payload).toEqual({ path: root, job_id: jobId });
    await http(stack.baseUrl, 'POST', `/api/v1/jobs/${jobId}/resume`, undefined, auth);
    expect((await client.next('scan_resumed', (p) => p.job_id === jobId)).payload).toEqual({ path: root, job_id: jobId });
    await other.cancel(jobId);
    expect((await client.next('scan_cancelled', (p) => p.job_id === jobId)).payload).toEqual({ path: root, job_id: jobId });
    client.ws.close();
  });

  it('tells of a scan that failed (here: past its time limit)', async () => {
    const client = await connect(stack.baseUrl);
    const root = await folder('slow-timeout', 60);
    const { scanId: jobId } = await elsewhere().start({ root, recursive: true, force: false, scanTimeoutMs: 1500 });
    await client.next('scan_started', (p) => p.job_id === jobId);
    const failed = await client.next('scan_failed', (p) => p.job_id === jobId);
    expect(failed.payload).toEqual(expect.objectContaining({ path: root, job_id: jobId }));
    expect(client.messages.some((m) => m.type === 'scan_completed' && m.payload.job_id === jobId)).toBe(false);
    client.ws.close();
  });

  it('ignores what clients send', async () => {
    const client = await connect(stack.baseUrl);
    client.ws.send('hello');
    client.ws.send(JSON.stringify({ type: 'subscribe', payload: { job_id: 'scan-x' } }));
    const before = client.messages.length;
    await waitFor(async () => client.messages.slice(before).filter((m) => m.type === 'heartbeat').length, (n) => n >= 2, 30_000, 20);
    expect(client.ws.readyState).toBe(WebSocket.OPEN);
    client.ws.close();
  });

  it('takes the token as the subprotocol bearer.<token>, all a browser can send, and names it back', async () => {
    const client = await connect(stack.baseUrl, { protocols: [`bearer.${TOKEN}`] });
    expect(client.ws.protocol).toBe(`bearer.${TOKEN}`);
    await client.next('heartbeat');
    client.ws.close();
  });

  it.each([
    ['no token', [], {}],
    ['a wrong bearer token', [], { authorization: 'Bearer nope' }],
    ['a wrong subprotocol token', ['bearer.nope'], {}],
  ])('refuses %s with 401', async (_name, protocols, headers) => {
    expect(await refusal(stack.baseUrl, protocols, headers)).toBe(401);
  });

  it('refuses a foreign Origin and a foreign Host with 403, as every route does', async () => {
    expect(await refusal(stack.baseUrl, [], { ...auth, origin: 'http://evil.example' })).toBe(403);
    expect(await refusal(stack.baseUrl, [], { ...auth, host: 'evil.example' })).toBe(403);
    // The API's own origin is welcome.
    const own = await connect(stack.baseUrl, { headers: { ...auth, origin: stack.baseUrl } });
    await own.next('heartbeat');
    own.ws.close();
  });

  it('tells of a change of the health status', async () => {
    let temporalDown = false;
    const app = createApp({
      config: stack.config,
      scans: stack.scans,
      library: stack.library,
      logger: createLogger('test', 'silent'),
      checkTemporal: async () => {
        if (temporalDown) throw new Error('Temporal is down');
      },
      proberVersion: async () => 'ffprobe version test',
    });
    const server: Server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    try {
      const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const client = await connect(baseUrl);
      await client.next('health_status', (p) => p.status === 'ok');
      temporalDown = true;
      await client.next('health_status', (p) => p.status === 'degraded');
      temporalDown = false;
      const back = await waitFor(async () => client.messages.filter((m) => m.type === 'health_status').map((m) => m.payload.status), (s) => s.length >= 3, 60_000, 20);
      expect(back).toEqual(['ok', 'degraded', 'ok']);
      // Closing the server ends the feed's clients too (close() would otherwise wait for them forever).
      const clientClosed = new Promise<void>((resolve) => client.ws.once('close', () => resolve()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await clientClosed;
    } finally {
      server.closeAllConnections();
      if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});


describe('WS_HEARTBEAT_INTERVAL', () => {
  it('defaults to 30 seconds', () => {
    expect(loadConfig({}).wsHeartbeatMs).toBe(30_000);
  });

  it.each(['0', '-1', 'soon'])('stops start-up with one line naming it for %j', (value) => {
    expect(() => loadConfig({ WS_HEARTBEAT_INTERVAL: value })).toThrow(/^invalid WS_HEARTBEAT_INTERVAL: /);
  });
});
