/**
 * What recording a probe result writes to a video, shared by the two
 * dialects' writers (probes-sqlite.ts, probes-postgres.ts).
 */
import path from 'node:path';
import type { ProbeOutcome } from './types';

export type ProbeVerdict = 'new' | 'updated' | 'failed';
export type ProbeResult = { position: number; outcome: ProbeOutcome };

/**
 * The columns recordProbes writes to a probed file's video, insert and update
 * alike (created_at is added on insert only; id and moved_from are left as
 * they are), and their values for one probed file.
 */
export const PROBED_COLUMNS = [
  'path',
  'filename',
  'file_size',
  'mtime_ms',
  'duration_seconds',
  'duration_frames',
  'frame_rate_numerator',
  'frame_rate_denominator',
  'width',
  'height',
  'video_codec',
  'audio_codec',
  'container',
  'bit_rate',
  'streams_video',
  'streams_audio',
  'streams_subtitle',
  'streams_data',
  'status',
  'missing_since',
  'fingerprint',
  'thumbnail_at',
  'thumbnail_error',
  'probed_at',
  'updated_at',
] as const;

export function probedValues(outcome: Extract<ProbeOutcome, { kind: 'probed' }>, now: string): unknown[] {
  const { file, metadata: m } = outcome;
  return [
    file.path,
    path.basename(file.path),
    file.size,
    file.mtimeMs,
    m.durationSeconds,
    m.durationFrames,
    m.frameRateNumerator,
    m.frameRateDenominator,
    m.width,
    m.height,
    m.videoCodec,
    m.audioCodec,
    m.container,
    m.bitRate,
    m.streamCounts.video,
    m.streamCounts.audio,
    m.streamCounts.subtitle,
    m.streamCounts.data,
    'present',
    null,
    file.fingerprint ?? null,
    // The file is new or changed: its picture (if any) is stale until the scan's thumbnail phase remakes it.
    null,
    null,
    now,
    now,
  ];
}

/** A scan file's status after a probed result: a repeat (a retried batch) keeps the first verdict. */
export function keptVerdict(marked: unknown, verdict: 'new' | 'updated'): 'new' | 'updated' {
  return marked === 'new' || marked === 'updated' ? marked : verdict;
}
