/**
 * Stops are interruptions, never verdicts: a prober or thumbnailer process
 * that dies by a signal its file could not have caused (SIGTERM, SIGINT or
 * SIGHUP sent to the worker's whole process group by systemd, Docker or a
 * terminal; SIGKILL from an operator or the OOM killer) says nothing about
 * the file. Such a run throws an interruption, so its activity fails as
 * transient and the file is probed again by whichever worker resumes the
 * batch, instead of being recorded as failed.
 */

/** Signals that mean the process crashed on what it was reading: the same file would crash it again. */
export const CRASH_SIGNALS: ReadonlySet<string> = new Set(['SIGSEGV', 'SIGBUS', 'SIGILL', 'SIGFPE', 'SIGABRT', 'SIGTRAP', 'SIGSYS']);

/** Error code of an interruption (see interrupted). */
export const INTERRUPTED = 'EINTERRUPTED';

/** Error code the probe hosts' pool gives a probe or picture whose host went away (media-host/pool.ts). */
const HOST_GONE = 'EPROBEHOST';

/** The error thrown for a run stopped by `signal` from outside. */
export function interrupted(what: string, signal: string): Error {
  return Object.assign(new Error(`${what} stopped by ${signal}: an interruption, the file is tried again`), { code: INTERRUPTED });
}

/** Whether a process that died by `signal` was stopped rather than crashed. */
export function isStopSignal(signal: string | null | undefined): signal is string {
  return typeof signal === 'string' && signal !== '' && !CRASH_SIGNALS.has(signal);
}

/** Whether an error is a stop (an abort, a lost host, a stopped process) rather than something about the file or the machine. */
export function isInterruption(error: unknown): boolean {
  const e = (typeof error === 'object' && error !== null ? error : {}) as { code?: unknown; name?: unknown };
  return e.code === INTERRUPTED || e.code === HOST_GONE || e.name === 'AbortError' || e.name === 'CancelledFailure';
}
