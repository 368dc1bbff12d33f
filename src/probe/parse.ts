/**
 * Turns ffprobe's JSON (`-print_format json -show_format -show_streams`) into
 * VideoMetadata. Pure: no I/O, so every odd shape can be unit-tested. ffprobe's
 * output for hostile or broken files can miss any field or carry the wrong
 * type, so nothing here trusts the shape and nothing throws.
 */
import path from 'node:path';
import type { StreamCounts, VideoMetadata } from '../library/types';
import { ErrorType } from '../model/types';

/** A probe's answer: metadata, or a per-file reason string from ErrorType (`probe_failed: …` carries a message). */
export type ProbeResult = { ok: true; metadata: VideoMetadata } | { ok: false; reason: string };

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function asString(value: unknown): string | null {
  return typeof value === 'string' && value.length > 0 ? value : null;
}

/** ffprobe prints most numbers as strings ("2.000000", "N/A"); accept both forms. */
function asNumber(value: unknown): number | null {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value !== 'string' || value.trim() === '') return null;
  const parsed = Number(value);
  return Number.isFinite(parsed) ? parsed : null;
}

function asPositiveInteger(value: unknown): number | null {
  const parsed = asNumber(value);
  return parsed !== null && Number.isSafeInteger(parsed) && parsed > 0 ? parsed : null;
}

function asNonNegative(value: unknown): number | null {
  const parsed = asNumber(value);
  return parsed !== null && parsed >= 0 ? parsed : null;
}

function greatestCommonDivisor(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** "30000/1001" → [30000, 1001]; "50/2" → [25, 1]; "0/0", "25", garbage → null. */
function parseRate(value: unknown): [number, number] | null {
  const text = asString(value);
  const match = text === null ? null : /^(\d+)\/(\d+)$/.exec(text);
  if (!match) return null;
  const numerator = Number(match[1]);
  const denominator = Number(match[2]);
  if (!Number.isSafeInteger(numerator) || !Number.isSafeInteger(denominator) || numerator === 0 || denominator === 0) {
    return null;
  }
  const divisor = greatestCommonDivisor(numerator, denominator);
  return [numerator / divisor, denominator / divisor];
}

function codecType(stream: JsonObject): string | null {
  return asString(stream['codec_type']);
}

/** Cover art and thumbnails are "video" streams of one picture; they do not make a file a video. */
function isAttachedPicture(stream: JsonObject): boolean {
  const disposition = stream['disposition'];
  return isObject(disposition) && asNumber(disposition['attached_pic']) === 1;
}

function isRealVideo(stream: JsonObject): boolean {
  return codecType(stream) === 'video' && !isAttachedPicture(stream);
}

function countStreams(streams: JsonObject[]): StreamCounts {
  const counts: StreamCounts = { video: 0, audio: 0, subtitle: 0, data: 0 };
  for (const stream of streams) {
    const type = codecType(stream);
    if (isRealVideo(stream)) counts.video++;
    else if (type === 'audio') counts.audio++;
    else if (type === 'subtitle') counts.subtitle++;
    else counts.data++;
  }
  return counts;
}

const QUICKTIME_FAMILY = 'mov,mp4,m4a,3gp,3g2,mj2';

/**
 * A short container name. ffprobe names demuxers, not formats: one demuxer reads
 * both MP4 and QuickTime, another both Matroska and WebM, so the file's extension
 * (then the MP4 brand) tells which one the file claims to be.
 */
function containerName(format: JsonObject, filePath: string): string | null {
  const formatName = asString(format['format_name']);
  if (formatName === null) return null;
  const extension = path.extname(filePath).toLowerCase();
  if (formatName === QUICKTIME_FAMILY) {
    if (extension === '.mp4' || extension === '.m4v') return 'mp4';
    if (extension === '.mov' || extension === '.qt') return 'mov';
    const tags = format['tags'];
    const brand = isObject(tags) ? asString(tags['major_brand'])?.trim() : undefined;
    return brand === 'qt' ? 'mov' : 'mp4';
  }
  if (formatName === 'matroska,webm') return extension === '.webm' ? 'webm' : 'matroska';
  return formatName.split(',')[0] || null;
}

/**
 * Parses ffprobe's JSON for the file at `filePath` (its extension names the
 * container where ffprobe's demuxer name is ambiguous). Returns `no_video_stream`
 * when no stream is a real video (attached pictures do not count) and
 * `probe_failed: …` when the output is not an ffprobe JSON object at all.
 */
export function parseFfprobeOutput(json: unknown, filePath: string): ProbeResult {
  if (!isObject(json)) return { ok: false, reason: `${ErrorType.ProbeFailed}: ffprobe output is not a JSON object` };
  const rawStreams = json['streams'];
  const streams = Array.isArray(rawStreams) ? rawStreams.filter(isObject) : [];
  const format = isObject(json['format']) ? json['format'] : {};

  const video = streams.find(isRealVideo);
  if (!video) return { ok: false, reason: ErrorType.NoVideoStream };
  const audio = streams.find((stream) => codecType(stream) === 'audio');

  const rate = parseRate(video['avg_frame_rate']) ?? parseRate(video['r_frame_rate']);
  const durationSeconds = asNonNegative(format['duration']) ?? asNonNegative(video['duration']);
  const frames =
    asPositiveInteger(video['nb_frames']) ??
    (durationSeconds !== null && rate !== null ? Math.round((durationSeconds * rate[0]) / rate[1]) : null);
  const bitRate = asNonNegative(format['bit_rate']);

  return {
    ok: true,
    metadata: {
      durationSeconds,
      durationFrames: frames,
      frameRateNumerator: rate?.[0] ?? null,
      frameRateDenominator: rate?.[1] ?? null,
      width: asPositiveInteger(video['width']),
      height: asPositiveInteger(video['height']),
      videoCodec: asString(video['codec_name']),
      audioCodec: audio ? asString(audio['codec_name']) : null,
      container: containerName(format, filePath),
      bitRate: bitRate === null ? null : Math.round(bitRate),
      streamCounts: countStreams(streams),
    },
  };
}
