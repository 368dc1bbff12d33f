/** What the pool (pool.ts) asks of its media hosts, and what each request resolves with when its host's fate decides. */
import { ErrorType } from '../model/types';
import type { FileProbeResult } from '../probe/contained';
import { ThumbnailError, type ThumbnailResult } from '../thumbnails/types';
import type { HostRequest } from './protocol';

/** The reason recorded for a file that crashed the prober on its own. */
export const PROBER_CRASHED = `${ErrorType.ProbeFailed}: prober crashed`;

/** The reason recorded for a video whose thumbnail crashed the host on its own. */
export const THUMBNAILER_CRASHED = `${ThumbnailError.Failed}: thumbnailer crashed`;

/** What a request asks of a host. */
export type Job = Omit<Extract<HostRequest, { type: 'probeFile' | 'thumbnail' }>, 'id'>;
export type JobType = Job['type'];
/** What a host answers a job with. */
export type JobResult = FileProbeResult | ThumbnailResult;

/** Probes share the probe limit; thumbnails have their own. */
export type Lane = 'probe' | 'thumbnail';
export const laneOf = (job: Job): Lane => (job.type === 'thumbnail' ? 'thumbnail' : 'probe');

/** What a request of each type resolves with when its host was killed over its time limit. */
export const TIMED_OUT: Record<JobType, JobResult> = {
  probeFile: { outcome: { kind: 'failed', reason: ErrorType.Timeout }, probeSeconds: null },
  thumbnail: { ok: false, reason: ThumbnailError.Timeout },
};

/** What a request of each type resolves with when it crashed a host on its own. */
export const CRASHED: Record<JobType, JobResult> = {
  probeFile: { outcome: { kind: 'failed', reason: PROBER_CRASHED }, probeSeconds: null },
  thumbnail: { ok: false, reason: THUMBNAILER_CRASHED },
};

/**
 * Where a request is: in the pool's queue; sent to a host and waiting there
 * for one of its probe slots; or running on its host (thumbnails at once,
 * probes once a slot is theirs), its time limit counting.
 */
export type Phase = 'queued' | 'waiting' | 'running';

/** One request of a caller, from submit to settle. */
export interface Request {
  id: number;
  job: Job;
  signal: AbortSignal | undefined;
  resolve: (result: JobResult) => void;
  reject: (error: Error) => void;
  phase: Phase;
  /** In flight on a host that crashed: its next attempt runs alone on a host. */
  suspect: boolean;
  /** Why its host was killed on its account. */
  killedFor: 'timeout' | 'abort' | null;
  timer: NodeJS.Timeout | null;
  /** Set once cancelled while on a host: tells the caller soon, should the host not have answered. */
  abortTimer: NodeJS.Timeout | null;
  onAbort: () => void;
}

export function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  return Object.assign(new Error('probe aborted'), { name: 'AbortError' });
}

/** A machine problem of the hosts (transient: Temporal retries the batch). */
export function hostGone(detail: string): Error {
  return Object.assign(new Error(`probe host ${detail}`), { code: 'EPROBEHOST' });
}

/** Signals that mean the host crashed on what it was doing, rather than being stopped. */
const CRASH_SIGNALS = new Set(['SIGSEGV', 'SIGBUS', 'SIGILL', 'SIGFPE', 'SIGABRT', 'SIGTRAP', 'SIGSYS']);

/** A crash is the work's doing; SIGKILL (ours, the OOM killer's, an operator's) and a clean exit are not. */
export function isCrash(code: number | null, signal: NodeJS.Signals | null): boolean {
  return (signal !== null && CRASH_SIGNALS.has(signal)) || (signal === null && code !== null && code !== 0);
}
