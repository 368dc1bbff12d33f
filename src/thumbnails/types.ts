/** What a thumbnail run gives, shared by the worker, the ffmpeg thumbnailer and the probe hosts. */

/** Reasons recorded for a video that got no picture. */
export const ThumbnailError = {
  Timeout: 'thumbnail_timeout',
  NoFrame: 'thumbnail_no_frame',
  Failed: 'thumbnail_failed',
} as const;

export type ThumbnailResult = { ok: true } | { ok: false; reason: string };

/** One picture for a libav media host to make (thumbnails/libav-frame.ts), through the worker's pool (media-host/pool.ts). */
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

/** What makes pictures from frames: the worker's libav media hosts (media-host/pool.ts). */
export interface FrameMaker {
  /** Resolves with the picture made or a per-file reason; rejects on abort and on machine problems. */
  thumbnail(request: FrameRequest): Promise<ThumbnailResult>;
}
