/**
 * What every repository of the library shares: the query layer, the dialect,
 * retries of transient failures, and lists cut to a statement's size.
 */
import type { Kysely } from 'kysely';
import type { Database, Dialect } from './database';

/** Rows per INSERT or IN list: well under SQLite's 32,766 bound variables and PostgreSQL's 65,535. */
const CHUNK = 500;

export function chunks<T>(items: T[], size = CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
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

/** How long a write keeps retrying a transient failure before it gives up (and its activity is retried). */
const RETRY_FOR_MS = 30_000;

/**
 * Runs an operation, retrying transient failures with growing pauses. The
 * pauses are asynchronous: unlike SQLite's own busy wait, they never stall
 * the process (a worker must keep heartbeating meanwhile).
 */
export async function retrying<T>(operation: () => Promise<T>): Promise<T> {
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

/** The base of a table's repository: its queries run on `db`, each retried while the failure is transient. */
export abstract class Repository {
  constructor(
    protected readonly db: Kysely<Database>,
    protected readonly dialect: Dialect,
  ) {}

  protected retrying<T>(operation: () => Promise<T>): Promise<T> {
    return retrying(operation);
  }
}
