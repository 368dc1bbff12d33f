/**
 * The scans table: one row per scan, from its start to its end (outcome,
 * counts, error). The API's jobs are these rows: reads of them, one or a
 * page, belong here.
 */
import type { ScanCounts } from '../scan/types';
import { Repository } from './repository';
import type { ScanRecord } from './types';

/** A scan as it starts. */
export interface NewScan {
  scanId: string;
  root: string;
  recursive: boolean;
  force: boolean;
  retryOf: string | null;
}

export class ScanRepository extends Repository {
  /** Records a scan's start; a scan already recorded is left as it is. */
  async createScan(s: NewScan): Promise<void> {
    return this.retrying(async () => {
      await this.db
        .insertInto('scans')
        .values({
          scan_id: s.scanId,
          root: s.root,
          recursive: s.recursive ? 1 : 0,
          force: s.force ? 1 : 0,
          retry_of: s.retryOf,
          outcome: null,
          counts: null,
          error: null,
          created_at: new Date().toISOString(),
          finished_at: null,
          files_pruned_at: null,
        })
        .onConflict((oc) => oc.column('scan_id').doNothing())
        .execute();
    });
  }

  async getScan(scanId: string): Promise<ScanRecord | undefined> {
    return this.retrying(async () => {
      const row = await this.db.selectFrom('scans').selectAll().where('scan_id', '=', scanId).executeTakeFirst();
      if (!row) return undefined;
      return {
        scanId: row.scan_id,
        root: row.root,
        recursive: Boolean(row.recursive),
        force: Boolean(row.force),
        retryOf: row.retry_of,
        outcome: row.outcome,
        counts: row.counts ? (JSON.parse(row.counts) as Record<string, number>) : null,
        error: row.error,
        createdAt: row.created_at,
        finishedAt: row.finished_at,
        filesPrunedAt: row.files_pruned_at ?? null,
      };
    });
  }

  async finishScan(scanId: string, end: { outcome: string; counts: Partial<ScanCounts>; error: string | null }): Promise<void> {
    return this.retrying(async () => {
      await this.db
        .updateTable('scans')
        .set({ outcome: end.outcome, counts: JSON.stringify(end.counts), error: end.error, finished_at: new Date().toISOString() })
        .where('scan_id', '=', scanId)
        .execute();
    });
  }
}
