/**
 * The end of a media tool's run (ffprobe, ffmpeg) that nobody waits for:
 * SIGKILL when its time limit passes or its caller aborts. SIGKILL straight
 * away, because these tools hold no state worth a graceful exit and SIGKILL
 * cannot be ignored, so no follow-up "force kill" is needed.
 *
 * A timer of our own rather than execa's `timeout` option: execa 5 leaves
 * that timer running when the spawn itself fails (ENOENT), holding the
 * worker's event loop open for the whole time limit.
 */
import type { ChildProcess } from 'node:child_process';

/** What watches a run: whether the time limit ended it, and the end of the watch (call it once the run has settled). */
export interface RunDeadline {
  /** The time limit passed, and the process was killed for it. */
  readonly timedOut: boolean;
  /** Kills the process now. */
  kill(): void;
  /** Stops watching: clears the timer and the abort listener. */
  stop(): void;
}

/** Kills `child` with SIGKILL once `timeoutMs` passes or `signal` aborts, whichever comes first. */
export function killAtDeadlineOrAbort(child: Pick<ChildProcess, 'kill'>, timeoutMs: number, signal?: AbortSignal): RunDeadline {
  let timedOut = false;
  const kill = (): void => {
    child.kill('SIGKILL');
  };
  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, timeoutMs);
  signal?.addEventListener('abort', kill, { once: true });
  return {
    get timedOut() {
      return timedOut;
    },
    kill,
    stop() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', kill);
    },
  };
}
