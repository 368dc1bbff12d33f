/** Messages between a worker's pool and its media hosts (see dispatch.ts and pool.ts). */
import type { FileProbeRequest, FileProbeResult } from '../probe/contained';
import type { ThumbnailResult } from '../thumbnails/types';

/** Which prober a host runs: libavformat in the host itself, or one ffprobe process per file. */
export type ProberKind = 'libav' | 'ffprobe';

export type HostRequest =
  /** A file of a scan, checked inside its root right before and after its probe (probe/contained.ts). */
  | ({ type: 'probeFile'; id: number } & FileProbeRequest)
  /** libav hosts only: one frame of `file` at `seconds`, `width` wide, as JPEG into `output` (a temp file the worker renames). */
  | { type: 'thumbnail'; id: number; file: string; output: string; seconds: number; width: number; timeoutMs: number }
  | { type: 'version'; id: number }
  | { type: 'abort'; id: number };

/** The host's first message: it has loaded its prober and takes requests, or it cannot (and exits). */
export type HostStatus = { type: 'ready'; kind: ProberKind } | { type: 'unavailable'; kind: ProberKind; message: string };

export type HostReply =
  | { id: number; result: FileProbeResult | ThumbnailResult | string }
  | { id: number; error: { name: string; message: string; code?: string } };

/** Everything a host sends. */
export type HostMessage = HostStatus | HostReply;

/** Environment variables a worker sets for the hosts it starts (never read from the user's environment). */
export const HOST_ENV = {
  kind: 'PROBE_HOST_PROBER',
  concurrency: 'PROBE_HOST_CONCURRENCY',
  /** Pictures a host makes at once (it holds as many more waiting). */
  thumbnailConcurrency: 'PROBE_HOST_THUMBNAIL_CONCURRENCY',
  ffprobe: 'PROBE_HOST_FFPROBE',
  /** FS_CALL_TIMEOUT in ms: the deadline of the host's checks and fingerprint reads. */
  fsCallTimeoutMs: 'PROBE_HOST_FS_CALL_TIMEOUT_MS',
  /** Media-path calls the host has in flight at once (its pool is sized for them). */
  fsCalls: 'PROBE_HOST_FS_CALLS',
} as const;
