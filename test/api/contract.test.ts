/**
 * The REST contract of API.md, route by route and error by error, against the
 * real stack: Temporal dev server, worker, real ffprobe, SQLite (and one scan
 * on PostgreSQL).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import type { Video } from '../../src/library/types';
import type { JobBody } from '../../src/scans';
import { recordHistory } from '../support/histories';
import { buildLibrary, ensureTestMedia, type TestClip } from '../support/media';
import { http as call, startStack, waitFor, type Stack } from '../support/stack';

const TERMINAL = ['completed', 'failed', 'cancelled', 'timeout'];

let clips: TestClip[];
let work: string;
let stack: Stack;

beforeAll(async () => {
  clips = await ensureTestMedia();
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'contract-')));
  stack = await startStack({ SCAN_BATCH_SIZE: '10', PROBE_CONCURRENCY: '2' });
});

afterAll(async () => {
  await stack?.close();
  await fs.rm(work, { recursive: true, force: true });
});

async function scanToEnd(s: Stack, folder: string, extra: Record<string, unknown> = {}): Promise<JobBody> {
  const started = await call<{ job_id: string }>(s.baseUrl, 'POST', '/api/v1/videos/scan', { path: folder, ...extra });
  expect([200, 202]).toContain(started.status);
  return waitFor(
    async () => (await call<JobBody>(s.baseUrl, 'GET', `/api/v1/jobs/${started.body.job_id}`)).body,
    (job) => TERMINAL.includes(job.status),
    90_000,
  );
}

describe('scans', () => {
  it('gives two simultaneous starts for one root one scan', async () => {
    const folder = path.join(work, 'twice');
    await buildLibrary(folder, 40, clips);
    const [a, b] = await Promise.all([
      call<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: folder }),
      call<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: folder }),
    ]);
    expect(a.body.job_id).toBe(b.body.job_id);
    expect([a.status, b.status].sort()).toEqual([200, 202]);
    const third = await call<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: `${folder}/` });
    expect(third.body.job_id).toBe(a.body.job_id);
    const job = await waitFor(
      async () => (await call<JobBody>(stack.baseUrl, 'GET', `/api/v1/jobs/${a.body.job_id}`)).body,
      (j) => TERMINAL.includes(j.status),
    );
    expect(job.result?.new).toBe(40);
    // Once it has ended, the same root starts a new scan.
    const again = await call<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: folder });
    expect(again.status).toBe(202);
    expect(again.body.job_id).not.toBe(a.body.job_id);
  });

  it('streams progress as Server-Sent Events and ends with the terminal state', async () => {
    const folder = path.join(work, 'events');
    await buildLibrary(folder, 60, clips);
    const started = await call<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: folder });
    const events = await new Promise<{ event: string; data: JobBody }[]>((resolve, reject) => {
      const req = http.get(`${stack.baseUrl}/api/v1/jobs/${started.body.job_id}/events`, (res) => {
        expect(res.statusCode).toBe(200);
        expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
        let buffer = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
        });
        res.on('end', () => {
          const parsed = buffer
            .split('\n\n')
            .filter((block) => block.startsWith('event:'))
            .map((block) => {
              const [eventLine, dataLine] = block.split('\n');
              return { event: (eventLine ?? '').slice('event: '.length), data: JSON.parse((dataLine ?? '').slice('data: '.length)) as JobBody };
            });
          resolve(parsed);
        });
      });
      req.on('error', reject);
    });
    expect(events.length).toBeGreaterThanOrEqual(2);
    expect(events.slice(0, -1).every((e) => e.event === 'progress')).toBe(true);
    const last = events[events.length - 1];
    expect(last?.event).toBe('end');
    expect(last?.data.status).toBe('completed');
    expect(last?.data.progress).toBe(1);
  });

  it('survives a client that disconnects from the event stream', async () => {
    const folder = path.join(work, 'events-gone');
    await buildLibrary(folder, 30, clips);
    const started = await call<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: folder });
    await new Promise<void>((resolve) => {
      const req = http.get(`${stack.baseUrl}/api/v1/jobs/${started.body.job_id}/events`, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
    });
    const job = await waitFor(
      async () => (await call<JobBody>(stack.baseUrl, 'GET', `/api/v1/jobs/${started.body.job_id}`)).body,
      (j) => TERMINAL.includes(j.status),
    );
    expect(job.status).toBe('completed');
    expect((await call(stack.baseUrl, 'GET', '/health/live')).status).toBe(200);
  });

  it('retries only what failed, and refuses to retry a running or clean scan', async () => {
    const folder = path.join(work, 'retry');
    await buildLibrary(folder, 20, clips);
    const broken = path.join(folder, 'broken.mp4');
    await fs.writeFile(broken, 'this is not a video');
    const started = await call<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: folder });
    const early = await call<{ code: string }>(stack.baseUrl, 'POST', `/api/v1/jobs/${started.body.job_id}/retry`);
    expect(early.status).toBe(409);
    expect(early.body.code).toBe('NOT_TERMINAL');
    const first = await waitFor(
      async () => (await call<JobBody>(stack.baseUrl, 'GET', `/api/v1/jobs/${started.body.job_id}`)).body,
      (j) => TERMINAL.includes(j.status),
    );
    expect(first.result?.errors).toEqual([{ path: broken, error: 'not_a_media_file' }]);

    // Repaired since: the retry probes that one file again, and nothing else.
    await fs.copyFile(clips.find((c) => c.hasVideo)!.file, broken);
    const retry = await call<{ job_id: string }>(stack.baseUrl, 'POST', `/api/v1/jobs/${first.job_id}/retry`);
    expect(retry.status).toBe(202);
    expect(retry.body.job_id).not.toBe(first.job_id);
    const second = await waitFor(
      async () => (await call<JobBody>(stack.baseUrl, 'GET', `/api/v1/jobs/${retry.body.job_id}`)).body,
      (j) => TERMINAL.includes(j.status),
    );
    expect(second.retry_of).toBe(first.job_id);
    expect(second.result).toMatchObject({ scanned: 1, new: 1, errors: [] });
    await recordHistory(stack.client, second.job_id, 'retried');

    const clean = await call<{ code: string }>(stack.baseUrl, 'POST', `/api/v1/jobs/${second.job_id}/retry`);
    expect(clean.status).toBe(409);
    expect(clean.body.code).toBe('NOTHING_TO_RETRY');
    expect((await call<{ code: string }>(stack.baseUrl, 'POST', '/api/v1/jobs/scan-missing/retry')).status).toBe(404);
  });

  it('lists jobs newest first, filters by status and pages with a token', async () => {
    const all = await call<{ jobs: JobBody[]; next_page_token: string | null }>(stack.baseUrl, 'GET', '/api/v1/jobs?limit=100');
    expect(all.status).toBe(200);
    expect(all.body.jobs.length).toBeGreaterThanOrEqual(4);
    const created = all.body.jobs.map((j) => j.created_at);
    expect([...created].sort().reverse()).toEqual(created);

    const page1 = await call<{ jobs: JobBody[]; next_page_token: string | null }>(stack.baseUrl, 'GET', '/api/v1/jobs?limit=2');
    expect(page1.body.jobs).toHaveLength(2);
    expect(page1.body.next_page_token).toEqual(expect.any(String));
    const page2 = await call<{ jobs: JobBody[] }>(stack.baseUrl, 'GET', `/api/v1/jobs?limit=2&page_token=${encodeURIComponent(page1.body.next_page_token!)}`);
    expect(page2.body.jobs.map((j) => j.job_id)).not.toContain(page1.body.jobs[0]?.job_id);

    const completed = await call<{ jobs: JobBody[] }>(stack.baseUrl, 'GET', '/api/v1/jobs?status=completed&limit=100');
    expect(completed.body.jobs.length).toBeGreaterThan(0);
    expect(completed.body.jobs.every((j) => j.status === 'completed')).toBe(true);

    for (const bad of ['status=finished', 'limit=0', 'limit=abc', 'page_token=%00%01garbage', 'nope=1']) {
      const res = await call<{ code: string }>(stack.baseUrl, 'GET', `/api/v1/jobs?${bad}`);
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('INVALID_REQUEST');
    }
  });

  it('can be reset from the Temporal CLI, as from the Web UI, and completes again', async () => {
    const folder = path.join(work, 'reset');
    await buildLibrary(folder, 20, clips);
    const first = await scanToEnd(stack, folder);
    expect(first.status).toBe('completed');
    await promisify(execFile)(process.env.TEMPORAL_TEST_CLI as string, [
      'workflow', 'reset', '--workflow-id', first.job_id, '--type', 'FirstWorkflowTask', '--reason', 'contract test',
      '--address', process.env.TEMPORAL_TEST_ADDRESS as string, '--yes',
    ]);
    const after = await waitFor(
      async () => (await call<JobBody>(stack.baseUrl, 'GET', `/api/v1/jobs/${first.job_id}`)).body,
      (j) => j.temporal.run_id !== first.temporal.run_id && TERMINAL.includes(j.status),
    );
    expect(after.status).toBe('completed');
    expect(after.result?.scanned).toBe(20);
  });
});

describe('the library routes', () => {
  let videos: Video[];

  beforeAll(async () => {
    const folder = path.join(work, 'library');
    await buildLibrary(folder, 12, clips);
    await scanToEnd(stack, folder);
    videos = (await call<{ videos: Video[] }>(stack.baseUrl, 'GET', `/api/v1/videos/search?q=${encodeURIComponent(folder)}&limit=100`)).body.videos;
  });

  it('lists videos a page at a time', async () => {
    const first = await call<{ videos: Video[]; total: number; limit: number; offset: number }>(stack.baseUrl, 'GET', '/api/v1/videos?limit=5&offset=0');
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ limit: 5, offset: 0 });
    expect(first.body.videos).toHaveLength(5);
    const second = await call<{ videos: Video[]; total: number }>(stack.baseUrl, 'GET', '/api/v1/videos?limit=5&offset=5');
    expect(second.body.total).toBe(first.body.total);
    expect((second.body.videos[0]?.path ?? '') > (first.body.videos[4]?.path ?? '')).toBe(true);
    expect((await call(stack.baseUrl, 'GET', '/api/v1/videos?status=present&limit=1')).status).toBe(200);
    for (const bad of ['limit=-1', 'limit=100000', 'offset=x', 'status=gone']) {
      expect((await call(stack.baseUrl, 'GET', `/api/v1/videos?${bad}`)).status).toBe(400);
    }
  });

  it('searches by name, returns one video by id and deletes only the record', async () => {
    expect(videos).toHaveLength(12);
    const one = videos[0] as Video;
    const search = await call<{ videos: Video[]; total: number; query: string }>(stack.baseUrl, 'GET', `/api/v1/videos/search?q=${encodeURIComponent(one.filename.toUpperCase())}`);
    expect(search.body.query).toBe(one.filename.toUpperCase());
    expect(search.body.videos.map((v) => v.id)).toContain(one.id);
    expect((await call(stack.baseUrl, 'GET', '/api/v1/videos/search')).status).toBe(400);

    const got = await call<Video>(stack.baseUrl, 'GET', `/api/v1/videos/${one.id}`);
    expect(got.body).toEqual(one);
    expect(Object.keys(got.body).sort()).toEqual(
      ['id', 'path', 'filename', 'file_size', 'modified_at', 'duration_seconds', 'duration_frames', 'frame_rate_numerator', 'frame_rate_denominator', 'width', 'height', 'video_codec', 'audio_codec', 'container', 'bit_rate', 'stream_counts', 'status', 'missing_since', 'moved_from', 'thumbnail_at', 'probed_at', 'created_at', 'updated_at'].sort(),
    );
    expect((await call(stack.baseUrl, 'DELETE', `/api/v1/videos/${one.id}`)).status).toBe(204);
    expect((await call<{ code: string }>(stack.baseUrl, 'GET', `/api/v1/videos/${one.id}`)).body.code).toBe('NOT_FOUND');
    expect((await call(stack.baseUrl, 'DELETE', `/api/v1/videos/${one.id}`)).status).toBe(404);
    expect((await call(stack.baseUrl, 'GET', '/api/v1/videos/abc')).status).toBe(404);
    await expect(fs.stat(one.path)).resolves.toBeDefined();
  });
});

describe('the edge', () => {
  it('answers health, metrics and the OpenAPI document', async () => {
    // Exactly the body of API.md: `checks` as the original frontend reads it, the flat fields for older clients.
    const healthy = {
      status: 'ok',
      checks: {
        database: { status: 'ok', latency_ms: expect.any(Number) },
        temporal: { status: 'ok', latency_ms: expect.any(Number) },
        ffmpeg: { status: 'ok', version: expect.stringMatching(/^libavformat \S+ \(FFmpeg /) },
      },
      temporal: 'ok',
      database: 'ok',
    };
    for (const route of ['/health', '/health/ready']) {
      const health = await call(stack.baseUrl, 'GET', route);
      expect(health.status).toBe(200);
      expect(health.body).toEqual(healthy);
    }
    expect((await call(stack.baseUrl, 'GET', '/health/live')).body).toEqual({ status: 'ok' });
    const metrics = await fetch(`${stack.baseUrl}/metrics`).then((r) => r.text());
    expect(metrics).toContain('scanner_http_request_duration_seconds');
    expect(metrics).toContain('scanner_scans_started_total');
    const doc = await call<{ openapi: string; paths: Record<string, unknown> }>(stack.baseUrl, 'GET', '/api/openapi.json');
    expect(doc.body.openapi).toMatch(/^3\./);
    for (const route of ['/api/v1/videos/scan', '/api/v1/jobs', '/api/v1/jobs/{job_id}', '/api/v1/jobs/{job_id}/cancel', '/api/v1/jobs/{job_id}/retry', '/api/v1/jobs/{job_id}/events', '/api/v1/videos', '/api/v1/videos/search', '/api/v1/videos/{id}', '/health', '/health/live', '/metrics']) {
      expect(Object.keys(doc.body.paths)).toContain(route);
    }
    const scan = doc.body.paths['/api/v1/videos/scan'] as { post: { requestBody: { content: { 'application/json': { schema: { properties: object; additionalProperties: boolean } } } } } };
    expect(Object.keys(scan.post.requestBody.content['application/json'].schema.properties)).toEqual(['path', 'recursive', 'force', 'exclude', 'max_parallel_files', 'thumbnails']);
  });

  it('names the failing part with 503 when Temporal does not answer', async () => {
    const broken = await startStack({}, {});
    try {
      await broken.client.connection.close();
      const res = await call(broken.baseUrl, 'GET', '/health');
      expect(res.status).toBe(503);
      expect(res.body).toEqual({
        status: 'degraded',
        checks: {
          database: { status: 'ok', latency_ms: expect.any(Number) },
          temporal: { status: 'error', error: expect.stringMatching(/\S/) },
          ffmpeg: { status: 'ok', version: expect.stringMatching(/^libavformat \S+ \(FFmpeg /) },
        },
        temporal: expect.stringMatching(/^error: \S/),
        database: 'ok',
      });
    } finally {
      await broken.close().catch(() => undefined);
    }
  });

  it.each([
    ['malformed JSON', '{"path": ', 400, 'INVALID_PATH'],
    ['an unknown field', { path: '/tmp', depth: 3 }, 400, 'INVALID_PATH'],
    ['a wrong type', { path: '/tmp', recursive: 'yes' }, 400, 'INVALID_PATH'],
    ['an encoded traversal', { path: '/tmp/%2e%2e/etc' }, 400, 'INVALID_PATH'],
    ['a body over the limit', { path: `/${'a'.repeat(40_000)}` }, 413, 'PAYLOAD_TOO_LARGE'],
  ])('rejects %s', async (_name, body, status, code) => {
    const res = await call<{ code: string; message: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', body);
    expect(res.status).toBe(status);
    expect(res.body.code).toBe(code);
    expect(JSON.stringify(res.body)).not.toMatch(/at .*\.ts:\d+/);
  });

  it.each([
    ['GET', '/api/v1/jobs/scan-00000000-0000-0000-0000-000000000000'],
    ['POST', '/api/v1/jobs/scan-00000000-0000-0000-0000-000000000000/cancel'],
    ['POST', '/api/v1/jobs/scan-00000000-0000-0000-0000-000000000000/retry'],
    ['GET', '/api/v1/jobs/scan-00000000-0000-0000-0000-000000000000/events'],
    ['GET', '/api/v1/jobs/root-not-a-scan'],
    ['GET', '/api/v1/videos/999999999'],
    ['DELETE', '/api/v1/videos/999999999'],
    ['GET', '/api/v1/nothing-here'],
  ])('answers %s %s with 404 NOT_FOUND', async (method, route) => {
    const res = await call<{ code: string; message: string }>(stack.baseUrl, method, route);
    expect(res.status).toBe(404);
    expect(res.body.code).toBe('NOT_FOUND');
    expect(res.body.message.length).toBeGreaterThan(0);
  });

  it('sets security headers and keeps CORS closed to unknown origins', async () => {
    const res = await fetch(`${stack.baseUrl}/api/v1/videos/scan`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    const page = await fetch(`${stack.baseUrl}/health/live`);
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(page.headers.get('x-powered-by')).toBeNull();
  });

  describe('with SCAN_ROOTS, API_TOKEN and CORS_ORIGINS set', () => {
    let guarded: Stack;
    const token = randomBytes(16).toString('hex');

    beforeAll(async () => {
      await fs.mkdir(path.join(work, 'media', 'ok'), { recursive: true });
      await fs.mkdir(path.join(work, 'media-evil'), { recursive: true });
      guarded = await startStack({ SCAN_ROOTS: path.join(work, 'media'), API_TOKEN: token, CORS_ORIGINS: 'https://app.example' });
    });

    afterAll(async () => {
      await guarded?.close();
    });

    it.each([
      ['no token', {}],
      ['an empty token', { authorization: 'Bearer ' }],
      ['a wrong token', { authorization: 'Bearer nope' }],
      ['another scheme', { authorization: `Basic ${token}` }],
    ])('answers 401 to %s, but not on /health', async (_name, headers) => {
      const res = await call<{ code: string }>(guarded.baseUrl, 'GET', '/api/v1/videos', undefined, headers as Record<string, string>);
      expect(res.status).toBe(401);
      expect(res.body.code).toBe('UNAUTHORIZED');
      expect((await call(guarded.baseUrl, 'GET', '/health', undefined, headers as Record<string, string>)).status).toBe(200);
    });

    it('keeps scans inside the roots', async () => {
      const auth = { authorization: `Bearer ${token}` };
      const outside = await call<{ code: string }>(guarded.baseUrl, 'POST', '/api/v1/videos/scan', { path: path.join(work, 'media-evil') }, auth);
      expect(outside.status).toBe(403);
      expect(outside.body.code).toBe('PATH_NOT_ALLOWED');
      const inside = await call<{ job_id: string }>(guarded.baseUrl, 'POST', '/api/v1/videos/scan', { path: path.join(work, 'media', 'ok') }, auth);
      expect(inside.status).toBe(202);
    });

    it('answers a preflight from a configured origin', async () => {
      const res = await fetch(`${guarded.baseUrl}/api/v1/videos/scan`, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' } });
      expect(res.status).toBe(204);
      expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example');
    });
  });
});

describe('a scan with the library on PostgreSQL', () => {
  const adminUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const name = `scanner_e2e_${randomBytes(4).toString('hex')}`;
  let pgStack: Stack;

  beforeAll(async () => {
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    await admin.query(`create database ${name}`);
    await admin.end();
    pgStack = await startStack({}, { databaseUrl: adminUrl.replace(/\/[^/]*$/, `/${name}`) });
  });

  afterAll(async () => {
    await pgStack?.close();
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    await admin.query(`drop database if exists ${name} with (force)`);
    await admin.end();
  });

  it('records every file once, and skips them all on a rescan', async () => {
    const folder = path.join(work, 'pg');
    await buildLibrary(folder, 30, clips);
    const first = await scanToEnd(pgStack, folder);
    expect(first.result).toMatchObject({ scanned: 30, new: 30 });
    const second = await scanToEnd(pgStack, folder);
    expect(second.result).toMatchObject({ scanned: 30, new: 0, skipped: 30 });
    expect((await pgStack.library.searchVideos(folder, 100, 0)).total).toBe(30);
    expect(pgStack.library.dialect).toBe('postgres');
  });
});
