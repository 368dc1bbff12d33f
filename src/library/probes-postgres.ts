/**
 * PostgreSQL's writer of probe results: a round of them in one statement.
 */
import { sql, type Transaction } from 'kysely';
import type { Database } from './database';
import { keptVerdict, PROBED_COLUMNS, probedValues, type ProbeResult, type ProbeVerdict } from './probed-columns';

/**
 * Splits a group of results into rounds, in order, none of which holds a
 * path or a position twice: a round is written with one statement per
 * table, and results that touch the same row must be written one after the
 * other, as they come. A group of distinct files is one round.
 */
export function distinctRounds(results: readonly ProbeResult[]): number[][] {
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
export async function writePostgresProbes(trx: Transaction<Database>, scanId: string, results: readonly ProbeResult[], now: string): Promise<ProbeVerdict[]> {
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
