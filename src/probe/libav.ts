/**
 * The in-process prober: opens a file with FFmpeg's libavformat through the
 * `node-av` bindings, in a media host (media-host/dispatch.ts), instead of starting
 * an ffprobe process per file. Runs only in a media host: a file that crashes
 * libavformat then takes down the host, never the worker.
 *
 * Same contract and the same fences as the ffprobe path (ffprobe.ts): the
 * file protocol only, the demuxers of ALLOWED_DEMUXERS only, the name behind
 * `file:` so it is never read as a URL or an option. The metadata is built as
 * the very fields ffprobe prints (`-show_format -show_streams`, printed the
 * way ffprobe prints them) and read by the same parser, so both probers give
 * the same body for the same file.
 */
import path from 'node:path';
// Types only: the bindings are loaded on demand (media/libav-input.ts), in a media host alone.
import type * as NodeAvLib from 'node-av/dist/lib/index';
import { ErrorType } from '../model/types';
import { libavBindings, throwIfTransient, withFencedInput } from '../media/libav-input';
import { parseFfprobeOutput, type ProbeResult } from './parse';

/** Probes files with libavformat; one per probe host. */
export interface LibavProbe {
  /** e.g. `libavformat 62.19.101 (FFmpeg 8.1-Jellyfin, node-av 6.1.1)`. */
  readonly version: string;
  /**
   * Probes one file (absolute path). Resolves with metadata or a per-file
   * reason (`timeout` when timeoutMs passes first); rejects with an AbortError
   * when the signal aborts, and with an error carrying `code` when the machine
   * is short of something a retry may find (descriptors, memory).
   */
  probe(file: string, options: { timeoutMs: number; signal?: AbortSignal }): Promise<ProbeResult>;
}

/** errno values as libavformat returns them (AVERROR(e) is -e on Linux). */
const ENOENT = 2;
const EPERM = 1;
const EACCES = 13;
const ENOTDIR = 20;
const EISDIR = 21;
const EINVAL = 22;


/** Why 200: as for ffprobe's messages, enough for a reason, short enough for a summary row. */
const MAX_REASON_MESSAGE_CHARS = 200;

/** ffprobe prints times with `%f`: seconds with six decimals. */
function seconds(value: bigint, timeBase: { num: number; den: number }, noValue: bigint): string {
  if (value === noValue || timeBase.den === 0) return 'N/A';
  return ((Number(value) * timeBase.num) / timeBase.den).toFixed(6);
}

function rational(value: { num: number; den: number }): string {
  return `${value.num}/${value.den}`;
}

/** Loads the bindings and returns the prober; throws when they cannot load. */
export function loadLibav(): LibavProbe {
  const { lib, constants, version } = libavBindings();
  const { FFmpegError, avGetCodecName, avGetMediaTypeString } = lib;
  const { AV_NOPTS_VALUE, AV_DISPOSITION_ATTACHED_PIC, AV_CODEC_ID_NONE, AVERROR_INVALIDDATA } = constants;

  /** Maps a failed libavformat call to a per-file reason, or throws when the machine is at fault. */
  function failure(code: number, opening: boolean): ProbeResult {
    throwIfTransient(code);
    const errno = -code;
    if (errno === ENOENT || errno === ENOTDIR) return { ok: false, reason: ErrorType.FileVanished };
    if (errno === EACCES || errno === EPERM) return { ok: false, reason: ErrorType.PermissionDenied };
    if (errno === EISDIR) return { ok: false, reason: ErrorType.NotARegularFile };
    // EINVAL from opening: the content was recognised as a format off the whitelist (a concat list, a playlist).
    if (code === AVERROR_INVALIDDATA || (opening && errno === EINVAL)) return { ok: false, reason: ErrorType.NotAMediaFile };
    const message = FFmpegError.strerror(code).slice(0, MAX_REASON_MESSAGE_CHARS);
    return { ok: false, reason: `${ErrorType.ProbeFailed}: ${message || `libavformat error ${code}`}` };
  }

  /** The fields of ffprobe's JSON that parse.ts reads, as ffprobe prints them. */
  function describe(context: NodeAvLib.FormatContext): Record<string, unknown> {
    const streams = context.streams.map((stream) => {
      const par = stream.codecpar;
      // ffprobe names the codec by its descriptor (`mp3`), never by the decoder that would read it (`mp3float`).
      const codecName = par.codecId === AV_CODEC_ID_NONE ? null : avGetCodecName(par.codecId);
      const entry: Record<string, unknown> = {
        index: stream.index,
        codec_name: codecName === null || codecName === 'unknown_codec' ? 'unknown' : codecName,
        codec_type: avGetMediaTypeString(par.codecType) ?? 'unknown',
        r_frame_rate: rational(stream.rFrameRate),
        avg_frame_rate: rational(stream.avgFrameRate),
        duration: seconds(stream.duration, stream.timeBase, AV_NOPTS_VALUE),
        nb_frames: stream.nbFrames !== 0n ? stream.nbFrames.toString() : 'N/A',
        disposition: { attached_pic: (stream.disposition & AV_DISPOSITION_ATTACHED_PIC) !== 0 ? 1 : 0 },
      };
      if (entry.codec_type === 'video') {
        entry.width = par.width;
        entry.height = par.height;
      }
      return entry;
    });
    const format: Record<string, unknown> = {
      format_name: context.iformat?.name ?? null,
      duration: seconds(context.duration, { num: 1, den: 1_000_000 }, AV_NOPTS_VALUE),
      bit_rate: context.bitRate > 0n ? context.bitRate.toString() : 'N/A',
      tags: context.metadata?.getAll() ?? {},
    };
    return { streams, format };
  }

  async function probe(file: string, options: { timeoutMs: number; signal?: AbortSignal }): Promise<ProbeResult> {
    if (!path.isAbsolute(file)) throw new TypeError(`probe needs an absolute path, got ${JSON.stringify(file)}`);
    return withFencedInput(file, options, async ({ context, code, failedToOpen, stopped }) => {
      if (stopped() === 'timeout') return { ok: false, reason: ErrorType.Timeout };
      if (code < 0) return failure(code, failedToOpen);
      return parseFfprobeOutput(describe(context), file);
    });
  }

  return { version, probe };
}
