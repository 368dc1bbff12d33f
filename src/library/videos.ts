/**
 * The videos table as the API reads it (by id, listed, searched, deleted)
 * and as discovery asks it what it knows of a file. A video's missing and
 * moved state is written by vanished.ts, its picture by thumbnails.ts.
 */
import { sql, type Selectable } from 'kysely';
import type { VideosTable } from './database';
import { chunks, Repository } from './repository';
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

/** A video's path, size and mtime, as knownFiles reads them. */
type KnownRow = Pick<VideosTable, 'path' | 'file_size' | 'mtime_ms'>;

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
   * Size and mtime of the present videos among these paths: one statement
   * for up to a few thousand paths, given as one parameter (a JSON list in
   * SQLite, an array in PostgreSQL) rather than one bound variable each.
   */
  async knownFiles(paths: string[]): Promise<Map<string, { size: number; mtimeMs: number }>> {
    return this.retrying(async () => {
      const known = new Map<string, { size: number; mtimeMs: number }>();
      for (const part of chunks(paths, 5000)) {
        // Each path looked up by the path index: SQLite's CROSS JOIN keeps
        // the list as the outer loop (left to itself, the planner walks every
        // present video by the status index and tests it against the list).
        const query =
          this.dialect === 'postgres'
            ? sql<KnownRow>`select path, file_size, mtime_ms from videos where path = any(${part}::text[]) and status = 'present'`
            : sql<KnownRow>`select v.path, v.file_size, v.mtime_ms from json_each(${JSON.stringify(part)}) as j
                cross join videos as v on v.path = j.value where v.status = 'present'`;
        const { rows } = await query.execute(this.db);
        for (const row of rows) known.set(row.path, { size: Number(row.file_size), mtimeMs: Number(row.mtime_ms) });
      }
      return known;
    });
  }

  /** Deletes the record only, never the file. */
  async deleteVideo(id: number): Promise<boolean> {
    return this.retrying(async () => {
      const result = await this.db.deleteFrom('videos').where('id', '=', id).executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    });
  }
}
