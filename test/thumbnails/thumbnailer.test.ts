/**
 * Both thumbnailers against real clips: one ffmpeg per picture, and libav in
 * the worker's probe hosts. The width asked for, the height from the display
 * aspect (non-square pixels honoured), the frame time, atomic writes, reasons
 * for files that give no picture, time limits, cancels, a file that crashes
 * its host, and the temp files a killed worker leaves.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createIsolatedProber, THUMBNAILER_CRASHED, type IsolatedProber } from '../../src/media-host/pool';
import { thumbnailerFor } from '../../src/media-host/select';
import { hostileHost, hostsStarted } from '../support/media-hosts';
import {
  createHostThumbnailer,
  createThumbnailer,
  removeStaleTemps,
  thumbnailSeekSeconds,
  ThumbnailError,
  type Thumbnailer,
} from '../../src/thumbnails/thumbnailer';
import execa from 'execa';
import { ensureTestMedia, ensureThumbnailClips, ffmpegPath, jpegSize, type TestClip, type VideoClip } from '../support/media';
import { startStack, waitFor } from '../support/stack';
import { stopFifos, stuckFile, trickleFile } from '../probe/fifos';

jest.setTimeout(120_000);

let dir: string;
let media: TestClip[];
const pools: IsolatedProber[] = [];

/** Libav hosts; test hosts (hostile-media-host.ts) when a test needs a crash or a count of the hosts started. */
function libavHosts(options: { graceMs?: number; crashOn?: string; startLog?: string; thumbnailConcurrency?: number } = {}): IsolatedProber {
  const { crashOn, startLog, ...rest } = options;
  const host = crashOn !== undefined || startLog !== undefined ? { host: hostileHost({ crashOn, startLog }) } : {};
  const pool = createIsolatedProber({ kind: 'libav', concurrency: 1, ...rest, ...host });
  pools.push(pool);
  return pool;
}

/** The two ways a worker makes pictures, by the name a test title gives them. */
const KINDS = {
  ffmpeg: (folder: string, width: number): Thumbnailer => createThumbnailer({ dir: folder, width }),
  'libav in the probe hosts': (folder: string, width: number): Thumbnailer => createHostThumbnailer({ dir: folder, width, hosts: libavHosts() }),
};

beforeAll(async () => {
  media = await ensureTestMedia();
});
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'thumbs-'));
});
afterEach(async () => {
  stopFifos();
  await Promise.all(pools.splice(0).map((pool) => pool.close()));
  await fs.rm(dir, { recursive: true, force: true });
});

/** The height a picture `width` wide keeps the clip's display aspect with, rounded to even. */
function expectedHeight(clip: VideoClip, sar: [number, number], width: number): number {
  const dar = (clip.width * sar[0]) / (clip.height * sar[1]);
  return Math.max(2, Math.trunc(width / dar / 2) * 2);
}

/** Processes other than this one that hold `file` open. */
async function openersOf(file: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const fds = await fs.readdir(`/proc/${entry}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      if ((await fs.readlink(`/proc/${entry}/fd/${fd}`).catch(() => '')) === file) {
        pids.push(Number(entry));
        break;
      }
    }
  }
  return pids;
}

/** Files left in the thumbnail folder whose name says they are temp files. */
async function temps(folder: string): Promise<string[]> {
  return (await fs.readdir(folder, { recursive: true })).map(String).filter((name) => name.endsWith('.tmp'));
}

describe.each(Object.keys(KINDS) as Array<keyof typeof KINDS>)('the thumbnailer with %s', (kind) => {
  const create = KINDS[kind];

  it('makes a JPEG of the configured width with the display aspect of every clip, non-square pixels and a clip under 5 s included', async () => {
    const shared = media.filter((c): c is VideoClip => c.hasVideo).map((c) => ({ ...c, sar: [1, 1] as [number, number] }));
    const clips = [...shared, ...(await ensureThumbnailClips())];
    expect(clips.some((c) => c.durationSeconds < 5)).toBe(true);
    expect(clips.some((c) => c.durationSeconds > 5)).toBe(true);
    expect(clips.some((c) => c.sar[0] !== c.sar[1])).toBe(true);
    for (const width of [320, 160]) {
      const thumbnailer = create(path.join(dir, String(width)), width);
      for (const [index, clip] of clips.entries()) {
        const result = await thumbnailer.make({ file: clip.file, videoId: index + 1, durationSeconds: clip.durationSeconds, timeoutMs: 60_000 });
        expect({ clip: clip.name, result }).toEqual({ clip: clip.name, result: { ok: true } });
        const size = jpegSize(await fs.readFile(thumbnailer.pathFor(index + 1)));
        expect({ clip: clip.name, ...size }).toEqual({ clip: clip.name, width, height: expectedHeight(clip, clip.sar, width) });
      }
      // Only finished pictures are left: no temp file of any run.
      expect(await temps(path.join(dir, String(width)))).toEqual([]);
    }
    // 720x480 at 8:9 is shown at 4:3: 320x240, where square pixels would give 320x212.
    expect(expectedHeight(clips.find((c) => c.name === 'h264-anamorphic') as VideoClip, [8, 9], 320)).toBe(240);
  });

  it('finds the frame of an MPEG-TS file with one keyframe, where seeking lands past every frame', async () => {
    // 7 s of counter whose only keyframe is the first: ffmpeg's own fast seek to 5 s gives no frame here.
    const file = path.join(dir, 'one-keyframe.ts');
    await execa(ffmpegPath(), [
      '-nostdin', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=25:duration=7',
      '-c:v', 'libx264', '-g', '1000', '-keyint_min', '1000', '-sc_threshold', '0', '-f', 'mpegts', file,
    ]);
    const thumbnailer = create(path.join(dir, 'pictures'), 160);
    await expect(thumbnailer.make({ file, videoId: 6, durationSeconds: 7, timeoutMs: 60_000 })).resolves.toEqual({ ok: true });
    expect(jpegSize(await fs.readFile(thumbnailer.pathFor(6)))).toEqual({ width: 160, height: 120 });
  });

  it('records a reason, and leaves no picture, for a corrupt file and for a file without video', async () => {
    const thumbnailer = create(dir, 320);
    const corrupt = path.join(dir, 'corrupt.mp4');
    await fs.writeFile(corrupt, Buffer.alloc(4096, 7));
    const result = await thumbnailer.make({ file: corrupt, videoId: 7, durationSeconds: 10, timeoutMs: 60_000 });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason.startsWith(`${ThumbnailError.Failed}: `) || result.reason === ThumbnailError.NoFrame).toBe(true);
    await expect(fs.stat(thumbnailer.pathFor(7))).rejects.toThrow();
    const audioOnly = media.find((c) => !c.hasVideo) as TestClip;
    const noVideo = await thumbnailer.make({ file: audioOnly.file, videoId: 8, durationSeconds: 1, timeoutMs: 60_000 });
    expect(noVideo.ok).toBe(false);
    await expect(fs.stat(thumbnailer.pathFor(8))).rejects.toThrow();
    expect(await temps(dir)).toEqual([]);
  });

  it('stops a file that is still being read at its time limit, and says so', async () => {
    const thumbnailer = create(dir, 320);
    const endless = await trickleFile(dir, (media.find((c) => c.name === 'h264-aac-ts') as TestClip).file);
    const result = await thumbnailer.make({ file: endless, videoId: 9, durationSeconds: 100, timeoutMs: 800 });
    expect(result).toEqual({ ok: false, reason: ThumbnailError.Timeout });
    await expect(fs.stat(thumbnailer.pathFor(9))).rejects.toThrow();
    expect(await temps(dir)).toEqual([]);
  });

  it('stops at once when cancelled, and leaves neither picture nor temp file', async () => {
    const thumbnailer = create(dir, 320);
    const endless = await trickleFile(dir, (media.find((c) => c.name === 'h264-aac-ts') as TestClip).file);
    const controller = new AbortController();
    // A time limit of an hour: only the cancel can end it within the test.
    const making = thumbnailer.make({ file: endless, videoId: 10, durationSeconds: 100, timeoutMs: 3_600_000, signal: controller.signal });
    // Its ffmpeg, or its host, is at work on the file.
    await waitFor(() => openersOf(endless), (pids) => pids.length > 0);
    controller.abort();
    await expect(making).rejects.toMatchObject({ name: 'AbortError' });
    await waitFor(() => openersOf(endless), (pids) => pids.length === 0, 10_000);
    await expect(fs.stat(thumbnailer.pathFor(10))).rejects.toThrow();
    expect(await temps(dir)).toEqual([]);
  });
});

describe('the thumbnailer in the probe hosts', () => {
  it('records a timeout for a file whose read never returns: its host is killed and the next picture gets a new one', async () => {
    const startLog = path.join(dir, 'starts.log');
    const pool = libavHosts({ graceMs: 300, startLog });
    const thumbnailer = createHostThumbnailer({ dir, width: 320, hosts: pool });
    const result = await thumbnailer.make({ file: await stuckFile(dir), videoId: 11, durationSeconds: 10, timeoutMs: 300 });
    expect(result).toEqual({ ok: false, reason: ThumbnailError.Timeout });
    const clip = (await ensureThumbnailClips())[0] as VideoClip;
    await expect(thumbnailer.make({ file: clip.file, videoId: 12, durationSeconds: clip.durationSeconds, timeoutMs: 60_000 })).resolves.toEqual({ ok: true });
    expect(hostsStarted(startLog)).toHaveLength(2);
  });

  it('takes the last frame of a file cut short before the time its length promised, in the host that started', async () => {
    // A download stopped part-way: 8 s of video recorded, the first 2 s or so on disk, the picture asked at 5 s.
    const whole = path.join(dir, 'whole.ts');
    await execa(ffmpegPath(), [
      '-nostdin', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=25:duration=8',
      '-c:v', 'libx264', '-g', '25', '-f', 'mpegts', whole,
    ]);
    const cut = path.join(dir, 'cut.ts');
    const bytes = await fs.readFile(whole);
    await fs.writeFile(cut, bytes.subarray(0, Math.floor(bytes.length * 0.3)));
    const startLog = path.join(dir, 'starts.log');
    const thumbnailer = createHostThumbnailer({ dir, width: 160, hosts: libavHosts({ startLog }) });
    await expect(thumbnailer.make({ file: cut, videoId: 16, durationSeconds: 8, timeoutMs: 60_000 })).resolves.toEqual({ ok: true });
    expect(jpegSize(await fs.readFile(thumbnailer.pathFor(16)))).toEqual({ width: 160, height: 120 });
    // Neither crashed nor killed: the host that made it is the first.
    expect(hostsStarted(startLog)).toHaveLength(1);
  });

  it('records a file that crashes its host as failed, alone: the picture in flight beside it is made', async () => {
    const pool = libavHosts({ crashOn: 'CRASH-ME', thumbnailConcurrency: 2 });
    const thumbnailer = createHostThumbnailer({ dir, width: 320, hosts: pool });
    const clip = media.find((c) => c.name === 'h264-aac') as VideoClip;
    const culprit = path.join(dir, 'CRASH-ME.mp4');
    await fs.copyFile(clip.file, culprit);
    const [crashed, made] = await Promise.all([
      thumbnailer.make({ file: culprit, videoId: 13, durationSeconds: clip.durationSeconds, timeoutMs: 60_000 }),
      thumbnailer.make({ file: clip.file, videoId: 14, durationSeconds: clip.durationSeconds, timeoutMs: 60_000 }),
    ]);
    expect(crashed).toEqual({ ok: false, reason: THUMBNAILER_CRASHED });
    expect(made).toEqual({ ok: true });
    await expect(fs.stat(thumbnailer.pathFor(13))).rejects.toThrow();
    expect(jpegSize(await fs.readFile(thumbnailer.pathFor(14))).width).toBe(320);
    expect(await temps(dir)).toEqual([]);
  });

  it('is the worker\'s thumbnailer when it probes with libav, and ffmpeg is when it probes with ffprobe', async () => {
    const clip = media.find((c) => c.name === 'h264-aac') as VideoClip;
    const libav = libavHosts({ crashOn: 'CRASH-ME' });
    const ffprobe = createIsolatedProber({ kind: 'ffprobe', concurrency: 1, host: hostileHost({ crashOn: 'CRASH-ME' }) });
    pools.push(ffprobe);
    // Told apart by the crash marker, which only the hosts know.
    const culprit = path.join(dir, 'CRASH-ME.mp4');
    await fs.copyFile(clip.file, culprit);
    const request = { file: culprit, videoId: 15, durationSeconds: clip.durationSeconds, timeoutMs: 60_000 };
    await expect(thumbnailerFor(libav, { dir, width: 320 }).make(request)).resolves.toEqual({ ok: false, reason: THUMBNAILER_CRASHED });
    await expect(thumbnailerFor(ffprobe, { dir, width: 320 }).make(request)).resolves.toEqual({ ok: true });
  });
});

/** PSNR in dB (the mean over the planes) of one picture against another of the same size, by ffmpeg's psnr filter. */
async function psnr(picture: string, reference: string): Promise<number> {
  const run = await execa(ffmpegPath(), ['-nostdin', '-hide_banner', '-i', picture, '-i', reference, '-lavfi', 'psnr', '-f', 'null', '-']);
  const match = /average:(inf|[\d.]+)/.exec(run.stderr);
  if (match === null) throw new Error(`no PSNR in ${run.stderr.slice(-300)}`);
  return match[1] === 'inf' ? Number.POSITIVE_INFINITY : Number(match[1]);
}

describe('the picture of the probe hosts', () => {
  /** Above it, two pictures are of one frame: JPEG coding alone leaves them 42 to 55 dB apart here; the long clip's first frame scores 19 dB against its frame at 5 s. */
  const SAME_FRAME_DB = 40;

  it('is the frame the ffmpeg thumbnailer takes, for every clip', async () => {
    const clips = [...media.filter((c): c is VideoClip => c.hasVideo), ...(await ensureThumbnailClips())];
    const hosts = createHostThumbnailer({ dir: path.join(dir, 'hosts'), width: 320, hosts: libavHosts() });
    const ffmpeg = createThumbnailer({ dir: path.join(dir, 'ffmpeg'), width: 320 });
    const scores: Record<string, number> = {};
    for (const [index, clip] of clips.entries()) {
      const request = { file: clip.file, videoId: index + 1, durationSeconds: clip.durationSeconds, timeoutMs: 60_000 };
      await expect(hosts.make(request)).resolves.toEqual({ ok: true });
      await expect(ffmpeg.make(request)).resolves.toEqual({ ok: true });
      scores[clip.name] = await psnr(hosts.pathFor(index + 1), ffmpeg.pathFor(index + 1));
    }
    expect(Object.entries(scores).filter(([, score]) => !(score >= SAME_FRAME_DB))).toEqual([]);
    // The measure tells frames apart: the long clip's first frame (a keyframe 5 s before the frame asked for) is another picture.
    const long = clips.find((c) => c.name === 'h264-long') as VideoClip;
    const first = { file: long.file, videoId: 99, durationSeconds: null, timeoutMs: 60_000 };
    await expect(ffmpeg.make(first)).resolves.toEqual({ ok: true });
    expect(await psnr(ffmpeg.pathFor(99), hosts.pathFor(clips.indexOf(long) + 1))).toBeLessThan(SAME_FRAME_DB);
  });
});

describe('temp files of pictures', () => {
  /** Plants the temp file a worker killed mid-picture leaves, `ageMs` old. */
  async function plantTemp(folder: string, videoId: number, ageMs: number): Promise<string> {
    const shard = path.join(folder, String(videoId % 100).padStart(2, '0'));
    await fs.mkdir(shard, { recursive: true });
    const file = path.join(shard, `.${videoId}.4242.0a1b2c3d.tmp`);
    await fs.writeFile(file, 'half a JPEG');
    const at = new Date(Date.now() - ageMs);
    await fs.utimes(file, at, at);
    return file;
  }

  it('are removed once stale; a young one (another worker may be writing it) and the pictures stay', async () => {
    const stale = await plantTemp(dir, 101, 60 * 60_000);
    const young = await plantTemp(dir, 202, 1_000);
    const picture = path.join(dir, '01', '101.jpg');
    await fs.writeFile(picture, 'a JPEG');
    const other = path.join(dir, '01', 'notes.tmp');
    await fs.writeFile(other, 'not ours');
    await fs.utimes(other, new Date(0), new Date(0));
    await expect(removeStaleTemps(dir, 10 * 60_000)).resolves.toBe(1);
    await expect(fs.stat(stale)).rejects.toThrow();
    await expect(fs.stat(young)).resolves.toBeDefined();
    await expect(fs.stat(picture)).resolves.toBeDefined();
    await expect(fs.stat(other)).resolves.toBeDefined();
    await expect(removeStaleTemps(path.join(dir, 'none'), 0)).resolves.toBe(0);
  });

  it('left by a killed worker are gone once a worker starts on the folder', async () => {
    const stale = await plantTemp(dir, 303, 60 * 60_000);
    const stack = await startStack({ THUMBNAIL_DIR: dir });
    try {
      await expect(fs.stat(stale)).rejects.toThrow();
    } finally {
      await stack.close();
    }
  });

});

describe('the frame time', () => {
  it('is 5 s, or a third of a shorter video', () => {
    expect(thumbnailSeekSeconds(7)).toBe(5);
    expect(thumbnailSeekSeconds(3600)).toBe(5);
    expect(thumbnailSeekSeconds(3)).toBe(1);
    expect(thumbnailSeekSeconds(null)).toBe(0);
  });
});
