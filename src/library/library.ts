/**
 * The library: videos keyed by absolute path, scans, and every scan's file
 * records. One query layer (Kysely) for SQLite and PostgreSQL, but for the
 * hot path of recording probe results on SQLite (SqliteProbeWriter).
 */
import path from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { sql, type Kysely, type Selectable, type SelectQueryBuilder, type Transaction } from 'kysely';
import { MAX_SUMMARY_ERRORS, type FileError, type ScanCounts } from '../scan/types';
import { openDatabase, type Database, type Dialect, type MigrationReport, type VideosTable } from './database';
import type { ListVideosOptions, NewScanFile, Page, ProbeOutcome, ScanFileRow, ScanRecord, VanishedVideo, Video } from './types';

/** Rows per INSERT or IN list: well under SQLite's 32,766 bound variables and PostgreSQL's 65,535. */
const CHUNK = 500;

function chunks<T>(items: T[], size = CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function toVideo(row: Selectable<VideosTable>): Video {
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

/**
 * Failures that pass: a SQLite file another writer holds locked, a PostgreSQL
 * connection the server dropped (restart, failover, pg_terminate_backend).
 */
function isTransient(error: unknown): boolean {
  const e = error as { code?: string; message?: string };
  return (
    e.code === 'SQLITE_BUSY' ||
    e.code === 'SQLITE_LOCKED' ||
    e.code === '57P01' || // admin_shutdown
    e.code === '57P02' || // crash_shutdown
    e.code === '57P03' || // cannot_connect_now
    e.code === '08006' || // connection_failure
    e.code === '08003' || // connection_does_not_exist
    e.code === 'ECONNRESET' ||
    e.code === 'ECONNREFUSED' ||
    /Connection terminated|connection (was )?closed|not queryable|terminating connection/i.test(e.message ?? '')
  );
}

/** A video's path, size and mtime, as knownFiles reads them. */
type KnownRow = Pick<VideosTable, 'path' | 'file_size' | 'mtime_ms'>;

/** File records deleted per statement when pruning: a few ms of SQLite's write lock each. */
const PRUNE_CHUNK = 5000;

/** How long a write keeps retrying a transient failure before it gives up (and its activity is retried). */
const RETRY_FOR_MS = 30_000;

type ProbeVerdict = 'new' | 'updated' | 'failed';
type ProbeResult = { position: number; outcome: ProbeOutcome };

/**
 * The columns recordProbes writes to a probed file's video, insert and update
 * alike (created_at is added on insert only; id and moved_from are left as
 * they are), and their values for one probed file.
 */
const PROBED_COLUMNS = [
  'path',
  'filename',
  'file_size',
  'mtime_ms',
  'duration_seconds',
  'duration_frames',
  'frame_rate_numerator',
  'frame_rate_denominator',
  'width',
  'height',
  'video_codec',
  'audio_codec',
  'container',
  'bit_rate',
  'streams_video',
  'streams_audio',
  'streams_subtitle',
  'streams_data',
  'status',
  'missing_since',
  'fingerprint',
  'thumbnail_at',
  'thumbnail_error',
  'probed_at',
  'updated_at',
] as const;

function probedValues(outcome: Extract<ProbeOutcome, { kind: 'probed' }>, now: string): unknown[] {
  const { file, metadata: m } = outcome;
  return [
    file.path,
    path.basename(file.path),
    file.size,
    file.mtimeMs,
    m.durationSeconds,
    m.durationFrames,
    m.frameRateNumerator,
    m.frameRateDenominator,
    m.width,
    m.height,
    m.videoCodec,
    m.audioCodec,
    m.container,
    m.bitRate,
    m.streamCounts.video,
    m.streamCounts.audio,
    m.streamCounts.subtitle,
    m.streamCounts.data,
    'present',
    null,
    file.fingerprint ?? null,
    // The file is new or changed: its picture (if any) is stale until the scan's thumbnail phase remakes it.
    null,
    null,
    now,
    now,
  ];
}

/** A scan file's status after a probed result: a repeat (a retried batch) keeps the first verdict. */
function keptVerdict(marked: unknown, verdict: 'new' | 'updated'): 'new' | 'updated' {
  return marked === 'new' || marked === 'updated' ? marked : verdict;
}

/**
 * Splits a group of results into rounds, in order, none of which holds a
 * path or a position twice: a round is written with one statement per
 * table, and results that touch the same row must be written one after the
 * other, as they come. A group of distinct files is one round.
 */
function distinctRounds(results: readonly ProbeResult[]): number[][] {
  const rounds: number[][] = [];
  const pathRound = new Map<string, number>();
  const positionRound = new Map<number, number>();
  results.forEach((r, i) => {
    const filePath = r.outcome.kind === 'probed' ? r.outcome.file.path : undefined;
    const after = Math.max(positionRound.get(r.position) ?? -1, filePath === undefined ? -1 : (pathRound.get(filePath) ?? -1));
    const round = after + 1;
    (rounds[round] ??= []).push(i);
    positionRound.set(r.position, round);
    if (filePath !== undefined) pathRound.set(filePath, round);
  });
  return rounds;
}

/** PostgreSQL types of PROBED_COLUMNS (see the migrations). */
const POSTGRES_TYPES: Record<(typeof PROBED_COLUMNS)[number], string> = {
  path: 'text',
  filename: 'text',
  file_size: 'bigint',
  mtime_ms: 'double precision',
  duration_seconds: 'double precision',
  duration_frames: 'bigint',
  frame_rate_numerator: 'bigint',
  frame_rate_denominator: 'bigint',
  width: 'integer',
  height: 'integer',
  video_codec: 'text',
  audio_codec: 'text',
  container: 'text',
  bit_rate: 'bigint',
  streams_video: 'integer',
  streams_audio: 'integer',
  streams_subtitle: 'integer',
  streams_data: 'integer',
  status: 'text',
  missing_since: 'text',
  fingerprint: 'text',
  thumbnail_at: 'text',
  thumbnail_error: 'text',
  probed_at: 'text',
  updated_at: 'text',
};

/** The parts of writePostgresProbes' statement that depend on PROBED_COLUMNS only, built once. */
const POSTGRES_PROBED = {
  columns: sql.join(PROBED_COLUMNS.map((c) => sql.ref(c))),
  // Each value as its column's type, from a probed result's row: [position, null, ...values].
  values: sql.join(PROBED_COLUMNS.map((c, i) => sql`(r->>${sql.lit(i + 2)})::${sql.raw(POSTGRES_TYPES[c])}`)),
  updates: sql.join(PROBED_COLUMNS.filter((c) => c !== 'path').map((c) => sql`${sql.ref(c)} = excluded.${sql.ref(c)}`)),
};

/**
 * PostgreSQL: a round of results (distinct paths and positions) in one
 * statement, one round trip: the videos upserted, the scan files marked,
 * and per result its verdict and its file's status as marked.
 *
 * The verdict comes from the write itself, not from timestamps (two writes
 * in the same millisecond, or workers with skewed clocks, would make that
 * guess wrong): the row version an INSERT creates has no xmax; the one ON
 * CONFLICT DO UPDATE creates carries the updating transaction's id (the row
 * was locked first), the well-known way to tell the two apart.
 */
async function writePostgresProbes(trx: Transaction<Database>, scanId: string, results: readonly ProbeResult[], now: string): Promise<ProbeVerdict[]> {
  // A row per result: [position, null, ...values] probed, [position, reason] failed.
  const rows = JSON.stringify(
    results.map(({ position, outcome }) =>
      outcome.kind === 'probed' ? [position, null, ...probedValues(outcome, now)] : [position, outcome.reason],
    ),
  );
  const { columns, values, updates } = POSTGRES_PROBED;
  const { rows: written } = await sql<{ position: number; verdict: ProbeVerdict; marked: string | null }>`
    with input as (
      select n - 1 as i, (r->>0)::integer as position, r->>1 as reason, json_array_length(r) > 2 as probed, r
      from json_array_elements(${rows}::json) with ordinality as a(r, n)
    ),
    written as (
      insert into videos (${columns}, created_at)
      select ${values}, ${now} from input where probed
      on conflict (path) do update set ${updates}
      returning path, (xmax = 0) as inserted
    ),
    verdicts as (
      select input.i, input.position, input.reason,
        case when not input.probed then 'failed' when written.inserted then 'new' else 'updated' end as verdict
      from input left join written on input.probed and written.path = input.r->>2
    ),
    marked as (
      update scan_files as f set
        status = case when v.verdict = 'failed' then 'failed' when f.status in ('new', 'updated') then f.status else v.verdict end,
        error = v.reason,
        probed_at = ${now}
      from verdicts as v
      -- The positions also as a list: the rows are looked up by key, whatever
      -- the planner believes of the scan's row count (stale statistics right
      -- after discovery made it walk all of the scan's files).
      where f.scan_id = ${scanId} and f.position = any(${results.map((r) => r.position)}::integer[]) and f.position = v.position
      returning f.position, f.status
    )
    select v.position, v.verdict, m.status as marked from verdicts as v left join marked as m on m.position = v.position order by v.i`.execute(trx);
  return written.map((w) => (w.verdict === 'failed' ? 'failed' : keptVerdict(w.marked, w.verdict)));
}


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
class SqliteProbeWriter {
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

export class Library {
  private constructor(
    private readonly db: Kysely<Database>,
    readonly dialect: Dialect,
    /** What the open did to the schema: migrations applied, or unknown ones a newer version recorded. */
    readonly migrations: MigrationReport,
    /** SQLite's connection under `db` (see SqliteProbeWriter); undefined on PostgreSQL. */
    private readonly sqlite: BetterSqlite3.Database | undefined,
  ) {}

  /** recordProbes' statements on SQLite, prepared at its first call (an API process never needs them). */
  private sqliteProbeWriter: SqliteProbeWriter | undefined;

  private get sqliteProbes(): SqliteProbeWriter | undefined {
    if (this.sqlite === undefined) return undefined;
    return (this.sqliteProbeWriter ??= new SqliteProbeWriter(this.sqlite));
  }

  /**
   * Runs an operation, retrying transient failures with growing pauses. The
   * pauses are asynchronous: unlike SQLite's own busy wait, they never stall
   * the process (a worker must keep heartbeating meanwhile).
   */
  private async retrying<T>(operation: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + RETRY_FOR_MS;
    for (let pause = 20; ; pause = Math.min(pause * 2, 1000)) {
      try {
        return await operation();
      } catch (error) {
        if (!isTransient(error) || Date.now() + pause > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, pause));
      }
    }
  }

  /** Opens (and migrates) the library at a `sqlite:` or `postgres://` URL. */
  static async open(databaseUrl: string): Promise<Library> {
    const { db, dialect, migrations, sqlite } = await openDatabase(databaseUrl);
    return new Library(db, dialect, migrations, sqlite);
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }

  /** Throws when the database does not answer. */
  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }

  async createScan(s: { scanId: string; root: string; recursive: boolean; force: boolean; retryOf: string | null }): Promise<void> {
    return this.retrying(async () => {
      await this.db
        .insertInto('scans')
        .values({
          scan_id: s.scanId,
          root: s.root,
          recursive: s.recursive ? 1 : 0,
          force: s.force ? 1 : 0,
          retry_of: s.retryOf,
          outcome: null,
          counts: null,
          error: null,
          created_at: new Date().toISOString(),
          finished_at: null,
          files_pruned_at: null,
        })
        .onConflict((oc) => oc.column('scan_id').doNothing())
        .execute();
    });
  }

  async getScan(scanId: string): Promise<ScanRecord | undefined> {
    return this.retrying(async () => {
      const row = await this.db.selectFrom('scans').selectAll().where('scan_id', '=', scanId).executeTakeFirst();
      if (!row) return undefined;
      return {
        scanId: row.scan_id,
        root: row.root,
        recursive: Boolean(row.recursive),
        force: Boolean(row.force),
        retryOf: row.retry_of,
        outcome: row.outcome,
        counts: row.counts ? (JSON.parse(row.counts) as Record<string, number>) : null,
        error: row.error,
        createdAt: row.created_at,
        finishedAt: row.finished_at,
        filesPrunedAt: row.files_pruned_at ?? null,
      };
    });
  }

  async finishScan(scanId: string, end: { outcome: string; counts: Partial<ScanCounts>; error: string | null }): Promise<void> {
    return this.retrying(async () => {
      await this.db
        .updateTable('scans')
        .set({ outcome: end.outcome, counts: JSON.stringify(end.counts), error: end.error, finished_at: new Date().toISOString() })
        .where('scan_id', '=', scanId)
        .execute();
    });
  }

  /** Forgets a scan's file records (a retried discovery starts over). */
  async resetScanFiles(scanId: string): Promise<void> {
    return this.retrying(async () => {
      await this.db.deleteFrom('scan_files').where('scan_id', '=', scanId).execute();
    });
  }

  /**
   * Deletes the file records of scans that finished before `finishedBefore`
   * (SCAN_RECORD_RETENTION ago), and marks those scans as pruned. Kept: the
   * records of scans still running (no finished_at) and of a scan whose retry
   * is still running (the retry reads them). A pruned scan keeps its row and
   * its counts; a retry of it has nothing to go on (the API answers
   * NOTHING_TO_RETRY). Deletes in chunks, each its own statement, so a large
   * scan never holds SQLite's write lock for long. Returns the rows removed.
   */
  async pruneScanRecords(finishedBefore: Date): Promise<{ scans: number; rows: number }> {
    const cutoff = finishedBefore.toISOString();
    const candidates = await this.retrying(async () =>
      this.db
        .selectFrom('scans as s')
        .select('s.scan_id')
        // finished_at is ISO-8601 UTC from toISOString(): text order is time order.
        .where('s.finished_at', '<', cutoff)
        .where(({ exists, selectFrom }) => exists(selectFrom('scan_files as f').select('f.scan_id').whereRef('f.scan_id', '=', 's.scan_id')))
        .where(({ not, exists, selectFrom }) =>
          not(exists(selectFrom('scans as r').select('r.scan_id').whereRef('r.retry_of', '=', 's.scan_id').where('r.finished_at', 'is', null))),
        )
        .orderBy('s.finished_at')
        .execute(),
    );
    let rows = 0;
    for (const { scan_id: scanId } of candidates) {
      // Marked first: from now on a retry of this scan is refused rather than
      // started on a partial list. A crash midway leaves rows that the next
      // run finds (the scan still has records) and finishes.
      await this.retrying(async () => {
        await this.db
          .updateTable('scans')
          .set((eb) => ({ files_pruned_at: eb.fn.coalesce('files_pruned_at', eb.val(new Date().toISOString())) }))
          .where('scan_id', '=', scanId)
          .execute();
      });
      const last = await this.retrying(async () =>
        this.db.selectFrom('scan_files').select((eb) => eb.fn.max('position').as('p')).where('scan_id', '=', scanId).executeTakeFirst(),
      );
      const lastPosition = Number(last?.p ?? -1);
      for (let from = 0; from <= lastPosition; from += PRUNE_CHUNK) {
        const result = await this.retrying(async () =>
          this.db
            .deleteFrom('scan_files')
            .where('scan_id', '=', scanId)
            .where('position', '<', from + PRUNE_CHUNK)
            .executeTakeFirst(),
        );
        rows += Number(result.numDeletedRows);
      }
    }
    return { scans: candidates.length, rows };
  }

  /**
   * Records discovered files; idempotent on (scan, position). The rows go in
   * as one JSON parameter per statement, unpacked by the database: a rescan
   * writes a row for every file, and binding nine parameters a row through
   * the query builder was most of its cost (measured at 5,000 files: 66-116
   * ms of CPU that way).
   */
  async addScanFiles(scanId: string, files: NewScanFile[]): Promise<void> {
    return this.retrying(async () => {
      if (files.length === 0) return;
      await this.db.transaction().execute(async (trx) => {
        for (const part of chunks(files, 1000)) {
          const rows = JSON.stringify(part.map((f) => [f.position, f.probeIndex, f.path, f.size, f.mtimeMs, f.status, f.error ?? null]));
          const columns = sql`insert into scan_files (scan_id, position, probe_index, path, size, mtime_ms, status, error, probed_at)`;
          if (this.dialect === 'postgres') {
            await sql`${columns}
              select ${scanId}, (r->>0)::integer, (r->>1)::integer, r->>2, (r->>3)::bigint, (r->>4)::double precision, r->>5, r->>6, null
              from json_array_elements(${rows}::json) as r
              on conflict (scan_id, position) do nothing`.execute(trx);
          } else {
            // "where true": SQLite's parser otherwise takes ON CONFLICT for a join's ON.
            await sql`${columns}
              select ${scanId}, r.value->>0, r.value->>1, r.value->>2, r.value->>3, r.value->>4, r.value->>5, r.value->>6, null
              from json_each(${rows}) as r where true
              on conflict (scan_id, position) do nothing`.execute(trx);
          }
        }
      });
    });
  }

  async countScanFiles(scanId: string): Promise<{ discovered: number; toProbe: number; skipped: number }> {
    return this.retrying(async () => {
      const rows = await this.db
        .selectFrom('scan_files')
        .select(['status', (eb) => eb.fn.countAll<number>().as('n')])
        .where('scan_id', '=', scanId)
        .groupBy('status')
        .execute();
      let discovered = 0;
      let skipped = 0;
      for (const row of rows) {
        // A missing row stands for a known video the scan did not find: no discovered file.
        if (row.status !== 'missing') discovered += Number(row.n);
        if (row.status === 'skipped') skipped += Number(row.n);
      }
      const probeable = await this.db
        .selectFrom('scan_files')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('scan_id', '=', scanId)
        .where('probe_index', 'is not', null)
        .where('status', '!=', 'skipped')
        .executeTakeFirst();
      return { discovered, toProbe: Number(probeable?.n ?? 0), skipped };
    });
  }

  /** Files of a scan whose record moved to them, and videos it marked missing. */
  async lifecycleCounts(scanId: string): Promise<{ moved: number; missing: number }> {
    return this.retrying(async () => {
      const rows = await this.db
        .selectFrom('scan_files')
        .select(['status', (eb) => eb.fn.countAll<number>().as('n')])
        .where('scan_id', '=', scanId)
        .where('status', 'in', ['moved', 'missing'])
        .groupBy('status')
        .execute();
      const by = (s: string): number => Number(rows.find((r) => r.status === s)?.n ?? 0);
      return { moved: by('moved'), missing: by('missing') };
    });
  }

  /**
   * Present videos under `root` (below it at any depth) whose path the scan
   * did not record: their files were not found. One statement, each known
   * path looked up in the scan's files by index; a rescan of an unchanged
   * library returns nothing.
   */
  async vanishedVideos(scanId: string, root: string): Promise<VanishedVideo[]> {
    const prefix = root.endsWith('/') ? root : `${root}/`;
    // substr counts characters (code points) in both databases.
    const length = [...prefix].length;
    return this.retrying(async () => {
      const rows = await this.db
        .selectFrom('videos as v')
        .select(['v.id', 'v.path', 'v.file_size', 'v.fingerprint'])
        .where('v.status', '=', 'present')
        .where(sql<string>`substr(${sql.ref('v.path')}, 1, ${length})`, '=', prefix)
        .where(({ not, exists, selectFrom }) =>
          not(exists(selectFrom('scan_files as f').select('f.position').where('f.scan_id', '=', scanId).whereRef('f.path', '=', 'v.path'))),
        )
        .orderBy('v.path')
        .execute();
      return rows.map((r) => ({ id: Number(r.id), path: r.path, size: Number(r.file_size), fingerprint: r.fingerprint ?? null }));
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
        for (const r of rows) {
          out.push({
            scanId: r.scan_id,
            position: Number(r.position),
            probeIndex: r.probe_index === null ? null : Number(r.probe_index),
            path: r.path,
            size: Number(r.size),
            mtimeMs: Number(r.mtime_ms),
            status: r.status as ScanFileRow['status'],
            error: r.error,
          });
        }
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

  /** Paths of a scan's files that failed or were never reached, in discovery order. */
  async unfinishedFiles(scanId: string): Promise<string[]> {
    return this.retrying(async () => {
      const rows = await this.db
        .selectFrom('scan_files')
        .select('path')
        .where('scan_id', '=', scanId)
        .where('status', 'in', ['pending', 'failed'])
        .orderBy('position')
        .execute();
      return rows.map((r) => r.path);
    });
  }

  async getProbeFiles(scanId: string, fromIndex: number, toIndex: number): Promise<ScanFileRow[]> {
    return this.retrying(async () => {
      const rows = await this.db
        .selectFrom('scan_files')
        .selectAll()
        .where('scan_id', '=', scanId)
        .where('probe_index', '>=', fromIndex)
        .where('probe_index', '<', toIndex)
        .orderBy('probe_index')
        .execute();
      return rows.map((r) => ({
        scanId: r.scan_id,
        position: Number(r.position),
        probeIndex: r.probe_index === null ? null : Number(r.probe_index),
        path: r.path,
        size: Number(r.size),
        mtimeMs: Number(r.mtime_ms),
        status: r.status as ScanFileRow['status'],
        error: r.error,
      }));
    });
  }

  /**
   * Writes one file's result in one transaction: the video upserted by path,
   * the scan's file record marked. A repeat (a retried batch) keeps the first
   * new/updated verdict.
   */
  async recordProbe(scanId: string, position: number, outcome: ProbeOutcome): Promise<'new' | 'updated' | 'failed'> {
    const [status] = await this.recordProbes(scanId, [{ position, outcome }]);
    return status as 'new' | 'updated' | 'failed';
  }

  /**
   * Writes several files' results (as recordProbe does each) in one
   * transaction, and returns their statuses in the same order. All or none
   * of them are recorded. One commit for a few files instead of one each:
   * a commit rewrites the pages the rows share (the videos' and scan files'
   * indexes), which was most of the cost of recording a file. SQLite writes
   * them with statements prepared once (SqliteProbeWriter); PostgreSQL with
   * one statement for the group (writePostgresProbes).
   */
  async recordProbes(scanId: string, results: readonly { position: number; outcome: ProbeOutcome }[]): Promise<ProbeVerdict[]> {
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

  /** Counts by outcome over probe indexes [from, to), with up to MAX_SUMMARY_ERRORS failures. */
  async batchSummary(
    scanId: string,
    fromIndex: number,
    toIndex: number,
  ): Promise<{ probed: number; new: number; updated: number; failed: number; errors: FileError[] }> {
    return this.retrying(async () => {
      return this.summarise(
        this.db.selectFrom('scan_files').where('scan_id', '=', scanId).where('probe_index', '>=', fromIndex).where('probe_index', '<', toIndex),
      );
    });
  }

  /** A scan's counts and first errors, recomputed from its per-file records. */
  async scanTotals(scanId: string): Promise<{ counts: ScanCounts; errors: FileError[] }> {
    const files = await this.countScanFiles(scanId);
    const probed = await this.scanSummary(scanId);
    const lifecycle = await this.lifecycleCounts(scanId);
    const counts = {
      discovered: files.discovered,
      probed: probed.probed,
      new: probed.new,
      updated: probed.updated,
      skipped: files.skipped,
      failed: probed.failed,
      moved: lifecycle.moved,
      missing: lifecycle.missing,
      thumbnails: await this.scanThumbnailCount(scanId),
    };
    return { counts, errors: probed.errors };
  }

  /** The same counts over the whole scan. */
  async scanSummary(scanId: string): Promise<{ probed: number; new: number; updated: number; failed: number; errors: FileError[] }> {
    return this.retrying(async () => {
      return this.summarise(this.db.selectFrom('scan_files').where('scan_id', '=', scanId));
    });
  }

  private async summarise(
    range: SelectQueryBuilder<Database, 'scan_files', object>,
  ): Promise<{ probed: number; new: number; updated: number; failed: number; errors: FileError[] }> {
    const rows = await range.select(['status', (eb) => eb.fn.countAll<number>().as('n')]).groupBy('status').execute();
    const by = (s: string): number => Number(rows.find((r) => r.status === s)?.n ?? 0);
    const errors = await range
      .select(['path', 'error'])
      .where('status', '=', 'failed')
      .orderBy('probe_index')
      .limit(MAX_SUMMARY_ERRORS)
      .execute();
    return {
      probed: by('new') + by('updated') + by('failed'),
      new: by('new'),
      updated: by('updated'),
      failed: by('failed'),
      errors: errors.map((e) => ({ path: e.path, error: e.error ?? 'unknown' })),
    };
  }

  async scanErrors(scanId: string, limit: number, offset: number): Promise<{ errors: FileError[]; total: number }> {
    return this.retrying(async () => {
      const failed = this.db.selectFrom('scan_files').where('scan_id', '=', scanId).where('status', '=', 'failed');
      const total = await failed.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst();
      const rows = await failed.select(['path', 'error']).orderBy('position').limit(limit).offset(offset).execute();
      return { errors: rows.map((e) => ({ path: e.path, error: e.error ?? 'unknown' })), total: Number(total?.n ?? 0) };
    });
  }

  async getVideo(id: number): Promise<Video | undefined> {
    return this.retrying(async () => {
      const row = await this.db.selectFrom('videos').selectAll().where('id', '=', id).executeTakeFirst();
      return row ? toVideo(row) : undefined;
    });
  }

  async getVideoByPath(file: string): Promise<Video | undefined> {
    return this.retrying(async () => {
      const row = await this.db.selectFrom('videos').selectAll().where('path', '=', file).executeTakeFirst();
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
   * The videos a scan's thumbnail batch covers: files at probe indexes
   * [from, to) that the scan recorded new or updated and that are still
   * present. `done`: their picture was made, or its failure recorded, since
   * the probe (a probe clears both), so a retried batch skips them.
   */
  async thumbnailTargets(
    scanId: string,
    fromIndex: number,
    toIndex: number,
  ): Promise<{ probeIndex: number; videoId: number; path: string; durationSeconds: number | null; done: boolean }[]> {
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

  /** Why a video has no picture (null: it has one, or none was tried yet). */
  async thumbnailError(videoId: number): Promise<string | null> {
    return this.retrying(async () => {
      const row = await this.db.selectFrom('videos').select('thumbnail_error').where('id', '=', videoId).executeTakeFirst();
      return row?.thumbnail_error ?? null;
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

  /** Deletes the record only, never the file. */
  async deleteVideo(id: number): Promise<boolean> {
    return this.retrying(async () => {
      const result = await this.db.deleteFrom('videos').where('id', '=', id).executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    });
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
        // substr counts characters (code points) in both databases, as in vanishedVideos.
        query = query.where(sql<string>`substr(${sql.ref('path')}, 1, ${[...prefix].length})`, '=', prefix);
      }
      const result = await query.executeTakeFirst();
      return Number(result.numUpdatedRows);
    });
  }
}
