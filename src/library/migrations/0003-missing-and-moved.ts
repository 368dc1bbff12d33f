/**
 * What keeping a library current needs: where a moved record came from, the
 * content fingerprint that recognises a moved file without probing it, and
 * the indexes that find vanished files and move candidates without reading
 * the whole library.
 */
import type { Kysely, Migration } from 'kysely';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDatabase = Kysely<any>;

export const missingAndMoved: Migration = {
  async up(db: AnyDatabase): Promise<void> {
    await db.schema.alterTable('videos').addColumn('moved_from', 'text').execute();
    // Hash of the first and last 64 KiB (see fingerprint.ts); null for records probed before it was taken.
    await db.schema.alterTable('videos').addColumn('fingerprint', 'text').execute();
    // The list filter `?status=missing` and the move candidates (vanished records by size).
    await db.schema.createIndex('videos_status_size').on('videos').columns(['status', 'file_size']).execute();
    // The check for vanished files looks up each known path among the scan's files.
    await db.schema.createIndex('scan_files_path').on('scan_files').columns(['scan_id', 'path']).execute();
  },
};
