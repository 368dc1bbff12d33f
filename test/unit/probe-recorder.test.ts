/**
 * The probe recorder's group commit: results that come within
 * GROUP_COMMIT_MS of each other share one write; each resolves with its own
 * status once that write commits, or rejects with its failure.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createProbeRecorder, type ProbeRecord, type RecordedStatus } from '../../src/activities/probe-recorder';

/** A gathering time no busy machine overruns between two turns of the loop (production's is GROUP_COMMIT_MS). */
const GATHER_MS = 300;

const probed = (position: number): ProbeRecord => ({ position, outcome: { kind: 'failed', reason: 'timeout' } });

it('writes results that come in later turns of the event loop in one transaction', async () => {
  const writes: number[][] = [];
  const record = createProbeRecorder(async (records) => {
    writes.push(records.map((r) => r.position));
    return records.map((r): RecordedStatus => (r.position % 2 === 0 ? 'new' : 'failed'));
  }, GATHER_MS);
  const pending: Promise<RecordedStatus>[] = [];
  // Five results, each in a later turn of the event loop (microseconds apart), all within the gathering time.
  for (let position = 0; position < 5; position++) {
    pending.push(record(probed(position)));
    await new Promise(setImmediate);
  }
  expect(await Promise.all(pending)).toEqual(['new', 'failed', 'new', 'failed', 'new']);
  expect(writes).toEqual([[0, 1, 2, 3, 4]]);
});

it('writes what came during a write in the next one, and a result alone still within the gathering time', async () => {
  const writes: number[][] = [];
  let release: () => void = () => undefined;
  const first = new Promise<void>((resolve) => (release = resolve));
  const record = createProbeRecorder(async (records) => {
    writes.push(records.map((r) => r.position));
    if (writes.length === 1) await first;
    return records.map((): RecordedStatus => 'new');
  }, GATHER_MS);
  const started = Date.now();
  const one = record(probed(1));
  await sleep(GATHER_MS * 2);
  const two = record(probed(2));
  const three = record(probed(3));
  release();
  await Promise.all([one, two, three]);
  expect(writes).toEqual([[1], [2, 3]]);
  // Never held back for long: the gathering is short next to a probe.
  expect(Date.now() - started).toBeLessThan(GATHER_MS * 4 + 2_000);
});

it("rejects every result of a failed write with its error, and goes on with the next", async () => {
  let calls = 0;
  const record = createProbeRecorder(async (records) => {
    calls += 1;
    if (calls === 1) throw new Error('database is locked');
    return records.map((): RecordedStatus => 'updated');
  }, GATHER_MS);
  const a = record(probed(1));
  const b = record(probed(2));
  await expect(a).rejects.toThrow('database is locked');
  await expect(b).rejects.toThrow('database is locked');
  await expect(record(probed(3))).resolves.toBe('updated');
});
