/**
 * Admission of scans under MAX_CONCURRENT_SCANS, decided in one place for
 * every way a scan starts: the API's starts (REST, retry, webhook, a
 * schedule's trigger) through ScanService (service.ts), and scheduled runs through the
 * worker's `awaitScanSlot` activity (src/workflows/scheduled-scan.ts). A
 * root is held by its running guard (its scan running or pending); past the
 * limit of held roots a new root is refused (the API answers 429), or, for a
 * scheduled run, waits for a slot.
 */
import type { Client } from '@temporalio/client';
import { GUARD_WORKFLOW_TYPE } from '../workflows/definitions';
import { ScanError } from './errors';
import { literal } from './guard';

/**
 * How long a guard this process started may stay invisible to visibility
 * queries (Elasticsearch refreshes about every second; SQL visibility is
 * written by a queue a moment after the start). Past it, the count sees it.
 */
const VISIBILITY_LAG_MS = 3_000;

/** How long a count of running guards serves the starts that follow it; below VISIBILITY_LAG_MS (see countHeldRoots). */
const COUNT_TTL_MS = 250;

/** Gives a reserved place back (a start that failed). */
export type ReleaseSlot = () => void;

export class ScanAdmission {
  /** Guards this process started (or admitted) in the last VISIBILITY_LAG_MS, which visibility may not show yet: guard id → ms. */
  private readonly recentStarts = new Map<string, number>();

  /** The last count of running guards (see countHeldRoots). */
  private heldRootsCount: { at: number; value: Promise<number> } | null = null;

  /** Admissions of this process, one at a time: two must not both count the same free place. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly client: Client,
    private readonly maxConcurrentScans: number,
    private readonly taskQueue: string,
  ) {}

  /**
   * A flood of starts must not flood the workers: past MAX_CONCURRENT_SCANS
   * held roots (running guards: scans running or pending) a new root is
   * refused with TOO_MANY_SCANS; a root already held is admitted (its start
   * answers with its job). Each admission counts the guards visibility shows,
   * plus the ones this process admitted too recently to be visible, and
   * reserves its place before the next admission counts. Across several
   * processes the bound is soft by the starts that arrive within
   * visibility's lag. Returns the function that gives the place back.
   */
  reserve(guardId: string): Promise<ReleaseSlot> {
    const turn = this.queue.then(() => this.reserveNow(guardId));
    this.queue = turn.catch(() => undefined);
    return turn;
  }

  /** Forgets a recent admission (its job was cancelled before it started): its place is free at once. */
  forget(guardId: string): void {
    this.recentStarts.delete(guardId);
  }

  private async reserveNow(guardId: string): Promise<ReleaseSlot> {
    const query = `WorkflowType = '${GUARD_WORKFLOW_TYPE}' AND ExecutionStatus = 'Running' AND TaskQueue = ${literal(this.taskQueue)}`;
    const count = await this.countHeldRoots(query);
    const now = Date.now();
    for (const [id, at] of this.recentStarts) if (now - at > VISIBILITY_LAG_MS) this.recentStarts.delete(id);
    // A recent start is counted twice once visible: over-counting is safe, and near the limit the ids are compared.
    if (count + this.recentStarts.size >= this.maxConcurrentScans) {
      const held = new Set<string>();
      for await (const execution of this.client.workflow.list({ query, pageSize: 1000 })) held.add(execution.workflowId);
      if (held.has(guardId)) return () => undefined;
      for (const id of this.recentStarts.keys()) held.add(id);
      if (held.size >= this.maxConcurrentScans) {
        throw new ScanError('TOO_MANY_SCANS', `${held.size} scans are running or pending, the most this service runs at once; try again when one ends`);
      }
    }
    const at = Date.now();
    this.recentStarts.set(guardId, at);
    return () => {
      if (this.recentStarts.get(guardId) === at) this.recentStarts.delete(guardId);
    };
  }

  /**
   * The running guards visibility counts, asked at most every COUNT_TTL_MS
   * and shared by the admissions meanwhile. The admissions since the count
   * was taken are in recentStarts (kept longer than the count), so the sum
   * does not undercount.
   */
  private countHeldRoots(query: string): Promise<number> {
    const now = Date.now();
    if (this.heldRootsCount === null || now - this.heldRootsCount.at > COUNT_TTL_MS) {
      const value = this.client.workflow.count(query).then((result) => result.count);
      const entry = { at: now, value };
      this.heldRootsCount = entry;
      value.catch(() => {
        if (this.heldRootsCount === entry) this.heldRootsCount = null;
      });
    }
    return this.heldRootsCount.value;
  }
}
