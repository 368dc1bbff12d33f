/**
 * What tests read or write in a library beside its public interface: a
 * single probe result recorded, a video found by its path, a scan's rows, a picture's
 * failure reason (which no API shows), many videos written at once. Reads
 * and writes go straight to the database at the library's URL, on a
 * connection of their own.
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

/** Runs `use` on a connection of its own to the library at `databaseUrl`, closed after it (read-only in SQLite unless `write`). */
async function onConnection<T>(databaseUrl: string, use: (db: Kysely<Database>) => Promise<T>, write = false): Promise<T> {
  const db = databaseUrl.startsWith('sqlite:')
    ? new Kysely<Database>({ dialect: new SqliteDialect({ database: new BetterSqlite3(databaseUrl.slice('sqlite:'.length), { readonly: !write, fileMustExist: true }) }) })
    : new Kysely<Database>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: databaseUrl, max: 1 }) }) });
  try {
    return await use(db);
  } finally {
    await db.destroy();
  }
}

/** The video recorded at `file`, if any. */
export async function videoByPath(databaseUrl: string, file: string): Promise<Video | undefined> {
  return onConnection(databaseUrl, async (db) => {
    const row = await db.selectFrom('videos').selectAll().where('path', '=', file).executeTakeFirst();
    return row === undefined ? undefined : toVideo(row);
  });
}

/** How many scan_files rows a scan has. */
export async function scanFileRows(databaseUrl: string, scanId: string): Promise<number> {
  return onConnection(databaseUrl, async (db) => {
    const row = await db.selectFrom('scan_files').select((eb) => eb.fn.countAll<number>().as('n')).where('scan_id', '=', scanId).executeTakeFirst();
    return Number(row?.n ?? 0);
  });
}

/** Why a video has no picture (null: it has one, or none was tried yet). */
export async function thumbnailError(databaseUrl: string, videoId: number): Promise<string | null> {
  return onConnection(databaseUrl, async (db) => {
    const row = await db.selectFrom('videos').select('thumbnail_error').where('id', '=', videoId).executeTakeFirst();
    return row?.thumbnail_error ?? null;
  });
}

/** Marks the videos whose path starts with `prefix` as `status`, without a scan. */
export async function setVideoStatus(databaseUrl: string, prefix: string, status: 'present' | 'missing'): Promise<void> {
  await onConnection(databaseUrl, (db) => db.updateTable('videos').set({ status }).where('path', 'like', `${prefix}%`).execute(), true);
}

/** Writes present videos at `paths` (size 1,000 + i, mtime 1.7e12 + i / 4 ms), without a scan: a library of many files in a moment. */
export async function addVideos(databaseUrl: string, paths: readonly string[]): Promise<void> {
  await onConnection(
    databaseUrl,
    async (db) => {
      const now = new Date().toISOString();
      for (let i = 0; i < paths.length; i += 1000) {
        const rows = paths.slice(i, i + 1000).map((file, j) => ({
          path: file,
          filename: file.slice(file.lastIndexOf('/') + 1),
          status: 'present',
          streams_video: 1,
          streams_audio: 0,
          streams_subtitle: 0,
          streams_data: 0,
          file_size: 1000 + i + j,
          mtime_ms: 1_700_000_000_000 + (i + j) / 4,
          probed_at: now,
          created_at: now,
          updated_at: now,
        }));
        await db.insertInto('videos').values(rows).execute();
      }
    },
    true,
  );
}
