/**
 * Forged requests against the real stack: bodies that are not JSON (the
 * no-preflight cross-site POST), state-changing requests from a foreign
 * browser Origin, and DNS rebinding (a foreign Host on a loopback-bound API).
 */
import { promises as fs } from 'node:fs';
import { request } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { startStack, type Stack } from '../support/stack';

interface Answer {
  status: number;
  body: { code?: string; message?: string; job_id?: string; status?: string };
}

/**
 * One request over node:http, which (unlike fetch) lets a test set Host, send
 * a body with no Content-Type at all, and send exactly the bytes given.
 */
function send(baseUrl: string, method: string, route: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  const url = new URL(route, baseUrl);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, path: url.pathname + url.search, method, headers: { ...headers, ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => {
          let parsed: Answer['body'] = {};
          try {
            parsed = text.length > 0 ? (JSON.parse(text) as Answer['body']) : {};
          } catch {
            parsed = { message: text.slice(0, 200) };
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

let work: string;
let media: string;
let stack: Stack;

beforeAll(async () => {
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'security-')));
  media = path.join(work, 'media');
  await fs.mkdir(media, { recursive: true });
  stack = await startStack();
});

afterAll(async () => {
  await stack?.close();
  await fs.rm(work, { recursive: true, force: true });
});

describe('request bodies are JSON only', () => {
  test.each([
    ['text/plain (a cross-site form or fetch needs no preflight for it)', { 'content-type': 'text/plain' }],
    ['text/plain with a charset', { 'content-type': 'text/plain;charset=UTF-8' }],
    ['an HTML form encoding', { 'content-type': 'application/x-www-form-urlencoded' }],
    ['multipart form data', { 'content-type': 'multipart/form-data; boundary=x' }],
    ['no Content-Type at all', {}],
  ])('refuses a scan start sent as %s with 415', async (_name, headers) => {
    const res = await send(stack.baseUrl, 'POST', '/api/v1/videos/scan', headers, JSON.stringify({ path: '/' }));
    expect(res.status).toBe(415);
    expect(res.body.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  it('accepts application/json with a charset', async () => {
    const folder = path.join(media, 'charset');
    await fs.mkdir(folder);
    const res = await send(stack.baseUrl, 'POST', '/api/v1/videos/scan', { 'content-type': 'application/json; charset=utf-8' }, JSON.stringify({ path: folder }));
    expect(res.status).toBe(202);
    expect(res.body.job_id).toMatch(/^scan-/);
  });

  test.each([
    ['no Content-Type', {}],
    ['a Content-Type but no body', { 'content-type': 'text/plain' }],
  ])('lets a bodiless POST through with %s', async (_name, headers) => {
    // An unknown job: the request reaches the route (404), it is not refused at the edge.
    const res = await send(stack.baseUrl, 'POST', '/api/v1/jobs/scan-00000000-0000-0000-0000-000000000000/cancel', headers);
    expect(res.status).toBe(404);
    expect(res.body.code).toBe('NOT_FOUND');
  });
});

describe('state-changing requests from a browser origin', () => {
  test.each([
    ['a foreign site', 'https://evil.example'],
    ['another port of this machine', 'http://127.0.0.1:1'],
    ['an opaque origin (sandboxed frame, file://)', 'null'],
  ])('refuses a scan start from %s with 403 FORBIDDEN_ORIGIN', async (_name, origin) => {
    const res = await send(stack.baseUrl, 'POST', '/api/v1/videos/scan', { 'content-type': 'application/json', origin }, JSON.stringify({ path: media }));
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('FORBIDDEN_ORIGIN');
  });

  test.each([
    ['DELETE', '/api/v1/videos/1'],
    ['POST', '/api/v1/jobs/scan-00000000-0000-0000-0000-000000000000/cancel'],
    ['POST', '/api/v1/jobs/scan-00000000-0000-0000-0000-000000000000/retry'],
  ])('refuses %s %s from a foreign origin', async (method, route) => {
    const res = await send(stack.baseUrl, method, route, { origin: 'https://evil.example' });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('FORBIDDEN_ORIGIN');
  });

  it("accepts a scan start from the API's own origin, as the dashboard sends it", async () => {
    const folder = path.join(media, 'own-origin');
    await fs.mkdir(folder);
    const res = await send(stack.baseUrl, 'POST', '/api/v1/videos/scan', { 'content-type': 'application/json', origin: stack.baseUrl }, JSON.stringify({ path: folder }));
    expect(res.status).toBe(202);
  });

  it('lets reads from any origin through (CORS keeps their answers from foreign pages)', async () => {
    const res = await send(stack.baseUrl, 'GET', '/api/v1/videos', { origin: 'https://evil.example' });
    expect(res.status).toBe(200);
  });
});

describe('DNS rebinding on a loopback-bound API', () => {
  const allRoutes: Array<[string, string]> = [
    ['GET', '/'],
    ['GET', '/health'],
    ['GET', '/health/live'],
    ['GET', '/api/v1/videos'],
    ['GET', '/metrics'],
  ];

  test.each(allRoutes)('refuses %s %s under a foreign Host with 403 FORBIDDEN_HOST', async (method, route) => {
    const port = new URL(stack.baseUrl).port;
    const res = await send(stack.baseUrl, method, route, { host: `rebind.attacker.example:${port}` });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('FORBIDDEN_HOST');
  });

  it('refuses a scan start under a foreign Host, even from that same origin', async () => {
    const port = new URL(stack.baseUrl).port;
    const res = await send(
      stack.baseUrl,
      'POST',
      '/api/v1/videos/scan',
      { host: `rebind.attacker.example:${port}`, origin: `http://rebind.attacker.example:${port}`, 'content-type': 'application/json' },
      JSON.stringify({ path: media }),
    );
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('FORBIDDEN_HOST');
  });

  test.each([
    ['an address that only looks local', '127.0.0.1.attacker.example'],
    ['user information before a loopback address', 'evil.example@127.0.0.1'],
    ['a private address', '192.168.1.10'],
  ])('refuses %s', async (_name, host) => {
    const res = await send(stack.baseUrl, 'GET', '/health/live', { host });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('FORBIDDEN_HOST');
  });

  test.each([['localhost'], ['127.0.0.1'], ['127.1.2.3'], ['[::1]'], ['app.localhost']])('serves Host %s', async (name) => {
    const port = new URL(stack.baseUrl).port;
    const res = await send(stack.baseUrl, 'GET', '/health/live', { host: `${name}:${port}` });
    expect(res.status).toBe(200);
  });
});

describe('bound to all interfaces, with CORS_ORIGINS set', () => {
  let open: Stack;

  beforeAll(async () => {
    // HOST decides the rules; the test server itself still listens on loopback.
    open = await startStack({ HOST: '0.0.0.0', CORS_ORIGINS: 'https://app.example, https://other.example' });
  });

  afterAll(async () => {
    await open?.close();
  });

  it('serves any Host: the machine is meant to be reached by name', async () => {
    const res = await send(open.baseUrl, 'GET', '/health/live', { host: 'scanner.lan:8000' });
    expect(res.status).toBe(200);
  });

  it('accepts a state-changing request from an origin in CORS_ORIGINS', async () => {
    const folder = path.join(media, 'allowed-origin');
    await fs.mkdir(folder);
    const res = await send(open.baseUrl, 'POST', '/api/v1/videos/scan', { 'content-type': 'application/json', origin: 'https://other.example' }, JSON.stringify({ path: folder }));
    expect(res.status).toBe(202);
  });

  it('still refuses one from an origin not listed', async () => {
    const res = await send(open.baseUrl, 'POST', '/api/v1/videos/scan', { 'content-type': 'application/json', origin: 'https://evil.example' }, JSON.stringify({ path: media }));
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('FORBIDDEN_ORIGIN');
  });
});
