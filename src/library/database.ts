/**
 * Opens the library database: SQLite (better-sqlite3, WAL) for a `sqlite:`
 * URL, PostgreSQL (pg) for a `postgres://` one, behind one Kysely query
 * layer. Migrations run at open, idempotently, and are safe when a worker and
 * an API open the same database at the same moment.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql, type Generated } from 'kysely';
import pg from 'pg';
import type { VideoMediaFields } from './types';

export interface VideosTable extends VideoMediaFields {
  id: Generated<number>;
  path: string;
  filename: string;
  file_size: number;
  mtime_ms: number;
  streams_video: number;
  streams_audio: number;
  streams_subtitle: number;
  streams_data: number;
  status: string;
  missing_since: string | null;
  probed_at: string;
  created_at: string;
  updated_at: string;
}

export interface ScansTable {
  scan_id: string;
  root: string;
  recursive: number;
  force: number;
  retry_of: string | null;
  outcome: string | null;
  counts: string | null;
  error: string | null;
  created_at: string;
  finished_at: string | null;
}

export interface ScanFilesTable {
  scan_id: string;
  position: number;
  probe_index: number | null;
  path: string;
  size: number;
  mtime_ms: number;
  status: string;
  error: string | null;
  probed_at: string | null;
}

export interface Database {
  videos: VideosTable;
  scans: ScansTable;
  scan_files: ScanFilesTable;
}

export type Dialect = 'sqlite' | 'postgres';

// pg returns int8 and numeric as strings to protect precision; file sizes and
// mtimes here stay far below 2^53, so numbers are exact and easier to use.
pg.types.setTypeParser(20, (value) => Number(value));
pg.types.setTypeParser(1700, (value) => Number(value));

/**
 * Kysely prepares every query anew, and better-sqlite3 does not cache; a scan
 * runs the same few statements for every file, and preparing them was a
 * measured ~0.9 ms per file. Statements are reused by their SQL text (safe:
 * better-sqlite3 is synchronous, and Kysely runs each statement to the end).
 */
function cachePreparedStatements(database: BetterSqlite3.Database): void {
  const prepare = database.prepare.bind(database);
  const cache = new Map<string, BetterSqlite3.Statement>();
  database.prepare = ((source: string) => {
    let statement = cache.get(source);
    if (statement === undefined) {
      statement = prepare(source);
      // Bounded: queries with IN lists of varying length have many texts.
      if (cache.size >= 500) cache.delete(cache.keys().next().value as string);
      cache.set(source, statement);
    }
    return statement;
  }) as typeof database.prepare;
}

/** Opens the database of a URL and brings its schema up to date. */
export async function openDatabase(url: string): Promise<{ db: Kysely<Database>; dialect: Dialect }> {
  if (url.startsWith('sqlite:')) {
    const file = url.slice('sqlite:'.length);
    if (file !== ':memory:') mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    const database = new BetterSqlite3(file);
    database.pragma('journal_mode = WAL');
    // Writers wait for each other's lock only briefly: better-sqlite3 waits
    // synchronously, stalling its process; past that the library retries
    // asynchronously (library.ts), and past that Temporal retries the activity.
    database.pragma('busy_timeout = 10000');
    database.pragma('synchronous = NORMAL');
    database.pragma('foreign_keys = ON');
    cachePreparedStatements(database);
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
    // Opening may wait for another process's migration; working writes may not.
    migrateSqlite(db, database);
    database.pragma('busy_timeout = 100');
    return { db, dialect: 'sqlite' };
  }
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  // An idle connection the server drops (restart, failover, pg_terminate_backend)
  // is reported here; without a listener it would crash the process. The pool
  // replaces it, and a query that fails on it is retried by its activity.
  pool.on('error', () => undefined);
  // The same for a connection dropped while checked out: it stops being
  // queryable, its query fails (and is retried), and the pool discards it on release.
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
  });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  await migratePostgres(db);
  return { db, dialect: 'postgres' };
}

/** The schema, as Kysely DDL builders: one definition for both dialects. */
function schemaStatements(db: Kysely<Database>, dialect: Dialect): { compile(): { sql: string } }[] {
  const schema = db.schema;
  const big = dialect === 'postgres' ? 'bigint' : 'integer';
  const videos = schema.createTable('videos').ifNotExists();
  return [
    (dialect === 'postgres'
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
      .addColumn('updated_at', 'text', (c) => c.notNull()),
    schema
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
      .addColumn('finished_at', 'text'),
    schema
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
      .addPrimaryKeyConstraint('scan_files_pk', ['scan_id', 'position']),
    schema.createIndex('scan_files_probe_index').ifNotExists().on('scan_files').columns(['scan_id', 'probe_index']),
    schema.createIndex('scan_files_status').ifNotExists().on('scan_files').columns(['scan_id', 'status']),
  ];
}

/**
 * SQLite: the DDL runs synchronously in one IMMEDIATE transaction, so no other
 * connection, in this process or another, can interleave with it (an async
 * interleave within one process would deadlock on the busy timeout).
 */
function migrateSqlite(db: Kysely<Database>, database: BetterSqlite3.Database): void {
  const statements = schemaStatements(db, 'sqlite').map((s) => s.compile().sql);
  database.transaction(() => {
    for (const statement of statements) database.prepare(statement).run();
  }).immediate();
}

/** PostgreSQL: concurrent starts serialize on an advisory lock. */
async function migratePostgres(db: Kysely<Database>): Promise<void> {
  await db.connection().execute(async (conn) => {
    await sql`select pg_advisory_lock(727274)`.execute(conn);
    try {
      for (const statement of schemaStatements(db, 'postgres')) await sql.raw(statement.compile().sql).execute(conn);
    } finally {
      await sql`select pg_advisory_unlock(727274)`.execute(conn);
    }
  });
}
