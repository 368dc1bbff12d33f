/**
 * The library's schema history, oldest first. Kysely's `Migrator` runs the
 * ones a database has not recorded yet, in name order, and records each in
 * `kysely_migration`. The list lives in code (not read from a folder) so that
 * the same names resolve under ts-jest/swc and from the compiled `dist/`.
 *
 * To change the schema, add `NNNN-what.ts` here and a line below; never edit
 * or rename one that has shipped. Keep changes additive (new nullable columns,
 * new tables, new indexes) so that a process of the previous version keeps
 * working against a migrated library during a rolling upgrade.
 */
import type { Migration, MigrationProvider } from 'kysely';
import { initialSchema } from './0001-initial';
import { scanRecordRetention } from './0002-scan-record-retention';
import { missingAndMoved } from './0003-missing-and-moved';
import { thumbnails } from './0004-thumbnails';
import { jobsList } from './0005-jobs-list';
import { unrecordedSkips } from './0006-unrecorded-skips';
import { videosByStatus } from './0007-videos-by-status';
import type { Dialect } from './dialect';

export type { Dialect } from './dialect';

/** Every migration by its recorded name. */
export function libraryMigrations(dialect: Dialect): Record<string, Migration> {
  return {
    '0001_initial': initialSchema(dialect),
    '0002_scan_record_retention': scanRecordRetention,
    '0003_missing_and_moved': missingAndMoved,
    '0004_thumbnails': thumbnails,
    '0005_jobs_list': jobsList,
    '0006_unrecorded_skips': unrecordedSkips,
    '0007_videos_by_status': videosByStatus,
  };
}

/** A `MigrationProvider` over `libraryMigrations`. */
export function libraryMigrationProvider(dialect: Dialect): MigrationProvider {
  return { getMigrations: async () => libraryMigrations(dialect) };
}
