/**
 * A video deleted while its picture is being made leaves no picture behind:
 * no record would ever point at it, so nothing would ever remove it. The
 * picture activity runs in Temporal's MockActivityEnvironment over a real
 * library and the real ffmpeg thumbnailer, whose make is preceded by the
 * deletion (as the API's DELETE would land mid-picture).
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities } from '../../src/activities';
import type { Thumbnailer } from '../../src/thumbnails/thumbnailer';
import { createThumbnailer } from '../../src/thumbnails/thumbnailer';
import type { ThumbnailBatchResult } from '../../src/model/types';
import type { JobBody } from '../../src/scans';
import { buildLibrary, ensureTestMedia } from '../support/media';
import { holdingProber, http, startStack, waitFor, type Stack } from '../support/stack';

jest.setTimeout(300_000);

let work: string;
let stack: Stack;

beforeAll(async () => {
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'orphan-picture-')));
  stack = await startStack({ THUMBNAIL_DIR: path.join(work, 'thumbnails') }, { wrapProber: holdingProber });
});

afterAll(async () => {
  await stack?.close();
  await fs.rm(work, { recursive: true, force: true });
});

it('removes the picture of a video deleted while it was being made', async () => {
  const clips = await ensureTestMedia();
  const folder = path.join(work, 'media');
  const files = await buildLibrary(path.join(folder, 'shows'), 3, clips);
  // A held file keeps the scan from its picture phase: its videos are left for the activity below.
  const held = path.join(folder, 'held', 'held.mp4');
  await fs.mkdir(path.dirname(held), { recursive: true });
  await fs.copyFile(files[0] as string, held);
  const start = await http<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: folder });
  const jobId = start.body.job_id;
  await waitFor(async () => (await stack.library.searchVideos(path.join(folder, 'shows') + path.sep, 100, 0)).total, (n) => n === files.length, 120_000, 100);
  await http(stack.baseUrl, 'POST', `/api/v1/jobs/${jobId}/cancel`);
  await waitFor(async () => (await http<JobBody>(stack.baseUrl, 'GET', `/api/v1/jobs/${jobId}`)).body, (job) => job.status === 'cancelled', 60_000, 100);

  const real = createThumbnailer({ dir: path.join(work, 'pictures'), width: 160 });
  const deleted: number[] = [];
  const deletingFirst: Thumbnailer = {
    pathFor: (id) => real.pathFor(id),
    remove: (id) => real.remove(id),
    make: async (request) => {
      await stack.library.deleteVideo(request.videoId);
      deleted.push(request.videoId);
      return real.make(request);
    },
  };
  const activities = createActivities({ library: stack.library, prober: stack.prober, scanRoots: undefined, thumbnailer: deletingFirst });
  const result = (await new MockActivityEnvironment().run(activities.makeThumbnails, {
    scanId: jobId,
    fromIndex: 0,
    toIndex: files.length + 1,
    timeoutMs: 30_000,
  })) as ThumbnailBatchResult;
  expect(deleted.length).toBeGreaterThan(0);
  expect(result.made).toBe(deleted.length);
  for (const id of deleted) await expect(fs.stat(real.pathFor(id))).rejects.toMatchObject({ code: 'ENOENT' });
});
