/**
 * Sizes libuv's thread pool of a worker or API process; imported first by
 * its entry point, because the pool is sized once, when it starts.
 *
 * Every filesystem call on a media path runs on that pool (media-fs.ts), and
 * a call stuck on a share that stopped answering keeps its thread until the
 * kernel lets go. Each activity (and the API as a whole: roots to scan,
 * webhooks' files) holds at most MEDIA_CALLS_IN_FLIGHT of them;
 * libuv's default of 4 threads would let one hung share stop every other
 * scan's listings and stats, and the process's DNS lookups and zlib jobs.
 * 32 threads leave room for two activities stuck on a dead share with others
 * still running. Not more: on 2 cores a walk of a local disk ran slower with
 * 64 threads than with 4 (more threads woken per round of stats). An
 * operator's own UV_THREADPOOL_SIZE is kept.
 */
import { MEDIA_CALLS_IN_FLIGHT } from './media-fs';

/** Threads of a worker's pool: room for two activities' worth of hung media calls. */
export const WORKER_THREAD_POOL_SIZE = 2 * MEDIA_CALLS_IN_FLIGHT;

process.env.UV_THREADPOOL_SIZE ??= String(WORKER_THREAD_POOL_SIZE);
