/**
 * finishScan heartbeats while the library keeps it waiting: its writes retry
 * a busy database for up to 30 s, and its heartbeat timeout is 10 s, so a
 * silent finish held up past 10 s would be taken for a dead worker.
 *
 * The activity runs in Temporal's MockActivityEnvironment (which reports every
 * heartbeat) against a real SQLite library whose file another connection
 * holds locked for longer than the heartbeat timeout.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities } from '../../src/activities';
import { Library } from '../../src/library/library';
import { createIsolatedProber } from '../../src/probe/isolated';
import type { FinishScanInput, FinishScanResult } from '../../src/scan/types';

/** The heartbeat timeout of scanLibrary's activities (src/workflows/scan-library.ts). */
const HEARTBEAT_TIMEOUT_MS = 10_000;
/** The lock is held past the heartbeat timeout, well within the library's 30 s of retries. */
const LOCK_HELD_MS = HEARTBEAT_TIMEOUT_MS + 3000;

let dir: string;
let library: Library;
let file: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'finish-heartbeat-'));
  file = path.join(dir, 'library.sqlite');
  library = await Library.open(`sqlite:${file}`);
});

afterAll(async () => {
  await library?.close();
  await fs.rm(dir, { recursive: true, force: true });
});

describe('finishScan with the library locked by another connection', () => {
  it('heartbeats while it waits, and completes once the lock is gone', async () => {
    const scanId = 'scan-finish-heartbeat';
    await library.createScan({ scanId, root: dir, recursive: true, force: false, retryOf: null });
    const activities = createActivities({
      library,
      prober: createIsolatedProber({ concurrency: 1 }),
      scanRoots: undefined,
      probeConcurrency: 1,
    });

    const other = new Database(file);
    other.pragma('busy_timeout = 0');
    other.exec('BEGIN EXCLUSIVE');
    const released = new Promise<void>((resolve) =>
      setTimeout(() => {
        other.exec('COMMIT');
        other.close();
        resolve();
      }, LOCK_HELD_MS),
    );

    const env = new MockActivityEnvironment({ heartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS });
    const beats: number[] = [];
    env.on('heartbeat', () => beats.push(Date.now()));
    const startedAt = Date.now();
    const input: FinishScanInput = { scanId, outcome: 'completed', error: null };
    const result = await env.run<[FinishScanInput], FinishScanResult, typeof activities.finishScan>(activities.finishScan, input);
    const endedAt = Date.now();
    await released;

    expect(result.counts).toMatchObject({ discovered: 0, probed: 0 });
    expect((await library.getScan(scanId))?.outcome).toBe('completed');
    // It really waited on the lock for longer than the heartbeat timeout…
    expect(endedAt - startedAt).toBeGreaterThanOrEqual(LOCK_HELD_MS - 100);
    // …and never went a heartbeat timeout without a heartbeat.
    const marks = [startedAt, ...beats, endedAt];
    const longestSilenceMs = Math.max(...marks.slice(1).map((at, i) => at - (marks[i] as number)));
    process.stderr.write(`finishScan waited ${endedAt - startedAt} ms, ${beats.length} heartbeats, longest silence ${longestSilenceMs} ms\n`);
    expect(longestSilenceMs).toBeLessThan(HEARTBEAT_TIMEOUT_MS);
  }, 60_000);
});
