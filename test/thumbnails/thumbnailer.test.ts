/**
 * The thumbnailer against real clips and the real ffmpeg: the width asked
 * for, the height from the display aspect (non-square pixels honoured), the
 * frame time, atomic writes, and reasons for files that give no picture.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createThumbnailer, thumbnailSeekSeconds, ThumbnailError } from '../../src/thumbnails/thumbnailer';
import { ensureTestMedia, ensureThumbnailClips, jpegSize, type VideoClip } from '../support/media';

jest.setTimeout(120_000);

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'thumbs-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** The height a picture `width` wide keeps the clip's display aspect with, rounded to even. */
function expectedHeight(clip: VideoClip, sar: [number, number], width: number): number {
  const dar = (clip.width * sar[0]) / (clip.height * sar[1]);
  return Math.max(2, Math.trunc(width / dar / 2) * 2);
}

describe('the thumbnailer', () => {
  it('makes a JPEG of the configured width with the display aspect of every clip, non-square pixels included', async () => {
    const shared = (await ensureTestMedia()).filter((c): c is VideoClip => c.hasVideo).map((c) => ({ ...c, sar: [1, 1] as [number, number] }));
    const clips = [...shared, ...(await ensureThumbnailClips())];
    expect(clips.some((c) => c.durationSeconds < 5)).toBe(true);
    expect(clips.some((c) => c.sar[0] !== c.sar[1])).toBe(true);
    for (const width of [320, 160]) {
      const thumbnailer = createThumbnailer({ dir: path.join(dir, String(width)), width });
      for (const [index, clip] of clips.entries()) {
        const result = await thumbnailer.make({ file: clip.file, videoId: index + 1, durationSeconds: clip.durationSeconds, timeoutMs: 60_000 });
        expect({ clip: clip.name, result }).toEqual({ clip: clip.name, result: { ok: true } });
        const size = jpegSize(await fs.readFile(thumbnailer.pathFor(index + 1)));
        expect({ clip: clip.name, ...size }).toEqual({ clip: clip.name, width, height: expectedHeight(clip, clip.sar, width) });
      }
      // Only finished pictures are left: no temp file of any run.
      const left = (await fs.readdir(path.join(dir, String(width)), { recursive: true })).map(String);
      expect(left.filter((name) => name.includes('.tmp'))).toEqual([]);
    }
    // 720x480 at 8:9 is shown at 4:3: 320x240, where square pixels would give 320x212.
    expect(expectedHeight(clips.find((c) => c.name === 'h264-anamorphic') as VideoClip, [8, 9], 320)).toBe(240);
  });

  it('takes the frame at 5 s, or at a third of a shorter video', () => {
    expect(thumbnailSeekSeconds(7)).toBe(5);
    expect(thumbnailSeekSeconds(3600)).toBe(5);
    expect(thumbnailSeekSeconds(3)).toBe(1);
    expect(thumbnailSeekSeconds(null)).toBe(0);
  });

  it('records a reason, and leaves no picture, for a file with no decodable frame', async () => {
    const thumbnailer = createThumbnailer({ dir, width: 320 });
    const corrupt = path.join(dir, 'corrupt.mp4');
    await fs.writeFile(corrupt, Buffer.alloc(4096, 7));
    const result = await thumbnailer.make({ file: corrupt, videoId: 7, durationSeconds: 10, timeoutMs: 60_000 });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason.startsWith(ThumbnailError.Failed) || result.reason === ThumbnailError.NoFrame).toBe(true);
    await expect(fs.stat(thumbnailer.pathFor(7))).rejects.toThrow();
    const audioOnly = (await ensureTestMedia()).find((c) => !c.hasVideo);
    const noVideo = await thumbnailer.make({ file: (audioOnly as { file: string }).file, videoId: 8, durationSeconds: 1, timeoutMs: 60_000 });
    expect(noVideo.ok).toBe(false);
  });

  it('is killed at its time limit and says so', async () => {
    const thumbnailer = createThumbnailer({ dir, width: 320 });
    const clip = (await ensureThumbnailClips())[0] as VideoClip;
    const result = await thumbnailer.make({ file: clip.file, videoId: 9, durationSeconds: clip.durationSeconds, timeoutMs: 1 });
    expect(result).toEqual({ ok: false, reason: ThumbnailError.Timeout });
    await expect(fs.stat(thumbnailer.pathFor(9))).rejects.toThrow();
  });
});
