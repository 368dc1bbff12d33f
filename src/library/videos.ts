/**
 * The videos table as the API reads it (by id, listed, searched, deleted)
 * and as discovery asks it what it knows of a file. A video's missing and
 * moved state is written by vanished.ts, its picture by thumbnails.ts.
 */
import { sql, type Selectable } from 'kysely';
import type { VideosTable } from './database';
import { KnownFiles } from './known-files';
import { Repository } from './repository';
import type { ListVideosOptions, Page, Video } from './types';

/** A videos row as the API's Video body. */
export function toVideo(row: Selectable<VideosTable>): Video {
  return {
    id: Number(row.id),
    path: row.path,
    filename: row.filename,
    file_size: Number(row.file_size),
    modified_at: new Date(Number(row.mtime_ms)).toISOString(),
    duration_seconds: row.duration_seconds,
    duration_frames: row.duration_frames,
    frame_rate_numerator: row.frame_rate_numerator,
    frame_rate_denominator: row.frame_rate_denominator,
    width: row.width,
    height: row.height,
    video_codec: row.video_codec,
    audio_codec: row.audio_codec,
    container: row.container,
    bit_rate: row.bit_rate,
    stream_counts: { video: row.streams_video, audio: row.streams_audio, subtitle: row.streams_subtitle, data: row.streams_data },
    status: row.status === 'missing' ? 'missing' : 'present',
    missing_since: row.missing_since,
    moved_from: row.moved_from ?? null,
    thumbnail_at: row.thumbnail_at ?? null,
    probed_at: row.probed_at,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

/** Escapes LIKE wildcards so a search for `50%_off` means those characters. */
function likePattern(text: string): string {
  return `%${text.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** A video's path below the root, size, mtime and whether it lacks a picture, as knownFilesUnder reads them. */
type KnownRow = Pick<VideosTable, 'file_size' | 'mtime_ms'> & { below: string; pictureless: number | boolean };

/** Rows per statement of knownFilesUnder: a page at a time, so that a million known files are never a million row objects at once. */
const KNOWN_PAGE = 10_000;

export class VideoRepository extends Repository {
  async getVideo(id: number): Promise<Video | undefined> {
    return this.retrying(async () => {
      const row = await this.db.selectFrom('videos').selectAll().where('id', '=', id).executeTakeFirst();
      return row ? toVideo(row) : undefined;
    });
  }

  async listVideos(o: ListVideosOptions): Promise<Page<Video>> {
    return this.retrying(async () => {
      let query = this.db.selectFrom('videos');
      if (o.status) query = query.where('status', '=', o.status);
      const total = await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst();
      const rows = await query.selectAll().orderBy('path').limit(o.limit).offset(o.offset).execute();
      return { items: rows.map(toVideo), total: Number(total?.n ?? 0) };
    });
  }

  /** Case-insensitive substring search over file name and path. */
  async searchVideos(q: string, limit: number, offset: number): Promise<Page<Video>> {
    return this.retrying(async () => {
      const pattern = likePattern(q);
      const query = this.db
        .selectFrom('videos')
        .where((eb) =>
          eb.or([
            sql<boolean>`lower(${eb.ref('filename')}) like ${pattern} escape '\\'`,
            sql<boolean>`lower(${eb.ref('path')}) like ${pattern} escape '\\'`,
          ]),
        );
      const total = await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst();
      const rows = await query.selectAll().orderBy('path').limit(limit).offset(offset).execute();
      return { items: rows.map(toVideo), total: Number(total?.n ?? 0) };
    });
  }

  /**
   * What discovery compares a walk with: every present video below `root`
   * (at any depth; `recursive: false`, only those in the root itself, chosen
   * by the database), by path, with its size, mtime and whether it still
   * lacks a picture, held compactly (KnownFiles) and read a page at a time.
   * SQLite reads along a range of the path index (its BINARY collation orders
   * paths bytewise, so the range is exactly the prefix); PostgreSQL compares
   * the prefix itself, as its collation may not, in one statement read
   * through a cursor.
   */
  async knownFilesUnder(root: string, recursive: boolean): Promise<KnownFiles> {
    const prefix = root.endsWith('/') ? root : `${root}/`;
    // The first string past every one that starts with the prefix: its last character, '/', raised by one.
    const past = `${prefix.slice(0, -1)}0`;
    // Paths are read below the root (the part KnownFiles keeps), in characters as both substr count.
    const belowAt = [...prefix].length + 1;
    const columns = sql`substr(path, ${belowAt}) as below, file_size, mtime_ms, thumbnail_at is null and thumbnail_error is null as pictureless`;
    // Not recursive: the root's own videos only. The database leaves out those
    // below its folders, which may be most of the range: they are never read.
    const ownOnly = recursive
      ? sql``
      : this.dialect === 'postgres'
        ? sql`and strpos(substr(path, ${belowAt}), '/') = 0`
        : sql`and instr(substr(path, ${belowAt}), '/') = 0`;
    const take = (known: KnownFiles, rows: KnownRow[]): void => {
      for (const row of rows) known.add(row.below, { size: Number(row.file_size), mtimeMs: Number(row.mtime_ms), pictureless: Boolean(row.pictureless) });
    };
    if (this.dialect === 'postgres') {
      return this.retrying(() =>
        this.db.transaction().execute(async (trx) => {
          const known = new KnownFiles(prefix);
          await sql`declare known_files no scroll cursor for
              select ${columns} from videos where status = 'present' and substr(path, 1, ${belowAt - 1}) = ${prefix} ${ownOnly}`.execute(trx);
          for (;;) {
            const { rows } = await sql<KnownRow>`fetch forward ${sql.raw(String(KNOWN_PAGE))} from known_files`.execute(trx);
            take(known, rows);
            if (rows.length < KNOWN_PAGE) return known;
          }
        }),
      );
    }
    const known = new KnownFiles(prefix);
    // The first page from the prefix on, each next one past the last path read.
    // `+status` keeps the planner off the status index: without statistics it
    // prefers that index, and every page then visited all present videos and sorted them.
    for (let lower = sql`path >= ${prefix}`; ; ) {
      const bound = lower;
      const { rows } = await this.retrying(() =>
        sql<KnownRow>`select ${columns} from videos where ${bound} and path < ${past} and +status = 'present' ${ownOnly} order by path limit ${KNOWN_PAGE}`.execute(this.db),
      );
      take(known, rows);
      if (rows.length < KNOWN_PAGE) return known;
      lower = sql`path > ${prefix + (rows[rows.length - 1] as KnownRow).below}`;
    }
  }

  /** Deletes the record only, never the file. */
  async deleteVideo(id: number): Promise<boolean> {
    return this.retrying(async () => {
      const result = await this.db.deleteFrom('videos').where('id', '=', id).executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    });
  }
}
