/**
 * The placeholder of GET /api/v1/videos/{id}/thumbnail takes the box the
 * pictures take: THUMBNAIL_WIDTH wide, 16:9, against the real stack (a scan
 * of a video and of one whose frames are cut off).
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Video } from '../../src/library/types';
import type { JobBody } from '../../src/scans';
import { ensureTestMedia, ensureThumbnailClips, jpegSize, type TestClip } from '../support/media';
import { http, startStack, waitFor, type Stack } from '../support/stack';

const TERMINAL = ['completed', 'failed', 'cancelled', 'timeout'];

let work: string;

beforeAll(async () => {
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'placeholder-')));
});

afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

async function picture(stack: Stack, id: number): Promise<{ kind: string | null; etag: string | null; width: number; height: number }> {
  const res = await fetch(`${stack.baseUrl}/api/v1/videos/${id}/thumbnail`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('image/jpeg');
  return { kind: res.headers.get('x-thumbnail'), etag: res.headers.get('etag'), ...jpegSize(Buffer.from(await res.arrayBuffer())) };
}

it.each([
  [240, 136],
  [320, 180],
  [500, 282],
])('is %i pixels wide and %i high when THUMBNAIL_WIDTH is its width', async (width, height) => {
  const stack = await startStack({ THUMBNAIL_WIDTH: String(width) });
  try {
    const folder = path.join(work, String(width));
    await fs.mkdir(folder);
    const video = (await ensureTestMedia()).find((c) => c.name === 'h264-aac') as TestClip;
    await fs.copyFile(video.file, path.join(folder, 'video.mp4'));
    // Its header probes (720x480 h264), its frames are cut off: no picture can be made.
    const anamorphic = (await ensureThumbnailClips()).find((c) => c.name === 'h264-anamorphic') as TestClip;
    await fs.writeFile(path.join(folder, 'corrupt.mkv'), (await fs.readFile(anamorphic.file)).subarray(0, 1200));
    const started = await http<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: folder });
    const job = await waitFor(() => stack.scans.get(started.body.job_id), (j: JobBody) => TERMINAL.includes(j.status), 120_000, 100);
    expect(job.status).toBe('completed');
    const videos = (await http<{ videos: Video[] }>(stack.baseUrl, 'GET', '/api/v1/videos?limit=10')).body.videos;
    const byName = new Map(videos.map((v) => [v.filename, v.id]));

    const placeholder = await picture(stack, byName.get('corrupt.mkv') as number);
    expect(placeholder).toMatchObject({ kind: 'placeholder', width, height });
    // Drawn once: the same bytes every time.
    expect((await picture(stack, byName.get('corrupt.mkv') as number)).etag).toBe(placeholder.etag);
    // As wide as the pictures the scan made.
    expect(await picture(stack, byName.get('video.mp4') as number)).toMatchObject({ kind: 'video', width });
  } finally {
    await stack.close();
  }
});
