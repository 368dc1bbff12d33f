import { setTimeout as sleep } from 'node:timers/promises';
import type { ProbeOutcome } from '../library/types';

/** A probed file's result, as the library records it. */
export interface ProbeRecord {
  position: number;
  outcome: ProbeOutcome;
}

/** What the library made of a result. */
export type RecordedStatus = 'new' | 'updated' | 'failed';

/** Results written per transaction at most: a commit of SQLite's write lock stays short. */
const MAX_PER_WRITE = 200;

/**
 * How long the first result of a write waits for others to join it. Each
 * commit writes its pages to the WAL whole: one commit per file was a
 * quarter of the worker's main-thread CPU in a scan of 3,000 files (SQLite,
 * 2 probing), and 10 ms of gathering cut that by three quarters. At a
 * crash, the results still gathering are probed again, with the files in
 * flight: at most 10 ms of probing.
 */
export const GROUP_COMMIT_MS = 10;

interface Waiting extends ProbeRecord {
  resolve: (status: RecordedStatus) => void;
  reject: (error: unknown) => void;
}

/**
 * Records probe results with group commit: a result that finds no write
 * under way starts one, which waits GROUP_COMMIT_MS for others to join it;
 * results that arrive during a write wait for it and go together in the
 * next transaction. At a crash, the files probed again are those still
 * being probed and those whose write had not committed. Each call resolves
 * once its own result is committed (or rejects with the write's failure,
 * shared by the results written with it).
 */
export function createProbeRecorder(
  write: (records: ProbeRecord[]) => Promise<RecordedStatus[]>,
  gatherMs = GROUP_COMMIT_MS,
): (record: ProbeRecord) => Promise<RecordedStatus> {
  const queue: Waiting[] = [];
  let writing = false;

  const drain = async (): Promise<void> => {
    writing = true;
    try {
      // Results that finish meanwhile join the first write.
      await sleep(gatherMs);
      while (queue.length > 0) {
        const group = queue.splice(0, MAX_PER_WRITE);
        try {
          const statuses = await write(group.map(({ position, outcome }) => ({ position, outcome })));
          group.forEach((waiting, i) => waiting.resolve(statuses[i] as RecordedStatus));
        } catch (error) {
          for (const waiting of group) waiting.reject(error);
        }
      }
    } finally {
      writing = false;
    }
  };

  return (record) =>
    new Promise<RecordedStatus>((resolve, reject) => {
      queue.push({ ...record, resolve, reject });
      if (!writing) void drain();
    });
}
