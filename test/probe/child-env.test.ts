/**
 * The processes that parse untrusted media (probe hosts, ffprobe, ffmpeg)
 * see an allow-list of the environment, never the secrets of the process
 * that starts them. Each child's environment is read where it lives: a probe
 * host's in /proc, ffprobe's and ffmpeg's by a wrapper that writes its own
 * environment to a file and then runs the real binary.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { defaultFfprobePath, createProber } from '../../src/probe/ffprobe';
import { createIsolatedProber } from '../../src/media-host/pool';
import { hostProcesses, probeOne } from '../support/media-hosts';
import { createThumbnailer } from '../../src/thumbnails/thumbnailer';
import { ensureTestMedia, ffmpegPath, type VideoClip } from '../support/media';

const SECRETS = {
  DATABASE_URL: 'postgres://user:secret-password@db.example/library',
  API_TOKEN: 'secret-api-token',
  TEMPORAL_API_KEY: 'secret-temporal-key',
};

let dir: string;
let clip: VideoClip;
const saved: Record<string, string | undefined> = {};

/** A script that appends its environment (NUL-separated, one run per file) to `log` and runs `binary`. */
async function wrapper(name: string, binary: string, log: string): Promise<string> {
  const file = path.join(dir, name);
  await fs.writeFile(file, `#!/bin/sh\nenv -0 > "${log}.$$"\nexec "${binary}" "$@"\n`, { mode: 0o755 });
  return file;
}

/** The environments the wrapper recorded, as maps. */
async function recorded(log: string): Promise<Map<string, string>[]> {
  const runs = (await fs.readdir(path.dirname(log))).filter((name) => name.startsWith(`${path.basename(log)}.`));
  return Promise.all(
    runs.map(async (name) => {
      const text = await fs.readFile(path.join(path.dirname(log), name), 'utf8');
      return new Map(text.split('\0').filter(Boolean).map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as [string, string]));
    }),
  );
}

function expectNoSecrets(env: Map<string, string>): void {
  for (const [name, value] of Object.entries(SECRETS)) {
    expect(env.get(name)).toBeUndefined();
    expect([...env.values()].some((v) => v.includes(value))).toBe(false);
  }
  // What a binary does need is still there.
  expect(env.get('PATH')).toBe(process.env.PATH);
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'child-env-'));
  clip = (await ensureTestMedia()).find((c): c is VideoClip => c.hasVideo) as VideoClip;
  for (const [name, value] of Object.entries(SECRETS)) {
    saved[name] = process.env[name];
    process.env[name] = value;
  }
});

afterAll(async () => {
  for (const [name, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  await fs.rm(dir, { recursive: true, force: true });
});

it('runs ffprobe without the secrets of the process that starts it', async () => {
  const log = path.join(dir, 'ffprobe-env');
  const prober = createProber({ ffprobePath: await wrapper('ffprobe', defaultFfprobePath(), log), concurrency: 1, fallbackPath: null });
  const result = await prober.probe(clip.file, { timeoutMs: 30_000 });
  expect(result.ok).toBe(true);
  const envs = await recorded(log);
  expect(envs.length).toBeGreaterThan(0);
  for (const env of envs) expectNoSecrets(env);
});

it('runs ffmpeg for pictures without the secrets of the process that starts it', async () => {
  const log = path.join(dir, 'ffmpeg-env');
  const thumbnailer = createThumbnailer({ dir: path.join(dir, 'pictures'), width: 160, ffmpegPath: await wrapper('ffmpeg', ffmpegPath(), log) });
  const result = await thumbnailer.make({ file: clip.file, videoId: 1, durationSeconds: clip.durationSeconds, timeoutMs: 30_000 });
  expect(result.ok).toBe(true);
  const envs = await recorded(log);
  expect(envs.length).toBe(1);
  expectNoSecrets(envs[0] as Map<string, string>);
});

it.each(['libav', 'ffprobe'] as const)('starts %s probe hosts (and their ffprobe) without those secrets', async (kind) => {
  const log = path.join(dir, `host-${kind}-env`);
  const prober = createIsolatedProber({ kind, concurrency: 1, ffprobePath: await wrapper(`ffprobe-${kind}`, defaultFfprobePath(), log) });
  try {
    const result = await probeOne(prober, clip.file, { timeoutMs: 30_000 });
    expect(result.ok).toBe(true);
    const hosts = await hostProcesses();
    expect(hosts.length).toBeGreaterThan(0);
    for (const pid of hosts) {
      const text = await fs.readFile(`/proc/${pid}/environ`, 'utf8');
      expectNoSecrets(new Map(text.split('\0').filter(Boolean).map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as [string, string])));
    }
    // The ffprobe kind runs ffprobe from the host: that process too.
    for (const env of await recorded(log)) expectNoSecrets(env);
    if (kind === 'ffprobe') expect((await recorded(log)).length).toBeGreaterThan(0);
  } finally {
    await prober.close();
  }
});
