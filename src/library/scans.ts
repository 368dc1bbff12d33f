/**
 * The scans table: one row per scan, from its start to its end (outcome,
 * counts, error, last run). The API's jobs are these rows: reads of them,
 * one or a page, belong here. A page is a keyset page, newest first by
 * created_at with the scan id breaking ties (index scans_created_at, or
 * scans_outcome_created_at for one outcome), so a deep page costs what the
 * first does.
 */
import type { Selectable } from 'kysely';
import type { ScanCounts } from '../model/types';
import type { ScansTable } from './database';
import { Repository } from './repository';
import type { ScanRecord } from './types';

/** A scan as it starts. */
export interface NewScan {
  scanId: string;
  root: string;
  recursive: boolean;
  force: boolean;
  retryOf: string | null;
  /** When the scan was asked for; now when absent. */
  createdAt?: string;
}

/** A scan's end: `runId` is its last run's, `finishedAt` now when absent. */
export interface ScanEnd {
  outcome: string;
  counts: Partial<ScanCounts>;
  error: string | null;
  runId?: string;
  finishedAt?: string;
}

/** Which scans a page holds, and from where. */
export interface ScanListOptions {
  /** Rows after this one in the order (created_at, then scan id, both descending); from the newest without. */
  after?: { createdAt: string; scanId: string };
  /** Only scans that ended with this outcome, or ('unfinished') those without one yet; every scan without. */
  outcome?: string;
  limit: number;
}

function scanRecordOf(row: Selectable<ScansTable>): ScanRecord {
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
    runId: row.run_id ?? null,
  };
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
          created_at: s.createdAt ?? new Date().toISOString(),
          finished_at: null,
          files_pruned_at: null,
          run_id: null,
        })
        .onConflict((oc) => oc.column('scan_id').doNothing())
        .execute();
    });
  }

  async getScan(scanId: string): Promise<ScanRecord | undefined> {
    return this.retrying(async () => {
      const row = await this.db.selectFrom('scans').selectAll().where('scan_id', '=', scanId).executeTakeFirst();
      return row ? scanRecordOf(row) : undefined;
    });
  }

  async finishScan(scanId: string, end: ScanEnd): Promise<void> {
    return this.retrying(async () => {
      await this.db
        .updateTable('scans')
        .set({
          outcome: end.outcome,
          counts: JSON.stringify(end.counts),
          error: end.error,
          finished_at: end.finishedAt ?? new Date().toISOString(),
          ...(end.runId !== undefined ? { run_id: end.runId } : {}),
        })
        .where('scan_id', '=', scanId)
        .execute();
    });
  }

  /** Scans newest first, a keyset page at a time. */
  async listScans(options: ScanListOptions): Promise<ScanRecord[]> {
    return this.retrying(async () => {
      let query = this.db.selectFrom('scans').selectAll();
      if (options.outcome === 'unfinished') query = query.where('outcome', 'is', null);
      else if (options.outcome !== undefined) query = query.where('outcome', '=', options.outcome);
      const after = options.after;
      if (after !== undefined) {
        query = query.where((eb) =>
          eb.or([eb('created_at', '<', after.createdAt), eb.and([eb('created_at', '=', after.createdAt), eb('scan_id', '<', after.scanId)])]),
        );
      }
      const rows = await query.orderBy('created_at', 'desc').orderBy('scan_id', 'desc').limit(options.limit).execute();
      return rows.map(scanRecordOf);
    });
  }
}
