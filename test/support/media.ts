/**
 * Real media for tests and the benchmark: tiny clips made with the static ffmpeg
 * from `@ffmpeg-installer/ffmpeg`, each with the ground truth it was made from.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import ffmpegInstaller from '@ffmpeg-installer/ffmpeg';
import execa from 'execa';

/** A generated clip with a video stream, and what ffprobe must report for it. */
export interface VideoClip {
  /** Stable name, also the file's base name without extension. */
  name: string;
  /** Absolute path in the cache. */
  file: string;
  hasVideo: true;
  width: number;
  height: number;
  /** Frame rate as a reduced fraction. */
  fps: [number, number];
  durationSeconds: number;
  videoCodec: string;
  audioCodec: string | null;
  container: string;
}

/** A generated clip with no video stream (audio in a video container). */
export interface AudioOnlyClip {
  name: string;
  file: string;
  hasVideo: false;
  width: null;
  height: null;
  fps: null;
  durationSeconds: number;
  videoCodec: null;
  audioCodec: string;
  container: string;
}

/** One generated clip with its ground truth; narrow on `hasVideo`. */
export type TestClip = VideoClip | AudioOnlyClip;

interface ClipSpec {
  name: string;
  extension: string;
  /** ffmpeg muxer name: the temp file's name does not carry the extension. */
  muxer: string;
  video: { width: number; height: number; rate: string; fps: [number, number]; codec: string; args: string[] } | null;
  audio: { codec: string; args: string[] } | null;
  durationSeconds: number;
  container: string;
}

const x264 = ['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p'];
const aac = ['-c:a', 'aac', '-b:a', '64k'];

/**
 * Sizes, rates and durations differ from clip to clip so that a mix-up between
 * two files (or two fields) shows in the tests. Bump the cache version in
 * CACHE_DIR when you change a clip, so stale files are not reused.
 */
const CLIPS: readonly ClipSpec[] = [
  {
    name: 'h264-aac', extension: '.mp4', muxer: 'mp4', container: 'mp4', durationSeconds: 2,
    video: { width: 320, height: 240, rate: '25', fps: [25, 1], codec: 'h264', args: x264 },
    audio: { codec: 'aac', args: aac },
  },
  {
    name: 'h264-vorbis', extension: '.mkv', muxer: 'matroska', container: 'matroska', durationSeconds: 1.5,
    video: { width: 256, height: 144, rate: '24', fps: [24, 1], codec: 'h264', args: x264 },
    audio: { codec: 'vorbis', args: ['-c:a', 'libvorbis', '-q:a', '2'] },
  },
  {
    name: 'vp9-opus', extension: '.webm', muxer: 'webm', container: 'webm', durationSeconds: 1,
    video: {
      width: 160, height: 120, rate: '30', fps: [30, 1], codec: 'vp9',
      // realtime + highest cpu-used: VP9's default "good" mode takes seconds per frame-second.
      args: ['-c:v', 'libvpx-vp9', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '200k', '-pix_fmt', 'yuv420p'],
    },
    audio: { codec: 'opus', args: ['-c:a', 'libopus', '-b:a', '32k'] },
  },
  {
    name: 'mpeg4-aac', extension: '.mov', muxer: 'mov', container: 'mov', durationSeconds: 2,
    video: { width: 240, height: 180, rate: '15', fps: [15, 1], codec: 'mpeg4', args: ['-c:v', 'mpeg4', '-q:v', '5'] },
    audio: { codec: 'aac', args: aac },
  },
  {
    name: 'mpeg4-mp3', extension: '.avi', muxer: 'avi', container: 'avi', durationSeconds: 2,
    video: { width: 176, height: 144, rate: '20', fps: [20, 1], codec: 'mpeg4', args: ['-c:v', 'mpeg4', '-q:v', '5'] },
    audio: { codec: 'mp3', args: ['-c:a', 'libmp3lame', '-b:a', '64k'] },
  },
  {
    name: 'h264-aac-ts', extension: '.ts', muxer: 'mpegts', container: 'mpegts', durationSeconds: 1,
    video: { width: 320, height: 180, rate: '50', fps: [50, 1], codec: 'h264', args: x264 },
    audio: { codec: 'aac', args: aac },
  },
  {
    name: 'h264-silent', extension: '.mp4', muxer: 'mp4', container: 'mp4', durationSeconds: 1,
    video: { width: 208, height: 120, rate: '12', fps: [12, 1], codec: 'h264', args: x264 },
    audio: null,
  },
  {
    name: 'h264-ntsc', extension: '.mp4', muxer: 'mp4', container: 'mp4', durationSeconds: 1,
    video: { width: 288, height: 216, rate: '30000/1001', fps: [30000, 1001], codec: 'h264', args: x264 },
    audio: { codec: 'aac', args: aac },
  },
  {
    name: 'aac-only', extension: '.mp4', muxer: 'mp4', container: 'mp4', durationSeconds: 1,
    video: null,
    audio: { codec: 'aac', args: aac },
  },
];

/** The project root: this file lives in `<root>/test/support/`. */
const PROJECT_ROOT = path.resolve(__dirname, '..', '..');
const CACHE_DIR = path.join(PROJECT_ROOT, '.cache', 'test-media', 'v1');

/** Absolute path of the static ffmpeg the tests generate media with. */
export function ffmpegPath(): string {
  return ffmpegInstaller.path;
}

function ffmpegArgs(spec: ClipSpec, output: string): string[] {
  const duration = String(spec.durationSeconds);
  const args = ['-nostdin', '-hide_banner', '-loglevel', 'error', '-y'];
  if (spec.video) {
    const { width, height, rate } = spec.video;
    args.push('-f', 'lavfi', '-i', `testsrc=size=${width}x${height}:rate=${rate}`);
  }
  if (spec.audio) {
    args.push('-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000');
  }
  if (spec.video) args.push(...spec.video.args);
  if (spec.audio) args.push(...spec.audio.args);
  // Single-threaded and bit-exact so that the same spec yields the same file.
  args.push('-threads', '1', '-map_metadata', '-1', '-fflags', '+bitexact', '-t', duration, '-f', spec.muxer, output);
  return args;
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}

function toClip(spec: ClipSpec, file: string): TestClip {
  if (spec.video) {
    return {
      name: spec.name, file, hasVideo: true,
      width: spec.video.width, height: spec.video.height, fps: spec.video.fps,
      durationSeconds: spec.durationSeconds, videoCodec: spec.video.codec,
      audioCodec: spec.audio?.codec ?? null, container: spec.container,
    };
  }
  if (!spec.audio) throw new Error(`clip ${spec.name} has neither video nor audio`);
  return {
    name: spec.name, file, hasVideo: false, width: null, height: null, fps: null,
    durationSeconds: spec.durationSeconds, videoCodec: null, audioCodec: spec.audio.codec, container: spec.container,
  };
}

/**
 * Generates (once; later calls reuse the cache) the test clips in
 * `<project>/.cache/test-media/v1/` and returns them with their ground truth.
 * Safe to call from parallel Jest workers: each writes a private temp file and
 * renames it into place, so no reader ever sees half a file.
 */
export async function ensureTestMedia(): Promise<TestClip[]> {
  await fs.mkdir(CACHE_DIR, { recursive: true });
  return Promise.all(
    CLIPS.map(async (spec) => {
      const file = path.join(CACHE_DIR, spec.name + spec.extension);
      if (!(await exists(file))) {
        const temp = path.join(CACHE_DIR, `.${spec.name}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
        try {
          await execa(ffmpegPath(), ffmpegArgs(spec, temp), { stdin: 'ignore' });
          await fs.rename(temp, file);
        } finally {
          await fs.rm(temp, { force: true });
        }
      }
      return toClip(spec, file);
    }),
  );
}

/** Files per folder in a built library; folders nest two levels deep. */
const FILES_PER_FOLDER = 50;

/**
 * Fills `dir` with `count` video files (hard links to the clips that have video,
 * copies where linking fails, e.g. across devices), 50 per folder in two levels
 * of folders, and returns their absolute paths in creation order.
 */
export async function buildLibrary(dir: string, count: number, clips: TestClip[]): Promise<string[]> {
  const videos = clips.filter((clip) => clip.hasVideo);
  if (videos.length === 0) throw new Error('buildLibrary needs at least one clip with video');
  const root = path.resolve(dir);
  const files: string[] = [];
  for (let index = 0; index < count; index++) {
    const folder = Math.floor(index / FILES_PER_FOLDER);
    const clip = videos[index % videos.length] as TestClip;
    const folderPath = path.join(
      root,
      `group-${String(Math.floor(folder / FILES_PER_FOLDER)).padStart(3, '0')}`,
      `folder-${String(folder % FILES_PER_FOLDER).padStart(3, '0')}`,
    );
    if (index % FILES_PER_FOLDER === 0) await fs.mkdir(folderPath, { recursive: true });
    const file = path.join(folderPath, `video-${String(index).padStart(6, '0')}${path.extname(clip.file)}`);
    try {
      await fs.link(clip.file, file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
        await fs.rm(file, { force: true });
        await fs.link(clip.file, file).catch(() => fs.copyFile(clip.file, file));
      } else {
        await fs.copyFile(clip.file, file);
      }
    }
    files.push(file);
  }
  return files;
}

/** A clip made for the thumbnail tests, with the display size its picture must keep the aspect of. */
export interface ThumbnailClip extends VideoClip {
  /** Sample aspect ratio the clip's pixels have (1:1 for square pixels). */
  sar: [number, number];
}

/**
 * Clips the thumbnail tests need beside the shared ones (kept out of CLIPS,
 * whose count other tests rely on): one longer than 5 s (the frame is taken
 * at 5 s) and one with non-square pixels (720x480 shown at 4:3 needs a sample
 * aspect ratio of 8:9, so its picture is 320x240, not 320x214).
 */
const THUMBNAIL_CLIPS: readonly (ClipSpec & { sar: [number, number] })[] = [
  {
    name: 'h264-long', extension: '.mp4', muxer: 'mp4', container: 'mp4', durationSeconds: 7, sar: [1, 1],
    video: { width: 192, height: 108, rate: '10', fps: [10, 1], codec: 'h264', args: x264 },
    audio: null,
  },
  {
    name: 'h264-anamorphic', extension: '.mkv', muxer: 'matroska', container: 'matroska', durationSeconds: 1, sar: [8, 9],
    video: { width: 720, height: 480, rate: '10', fps: [10, 1], codec: 'h264', args: [...x264, '-vf', 'setsar=8/9'] },
    audio: null,
  },
];

/** Generates (once, cached like ensureTestMedia) the thumbnail tests' extra clips. */
export async function ensureThumbnailClips(): Promise<ThumbnailClip[]> {
  await fs.mkdir(CACHE_DIR, { recursive: true });
  return Promise.all(
    THUMBNAIL_CLIPS.map(async (spec) => {
      const file = path.join(CACHE_DIR, spec.name + spec.extension);
      if (!(await exists(file))) {
        const temp = path.join(CACHE_DIR, `.${spec.name}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
        try {
          await execa(ffmpegPath(), ffmpegArgs(spec, temp), { stdin: 'ignore' });
          await fs.rename(temp, file);
        } finally {
          await fs.rm(temp, { force: true });
        }
      }
      return { ...(toClip(spec, file) as VideoClip), sar: spec.sar };
    }),
  );
}

/** Width and height of a baseline or progressive JPEG, read from its first SOF marker. */
export function jpegSize(data: Buffer): { width: number; height: number } {
  if (data[0] !== 0xff || data[1] !== 0xd8) throw new Error('not a JPEG (no SOI marker)');
  let at = 2;
  while (at + 4 <= data.length) {
    if (data[at] !== 0xff) throw new Error(`JPEG marker expected at byte ${at}`);
    const marker = data[at + 1] as number;
    const length = data.readUInt16BE(at + 2);
    // SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC).
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { height: data.readUInt16BE(at + 5), width: data.readUInt16BE(at + 7) };
    }
    at += 2 + length;
  }
  throw new Error('JPEG has no SOF marker');
}
