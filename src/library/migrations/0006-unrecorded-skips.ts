/**
 * Unchanged files without a row each: a rescan counts the files whose size
 * and mtime match the library (and whose video has its picture) instead of
 * writing a scan_files row per file. The scan's row keeps that count, which
 * its totals add to what its rows say. Null in scans recorded before it
 * (their unchanged files have rows of their own).
 */
import type { Kysely, Migration } from 'kysely';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDatabase = Kysely<any>;

export const unrecordedSkips: Migration = {
  async up(db: AnyDatabase): Promise<void> {
    await db.schema.alterTable('scans').addColumn('skipped_unrecorded', 'integer').execute();
  },
};
