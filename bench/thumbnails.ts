/**
 * `node dist/bench/thumbnails.js [--pictures N] [--rounds R] [--concurrency C] [--psnr-only]`:
 * pictures per second of the worker's in-process thumbnailer (libav in the
 * media hosts, through the pool, as the thumbnail activity calls it) against
 * the benchmark's A' (one static ffmpeg per picture, `-ss T -i FILE -frames:v 1
 * -vf scale=W:-1`, its slow-seek rerun included), C at once each, over the
 * generated clips in turn; R rounds of each, alternating. No Temporal, no
 * database, no API: the thumbnail path alone.
 *
 * Then the picture check: for every clip, the PSNR of the host's picture
 * against the ffmpeg thumbnailer's (the same frame time, width and height,
 * bicubic scaling, `-q:v 4`), by ffmpeg's psnr filter. Two pictures of the
 * same frame differ by the JPEG coding alone (above 35 dB on these clips);
 * a neighbouring frame of the test pattern falls below 30 dB.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import ffmpegInstaller from '@ffmpeg-installer/ffmpeg';
import execa from 'execa';
import pLimit from 'p-limit';
import { createIsolatedProber } from '../src/media-host/pool';
import { createHostThumbnailer, createThumbnailer, thumbnailSeekSeconds } from '../src/thumbnails/thumbnailer';
import { ensureTestMedia, ensureThumbnailClips, type VideoClip } from '../test/support/media';
import { hostProcesses } from '../test/support/media-hosts';

const say = (text: string): void => {
  process.stderr.write(`${text}\n`);
};

async function cpuSecondsOf(pids: number[]): Promise<number> {
  let total = 0;
  for (const pid of pids) {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    if (stat === '') continue;
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    total += (Number(fields[11]) + Number(fields[12])) / 100;
  }
  return total;
}

async function childrenCpuSeconds(): Promise<number> {
  const fields = (await fs.readFile('/proc/self/stat', 'utf8')).split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

/** PSNR (average over the planes, dB) of `picture` against `reference`, by ffmpeg's psnr filter; Infinity when identical. */
async function psnr(picture: string, reference: string): Promise<number> {
  const run = await execa(ffmpegInstaller.path, ['-nostdin', '-hide_banner', '-i', picture, '-i', reference, '-lavfi', 'psnr', '-f', 'null', '-'], { reject: false });
  const match = /average:(inf|[\d.]+)/.exec(run.stderr);
  if (match === null) throw new Error(`no PSNR for ${picture}: ${run.stderr.slice(-300)}`);
  return match[1] === 'inf' ? Number.POSITIVE_INFINITY : Number(match[1]);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      pictures: { type: 'string', default: '400' },
      rounds: { type: 'string', default: '2' },
      concurrency: { type: 'string', default: String(os.availableParallelism()) },
      'psnr-only': { type: 'boolean', default: false },
    },
  });
  const pictures = Number(values.pictures);
  const rounds = Number(values.rounds);
  const concurrency = Number(values.concurrency);
  const width = 320;
  const clips: VideoClip[] = [...(await ensureTestMedia()).filter((c): c is VideoClip => c.hasVideo), ...(await ensureThumbnailClips())];
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-thumbnails-'));
  const pool = createIsolatedProber({ kind: 'libav', concurrency, thumbnailConcurrency: concurrency });
  const hosts = createHostThumbnailer({ dir: path.join(work, 'hosts'), width, hosts: pool });
  const reference = createThumbnailer({ dir: path.join(work, 'ffmpeg'), width });
  try {
    // The picture check first (it also starts the hosts).
    const scores: number[] = [];
    for (const [index, clip] of clips.entries()) {
      const request = { file: clip.file, videoId: index, durationSeconds: clip.durationSeconds, timeoutMs: 30_000 };
      const [ours, theirs] = await Promise.all([hosts.make(request), reference.make(request)]);
      if (!ours.ok || !theirs.ok) throw new Error(`${clip.name}: ${JSON.stringify({ ours, theirs })}`);
      const score = await psnr(hosts.pathFor(index), reference.pathFor(index));
      scores.push(score);
      say(`PSNR ${clip.name.padEnd(16)} at ${thumbnailSeekSeconds(clip.durationSeconds).toFixed(2)} s: ${score.toFixed(2)} dB`);
    }
    say(`PSNR lowest ${Math.min(...scores).toFixed(2)} dB, mean ${(scores.reduce((a, b) => a + b, 0) / scores.length).toFixed(2)} dB`);
    if (values['psnr-only']) return;

    const order = Array.from({ length: pictures }, (_, i) => clips[i % clips.length] as VideoClip);
    const inProcess = async (): Promise<{ rate: number; cpu: number }> => {
      const pids = await hostProcesses();
      const cpuBefore = await cpuSecondsOf(pids);
      const started = performance.now();
      // As the worker's slots: the hosts hold the next picture waiting (inFlightPerSlot).
      const slots = pLimit(concurrency * (hosts.inFlightPerSlot ?? 1));
      await Promise.all(order.map((clip, i) => slots(async () => {
        const made = await hosts.make({ file: clip.file, videoId: 1000 + i, durationSeconds: clip.durationSeconds, timeoutMs: 30_000 });
        if (!made.ok) throw new Error(`${clip.name}: ${made.reason}`);
      })));
      const seconds = (performance.now() - started) / 1000;
      return { rate: pictures / seconds, cpu: ((await cpuSecondsOf(pids)) - cpuBefore) / pictures * 1000 };
    };
    const raw = async (): Promise<{ rate: number; cpu: number }> => {
      const out = path.join(work, 'raw');
      await fs.mkdir(out, { recursive: true });
      const cpuBefore = await childrenCpuSeconds();
      const started = performance.now();
      const slots = pLimit(concurrency);
      await Promise.all(order.map((clip, i) => slots(async () => {
        const picture = path.join(out, `${i}.jpg`);
        const seek = ['-ss', thumbnailSeekSeconds(clip.durationSeconds).toFixed(3)];
        for (const fastSeek of [true, false]) {
          const input = ['-i', clip.file];
          const args = ['-nostdin', '-hide_banner', '-loglevel', 'error', ...(fastSeek ? [...seek, ...input] : [...input, ...seek])];
          args.push('-frames:v', '1', '-vf', `scale=${width}:-1`, '-y', picture);
          const run = await execa(ffmpegInstaller.path, args, { stdin: 'ignore', stdout: 'ignore', reject: false, timeout: 30_000 });
          if (run.exitCode === 0 && ((await fs.stat(picture).catch(() => null))?.size ?? 0) > 0) return;
        }
        throw new Error(`${clip.name}: ffmpeg made no picture`);
      })));
      const seconds = (performance.now() - started) / 1000;
      return { rate: pictures / seconds, cpu: ((await childrenCpuSeconds()) - cpuBefore) / pictures * 1000 };
    };
    const ratios: number[] = [];
    for (let round = 1; round <= rounds; round++) {
      const a = await raw();
      const b = await inProcess();
      ratios.push(b.rate / a.rate);
      say(`round ${round}: ffmpeg ${a.rate.toFixed(1)} pictures/s (${a.cpu.toFixed(2)} ms CPU each), hosts ${b.rate.toFixed(1)} pictures/s (${b.cpu.toFixed(2)} ms CPU each in the hosts), ratio ${(b.rate / a.rate).toFixed(2)}`);
    }
    say(`${pictures} pictures, ${concurrency} at once; ratio per round: ${ratios.map((r) => r.toFixed(2)).join(', ')}`);
  } finally {
    await pool.close();
    await fs.rm(work, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  say(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exitCode = 1;
});
