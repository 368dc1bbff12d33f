/**
 * A prober whose probing happens in media host processes (dispatch.ts),
 * never in the worker: with libavformat inside the host (`kind: 'libav'`),
 * or with ffprobe processes the host spawns (`kind: 'ffprobe'`). Per-file
 * reasons resolve, machine problems and aborts reject.
 *
 * The worker side keeps the guarantees that a host cannot keep itself:
 * - at most `concurrency` files in flight across all hosts, first come first served;
 * - a host that does not answer within a probe's timeout plus a grace (a read
 *   stuck in the kernel ignores libavformat's interrupt) is killed and
 *   restarted: that file is `timeout`, the others it held are sent again;
 * - a host that crashes (a signal such as SIGSEGV or SIGABRT, or a non-zero
 *   exit) takes only its culprit down: every file it held is probed again, each
 *   alone on a host, and a file that crashes a host on its own is recorded as
 *   `probe_failed: prober crashed`, once, never retried again;
 * - a host that dies otherwise (killed from outside, its channel broken) fails
 *   the probes it held as transient (Temporal retries them) and is restarted
 *   on the next probe;
 * - a host killed by the pool is done with at once: what it held is settled
 *   and its slot is free for a fresh host, without waiting for its 'exit'. A
 *   process blocked in the kernel (a read on a dead hard NFS mount, a FUSE
 *   request never answered) ignores SIGKILL until that call returns: one
 *   that has not exited soon after is abandoned, logged with its pid and
 *   counted (scanner_probe_hosts_abandoned_total), and never waited on;
 * - a cancelled probe's caller hears of it within ABORT_ANSWER_MS, whether or
 *   not its host answers; the host keeps its slot until it answers or is killed.
 *
 * Each file comes as `probeFile` (probe/contained.ts): the host checks it
 * inside the scan's root right before and after its probe, the moment the
 * file's turn at the prober comes. libav hosts also make thumbnails under
 * the same guarantees, with their own limit (THUMBNAIL_CONCURRENCY making,
 * spread over the first hosts, and as many waiting on them), and after the probes waiting:
 * the library fills first and pictures follow. Each host's life is the state
 * machine of host.ts.
 */
import path from 'node:path';
import { Counter } from 'prom-client';
import { registry } from '../metrics';
import { DEFAULT_FS_CALL_TIMEOUT_MS } from '../filesystem/media-fs';
import { mediaChildEnv } from '../media/child-env';
import type { FileProber, FileProbeResult } from '../probe/contained';
import { defaultFfprobePath, type ProberOptions } from '../probe/ffprobe';
import type { FrameMaker, ThumbnailResult } from '../thumbnails/types';
import { MediaHost, type KillCause } from './host';
import { HOST_ENV, type HostMessage, type HostRequest, type ProberKind } from './protocol';
import { abortError, CRASHED, hostGone, isCrash, laneOf, TIMED_OUT, type Job, type JobResult, type Lane, type Request } from './requests';

export { PROBER_CRASHED, THUMBNAILER_CRASHED } from './requests';

/** The program a host runs: a module that calls serveHost (dispatch.ts), with its arguments. */
export interface HostEntry {
  module: string;
  args?: readonly string[];
}

/** Options of createIsolatedProber. */
export interface IsolatedProberOptions extends ProberOptions {
  /** What the hosts probe with; ffprobe when absent. */
  kind?: ProberKind;
  /** Host processes; by default one for ffprobe, and one per four files in flight for libav. */
  hosts?: number;
  /** How long past a probe's timeout, or past an abort, a host may take to answer before it is killed. */
  graceMs?: number;
  /** Thumbnails made at once across the hosts (libav only), on top of `concurrency` probes; 1 when absent. */
  thumbnailConcurrency?: number;
  /** FS_CALL_TIMEOUT: the deadline of a host's checks and fingerprint reads on media paths; 30 s when absent. */
  fsCallTimeoutMs?: number;
  /** The hosts' program; host-main.ts when absent. */
  host?: HostEntry;
  /** Where a host abandoned after SIGKILL is reported. */
  logger?: { warn(fields: Record<string, unknown>, message: string): void };
}

/** The prober of a worker: files probed, and pictures made, in its media hosts. */
export interface IsolatedProber extends FileProber, FrameMaker {
  readonly kind: ProberKind;
  /** The ffprobe binary the hosts run, or `node-av`. */
  readonly path: string;
  /** The version line of the hosts' prober. */
  version(): Promise<string>;
  /** Stops the hosts; probes in flight and queued fail. */
  close(): Promise<void>;
}

/** Why 5 s: a host answers an interrupted probe in milliseconds; only a read stuck in the kernel needs the kill. */
const DEFAULT_GRACE_MS = 5_000;

/** How long a host killed by the pool has to exit before it is taken for stuck in the kernel and abandoned (a killed process exits in milliseconds). */
const ABANDON_AFTER_MS = 5_000;

/** How long a cancelled probe's caller waits for its host's answer before it is told at once (a cancel lands within 2 s). */
const ABORT_ANSWER_MS = 500;

/** Hosts that did not exit after SIGKILL (stuck in the kernel): abandoned, never waited on. */
const abandonedHosts = new Counter({
  name: 'scanner_probe_hosts_abandoned_total',
  help: 'Probe hosts that did not exit after SIGKILL (a call stuck in the kernel, such as a read on a dead share) and were abandoned',
  registers: [registry],
});

/** Files in flight per libav host: its threads open them side by side; more hosts only for more cores. */
const FILES_PER_LIBAV_HOST = 4;

/**
 * Each host holds as many probes (and pictures) waiting as it runs (it starts
 * them in order, checks and all, as its running ones end): the next file is
 * there the moment one ends, instead of a round trip through the worker,
 * whose main thread may be busy recording results.
 */
export const WAITING_PER_HOST_PER_SLOT = 1;

type Host = MediaHost<Request>;

/** Creates the worker's prober; hosts start on the first call and restart as needed. */
export function createIsolatedProber(options: IsolatedProberOptions): IsolatedProber {
  const concurrency = options.concurrency;
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
    throw new RangeError(`concurrency must be a positive integer, got ${String(concurrency)}`);
  }
  const kind: ProberKind = options.kind ?? 'ffprobe';
  const hostCount = Math.max(1, Math.min(concurrency, options.hosts ?? (kind === 'libav' ? Math.ceil(concurrency / FILES_PER_LIBAV_HOST) : 1)));
  const thumbnailConcurrency = options.thumbnailConcurrency ?? 1;
  if (!Number.isSafeInteger(thumbnailConcurrency) || thumbnailConcurrency < 1) {
    throw new RangeError(`thumbnailConcurrency must be a positive integer, got ${String(thumbnailConcurrency)}`);
  }
  const perHost = Math.ceil(concurrency / hostCount);
  /**
   * Pictures the host in `slot` makes at once: THUMBNAIL_CONCURRENCY spread
   * over the first hosts (never more in all), none on the others.
   */
  const thumbnailsOnSlot = (slot: number): number => {
    const takers = Math.min(hostCount, thumbnailConcurrency);
    return slot >= 0 && slot < takers ? Math.floor(thumbnailConcurrency / takers) + (slot < thumbnailConcurrency % takers ? 1 : 0) : 0;
  };
  /** What a host runs at once, of each lane. */
  const runsAtOnce = (host: Host, lane: Lane): number => (lane === 'probe' ? perHost : thumbnailsOnSlot(hosts.indexOf(host)));
  // Sent to hosts at once: those running (`concurrency` probes, `thumbnailConcurrency` pictures at most) and those waiting on a host for a slot.
  const limits: Record<Lane, number> = {
    probe: concurrency * (1 + WAITING_PER_HOST_PER_SLOT),
    thumbnail: thumbnailConcurrency * (1 + WAITING_PER_HOST_PER_SLOT),
  };
  const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
  /**
   * A host's checks and fingerprints in flight at once, one for each file it
   * holds (its waiting files are checked too): hung ones hold at most this
   * many of its check threads (check-thread.ts).
   */
  const fsCalls = Math.max(2, perHost * (1 + WAITING_PER_HOST_PER_SLOT));
  const hostFile = options.host?.module ?? require.resolve('./host-main');
  // Under Jest the sources are TypeScript: the host then loads them through swc.
  const execArgv = hostFile.endsWith('.ts') ? ['--require', path.join(__dirname, '..', '..', 'scripts', 'ts-register.js')] : [];

  /** The hosts in service or on their way there, one per slot; a killed host leaves its slot at once. */
  const hosts: Array<Host | null> = Array.from({ length: hostCount }, () => null);
  /** Every host whose process may still run: close() waits for each until it exits or is abandoned. */
  const live = new Set<Host>();
  /**
   * What waits for a host, a line per lane, each in order: a dispatch looks at
   * the head of its own line only, however many files of other scans or of
   * the other lane wait (a single mixed line had every pump walk past
   * thousands of probes to find no picture).
   */
  const queues: Record<Lane, Request[]> = { probe: [], thumbnail: [] };
  /** Empties both lines, failing every request in them with `error`. */
  const rejectQueued = (error: Error): void => {
    for (const request of [...queues.probe.splice(0), ...queues.thumbnail.splice(0)]) {
      request.signal?.removeEventListener('abort', request.onAbort);
      request.reject(error);
    }
  };
  /** version() calls waiting for a ready host. */
  const hostWaiters: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
  const running: Record<Lane, number> = { probe: 0, thumbnail: 0 };
  let nextId = 1;
  let closed = false;

  /** Keeps the worker's event loop alive only while something waits on a host. */
  const refChannels = (): void => {
    const busy = running.probe + running.thumbnail > 0 || queues.probe.length + queues.thumbnail.length > 0 || hostWaiters.length > 0 || hosts.some((h) => h !== null && h.versions.size > 0);
    for (const host of hosts) {
      if (host === null) continue;
      // The process handle too, and until it is gone for a host being stopped: its 'exit' must still arrive.
      if (busy || host.stopping) host.hold();
      else host.letGo();
    }
  };

  const startHost = (slot: number): Host => {
    const host: Host = new MediaHost<Request>(hostFile, options.host?.args ?? [], {
      execArgv: [...execArgv, '--max-old-space-size=64'],
      // Only an allow-list of the environment: this process parses untrusted media.
      env: mediaChildEnv({
        [HOST_ENV.kind]: kind,
        [HOST_ENV.concurrency]: String(perHost),
        [HOST_ENV.thumbnailConcurrency]: String(Math.max(1, thumbnailsOnSlot(slot))),
        // An empty value lets the host pick the bundled build and its fallback.
        [HOST_ENV.ffprobe]: options.ffprobePath ?? '',
        [HOST_ENV.fsCallTimeoutMs]: String(options.fsCallTimeoutMs ?? DEFAULT_FS_CALL_TIMEOUT_MS),
        [HOST_ENV.fsCalls]: String(fsCalls),
        // libavformat's blocking calls run on libuv's pool (the checks have
        // threads of their own): a thread for every file in flight, and spare.
        // Set at spawn: the pool is sized once, when it starts.
        UV_THREADPOOL_SIZE: String(Math.max(4, perHost + thumbnailsOnSlot(slot) + 2)),
      }),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'json',
    });
    hosts[slot] = host;
    live.add(host);
    void host.gone.then(() => live.delete(host));
    const { child } = host;
    child.on('message', (message: HostMessage) => {
      // A killed host's late answers: what it held was settled when it was killed.
      if (!host.retired) onMessage(host, message);
    });
    child.once('exit', (code, signal) => onExit(host, code, signal));
    // Without this listener a failed send, or a failed spawn, would be thrown
    // as an unhandled 'error' and take the worker down.
    child.on('error', (error) => {
      if (child.pid === undefined) onExit(host, null, null, error);
      else dropHost(host, 'failure');
    });
    // The host must not keep a finished worker alive.
    child.unref();
    refChannels();
    return host;
  };

  /**
   * Kills a host (→ killed). What it held is settled at once, as its SIGKILL
   * will tell (never a crash), and its slot is free: a process stuck in the
   * kernel may not exit for a long time, and nothing waits on it.
   */
  const dropHost = (host: Host, cause: KillCause): void => {
    const isolated = host.isolated;
    if (!host.kill(cause, ABANDON_AFTER_MS, () => onAbandon(host))) return;
    retire(host, { how: 'exited (SIGKILL)', crashed: false, killedByPool: true, overDeadline: cause === 'deadline', isolated });
  };

  const onAbandon = (host: Host): void => {
    abandonedHosts.inc();
    options.logger?.warn({ pid: host.child.pid }, 'probe host did not exit after SIGKILL (a call stuck in the kernel, such as a read on a share that stopped answering): abandoned');
  };

  /** Its process is gone (→ exited); unless the pool killed it (and settled what it held then), what it held is settled now. */
  const onExit = (host: Host, code: number | null, signal: NodeJS.Signals | null, spawnError?: Error): void => {
    const wasRetired = host.retired;
    const isolated = host.isolated;
    if (!host.exit() || wasRetired) return;
    const how = spawnError ? `could not start (${spawnError.message})` : `exited (${signal ?? String(code)})`;
    retire(host, { how, crashed: isCrash(code, signal), killedByPool: false, overDeadline: false, isolated });
  };

  const heldOn = (host: Host, lane: Lane): Request[] => [...host.inFlight.values()].filter((r) => laneOf(r.job) === lane);
  const runningOn = (host: Host, lane: Lane): number => heldOn(host, lane).filter((r) => r.phase === 'running').length;

  /**
   * A request starts running on its host: its time limit starts now, unless
   * it was cancelled while it waited and the grace for its answer runs already
   * (the host may have started it before the abort reached it).
   */
  const startRunning = (host: Host, request: Request): void => {
    request.phase = 'running';
    request.timer ??= setTimeout(() => overDeadline(host, request, 'timeout'), request.job.timeoutMs + graceMs);
  };

  /** A request leaves its host: timers and listener cleared, its slot free, the next probe waiting there running. */
  const settle = (host: Host, request: Request): void => {
    host.inFlight.delete(request.id);
    if (request.timer) clearTimeout(request.timer);
    request.timer = null;
    if (request.abortTimer) clearTimeout(request.abortTimer);
    request.abortTimer = null;
    request.signal?.removeEventListener('abort', request.onAbort);
    if (host.isolated === request.id) host.release();
    const lane = laneOf(request.job);
    running[lane]--;
    // The host starts each lane's requests in the order sent: the first one waiting now runs.
    if (request.phase === 'running' && !host.retired) {
      const next = heldOn(host, lane).find((r) => r.phase === 'waiting');
      if (next !== undefined) startRunning(host, next);
    }
  };

  const onMessage = (host: Host, message: HostMessage): void => {
    if ('type' in message) {
      if (message.type === 'ready') {
        host.ready();
        hostWaiters.splice(0).forEach((waiter) => waiter.resolve());
        pump();
      } else {
        host.refuse();
        failStart(host, hostGone(`cannot probe with ${message.kind}: ${message.message}`));
      }
      return;
    }
    const version = host.versions.get(message.id);
    if (version) {
      host.versions.delete(message.id);
      if ('error' in message) version.reject(Object.assign(new Error(message.error.message), message.error));
      else version.resolve(message.result as string);
      refChannels();
      return;
    }
    const request = host.inFlight.get(message.id);
    if (!request) return;
    settle(host, request);
    if (request.signal?.aborted) request.reject(abortError(request.signal));
    else if ('error' in message) request.reject(Object.assign(new Error(message.error.message), message.error));
    else request.resolve(message.result as JobResult);
    pump();
  };

  /** A host that never became ready: what waits on it fails as transient, unless another host can serve it. */
  const failStart = (host: Host, error: Error): void => {
    if (hosts.some((h) => h !== null && h !== host && h.serving)) return;
    rejectQueued(error);
    hostWaiters.splice(0).forEach((waiter) => waiter.reject(error));
  };

  /** A host leaves service (killed, or exited): its slot is freed, and what it held is settled as its fate decides. */
  const retire = (host: Host, fate: { how: string; crashed: boolean; killedByPool: boolean; overDeadline: boolean; isolated: number | null }): void => {
    const slot = hosts.indexOf(host);
    if (slot >= 0) hosts[slot] = null;
    // A host the pool killed is replaced at once (it may be stuck in the
    // kernel, and is not waited for): the next file finds a host ready.
    if (slot >= 0 && fate.killedByPool && host.everReady && !closed) startHost(slot);
    for (const waiter of host.versions.values()) waiter.reject(hostGone(fate.how));
    host.versions.clear();
    if (!host.everReady) {
      failStart(host, hostGone(fate.how));
      refChannels();
      return;
    }
    const again: Request[] = [];
    for (const request of [...host.inFlight.values()]) {
      const wasRunning = request.phase === 'running';
      settle(host, request);
      if (request.killedFor === 'timeout') request.resolve(TIMED_OUT[request.job.type]);
      else if (request.signal?.aborted) request.reject(abortError(request.signal));
      else if (fate.crashed && fate.isolated === request.id) request.resolve(CRASHED[request.job.type]);
      else if (fate.crashed || fate.overDeadline) {
        // A crash makes every file it was probing a suspect, to be probed alone, and
        // every probe it held: a host starts its next probe while the one before is
        // checked after its probe (dispatch.ts), so a file the pool counts as waiting may
        // be probing. A kill over another file's deadline leaves them innocent, to be
        // sent again as they were, as are the pictures that were only waiting on the host.
        request.phase = 'queued';
        request.suspect ||= fate.crashed && (wasRunning || laneOf(request.job) === 'probe');
        again.push(request);
      } else request.reject(hostGone(fate.how));
    }
    // Sent again first, in their order.
    for (const request of again.reverse()) {
      request.signal?.addEventListener('abort', request.onAbort, { once: true });
      queues[laneOf(request.job)].unshift(request);
    }
    pump();
  };

  /** Abort: a queued request leaves the line; one on a host is interrupted, and its host killed if it does not answer. */
  const abortRequest = (request: Request): void => {
    const line = queues[laneOf(request.job)];
    const index = line.indexOf(request);
    if (index >= 0) {
      line.splice(index, 1);
      request.reject(abortError(request.signal as AbortSignal));
      refChannels();
      return;
    }
    const host = hosts.find((h) => h !== null && h.inFlight.get(request.id) === request);
    if (!host) return;
    host.send({ type: 'abort', id: request.id }, () => dropHost(host, 'failure'));
    if (request.timer) clearTimeout(request.timer);
    request.timer = setTimeout(() => overDeadline(host, request, 'abort'), graceMs);
    // The caller is told soon whatever the host does; the host keeps the slot until it answers or is killed.
    request.abortTimer ??= setTimeout(() => request.reject(abortError(request.signal as AbortSignal)), Math.min(ABORT_ANSWER_MS, graceMs));
  };

  const overDeadline = (host: Host, request: Request, why: 'timeout' | 'abort'): void => {
    request.killedFor = why;
    dropHost(host, 'deadline');
  };

  const dispatch = (host: Host, request: Request): void => {
    running[laneOf(request.job)]++;
    host.inFlight.set(request.id, request);
    if (request.suspect) host.isolate(request.id);
    const lane = laneOf(request.job);
    // A suspect runs alone on its host, whatever the host's slots.
    if (request.suspect || runningOn(host, lane) < runsAtOnce(host, lane)) startRunning(host, request);
    else request.phase = 'waiting';
    // A host that has just died fails the send: its 'exit' then settles what it held.
    host.send({ ...request.job, id: request.id } as HostRequest, () => dropHost(host, 'failure'));
  };

  const fillSlots = (): void => {
    for (let slot = 0; slot < hosts.length; slot++) if (hosts[slot] === null && !closed) startHost(slot);
  };

  /** The host for the next request, starting hosts as needed; null when it must wait. */
  const pickHost = (request: Request): Host | null => {
    fillSlots();
    const usable = hosts.filter((h): h is Host => h !== null && h.takesWork);
    if (request.suspect) return usable.find((h) => h.inFlight.size === 0) ?? null;
    // Each lane has its own limit: a request goes to the least busy host with room in its lane, whatever the other lane holds.
    const lane = laneOf(request.job);
    const open = usable.filter((h) => heldOn(h, lane).length < runsAtOnce(h, lane) * (1 + WAITING_PER_HOST_PER_SLOT));
    return open.reduce<Host | null>((best, h) => (best === null || h.inFlight.size < best.inFlight.size ? h : best), null);
  };

  /** Sends what waits, in order, probes before thumbnails, each type up to its limit. */
  const pump = (): void => {
    for (const lane of ['probe', 'thumbnail'] as const) {
      const line = queues[lane];
      while (line.length > 0 && running[lane] < limits[lane] && !closed) {
        const host = pickHost(line[0] as Request);
        if (!host) break;
        dispatch(host, line.shift() as Request);
      }
    }
    refChannels();
  };

  /** Queues a job; settles with the host's answer, or as its host's fate decides. */
  const submit = (job: Job, signal: AbortSignal | undefined): Promise<JobResult> => {
    if (signal?.aborted) return Promise.reject(abortError(signal));
    if (closed) return Promise.reject(hostGone('prober closed'));
    return new Promise((resolve, reject) => {
      const request: Request = {
        id: nextId++, job, signal, resolve, reject,
        phase: 'queued', suspect: false, killedFor: null, timer: null, abortTimer: null, onAbort: () => abortRequest(request),
      };
      signal?.addEventListener('abort', request.onAbort, { once: true });
      queues[laneOf(job)].push(request);
      pump();
    });
  };

  const anyServingHost = async (): Promise<Host> => {
    for (;;) {
      if (closed) throw hostGone('prober closed');
      fillSlots();
      const serving = hosts.find((h): h is Host => h !== null && h.serving);
      if (serving) return serving;
      await new Promise<void>((resolve, reject) => {
        hostWaiters.push({ resolve, reject });
        refChannels();
      });
    }
  };

  const positiveTimeout = (timeoutMs: number): Error | null =>
    Number.isFinite(timeoutMs) && timeoutMs > 0 ? null : new RangeError(`timeoutMs must be a positive number, got ${String(timeoutMs)}`);

  return {
    kind,
    path: kind === 'ffprobe' ? (options.ffprobePath ?? defaultFfprobePath()) : 'node-av',
    probeFile({ signal, ...request }) {
      if (!path.isAbsolute(request.file) || !path.isAbsolute(request.realRoot)) {
        return Promise.reject(new TypeError(`probeFile needs absolute paths, got ${JSON.stringify([request.file, request.realRoot])}`));
      }
      const invalid = positiveTimeout(request.timeoutMs);
      if (invalid) return Promise.reject(invalid);
      return submit({ type: 'probeFile', ...request }, signal) as Promise<FileProbeResult>;
    },
    thumbnail({ signal, ...job }) {
      if (kind !== 'libav') return Promise.reject(new Error('thumbnails are made in libav probe hosts only'));
      if (!path.isAbsolute(job.file)) return Promise.reject(new TypeError(`thumbnail needs an absolute path, got ${JSON.stringify(job.file)}`));
      const invalid = positiveTimeout(job.timeoutMs);
      if (invalid) return Promise.reject(invalid);
      return submit({ type: 'thumbnail', ...job }, signal) as Promise<ThumbnailResult>;
    },
    async version() {
      const host = await anyServingHost();
      const id = nextId++;
      const answer = new Promise<string>((resolve, reject) => host.versions.set(id, { resolve, reject }));
      refChannels();
      host.send({ type: 'version', id }, () => dropHost(host, 'failure'));
      return answer;
    },
    async close() {
      closed = true;
      rejectQueued(hostGone('prober closed'));
      // Disconnecting lets each host stop its probes and exit on its own; hosts
      // killed and not exited yet are waited for until they exit or are abandoned.
      for (const host of hosts) host?.drain();
      await Promise.all([...live].map((host) => host.gone));
    },
  };
}
