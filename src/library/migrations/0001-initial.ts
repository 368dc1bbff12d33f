/**
 * The schema as the libraries made before versioned migrations have it
 * (created by `createTable ifNotExists` at every open). Frozen: on such a
 * library every statement is a no-op and the migration is only recorded; on
 * a new one it creates the tables. Never edit it: add a migration instead.
 */
import type { Kysely, Migration } from 'kysely';
import type { Dialect } from './dialect';

/** Migrations see the schema of their own time, not today's `Database`. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDatabase = Kysely<any>;

/** Creates videos, scans and scan_files with their indexes, where they are missing. */
export function initialSchema(dialect: Dialect): Migration {
  return {
    async up(db: AnyDatabase): Promise<void> {
      const schema = db.schema;
      const big = dialect === 'postgres' ? 'bigint' : 'integer';
      const videos = schema.createTable('videos').ifNotExists();
      await (dialect === 'postgres'
        ? videos.addColumn('id', 'bigserial', (c) => c.primaryKey())
        : videos.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
      )
        .addColumn('path', 'text', (c) => c.notNull().unique())
        .addColumn('filename', 'text', (c) => c.notNull())
        .addColumn('file_size', big, (c) => c.notNull())
        .addColumn('mtime_ms', 'double precision', (c) => c.notNull())
        .addColumn('duration_seconds', 'double precision')
        .addColumn('duration_frames', big)
        .addColumn('frame_rate_numerator', big)
        .addColumn('frame_rate_denominator', big)
        .addColumn('width', 'integer')
        .addColumn('height', 'integer')
        .addColumn('video_codec', 'text')
        .addColumn('audio_codec', 'text')
        .addColumn('container', 'text')
        .addColumn('bit_rate', big)
        .addColumn('streams_video', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('streams_audio', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('streams_subtitle', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('streams_data', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('status', 'text', (c) => c.notNull().defaultTo('present'))
        .addColumn('missing_since', 'text')
        .addColumn('probed_at', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await schema
        .createTable('scans')
        .ifNotExists()
        .addColumn('scan_id', 'text', (c) => c.primaryKey())
        .addColumn('root', 'text', (c) => c.notNull())
        .addColumn('recursive', 'integer', (c) => c.notNull())
        .addColumn('force', 'integer', (c) => c.notNull())
        .addColumn('retry_of', 'text')
        .addColumn('outcome', 'text')
        .addColumn('counts', 'text')
        .addColumn('error', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('finished_at', 'text')
        .execute();
      await schema
        .createTable('scan_files')
        .ifNotExists()
        .addColumn('scan_id', 'text', (c) => c.notNull())
        .addColumn('position', 'integer', (c) => c.notNull())
        .addColumn('probe_index', 'integer')
        .addColumn('path', 'text', (c) => c.notNull())
        .addColumn('size', big, (c) => c.notNull())
        .addColumn('mtime_ms', 'double precision', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('error', 'text')
        .addColumn('probed_at', 'text')
        .addPrimaryKeyConstraint('scan_files_pk', ['scan_id', 'position'])
        .execute();
      await schema.createIndex('scan_files_probe_index').ifNotExists().on('scan_files').columns(['scan_id', 'probe_index']).execute();
      await schema.createIndex('scan_files_status').ifNotExists().on('scan_files').columns(['scan_id', 'status']).execute();
    },
  };
}
