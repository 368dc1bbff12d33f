/**
 * The scan workflow's own decisions, with its activities replaced by stubs
 * (a unit test of the one workflow module, on the test run's real Temporal
 * server): how progress weighs its phases, that a batch's failure stops its
 * siblings, that a pause stops the batches in flight, that a completed scan
 * finishes in a local activity, and that the finish of a timed-out scan
 * survives a cancel.
 */
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { Context, CancelledFailure } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { NativeConnection, Worker } from '@temporalio/worker';
import type {
  DiscoverInput,
  DiscoverResult,
  FinishScanInput,
  FinishScanResult,
  ProbeBatchInput,
  ProbeBatchResult,
  ScanInput,
  ScanProgress,
  ThumbnailBatchInput,
  ThumbnailBatchResult,
} from '../../src/model/types';
import { temporal } from '@temporalio/proto';
import { pauseScanUpdate, progressQuery, resumeScanUpdate } from '../../src/workflows/definitions';
import { recordHistory } from '../support/histories';
import { temporalAddress, waitFor, workflowBundle } from '../support/stack';

jest.setTimeout(180_000);

/** What a stub activity does with a call: answer at once, or when the test says so. */
type Gate = { release: () => void; wait: Promise<void> };
const gate = (): Gate => {
  let release = (): void => undefined;
  const wait = new Promise<void>((resolve) => {
    release = resolve;
  });
  return { release, wait };
};

/** Heartbeats until `until` settles, throwing CancelledFailure if the activity is cancelled first. */
async function heartbeatUntil<T>(until: Promise<T>): Promise<T> {
  const ctx = Context.current();
  const timer = setInterval(() => ctx.heartbeat(), 200);
  try {
    return await Promise.race([until, ctx.cancelled.then(() => Promise.reject(new CancelledFailure('cancelled')))]);
  } finally {
    clearInterval(timer);
  }
}

interface Stubs {
  discovered: DiscoverResult;
  probeCalls: ProbeBatchInput[];
  probeCancelled: number[];
  /** A probe batch for these indexes fails for good. */
  failAt: number | null;
  /** Probe batches from these indexes wait for the gate (or a cancel). */
  holdProbesFrom: number | null;
  probeGate: Gate;
  pictureCalls: ThumbnailBatchInput[];
  pictureGate: Gate;
  finishCalls: FinishScanInput[];
  finishGate: Gate | null;
  finishCancelled: boolean;
}

function freshStubs(discovered: DiscoverResult): Stubs {
  return {
    discovered,
    probeCalls: [],
    probeCancelled: [],
    failAt: null,
    holdProbesFrom: null,
    probeGate: gate(),
    pictureCalls: [],
    pictureGate: gate(),
    finishCalls: [],
    finishGate: null,
    finishCancelled: false,
  };
}

let stubs: Stubs = freshStubs({ discovered: 0, toProbe: 0, skipped: 0 });

const activities = {
  async discoverFiles(_input: DiscoverInput): Promise<DiscoverResult> {
    return stubs.discovered;
  },
  async probeBatch(input: ProbeBatchInput): Promise<ProbeBatchResult> {
    stubs.probeCalls.push(input);
    if (stubs.failAt === input.fromIndex) {
      // Fails once its sibling runs, so that there is one in flight to stop.
      await heartbeatUntil(waitFor(async () => stubs.probeCalls.length, (n) => n >= 2, 60_000, 20));
      throw ApplicationFailure.nonRetryable('the disk went away', 'Broken');
    }
    if (stubs.holdProbesFrom !== null && input.fromIndex >= stubs.holdProbesFrom) {
      try {
        await heartbeatUntil(stubs.probeGate.wait);
      } catch (error) {
        stubs.probeCancelled.push(input.fromIndex);
        throw error;
      }
    }
    const n = input.toIndex - input.fromIndex;
    return { probed: n, new: n, updated: 0, failed: 0, errors: [] };
  },
  async makeThumbnails(input: ThumbnailBatchInput): Promise<ThumbnailBatchResult> {
    stubs.pictureCalls.push(input);
    await heartbeatUntil(stubs.pictureGate.wait);
    return { made: input.toIndex - input.fromIndex, failed: 0 };
  },
  async finishScan(input: FinishScanInput): Promise<FinishScanResult> {
    stubs.finishCalls.push(input);
    if (stubs.finishGate !== null) {
      try {
        await heartbeatUntil(stubs.finishGate.wait);
      } catch (error) {
        stubs.finishCancelled = true;
        throw error;
      }
    }
    return { counts: { discovered: 0, probed: 0, new: 0, updated: 0, skipped: 0, failed: 0, moved: 0, missing: 0 }, errors: [] };
  },
};

const taskQueue = `scan-shape-${process.pid}-${Date.now()}`;
let nativeConnection: NativeConnection;
let worker: Worker;
let running: Promise<void>;
let connection: Connection;
let client: Client;
let counter = 0;

beforeAll(async () => {
  nativeConnection = await NativeConnection.connect({ address: temporalAddress() });
  worker = await Worker.create({
    connection: nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities,
    maxHeartbeatThrottleInterval: '200ms',
    defaultHeartbeatThrottleInterval: '200ms',
  });
  running = worker.run();
  connection = await Connection.connect({ address: temporalAddress() });
  client = new Client({ connection });
});

afterAll(async () => {
  worker?.shutdown();
  await running;
  await nativeConnection?.close();
  await connection?.close();
});

function scanInput(overrides: Partial<ScanInput> = {}): ScanInput {
  counter += 1;
  return {
    scanId: `scan-shape-${process.pid}-${Date.now()}-${counter}`,
    root: '/media',
    recursive: true,
    force: false,
    extensions: [],
    retryOf: null,
    batchSize: 5,
    window: 2,
    probeTimeoutMs: 30_000,
    scanTimeoutMs: null,
    maxBatchesPerRun: 400,
    exclude: [],
    settleSeconds: 0,
    ...overrides,
  };
}

const start = (input: ScanInput) => client.workflow.start('scanLibrary', { taskQueue, workflowId: input.scanId, args: [input] });

describe('progress over the phases of a scan', () => {
  it('counts the pictures still to make: the picture phase is not 0.999, and names itself', async () => {
    stubs = freshStubs({ discovered: 10, toProbe: 10, toThumbnail: 10, skipped: 0 });
    const handle = await start(scanInput());
    const inPictures = await waitFor(
      () => handle.query(progressQuery),
      (p: ScanProgress) => p.phase === 'thumbnails',
      60_000,
      100,
    );
    // Every file probed, no picture made: half of the work (docs/progress.md).
    expect(inPictures.progress).toBe(0.5);
    expect(inPictures.counts.probed).toBe(10);
    stubs.pictureGate.release();
    await handle.result();
    expect((await handle.query(progressQuery)).progress).toBe(1);
    await recordHistory(client, handle.workflowId, 'stoppable-pictures');
  });
});

describe('a completed scan', () => {
  it('finishes in a local activity: no activity task for it, and no workflow task after it', async () => {
    // A rescan of an unchanged library: nothing to probe, no picture to make.
    stubs = freshStubs({ discovered: 10, toProbe: 0, toThumbnail: 0, skipped: 10 });
    const handle = await start(scanInput());
    await handle.result();
    expect(stubs.finishCalls.map((call) => call.outcome)).toEqual(['completed']);
    const events = (await handle.fetchHistory()).events ?? [];
    expect(events.flatMap((event) => event.activityTaskScheduledEventAttributes?.activityType?.name ?? [])).toEqual(['discoverFiles']);
    // The first task schedules the discovery; the one after it finishes the scan and completes it.
    const { EventType } = temporal.api.enums.v1;
    expect(events.filter((event) => event.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)).toHaveLength(2);
    expect((await handle.query(progressQuery)).progress).toBe(1);
    await recordHistory(client, handle.workflowId, 'local-finish');
  });
});

describe('a batch that fails', () => {
  it('cancels its siblings in flight instead of waiting for them', async () => {
    stubs = freshStubs({ discovered: 10, toProbe: 10, toThumbnail: 10, skipped: 0 });
    stubs.holdProbesFrom = 5;
    stubs.failAt = 0;
    const handle = await start(scanInput());
    // The sibling (indexes 5..10) holds until it is cancelled; the scan fails once it has stopped.
    await waitFor(async () => stubs.probeCancelled, (cancelled) => cancelled.length > 0, 60_000, 50);
    expect(stubs.probeCancelled).toEqual([5]);
    await expect(handle.result()).rejects.toBeInstanceOf(WorkflowFailedError);
    stubs.probeGate.release();
    await recordHistory(client, handle.workflowId, 'stoppable-sibling-failed');
  });
});

describe('a pause', () => {
  it('stops the batches in flight, reads pause_requested until they have stopped, and launches them again on resume', async () => {
    stubs = freshStubs({ discovered: 20, toProbe: 20, toThumbnail: 0, skipped: 0 });
    stubs.holdProbesFrom = 0;
    const handle = await start(scanInput());
    await waitFor(async () => stubs.probeCalls.length, (n) => n === 2, 60_000, 50);
    await handle.executeUpdate(pauseScanUpdate);
    const paused = await waitFor(
      () => handle.query(progressQuery),
      (p: ScanProgress) => p.paused === true && p.pauseRequested === false,
      60_000,
      100,
    );
    // Both batches in flight were stopped, and no other was launched.
    expect(stubs.probeCancelled.sort((a, b) => a - b)).toEqual([0, 5]);
    expect(stubs.probeCalls).toHaveLength(2);
    expect(paused.counts.probed).toBe(0);
    stubs.holdProbesFrom = null;
    await handle.executeUpdate(resumeScanUpdate);
    await handle.result();
    // Launched again from where they stood, then the rest: every index once in the final counts.
    expect(stubs.probeCalls.slice(2, 4).map((c) => c.fromIndex).sort((a, b) => a - b)).toEqual([0, 5]);
    expect(stubs.probeCalls.slice(2).map((c) => c.fromIndex).sort((a, b) => a - b)).toEqual([0, 5, 10, 15]);
    await recordHistory(client, handle.workflowId, 'stoppable-paused-stubs');
  });
});

describe('a scan past its time limit', () => {
  it('records its timeout even when a cancel arrives during the finish', async () => {
    stubs = freshStubs({ discovered: 10, toProbe: 10, toThumbnail: 0, skipped: 0 });
    stubs.holdProbesFrom = 0;
    stubs.finishGate = gate();
    const input = scanInput({ scanTimeoutMs: 1_000 });
    const handle = await start(input);
    await waitFor(async () => stubs.finishCalls.length, (n) => n === 1, 60_000, 50);
    expect(stubs.finishCalls[0]?.outcome).toBe('timeout');
    await handle.cancel();
    // Once a workflow task has completed after the cancel, the workflow has
    // decided: an unshielded finish is then asked to cancel (in that task's events).
    const { EventType } = temporal.api.enums.v1;
    const afterCancel = await waitFor(
      async () => {
        const types = ((await handle.fetchHistory()).events ?? []).map((event) => event.eventType);
        const asked = types.lastIndexOf(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED);
        return asked >= 0 ? types.slice(asked) : [];
      },
      (types) => types.includes(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED),
      60_000,
      100,
    );
    expect(afterCancel).not.toContain(EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED);
    stubs.finishGate.release();
    const error = await handle.result().then(
      () => null,
      (e: unknown) => e,
    );
    expect(stubs.finishCancelled).toBe(false);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect(((error as WorkflowFailedError).cause as ApplicationFailure).type).toBe('ScanTimeout');
    await recordHistory(client, input.scanId, 'stoppable-timeout-cancelled');
  });
});
