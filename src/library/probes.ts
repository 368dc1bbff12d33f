/**
 * Recording probe results: the video upserted by path and the scan's file
 * marked, in one transaction. SQLite writes them with statements prepared
 * once (probes-sqlite.ts), PostgreSQL with one statement for a group of
 * them (probes-postgres.ts).
 */
import type BetterSqlite3 from 'better-sqlite3';
import type { Kysely } from 'kysely';
import type { Database, Dialect } from './database';
import type { ProbeResult, ProbeVerdict } from './probed-columns';
import { distinctRounds, writePostgresProbes } from './probes-postgres';
import { SqliteProbeWriter } from './probes-sqlite';
import { Repository } from './repository';

export type { ProbeResult, ProbeVerdict } from './probed-columns';

export class ProbeRepository extends Repository {
  constructor(
    db: Kysely<Database>,
    dialect: Dialect,
    /** SQLite's connection under `db` (see SqliteProbeWriter); undefined on PostgreSQL. */
    private readonly sqlite: BetterSqlite3.Database | undefined,
  ) {
    super(db, dialect);
  }

  /** recordProbes' statements on SQLite, prepared at its first call (an API process never needs them). */
  private sqliteProbeWriter: SqliteProbeWriter | undefined;

  private get sqliteProbes(): SqliteProbeWriter | undefined {
    if (this.sqlite === undefined) return undefined;
    return (this.sqliteProbeWriter ??= new SqliteProbeWriter(this.sqlite));
  }

  /**
   * Writes files' results in one transaction, each as one file: the video
   * upserted by path, the scan's file record marked; a repeat (a retried
   * batch) keeps the first new/updated verdict. Returns their statuses in
   * the same order. All or none of them are recorded. One commit for a few
   * files instead of one each: a commit rewrites the pages the rows share
   * (the videos' and scan files' indexes), which was most of the cost of
   * recording a file.
   */
  async recordProbes(scanId: string, results: readonly ProbeResult[]): Promise<ProbeVerdict[]> {
    if (results.length === 0) return [];
    return this.retrying(async () => {
      const now = new Date().toISOString();
      if (this.sqliteProbes !== undefined) {
        const writer = this.sqliteProbes;
        // Kysely's one SQLite connection, held (its mutex) so that no
        // transaction of Kysely's is open while the writer runs its own.
        return this.db.connection().execute(async () => writer.write(scanId, results, now));
      }
      return this.db.transaction().execute(async (trx) => {
        const statuses: ProbeVerdict[] = new Array<ProbeVerdict>(results.length);
        for (const round of distinctRounds(results)) {
          const written = await writePostgresProbes(trx, scanId, round.map((i) => results[i]!), now);
          round.forEach((i, k) => (statuses[i] = written[k]!));
        }
        return statuses;
      });
    });
  }
}
