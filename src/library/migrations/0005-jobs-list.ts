/**
 * The jobs list reads the scans table: newest first by created_at (scan id
 * breaking ties), a keyset page at a time, optionally of one outcome; and a
 * scan's last run id, recorded with its end, so that an ended scan's link to
 * the Temporal UI needs no call to Temporal.
 */
import type { Kysely, Migration } from 'kysely';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDatabase = Kysely<any>;

export const jobsList: Migration = {
  async up(db: AnyDatabase): Promise<void> {
    await db.schema.alterTable('scans').addColumn('run_id', 'text').execute();
    await db.schema.createIndex('scans_created_at').on('scans').columns(['created_at', 'scan_id']).execute();
    await db.schema.createIndex('scans_outcome_created_at').on('scans').columns(['outcome', 'created_at', 'scan_id']).execute();
  },
};
