/**
 * A Prober whose probing happens in probe host processes (probe-host.ts),
 * never in the worker: with libavformat inside the host (`kind: 'libav'`),
 * or with ffprobe processes the host spawns (`kind: 'ffprobe'`). Same
 * contract as createProber: per-file reasons resolve, machine problems and
 * aborts reject.
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
 * A scan's files come as `probeFile` (contained.ts): the host checks each one
 * inside the scan's root right before and after its probe, so the check is
 * made the moment the file's turn at the prober comes, in the host.
 *
 * libav hosts also make thumbnails (`thumbnail`, thumbnails/libav-frame.ts)
 * under the same guarantees, with their own limit, and after the probes
 * waiting: the library fills first and pictures follow.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { Counter } from 'prom-client';
import { registry } from '../metrics';
import { ErrorType } from '../scan/types';
import { DEFAULT_FS_CALL_TIMEOUT_MS } from '../filesystem/media-fs';
import { ThumbnailError, type FrameRequest, type ThumbnailResult } from '../thumbnails/types';
import type { FileProber, FileProbeResult } from './contained';
import { defaultFfprobePath, type Prober, type ProberOptions, type ProbeResult } from './ffprobe';
import { HOST_ENV, type HostMessage, type HostRequest, type ProberKind } from './host-protocol';
import { mediaChildEnv } from './child-env';

/** Options of createIsolatedProber. */
export interface IsolatedProberOptions extends ProberOptions {
  /** What the hosts probe with; ffprobe when absent. */
  kind?: ProberKind;
  /** Host processes; by default one for ffprobe, and one per four files in flight for libav. */
  hosts?: number;
  /** How long past a probe's timeout, or past an abort, a host may take to answer before it is killed. */
  graceMs?: number;
  /**
   * Tests only: the host aborts (SIGABRT, as a crashing demuxer would) on a
   * file whose name contains this text. Never set in production.
   */
  testCrashMarker?: string;
  /** Thumbnails made at once across the hosts (libav only), on top of `concurrency` probes; 1 when absent. */
  thumbnailConcurrency?: number;
  /** Tests only: the hosts append every path they hand their prober to this file. Never set in production. */
  testProbeLog?: string;
  /** FS_CALL_TIMEOUT: the deadline of a host's checks and fingerprint reads on media paths; 30 s when absent. */
  fsCallTimeoutMs?: number;
  /** Where a host abandoned after SIGKILL is reported. */
  logger?: { warn(fields: Record<string, unknown>, message: string): void };
}

/** The prober of a worker, with what its hosts have been through. */
export interface IsolatedProber extends Prober, FileProber {
  readonly kind: ProberKind;
  /** Host processes started so far, restarts included. */
  readonly hostsStarted: number;
  /** Hosts that did not exit after SIGKILL and were abandoned. */
  readonly hostsAbandoned: number;
  /** Process ids of the hosts alive now. */
  readonly hostPids: number[];
  /**
   * Makes a thumbnail in a host (libav only): resolves with the picture made
   * or a per-file reason, rejects on abort and on machine problems.
   */
  thumbnail(request: FrameRequest): Promise<ThumbnailResult>;
  /** Stops the hosts; probes in flight and queued fail. */
  close(): Promise<void>;
}

/** The reason recorded for a file that crashed the prober on its own. */
export const PROBER_CRASHED = `${ErrorType.ProbeFailed}: prober crashed`;

/** The reason recorded for a video whose thumbnail crashed the host on its own. */
export const THUMBNAILER_CRASHED = `${ThumbnailError.Failed}: thumbnailer crashed`;

/** Why 5 s: a host answers an interrupted probe in milliseconds; only a read stuck in the kernel needs the kill. */
const DEFAULT_GRACE_MS = 5_000;

/**
 * How long a host killed by the pool has to exit before it is taken for
 * stuck in the kernel and abandoned (a killed process exits in milliseconds).
 */
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
 * Each host holds as many probes waiting as it runs (it starts them in
 * order, checks and all, as its running ones end): the next file is there
 * the moment one ends, instead of a round trip through the worker later,
 * whose main thread may be busy recording results. Measured on 2 cores, a
 * host with nothing waiting sat idle almost half of the time.
 */
const WAITING_PER_HOST_PER_SLOT = 1;

/** Signals that mean the host crashed on what it was doing, rather than being stopped. */
const CRASH_SIGNALS = new Set(['SIGSEGV', 'SIGBUS', 'SIGILL', 'SIGFPE', 'SIGABRT', 'SIGTRAP', 'SIGSYS']);

/** What a request asks of a host. */
type Job = Omit<Extract<HostRequest, { type: 'probe' | 'probeFile' | 'thumbnail' }>, 'id'>;
type JobType = Job['type'];
/** What a host answers a job with. */
type JobResult = ProbeResult | FileProbeResult | ThumbnailResult;

/** Probes of both kinds share the probe limit; thumbnails have their own. */
type Lane = 'probe' | 'thumbnail';
const laneOf = (job: Job): Lane => (job.type === 'thumbnail' ? 'thumbnail' : 'probe');

/** What a request of each type resolves with when its host was killed over its time limit, or crashed on it alone. */
const TIMED_OUT: Record<JobType, JobResult> = {
  probe: { ok: false, reason: ErrorType.Timeout },
  probeFile: { outcome: { kind: 'failed', reason: ErrorType.Timeout }, probeSeconds: null },
  thumbnail: { ok: false, reason: ThumbnailError.Timeout },
};
const CRASHED: Record<JobType, JobResult> = {
  probe: { ok: false, reason: PROBER_CRASHED },
  probeFile: { outcome: { kind: 'failed', reason: PROBER_CRASHED }, probeSeconds: null },
  thumbnail: { ok: false, reason: THUMBNAILER_CRASHED },
};

interface Request {
  id: number;
  job: Job;
  signal: AbortSignal | undefined;
  resolve: (result: JobResult) => void;
  reject: (error: Error) => void;
  /** In flight on a host that crashed: its next attempt runs alone on a host. */
  suspect: boolean;
  /** Sent to a host on its own because it is a suspect. */
  solo: boolean;
  /** Why its host was killed on its account. */
  killedFor: 'timeout' | 'abort' | null;
  /** Running on its host (thumbnails always; probes once one of the host's probe slots is theirs), rather than waiting there. */
  active: boolean;
  timer: NodeJS.Timeout | null;
  /** Set once cancelled while on a host: tells the caller at ABORT_ANSWER_MS should the host not have answered. */
  abortTimer: NodeJS.Timeout | null;
  onAbort: () => void;
}

interface Host {
  child: ChildProcess;
  ready: boolean;
  /** No more requests go to it: it is being killed, or its channel failed. */
  closing: boolean;
  killed: boolean;
  exited: boolean;
  /** Killed by us because a probe ran past its deadline: the others it held are innocent. */
  killedOverDeadline: boolean;
  inFlight: Map<number, Request>;
  versions: Map<number, { resolve: (value: string) => void; reject: (error: Error) => void }>;
  /** Holds a suspect alone. */
  solo: boolean;
  /** Set when killed: abandons it should it not exit in time. */
  abandonTimer: NodeJS.Timeout | null;
}

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  return Object.assign(new Error('probe aborted'), { name: 'AbortError' });
}

function hostGone(detail: string): Error {
  return Object.assign(new Error(`probe host ${detail}`), { code: 'EPROBEHOST' });
}

/** Creates the worker's prober; hosts start on the first call and restart as needed. */
export function createIsolatedProber(options: IsolatedProberOptions): IsolatedProber {
  const concurrency = options.concurrency;
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
    throw new RangeError(`concurrency must be a positive integer, got ${String(concurrency)}`);
  }
  const kind: ProberKind = options.kind ?? 'ffprobe';
  const hostCount = Math.max(1, Math.min(concurrency, options.hosts ?? (kind === 'libav' ? Math.ceil(concurrency / FILES_PER_LIBAV_HOST) : 1)));
  const perHost = Math.ceil(concurrency / hostCount);
  /** Probes a host holds at once: those it runs, and as many waiting for its slots. */
  const probesPerHost = perHost * (1 + WAITING_PER_HOST_PER_SLOT);
  // Probes sent to hosts at once: those running (`concurrency` at most) and those waiting on a host for a slot.
  const limits: Record<Lane, number> = { probe: concurrency * (1 + WAITING_PER_HOST_PER_SLOT), thumbnail: options.thumbnailConcurrency ?? 1 };
  if (!Number.isSafeInteger(limits.thumbnail) || limits.thumbnail < 1) {
    throw new RangeError(`thumbnailConcurrency must be a positive integer, got ${String(limits.thumbnail)}`);
  }
  const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
  /** A host's checks and fingerprints in flight at once: hung ones hold at most this many of its pool threads. */
  const fsCalls = Math.max(2, perHost);
  /** Hosts killed and not exited yet: close() waits for them, up to when they are abandoned. */
  const dying = new Set<Host>();
  let hostsAbandoned = 0;
  const hostFile = require.resolve('./probe-host');
  // Under Jest the sources are TypeScript: the host then loads them through swc.
  const execArgv = hostFile.endsWith('.ts') ? ['--require', path.join(__dirname, '..', '..', 'scripts', 'ts-register.js')] : [];

  const hosts: Array<Host | null> = Array.from({ length: hostCount }, () => null);
  const queue: Request[] = [];
  /** version() calls waiting for a ready host. */
  const hostWaiters: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
  const running: Record<Lane, number> = { probe: 0, thumbnail: 0 };
  let nextId = 1;
  let hostsStarted = 0;
  let closed = false;

  /** Keeps the worker's event loop alive only while something waits on a host. */
  const refChannels = (): void => {
    const busy = running.probe + running.thumbnail > 0 || queue.length > 0 || hostWaiters.length > 0 || hosts.some((h) => h !== null && h.versions.size > 0);
    for (const host of hosts) {
      if (host === null) continue;
      // The process handle too, and until it is gone for a host being stopped:
      // it has no channel left, and its 'exit' must still arrive.
      if (busy || host.closing) {
        host.child.ref();
        host.child.channel?.ref();
      } else {
        host.child.unref();
        host.child.channel?.unref();
      }
    }
  };

  const startHost = (slot: number): Host => {
    const child = fork(hostFile, [], {
      execArgv: [...execArgv, '--max-old-space-size=64'],
      // Only an allow-list of the environment: this process parses untrusted media.
      env: mediaChildEnv({
        [HOST_ENV.kind]: kind,
        [HOST_ENV.concurrency]: String(perHost),
        // An empty value lets the host pick the bundled build and its fallback.
        [HOST_ENV.ffprobe]: options.ffprobePath ?? '',
        [HOST_ENV.testCrashMarker]: options.testCrashMarker ?? '',
        [HOST_ENV.testProbeLog]: options.testProbeLog ?? '',
        [HOST_ENV.fsCallTimeoutMs]: String(options.fsCallTimeoutMs ?? DEFAULT_FS_CALL_TIMEOUT_MS),
        [HOST_ENV.fsCalls]: String(fsCalls),
        // libavformat's blocking calls and the checks run on libuv's pool: a
        // thread for every file in flight, for every check, and spare. Set at
        // spawn: the pool is sized once, when it starts.
        UV_THREADPOOL_SIZE: String(Math.max(4, perHost + fsCalls + 2)),
      }),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'json',
    });
    hostsStarted++;
    const host: Host = {
      child, ready: false, closing: false, killed: false, exited: false, killedOverDeadline: false,
      inFlight: new Map(), versions: new Map(), solo: false, abandonTimer: null,
    };
    hosts[slot] = host;
    child.on('message', (message: HostMessage) => {
      // A killed host's late answers: what it held was settled when it was killed.
      if (!host.killed) onMessage(host, message);
    });
    child.once('exit', (code, signal) => {
      if (host.abandonTimer !== null) clearTimeout(host.abandonTimer);
      dying.delete(host);
      onExit(host, code, signal);
    });
    // Without this listener a failed send, or a failed spawn, would be thrown
    // as an unhandled 'error' and take the worker down.
    child.on('error', (error) => {
      if (child.pid === undefined) onExit(host, null, null, error);
      else dropHost(host);
    });
    // The host must not keep a finished worker alive.
    child.unref();
    refChannels();
    return host;
  };

  /**
   * Stops using a host and kills it. What it held is settled at once, as its
   * SIGKILL will tell (never a crash), and its slot is free: a process stuck
   * in the kernel may not exit for a long time, and nothing waits on it. One
   * that has not exited within ABANDON_AFTER_MS is abandoned: logged, counted.
   */
  const dropHost = (host: Host): void => {
    host.closing = true;
    if (host.killed || host.exited) return;
    host.killed = true;
    host.child.kill('SIGKILL');
    dying.add(host);
    host.abandonTimer = setTimeout(() => {
      dying.delete(host);
      hostsAbandoned++;
      abandonedHosts.inc();
      options.logger?.warn({ pid: host.child.pid }, 'probe host did not exit after SIGKILL (a call stuck in the kernel, such as a read on a share that stopped answering): abandoned');
      // It must not keep the worker's process alive.
      host.child.unref();
      host.child.channel?.unref();
    }, ABANDON_AFTER_MS);
    host.abandonTimer.unref();
    onExit(host, null, 'SIGKILL');
  };

  const probesOn = (host: Host): Request[] => [...host.inFlight.values()].filter((r) => laneOf(r.job) === 'probe');
  const activeProbesOn = (host: Host): number => probesOn(host).filter((r) => r.active).length;

  /**
   * A request starts running on its host: its time limit starts now, unless
   * it was cancelled while it waited and the grace for its answer runs already
   * (the host may have started it before the abort reached it).
   */
  const activate = (host: Host, request: Request): void => {
    request.active = true;
    request.timer ??= setTimeout(() => overDeadline(host, request, 'timeout'), request.job.timeoutMs + graceMs);
  };

  const settle = (host: Host, request: Request): void => {
    host.inFlight.delete(request.id);
    if (request.timer) clearTimeout(request.timer);
    request.timer = null;
    if (request.abortTimer) clearTimeout(request.abortTimer);
    request.abortTimer = null;
    request.signal?.removeEventListener('abort', request.onAbort);
    if (request.solo) host.solo = false;
    running[laneOf(request.job)]--;
    // The host starts its probes in the order sent: the first one waiting now runs.
    if (request.active && laneOf(request.job) === 'probe' && !host.exited) {
      const next = probesOn(host).find((r) => !r.active);
      if (next !== undefined) activate(host, next);
    }
  };

  const onMessage = (host: Host, message: HostMessage): void => {
    if ('type' in message) {
      if (message.type === 'ready') {
        host.ready = true;
        hostWaiters.splice(0).forEach((waiter) => waiter.resolve());
        pump();
      } else {
        host.closing = true;
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
    const others = hosts.some((h) => h !== null && h !== host && h.ready && !h.closing);
    if (others) return;
    for (const request of queue.splice(0)) {
      request.signal?.removeEventListener('abort', request.onAbort);
      request.reject(error);
    }
    hostWaiters.splice(0).forEach((waiter) => waiter.reject(error));
  };

  const onExit = (host: Host, code: number | null, signal: NodeJS.Signals | null, spawnError?: Error): void => {
    if (host.exited) return;
    host.exited = true;
    host.closing = true;
    const slot = hosts.indexOf(host);
    if (slot >= 0) hosts[slot] = null;
    // A host the pool killed is replaced at once (it may be stuck in the
    // kernel, and is not waited for): the next file finds a host ready.
    if (slot >= 0 && host.killed && host.ready && !closed) startHost(slot);
    const how = spawnError ? `could not start (${spawnError.message})` : `exited (${signal ?? String(code)})`;
    for (const waiter of host.versions.values()) waiter.reject(hostGone(how));
    host.versions.clear();
    if (!host.ready) {
      failStart(host, hostGone(how));
      refChannels();
      return;
    }
    // A crash is the work's doing; SIGKILL (ours, the OOM killer's, an operator's) and a clean exit are not.
    const crashed = (signal !== null && CRASH_SIGNALS.has(signal)) || (signal === null && code !== null && code !== 0);
    const again: Request[] = [];
    for (const request of [...host.inFlight.values()]) {
      settle(host, request);
      if (request.killedFor === 'timeout') request.resolve(TIMED_OUT[request.job.type]);
      else if (request.signal?.aborted) request.reject(abortError(request.signal));
      else if (crashed && request.solo) request.resolve(CRASHED[request.job.type]);
      else if (crashed || host.killedOverDeadline) {
        // A crash makes every file it was probing a suspect, to be probed alone; a kill
        // over another file's deadline leaves them innocent, to be sent again as they
        // were, as are the files that were only waiting on the host.
        const wasActive = request.active;
        request.active = false;
        request.suspect ||= crashed && wasActive;
        request.solo = false;
        again.push(request);
      } else request.reject(hostGone(how));
    }
    // Sent again first, in their order.
    for (const request of again.reverse()) {
      request.signal?.addEventListener('abort', request.onAbort, { once: true });
      queue.unshift(request);
    }
    pump();
  };

  /** Abort: a queued request leaves the line; one in flight is interrupted, and its host killed if it does not answer. */
  const abortRequest = (request: Request): void => {
    const index = queue.indexOf(request);
    if (index >= 0) {
      queue.splice(index, 1);
      request.reject(abortError(request.signal as AbortSignal));
      refChannels();
      return;
    }
    const host = hosts.find((h) => h !== null && h.inFlight.get(request.id) === request);
    if (!host) return;
    host.child.send({ type: 'abort', id: request.id } satisfies HostRequest, (error) => {
      if (error) dropHost(host);
    });
    if (request.timer) clearTimeout(request.timer);
    request.timer = setTimeout(() => overDeadline(host, request, 'abort'), graceMs);
    // The caller is told soon whatever the host does; the host keeps the slot until it answers or is killed.
    request.abortTimer ??= setTimeout(() => request.reject(abortError(request.signal as AbortSignal)), Math.min(ABORT_ANSWER_MS, graceMs));
  };

  const overDeadline = (host: Host, request: Request, why: 'timeout' | 'abort'): void => {
    request.killedFor = why;
    host.killedOverDeadline = true;
    dropHost(host);
  };

  const dispatch = (host: Host, request: Request): void => {
    running[laneOf(request.job)]++;
    host.inFlight.set(request.id, request);
    if (request.suspect) {
      request.solo = true;
      host.solo = true;
    }
    if (laneOf(request.job) === 'thumbnail' || activeProbesOn(host) < perHost) activate(host, request);
    else request.active = false;
    const message = { ...request.job, id: request.id } as HostRequest;
    // A host that has just died fails the send: its 'exit' then settles what it held.
    host.child.send(message, (error) => {
      if (error) dropHost(host);
    });
  };

  /** The host for the next request, starting hosts as needed; null when it must wait. */
  const pickHost = (request: Request): Host | null => {
    for (let slot = 0; slot < hosts.length; slot++) if (hosts[slot] === null && !closed) startHost(slot);
    const usable = hosts.filter((h): h is Host => h !== null && h.ready && !h.closing && !h.solo);
    if (request.suspect) return usable.find((h) => h.inFlight.size === 0) ?? null;
    // Thumbnails have their own limit: they go to the least busy host, whatever the probes it holds.
    const open = laneOf(request.job) === 'probe' ? usable.filter((h) => probesOn(h).length < probesPerHost) : usable;
    return open.reduce<Host | null>((best, h) => (best === null || h.inFlight.size < best.inFlight.size ? h : best), null);
  };

  /** Sends what waits, in order, probes before thumbnails, each type up to its limit. */
  const pump = (): void => {
    for (const lane of ['probe', 'thumbnail'] as const) {
      let index = 0;
      while (index < queue.length && running[lane] < limits[lane] && !closed) {
        const request = queue[index] as Request;
        if (laneOf(request.job) !== lane) {
          index++;
          continue;
        }
        const host = pickHost(request);
        if (!host) break;
        queue.splice(index, 1);
        dispatch(host, request);
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
        suspect: false, solo: false, killedFor: null, active: false, timer: null, abortTimer: null, onAbort: () => abortRequest(request),
      };
      signal?.addEventListener('abort', request.onAbort, { once: true });
      queue.push(request);
      pump();
    });
  };

  const anyReadyHost = async (): Promise<Host> => {
    for (;;) {
      if (closed) throw hostGone('prober closed');
      for (let slot = 0; slot < hosts.length; slot++) if (hosts[slot] === null) startHost(slot);
      const ready = hosts.find((h): h is Host => h !== null && h.ready && !h.closing);
      if (ready) return ready;
      await new Promise<void>((resolve, reject) => {
        hostWaiters.push({ resolve, reject });
        refChannels();
      });
    }
  };

  return {
    kind,
    path: kind === 'ffprobe' ? (options.ffprobePath ?? defaultFfprobePath()) : 'node-av',
    get running(): number {
      // Probing now, not waiting on a host for a slot.
      return hosts.reduce((sum, h) => sum + (h === null ? 0 : activeProbesOn(h)), 0);
    },
    get hostsStarted(): number {
      return hostsStarted;
    },
    get hostsAbandoned(): number {
      return hostsAbandoned;
    },
    get hostPids(): number[] {
      return hosts.flatMap((h) => (h !== null && !h.exited && h.child.pid !== undefined ? [h.child.pid] : []));
    },
    probe(file, probeOptions) {
      if (!path.isAbsolute(file)) return Promise.reject(new TypeError(`probe needs an absolute path, got ${JSON.stringify(file)}`));
      if (!Number.isFinite(probeOptions.timeoutMs) || probeOptions.timeoutMs <= 0) {
        return Promise.reject(new RangeError(`timeoutMs must be a positive number, got ${String(probeOptions.timeoutMs)}`));
      }
      return submit({ type: 'probe', file, timeoutMs: probeOptions.timeoutMs }, probeOptions.signal) as Promise<ProbeResult>;
    },
    probeFile({ signal, ...request }) {
      if (!path.isAbsolute(request.file) || !path.isAbsolute(request.realRoot)) {
        return Promise.reject(new TypeError(`probeFile needs absolute paths, got ${JSON.stringify([request.file, request.realRoot])}`));
      }
      if (!Number.isFinite(request.timeoutMs) || request.timeoutMs <= 0) {
        return Promise.reject(new RangeError(`timeoutMs must be a positive number, got ${String(request.timeoutMs)}`));
      }
      return submit({ type: 'probeFile', ...request }, signal) as Promise<FileProbeResult>;
    },
    thumbnail({ signal, ...job }) {
      if (kind !== 'libav') return Promise.reject(new Error('thumbnails are made in libav probe hosts only'));
      if (!path.isAbsolute(job.file)) return Promise.reject(new TypeError(`thumbnail needs an absolute path, got ${JSON.stringify(job.file)}`));
      if (!Number.isFinite(job.timeoutMs) || job.timeoutMs <= 0) {
        return Promise.reject(new RangeError(`timeoutMs must be a positive number, got ${String(job.timeoutMs)}`));
      }
      return submit({ type: 'thumbnail', ...job }, signal) as Promise<ThumbnailResult>;
    },
    async version() {
      const host = await anyReadyHost();
      const id = nextId++;
      const answer = new Promise<string>((resolve, reject) => host.versions.set(id, { resolve, reject }));
      refChannels();
      host.child.send({ type: 'version', id } satisfies HostRequest, (error) => {
        if (error) dropHost(host);
      });
      return answer;
    },
    async close() {
      closed = true;
      const error = hostGone('prober closed');
      for (const request of queue.splice(0)) {
        request.signal?.removeEventListener('abort', request.onAbort);
        request.reject(error);
      }
      const exits = hosts.map((host) =>
        host === null || host.exited ? Promise.resolve() : new Promise<void>((resolve) => host.child.once('exit', () => resolve())),
      );
      // Hosts killed and not exited yet: waited for until they exit or are abandoned.
      exits.push(
        ...[...dying].map(
          (host) =>
            new Promise<void>((resolve) => {
              host.child.once('exit', () => resolve());
              const check = setInterval(() => {
                if (!dying.has(host)) resolve();
              }, 100);
              check.unref();
            }),
        ),
      );
      for (const host of hosts) {
        if (host === null || host.exited) continue;
        host.closing = true;
        // Held until its 'exit', which close() waits for; disconnecting lets the host stop its probes and exit on its own.
        host.child.ref();
        if (host.child.connected) host.child.disconnect();
        else host.child.kill('SIGKILL');
      }
      await Promise.all(exits);
    },
  };
}
