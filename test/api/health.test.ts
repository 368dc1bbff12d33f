/**
 * The health body's ffmpeg check against the real stack: it reports the
 * prober's version, asks the binary once rather than on every poll, and turns
 * the API `degraded` (503) when the prober cannot run.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
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
  const stack = await startStack({ FFPROBE_PATH: wrapper.path });
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
  const stack = await startStack({ FFPROBE_PATH: path.join(work, 'no-such-ffprobe') });
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
