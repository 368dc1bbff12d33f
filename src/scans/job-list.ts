/**
 * The jobs list: the library's scans table, newest first, a keyset page at a
 * time (every scan has its row from its start on, whoever started it). An
 * ended scan is its row. What the table cannot know, whether an unfinished
 * scan is pending, running or paused, and its live counts, comes from the
 * live view: one visibility listing of the executions that are live
 * (bounded by MAX_CONCURRENT_SCANS), never a call per scan, taken at most
 * every VIEW_FRESH_MS and shared by the lists meanwhile, so that a page
 * waits for Temporal only when the view is older than VIEW_MAX_AGE_MS.
 *
 * A scan that ended without recording its end (terminated, timed out by
 * Temporal, reset from the Web UI) would read as unfinished forever: one
 * that a view does not show, though it is older than visibility's lag, is
 * read once through Temporal, as GET reads it, and its end recorded in its
 * row, so every later list finds it ended.
 */
import type { Client } from '@temporalio/client';
import type { Library } from '../library/library';
import type { ScanRecord } from '../library/types';
import { GUARD_WORKFLOW_TYPE, SCAN_WORKFLOW_TYPE, SCHEDULED_SCAN_WORKFLOW_TYPE } from '../workflows/definitions';
import { ScanError } from './errors';
import { holderMemoOf, literal, type Execution, type RootGuards } from './guard';
import type { JobBody } from './job';
import type { JobReader } from './job-reader';
import { TERMINAL_STATUSES, type JobStatus } from './job-status';

/**
 * How long a scan just started may stay out of visibility listings (SQL
 * visibility is written by a queue a moment after the start; Elasticsearch
 * refreshes about every second). Younger unfinished scans that are not
 * listed read as pending.
 */
const VISIBILITY_LAG_MS = 3_000;

/** How long a live view serves lists before the next list takes a new one (in the background). */
const VIEW_FRESH_MS = 250;

/** How old a live view may be and still serve a list (the contract's freshness of a second); older, a list waits for a new one. */
const VIEW_MAX_AGE_MS = 1_000;

/** Unfinished scans read at most per list (running, pending, and those whose end is still to be recorded). */
const UNFINISHED_MAX = 1000;

/** Where a page resumes: after this scan in the order (created_at, then id, both descending). */
interface Cursor {
  createdAt: string;
  scanId: string;
}

export interface ListRequest {
  status?: JobStatus;
  limit: number;
  pageToken?: string;
}

/** What is live now: running scans by id, and the holders of pending scans by the id they hold. */
interface Live {
  scans: Map<string, Execution>;
  holders: Map<string, Execution>;
}

/**
 * A live view as lists use it: asked for at `at` (what it may miss is
 * younger than that), in hand from `landedAt` (its age counts from there: a
 * listing slow under load must not leave every list waiting for the next),
 * and the bodies of the scans its settling read.
 */
interface View {
  at: number;
  landedAt: number;
  live: Live;
  settled: Map<string, JobBody>;
}

export class JobList {
  private view: View | null = null;
  private refreshing: Promise<View> | null = null;

  constructor(
    private readonly client: Client,
    private readonly library: Library,
    private readonly reader: JobReader,
    private readonly guards: RootGuards,
    private readonly taskQueue: string,
  ) {}

  /** A page of scans newest first (by created_at), with the status filter of API.md. */
  async list(request: ListRequest): Promise<{ jobs: JobBody[]; nextPageToken: string | null }> {
    const after = request.pageToken === undefined ? undefined : parseToken(request.pageToken);
    const { live, settled } = await this.currentView();
    const bodyOf = async (row: ScanRecord): Promise<JobBody> => settled.get(row.scanId) ?? this.bodyOf(row, live);
    const { status, limit } = request;
    if (status === 'pending' || status === 'running' || status === 'paused') {
      // Unfinished scans are few (see UNFINISHED_MAX): all of them after the cursor, kept by their live status.
      const unfinished = await this.library.listScans({ outcome: 'unfinished', limit: UNFINISHED_MAX, ...(after ? { after } : {}) });
      const matching = (await Promise.all(unfinished.map(bodyOf))).filter((body) => body.status === status);
      const jobs = matching.slice(0, limit);
      const last = jobs[jobs.length - 1];
      return { jobs, nextPageToken: matching.length > limit && last ? tokenOf({ createdAt: last.created_at, scanId: last.job_id }) : null };
    }
    // One more row than the page says whether another page follows.
    const rows = await this.library.listScans({ limit: limit + 1, ...(status !== undefined ? { outcome: status } : {}), ...(after ? { after } : {}) });
    const page = rows.slice(0, limit);
    const jobs = await Promise.all(page.map(bodyOf));
    const last = page[page.length - 1];
    return { jobs, nextPageToken: rows.length > limit && last ? tokenOf({ createdAt: last.createdAt, scanId: last.scanId }) : null };
  }

  /** Forgets the live view: the next list waits for a new one (a cancel, pause or resume through this process). */
  invalidate(): void {
    this.view = null;
  }

  /** A view young enough to serve; one older than VIEW_FRESH_MS is renewed in the background. */
  private async currentView(): Promise<View> {
    const view = this.view;
    const age = view === null ? Infinity : Date.now() - view.landedAt;
    if (view !== null && age < VIEW_FRESH_MS) return view;
    const renewed = this.refresh();
    if (view !== null && age < VIEW_MAX_AGE_MS) {
      renewed.catch(() => undefined);
      return view;
    }
    return renewed;
  }

  /** Takes a new live view (one at a time: lists meanwhile share it) and settles the rows it shows have ended. */
  private refresh(): Promise<View> {
    this.refreshing ??= (async () => {
      const at = Date.now();
      const live = await this.live();
      const settled = await this.settleUnfinished(live, at);
      const view = { at, landedAt: Date.now(), live, settled };
      // A view invalidated meanwhile was taken before the change: kept only for lists that waited for it.
      if (this.view === null || this.view.at < at) this.view = view;
      return view;
    })().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  /** The body of a listed row: from the row when it has ended, else from what is live. */
  private async bodyOf(row: ScanRecord, live: Live): Promise<JobBody> {
    const running = live.scans.get(row.scanId);
    // A scan running again after its recorded end (reset from the Web UI) is running; else its end is what the row says.
    const runsAgain = running !== undefined && row.finishedAt !== null && running.startTime.getTime() > Date.parse(row.finishedAt);
    if (running !== undefined && (row.outcome === null || runsAgain)) return this.reader.scanBody(running, row, { pending: false, query: false });
    if (row.outcome !== null) return this.reader.recordedBody({ ...row, outcome: row.outcome });
    const holder = live.holders.get(row.scanId) ?? null;
    // Held by its guard, or started too recently for visibility to show either.
    return this.reader.pendingBody(holder, 'pending', row);
  }

  /** One listing of the executions that are live now: running scans, and guards and scheduled runs holding a pending scan. */
  private async live(): Promise<Live> {
    const holding = `((WorkflowType = '${GUARD_WORKFLOW_TYPE}' OR WorkflowType = '${SCHEDULED_SCAN_WORKFLOW_TYPE}') AND ScanRoot IS NOT NULL)`;
    const query = `(WorkflowType = '${SCAN_WORKFLOW_TYPE}' OR ${holding}) AND ExecutionStatus = 'Running' AND TaskQueue = ${literal(this.taskQueue)}`;
    const live: Live = { scans: new Map(), holders: new Map() };
    for await (const execution of this.client.workflow.list({ query, pageSize: 1000 })) {
      if (execution.type === SCAN_WORKFLOW_TYPE) {
        live.scans.set(execution.workflowId, execution);
        continue;
      }
      const scanId = holderMemoOf(execution).scanId;
      if (scanId !== undefined) live.holders.set(scanId, execution);
    }
    return live;
  }

  /**
   * Brings the unfinished rows in line with what is live: records the live
   * scans that have no row yet (a scan a scheduled run started, before its
   * first activity records it), and the end of scans that are not live and
   * older than visibility's lag (they ended without recording it), each read
   * once through Temporal. Returns the bodies read, by scan id.
   */
  private async settleUnfinished(live: Live, at: number): Promise<Map<string, JobBody>> {
    const unfinished = await this.library.listScans({ outcome: 'unfinished', limit: UNFINISHED_MAX });
    const known = new Set(unfinished.map((row) => row.scanId));
    for (const [scanId, holder] of live.holders) if (!known.has(scanId)) await this.guards.record(scanId, holderMemoOf(holder));
    for (const [scanId, scan] of live.scans) if (!known.has(scanId)) await this.guards.record(scanId, { ...holderMemoOf(scan), scanId });
    const stale = unfinished.filter(
      (row) => !live.scans.has(row.scanId) && !live.holders.has(row.scanId) && at - Date.parse(row.createdAt) > VISIBILITY_LAG_MS,
    );
    const bodies = new Map<string, JobBody>();
    for (const row of stale) {
      // Unreadable now (Temporal away): listed as pending this time, tried again by the next list.
      const body = await this.reader.read(row.scanId).catch(() => null);
      if (body === null) continue;
      bodies.set(row.scanId, body);
      if (!TERMINAL_STATUSES.has(body.status)) continue;
      await this.library.finishScan(row.scanId, {
        outcome: body.status,
        counts: body.counts,
        error: body.error,
        ...(body.temporal.run_id !== '' ? { runId: body.temporal.run_id } : {}),
        ...(body.finished_at !== null ? { finishedAt: body.finished_at } : {}),
      });
    }
    return bodies;
  }
}

/** A page token: the cursor, base64url JSON. */
function tokenOf(cursor: Cursor): string {
  return Buffer.from(JSON.stringify({ cursor: [cursor.createdAt, cursor.scanId] })).toString('base64url');
}

/**
 * The cursor of a page token. Tokens of earlier versions carry created_at in
 * ms (and per-listing places, no longer needed): read as the same point.
 */
function parseToken(token: string): Cursor {
  try {
    const value = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { cursor?: unknown };
    const cursor = value.cursor;
    if (Array.isArray(cursor) && cursor.length === 2 && typeof cursor[1] === 'string') {
      const at = cursor[0];
      const ms = typeof at === 'number' ? at : typeof at === 'string' ? Date.parse(at) : NaN;
      if (Number.isFinite(ms) && Math.abs(ms) < 8.64e15) return { createdAt: new Date(ms).toISOString(), scanId: cursor[1] };
    }
  } catch {
    // Falls through to the error below.
  }
  throw new ScanError('INVALID_PAGE_TOKEN', 'page_token is not valid');
}
