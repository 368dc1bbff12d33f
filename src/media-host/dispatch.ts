/**
 * A media host's request dispatch: the one module that knows both probing
 * (probe/: libavformat in the host, or ffprobe processes it spawns, each file
 * checked inside its scan's root) and pictures (thumbnails/libav-frame.ts).
 * host-main.ts runs it in a small process the worker's pool (pool.ts) forks.
 *
 * Why a separate process: a file that crashes libavformat takes down the host,
 * not the worker (the pool restarts it and finds the culprit); a read stuck
 * for good can be ended by killing it; and spawning from a large process
 * copies its page tables (ChildProcess.spawn cost the Temporal worker's main
 * thread more per file than ffprobe itself; a small host spawns cheaply).
 *
 * When its parent goes away (the IPC channel closes) it stops every probe it
 * runs and exits, so no prober outlives its worker.
 */
import os from 'node:os';
import pLimit from 'p-limit';
import { CheckThreads } from '../filesystem/check-thread';
import { DEFAULT_FS_CALL_TIMEOUT_MS } from '../filesystem/media-fs';
import { checkBeforeProbe, probeInRoot, type CheckedBefore, type FileProbeResult } from '../probe/contained';
import { createProber } from '../probe/ffprobe';
import { loadLibav } from '../probe/libav';
import type { ProbeResult } from '../probe/parse';
import { makeFrameThumbnail } from '../thumbnails/libav-frame';
import type { ThumbnailResult } from '../thumbnails/types';
import { HOST_ENV, type HostMessage, type HostRequest, type ProberKind } from './protocol';

function send(message: HostMessage): void {
  // With a callback, a parent that has gone away is not an unhandled 'error' here: the host just ends.
  if (process.connected) process.send?.(message, undefined, {}, () => undefined);
}

/**
 * Niceness of the host and so of every ffprobe it starts: probing is the bulk
 * work, and on a machine it saturates, the API, the worker's coordination and
 * the Temporal server should get the CPU first when they need it.
 */
const PROBE_NICENESS = 10;

/** What a host probes and makes pictures with. */
export interface HostBackend {
  probe(file: string, options: { timeoutMs: number; signal: AbortSignal }): Promise<ProbeResult>;
  version(): Promise<string>;
  /** Makes a thumbnail in the host; libav only. */
  thumbnail?(request: Extract<HostRequest, { type: 'thumbnail' }>, signal: AbortSignal): Promise<ThumbnailResult>;
}

/** The backend of a host of this kind: libavformat loaded in the host, or ffprobe processes; throws when it cannot load. */
export function loadBackend(kind: ProberKind): HostBackend {
  if (kind === 'libav') {
    const libav = loadLibav();
    return {
      probe: (file, options) => libav.probe(file, options),
      version: () => Promise.resolve(libav.version),
      thumbnail: ({ file, output, seconds, width, timeoutMs }, signal) => makeFrameThumbnail({ file, output, seconds, width, timeoutMs, signal }),
    };
  }
  const concurrency = Number(process.env[HOST_ENV.concurrency] ?? '1');
  return createProber({ ffprobePath: process.env[HOST_ENV.ffprobe] || undefined, concurrency });
}

type Work = Exclude<HostRequest, { type: 'abort' }>;

function run(
  backend: HostBackend,
  message: Work,
  signal: AbortSignal,
  checks: CheckThreads,
  checked: Promise<CheckedBefore> | null,
  onProbed: () => void,
): Promise<FileProbeResult | ThumbnailResult | string> {
  if (message.type === 'version') return backend.version();
  if (message.type === 'probeFile') return probeInRoot((file, options) => backend.probe(file, options), message, signal, checks, checked ?? undefined, onProbed);
  if (backend.thumbnail === undefined) return Promise.reject(new Error('this media host makes no thumbnails (ffprobe)'));
  return backend.thumbnail(message, signal);
}

/**
 * Serves the pool over the IPC channel of this process, with the backend
 * `load` gives for the kind the pool asked for (HOST_ENV); says `ready`, or
 * `unavailable` and exits when it cannot load.
 */
export function serveHost(load: (kind: ProberKind) => HostBackend): void {
  try {
    os.setPriority(PROBE_NICENESS);
  } catch {
    // Not permitted here: probing simply runs at normal priority.
  }
  const kind: ProberKind = process.env[HOST_ENV.kind] === 'libav' ? 'libav' : 'ffprobe';
  let backend: HostBackend;
  try {
    backend = load(kind);
  } catch (error) {
    send({ type: 'unavailable', kind, message: error instanceof Error ? error.message : String(error) });
    process.disconnect?.();
    process.exitCode = 3;
    return;
  }
  const inFlight = new Map<number, AbortController>();
  // The checks and fingerprints of every file of this host share one limit of
  // calls in flight (check threads, one per file it holds), each request
  // bounded by FS_CALL_TIMEOUT and dropped at once when its probe is aborted.
  const fsCallTimeoutMs = Number(process.env[HOST_ENV.fsCallTimeoutMs]) || DEFAULT_FS_CALL_TIMEOUT_MS;
  const checks = new CheckThreads(Number(process.env[HOST_ENV.fsCalls]) || 4, fsCallTimeoutMs);
  // The worker sends more probes and pictures than run at once (see pool.ts):
  // they wait here, in order, and each is probed (or its picture made) only
  // when its turn comes. A file is checked before its probe while it waits,
  // and checked after it once its slot is free again: a slot holds the probe
  // alone. The probes start in the order sent; after a crash the pool takes
  // every file this host held for a suspect (one checked after its probe
  // has let the next file's probe start).
  const slots = {
    probeFile: pLimit(Number(process.env[HOST_ENV.concurrency] ?? '1')),
    thumbnail: pLimit(Number(process.env[HOST_ENV.thumbnailConcurrency] ?? '1')),
  };
  const nothing = (): void => undefined;

  /** A request in its turn; one aborted while it waits is answered at once. */
  const inTurn = (message: Work, signal: AbortSignal): Promise<FileProbeResult | ThumbnailResult | string> =>
    new Promise((resolve, reject) => {
      if (message.type === 'version') {
        run(backend, message, signal, checks, null, nothing).then(resolve, reject);
        return;
      }
      const checked = message.type === 'probeFile' ? checkBeforeProbe(message, signal, checks) : null;
      // Awaited in its turn; one aborted while it waits is never awaited.
      checked?.catch(nothing);
      const leaveLine = (): void => reject(signal.reason);
      signal.addEventListener('abort', leaveLine, { once: true });
      void slots[message.type](async () => {
        signal.removeEventListener('abort', leaveLine);
        if (signal.aborted) return;
        let probed = nothing;
        const slotFree = new Promise<void>((free) => {
          probed = free;
        });
        const work = run(backend, message, signal, checks, checked, probed);
        work.then(resolve, reject);
        // The slot is free once the probe has returned (a picture's: once it is made).
        await Promise.race([slotFree, work.then(nothing, nothing)]);
      });
    });

  process.on('message', (message: HostRequest) => {
    if (message.type === 'abort') {
      inFlight.get(message.id)?.abort();
      return;
    }
    const controller = new AbortController();
    inFlight.set(message.id, controller);
    const work = inTurn(message, controller.signal);
    work
      .then(
        (result) => send({ id: message.id, result }),
        (error: unknown) => {
          const e = error as { name?: string; message?: string; code?: string };
          const name = controller.signal.aborted ? 'AbortError' : (e.name ?? 'Error');
          send({ id: message.id, error: { name, message: e.message ?? String(error), code: e.code } });
        },
      )
      .finally(() => inFlight.delete(message.id));
  });

  process.on('disconnect', () => {
    for (const controller of inFlight.values()) controller.abort();
    // Give the aborted probes a moment to stop (and ffprobe processes to be reaped), then go.
    const wait = setInterval(() => {
      if (inFlight.size === 0) process.exit(0);
    }, 10);
    setTimeout(() => process.exit(0), 2000).unref();
    wait.unref();
  });

  send({ type: 'ready', kind });
}
