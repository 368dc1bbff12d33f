/**
 * The in-process prober: opens a file with FFmpeg's libavformat through the
 * `node-av` bindings, in the probe host (probe-host.ts), instead of starting
 * an ffprobe process per file. Runs only in a probe host: a file that crashes
 * libavformat then takes down the host, never the worker.
 *
 * Same contract and the same fences as the ffprobe path (ffprobe.ts): the
 * file protocol only, the demuxers of ALLOWED_DEMUXERS only, the name behind
 * `file:` so it is never read as a URL or an option. The metadata is built as
 * the very fields ffprobe prints (`-show_format -show_streams`, printed the
 * way ffprobe prints them) and read by the same parser, so both probers give
 * the same body for the same file.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
// Types only: the bindings are loaded on demand by loadLibav, in the probe host alone.
import type * as NodeAvLib from 'node-av/dist/lib/index';
import type * as NodeAvConstants from 'node-av/dist/constants/index';
import { ErrorType } from '../scan/types';
import { ALLOWED_DEMUXERS } from './ffprobe';
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

type Lib = typeof NodeAvLib;
type Constants = typeof NodeAvConstants;

/** errno values as libavformat returns them (AVERROR(e) is -e on Linux). */
const ENOENT = 2;
const EPERM = 1;
const EAGAIN = 11;
const ENOMEM = 12;
const EACCES = 13;
const ENOTDIR = 20;
const EISDIR = 21;
const EINVAL = 22;
const ENFILE = 23;
const EMFILE = 24;

/** Shortages of the machine, not faults of the file: thrown so that Temporal retries the batch. */
const TRANSIENT: ReadonlyMap<number, string> = new Map([
  [EAGAIN, 'EAGAIN'],
  [ENOMEM, 'ENOMEM'],
  [ENFILE, 'ENFILE'],
  [EMFILE, 'EMFILE'],
]);

/** Why 200: as for ffprobe's messages, enough for a reason, short enough for a summary row. */
const MAX_REASON_MESSAGE_CHARS = 200;

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name === 'AbortError') return reason;
  return Object.assign(new Error('The probe was aborted', { cause: reason }), { name: 'AbortError' });
}

/** ffprobe prints times with `%f`: seconds with six decimals. */
function seconds(value: bigint, timeBase: { num: number; den: number }, noValue: bigint): string {
  if (value === noValue || timeBase.den === 0) return 'N/A';
  return ((Number(value) * timeBase.num) / timeBase.den).toFixed(6);
}

function rational(value: { num: number; den: number }): string {
  return `${value.num}/${value.den}`;
}

/** The bindings, required once on first use. */
export interface LibavBindings {
  lib: Lib;
  constants: Constants;
  /** e.g. `libavformat 62.19.101 (FFmpeg 8.1-Jellyfin, node-av 6.1.1)`. */
  version: string;
}

let bindings: LibavBindings | undefined;

/**
 * Loads the bindings (once per process); throws when they cannot load (no
 * prebuilt binary for this platform, a glibc too old), so that the caller can
 * fall back to ffprobe and ffmpeg.
 */
export function libavBindings(): LibavBindings {
  if (bindings !== undefined) return bindings;
  /* eslint-disable @typescript-eslint/no-require-imports -- loaded on demand: the worker itself never maps the 170 MB library */
  const lib = require('node-av/lib') as Lib;
  const constants = require('node-av/constants') as Constants;
  /* eslint-enable @typescript-eslint/no-require-imports */
  // The package exports no package.json: read it beside its entry point (dist/index.js).
  const packageFile = path.join(path.dirname(require.resolve('node-av')), '..', 'package.json');
  const packageVersion = (JSON.parse(readFileSync(packageFile, 'utf8')) as { version?: unknown }).version;
  // ffprobe runs with `-v error` and its messages are read, not shown; here
  // the return codes say it all, and libav's chatter would only fill the worker's log.
  lib.Log.setLevel(constants.AV_LOG_QUIET);
  const info = lib.getFFmpegInfo();
  const version = `libavformat ${info.libraries.avformat} (FFmpeg ${info.version}, node-av ${String(packageVersion)})`;
  bindings = { lib, constants, version };
  return bindings;
}

/** Throws, with a `code` Temporal's retry reads, when a libav error is a shortage of the machine rather than a fault of the file. */
export function throwIfTransient(code: number): void {
  const transient = TRANSIENT.get(-code);
  if (transient === undefined) return;
  const { FFmpegError } = libavBindings().lib;
  throw Object.assign(new Error(`libav: ${FFmpegError.strerror(code)}`), { code: transient });
}

/** A file opened behind the prober's fences (see withFencedInput). */
export interface FencedInput {
  readonly context: NodeAvLib.FormatContext;
  /** The result of opening and analysing the file: negative when either failed (the context is then unusable). */
  readonly code: number;
  /** Whether the failure, if any, came from opening (rather than from the analysis). */
  readonly failedToOpen: boolean;
  /** Why libavformat was interrupted, once it was: the time limit or the signal. */
  stopped(): 'timeout' | 'abort' | null;
}

/**
 * Opens a file (absolute path) the way the prober does, with the same fences
 * (the file protocol only, the demuxers of ALLOWED_DEMUXERS only, the name
 * behind `file:`), analyses its streams, and hands it to `use`; closes it
 * after. libavformat is interrupted when timeoutMs passes or the signal
 * aborts; an abort rejects with an AbortError, a time limit is for `use` to
 * report (FencedInput.stopped).
 */
export async function withFencedInput<T>(
  file: string,
  options: { timeoutMs: number; signal?: AbortSignal },
  use: (input: FencedInput) => Promise<T>,
): Promise<T> {
  const { FormatContext, Dictionary } = libavBindings().lib;
  const { signal } = options;
  if (signal?.aborted) throw abortError(signal);
  const context = new FormatContext();
  // Allocated before opening, so that libavformat's interrupt callback is in
  // place for every read: interrupt() then stops a slow open, analysis or read.
  context.allocContext();
  let stopped: 'timeout' | 'abort' | null = null;
  const interrupt = (why: 'timeout' | 'abort'): void => {
    stopped ??= why;
    context.interrupt();
  };
  const timer = setTimeout(() => interrupt('timeout'), options.timeoutMs);
  const onAbort = (): void => interrupt('abort');
  signal?.addEventListener('abort', onAbort, { once: true });
  const dictionary = Dictionary.fromObject(OPEN_OPTIONS);
  let opened = false;
  try {
    // `file:` keeps a name like `-i.mp4`, `http:x.mp4` or `a|b.mp4` a file name.
    const openCode = await context.openInput(`file:${file}`, null, dictionary);
    opened = openCode >= 0;
    const code = opened ? await context.findStreamInfo(null) : openCode;
    // An interrupted analysis may still return success, with what it had read: never trust it.
    if (stopped === 'abort' && signal) throw abortError(signal);
    const result = await use({ context, code, failedToOpen: !opened, stopped: () => stopped });
    if (stopped === 'abort' && signal) throw abortError(signal);
    return result;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    dictionary.free();
    if (opened) await context.closeInput();
    else context.freeContext();
  }
}

/** The same options ffprobe.ts passes on its command line, plus the one ffprobe sets itself. */
const OPEN_OPTIONS = {
  protocol_whitelist: 'file',
  format_whitelist: ALLOWED_DEMUXERS.join(','),
  scan_all_pmts: '1',
};

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
