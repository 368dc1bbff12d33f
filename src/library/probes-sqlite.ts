/**
 * SQLite's writer of probe results, on the connection itself.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { keptVerdict, PROBED_COLUMNS, probedValues, type ProbeResult, type ProbeVerdict } from './probed-columns';

/**
 * SQLite: recordProbes on the connection itself, with statements prepared
 * once and kept. Through the query builder, building and compiling four
 * queries a file was most of the worker's CPU for recording it.
 *
 * Each result is written in order, as one file: insert the video only if
 * its path is new (RETURNING yields a row only for an insert), else update
 * it; then mark the scan's file. Every statement writes, so the first takes
 * the database's one write lock before anything is read, and SQLite lets no
 * other writer in until the commit: nothing can insert or delete the row
 * between the insert and the update.
 */
export class SqliteProbeWriter {
  private readonly insertVideo: BetterSqlite3.Statement;
  private readonly updateVideo: BetterSqlite3.Statement;
  private readonly markProbed: BetterSqlite3.Statement;
  private readonly markFailed: BetterSqlite3.Statement;
  private readonly writeAll: (scanId: string, results: readonly ProbeResult[], now: string) => ProbeVerdict[];

  constructor(database: BetterSqlite3.Database) {
    const names = PROBED_COLUMNS.join(', ');
    this.insertVideo = database.prepare(
      `insert into videos (${names}, created_at) values (${PROBED_COLUMNS.map(() => '?').join(', ')}, ?) on conflict (path) do nothing returning id`,
    );
    // Bound with the same values as the insert, the path last.
    const rest = PROBED_COLUMNS.slice(1);
    this.updateVideo = database.prepare(`update videos set ${rest.map((c) => `${c} = ?`).join(', ')} where path = ?`);
    this.markProbed = database.prepare(
      `update scan_files set status = case when status in ('new', 'updated') then status else ? end, error = null, probed_at = ?
       where scan_id = ? and position = ? returning status`,
    );
    this.markFailed = database.prepare(`update scan_files set status = 'failed', error = ?, probed_at = ? where scan_id = ? and position = ?`);
    // better-sqlite3's transaction: BEGIN (deferred: the first write takes the lock), COMMIT, or ROLLBACK on a throw.
    this.writeAll = database.transaction((scanId: string, results: readonly ProbeResult[], now: string) => results.map((r) => this.writeOne(scanId, r, now)));
  }

  write(scanId: string, results: readonly ProbeResult[], now: string): ProbeVerdict[] {
    return this.writeAll(scanId, results, now);
  }

  private writeOne(scanId: string, { position, outcome }: ProbeResult, now: string): ProbeVerdict {
    if (outcome.kind === 'failed') {
      this.markFailed.run(outcome.reason, now, scanId, position);
      return 'failed';
    }
    const values = probedValues(outcome, now);
    let verdict: 'new' | 'updated' = 'new';
    if (this.insertVideo.get(...values, now) === undefined) {
      this.updateVideo.run(...values.slice(1), values[0]);
      verdict = 'updated';
    }
    const marked = this.markProbed.get(verdict, now, scanId, position) as { status: string } | undefined;
    return keptVerdict(marked?.status, verdict);
  }
}
