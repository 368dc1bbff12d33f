/**
 * Makes a video's thumbnail: one frame, scaled to a fixed width, as JPEG.
 * One `ffmpeg` process per file (the static build of @ffmpeg-installer/ffmpeg),
 * fenced like the prober: the file protocol only, the video demuxers only,
 * stdin ignored, killed at the time limit, an argument array (no shell).
 * The picture is written to a temp file in the same folder and renamed into
 * place, so a reader never sees half a JPEG and a killed run leaves none.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import ffmpegInstaller from '@ffmpeg-installer/ffmpeg';
import execa from 'execa';
import { ALLOWED_DEMUXERS } from '../probe/ffprobe';

/** Reasons recorded for a video that got no picture. */
export const ThumbnailError = {
  Timeout: 'thumbnail_timeout',
  NoFrame: 'thumbnail_no_frame',
  Failed: 'thumbnail_failed',
} as const;

/** Seconds into the video the frame is taken at, unless the video is no longer than this. */
export const THUMBNAIL_AT_SECONDS = 5;

export type ThumbnailResult = { ok: true } | { ok: false; reason: string };

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

/** Creates a thumbnailer writing to `dir`, sharded by the id's last two digits so no folder grows too large. */
export function createThumbnailer({ dir, width, ffmpegPath = ffmpegInstaller.path }: ThumbnailerOptions): Thumbnailer {
  const pathFor = (videoId: number): string => path.join(dir, String(videoId % 100).padStart(2, '0'), `${videoId}.jpg`);

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
    const subprocess = execa(ffmpegPath, args, { stdin: 'ignore', stdout: 'ignore', maxBuffer: 1 << 20, windowsHide: true });
    const kill = (): void => {
      subprocess.kill('SIGKILL');
    };
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, timeoutMs);
    signal?.addEventListener('abort', kill, { once: true });
    try {
      await subprocess;
    } catch (error) {
      if (subprocess.pid === undefined) throw error; // never started: the machine's problem, retried
      signal?.throwIfAborted();
      if (timedOut) return { ok: false, reason: ThumbnailError.Timeout };
      const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim().split(/\r?\n/)[0] ?? '';
      return { ok: false, reason: `${ThumbnailError.Failed}: ${stderr.slice(0, MAX_REASON_CHARS) || 'ffmpeg failed'}` };
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', kill);
    }
    signal?.throwIfAborted();
    const written = await fs.stat(temp).catch(() => null);
    return written === null || written.size === 0 ? { ok: false, reason: ThumbnailError.NoFrame } : { ok: true };
  }

  async function make({ file, videoId, durationSeconds, timeoutMs, signal }: ThumbnailRequest): Promise<ThumbnailResult> {
    if (!path.isAbsolute(file)) throw new TypeError(`thumbnail needs an absolute path, got ${JSON.stringify(file)}`);
    signal?.throwIfAborted();
    const target = pathFor(videoId);
    await fs.mkdir(path.dirname(target), { recursive: true });
    const temp = path.join(path.dirname(target), `.${videoId}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    const seconds = thumbnailSeekSeconds(durationSeconds);
    const deadline = Date.now() + timeoutMs;
    try {
      let result = await run(file, temp, seconds, true, timeoutMs, signal);
      // Some files cannot seek by index (an MPEG-TS stream with one keyframe):
      // the fast seek lands past every frame. Decoding from the start to the
      // target finds it, within what is left of the same time limit.
      if (!result.ok && result.reason === ThumbnailError.NoFrame && seconds > 0) {
        const left = deadline - Date.now();
        result = left > 0 ? await run(file, temp, seconds, false, left, signal) : { ok: false, reason: ThumbnailError.Timeout };
      }
      if (result.ok) await fs.rename(temp, target);
      return result;
    } finally {
      await fs.rm(temp, { force: true });
    }
  }

  async function remove(videoId: number): Promise<void> {
    await fs.rm(pathFor(videoId), { force: true });
  }

  return { pathFor, make, remove };
}
