/** What a thumbnail run gives, shared by the worker, the ffmpeg thumbnailer and the probe hosts. */

/** Reasons recorded for a video that got no picture. */
export const ThumbnailError = {
  Timeout: 'thumbnail_timeout',
  NoFrame: 'thumbnail_no_frame',
  Failed: 'thumbnail_failed',
} as const;

export type ThumbnailResult = { ok: true } | { ok: false; reason: string };

/** One picture for a libav probe host to make (thumbnails/libav-frame.ts), through the worker's pool (probe/isolated.ts). */
export interface FrameRequest {
  /** Real, absolute path of the video, already checked to lie inside its root. */
  file: string;
  /** The temp file the JPEG is written to; the caller renames it into place, or removes it. */
  output: string;
  /** Second into the video the frame is taken at. */
  seconds: number;
  width: number;
  timeoutMs: number;
  signal?: AbortSignal;
}
