/**
 * The thumbnail phase never reads outside the scan's root, against the real
 * stack: files probed as ordinary videos are swapped, while the scan is paused
 * between its probes and its pictures, for links out of the root (to a video,
 * to a FIFO, the folder holding one), and for an HLS playlist and a concat
 * list named like videos that name files outside. The outside files are
 * canaries: the video is one whose picture would show, and the FIFOs are
 * watched for a reader (opening a FIFO to read blocks until a writer comes, so
 * a reader cannot slip past the watch), whatever opens them, ffmpeg or an
 * in-process decoder.
 */
import { execFileSync } from 'node:child_process';
import { constants, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { JobBody } from '../../src/scans';
import { ensureTestMedia, type TestClip } from '../support/media';
import { http, startStack, waitFor, type Stack } from '../support/stack';
import { videoByPath, thumbnailError } from '../support/library-rows';

jest.setTimeout(300_000);

const TERMINAL = ['completed', 'failed', 'cancelled', 'timeout'];
/** Pictures made before the pause lands: the files swapped come after this many ordinary ones. */
const ORDINARY = 24;

let clips: TestClip[];
let work: string;
let stack: Stack;

beforeAll(async () => {
  clips = (await ensureTestMedia()).filter((c) => c.hasVideo);
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'hostile-thumbs-')));
  // Small batches and window: few pictures are in flight when the scan is paused.
  // A FIFO opened by mistake is killed at the 5 s limit, if the watch had not already fed it.
  stack = await startStack({ SCAN_BATCH_SIZE: '2', SCAN_WINDOW: '2', THUMBNAIL_CONCURRENCY: '1', PROBE_TIMEOUT_MS: '5000' });
});

afterAll(async () => {
  await stack?.close();
  await fs.rm(work, { recursive: true, force: true });
});

/** Watches a FIFO for a reader: one that opened it shows as a write end that can open without blocking. */
function watchFifo(fifo: string): { stop: () => Promise<number> } {
  let readers = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const handle = await fs.open(fifo, constants.O_WRONLY | constants.O_NONBLOCK).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENXIO') return null; // no reader
        throw error;
      });
      if (handle !== null) {
        readers += 1;
        // Fed something that is no video and closed, the reader fails instead of waiting for its time limit.
        await handle.write('not a video\n').catch(() => undefined);
        await handle.close();
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return readers;
    },
  };
}

async function jobOf(jobId: string): Promise<JobBody> {
  return (await http<JobBody>(stack.baseUrl, 'GET', `/api/v1/jobs/${jobId}`)).body;
}

async function copyClip(index: number, file: string): Promise<string> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.copyFile((clips[index % clips.length] as TestClip).file, file);
  return file;
}

it('makes no picture from, and opens nothing of, what lies outside the root, whatever a file became after its probe', async () => {
  const root = path.join(work, 'root');
  const outside = path.join(work, 'outside');
  const ordinary: string[] = [];
  for (let i = 0; i < ORDINARY; i += 1) ordinary.push(await copyClip(i, path.join(root, `a-${String(i).padStart(2, '0')}.mp4`)));
  // Probed as the videos they are; swapped before their pictures are made. Files of a folder come before its subfolders.
  const linkToVideo = await copyClip(0, path.join(root, 'z-link-video.mp4'));
  const linkToFifo = await copyClip(1, path.join(root, 'z-link-fifo.mp4'));
  const playlist = await copyClip(2, path.join(root, 'z-playlist.mp4'));
  const concatList = await copyClip(3, path.join(root, 'z-concat.mp4'));
  const inFolder = await copyClip(4, path.join(root, 'z-folder', 'inner.mp4'));
  const swapped = [linkToVideo, linkToFifo, playlist, concatList, inFolder];

  // The canaries: a real video, and FIFOs named as a playlist's segments are.
  const secret = await copyClip(0, path.join(outside, 'secret.mp4'));
  const fifos = ['canary.mp4', 'segment.ts', 'listed.mp4'].map((name) => path.join(outside, name));
  for (const fifo of fifos) execFileSync('mkfifo', [fifo]);
  const watches = fifos.map(watchFifo);

  const started = await http<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: root });
  expect(started.status).toBe(202);
  const jobId = started.body.job_id;
  await waitFor(() => jobOf(jobId), (j) => j.phase === 'thumbnails' || TERMINAL.includes(j.status), 120_000, 10);
  const paused = await http<JobBody>(stack.baseUrl, 'POST', `/api/v1/jobs/${jobId}/pause`);
  expect(paused.status).toBe(202);
  await waitFor(() => jobOf(jobId), (j) => j.status === 'paused', 30_000, 50);

  // All probed as videos, none of their pictures tried yet: what follows is between probe and picture.
  const ids = new Map<string, number>();
  for (const file of swapped) {
    const video = await videoByPath(stack.config.databaseUrl, file);
    expect({ file, recorded: video !== undefined, thumbnail_at: video?.thumbnail_at }).toEqual({ file, recorded: true, thumbnail_at: null });
    expect(await thumbnailError(stack.config.databaseUrl, video?.id as number)).toBeNull();
    ids.set(file, video?.id as number);
  }

  await fs.rm(linkToVideo);
  await fs.symlink(secret, linkToVideo);
  await fs.rm(linkToFifo);
  await fs.symlink(fifos[0] as string, linkToFifo);
  await fs.writeFile(playlist, `#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:1.0,\n${fifos[1]}\n#EXTINF:1.0,\n${secret}\n#EXT-X-ENDLIST\n`);
  await fs.writeFile(concatList, `ffconcat version 1.0\nfile ${fifos[2]}\nfile ${secret}\n`);
  await fs.rename(path.join(root, 'z-folder'), path.join(outside, 'z-folder'));
  await fs.symlink(path.join(outside, 'z-folder'), path.join(root, 'z-folder'));

  const resumed = await http(stack.baseUrl, 'POST', `/api/v1/jobs/${jobId}/resume`);
  expect(resumed.status).toBe(202);
  const job = await waitFor(() => jobOf(jobId), (j) => TERMINAL.includes(j.status), 180_000, 100);
  const readers = await Promise.all(watches.map((w) => w.stop()));

  expect(job.status).toBe('completed');
  // Nothing opened a canary FIFO.
  expect(Object.fromEntries(fifos.map((fifo, i) => [path.basename(fifo), readers[i]]))).toEqual({ 'canary.mp4': 0, 'segment.ts': 0, 'listed.mp4': 0 });
  // The swapped files have no picture, the reason recorded, the placeholder served.
  const outcome: Record<string, unknown> = {};
  for (const file of swapped) {
    const id = ids.get(file) as number;
    const video = await videoByPath(stack.config.databaseUrl, file);
    const res = await fetch(`${stack.baseUrl}/api/v1/videos/${id}/thumbnail`);
    await res.arrayBuffer();
    outcome[path.relative(root, file)] = { thumbnail_at: video?.thumbnail_at ?? null, error: await thumbnailError(stack.config.databaseUrl, id), served: res.headers.get('x-thumbnail') };
  }
  const refused = (error: string | RegExp): Record<string, unknown> => ({ thumbnail_at: null, error, served: 'placeholder' });
  expect(outcome).toEqual({
    'z-link-video.mp4': refused('outside_scan_root'),
    'z-link-fifo.mp4': refused('outside_scan_root'),
    'z-playlist.mp4': refused(expect.stringMatching(/^thumbnail_/)),
    'z-concat.mp4': refused(expect.stringMatching(/^thumbnail_/)),
    'z-folder/inner.mp4': refused('outside_scan_root'),
  });
  // The ordinary files got their pictures: the phase did run past the swapped ones.
  for (const file of ordinary) expect({ file, made: (await videoByPath(stack.config.databaseUrl, file))?.thumbnail_at !== null }).toEqual({ file, made: true });
  expect(job.counts.thumbnails).toBe(ORDINARY);
});
