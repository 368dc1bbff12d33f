/**
 * Hostile files, all in one scan with ordinary files beside them: the scan
 * completes without hanging, every file named like a video is in the library
 * or recorded as failed with a clear reason, and no other file is lost. Then
 * a file still being written, and 10,000 files in one folder (all discovered,
 * probed and recorded; their pictures are the thumbnail tests' matter).
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { JobBody } from '../../src/scans';
import { buildLibrary, ensureTestMedia, ffmpegPath, type TestClip } from '../support/media';
import { http, startStack, waitFor, withProbeHook, writeProberWrapper, type Stack } from '../support/stack';
import { videoByPath } from '../support/library-rows';

const realFfprobe = (require('@ffprobe-installer/ffprobe') as { path: string }).path;

let clips: TestClip[];
let work: string;
let root: string;
let stack: Stack;
/** Runs just before the worker probes a file (ahead of its checks): what a test does to a file at that moment. */
let beforeProbe: (file: string) => Promise<void> | void = () => undefined;

beforeAll(async () => {
  clips = await ensureTestMedia();
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'hostile-')));
  root = path.join(work, 'root');
  const wrapper = await writeProberWrapper(work, { realPath: realFfprobe, delayMs: 20 });
  stack = await startStack(
    // Pictures are the thumbnail tests' matter (hostile-thumbnails.test.ts): these scans end after probing.
    { FFPROBE_PATH: wrapper.path, PROBE_TIMEOUT_MS: '5000', SCAN_BATCH_SIZE: '10', THUMBNAILS: 'off' },
    { wrapProber: (prober) => withProbeHook(prober, (file) => beforeProbe(file)) },
  );
});

afterEach(() => {
  beforeProbe = () => undefined;
});

afterAll(async () => {
  await stack?.close();
  await fs.rm(work, { recursive: true, force: true });
});

const video = (): TestClip => clips.find((c) => c.name === 'h264-aac') as TestClip;
const audioOnly = (): TestClip => clips.find((c) => !c.hasVideo) as TestClip;

describe('a scan among hostile files', () => {
  it('records every one as a video or as failed with a reason, and loses nothing', async () => {
    const ordinary = await buildLibrary(path.join(root, 'ordinary'), 40, clips);
    const place = (name: string): string => path.join(root, 'odd', name);
    await fs.mkdir(path.join(root, 'odd'), { recursive: true });
    const clip = video().file;
    const bytes = await fs.readFile(clip);

    // Expected outcome per file: 'present' or the failure reason.
    const expected = new Map<string, string>();
    const write = async (name: string, content: Buffer | string, outcome: string): Promise<void> => {
      await fs.writeFile(place(name), content);
      expected.set(place(name), outcome);
    };
    await write('zero-bytes.mp4', '', 'not_a_media_file');
    // The first 2 KiB of an mp4: a header whose media data is missing.
    await write('truncated.mp4', bytes.subarray(0, 2048), 'not_a_media_file');
    await write('random.mkv', Buffer.from(Array.from({ length: 65536 }, (_, i) => (i * 7919 + 13) % 256)), 'not_a_media_file');
    await write('text-file.avi', 'this is not a video\n', 'not_a_media_file');
    await fs.copyFile(audioOnly().file, place('audio-only.mp4'));
    expected.set(place('audio-only.mp4'), 'no_video_stream');
    execFileSync(ffmpegPath(), [
      '-v', 'error', '-y', '-f', 'lavfi', '-i', 'sine=d=1', '-f', 'lavfi', '-i', 'color=red:s=64x64:d=1',
      '-map', '0:a', '-map', '1:v', '-c:a', 'aac', '-c:v', 'mjpeg', '-frames:v', '1', '-disposition:v:0', 'attached_pic',
      place('cover-art.mp4'),
    ]);
    expected.set(place('cover-art.mp4'), 'no_video_stream');
    for (const name of ['-leading-dash.mp4', '-.mp4', '-i.mp4', 'a:b.mp4', 'a|b.mp4', 'file:x.mp4', 'http:evil.mp4', 'with space.mp4', `quo'te"s.mp4`, 'new\nline.mp4', 'ünïcødé 日本語 видео.mp4']) {
      await write(name, bytes, 'present');
    }
    // Lists and playlists naming another file: ffprobe must not follow them.
    await write('plain.mp4', bytes, 'present');
    await write('concat-list.mp4', 'ffconcat version 1.0\nfile plain.mp4\n', 'not_a_media_file');
    await write('playlist.ts', `#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:2,\n${place('plain.mp4')}\n#EXT-X-ENDLIST\n`, 'not_a_media_file');
    await fs.mkdir(place('folder.mp4'));
    execFileSync('mkfifo', [place('fifo.mp4')]);
    expected.set(place('fifo.mp4'), 'not_a_regular_file');
    const badName = Buffer.concat([Buffer.from(`${place('bad-')}`), Buffer.from([0xff, 0xfe]), Buffer.from('.mp4')]);
    await fs.writeFile(badName, bytes);
    expected.set(place('bad-\ufffd\ufffd.mp4'), 'invalid_file_name');
    await fs.writeFile(path.join(work, 'outside.mp4'), bytes);
    await fs.symlink(path.join(work, 'outside.mp4'), place('link-out.mp4'));
    expected.set(place('link-out.mp4'), 'outside_scan_root');
    await fs.symlink(place('nothing-here.mp4'), place('dangling.mp4'));
    expected.set(place('dangling.mp4'), 'broken_link');
    await fs.symlink(root, place('loop'));
    let deep = place('deep');
    for (let i = 0; i < 50; i += 1) deep = path.join(deep, `d${i}`);
    await fs.mkdir(deep, { recursive: true });
    await fs.copyFile(clip, path.join(deep, 'bottom.mp4'));
    expected.set(path.join(deep, 'bottom.mp4'), 'present');
    // Deleted between discovery and probing: removed just before its probe.
    const doomed = path.join(root, 'zz-last', 'doomed.mp4');
    await fs.mkdir(path.dirname(doomed));
    await fs.copyFile(clip, doomed);
    expected.set(doomed, 'file_vanished');

    beforeProbe = async (file) => {
      if (file === doomed) await fs.rm(doomed);
    };
    const started = await http<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: root });
    expect(started.status).toBe(202);
    const job = await waitFor(
      () => stack.scans.get(started.body.job_id),
      (j: JobBody) => ['completed', 'failed', 'cancelled', 'timeout'].includes(j.status),
      180_000,
      200,
    );
    expect(job.status).toBe('completed');

    const errors = new Map((await stack.library.scanErrors(job.job_id, 1000, 0)).errors.map((e) => [e.path, e.error]));
    const outcomes: Record<string, string> = {};
    for (const [file, want] of expected) {
      const present = (await videoByPath(stack.config.databaseUrl, file)) !== undefined;
      const got = present ? 'present' : (errors.get(file) ?? 'missing');
      outcomes[path.relative(root, file)] = got;
      expect({ file, got }).toEqual({ file, got: want });
    }
    for (const file of ordinary) expect(await videoByPath(stack.config.databaseUrl, file)).toBeDefined();
    expect(job.counts.discovered).toBe(ordinary.length + expected.size);
    expect(job.result?.scanned).toBe(job.counts.discovered);
    // The folder named like a video, the loop and the non-video names are not files to scan.
    expect(await videoByPath(stack.config.databaseUrl, place('folder.mp4'))).toBeUndefined();
    process.stderr.write(`hostile outcomes: ${JSON.stringify(outcomes)}\n`);
  });
});

describe('a file still being written while it is scanned', () => {
  it('is left for later as still changing, and the next scan records the finished file', async () => {
    const folder = path.join(work, 'growing');
    const ordinary = await buildLibrary(path.join(folder, 'ordinary'), 20, clips);
    const source = video();
    const bytes = await fs.readFile(source.file);
    const growing = path.join(folder, 'growing.mp4');
    const handle = await fs.open(growing, 'w');
    const half = Math.ceil(bytes.length / 2);
    await handle.write(bytes.subarray(0, half));
    // Discovered half written; written to again as its probe begins.
    let writtenDuringScan = false;
    beforeProbe = async (file) => {
      if (file !== growing || writtenDuringScan) return;
      writtenDuringScan = true;
      await handle.write(bytes.subarray(half, half + 4096));
    };

    const started = await http<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: folder });
    expect(started.status).toBe(202);
    const terminal = (j: JobBody): boolean => ['completed', 'failed', 'cancelled', 'timeout'].includes(j.status);
    const during = await waitFor(() => stack.scans.get(started.body.job_id), terminal, 60_000, 100);
    expect(during.status).toBe('completed');
    expect(writtenDuringScan).toBe(true);
    // It changed between its discovery and its probe: left out of the library for the next scan.
    expect(during.result?.errors).toEqual([{ path: growing, error: 'still_changing' }]);
    expect(await videoByPath(stack.config.databaseUrl, growing)).toBeUndefined();
    for (const file of ordinary) expect(await videoByPath(stack.config.databaseUrl, file)).toBeDefined();

    await handle.write(bytes.subarray(half + 4096));
    await handle.close();
    const again = await http<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: folder });
    const after = await waitFor(() => stack.scans.get(again.body.job_id), terminal, 60_000, 100);
    expect(after.status).toBe('completed');
    expect(after.result).toMatchObject({ scanned: ordinary.length + 1, skipped: ordinary.length, errors: [] });
    const finished = await videoByPath(stack.config.databaseUrl, growing);
    expect(finished?.file_size).toBe(bytes.length);
    expect(finished?.duration_seconds).toBeCloseTo(source.durationSeconds, 1);
  });
});

describe('10,000 files in one folder', () => {
  let plain: Stack;
  beforeAll(async () => {
    plain = await startStack({ PROBE_CONCURRENCY: '2' });
  });
  afterAll(async () => {
    await plain?.close();
  });

  it('are all discovered, probed and recorded', async () => {
    const folder = path.join(work, 'crowded');
    await fs.mkdir(folder);
    const sources = clips.filter((c) => c.hasVideo);
    const files: string[] = [];
    for (let i = 0; i < 10_000; i += 1) {
      const source = sources[i % sources.length] as TestClip;
      const file = path.join(folder, `clip-${String(i).padStart(5, '0')}${path.extname(source.file)}`);
      await fs.link(source.file, file);
      files.push(file);
    }
    // 10,000 pictures prove nothing the thumbnail tests do not: this scan ends after probing.
    const started = await http<{ job_id: string }>(plain.baseUrl, 'POST', '/api/v1/videos/scan', { path: folder, thumbnails: false });
    expect(started.status).toBe(202);
    const terminal = (j: JobBody): boolean => ['completed', 'failed', 'cancelled', 'timeout'].includes(j.status);
    const ended = await waitFor(() => plain.scans.get(started.body.job_id), terminal, 600_000, 500);
    expect(ended.status).toBe('completed');
    expect(ended.counts).toMatchObject({ discovered: files.length, probed: files.length, new: files.length, failed: 0 });
    const listed = await http<{ total: number }>(plain.baseUrl, 'GET', `/api/v1/videos/search?q=${encodeURIComponent(folder)}`);
    expect(listed.body.total).toBe(files.length);
  }, 660_000);
});
