/**
 * What tests read or write in a library beside its public interface: a
 * single probe result recorded, a video found by its path, a scan's rows, a picture's
 * failure reason (which no API shows). Reads go straight to the database at
 * the library's URL, on a connection of their own.
 */
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import type { Database } from '../../src/library/database';
import type { Library } from '../../src/library/library';
import type { ProbeOutcome, Video } from '../../src/library/types';
import { toVideo } from '../../src/library/videos';

/** Records one file's result (Library.recordProbes with a single result) and returns its status. */
export async function recordProbe(library: Library, scanId: string, position: number, outcome: ProbeOutcome): Promise<'new' | 'updated' | 'failed'> {
  const [status] = await library.recordProbes(scanId, [{ position, outcome }]);
  if (status === undefined) throw new Error('recordProbes returned no status');
  return status;
}

/** Runs `read` on a connection of its own to the library at `databaseUrl`, closed after it. */
async function reading<T>(databaseUrl: string, read: (db: Kysely<Database>) => Promise<T>): Promise<T> {
  const db = databaseUrl.startsWith('sqlite:')
    ? new Kysely<Database>({ dialect: new SqliteDialect({ database: new BetterSqlite3(databaseUrl.slice('sqlite:'.length), { readonly: true, fileMustExist: true }) }) })
    : new Kysely<Database>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: databaseUrl, max: 1 }) }) });
  try {
    return await read(db);
  } finally {
    await db.destroy();
  }
}

/** The video recorded at `file`, if any. */
export async function videoByPath(databaseUrl: string, file: string): Promise<Video | undefined> {
  return reading(databaseUrl, async (db) => {
    const row = await db.selectFrom('videos').selectAll().where('path', '=', file).executeTakeFirst();
    return row === undefined ? undefined : toVideo(row);
  });
}

/** How many scan_files rows a scan has. */
export async function scanFileRows(databaseUrl: string, scanId: string): Promise<number> {
  return reading(databaseUrl, async (db) => {
    const row = await db.selectFrom('scan_files').select((eb) => eb.fn.countAll<number>().as('n')).where('scan_id', '=', scanId).executeTakeFirst();
    return Number(row?.n ?? 0);
  });
}

/** Why a video has no picture (null: it has one, or none was tried yet). */
export async function thumbnailError(databaseUrl: string, videoId: number): Promise<string | null> {
  return reading(databaseUrl, async (db) => {
    const row = await db.selectFrom('videos').select('thumbnail_error').where('id', '=', videoId).executeTakeFirst();
    return row?.thumbnail_error ?? null;
  });
}
