/**
 * A scan may go without pictures: `"thumbnails": false` in its request skips
 * the picture phase (what people with huge libraries want for a first scan),
 * and a worker with THUMBNAILS=off makes none unless a request asks. Either
 * way the metadata is recorded and the scan completes; a later scan that
 * makes pictures covers the videos left without one.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { JobBody } from '../../src/scans';
import { buildLibrary, ensureTestMedia, type TestClip } from '../support/media';
import { http, startStack, waitFor, type Stack } from '../support/stack';

jest.setTimeout(300_000);

const TERMINAL = ['completed', 'failed', 'cancelled', 'timeout'];

let clips: TestClip[];
let work: string;

beforeAll(async () => {
  clips = await ensureTestMedia();
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'no-thumbnails-')));
});

afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

async function scanToEnd(stack: Stack, body: Record<string, unknown>): Promise<JobBody> {
  const start = await http<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', body);
  expect(start.status).toBe(202);
  return waitFor(
    async () => (await http<JobBody>(stack.baseUrl, 'GET', `/api/v1/jobs/${start.body.job_id}`)).body,
    (job) => TERMINAL.includes(job.status),
    120_000,
    100,
  );
}

async function withPictures(stack: Stack, folder: string): Promise<number> {
  const videos = await stack.library.searchVideos(folder + path.sep, 100, 0);
  return videos.items.filter((video) => video.thumbnail_at !== null).length;
}

describe('a worker with the default THUMBNAILS=on', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ THUMBNAIL_DIR: path.join(work, 'thumbnails-on') });
  });

  afterAll(async () => {
    await stack?.close();
  });

  it('skips the picture phase for a request with "thumbnails": false, and a later scan makes the pictures', async () => {
    const folder = path.join(work, 'request-off');
    const files = await buildLibrary(folder, 6, clips);
    const job = await scanToEnd(stack, { path: folder, thumbnails: false });
    expect({ status: job.status, progress: job.progress, new: job.result?.new, pictures: job.counts.thumbnails ?? 0 }).toEqual({
      status: 'completed',
      progress: 1,
      new: files.length,
      pictures: 0,
    });
    expect(await withPictures(stack, folder)).toBe(0);

    const later = await scanToEnd(stack, { path: folder });
    expect({ status: later.status, skipped: later.result?.skipped, pictures: later.counts.thumbnails }).toEqual({
      status: 'completed',
      skipped: files.length,
      pictures: files.length,
    });
    expect(await withPictures(stack, folder)).toBe(files.length);
  });

  it('refuses a "thumbnails" that is not true or false', async () => {
    const res = await http<{ code: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: work, thumbnails: 'no' });
    expect(res.status).toBe(400);
  });
});

describe('a worker with THUMBNAILS=off', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ THUMBNAIL_DIR: path.join(work, 'thumbnails-off'), THUMBNAILS: 'off' });
  });

  afterAll(async () => {
    await stack?.close();
  });

  it('makes no pictures unless a request asks for them', async () => {
    const folder = path.join(work, 'worker-off');
    const files = await buildLibrary(folder, 4, clips);
    const plain = await scanToEnd(stack, { path: folder });
    expect({ status: plain.status, new: plain.result?.new, pictures: plain.counts.thumbnails ?? 0 }).toEqual({ status: 'completed', new: files.length, pictures: 0 });
    expect(await withPictures(stack, folder)).toBe(0);

    const asked = await scanToEnd(stack, { path: folder, thumbnails: true });
    expect({ status: asked.status, pictures: asked.counts.thumbnails }).toEqual({ status: 'completed', pictures: files.length });
    expect(await withPictures(stack, folder)).toBe(files.length);
  });
});
