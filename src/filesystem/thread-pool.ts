/**
 * Sizes libuv's thread pool of a worker process; imported first by its entry
 * point, because the pool is sized once, when it starts.
 *
 * Every filesystem call on a media path runs on that pool (media-fs.ts), and
 * a call stuck on a share that stopped answering keeps its thread until the
 * kernel lets go. Each activity holds at most MEDIA_CALLS_IN_FLIGHT of them;
 * libuv's default of 4 threads would let one hung share stop every other
 * scan's listings and stats, and the process's DNS lookups and zlib jobs.
 * 64 threads cost little (their stacks are reserved, not used) and leave
 * room for four activities stuck on a dead share with others still running.
 * An operator's own UV_THREADPOOL_SIZE is kept.
 */
import { MEDIA_CALLS_IN_FLIGHT } from './media-fs';

/** Threads of a worker's pool: room for four activities' worth of hung media calls. */
export const WORKER_THREAD_POOL_SIZE = 4 * MEDIA_CALLS_IN_FLIGHT;

process.env.UV_THREADPOOL_SIZE ??= String(WORKER_THREAD_POOL_SIZE);
