/**
 * Thumbnails made by scans, against the real stack (Temporal, worker, the
 * real ffmpeg, SQLite) and served by GET /api/v1/videos/{id}/thumbnail.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Video } from '../../src/library/types';
import type { JobBody } from '../../src/scans';
import { recordHistory } from '../support/histories';
import { buildLibrary, ensureTestMedia, ensureThumbnailClips, jpegSize, type VideoClip } from '../support/media';
import { http as call, processesMatching, startStack, waitFor, type Stack } from '../support/stack';
import { thumbnailError } from '../support/library-rows';

jest.setTimeout(300_000);

const TERMINAL = ['completed', 'failed', 'cancelled', 'timeout'];
/** Not the default (320): the pictures must follow THUMBNAIL_WIDTH. */
const WIDTH = 240;

let stack: Stack;
let work: string;
let clips: (VideoClip & { sar: [number, number] })[];

beforeAll(async () => {
  const shared = (await ensureTestMedia()).filter((c): c is VideoClip => c.hasVideo).map((c) => ({ ...c, sar: [1, 1] as [number, number] }));
  clips = [...shared, ...(await ensureThumbnailClips())];
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'thumbs-scan-')));
  stack = await startStack({ THUMBNAIL_WIDTH: String(WIDTH), SCAN_BATCH_SIZE: '4', THUMBNAIL_CONCURRENCY: '1' });
});

afterAll(async () => {
  await stack?.close();
  await fs.rm(work, { recursive: true, force: true });
});

async function startScan(folder: string): Promise<string> {
  const started = await call<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: folder });
  expect(started.status).toBe(202);
  return started.body.job_id;
}

async function job(jobId: string): Promise<JobBody> {
  return (await call<JobBody>(stack.baseUrl, 'GET', `/api/v1/jobs/${jobId}`)).body;
}

async function scanToEnd(folder: string): Promise<JobBody> {
  const jobId = await startScan(folder);
  return waitFor(() => job(jobId), (j) => TERMINAL.includes(j.status), 180_000, 200);
}

async function thumbnail(id: number, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; body: Buffer }> {
  const res = await fetch(`${stack.baseUrl}/api/v1/videos/${id}/thumbnail`, { headers });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

async function videosUnder(folder: string): Promise<Video[]> {
  const all: Video[] = [];
  for (let offset = 0; ; offset += 500) {
    const page = await call<{ videos: Video[]; total: number }>(stack.baseUrl, 'GET', `/api/v1/videos?limit=500&offset=${offset}`);
    all.push(...page.body.videos);
    if (offset + 500 >= page.body.total) break;
  }
  return all.filter((v) => v.path.startsWith(`${folder}/`));
}

function expectedHeight(clip: VideoClip & { sar: [number, number] }): number {
  const dar = (clip.width * clip.sar[0]) / (clip.height * clip.sar[1]);
  return Math.max(2, Math.trunc(WIDTH / dar / 2) * 2);
}

describe('thumbnails of a scan', () => {
  let folder: string;
  let first: JobBody;

  beforeAll(async () => {
    folder = path.join(work, 'all');
    await fs.mkdir(folder);
    for (const clip of clips) await fs.copyFile(clip.file, path.join(folder, path.basename(clip.file)));
    // Its header probes (720x480 h264, 1 s), its frames are cut off: no picture can be made.
    const anamorphic = clips.find((c) => c.name === 'h264-anamorphic') as VideoClip;
    await fs.writeFile(path.join(folder, 'corrupt.mkv'), (await fs.readFile(anamorphic.file)).subarray(0, 1200));
    first = await scanToEnd(folder);
    await recordHistory(stack.client, first.job_id, 'thumbnails');
  });

  it('gives every video a JPEG of THUMBNAIL_WIDTH with its display aspect, non-square pixels and short clips included', async () => {
    expect(first.status).toBe('completed');
    expect(first.counts.thumbnails).toBe(clips.length);
    const videos = await videosUnder(folder);
    expect(videos).toHaveLength(clips.length + 1);
    for (const clip of clips) {
      const video = videos.find((v) => v.filename === path.basename(clip.file)) as Video;
      expect(video.thumbnail_at).toEqual(expect.any(String));
      const got = await thumbnail(video.id);
      expect({ clip: clip.name, status: got.status, type: got.headers.get('content-type'), mark: got.headers.get('x-thumbnail') }).toEqual({
        clip: clip.name, status: 200, type: 'image/jpeg', mark: 'video',
      });
      expect(got.headers.get('cache-control')).toMatch(/max-age=\d+/);
      const etag = got.headers.get('etag') as string;
      expect(etag).toMatch(/^"[0-9a-z]+-[0-9a-z]+-[0-9a-z]+"$/);
      expect({ clip: clip.name, ...jpegSize(got.body) }).toEqual({ clip: clip.name, width: WIDTH, height: expectedHeight(clip) });
      expect((await thumbnail(video.id, { 'if-none-match': etag })).status).toBe(304);
    }
  });

  it('serves the placeholder, and records the reason, for a file with no decodable frame', async () => {
    const corrupt = (await videosUnder(folder)).find((v) => v.filename === 'corrupt.mkv') as Video;
    expect(corrupt).toBeDefined();
    expect(corrupt.thumbnail_at).toBeNull();
    const got = await thumbnail(corrupt.id);
    expect(got.status).toBe(200);
    expect(got.headers.get('content-type')).toBe('image/jpeg');
    expect(got.headers.get('x-thumbnail')).toBe('placeholder');
    expect(jpegSize(got.body).width).toBeGreaterThan(0);
    expect(await thumbnailError(stack.config.databaseUrl, corrupt.id)).toMatch(/^thumbnail_/);
  });

  it('answers 404 for an unknown id', async () => {
    const unknown = await thumbnail(987_654_321);
    expect(unknown.status).toBe(404);
    // The route's own answer, not the 404 of a route that does not exist.
    expect(JSON.parse(unknown.body.toString('utf8'))).toEqual({ code: 'NOT_FOUND', message: 'video 987654321 not found' });
    expect((await thumbnail(0)).status).toBe(404);
    const doc = await call<{ paths: Record<string, { get?: { responses: Record<string, unknown> } }> }>(stack.baseUrl, 'GET', '/api/openapi.json');
    expect(Object.keys(doc.body.paths['/api/v1/videos/{id}/thumbnail']?.get?.responses ?? {})).toEqual(expect.arrayContaining(['200', '304', '404']));
  });

  it('makes no picture again when a rescan finds the files unchanged, and deletes a picture with its record', async () => {
    const before = await videosUnder(folder);
    const pictureTimes = new Map<number, number>();
    for (const v of before) {
      if (v.thumbnail_at !== null) pictureTimes.set(v.id, (await fs.stat(path.join(stack.config.thumbnailDir, String(v.id % 100).padStart(2, '0'), `${v.id}.jpg`))).mtimeMs);
    }
    const again = await scanToEnd(folder);
    expect(again.status).toBe('completed');
    expect(again.counts.skipped).toBe(clips.length + 1);
    expect(again.counts.thumbnails).toBe(0);
    const after = await videosUnder(folder);
    for (const v of after) expect(v.thumbnail_at).toBe(before.find((b) => b.id === v.id)?.thumbnail_at);
    for (const [id, mtimeMs] of pictureTimes) {
      expect((await fs.stat(path.join(stack.config.thumbnailDir, String(id % 100).padStart(2, '0'), `${id}.jpg`))).mtimeMs).toBe(mtimeMs);
    }
    const [gone] = [...pictureTimes.keys()];
    const picture = path.join(stack.config.thumbnailDir, String((gone as number) % 100).padStart(2, '0'), `${gone}.jpg`);
    expect((await call(stack.baseUrl, 'DELETE', `/api/v1/videos/${gone}`)).status).toBe(204);
    await expect(fs.stat(picture)).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await thumbnail(gone as number)).status).toBe(404);
  });
});

describe('a scan cancelled during its thumbnail phase', () => {
  it('stops making pictures: the phase is over when the scan ends, with no ffmpeg left', async () => {
    const folder = path.join(work, 'many');
    // Enough files that, one picture at a time, the phase lasts well past the cancel.
    await buildLibrary(folder, 300, clips);
    const jobId = await startScan(folder);
    const during = await waitFor(() => job(jobId), (j) => j.phase === 'thumbnails' || TERMINAL.includes(j.status), 180_000, 20);
    expect(during.phase).toBe('thumbnails');
    expect((await call(stack.baseUrl, 'POST', `/api/v1/jobs/${jobId}/cancel`)).status).toBe(202);
    const ended = await waitFor(() => job(jobId), (j) => TERMINAL.includes(j.status), 120_000, 100);
    expect(ended.status).toBe('cancelled');
    const made = async (): Promise<number> => (await videosUnder(folder)).filter((v) => v.thumbnail_at !== null).length;
    const atEnd = await made();
    expect(atEnd).toBeLessThan(300);
    expect(ended.counts.thumbnails).toBe(atEnd);
    // Nothing goes on in the background: no ffmpeg of this worker, and no picture made later.
    expect(await processesMatching(stack.config.thumbnailDir)).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(await made()).toBe(atEnd);
    await recordHistory(stack.client, jobId, 'thumbnails-cancelled');
  });
});

describe('a scan paused during its thumbnail phase', () => {
  it('makes no picture while paused, and every picture once resumed', async () => {
    const folder = path.join(work, 'paused');
    await buildLibrary(folder, 300, clips);
    const jobId = await startScan(folder);
    const during = await waitFor(() => job(jobId), (j) => j.phase === 'thumbnails' || TERMINAL.includes(j.status), 180_000, 20);
    expect(during.phase).toBe('thumbnails');
    expect((await call(stack.baseUrl, 'POST', `/api/v1/jobs/${jobId}/pause`)).status).toBe(202);
    const made = async (): Promise<number> => (await videosUnder(folder)).filter((v) => v.thumbnail_at !== null).length;
    // The batches in flight finish; then nothing moves until the resume.
    const settled = await waitFor(
      async () => [await made(), await new Promise((resolve) => setTimeout(resolve, 1500)).then(made)],
      ([a, b]) => a === b,
      120_000,
      0,
    );
    expect(settled[0]).toBeLessThan(300);
    expect((await job(jobId)).status).toBe('paused');
    expect((await call(stack.baseUrl, 'POST', `/api/v1/jobs/${jobId}/resume`)).status).toBe(202);
    const ended = await waitFor(() => job(jobId), (j) => TERMINAL.includes(j.status), 180_000, 200);
    expect(ended.status).toBe('completed');
    expect(ended.counts.thumbnails).toBe(300);
    expect(await made()).toBe(300);
  });
});

describe('the thumbnail route with API_TOKEN set', () => {
  it('answers 401 without the token, like every API route', async () => {
    const guarded = await startStack({ API_TOKEN: 'thumb-secret' });
    try {
      const bare = await fetch(`${guarded.baseUrl}/api/v1/videos/1/thumbnail`);
      expect(bare.status).toBe(401);
      const wrong = await fetch(`${guarded.baseUrl}/api/v1/videos/1/thumbnail`, { headers: { authorization: 'Bearer nope' } });
      expect(wrong.status).toBe(401);
      const right = await fetch(`${guarded.baseUrl}/api/v1/videos/1/thumbnail`, { headers: { authorization: 'Bearer thumb-secret' } });
      expect(right.status).toBe(404);
      expect(await right.json()).toEqual({ code: 'NOT_FOUND', message: 'video 1 not found' });
    } finally {
      await guarded.close();
    }
  });
});
