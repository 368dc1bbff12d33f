/**
 * Makes a video's thumbnail: one frame, scaled to a fixed width, as JPEG.
 * Two ways, one contract (media-host/select.ts picks one):
 * - in the worker's libav media hosts (createHostThumbnailer, the frame made
 *   by thumbnails/libav-frame.ts), when the worker probes with libav;
 * - else one `ffmpeg` process per file (createThumbnailer, the static build of
 *   @ffmpeg-installer/ffmpeg), fenced like the prober: the file protocol only,
 *   the video demuxers only, stdin ignored, killed at the time limit, an
 *   argument array (no shell).
 * The picture is written to a temp file in the same folder and renamed into
 * place, so a reader never sees half a JPEG. A worker killed mid-picture
 * leaves its temp file behind: removeStaleTemps clears those at worker start.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import ffmpegInstaller from '@ffmpeg-installer/ffmpeg';
import execa from 'execa';
import { ALLOWED_DEMUXERS } from '../media/demuxers';
import { killAtDeadlineOrAbort } from '../media/deadline';
import { interrupted, isStopSignal } from '../model/interruption';
import { ThumbnailError, type FrameMaker, type ThumbnailResult } from './types';
import { mediaChildEnv } from '../media/child-env';

export { ThumbnailError, type ThumbnailResult } from './types';

/** Seconds into the video the frame is taken at, unless the video is no longer than this. */
export const THUMBNAIL_AT_SECONDS = 5;

export interface ThumbnailRequest {
  /** Real, absolute path of the video, already checked to lie inside its root. */
  file: string;
  videoId: number;
  /** The probed duration; null when unknown (the frame is then taken at the start). */
  durationSeconds: number | null;
  timeoutMs: number;
  signal?: AbortSignal;
}

export interface Thumbnailer {
  /** Where the picture of a video lives (whether or not it exists). */
  pathFor(videoId: number): string;
  make(request: ThumbnailRequest): Promise<ThumbnailResult>;
  /** Deletes a video's picture; nothing when it has none. */
  remove(videoId: number): Promise<void>;
  /**
   * Pictures worth having in flight for each one made at once: 2 where the
   * maker keeps THUMBNAIL_CONCURRENCY itself and holds the next picture
   * waiting (the media hosts, media-host/pool.ts), so that one starts the
   * moment another ends; 1 (when absent) where each call is a picture being made.
   */
  readonly inFlightPerSlot?: number;
}

export interface ThumbnailerOptions {
  dir: string;
  width: number;
  ffmpegPath?: string;
}

/** The second a thumbnail is taken at: 5 s, or a third of the way into a shorter video. */
export function thumbnailSeekSeconds(durationSeconds: number | null): number {
  if (durationSeconds === null || !Number.isFinite(durationSeconds) || durationSeconds <= 0) return 0;
  return durationSeconds > THUMBNAIL_AT_SECONDS ? THUMBNAIL_AT_SECONDS : durationSeconds / 3;
}

const MAX_REASON_CHARS = 300;

/** A temp file of a picture being made: `.<video id>.<pid>.<random>.tmp`, beside the picture. */
const TEMP_NAME = /^\.\d+\.\d+\.[0-9a-f]+\.tmp$/;

/** Makes the picture of `request` into `temp`, the frame taken at `seconds`: what differs between the two ways. */
type MakeInto = (request: ThumbnailRequest, temp: string, seconds: number) => Promise<ThumbnailResult>;

/**
 * The part both thumbnailers share: pictures in `dir`, sharded by the id's
 * last two digits so no folder grows too large, each written to a temp file
 * and renamed into place.
 */
function atomicThumbnailer(dir: string, makeInto: MakeInto): Thumbnailer {
  const pathFor = (videoId: number): string => path.join(dir, String(videoId % 100).padStart(2, '0'), `${videoId}.jpg`);

  async function make(request: ThumbnailRequest): Promise<ThumbnailResult> {
    if (!path.isAbsolute(request.file)) throw new TypeError(`thumbnail needs an absolute path, got ${JSON.stringify(request.file)}`);
    request.signal?.throwIfAborted();
    const target = pathFor(request.videoId);
    await fs.mkdir(path.dirname(target), { recursive: true });
    const temp = path.join(path.dirname(target), `.${request.videoId}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    let renamed = false;
    try {
      const result = await makeInto(request, temp, thumbnailSeekSeconds(request.durationSeconds));
      if (result.ok) {
        await fs.rename(temp, target);
        renamed = true;
      }
      return result;
    } finally {
      // A renamed temp is gone: removing it again would cost an lstat per picture for nothing.
      if (!renamed) await fs.rm(temp, { force: true });
    }
  }

  async function remove(videoId: number): Promise<void> {
    await fs.rm(pathFor(videoId), { force: true });
  }

  return { pathFor, make, remove };
}

/** Creates the thumbnailer that runs one ffmpeg per picture. */
export function createThumbnailer({ dir, width, ffmpegPath = ffmpegInstaller.path }: ThumbnailerOptions): Thumbnailer {
  /**
   * One ffmpeg run. `fastSeek`: -ss before -i, so the demuxer seeks to the
   * keyframe before the target and decodes from there, not from the start.
   * The height follows the display aspect ratio (sample aspect ratio
   * included), rounded to an even number; setsar=1 makes the pixels square.
   */
  async function run(file: string, temp: string, seconds: number, fastSeek: boolean, timeoutMs: number, signal?: AbortSignal): Promise<ThumbnailResult> {
    const seek = ['-ss', seconds.toFixed(3)];
    const args = [
      '-nostdin', '-hide_banner', '-loglevel', 'error',
      '-protocol_whitelist', 'file', '-format_whitelist', ALLOWED_DEMUXERS.join(','),
      ...(fastSeek ? seek : []),
      '-i', `file:${file}`,
      ...(fastSeek ? [] : seek),
      '-map', '0:v:0', '-an', '-sn', '-dn', '-frames:v', '1',
      '-vf', `scale=${width}:max(2\\,trunc(${width}/dar/2)*2),setsar=1`,
      '-c:v', 'mjpeg', '-q:v', '4', '-f', 'mjpeg', '-y', `file:${temp}`,
    ];
    const subprocess = execa(ffmpegPath, args, {
      stdin: 'ignore', stdout: 'ignore', maxBuffer: 1 << 20, windowsHide: true,
      // An allow-list of the environment, not ours: ffmpeg decodes untrusted media.
      env: mediaChildEnv(), extendEnv: false,
    });
    const deadline = killAtDeadlineOrAbort(subprocess, timeoutMs, signal);
    try {
      await subprocess;
    } catch (error) {
      if (subprocess.pid === undefined) throw error; // never started: the machine's problem, retried
      signal?.throwIfAborted();
      if (deadline.timedOut) return { ok: false, reason: ThumbnailError.Timeout };
      // Stopped from outside (the worker's process group): an interruption, the picture is made again.
      const killedBy = (error as { signal?: string; exitCode?: number }).signal;
      if (isStopSignal(killedBy)) throw interrupted('ffmpeg', killedBy);
      const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim().split(/\r?\n/)[0] ?? '';
      return { ok: false, reason: `${ThumbnailError.Failed}: ${stderr.slice(0, MAX_REASON_CHARS) || 'ffmpeg failed'}` };
    } finally {
      deadline.stop();
    }
    signal?.throwIfAborted();
    const written = await fs.stat(temp).catch(() => null);
    return written === null || written.size === 0 ? { ok: false, reason: ThumbnailError.NoFrame } : { ok: true };
  }

  return atomicThumbnailer(dir, async ({ file, timeoutMs, signal }, temp, seconds) => {
    const deadline = Date.now() + timeoutMs;
    const result = await run(file, temp, seconds, true, timeoutMs, signal);
    // Some files cannot seek by index (an MPEG-TS stream with one keyframe):
    // the fast seek lands past every frame. Decoding from the start to the
    // target finds it, within what is left of the same time limit.
    if (!result.ok && result.reason === ThumbnailError.NoFrame && seconds > 0) {
      const left = deadline - Date.now();
      return left > 0 ? run(file, temp, seconds, false, left, signal) : { ok: false, reason: ThumbnailError.Timeout };
    }
    return result;
  });
}

/**
 * Creates the thumbnailer that makes each picture in the worker's libav media
 * hosts (libav-frame.ts, through media-host/pool.ts): no process per
 * picture, and the pool's time limit, abort and crash isolation (a file that
 * crashes a host gets `thumbnail_failed: thumbnailer crashed`, alone).
 */
export function createHostThumbnailer({ dir, width, hosts }: { dir: string; width: number; hosts: FrameMaker }): Thumbnailer {
  const thumbnailer = atomicThumbnailer(dir, ({ file, timeoutMs, signal }, temp, seconds) =>
    hosts.thumbnail({ file, output: temp, seconds, width, timeoutMs, signal }),
  );
  return { ...thumbnailer, inFlightPerSlot: 2 };
}

/**
 * Removes the temp files of pictures left in `dir` by a worker killed while
 * making them (SIGKILL, a power cut), once older than `olderThanMs`: a
 * younger one may belong to a worker at work on it now, on this machine or
 * another sharing THUMBNAIL_DIR. Returns how many it removed.
 */
export async function removeStaleTemps(dir: string, olderThanMs: number): Promise<number> {
  const before = Date.now() - olderThanMs;
  const shards = await fs.readdir(dir, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  let removed = 0;
  for (const shard of shards) {
    if (!shard.isDirectory()) continue;
    const folder = path.join(dir, shard.name);
    for (const name of await fs.readdir(folder).catch(() => [] as string[])) {
      if (!TEMP_NAME.test(name)) continue;
      const file = path.join(folder, name);
      const stat = await fs.stat(file).catch(() => null);
      if (stat === null || stat.mtimeMs >= before) continue;
      await fs.rm(file, { force: true });
      removed += 1;
    }
  }
  return removed;
}
