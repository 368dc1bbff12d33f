import { setImmediate as nextTurn } from 'node:timers/promises';
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

interface Waiting extends ProbeRecord {
  resolve: (status: RecordedStatus) => void;
  reject: (error: unknown) => void;
}

/**
 * Records probe results with group commit: a result is written at once when
 * no write is under way; results that arrive during a write wait for it and
 * go together in the next transaction. Nothing waits on a timer, so a
 * result is never held back longer than one write: at a crash, the files
 * probed again are those still being probed and those whose write had not
 * committed, as when every file had its own transaction. Each call
 * resolves once its own result is committed (or rejects with the write's
 * failure, shared by the results written with it).
 */
export function createProbeRecorder(write: (records: ProbeRecord[]) => Promise<RecordedStatus[]>): (record: ProbeRecord) => Promise<RecordedStatus> {
  const queue: Waiting[] = [];
  let writing = false;

  const drain = async (): Promise<void> => {
    writing = true;
    try {
      // Results that finish in this same turn of the event loop join the first write.
      await nextTurn();
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
