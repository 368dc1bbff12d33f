/**
 * Opens the library database: SQLite (better-sqlite3, WAL) for a `sqlite:`
 * URL, PostgreSQL (pg) for a `postgres://` one, behind one Kysely query
 * layer. Migrations run at open, idempotently, and are safe when a worker and
 * an API open the same database at the same moment.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { DEFAULT_MIGRATION_TABLE, Kysely, Migrator, PostgresDialect, SqliteDialect, sql, type Generated } from 'kysely';
import pg from 'pg';
import { libraryMigrationProvider, libraryMigrations, type Dialect } from './migrations';
import type { VideoMediaFields } from './types';

export type { Dialect } from './migrations';

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
  /** The path the record had before its file moved (0003); null otherwise. */
  moved_from: string | null;
  /** Hash of the file's first and last 64 KiB (0003); null for records made before it was taken. */
  fingerprint: string | null;
  /** When the video's picture was made (0004); null while it has none. */
  thumbnail_at: string | null;
  /** Why the last attempt made no picture (0004); null otherwise. */
  thumbnail_error: string | null;
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
  /** When the scan's file records were pruned (SCAN_RECORD_RETENTION); null while they are kept. */
  files_pruned_at: string | null;
  /** The scan's last Temporal run, recorded with its end (null before, and in rows older than the column). */
  run_id: string | null;
  /**
   * Unchanged files the scan counted without a scan_files row each (0006),
   * so far during discovery; null in rows older than the column.
   */
  skipped_unrecorded: number | null;
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

// pg returns int8 and numeric as strings to protect precision; file sizes and
// mtimes here stay far below 2^53, so numbers are exact and easier to use.
pg.types.setTypeParser(20, (value) => Number(value));
pg.types.setTypeParser(1700, (value) => Number(value));

/**
 * Kysely prepares every query anew, and better-sqlite3 does not cache; a scan
 * runs the same few statements for every file, and preparing them again
 * would cost more than running them. Statements are reused by their SQL text (safe:
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

/** An open library database: the Kysely layer, and on SQLite the connection under it. */
export interface OpenedDatabase {
  db: Kysely<Database>;
  dialect: Dialect;
  migrations: MigrationReport;
  /**
   * SQLite's one connection, for a hot path that runs prepared statements
   * itself; only while holding Kysely's connection (its mutex), so that it
   * never runs inside a transaction Kysely has open.
   */
  sqlite?: BetterSqlite3.Database;
}

/**
 * Opens the database of a URL and brings its schema up to date (the
 * migrations in ./migrations), safely when several processes open it at once.
 */
export async function openDatabase(url: string): Promise<OpenedDatabase> {
  if (url.startsWith('sqlite:')) {
    const file = url.slice('sqlite:'.length);
    if (file !== ':memory:') mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    const database = new BetterSqlite3(file);
    // Switching a new file to WAL takes a lock another opener may hold for a moment.
    database.pragma('busy_timeout = 10000');
    database.pragma('journal_mode = WAL');
    database.pragma('synchronous = NORMAL');
    database.pragma('foreign_keys = ON');
    cachePreparedStatements(database);
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
    let migrations: MigrationReport;
    try {
      migrations = await migrateSqlite(db, database);
    } catch (error) {
      await db.destroy();
      throw error;
    }
    // Writers wait for each other's lock only briefly: better-sqlite3 waits
    // synchronously, stalling its process; past that the library retries
    // asynchronously (repository.ts), and past that Temporal retries the activity.
    database.pragma('busy_timeout = 100');
    return { db, dialect: 'sqlite', migrations, sqlite: database };
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
  let migrations: MigrationReport;
  try {
    migrations = await migratePostgres(db);
  } catch (error) {
    await db.destroy();
    throw error;
  }
  return { db, dialect: 'postgres', migrations };
}

/** Applied migration names, and the ones this code does not know (written by a newer version). */
export interface MigrationReport {
  applied: string[];
  unknown: string[];
}

/**
 * Brings the schema up to date with Kysely's `Migrator`, unless the library
 * records migrations this code does not know: then a newer version has
 * migrated it, and this one runs on the schema as it is (migrations are
 * additive, see migrations/index.ts) instead of refusing to start.
 */
async function runMigrations(db: Kysely<Database>, dialect: Dialect): Promise<MigrationReport> {
  const known = libraryMigrations(dialect);
  const tables = await db.introspection.getTables({ withInternalKyselyTables: true });
  if (tables.some((t) => t.name === DEFAULT_MIGRATION_TABLE)) {
    const recorded = await sql<{ name: string }>`select name from ${sql.table(DEFAULT_MIGRATION_TABLE)}`.execute(db);
    const unknown = recorded.rows.map((r) => r.name).filter((name) => !(name in known));
    if (unknown.length > 0) return { applied: [], unknown };
  }
  const migrator = new Migrator({ db, provider: libraryMigrationProvider(dialect) });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    throw new Error(`library migration ${failed ?? ''} failed: ${error instanceof Error ? error.message : String(error)}`);
  }
  return { applied: (results ?? []).map((r) => r.migrationName), unknown: [] };
}

/** How long an open waits for another process's migration before it gives up. */
const MIGRATION_LOCK_WAIT_MS = 120_000;

/**
 * SQLite: the whole migration (Kysely's bookkeeping tables included) runs in
 * one IMMEDIATE transaction, so no other connection, in this process or
 * another, can interleave with it, and a failed migration leaves nothing
 * half-done (SQLite's DDL is transactional; Kysely's SQLite adapter assumes
 * it is not and takes no lock of its own). The lock is polled with
 * asynchronous pauses, not SQLite's busy wait: a second open in the same
 * process would otherwise stall the event loop that the first one needs to
 * finish.
 */
async function migrateSqlite(db: Kysely<Database>, database: BetterSqlite3.Database): Promise<MigrationReport> {
  const deadline = Date.now() + MIGRATION_LOCK_WAIT_MS;
  database.pragma('busy_timeout = 0');
  for (let pause = 10; ; pause = Math.min(pause * 2, 250)) {
    try {
      database.exec('BEGIN IMMEDIATE');
      break;
    } catch (error) {
      if (!String((error as { code?: string }).code).startsWith('SQLITE_BUSY') || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }
  try {
    const report = await runMigrations(db, 'sqlite');
    database.exec('COMMIT');
    return report;
  } catch (error) {
    if (database.inTransaction) database.exec('ROLLBACK');
    throw error;
  }
}

/**
 * PostgreSQL: concurrent opens serialize on a session advisory lock held on
 * one connection for the whole run, Kysely's bookkeeping tables included
 * (its own lock covers only the migrations themselves; each runs in a
 * transaction, PostgreSQL's DDL being transactional).
 */
async function migratePostgres(db: Kysely<Database>): Promise<MigrationReport> {
  return db.connection().execute(async (conn) => {
    await sql`select pg_advisory_lock(${sql.lit(MIGRATION_LOCK_KEY)})`.execute(conn);
    try {
      return await runMigrations(db, 'postgres');
    } finally {
      await sql`select pg_advisory_unlock(${sql.lit(MIGRATION_LOCK_KEY)})`.execute(conn);
    }
  });
}

/** The advisory lock key opens serialize on (the one every earlier version used). */
const MIGRATION_LOCK_KEY = 727274;
