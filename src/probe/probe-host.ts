/**
 * The probe host: a small process that probes files on behalf of a worker,
 * either in itself with libavformat (libav.ts) or by spawning ffprobe
 * (ffprobe.ts).
 *
 * Why a separate process: a file that crashes libavformat takes down the host,
 * not the worker (isolated.ts restarts it and finds the culprit); a read stuck
 * for good can be ended by killing it; and spawning from a large process
 * copies its page tables: measured here, ChildProcess.spawn took ~11 ms of
 * the Temporal worker's main thread per file, more than ffprobe itself,
 * where a host of a few tens of MB spawns in about a millisecond.
 *
 * When its parent goes away (the IPC channel closes) it stops every probe it
 * runs and exits, so no prober outlives its worker.
 */
import { appendFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pLimit from 'p-limit';
import { createProber } from './ffprobe';
import { HOST_ENV, type HostMessage, type HostRequest, type ProberKind } from './host-protocol';
import { makeFrameThumbnail } from '../thumbnails/libav-frame';
import type { ThumbnailResult } from '../thumbnails/types';
import { probeInRoot, type FileProbeResult } from './contained';
import { createMediaFs, DEFAULT_FS_CALL_TIMEOUT_MS, MediaSlots, type MediaFs } from '../filesystem/media-fs';
import { loadLibav } from './libav';
import type { ProbeResult } from './parse';

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

/** What the host probes with. */
interface Backend {
  probe(file: string, options: { timeoutMs: number; signal: AbortSignal }): Promise<ProbeResult>;
  version(): Promise<string>;
  /** Makes a thumbnail in the host; libav only. */
  thumbnail?(request: Extract<HostRequest, { type: 'thumbnail' }>, signal: AbortSignal): Promise<ThumbnailResult>;
}

function loadBackend(kind: ProberKind, probeLog: string | null): Backend {
  const backend = loadProber(kind);
  if (probeLog === null) return backend;
  return {
    ...backend,
    probe: (file, options) => {
      appendFileSync(probeLog, `${file}\n`);
      return backend.probe(file, options);
    },
  };
}

function loadProber(kind: ProberKind): Backend {
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

function run(
  backend: Backend,
  message: Exclude<HostRequest, { type: 'abort' }>,
  signal: AbortSignal,
  media: (signal: AbortSignal) => MediaFs,
): Promise<ProbeResult | FileProbeResult | ThumbnailResult | string> {
  if (message.type === 'version') return backend.version();
  if (message.type === 'probe') return backend.probe(message.file, { timeoutMs: message.timeoutMs, signal });
  if (message.type === 'probeFile') return probeInRoot((file, options) => backend.probe(file, options), message, signal, media(signal));
  if (backend.thumbnail === undefined) return Promise.reject(new Error('this probe host makes no thumbnails (ffprobe)'));
  return backend.thumbnail(message, signal);
}

function main(): void {
  try {
    os.setPriority(PROBE_NICENESS);
  } catch {
    // Not permitted here: probing simply runs at normal priority.
  }
  const kind: ProberKind = process.env[HOST_ENV.kind] === 'libav' ? 'libav' : 'ffprobe';
  // Set only by tests (isolated.ts passes it on from an option no production caller sets).
  const crashMarker = process.env[HOST_ENV.testCrashMarker] || null;
  const probeLog = process.env[HOST_ENV.testProbeLog] || null;
  let backend: Backend;
  try {
    backend = loadBackend(kind, probeLog);
  } catch (error) {
    send({ type: 'unavailable', kind, message: error instanceof Error ? error.message : String(error) });
    process.disconnect?.();
    process.exitCode = 3;
    return;
  }
  const inFlight = new Map<number, AbortController>();
  // The checks and fingerprints of every file of this host share one limit of
  // calls in flight (the pool is sized for it at spawn, isolated.ts), each
  // call bounded by FS_CALL_TIMEOUT and dropped at once when its probe is aborted.
  const fsCallTimeoutMs = Number(process.env[HOST_ENV.fsCallTimeoutMs]) || DEFAULT_FS_CALL_TIMEOUT_MS;
  const fsSlots = new MediaSlots(Number(process.env[HOST_ENV.fsCalls]) || 4);
  const media = (signal: AbortSignal): MediaFs => createMediaFs({ timeoutMs: fsCallTimeoutMs, slots: fsSlots, signal });
  // The worker sends more probes than run at once (see isolated.ts): they wait
  // here, in order, and each is checked and probed only when its turn comes.
  const probeSlots = pLimit(Number(process.env[HOST_ENV.concurrency] ?? '1'));

  const start = (message: Exclude<HostRequest, { type: 'abort' }>, signal: AbortSignal): Promise<ProbeResult | FileProbeResult | ThumbnailResult | string> => {
    if (message.type !== 'version' && crashMarker !== null && path.basename(message.file).includes(crashMarker)) {
      // The test stand-in for a demuxer bug: the whole process dies at once (as on a segfault), with whatever else is in flight.
      process.kill(process.pid, 'SIGSEGV');
    }
    return run(backend, message, signal, media);
  };

  /** A probe in its turn; one aborted while it waits is answered at once. */
  const inTurn = (message: Extract<HostRequest, { type: 'probe' | 'probeFile' }>, signal: AbortSignal): Promise<ProbeResult | FileProbeResult> =>
    new Promise((resolve, reject) => {
      const leaveLine = (): void => reject(signal.reason);
      signal.addEventListener('abort', leaveLine, { once: true });
      void probeSlots(async () => {
        signal.removeEventListener('abort', leaveLine);
        if (signal.aborted) return;
        await (start(message, signal) as Promise<ProbeResult | FileProbeResult>).then(resolve, reject);
      });
    });

  process.on('message', (message: HostRequest) => {
    if (message.type === 'abort') {
      inFlight.get(message.id)?.abort();
      return;
    }
    const controller = new AbortController();
    inFlight.set(message.id, controller);
    const work = message.type === 'probe' || message.type === 'probeFile' ? inTurn(message, controller.signal) : start(message, controller.signal);
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

main();
