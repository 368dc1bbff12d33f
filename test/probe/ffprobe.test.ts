import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createProber, type Prober } from '../../src/probe/ffprobe';
import { ensureTestMedia, type TestClip, type VideoClip } from '../support/media';

const realFfprobe = createProber({ concurrency: 1 }).path;
/**
 * Unique per run, so that the process scan cannot confuse our `sleep` with
 * anyone else's; an hour, far past any test's time limit, so a probe that is
 * not stopped never ends within the test.
 */
const sleepMarker = `3600.${process.pid}`;
/** A probe time limit past any test's own: a probe stopped within the test was stopped by its signal. */
const NEVER_MS = 3_600_000;

let clips: TestClip[];
let work: string;
/** A wrapper around the real ffprobe that misbehaves for files with certain words in their names. */
let trickyFfprobe: string;
/** A wrapper that takes 0.3 s before running the real ffprobe. */
let slowFfprobe: string;
/** Whether this machine's ffprobe build crashes on every MPEG-TS file (seen with the static build on AMD EPYC). */
let crashingFfprobe: string;

function clip(name: string): TestClip {
  const found = clips.find((candidate) => candidate.name === name);
  if (!found) throw new Error(`no test clip named ${name}`);
  return found;
}

function videoClip(name: string): VideoClip {
  const found = clip(name);
  if (!found.hasVideo) throw new Error(`test clip ${name} has no video`);
  return found;
}

/** Live processes whose command line contains `text` (scans /proc, so it sees every process, not just children). */
async function processesWith(text: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await fs.readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.split('\0').join(' ').includes(text)) pids.push(Number(entry));
  }
  return pids;
}

async function writeScript(file: string, body: string): Promise<string> {
  await fs.writeFile(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

async function copyClip(name: string, fileName: string): Promise<string> {
  const target = path.join(work, fileName);
  await fs.copyFile(clip(name).file, target);
  return target;
}

async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Waits until exactly `count` processes mention `text`, or fails after the timeout. */
async function waitForProcesses(text: string, count: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await processesWith(text);
    if (found.length === count) return;
    if (Date.now() > deadline) throw new Error(`expected ${count} processes with ${text}, found ${found.length}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

beforeAll(async () => {
  clips = await ensureTestMedia();
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'probe-test-'));
  const quoted = `'${realFfprobe.replace(/'/g, `'\\''`)}'`;
  trickyFfprobe = await writeScript(
    path.join(work, 'tricky-ffprobe'),
    [
      'case "$*" in',
      `  *HANG*) exec sleep ${sleepMarker} ;;`,
      '  *BIG*) exec head -c 3145728 /dev/zero ;;',
      '  *DENIED*) echo "file:x.mp4: Permission denied" >&2; exit 1 ;;',
      'esac',
      `exec ${quoted} "$@"`,
    ].join('\n'),
  );
  slowFfprobe = await writeScript(path.join(work, 'slow-ffprobe'), `sleep 0.3\nexec ${quoted} "$@"`);
  crashingFfprobe = await writeScript(path.join(work, 'crashing-ffprobe'), 'kill -SEGV $$');
}, 120_000);

afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

describe('a prober whose ffprobe crashes', () => {
  it('tries the fallback build and reports its metadata', async () => {
    const prober = createProber({ ffprobePath: crashingFfprobe, fallbackPath: realFfprobe, concurrency: 1 });
    const result = await prober.probe(videoClip('h264-aac').file, { timeoutMs: 10_000 });
    expect(result.ok).toBe(true);
  });

  it('reports the crash when there is no fallback', async () => {
    const prober = createProber({ ffprobePath: crashingFfprobe, fallbackPath: null, concurrency: 1 });
    const result = await prober.probe(videoClip('h264-aac').file, { timeoutMs: 10_000 });
    expect(result).toEqual({ ok: false, reason: expect.stringMatching(/^probe_failed: ffprobe killed by SIGSEGV/) });
  });
});

describe('probing real media', () => {
  const prober = createProber({ concurrency: 4 });
  const timeoutMs = 10_000;

  it('generates a clip for every case below', () => {
    const withVideo = clips.filter((candidate) => candidate.hasVideo).map((candidate) => candidate.name);
    expect(withVideo.sort()).toEqual(
      ['h264-aac', 'h264-vorbis', 'vp9-opus', 'mpeg4-aac', 'mpeg4-mp3', 'h264-aac-ts', 'h264-silent', 'h264-ntsc'].sort(),
    );
  });

  test.each(['h264-aac', 'h264-vorbis', 'vp9-opus', 'mpeg4-aac', 'mpeg4-mp3', 'h264-aac-ts', 'h264-silent', 'h264-ntsc'])(
    'reports the metadata ffmpeg generated for %s',
    async (name) => {
      const truth = videoClip(name);
      const result = await prober.probe(truth.file, { timeoutMs });
      // Where the bundled build segfaults on MPEG-TS, the fallback build answers.
      expect(result.ok).toBe(true);
      if (!result.ok) return;
      expect(result.metadata).toMatchObject({
        width: truth.width,
        height: truth.height,
        frameRateNumerator: truth.fps[0],
        frameRateDenominator: truth.fps[1],
        videoCodec: truth.videoCodec,
        audioCodec: truth.audioCodec,
        container: truth.container,
        streamCounts: { video: 1, audio: truth.audioCodec ? 1 : 0, subtitle: 0, data: 0 },
      });
      expect(Math.abs((result.metadata.durationSeconds ?? 0) - truth.durationSeconds)).toBeLessThan(0.1);
      const expectedFrames = (truth.durationSeconds * truth.fps[0]) / truth.fps[1];
      expect(Math.abs((result.metadata.durationFrames ?? 0) - expectedFrames)).toBeLessThanOrEqual(2);
      expect(result.metadata.bitRate).toBeGreaterThan(0);
    },
  );

  it('says no_video_stream for an audio-only file with a video extension', async () => {
    const audioOnly = clip('aac-only');
    expect(audioOnly.hasVideo).toBe(false);
    expect(path.extname(audioOnly.file)).toBe('.mp4');
    await expect(prober.probe(audioOnly.file, { timeoutMs })).resolves.toEqual({ ok: false, reason: 'no_video_stream' });
  });

  it('says not_a_media_file for a text file named .mp4', async () => {
    const file = path.join(work, 'notes.mp4');
    await fs.writeFile(file, 'shopping list: milk, eggs\n');
    await expect(prober.probe(file, { timeoutMs })).resolves.toEqual({ ok: false, reason: 'not_a_media_file' });
  });

  it('reads nothing but the file it was given: lists and playlists naming other files are refused', async () => {
    const sibling = await copyClip('h264-aac', 'sibling.mp4');
    const hostile = {
      'concat-relative.mp4': 'ffconcat version 1.0\nfile sibling.mp4\n',
      'concat-absolute.mkv': `ffconcat version 1.0\nfile ${sibling}\n`,
      'playlist.ts': `#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:2,\n${sibling}\n#EXT-X-ENDLIST\n`,
      'playlist.m2ts': '#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:2,\nsibling.mp4\n#EXT-X-ENDLIST\n',
    };
    for (const [name, content] of Object.entries(hostile)) {
      const file = path.join(work, name);
      await fs.writeFile(file, content);
      // Were the sibling followed, its metadata would come back as this file's.
      await expect(prober.probe(file, { timeoutMs })).resolves.toEqual({ ok: false, reason: 'not_a_media_file' });
    }
  });

  it('says file_vanished for a file that is gone', async () => {
    await expect(prober.probe(path.join(work, 'gone.mp4'), { timeoutMs })).resolves.toEqual({ ok: false, reason: 'file_vanished' });
  });

  // Root reads a chmod 000 file anyway, so the real check means nothing as root;
  // the next test covers the mapping of ffprobe's message for everyone.
  (process.getuid?.() === 0 ? it.skip : it)('says permission_denied for a file it may not read', async () => {
    const file = await copyClip('h264-aac', 'locked.mp4');
    await fs.chmod(file, 0o000);
    await expect(prober.probe(file, { timeoutMs })).resolves.toEqual({ ok: false, reason: 'permission_denied' });
  });

  it('says permission_denied when ffprobe reports that it may not read the file', async () => {
    const denied = createProber({ ffprobePath: trickyFfprobe, concurrency: 1 });
    const file = await copyClip('h264-aac', 'DENIED.mp4');
    await expect(denied.probe(file, { timeoutMs })).resolves.toEqual({ ok: false, reason: 'permission_denied' });
  });

  it('says output_too_large when ffprobe prints more than it accepts, and stops the process', async () => {
    const big = createProber({ ffprobePath: trickyFfprobe, concurrency: 1 });
    const file = await copyClip('h264-aac', 'BIG.mp4');
    await expect(big.probe(file, { timeoutMs })).resolves.toEqual({ ok: false, reason: 'output_too_large' });
    expect(big.running).toBe(0);
  });

  test.each([
    '-leading-dash.mp4',
    '-i.mp4',
    'with space.mp4',
    `quote's "double".mp4`,
    'colon:in:name.mp4',
    'pipe|name.mp4',
    'file:looks-like-a-url.mp4',
    'ünïcødé ✓.mp4',
  ])('probes a file named %j like any other', async (fileName) => {
    const file = await copyClip('h264-aac', fileName);
    const result = await prober.probe(file, { timeoutMs });
    expect(result).toMatchObject({ ok: true, metadata: { width: 320, height: 240, container: 'mp4' } });
  });

  it('refuses a relative path', async () => {
    await expect(prober.probe('videos/a.mp4', { timeoutMs })).rejects.toThrow(TypeError);
  });

  it('throws, for Temporal to retry, when the ffprobe binary cannot start', async () => {
    const missing = createProber({ ffprobePath: path.join(work, 'no-such-ffprobe'), concurrency: 1 });
    await expect(missing.probe(clip('h264-aac').file, { timeoutMs })).rejects.toMatchObject({ code: 'ENOENT' });
    expect(missing.running).toBe(0);
  });

  it('reports the version line of the binary', async () => {
    await expect(prober.version()).resolves.toMatch(/^ffprobe version /);
  });
});

describe('stopping ffprobe', () => {
  let prober: Prober;
  let hanging: string;

  beforeAll(async () => {
    prober = createProber({ ffprobePath: trickyFfprobe, concurrency: 2 });
    hanging = await copyClip('h264-aac', 'HANG.mp4');
  });

  afterEach(async () => {
    expect(await processesWith(`sleep ${sleepMarker}`)).toEqual([]);
  });

  it('kills a hanging ffprobe after timeoutMs and says timeout', async () => {
    const started = Date.now();
    const result = await prober.probe(hanging, { timeoutMs: 500 });
    const elapsed = Date.now() - started;
    expect(result).toEqual({ ok: false, reason: 'timeout' });
    // Not before its time limit; that it came at all shows the kill (the hang lasts an hour).
    expect(elapsed).toBeGreaterThanOrEqual(480);
    expect(prober.running).toBe(0);
    expect(await processesWith(`sleep ${sleepMarker}`)).toEqual([]);
  });

  it('rejects with an AbortError, leaving no process, once the signal aborts a probe that would never end', async () => {
    const controller = new AbortController();
    const probing = prober.probe(hanging, { timeoutMs: NEVER_MS, signal: controller.signal });
    const settled = probing.catch((error: unknown) => error);
    await waitFor(() => prober.running === 1);
    // The wrapper script execs its sleep a moment after the spawn: on a busy machine, wait for it.
    await waitForProcesses(`sleep ${sleepMarker}`, 1);
    controller.abort();
    // Only the abort can end it: neither the hang nor the time limit ends within the test.
    const error = await settled;
    expect(error).toMatchObject({ name: 'AbortError' });
    expect(prober.running).toBe(0);
    expect(await processesWith(`sleep ${sleepMarker}`)).toEqual([]);
  });

  it('rethrows the reason the signal was aborted with', async () => {
    const controller = new AbortController();
    const probing = prober.probe(hanging, { timeoutMs: 20_000, signal: controller.signal });
    await waitFor(() => prober.running === 1);
    const reason = new Error('scan cancelled');
    controller.abort(reason);
    await expect(probing).rejects.toBe(reason);
  });

  it('rejects without starting ffprobe when the signal is already aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(prober.probe(hanging, { timeoutMs: 20_000, signal: controller.signal })).rejects.toMatchObject({
      name: 'AbortError',
    });
    expect(prober.running).toBe(0);
  });

  it('lets a caller waiting for a slot give up, without disturbing the queue', async () => {
    const single = createProber({ ffprobePath: trickyFfprobe, concurrency: 1 });
    const first = new AbortController();
    const waiting = new AbortController();
    const firstProbe = single.probe(hanging, { timeoutMs: NEVER_MS, signal: first.signal }).catch((error: unknown) => error);
    await waitFor(() => single.running === 1);
    const waitingProbe = single.probe(hanging, { timeoutMs: NEVER_MS, signal: waiting.signal }).catch((error: unknown) => error);
    const third = single.probe(clip('h264-aac').file, { timeoutMs: 10_000 });

    waiting.abort();
    // The slot stays held by the first probe, which never ends on its own: only the abort frees the waiter.
    expect(await waitingProbe).toMatchObject({ name: 'AbortError' });
    expect(single.running).toBe(1);

    first.abort();
    expect(await firstProbe).toMatchObject({ name: 'AbortError' });
    await expect(third).resolves.toMatchObject({ ok: true });
    expect(single.running).toBe(0);
  });
});

describe('concurrency', () => {
  it('never runs more ffprobe processes than its concurrency, first come first served', async () => {
    const prober = createProber({ ffprobePath: slowFfprobe, concurrency: 2 });
    const file = clip('h264-aac').file;
    let most = 0;
    const sampler = setInterval(() => {
      most = Math.max(most, prober.running);
    }, 5);
    const started = Date.now();
    const finished: number[] = [];
    try {
      const results = await Promise.all(
        Array.from({ length: 6 }, (_, index) =>
          prober.probe(file, { timeoutMs: 10_000 }).then((result) => {
            finished.push(index);
            return result;
          }),
        ),
      );
      expect(results.every((result) => result.ok)).toBe(true);
    } finally {
      clearInterval(sampler);
    }
    const elapsed = Date.now() - started;
    expect(most).toBe(2);
    // Two at once (most), never more: three rounds of two, each at least 0.3 s.
    expect(elapsed).toBeGreaterThanOrEqual(900);
    // FIFO: the last two granted slots cannot finish before the first two.
    expect(finished.slice(0, 2)).not.toContain(5);
    expect(prober.running).toBe(0);
  });
});
