/**
 * Videos' pictures as the library records them: which videos a scan's
 * picture batch covers, each picture made (or why none was), and how many a
 * scan made. The pictures themselves are files (src/thumbnails/).
 */
import { sql } from 'kysely';
import { Repository } from './repository';

/** A video a thumbnail batch covers. */
export interface ThumbnailTarget {
  probeIndex: number;
  videoId: number;
  path: string;
  durationSeconds: number | null;
  /** Its picture was made, or its failure recorded, since its probe. */
  done: boolean;
}

export class ThumbnailRepository extends Repository {
  /**
   * The videos a scan's thumbnail batch covers: files at probe indexes
   * [from, to) that the scan recorded new or updated and that are still
   * present. `done`: their picture was made, or its failure recorded, since
   * the probe (a probe clears both), so a retried batch skips them.
   */
  async thumbnailTargets(scanId: string, fromIndex: number, toIndex: number): Promise<ThumbnailTarget[]> {
    return this.retrying(async () => {
      const rows = await this.db
        .selectFrom('scan_files as f')
        .innerJoin('videos as v', 'v.path', 'f.path')
        .select(['f.probe_index', 'v.id', 'v.path', 'v.duration_seconds', 'v.thumbnail_at', 'v.thumbnail_error'])
        .where('f.scan_id', '=', scanId)
        .where('f.probe_index', '>=', fromIndex)
        .where('f.probe_index', '<', toIndex)
        // Skipped files hold a probe index only when their video still lacked a picture (numberPicturelessFiles).
        .where('f.status', 'in', ['new', 'updated', 'skipped'])
        .where('v.status', '=', 'present')
        .orderBy('f.probe_index')
        .execute();
      return rows.map((r) => ({
        probeIndex: Number(r.probe_index),
        videoId: Number(r.id),
        path: r.path,
        durationSeconds: r.duration_seconds,
        done: r.thumbnail_at !== null || r.thumbnail_error !== null,
      }));
    });
  }

  /**
   * Gives the unchanged (skipped) files of a scan whose video has no picture
   * and no recorded picture failure the probe indexes from `fromIndex` on, in
   * discovery order, so that the scan's picture phase covers them after its
   * probed files: the videos a scan stopped before its pictures left without
   * one, and a library from before pictures. Returns how many it numbered.
   */
  async numberPicturelessFiles(scanId: string, fromIndex: number): Promise<number> {
    return this.retrying(async () => {
      const result = await sql`
        update scan_files set probe_index = r.n
        from (
          select f.position, ${fromIndex} + row_number() over (order by f.position) - 1 as n
          from scan_files as f inner join videos as v on v.path = f.path
          where f.scan_id = ${scanId} and f.status = 'skipped' and v.status = 'present'
            and v.thumbnail_at is null and v.thumbnail_error is null
        ) as r
        where scan_files.scan_id = ${scanId} and scan_files.position = r.position`.execute(this.db);
      return Number(result.numAffectedRows ?? 0n);
    });
  }

  /**
   * Records a video's picture made (or why none was), if the record still has
   * that path; false when it has not (deleted or moved meanwhile): the caller
   * then removes the picture it made, which no record would ever remove.
   */
  async recordThumbnail(videoId: number, file: string, result: { ok: true } | { ok: false; reason: string }): Promise<boolean> {
    return this.retrying(async () => {
      const updated = await this.db
        .updateTable('videos')
        .set(result.ok ? { thumbnail_at: new Date().toISOString(), thumbnail_error: null } : { thumbnail_at: null, thumbnail_error: result.reason })
        .where('id', '=', videoId)
        .where('path', '=', file)
        .executeTakeFirst();
      return Number(updated.numUpdatedRows) > 0;
    });
  }

  /** Pictures made for the files a scan probed new or changed, and for the unchanged ones it gave pictures. */
  async scanThumbnailCount(scanId: string): Promise<number> {
    return this.retrying(async () => {
      const row = await this.db
        .selectFrom('scan_files as f')
        .innerJoin('videos as v', 'v.path', 'f.path')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('f.scan_id', '=', scanId)
        .where((eb) => eb.or([eb('f.status', 'in', ['new', 'updated']), eb.and([eb('f.status', '=', 'skipped'), eb('f.probe_index', 'is not', null)])]))
        .where('v.thumbnail_at', 'is not', null)
        .executeTakeFirst();
      return Number(row?.n ?? 0);
    });
  }
}
