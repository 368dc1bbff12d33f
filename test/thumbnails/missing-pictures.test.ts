/**
 * Every video gets its picture: a scan stopped before its picture phase
 * leaves the videos it probed without one, and the next scan of the root
 * makes them without probing those unchanged files again. A picture that
 * cannot be made (its folder cannot be written) is that video's picture
 * failure, with its reason; the scan, whose metadata is recorded, completes.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { JobBody } from '../../src/scans';
import { buildLibrary, ensureTestMedia, type TestClip } from '../support/media';
import { holdingProber, http, startStack, waitFor, type Stack } from '../support/stack';
import { thumbnailError } from '../support/library-rows';

jest.setTimeout(300_000);

const TERMINAL = ['completed', 'failed', 'cancelled', 'timeout'];

let clips: TestClip[];
let work: string;

beforeAll(async () => {
  clips = await ensureTestMedia();
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'missing-pictures-')));
});

afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

async function scanToEnd(stack: Stack, folder: string): Promise<JobBody> {
  const start = await http<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: folder });
  expect(start.status).toBe(202);
  return waitFor(
    async () => (await http<JobBody>(stack.baseUrl, 'GET', `/api/v1/jobs/${start.body.job_id}`)).body,
    (job) => TERMINAL.includes(job.status),
    120_000,
    100,
  );
}

describe('a scan cancelled before its pictures', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ THUMBNAIL_DIR: path.join(work, 'thumbnails') }, { wrapProber: holdingProber });
  });

  afterAll(async () => {
    await stack?.close();
  });

  it('leaves videos whose pictures the next scan makes, without probing them again', async () => {
    const folder = path.join(work, 'cancelled');
    const files = await buildLibrary(path.join(folder, 'shows'), 12, clips);
    // A file held until the scan is cancelled keeps it in its probing phase.
    const held = path.join(folder, 'held', 'held.mp4');
    await fs.mkdir(path.dirname(held), { recursive: true });
    await fs.copyFile(files[0] as string, held);
    const start = await http<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: folder });
    const jobId = start.body.job_id;
    await waitFor(
      async () => (await stack.library.searchVideos(path.join(folder, 'shows') + path.sep, 100, 0)).total,
      (total) => total === files.length,
      120_000,
      100,
    );
    expect((await http(stack.baseUrl, 'POST', `/api/v1/jobs/${jobId}/cancel`)).status).toBe(202);
    await waitFor(async () => (await http<JobBody>(stack.baseUrl, 'GET', `/api/v1/jobs/${jobId}`)).body, (job) => job.status === 'cancelled', 60_000, 100);
    const before = await stack.library.searchVideos(path.join(folder, 'shows') + path.sep, 100, 0);
    expect(before.items.filter((video) => video.thumbnail_at !== null)).toEqual([]);

    await fs.rm(path.dirname(held), { recursive: true });
    const rescan = await scanToEnd(stack, folder);
    expect(rescan.status).toBe('completed');
    // Unchanged: not probed again.
    expect(rescan.result?.skipped).toBe(files.length);
    expect(rescan.result?.new).toBe(0);
    expect(rescan.counts.thumbnails).toBe(files.length);
    const after = await stack.library.searchVideos(path.join(folder, 'shows') + path.sep, 100, 0);
    expect(after.items.filter((video) => video.thumbnail_at === null).map((video) => video.path)).toEqual([]);
    for (const video of after.items) {
      // The picture itself, not the placeholder: it is on disk.
      await expect(fs.stat(path.join(stack.config.thumbnailDir, String(video.id % 100).padStart(2, '0'), `${video.id}.jpg`))).resolves.toBeTruthy();
    }

    // A third scan has nothing left to make.
    const third = await scanToEnd(stack, folder);
    expect(third.status).toBe('completed');
    expect(third.counts.thumbnails ?? 0).toBe(0);
  });
});

describe('a picture that cannot be written', () => {
  let stack: Stack;
  let thumbnails: string;

  beforeAll(async () => {
    thumbnails = path.join(work, 'unwritable-thumbnails');
    await fs.mkdir(thumbnails, { recursive: true });
    // Every shard folder a picture goes to is taken by a file: no picture can be written.
    for (let shard = 0; shard < 100; shard += 1) await fs.writeFile(path.join(thumbnails, String(shard).padStart(2, '0')), '');
    stack = await startStack({ THUMBNAIL_DIR: thumbnails });
  });

  afterAll(async () => {
    await stack?.close();
  });

  it('is recorded as the video\'s picture failure with its reason, and the scan completes', async () => {
    const folder = path.join(work, 'unwritable');
    const files = await buildLibrary(folder, 6, clips);
    const job = await scanToEnd(stack, folder);
    expect(job.status).toBe('completed');
    expect(job.result?.errors).toEqual([]);
    const videos = await stack.library.searchVideos(folder + path.sep, 100, 0);
    expect(videos.total).toBe(files.length);
    for (const video of videos.items) {
      expect(video.thumbnail_at).toBeNull();
      expect(await thumbnailError(stack.config.databaseUrl, video.id)).toMatch(/^thumbnail_failed: .*(EEXIST|ENOTDIR)/);
    }
  });
});
