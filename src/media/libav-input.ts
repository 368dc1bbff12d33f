/**
 * libavformat behind the fences every libav reader here keeps (the prober in
 * probe/libav.ts, the picture maker in thumbnails/libav-frame.ts): the
 * bindings loaded once, on demand, in a media host alone; the file protocol
 * only, the demuxers of ALLOWED_DEMUXERS only, the name behind `file:`, and
 * an interrupt on the time limit or an abort.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
// Types only: the bindings are loaded on demand by libavBindings, in a media host alone.
import type * as NodeAvLib from 'node-av/dist/lib/index';
import type * as NodeAvConstants from 'node-av/dist/constants/index';
import { ALLOWED_DEMUXERS } from './demuxers';

type Lib = typeof NodeAvLib;
type Constants = typeof NodeAvConstants;

/** errno values of the machine's shortages, as libavformat returns them (AVERROR(e) is -e on Linux). */
const EAGAIN = 11;
const ENOMEM = 12;
const ENFILE = 23;
const EMFILE = 24;

/** Shortages of the machine, not faults of the file: thrown so that Temporal retries the batch. */
const TRANSIENT: ReadonlyMap<number, string> = new Map([
  [EAGAIN, 'EAGAIN'],
  [ENOMEM, 'ENOMEM'],
  [ENFILE, 'ENFILE'],
  [EMFILE, 'EMFILE'],
]);

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name === 'AbortError') return reason;
  return Object.assign(new Error('The probe was aborted', { cause: reason }), { name: 'AbortError' });
}

/** The same options ffprobe.ts passes on its command line, plus the one ffprobe sets itself. */
const OPEN_OPTIONS = {
  protocol_whitelist: 'file',
  format_whitelist: ALLOWED_DEMUXERS.join(','),
  scan_all_pmts: '1',
};

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
 * behind `file:`), analyses its streams (unless `analyse` says the header
 * tells enough), and hands it to `use`; closes it
 * after. libavformat is interrupted when timeoutMs passes or the signal
 * aborts; an abort rejects with an AbortError, a time limit is for `use` to
 * report (FencedInput.stopped).
 */
export async function withFencedInput<T>(
  file: string,
  options: {
    timeoutMs: number;
    signal?: AbortSignal;
    /**
     * Whether the streams need analysing (avformat_find_stream_info, which
     * decodes the first frames of every stream) once the header is read; always when absent.
     */
    analyse?: (context: NodeAvLib.FormatContext) => boolean;
  },
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
    const code = !opened ? openCode : (options.analyse?.(context) ?? true) ? await context.findStreamInfo(null) : 0;
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
