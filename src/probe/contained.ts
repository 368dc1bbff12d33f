/**
 * Probing one file of a scan, inside its root: what a probe host does for
 * each file a probe batch hands it (media-host/dispatch.ts, through media-host/pool.ts).
 *
 * The checks run in the host, right before and right after the probe, so
 * that the path is resolved moments before the prober opens it (the worker
 * does no file system work per file, and its probe slots never wait on it);
 * the one before is taken while the file waits for its turn, and taken again
 * should the turn come more than CHECK_FRESH_MS after it. They
 * and the fingerprint run on check threads (filesystem/check-thread.ts):
 * off the host's event loop (a stuck call there would stall every other file
 * of the host, and the time limit would then land on one of those), one
 * request each side of the probe, bounded by FS_CALL_TIMEOUT (`fs_timeout`).
 */
import type { Stats } from 'node:fs';
import type { CheckThreads } from '../filesystem/check-thread';
import { resolveInside } from '../filesystem/containment';
import type { ProbeOutcome } from '../library/types';
import { ErrorType } from '../model/types';
import type { ProbeResult } from './parse';

/** A file of a scan to probe: its path as discovered, the scan's real root, and its size and mtime then. */
export interface FileProbeRequest {
  file: string;
  realRoot: string;
  /** Size and mtime the file had when discovered: a change since means it is still being written. */
  discovered: { size: number; mtimeMs: number };
  timeoutMs: number;
}

/** What was made of the file, and how long its probe took (null when it was refused before probing). */
export interface FileProbeResult {
  outcome: ProbeOutcome;
  probeSeconds: number | null;
}

/** Probes files of scans inside their roots (media-host/pool.ts): what the probe activity needs of a prober. */
export interface FileProber {
  /**
   * Resolves with the file's outcome (per-file problems included); rejects
   * when the signal aborts and on machine problems (a retry may help).
   */
  probeFile(request: FileProbeRequest & { signal?: AbortSignal }): Promise<FileProbeResult>;
}

/** What the check before the probe found, and when (performance.now()): the checked real path and its stat, or the file's outcome already. */
export type CheckedBefore = ({ ok: true; real: string; stat: Stats } | { ok: false; result: FileProbeResult }) & { at: number };

/**
 * How old a check taken while the file waited may be when its turn comes:
 * an older one is taken again, so that what the prober opens was checked
 * moments before, as when the check waits for the turn (a probe of a small
 * file takes a few ms).
 */
export const CHECK_FRESH_MS = 20;

/**
 * The check before the probe: the path resolves inside the root to a
 * regular file. Taken while the file waits for its turn at the prober
 * (media-host/dispatch.ts), so that the prober's slot holds only the probe
 * and the check after it.
 */
export async function checkBeforeProbe(request: FileProbeRequest, signal: AbortSignal, checks: CheckThreads): Promise<CheckedBefore> {
  const { file, realRoot } = request;
  signal.throwIfAborted();
  const before = await resolveInside(realRoot, file, (await checks.check(file, null, signal)).calls);
  const at = performance.now();
  if (!before.ok) return { ok: false, result: { outcome: { kind: 'failed', reason: before.reason }, probeSeconds: null }, at };
  if (!before.stat.isFile()) return { ok: false, result: { outcome: { kind: 'failed', reason: ErrorType.NotARegularFile }, probeSeconds: null }, at };
  return { ok: true, real: before.real, stat: before.stat, at };
}

/**
 * Checks that the path still resolves inside the root to a regular file
 * (checkBeforeProbe: `checked` when taken while the file waited, again when
 * older than CHECK_FRESH_MS), and probes that checked real path,
 * never the name (which a link swapped in since discovery could send
 * elsewhere). After the probe the path is resolved again: should it lead
 * somewhere else now, the result is dropped rather than recorded. A file
 * whose size or mtime differs from its discovery's, before or after the
 * probe, is still being written: recorded `still_changing`, not entered into
 * the library. A probed file's fingerprint (fingerprint.ts) is taken too,
 * for recognising it should it move. `onProbed` is called once the probe
 * has returned, before the check after it. Machine errors (EIO, EMFILE) and aborts reject.
 */
export async function probeInRoot(
  probe: (file: string, options: { timeoutMs: number; signal: AbortSignal }) => Promise<ProbeResult>,
  request: FileProbeRequest,
  signal: AbortSignal,
  checks: CheckThreads,
  checked: Promise<CheckedBefore> = checkBeforeProbe(request, signal, checks),
  onProbed: () => void = () => undefined,
): Promise<FileProbeResult> {
  const { file, realRoot, discovered, timeoutMs } = request;
  let before = await checked;
  if (performance.now() - before.at > CHECK_FRESH_MS) before = await checkBeforeProbe(request, signal, checks);
  signal.throwIfAborted();
  if (!before.ok) return before.result;
  const { real, stat } = before;
  const started = process.hrtime.bigint();
  const result = await probe(real, { timeoutMs, signal });
  const probeSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  onProbed();
  // The fingerprint and the check after the probe, one request. A file that
  // cannot be read now simply has no fingerprint: it can then not be matched
  // when moved (one past its deadline too: the check says whether the file still answers).
  const second = await checks.check(file, result.ok ? real : null, signal);
  const fingerprint = second.fingerprint === null || second.fingerprint instanceof Error ? null : second.fingerprint.fingerprint;
  const failed = (reason: string): FileProbeResult => ({ outcome: { kind: 'failed', reason }, probeSeconds });
  const after = await resolveInside(realRoot, file, second.calls);
  if (!after.ok) return failed(after.reason);
  if (after.real !== real) return failed(ErrorType.FileVanished);
  const changed = (s: { size: number; mtimeMs: number }): boolean => s.size !== discovered.size || s.mtimeMs !== discovered.mtimeMs;
  if (changed(stat) || changed(after.stat)) return failed(ErrorType.StillChanging);
  if (!result.ok) return failed(result.reason);
  return {
    outcome: { kind: 'probed', file: { path: file, size: stat.size, mtimeMs: stat.mtimeMs, fingerprint }, metadata: result.metadata },
    probeSeconds,
  };
}
