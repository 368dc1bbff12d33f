/**
 * Videos whose files a scan did not find: moved (the record follows its file
 * to its new path, same id) or missing (marked, never deleted), and the
 * scan's file records that say so. Also what a media manager reports deleted.
 */
import path from 'node:path';
import { sql } from 'kysely';
import { chunks, Repository } from './repository';
import { toScanFileRow } from './scan-files';
import type { ScanFileRow, VanishedVideo } from './types';

export class VanishedRepository extends Repository {
  /**
   * The present videos at these paths, by path: the known videos under a
   * root whose files its walk did not find (discovery tells them from what
   * the library knew, see knownFilesUnder), with what a move is matched by.
   */
  async presentVideos(paths: string[]): Promise<VanishedVideo[]> {
    return this.retrying(async () => {
      const out: VanishedVideo[] = [];
      for (const part of chunks(paths)) {
        const rows = await this.db
          .selectFrom('videos')
          .select(['id', 'path', 'file_size', 'fingerprint'])
          .where('status', '=', 'present')
          .where('path', 'in', part)
          .execute();
        out.push(...rows.map((r) => ({ id: Number(r.id), path: r.path, size: Number(r.file_size), fingerprint: r.fingerprint ?? null })));
      }
      // Byte order of the path, whatever the database's collation.
      return out.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
    });
  }

  /**
   * Files this scan is about to probe that have no record at all and whose
   * size is one of `sizes`: the only files a vanished record can have moved to.
   */
  async moveCandidates(scanId: string, sizes: number[]): Promise<ScanFileRow[]> {
    return this.retrying(async () => {
      const out: ScanFileRow[] = [];
      for (const part of chunks([...new Set(sizes)])) {
        const rows = await this.db
          .selectFrom('scan_files as f')
          .selectAll('f')
          .where('f.scan_id', '=', scanId)
          .where('f.status', '=', 'pending')
          .where('f.size', 'in', part)
          .where(({ not, exists, selectFrom }) => not(exists(selectFrom('videos as v').select('v.id').whereRef('v.path', '=', 'f.path'))))
          .orderBy('f.position')
          .execute();
        out.push(...rows.map(toScanFileRow));
      }
      return out.sort((a, b) => a.position - b.position);
    });
  }

  /**
   * Moves a video's record to the path its file was found at: same id, its
   * metadata kept, `moved_from` set; the scan's file marked `moved` and taken
   * out of the files to probe. Returns false (nothing written) when the record
   * is no longer present at its old path.
   */
  async recordMove(scanId: string, file: { position: number; path: string; size: number; mtimeMs: number }, from: VanishedVideo): Promise<boolean> {
    return this.retrying(async () => {
      const now = new Date().toISOString();
      return this.db.transaction().execute(async (trx) => {
        const moved = await trx
          .updateTable('videos')
          .set({
            path: file.path,
            filename: path.basename(file.path),
            moved_from: from.path,
            mtime_ms: file.mtimeMs,
            status: 'present',
            missing_since: null,
            updated_at: now,
          })
          .where('id', '=', from.id)
          .where('path', '=', from.path)
          .where('status', '=', 'present')
          .executeTakeFirst();
        if (Number(moved.numUpdatedRows) === 0) return false;
        await trx
          .updateTable('scan_files')
          .set({ status: 'moved', probe_index: null, error: null, probed_at: now })
          .where('scan_id', '=', scanId)
          .where('position', '=', file.position)
          .execute();
        return true;
      });
    });
  }

  /**
   * Numbers a scan's files to probe 0, 1, 2, … again in discovery order, after
   * moves took some out (the workflow addresses batches by these indexes).
   */
  async renumberProbeIndexes(scanId: string): Promise<void> {
    return this.retrying(async () => {
      await sql`
        update scan_files set probe_index = r.n
        from (
          select position, row_number() over (order by position) - 1 as n
          from scan_files where scan_id = ${scanId} and probe_index is not null
        ) as r
        where scan_files.scan_id = ${scanId} and scan_files.position = r.position`.execute(this.db);
    });
  }

  /**
   * Marks videos whose files are gone as `missing` (never deletes them) and
   * records each in the scan's files, from `firstPosition` on, so that the
   * scan's counts and its record say what went missing.
   */
  async markMissing(scanId: string, videos: VanishedVideo[], firstPosition: number): Promise<number> {
    let marked = 0;
    const now = new Date().toISOString();
    let position = firstPosition;
    for (const part of chunks(videos)) {
      marked += await this.retrying(async () =>
        this.db.transaction().execute(async (trx) => {
          const result = await trx
            .updateTable('videos')
            .set({ status: 'missing', missing_since: now })
            .where('id', 'in', part.map((v) => v.id))
            .where('status', '=', 'present')
            .executeTakeFirst();
          await trx
            .insertInto('scan_files')
            .values(
              part.map((v, i) => ({
                scan_id: scanId,
                position: position + i,
                probe_index: null,
                path: v.path,
                size: v.size,
                mtime_ms: 0,
                status: 'missing',
                error: null,
                probed_at: null,
              })),
            )
            .onConflict((oc) => oc.columns(['scan_id', 'position']).doNothing())
            .execute();
          return Number(result.numUpdatedRows);
        }),
      );
      position += part.length;
    }
    return marked;
  }

  // ---- What a media manager (Sonarr, Radarr) reports deleted: see api/hooks.ts ----

  /**
   * Marks the present video at `file`, or every present video below the folder
   * `folder` (at any depth), `missing`: a delete event's word that they are
   * gone, taken even when no scan can run because the folder went with them.
   * Returns how many were marked.
   */
  async markDeletedMissing(target: { file: string } | { folder: string }): Promise<number> {
    return this.retrying(async () => {
      const now = new Date().toISOString();
      let query = this.db.updateTable('videos').set({ status: 'missing', missing_since: now, updated_at: now }).where('status', '=', 'present');
      if ('file' in target) {
        query = query.where('path', '=', target.file);
      } else {
        const prefix = target.folder.endsWith('/') ? target.folder : `${target.folder}/`;
        // substr counts characters (code points) in both databases.
        query = query.where(sql<string>`substr(${sql.ref('path')}, 1, ${[...prefix].length})`, '=', prefix);
      }
      const result = await query.executeTakeFirst();
      return Number(result.numUpdatedRows);
    });
  }
}
