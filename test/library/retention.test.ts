/**
 * The background pruning of old scans' file records as a worker runs it: a
 * timer that first fires shortly after start and logs what it removed.
 * (Which records go is tested on both dialects in library.test.ts.)
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { ConfigError, loadConfig } from '../../src/config';
import { Library } from '../../src/library/library';
import { startScanRecordPruning } from '../../src/library/retention';

const DAY = 86_400_000;

let tmp: string;
let library: Library;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'retention-'));
  library = await Library.open(`sqlite:${path.join(tmp, 'library.sqlite')}`);
});

afterAll(async () => {
  await library.close();
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('SCAN_RECORD_RETENTION', () => {
  it('defaults to 30 days and takes durations', () => {
    expect(loadConfig({}).scanRecordRetentionMs).toBe(30 * DAY);
    expect(loadConfig({ SCAN_RECORD_RETENTION: '12h' }).scanRecordRetentionMs).toBe(12 * 3_600_000);
    expect(loadConfig({ SCAN_RECORD_RETENTION: '90d' }).scanRecordRetentionMs).toBe(90 * DAY);
  });

  it('stops start-up with a line naming the variable on a bad value', () => {
    expect(() => loadConfig({ SCAN_RECORD_RETENTION: 'forever' })).toThrow(ConfigError);
    expect(() => loadConfig({ SCAN_RECORD_RETENTION: 'forever' })).toThrow(/SCAN_RECORD_RETENTION/);
    // Zero would prune a scan's records the moment it ends, before anyone could retry it.
    expect(() => loadConfig({ SCAN_RECORD_RETENTION: '0' })).toThrow(/SCAN_RECORD_RETENTION/);
  });
});

describe('background pruning', () => {
  it('removes expired records shortly after start and logs the count', async () => {
    jest.useFakeTimers({ now: Date.now() - 45 * DAY, doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
    try {
      await library.createScan({ scanId: 'expired', root: '/r', recursive: true, force: false, retryOf: null });
      await library.addScanFiles('expired', [0, 1, 2].map((i) => ({ position: i, probeIndex: i, path: `/r/${i}.mkv`, size: 1, mtimeMs: 1, status: 'pending' as const })));
      await library.finishScan('expired', { outcome: 'completed', counts: { discovered: 3 }, error: null });
    } finally {
      jest.useRealTimers();
    }
    await library.createScan({ scanId: 'current', root: '/r', recursive: true, force: false, retryOf: null });
    await library.addScanFiles('current', [{ position: 0, probeIndex: 0, path: '/r/0.mkv', size: 1, mtimeMs: 1, status: 'pending' }]);

    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const stop = startScanRecordPruning({ library, retentionMs: 30 * DAY, logger, firstRunAfterMs: 100, intervalMs: 3_600_000 });
    try {
      const deadline = Date.now() + 60_000;
      while (!lines.some((l) => l.msg === 'pruned expired scan file records') && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      await stop();
    }
    expect(lines.find((l) => l.msg === 'pruned expired scan file records')).toMatchObject({ rowsRemoved: 3, scans: 1 });
    expect((await library.countScanFiles('expired')).discovered).toBe(0);
    expect((await library.countScanFiles('current')).discovered).toBe(1);
    expect((await library.getScan('expired'))?.filesPrunedAt).toEqual(expect.any(String));
  });
});
