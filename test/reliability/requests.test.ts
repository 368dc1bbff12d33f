/**
 * Hostile requests: traversal in its forms, prefix confusion, NUL bytes,
 * malformed and oversized bodies, and a flood of scan starts, which is
 * bounded by MAX_CONCURRENT_SCANS and answered with 429.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { JobBody } from '../../src/scans';
import { buildLibrary, ensureTestMedia, type TestClip } from '../support/media';
import { http, startStack, waitFor, writeProberWrapper, type Stack } from '../support/stack';

const realFfprobe = (require('@ffprobe-installer/ffprobe') as { path: string }).path;

let clips: TestClip[];
let work: string;
let media: string;
let stack: Stack;

beforeAll(async () => {
  clips = await ensureTestMedia();
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'requests-')));
  media = path.join(work, 'media');
  await fs.mkdir(path.join(media, 'shows'), { recursive: true });
  await fs.mkdir(path.join(work, 'media-evil'), { recursive: true });
  await fs.mkdir(path.join(work, 'secret'), { recursive: true });
  await fs.symlink(path.join(work, 'secret'), path.join(media, 'shows', 'escape'));
  const wrapper = await writeProberWrapper(work, { realPath: realFfprobe, delayMs: 200 });
  stack = await startStack({ SCAN_ROOTS: media, MAX_CONCURRENT_SCANS: '3', FFPROBE_PATH: wrapper.path, PROBE_CONCURRENCY: '1' });
});

afterAll(async () => {
  await stack?.close();
  await fs.rm(work, { recursive: true, force: true });
});

describe('hostile requests', () => {
  test.each([
    ['dot-dot inside the root', () => `${media}/shows/../../secret`, 400, 'INVALID_PATH'],
    ['dot-dot at the end', () => `${media}/..`, 400, 'INVALID_PATH'],
    ['percent-encoded dot-dot', () => `${media}/%2e%2e/secret`, 400, 'INVALID_PATH'],
    ['double-encoded dot-dot', () => `${media}/%252e%252e/secret`, 400, 'INVALID_PATH'],
    ['backslash dot-dot', () => `${media}\\..\\secret`, 400, 'INVALID_PATH'],
    ['a NUL byte', () => `${media}/shows\u0000/x`, 400, 'INVALID_PATH'],
    ['a relative path', () => 'media/shows', 400, 'INVALID_PATH'],
    ['an empty path', () => '', 400, 'INVALID_PATH'],
    ['a sibling sharing the prefix', () => `${work}/media-evil`, 403, 'PATH_NOT_ALLOWED'],
    ['a symlink out of the root', () => `${media}/shows/escape`, 403, 'PATH_NOT_ALLOWED'],
    ['the filesystem root', () => '/', 403, 'PATH_NOT_ALLOWED'],
    ['a URL', () => 'file:///etc', 400, 'INVALID_PATH'],
  ])('refuses %s', async (_name, requested, status, code) => {
    const res = await http<{ code: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: requested() });
    expect({ status: res.status, code: res.body.code }).toEqual({ status, code });
  });

  test.each([
    ['a JSON array', '[1, 2]'],
    ['a JSON string', '"just a string"'],
    ['null', 'null'],
    ['deeply nested JSON', `${'['.repeat(5000)}${']'.repeat(5000)}`],
    ['not JSON at all', 'path=/media'],
  ])('answers %s with 400 and a clear message', async (_name, body) => {
    const res = await http<{ code: string; message: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', body);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('INVALID_PATH');
    expect(res.body.message).not.toMatch(/\n\s+at /);
  });

  it('bounds a flood of scan starts: past MAX_CONCURRENT_SCANS new roots get 429, running roots still answer', async () => {
    const roots: string[] = [];
    for (let i = 0; i < 10; i += 1) {
      const root = path.join(media, `flood-${i}`);
      await buildLibrary(root, 20, clips);
      roots.push(root);
    }
    const answers = await Promise.all(roots.map((root) => http<{ job_id?: string; code?: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: root })));
    const accepted = answers.filter((a) => a.status === 202);
    const refused = answers.filter((a) => a.status === 429);
    expect(accepted).toHaveLength(3);
    expect(refused).toHaveLength(7);
    expect(refused.every((a) => a.body.code === 'TOO_MANY_SCANS')).toBe(true);

    // A root that is already being scanned still gets its scan back.
    const acceptedRoot = roots[answers.findIndex((a) => a.status === 202)] as string;
    const again = await http<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: acceptedRoot });
    expect(again.status).toBe(200);

    for (const a of accepted) await http(stack.baseUrl, 'POST', `/api/v1/jobs/${a.body.job_id}/cancel`);
    for (const a of accepted) {
      await waitFor(async () => (await http<JobBody>(stack.baseUrl, 'GET', `/api/v1/jobs/${a.body.job_id}`)).body, (j) => j.status === 'cancelled', 30_000);
    }
    // With room again, a refused root starts.
    const later = await waitFor(
      () => http<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: roots[answers.findIndex((a) => a.status === 429)] }),
      (res) => res.status === 202,
      10_000,
      200,
    );
    await http(stack.baseUrl, 'POST', `/api/v1/jobs/${later.body.job_id}/cancel`);
  });
});
