/**
 * The library database's public shape: what activities write and the API reads.
 * One facade (library.ts) over a repository per table serves SQLite and
 * PostgreSQL through Kysely.
 */

export interface StreamCounts {
  video: number;
  audio: number;
  subtitle: number;
  data: number;
}

/** What ffprobe tells about one file, parsed. */
export interface VideoMetadata {
  durationSeconds: number | null;
  durationFrames: number | null;
  frameRateNumerator: number | null;
  frameRateDenominator: number | null;
  width: number | null;
  height: number | null;
  videoCodec: string | null;
  audioCodec: string | null;
  container: string | null;
  bitRate: number | null;
  streamCounts: StreamCounts;
}

/** The metadata fields that the Video body and the videos table share, by the same names. */
export interface VideoMediaFields {
  duration_seconds: number | null;
  duration_frames: number | null;
  frame_rate_numerator: number | null;
  frame_rate_denominator: number | null;
  width: number | null;
  height: number | null;
  video_codec: string | null;
  audio_codec: string | null;
  container: string | null;
  bit_rate: number | null;
}

/** The Video body of API.md. */
export interface Video extends VideoMediaFields {
  id: number;
  path: string;
  filename: string;
  file_size: number;
  modified_at: string;
  stream_counts: StreamCounts;
  status: 'present' | 'missing';
  missing_since: string | null;
  /** The path this record had before its file was found moved; null if it never moved. */
  moved_from: string | null;
  /** When its thumbnail was made (ISO-8601); null while it has none. */
  thumbnail_at: string | null;
  probed_at: string;
  created_at: string;
  updated_at: string;
}

export interface DiscoveredFile {
  /** Absolute path. */
  path: string;
  size: number;
  mtimeMs: number;
  /** Hash of its first and last 64 KiB, taken when it was probed. */
  fingerprint?: string | null;
}

/** A present video whose file the scan did not find (a candidate for missing, or for a move). */
export interface VanishedVideo {
  id: number;
  path: string;
  size: number;
  fingerprint: string | null;
}

/**
 * Per-scan file status: pending until probed; skipped when unchanged; moved
 * when a vanished record was matched to it; missing for a known video whose
 * file the scan did not find (a row of its own, not a discovered file).
 */
export type ScanFileStatus = 'pending' | 'skipped' | 'new' | 'updated' | 'failed' | 'moved' | 'missing';

export interface ScanFileRow {
  scanId: string;
  /** Discovery order (0-based). */
  position: number;
  /** Order among files to probe (0-based); null for skipped files. */
  probeIndex: number | null;
  path: string;
  size: number;
  mtimeMs: number;
  status: ScanFileStatus;
  error: string | null;
}

export interface NewScanFile {
  position: number;
  probeIndex: number | null;
  path: string;
  size: number;
  mtimeMs: number;
  status: 'pending' | 'skipped' | 'failed';
  /** The reason, for a file that failed at discovery. */
  error?: string | null;
}

export type ProbeOutcome =
  | { kind: 'probed'; file: DiscoveredFile; metadata: VideoMetadata }
  | { kind: 'failed'; reason: string };

export interface ScanRecord {
  scanId: string;
  root: string;
  recursive: boolean;
  force: boolean;
  retryOf: string | null;
  outcome: string | null;
  counts: Record<string, number> | null;
  error: string | null;
  createdAt: string;
  finishedAt: string | null;
  /** When its file records were pruned after SCAN_RECORD_RETENTION; null while they are kept. */
  filesPrunedAt: string | null;
  /** Its last Temporal run, recorded with its end; null before, and for scans recorded before it was kept. */
  runId: string | null;
}

export interface ListVideosOptions {
  limit: number;
  offset: number;
  status?: 'present' | 'missing';
}

export interface Page<T> {
  items: T[];
  total: number;
}
