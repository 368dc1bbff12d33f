/**
 * finishScan (and discovery, from its first library call) heartbeats while
 * the library keeps it waiting: its writes retry a busy database for up to
 * 30 s, and its heartbeat timeout is 10 s, so a silent activity held up past
 * 10 s would be taken for a dead worker.
 *
 * The activity runs in Temporal's MockActivityEnvironment (which reports every
 * heartbeat) against a real SQLite library whose file another connection
 * holds locked until the activity has heartbeated three times while waiting
 * (an order of events, not a time: a silent activity never gets the lock).
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities } from '../../src/activities';
import { Library } from '../../src/library/library';
import { createIsolatedProber } from '../../src/media-host/pool';
import type { DiscoverInput, DiscoverResult, FinishScanInput, FinishScanResult } from '../../src/model/types';

/** The heartbeat timeout of scanLibrary's activities (src/workflows/scan-library.ts). */
const HEARTBEAT_TIMEOUT_MS = 10_000;
/**
 * The lock is released only once the waiting activity has heartbeated this
 * often: an activity silent while it waits never gets it back, and its
 * library's 30 s of retries (three heartbeat timeouts) run out.
 */
const BEATS_WHILE_LOCKED = 3;

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

/** What a run under the lock showed. */
interface LockedRun<T> {
  result: T;
  heartbeatsWhileLocked: number;
  /** Whether the activity ended only after the lock was released. */
  endedAfterRelease: boolean;
}

/**
 * Runs an activity while another connection holds the library's file locked,
 * until the activity has heartbeated BEATS_WHILE_LOCKED times.
 */
async function runWhileLocked<T>(run: (env: MockActivityEnvironment) => Promise<T>): Promise<LockedRun<T>> {
  const other = new Database(file);
  other.pragma('busy_timeout = 0');
  other.exec('BEGIN EXCLUSIVE');
  let locked = true;
  const release = (): void => {
    if (!locked) return;
    locked = false;
    other.exec('COMMIT');
    other.close();
  };
  const env = new MockActivityEnvironment({ heartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS });
  let heartbeatsWhileLocked = 0;
  env.on('heartbeat', () => {
    if (!locked) return;
    heartbeatsWhileLocked += 1;
    if (heartbeatsWhileLocked >= BEATS_WHILE_LOCKED) release();
  });
  try {
    const result = await run(env);
    return { result, heartbeatsWhileLocked, endedAfterRelease: !locked };
  } finally {
    release();
  }
}

function activities(): ReturnType<typeof createActivities> {
  return createActivities({ library, prober: createIsolatedProber({ concurrency: 1 }), scanRoots: undefined });
}

describe('activities with the library locked by another connection', () => {
  it('finishScan heartbeats while it waits, and completes once the lock is gone', async () => {
    const scanId = 'scan-finish-heartbeat';
    await library.createScan({ scanId, root: dir, recursive: true, force: false, retryOf: null });
    const { finishScan } = activities();
    const input: FinishScanInput = { scanId, outcome: 'completed', error: null };
    const run = await runWhileLocked((env) => env.run<[FinishScanInput], FinishScanResult, typeof finishScan>(finishScan, input));

    expect(run.result.counts).toMatchObject({ discovered: 0, probed: 0 });
    expect((await library.getScan(scanId))?.outcome).toBe('completed');
    // It waited on the lock, heartbeating, and completed once it was gone.
    expect(run.heartbeatsWhileLocked).toBe(BEATS_WHILE_LOCKED);
    expect(run.endedAfterRelease).toBe(true);
  }, 60_000);

  it('discoverFiles heartbeats while it waits to record the scan, and completes once the lock is gone', async () => {
    const scanId = 'scan-discover-heartbeat';
    const root = path.join(dir, 'media');
    await fs.mkdir(root);
    await fs.writeFile(path.join(root, 'a.mp4'), '');
    const { discoverFiles } = activities();
    const input: DiscoverInput = { scanId, root, recursive: true, force: false, extensions: [], retryOf: null };
    const run = await runWhileLocked((env) => env.run<[DiscoverInput], DiscoverResult, typeof discoverFiles>(discoverFiles, input));

    expect(run.result).toMatchObject({ discovered: 1, toProbe: 1 });
    expect(run.heartbeatsWhileLocked).toBe(BEATS_WHILE_LOCKED);
    expect(run.endedAfterRelease).toBe(true);
  }, 60_000);
});
