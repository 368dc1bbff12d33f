/**
 * A prober or thumbnailer process stopped from outside (SIGTERM sent to the
 * worker's whole process group by systemd, Docker or a terminal) has said
 * nothing about its file: the run rejects as an interruption, so that the
 * file is tried again, and is never given a verdict such as
 * `probe_failed: ffprobe killed by SIGTERM`. A crash (SIGSEGV) still is one.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createProber } from '../../src/probe/ffprobe';
import { INTERRUPTED, isInterruption } from '../../src/model/interruption';
import { createThumbnailer } from '../../src/thumbnails/thumbnailer';
import { ensureTestMedia, type TestClip } from '../support/media';

let work: string;
let clip: TestClip;

/** A stand-in for ffprobe or ffmpeg that is killed by `signal` as it starts. */
async function killedBy(signal: string): Promise<string> {
  const file = path.join(work, `killed-by-${signal}.sh`);
  await fs.writeFile(file, `#!/bin/sh\nkill -${signal.replace(/^SIG/, '')} $$\nsleep 5\n`, { mode: 0o755 });
  return file;
}

beforeAll(async () => {
  const clips = await ensureTestMedia();
  clip = clips.find((c) => c.hasVideo) as TestClip;
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'stopped-')));
});

afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

describe('ffprobe stopped from outside', () => {
  it.each(['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGKILL'])('rejects as an interruption when killed by %s', async (signal) => {
    const prober = createProber({ ffprobePath: await killedBy(signal), concurrency: 1, fallbackPath: null });
    const outcome = await prober.probe(clip.file, { timeoutMs: 10_000 }).then(
      (result) => ({ result }),
      (error: unknown) => ({ error }),
    );
    expect(outcome).toEqual({ error: expect.objectContaining({ code: INTERRUPTED }) });
  });

  it('still records a crash (SIGSEGV) as the file\'s failure', async () => {
    const prober = createProber({ ffprobePath: await killedBy('SIGSEGV'), concurrency: 1, fallbackPath: null });
    const result = await prober.probe(clip.file, { timeoutMs: 10_000 });
    expect(result).toEqual({ ok: false, reason: expect.stringMatching(/^probe_failed: ffprobe killed by SIGSEGV/) });
  });
});

describe('ffmpeg stopped from outside while it makes a picture', () => {
  it('rejects as an interruption, leaving no picture failure to record', async () => {
    const thumbnailer = createThumbnailer({ dir: path.join(work, 'thumbs'), width: 160, ffmpegPath: await killedBy('SIGTERM') });
    const outcome = await thumbnailer.make({ file: clip.file, videoId: 7, durationSeconds: 1, timeoutMs: 10_000 }).then(
      (result) => ({ result }),
      (error: unknown) => ({ error }),
    );
    expect('error' in outcome && isInterruption(outcome.error)).toBe(true);
  });
});
