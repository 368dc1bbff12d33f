/**
 * The health body's ffmpeg check against the real stack: it reports the
 * version of the prober the workers use (PROBER as openProber reads it:
 * libavformat by default, ffprobe when PROBER says so), asks once rather than
 * on every poll, and turns the API `degraded` (503) when the prober cannot run.
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../../src/logger';
import { openProber } from '../../src/media-host/select';
import { http, startStack, writeProberWrapper } from '../support/stack';

const realFfprobe = (require('@ffprobe-installer/ffprobe') as { path: string }).path;

interface Health {
  status: string;
  checks: Record<string, { status: string; version?: string; error?: string; latency_ms?: number }>;
  temporal: string;
  database: string;
}

let work: string;

beforeAll(async () => {
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'health-'));
});

afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

async function versionCalls(logFile: string): Promise<number> {
  const text = await fs.readFile(logFile, 'utf8').catch(() => '');
  return text.split('\n').filter((line) => line === '-version').length;
}

it("reports the prober's version line, asking the binary once however often health is polled", async () => {
  const logFile = path.join(work, 'calls.log');
  const wrapper = await writeProberWrapper(work, { realPath: realFfprobe, logFile });
  const stack = await startStack({ PROBER: 'ffprobe', FFPROBE_PATH: wrapper.path });
  try {
    const first = await http<Health>(stack.baseUrl, 'GET', '/health');
    expect(first.status).toBe(200);
    expect(first.body.checks.ffmpeg).toEqual({ status: 'ok', version: expect.stringMatching(/^ffprobe version \S+/) });
    const asked = await versionCalls(logFile);
    expect(asked).toBeGreaterThanOrEqual(1);
    for (let i = 0; i < 5; i += 1) {
      const again = await http<Health>(stack.baseUrl, 'GET', i % 2 === 0 ? '/health/ready' : '/health');
      expect(again.body.checks.ffmpeg).toEqual(first.body.checks.ffmpeg);
    }
    expect(await versionCalls(logFile)).toBe(asked);
  } finally {
    await stack.close();
  }
});

it('answers 503 degraded with the ffmpeg check in error when the prober cannot run', async () => {
  const stack = await startStack({ PROBER: 'ffprobe', FFPROBE_PATH: path.join(work, 'no-such-ffprobe') });
  try {
    const res = await http<Health>(stack.baseUrl, 'GET', '/health');
    expect(res.status).toBe(503);
    expect(res.body).toEqual({
      status: 'degraded',
      checks: {
        database: { status: 'ok', latency_ms: expect.any(Number) },
        temporal: { status: 'ok', latency_ms: expect.any(Number) },
        ffmpeg: { status: 'error', error: expect.stringMatching(/\S/) },
      },
      temporal: 'ok',
      database: 'ok',
    });
    expect((await http<Health>(stack.baseUrl, 'GET', '/health/ready')).status).toBe(503);
    expect((await http(stack.baseUrl, 'GET', '/health/live')).status).toBe(200);
  } finally {
    await stack.close();
  }
});

/** Probe hosts started by this test process (the stack's worker probes nothing here, so starts none). */
function probeHostsOfThisProcess(): string[] {
  const out = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)], { encoding: 'utf8' });
  return out.split('\n').filter((line) => line.includes('media-host'));
}

it.each([
  ['PROBER unset (the default)', {}],
  ['PROBER=libav', { PROBER: 'libav' }],
  // FFPROBE_PATH names ffprobe for PROBER=ffprobe only: the workers still probe with libav.
  ['PROBER unset beside an FFPROBE_PATH', { FFPROBE_PATH: realFfprobe }],
])("reports the workers' in-process prober (libavformat's FFmpeg) with %s, and leaves no probe host running", async (_name, env: Record<string, string>) => {
  // What a worker picks with the same settings, as its start-up log says.
  const worker = await openProber({ prober: env.PROBER as 'libav' | undefined, ffprobePath: env.FFPROBE_PATH, probeConcurrency: 1 }, createLogger('test', 'silent'));
  await worker.prober.close();
  expect(worker.prober.kind).toBe('libav');
  const stack = await startStack(env);
  try {
    const res = await http<Health>(stack.baseUrl, 'GET', '/health');
    expect(res.status).toBe(200);
    expect(res.body.checks.ffmpeg).toEqual({ status: 'ok', version: worker.version });
    expect(worker.version).toMatch(/^libavformat \S+ \(FFmpeg /);
    expect(probeHostsOfThisProcess()).toEqual([]);
  } finally {
    await stack.close();
  }
});
