/**
 * The scan_files table: a row per file a scan found (its discovery position,
 * its probe index, its outcome), and a row per known video it marked
 * missing. Retries resume from it and a scan's counts are recomputed from it,
 * with the unchanged files a scan counted without a row each (its scans row's
 * skipped_unrecorded): a rescan of an unchanged library writes no row per file.
 */
import { sql, type Selectable, type SelectQueryBuilder } from 'kysely';
import { MAX_SUMMARY_ERRORS, type FileError } from '../model/types';
import type { Database, ScanFilesTable } from './database';
import { chunks, Repository } from './repository';
import type { NewScanFile, ScanFileRow } from './types';

/** Counts by outcome of a range of a scan's files, with its first failures. */
export interface ProbeSummary {
  probed: number;
  new: number;
  updated: number;
  failed: number;
  errors: FileError[];
}

export function toScanFileRow(r: Selectable<ScanFilesTable>): ScanFileRow {
  return {
    scanId: r.scan_id,
    position: Number(r.position),
    probeIndex: r.probe_index === null ? null : Number(r.probe_index),
    path: r.path,
    size: Number(r.size),
    mtimeMs: Number(r.mtime_ms),
    status: r.status as ScanFileRow['status'],
    error: r.error,
  };
}

export class ScanFileRepository extends Repository {
  /** Forgets a scan's file records and its count of unchanged files without one (a retried discovery starts over). */
  async resetScanFiles(scanId: string): Promise<void> {
    return this.retrying(async () => {
      await this.db.transaction().execute(async (trx) => {
        await trx.deleteFrom('scan_files').where('scan_id', '=', scanId).execute();
        await trx.updateTable('scans').set({ skipped_unrecorded: null }).where('scan_id', '=', scanId).where('skipped_unrecorded', 'is not', null).execute();
      });
    });
  }

  /**
   * Records how many unchanged files discovery has counted so far without a
   * row of their own (see discover-files.ts); the scan's totals add them.
   */
  async recordUnrecordedSkips(scanId: string, skipped: number): Promise<void> {
    return this.retrying(async () => {
      await this.db.updateTable('scans').set({ skipped_unrecorded: skipped }).where('scan_id', '=', scanId).execute();
    });
  }

  /**
   * Records discovered files; idempotent on (scan, position). The rows go in
   * as one JSON parameter per statement, unpacked by the database: a rescan
   * writes a row for every file, and binding nine parameters a row through
   * the query builder would be most of its cost.
   */
  async addScanFiles(scanId: string, files: NewScanFile[]): Promise<void> {
    return this.retrying(async () => {
      if (files.length === 0) return;
      await this.db.transaction().execute(async (trx) => {
        for (const part of chunks(files, 1000)) {
          const rows = JSON.stringify(part.map((f) => [f.position, f.probeIndex, f.path, f.size, f.mtimeMs, f.status, f.error ?? null]));
          const columns = sql`insert into scan_files (scan_id, position, probe_index, path, size, mtime_ms, status, error, probed_at)`;
          if (this.dialect === 'postgres') {
            await sql`${columns}
              select ${scanId}, (r->>0)::integer, (r->>1)::integer, r->>2, (r->>3)::bigint, (r->>4)::double precision, r->>5, r->>6, null
              from json_array_elements(${rows}::json) as r
              on conflict (scan_id, position) do nothing`.execute(trx);
          } else {
            // "where true": SQLite's parser otherwise takes ON CONFLICT for a join's ON.
            await sql`${columns}
              select ${scanId}, r.value->>0, r.value->>1, r.value->>2, r.value->>3, r.value->>4, r.value->>5, r.value->>6, null
              from json_each(${rows}) as r where true
              on conflict (scan_id, position) do nothing`.execute(trx);
          }
        }
      });
    });
  }

  async countScanFiles(scanId: string): Promise<{ discovered: number; toProbe: number; skipped: number }> {
    return this.retrying(async () => {
      const rows = await this.db
        .selectFrom('scan_files')
        .select(['status', (eb) => eb.fn.countAll<number>().as('n')])
        .where('scan_id', '=', scanId)
        .groupBy('status')
        .execute();
      // Unchanged files counted without a row each (null in scans from before the count).
      const scan = await this.db.selectFrom('scans').select('skipped_unrecorded').where('scan_id', '=', scanId).executeTakeFirst();
      const unrecorded = Number(scan?.skipped_unrecorded ?? 0);
      let discovered = unrecorded;
      let skipped = unrecorded;
      for (const row of rows) {
        // A missing row stands for a known video the scan did not find: no discovered file.
        if (row.status !== 'missing') discovered += Number(row.n);
        if (row.status === 'skipped') skipped += Number(row.n);
      }
      const probeable = await this.db
        .selectFrom('scan_files')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('scan_id', '=', scanId)
        .where('probe_index', 'is not', null)
        .where('status', '!=', 'skipped')
        .executeTakeFirst();
      return { discovered, toProbe: Number(probeable?.n ?? 0), skipped };
    });
  }

  /** Files of a scan whose record moved to them, and videos it marked missing. */
  async lifecycleCounts(scanId: string): Promise<{ moved: number; missing: number }> {
    return this.retrying(async () => {
      const rows = await this.db
        .selectFrom('scan_files')
        .select(['status', (eb) => eb.fn.countAll<number>().as('n')])
        .where('scan_id', '=', scanId)
        .where('status', 'in', ['moved', 'missing'])
        .groupBy('status')
        .execute();
      const by = (s: string): number => Number(rows.find((r) => r.status === s)?.n ?? 0);
      return { moved: by('moved'), missing: by('missing') };
    });
  }

  /** Paths of a scan's files that failed or were never reached, in discovery order. */
  async unfinishedFiles(scanId: string): Promise<string[]> {
    return this.retrying(async () => {
      const rows = await this.db
        .selectFrom('scan_files')
        .select('path')
        .where('scan_id', '=', scanId)
        .where('status', 'in', ['pending', 'failed'])
        .orderBy('position')
        .execute();
      return rows.map((r) => r.path);
    });
  }

  async getProbeFiles(scanId: string, fromIndex: number, toIndex: number): Promise<ScanFileRow[]> {
    return this.retrying(async () => {
      const rows = await this.db
        .selectFrom('scan_files')
        .selectAll()
        .where('scan_id', '=', scanId)
        .where('probe_index', '>=', fromIndex)
        .where('probe_index', '<', toIndex)
        .orderBy('probe_index')
        .execute();
      return rows.map(toScanFileRow);
    });
  }

  /** Counts by outcome over probe indexes [from, to), with up to MAX_SUMMARY_ERRORS failures. */
  async batchSummary(scanId: string, fromIndex: number, toIndex: number): Promise<ProbeSummary> {
    return this.retrying(async () => {
      return this.summarise(
        this.db.selectFrom('scan_files').where('scan_id', '=', scanId).where('probe_index', '>=', fromIndex).where('probe_index', '<', toIndex),
      );
    });
  }

  /** The same counts over the whole scan. */
  async scanSummary(scanId: string): Promise<ProbeSummary> {
    return this.retrying(async () => {
      return this.summarise(this.db.selectFrom('scan_files').where('scan_id', '=', scanId));
    });
  }

  private async summarise(range: SelectQueryBuilder<Database, 'scan_files', object>): Promise<ProbeSummary> {
    const rows = await range.select(['status', (eb) => eb.fn.countAll<number>().as('n')]).groupBy('status').execute();
    const by = (s: string): number => Number(rows.find((r) => r.status === s)?.n ?? 0);
    const errors = await range
      .select(['path', 'error'])
      .where('status', '=', 'failed')
      .orderBy('probe_index')
      .limit(MAX_SUMMARY_ERRORS)
      .execute();
    return {
      probed: by('new') + by('updated') + by('failed'),
      new: by('new'),
      updated: by('updated'),
      failed: by('failed'),
      errors: errors.map((e) => ({ path: e.path, error: e.error ?? 'unknown' })),
    };
  }

  async scanErrors(scanId: string, limit: number, offset: number): Promise<{ errors: FileError[]; total: number }> {
    return this.retrying(async () => {
      const failed = this.db.selectFrom('scan_files').where('scan_id', '=', scanId).where('status', '=', 'failed');
      const total = await failed.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst();
      const rows = await failed.select(['path', 'error']).orderBy('position').limit(limit).offset(offset).execute();
      return { errors: rows.map((e) => ({ path: e.path, error: e.error ?? 'unknown' })), total: Number(total?.n ?? 0) };
    });
  }
}
