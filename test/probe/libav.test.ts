/**
 * The in-process prober (libavformat in the probe hosts) against the
 * reference, ffprobe: the same answer for every clip of the test media, field
 * by field, and the same fences around what it may read.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import execa from 'execa';
import { createProber } from '../../src/probe/ffprobe';
import { createIsolatedProber, type IsolatedProber } from '../../src/media-host/pool';
import { probeOne } from '../support/media-hosts';
import type { ProbeResult } from '../../src/probe/parse';
import { ensureTestMedia, type TestClip } from '../support/media';

const timeoutMs = 20_000;
const ffprobe = createProber({ concurrency: 2 });
let libav: IsolatedProber;
let clips: TestClip[];
let work: string;

function clip(name: string): TestClip {
  const found = clips.find((candidate) => candidate.name === name);
  if (!found) throw new Error(`no test clip named ${name}`);
  return found;
}

async function copyClip(name: string, fileName: string): Promise<string> {
  const target = path.join(work, fileName);
  await fs.copyFile(clip(name).file, target);
  return target;
}

/** A FIFO: opening it for reading blocks until someone writes, so a prober that followed a reference to it would hang. */
async function fifo(fileName: string): Promise<string> {
  const file = path.join(work, fileName);
  await execa('mkfifo', [file]);
  return file;
}

beforeAll(async () => {
  clips = await ensureTestMedia();
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'libav-test-'));
  libav = createIsolatedProber({ kind: 'libav', concurrency: 2 });
}, 120_000);

afterAll(async () => {
  await libav?.close();
  await fs.rm(work, { recursive: true, force: true });
});

describe('the in-process prober', () => {
  it('loads here and names its libavformat', async () => {
    await expect(libav.version()).resolves.toMatch(/^libavformat \d+\.\d+\.\d+ \(FFmpeg .+, node-av \d+\.\d+\.\d+\)$/);
    expect(libav.kind).toBe('libav');
  });

  it('probes every clip of the test media', () => {
    expect(clips.map((candidate) => candidate.name).sort()).toEqual(
      ['aac-only', 'h264-aac', 'h264-aac-ts', 'h264-ntsc', 'h264-silent', 'h264-vorbis', 'mpeg4-aac', 'mpeg4-mp3', 'vp9-opus'].sort(),
    );
  });

  test.each(['aac-only', 'h264-aac', 'h264-aac-ts', 'h264-ntsc', 'h264-silent', 'h264-vorbis', 'mpeg4-aac', 'mpeg4-mp3', 'vp9-opus'])(
    'gives what ffprobe gives for %s, field by field',
    async (name) => {
      const file = clip(name).file;
      const [mine, reference] = await Promise.all([probeOne(libav, file, { timeoutMs }), ffprobe.probe(file, { timeoutMs })]);
      expect(mine.ok).toBe(reference.ok);
      if (!mine.ok || !reference.ok) {
        expect(mine).toEqual(reference);
        return;
      }
      const fields = Object.keys(reference.metadata).sort();
      expect(Object.keys(mine.metadata).sort()).toEqual(fields);
      for (const field of fields) {
        const key = field as keyof typeof reference.metadata;
        expect({ field, value: mine.metadata[key] }).toEqual({ field, value: reference.metadata[key] });
      }
    },
  );

  it('names codecs as ffprobe does (mp3, not the decoder mp3float)', async () => {
    const result = await probeOne(libav, clip('mpeg4-mp3').file, { timeoutMs });
    expect(result).toMatchObject({ ok: true, metadata: { videoCodec: 'mpeg4', audioCodec: 'mp3', container: 'avi' } });
  });

  it('matches the ground truth the clips were made from', async () => {
    for (const truth of clips) {
      const result = await probeOne(libav, truth.file, { timeoutMs });
      if (!truth.hasVideo) {
        expect(result).toEqual({ ok: false, reason: 'no_video_stream' });
        continue;
      }
      expect(result).toMatchObject({
        ok: true,
        metadata: {
          width: truth.width,
          height: truth.height,
          frameRateNumerator: truth.fps[0],
          frameRateDenominator: truth.fps[1],
          videoCodec: truth.videoCodec,
          audioCodec: truth.audioCodec,
          container: truth.container,
        },
      });
    }
  });
});

describe('the fences of the in-process prober', () => {
  it('answers as ffprobe does for files that are not media', async () => {
    const cases: Record<string, string> = {
      'notes.mp4': 'shopping list: milk, eggs\n',
      'empty.mkv': '',
      'random.avi': Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251)).toString('latin1'),
    };
    for (const [name, content] of Object.entries(cases)) {
      const file = path.join(work, name);
      await fs.writeFile(file, content, 'latin1');
      const [mine, reference] = await Promise.all([probeOne(libav, file, { timeoutMs }), ffprobe.probe(file, { timeoutMs })]);
      expect({ name, result: mine }).toEqual({ name, result: reference });
      expect(mine).toEqual({ ok: false, reason: 'not_a_media_file' });
    }
  });

  it('reads nothing but the file it was given: a concat list or playlist named like a video is not_a_media_file', async () => {
    // The lists name a FIFO nobody writes to: were it opened, the probe would hang until its timeout.
    const trap = await fifo('trap.mp4');
    const sibling = await copyClip('h264-aac', 'sibling.mp4');
    const hostile: Record<string, string> = {
      'concat-fifo.mp4': `ffconcat version 1.0\nfile ${trap}\n`,
      'concat-relative.mp4': 'ffconcat version 1.0\nfile sibling.mp4\n',
      'concat-absolute.mkv': `ffconcat version 1.0\nfile ${sibling}\n`,
      'playlist-fifo.ts': `#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:2,\n${trap}\n#EXT-X-ENDLIST\n`,
      'playlist.m2ts': '#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:2,\nsibling.mp4\n#EXT-X-ENDLIST\n',
      'playlist-url.mp4': '#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:2,\nhttp://127.0.0.1:9/a.ts\n#EXT-X-ENDLIST\n',
    };
    for (const [name, content] of Object.entries(hostile)) {
      const file = path.join(work, name);
      await fs.writeFile(file, content);
      await expect(probeOne(libav, file, { timeoutMs: 5_000 })).resolves.toEqual({ ok: false, reason: 'not_a_media_file' });
    }
  });

  test.each([
    '-leading-dash.mp4',
    '-i.mp4',
    'with space.mp4',
    `quote's "double".mp4`,
    'colon:in:name.mp4',
    'pipe|name.mp4',
    'file:looks-like-a-url.mp4',
    'http:looks-like-a-url.mp4',
    'concat:a.mp4|b.mp4',
    'ünïcødé ✓.mp4',
  ])('probes a file named %j as a file, like any other', async (fileName) => {
    const file = await copyClip('h264-aac', fileName);
    await expect(probeOne(libav, file, { timeoutMs })).resolves.toMatchObject({
      ok: true,
      metadata: { width: 320, height: 240, container: 'mp4' },
    });
  });

  it('says file_vanished, not_a_regular_file and permission_denied as ffprobe does', async () => {
    const checks: Array<[string, ProbeResult]> = [
      [path.join(work, 'gone.mp4'), { ok: false, reason: 'file_vanished' }],
      [work, { ok: false, reason: 'not_a_regular_file' }],
    ];
    if (process.getuid?.() !== 0) {
      const locked = await copyClip('h264-aac', 'locked.mp4');
      await fs.chmod(locked, 0o000);
      checks.push([locked, { ok: false, reason: 'permission_denied' }]);
    }
    for (const [file, expected] of checks) {
      await expect(probeOne(libav, file, { timeoutMs })).resolves.toEqual(expected);
    }
  });

  it('refuses a relative path', async () => {
    await expect(probeOne(libav, 'videos/a.mp4', { timeoutMs })).rejects.toThrow(TypeError);
  });
});
