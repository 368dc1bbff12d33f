/**
 * Types and constants shared by the workflow, the activities and the API.
 * Workflow-safe: plain data only, no Node built-ins, no I/O.
 */

/** File extensions (lower case, with the dot) that a scan treats as video. */
export const VIDEO_EXTENSIONS: readonly string[] = [
  '.mp4', '.m4v', '.mkv', '.webm', '.mov', '.avi', '.ts', '.m2ts', '.mts', '.mpg', '.mpeg',
  '.wmv', '.flv', '.3gp', '.ogv', '.vob', '.divx', '.asf', '.mxf', '.rm', '.rmvb', '.f4v',
];

/** Explicit failure and reason strings: bundling can rename classes, so nothing relies on class names. */
export const ErrorType = {
  /** ffprobe could not read the file as media. */
  NotAMediaFile: 'not_a_media_file',
  /** Media, but with no video stream (audio only, cover art only). */
  NoVideoStream: 'no_video_stream',
  PermissionDenied: 'permission_denied',
  /** The file was discovered, then disappeared before it was probed. */
  FileVanished: 'file_vanished',
  /** Not a regular file any more (replaced by a FIFO, a folder, a device). */
  NotARegularFile: 'not_a_regular_file',
  /** ffprobe ran past PROBE_TIMEOUT_MS and was killed. */
  Timeout: 'timeout',
  /** ffprobe produced more output than we accept. */
  OutputTooLarge: 'output_too_large',
  /** The name is not valid UTF-8, so its path cannot be passed on or stored exactly. */
  InvalidFileName: 'invalid_file_name',
  /** A folder the scan could not list (no permission): its files are unknown until it is readable. */
  UnreadableFolder: 'unreadable_folder',
  /** A symlink named like a video whose target does not exist. */
  BrokenLink: 'broken_link',
  /** A symlink named like a video that leads out of the scan root: never followed. */
  OutsideScanRoot: 'outside_scan_root',
  /**
   * The file's size or mtime changed between its discovery and the end of its
   * probe (or it was modified within SCAN_SETTLE_SECONDS of discovery): a copy
   * still under way. Not entered into the library; the next scan takes it.
   */
  StillChanging: 'still_changing',
  /**
   * The check for vanished files was not made, and nothing was marked missing:
   * the root as a whole looked gone (no video file found where the library
   * knows some). The message follows the colon.
   */
  MissingCheckSkipped: 'missing_check_skipped',
  /** Any other ffprobe failure; the message follows the colon. */
  ProbeFailed: 'probe_failed',
  /**
   * A filesystem call on the file, or on its folder, did not answer within
   * FS_CALL_TIMEOUT (a share that stopped answering): the file is neither
   * probed nor marked missing; a folder's files are not known this time.
   */
  FsTimeout: 'fs_timeout',
  /** A read error of the share or disk (EIO, ESTALE, ENOTCONN) on the file or on its folder's listing. */
  IoError: 'io_error',
  /** The scan's root lacks its SCAN_ROOT_MARKER file (or does not answer): the share is offline, nothing is marked missing. */
  RootOffline: 'root_offline',
  /** Application failure types (not per-file reasons). */
  ScanTimeout: 'ScanTimeout',
  InvalidScanRoot: 'InvalidScanRoot',
  ProberUnavailable: 'ProberUnavailable',
} as const;

/** `thumbnails`: probing is over and only the pictures of the files probed remain. */
export type ScanPhase = 'discovering' | 'probing' | 'thumbnails' | 'finalizing' | 'done';

export interface ScanCounts {
  discovered: number;
  probed: number;
  new: number;
  updated: number;
  skipped: number;
  failed: number;
  /** Files found at a new path and matched to a vanished record (same size and fingerprint): the record moved, no probe. */
  moved: number;
  /** Videos under the root whose files were gone, now marked `missing` (never deleted). */
  missing: number;
  /** Thumbnails made by this scan (for files probed new or changed); absent in scans started before thumbnails. */
  thumbnails?: number;
}

/**
 * Globs of paths a scan never enters or lists, unless SCAN_EXCLUDE says
 * otherwise: the folders NAS boxes and desktops scatter through media
 * (Synology thumbnails, recycle bins, snapshots, desktop trash, macOS
 * resource forks, fsck's lost+found, Windows' recycle bin and volume data)
 * and hidden folders. A pattern without a slash matches a name at any depth;
 * one ending in `/` matches folders only.
 */
export const DEFAULT_SCAN_EXCLUDE: readonly string[] = [
  '@eaDir',
  '#recycle',
  '#snapshot',
  '.Trash-*',
  '._*',
  'lost+found',
  '$RECYCLE.BIN',
  'System Volume Information',
  '.*/',
];

export interface FileError {
  path: string;
  error: string;
}

/**
 * Probe batches per run before continue-as-new, for scans started from now on.
 * Each batch costs about six history events (activity scheduled/started/
 * completed plus a workflow task), so 400 batches stay near 2,500 events, far
 * below Temporal's 10,240-event warning. It travels in each scan's input, so
 * changing it here changes new scans only.
 */
export const MAX_BATCHES_PER_RUN = 400;

/** The summary a finished scan returns; `errors` is capped, the full list is in the library. */
export interface ScanResult {
  scanned: number;
  new: number;
  updated: number;
  skipped: number;
  errors: FileError[];
}

/** How many file errors a summary carries; the rest stay in the library. */
export const MAX_SUMMARY_ERRORS = 50;

/** Where a continued run picks up. */
export interface ScanCursor {
  /** Probe index of the next batch to start; every index below it has finished. */
  nextIndex: number;
  /** Number of files that need probing (known after discovery). */
  toProbe: number;
  counts: ScanCounts;
  errors: FileError[];
  /** Epoch ms when the scan (its first run) started. */
  startedAtMs: number;
  /** Epoch ms when probing started, for the rate. */
  probingStartedAtMs: number | null;
  /** Paused when this run handed over (continue-as-new); absent in older cursors. */
  paused?: boolean;
  /** Probe index of the next thumbnail batch; absent until the thumbnail phase starts. */
  thumbnailIndex?: number;
  /** Probe indexes the picture phase covers (DiscoverResult.toThumbnail); absent in older cursors: toProbe. */
  toThumbnail?: number;
  /** Of this round's shape (STOPPABLE_BATCHES_PATCH in scan-library.ts); absent in cursors of older scans. */
  stoppable?: boolean;
  /** Ranges [from, to) of batches a pause stopped, launched again first on resume. */
  relaunch?: Array<[number, number]>;
  /** Pictures made or failed so far (this round's shape). */
  picturesDone?: number;
  /** Epoch ms when the picture phase started, for its rate. */
  picturesStartedAtMs?: number;
}

export interface ScanInput {
  scanId: string;
  /** Real, absolute path of the root, validated by the API. */
  root: string;
  recursive: boolean;
  force: boolean;
  /** Lower-case extensions with the dot; empty means VIDEO_EXTENSIONS. */
  extensions: string[];
  /** The scan whose failed and unreached files this one probes again. */
  retryOf: string | null;
  batchSize: number;
  window: number;
  /** Per-file ffprobe limit. */
  probeTimeoutMs: number;
  /** Whole-scan limit; null for none. */
  scanTimeoutMs: number | null;
  /**
   * Probe batches per run before continue-as-new. Always set by ScanService
   * (MAX_BATCHES_PER_RUN); absent only in scans started before it was, which
   * keep the limit they started with.
   */
  maxBatchesPerRun?: number;
  /**
   * Globs of paths never entered or listed (SCAN_EXCLUDE plus the request's
   * own); absent in scans started before exclusions, which use DEFAULT_SCAN_EXCLUDE.
   */
  exclude?: string[];
  /** A file modified less than this many seconds before its discovery is left for the next scan; absent: 0. */
  settleSeconds?: number;
  /** Files of this root in flight at once across all workers (max_parallel_files); absent: the workers' own limits alone. */
  maxParallelFiles?: number;
  /** The request's `thumbnails`: false, no picture phase; absent, the worker's THUMBNAILS default. */
  thumbnails?: boolean;
  /** Set by continue-as-new. */
  cursor?: ScanCursor;
  /** Paused before it started (a pause of its pending job): the scan begins paused. Absent: not paused. */
  startPaused?: boolean;
}

/** The progress query's answer: the live state of a scan. */
export interface ScanProgress {
  phase: ScanPhase;
  counts: ScanCounts;
  /** Files that need probing; null while discovering. */
  toProbe: number | null;
  /** 0..1, null before the total is known. */
  progress: number | null;
  ratePerS: number;
  etaSeconds: number | null;
  cancelRequested: boolean;
  /** Paused by a pause update (no new probe batches); absent in scans that cannot pause. */
  paused?: boolean;
  /** Paused, while batches stopped by the pause have not all ended; absent in scans of older shapes. */
  pauseRequested?: boolean;
  errors: FileError[];
}

// ---- activity inputs and results (one object in, one object out) ----

export type DiscoverInput = Pick<ScanInput, 'scanId' | 'root' | 'recursive' | 'force' | 'extensions' | 'retryOf' | 'exclude' | 'settleSeconds' | 'thumbnails'>;

export interface DiscoverResult {
  discovered: number;
  /** Files recorded as failed at discovery (bad names, FIFOs, broken links); absent in older results. */
  failed?: number;
  /** Files that need ffprobe. */
  toProbe: number;
  /**
   * Probe indexes the picture phase covers: the probed files, then the
   * unchanged ones whose video has no picture yet; absent in older results (toProbe).
   */
  toThumbnail?: number;
  /** Unchanged files (size and mtime match the library). */
  skipped: number;
  /** Files whose record moved to their new path (not probed); absent in older results. */
  moved?: number;
  /** Videos marked missing by this scan; absent in older results. */
  missing?: number;
}

/** Input of awaitScanSlot: the root's guard a scheduled run is about to start. */
export interface AwaitScanSlotInput {
  guardId: string;
  /** Asks once and answers whether a slot was taken, instead of waiting for one. */
  once?: boolean;
}

export interface ProbeBatchInput {
  scanId: string;
  /** Probe indexes [fromIndex, toIndex). */
  fromIndex: number;
  toIndex: number;
  probeTimeoutMs: number;
  /** Files of this batch in flight at once (the scan's max_parallel_files shared by its window); absent: no limit of its own. */
  maxParallelFiles?: number;
}

export interface ProbeBatchResult {
  probed: number;
  new: number;
  updated: number;
  failed: number;
  /** Up to MAX_SUMMARY_ERRORS failures of this batch. */
  errors: FileError[];
}

/** What a probe batch heartbeats: the probe indexes finished so far, so a retry skips them. */
export interface ThumbnailBatchInput {
  scanId: string;
  /** Probe indexes [fromIndex, toIndex): the files of this scan probed new or changed in that range get a picture. */
  fromIndex: number;
  toIndex: number;
  /** Time limit of one picture (PROBE_TIMEOUT_MS). */
  timeoutMs: number;
  /** Pictures of this batch in flight at once (as ProbeBatchInput's); absent: no limit of its own. */
  maxParallelFiles?: number;
}

export interface ThumbnailBatchResult {
  /** Pictures made by this batch. */
  made: number;
  /** Videos that got no picture (their reason is in the library). */
  failed: number;
}

export interface ProbeBatchCheckpoint {
  done: number[];
}

export type ScanOutcome = 'completed' | 'cancelled' | 'failed' | 'timeout';

export interface FinishScanInput {
  scanId: string;
  outcome: ScanOutcome;
  error: string | null;
}

/** Counts recomputed from the library, so they include work that finished after the last batch result. */
export interface FinishScanResult {
  counts: ScanCounts;
  errors: FileError[];
}

/** What a scan carries in its memo, so that a job body needs no other store. */
export interface ScanMemo {
  path: string;
  recursive: boolean;
  retryOf: string | null;
  createdAt: string;
  /**
   * The scan's exclusion globs in full (SCAN_EXCLUDE with the request's own),
   * so that a retry keeps them; absent in scans started before they were kept.
   */
  exclude?: string[];
  /** The request's max_parallel_files, kept for a retry; absent when it gave none. */
  maxParallelFiles?: number;
  /** The request's thumbnails, kept for a retry; absent when it gave none. */
  thumbnails?: boolean;
}

/** What a root's guard carries in its memo: the job it holds, readable without a worker. */
export interface ScanRootGuardMemo extends ScanMemo {
  scanId: string;
  force: boolean;
  /** A pause (true) or resume (false) of the job received while its scan had not started. */
  pauseRequested?: boolean;
}

/** Input of the per-root guard: the scan to start. */
export interface ScanRootGuardInput {
  /** The id the API chose for the scan; absent in guards started before it did (the guard chose one). */
  scanId?: string;
  scan: Omit<ScanInput, 'scanId'>;
  memo: ScanMemo;
  /** Backstop execution timeout for the scan, in ms; null for none. */
  executionTimeoutMs: number | null;
}

/** The answer to a claim on a root: the scan that runs it, and whether this claim started it. */
export interface ScanClaim {
  jobId: string;
  created: boolean;
}
