/**
 * What pruning old scans' file records needs: the finished scans found by
 * time without reading the whole table, and a mark on each scan whose
 * records are gone (a retry of it then has nothing to go on).
 */
import type { Kysely, Migration } from 'kysely';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDatabase = Kysely<any>;

export const scanRecordRetention: Migration = {
  async up(db: AnyDatabase): Promise<void> {
    await db.schema.alterTable('scans').addColumn('files_pruned_at', 'text').execute();
    await db.schema.createIndex('scans_finished_at').on('scans').column('finished_at').execute();
  },
};
