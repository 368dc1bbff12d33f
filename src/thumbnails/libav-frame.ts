/**
 * Makes one thumbnail in a media host (media-host/dispatch.ts) with libav through
 * node-av, instead of an ffmpeg process: the file is opened behind the
 * prober's fences (withFencedInput), the demuxer seeks to the keyframe at or
 * before the target second, frames are decoded from there up to the target
 * (the very frame ffmpeg's `-ss` gives, not the keyframe, which is often
 * seconds earlier, at a black opening), and that frame is scaled to the width asked for (height by display aspect, even) and encoded as JPEG
 * into the temp file named by the caller, who renames it into place.
 *
 * Runs only in a media host: a file that crashes a decoder takes down the
 * host, which the worker's pool restarts, never the worker.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type * as NodeAvLib from 'node-av/dist/lib/index';
import { libavBindings, throwIfTransient, withFencedInput } from '../media/libav-input';
import { ThumbnailError, type FrameRequest, type ThumbnailResult } from './types';

/** Why 300: as for ffmpeg's first line of stderr, enough for a reason, short enough for a row. */
const MAX_REASON_CHARS = 300;

/** `-q:v 4` of the ffmpeg thumbnailer: a fixed quantiser, in lambda units. */
const JPEG_QSCALE = 4;

/** Libav's INT64_MIN: "no lower bound" for a seek. */
const NO_LOWER_BOUND = -(2n ** 63n);

/**
 * The height a picture `width` wide keeps the display aspect with: the
 * frame's size times its sample aspect ratio, rounded down to even, as the
 * ffmpeg thumbnailer's `trunc(w/dar/2)*2`.
 */
export function thumbnailHeight(width: number, frame: { width: number; height: number }, sar: { num: number; den: number }): number {
  const square = sar.num > 0 && sar.den > 0 ? sar : { num: 1, den: 1 };
  const dar = (frame.width * square.num) / (frame.height * square.den);
  return Math.max(2, Math.trunc(width / dar / 2) * 2);
}

/** Makes the picture of one video into `output`; per-file failures resolve as reasons, aborts and shortages reject. */
export async function makeFrameThumbnail(request: FrameRequest): Promise<ThumbnailResult> {
  if (!path.isAbsolute(request.file)) throw new TypeError(`thumbnail needs an absolute path, got ${JSON.stringify(request.file)}`);
  const deadline = Date.now() + request.timeoutMs;
  const first = await thumbnailOnce(request, true, request.timeoutMs);
  // Where the seek lands past every frame and seeking back to the start finds
  // none either (thumbnailOnce), decoding from the start in a second opening,
  // as ffmpeg's second run does, finds it within what is left of the time limit.
  if (first.ok || first.reason !== ThumbnailError.NoFrame || request.seconds <= 0) return first;
  const left = deadline - Date.now();
  return left > 0 ? thumbnailOnce(request, false, left) : { ok: false, reason: ThumbnailError.Timeout };
}

/** A per-file reason for a failed libav call; throws when the machine is short of something instead. */
function failed(code: number, what: string): ThumbnailResult {
  throwIfTransient(code);
  const message = libavBindings().lib.FFmpegError.strerror(code) || `libav error ${code}`;
  return { ok: false, reason: `${ThumbnailError.Failed}: ${what}: ${message}`.slice(0, MAX_REASON_CHARS) };
}

/**
 * Whether the header tells what a picture needs, so that the streams need not
 * be analysed (avformat_find_stream_info decodes the first frames of every
 * stream, audio included: most of the cost of a small file's picture): a
 * video stream whose codec it names. The size, the pixel format and the
 * aspect come with the decoded frame; the start time from the header or the
 * first packets (startMicroseconds). A stream only analysis can name (an
 * MPEG-TS stream of a private type) is analysed, as ffmpeg would.
 */
function headerTellsEnough(context: NodeAvLib.FormatContext): boolean {
  const { AVMEDIA_TYPE_VIDEO, AV_CODEC_ID_NONE } = libavBindings().constants;
  const index = context.findBestStream(AVMEDIA_TYPE_VIDEO, -1, -1);
  const video = index >= 0 ? context.streams[index] : undefined;
  return video !== undefined && video.codecpar.codecId !== AV_CODEC_ID_NONE;
}

/** Packets read at most to find the first time of each stream when the header does not give it. */
const START_PACKETS = 64;

/**
 * The file's start time in microseconds, which ffmpeg's `-ss` counts from:
 * as avformat_find_stream_info sets it, the earliest first time of the audio
 * and video streams. Taken from the analysis when it ran, else from the
 * header (MP4, MOV, AVI), else, when `readAhead` (a seek follows: the
 * packets read are not lost), from the first packets of each stream
 * (Matroska, MPEG-TS), read from where the header ends; 0 when none has a time.
 */
async function startMicroseconds(context: NodeAvLib.FormatContext, packet: NodeAvLib.Packet, readAhead: boolean): Promise<bigint> {
  const { AV_NOPTS_VALUE, AVMEDIA_TYPE_AUDIO, AVMEDIA_TYPE_VIDEO } = libavBindings().constants;
  if (context.startTime !== AV_NOPTS_VALUE) return context.startTime;
  const streams = context.streams.filter((s) => s.codecpar.codecType === AVMEDIA_TYPE_AUDIO || s.codecpar.codecType === AVMEDIA_TYPE_VIDEO);
  const first = new Map<number, bigint>();
  for (const stream of streams) if (stream.startTime !== AV_NOPTS_VALUE) first.set(stream.index, stream.startTime);
  for (let read = 0; readAhead && read < START_PACKETS && first.size < streams.length; read++) {
    if ((await context.readFrame(packet)) < 0) break;
    const at = packet.pts !== AV_NOPTS_VALUE ? packet.pts : packet.dts;
    if (at !== AV_NOPTS_VALUE && !first.has(packet.streamIndex)) first.set(packet.streamIndex, at);
    packet.unref();
  }
  let earliest: bigint | null = null;
  for (const stream of streams) {
    const at = first.get(stream.index);
    const { num, den } = stream.timeBase;
    if (at === undefined || den <= 0) continue;
    const micros = (at * BigInt(num) * 1_000_000n) / BigInt(den);
    if (earliest === null || micros < earliest) earliest = micros;
  }
  return earliest ?? 0n;
}

/**
 * One opening of the file: with `fastSeek` decoding from the keyframe at or
 * before the target, else from the start. Reads go through libuv's pool (a
 * read may block, and the time limit and a cancel must reach it); decoding,
 * scaling and encoding are calls on this thread: each is a frame's work on
 * memory already read, and a round trip through the pool per call cost more
 * than the work itself on small videos.
 */
function thumbnailOnce(request: FrameRequest, fastSeek: boolean, timeoutMs: number): Promise<ThumbnailResult> {
  const { lib, constants } = libavBindings();
  const { Codec, CodecContext, Frame, Packet } = lib;
  const { AVMEDIA_TYPE_VIDEO, AV_NOPTS_VALUE, AVERROR_EOF, AVERROR_EAGAIN, AVERROR_INVALIDDATA, AVDISCARD_ALL } = constants;
  // The slow path (a second opening, decoding from the start) analyses the streams, as it always did.
  const analyse = fastSeek && request.seconds > 0 ? (context: NodeAvLib.FormatContext): boolean => !headerTellsEnough(context) : undefined;

  return withFencedInput(request.file, { timeoutMs, signal: request.signal, analyse }, async (input) => {
    const { context } = input;
    // Either interruption ends the work at once: a time limit is reported as such, and
    // withFencedInput turns what a cancelled picture returns into its AbortError.
    const interrupted = (): ThumbnailResult | null => (input.stopped() === null ? null : { ok: false, reason: ThumbnailError.Timeout });
    const early = interrupted();
    if (early) return early;
    if (input.code < 0) return failed(input.code, 'cannot open');
    const streamIndex = context.findBestStream(AVMEDIA_TYPE_VIDEO, -1, -1);
    if (streamIndex < 0) return { ok: false, reason: `${ThumbnailError.Failed}: no video stream` };
    const stream = context.streams[streamIndex] as NodeAvLib.Stream;
    const codec = Codec.findDecoder(stream.codecpar.codecId);
    if (codec === null) return { ok: false, reason: `${ThumbnailError.Failed}: no decoder for the video stream` };

    const decoder = new CodecContext();
    const packet = new Packet();
    const frame = new Frame();
    /** The last frame decoded: avcodec_receive_frame empties `frame` whenever it has none to give. */
    const last = new Frame();
    packet.alloc();
    frame.alloc();
    last.alloc();
    decoder.allocContext3(codec);
    try {
      const parameters = decoder.parametersToContext(stream.codecpar);
      if (parameters < 0) return failed(parameters, 'decoder');
      decoder.pktTimebase = stream.timeBase;
      // One thread: frame threading would hold back the first frame until
      // as many packets as threads are in; the host runs several files side by side instead.
      decoder.threadCount = 1;
      const opened = decoder.open2Sync(codec, null);
      if (opened < 0) return failed(opened, 'decoder');

      const start = await startMicroseconds(context, packet, fastSeek && request.seconds > 0);
      const late = interrupted();
      if (late) return late;
      // The demuxer drops the other streams' packets from here: only the video is read on.
      for (const other of context.streams) if (other.index !== streamIndex) other.discard = AVDISCARD_ALL;
      const target = start + BigInt(Math.round(request.seconds * 1_000_000));
      const tb = stream.timeBase;
      const secondsOf = (pts: bigint): number => (pts === AV_NOPTS_VALUE || tb.den === 0 ? Number.NaN : (Number(pts) * tb.num) / tb.den);
      // The frame at the target (or the first after it), as ffmpeg's `-ss` gives it;
      // a frame without a time is taken as it comes.
      const targetSeconds = Number(target) / 1_000_000;
      const atTarget = (at: number): boolean => !(at < targetSeconds);

      /**
       * Decodes until a frame at the target is in `frame` (true), or the
       * stream ends before it (true when some frame was decoded: the last
       * one, put back in `frame`, as for a file cut short of what its header
       * promised), or the limit interrupts. Undecodable packets are
       * skipped, as ffmpeg does.
       */
      const decode = async (): Promise<ThumbnailResult | boolean> => {
        let any = false;
        let draining = false;
        last.unref();
        const ended = (): ThumbnailResult | boolean => {
          if (!any) return false;
          const kept = frame.ref(last);
          return kept < 0 ? failed(kept, 'decode') : true;
        };
        for (;;) {
          const received = decoder.receiveFrameSync(frame);
          if (received >= 0) {
            any = true;
            if (atTarget(secondsOf(frame.bestEffortTimestamp))) return true;
            last.unref();
            const kept = last.ref(frame);
            if (kept < 0) return failed(kept, 'decode');
            continue;
          }
          if (received === AVERROR_EOF) return ended();
          if (received !== AVERROR_EAGAIN && received !== AVERROR_INVALIDDATA) return failed(received, 'decode');
          if (draining) return ended();
          const read = await context.readFrame(packet);
          const stop = interrupted();
          if (stop) return stop;
          if (read < 0) {
            if (read !== AVERROR_EOF) throwIfTransient(read);
            // End of file (or a read error, which ffmpeg takes as the end): drain what the decoder holds.
            draining = true;
            decoder.sendPacketSync(null);
            continue;
          }
          const sent = packet.streamIndex === streamIndex ? decoder.sendPacketSync(packet) : 0;
          packet.unref();
          if (sent < 0 && sent !== AVERROR_INVALIDDATA && sent !== AVERROR_EAGAIN) return failed(sent, 'decode');
        }
      };

      // A file that cannot seek is decoded from where it is (ffmpeg warns and does the same).
      if (fastSeek && request.seconds > 0) await context.seekFile(-1, NO_LOWER_BOUND, target, target);
      let found = await decode();
      if (found === false && fastSeek && request.seconds > 0) {
        // Some files cannot seek by index (an MPEG-TS stream with one keyframe):
        // the seek lands past every frame. Decoding from the start, as ffmpeg's
        // second run with `-ss` after `-i` does, finds the frame; where even
        // the start cannot be sought, the caller opens the file again.
        if ((await context.seekFile(-1, NO_LOWER_BOUND, start, start)) < 0) return { ok: false, reason: ThumbnailError.NoFrame };
        decoder.flushBuffers();
        found = await decode();
      }
      if (typeof found !== 'boolean') return found;
      const stop = interrupted();
      if (stop) return stop;
      if (!found) return { ok: false, reason: ThumbnailError.NoFrame };

      // The stream's aspect first, as ffmpeg guesses it (av_guess_sample_aspect_ratio), then the frame's.
      const sar = stream.sampleAspectRatio.num > 0 ? stream.sampleAspectRatio : frame.sampleAspectRatio;
      const jpeg = encodeJpeg(frame, request.width, thumbnailHeight(request.width, frame, sar));
      if (typeof jpeg === 'number') return failed(jpeg, 'encode');
      await fs.writeFile(request.output, jpeg);
      return { ok: true };
    } finally {
      last.free();
      frame.free();
      packet.free();
      decoder.freeContext();
    }
  });
}

type PixelFormat = Parameters<NodeAvLib.SoftwareScaleContext['getContext']>[2];

/** Scales the frame (bicubic, as ffmpeg's scale filter) to full-range 4:2:0 and encodes it as a baseline JPEG; a negative libav code on failure. */
function encodeJpeg(source: NodeAvLib.Frame, width: number, height: number): Buffer | number {
  const { lib, constants } = libavBindings();
  const { Codec, CodecContext, Frame, Packet, Rational, SoftwareScaleContext } = lib;
  const { AV_CODEC_ID_MJPEG, AV_PIX_FMT_YUVJ420P, AV_CODEC_FLAG_QSCALE, AVERROR_EINVAL, FF_QP2LAMBDA, SWS_BICUBIC } = constants;
  const scaler = new SoftwareScaleContext();
  const scaled = new Frame();
  const encoder = new CodecContext();
  const out = new Packet();
  out.alloc();
  scaled.alloc();
  try {
    scaler.getContext(source.width, source.height, source.format as PixelFormat, width, height, AV_PIX_FMT_YUVJ420P, SWS_BICUBIC);
    scaled.width = width;
    scaled.height = height;
    scaled.format = AV_PIX_FMT_YUVJ420P;
    const buffer = scaled.allocBuffer();
    if (buffer < 0) return buffer;
    const scaledCode = scaler.scaleFrameSync(scaled, source);
    if (scaledCode < 0) return scaledCode;
    const mjpeg = Codec.findEncoder(AV_CODEC_ID_MJPEG);
    if (mjpeg === null) return AVERROR_EINVAL;
    encoder.allocContext3(mjpeg);
    encoder.width = width;
    encoder.height = height;
    encoder.pixelFormat = AV_PIX_FMT_YUVJ420P;
    encoder.timeBase = new Rational(1, 25);
    encoder.setFlags(AV_CODEC_FLAG_QSCALE);
    encoder.globalQuality = JPEG_QSCALE * FF_QP2LAMBDA;
    const opened = encoder.open2Sync(mjpeg, null);
    if (opened < 0) return opened;
    // With a fixed quantiser the encoder reads it from the frame, where ffmpeg puts it too.
    scaled.quality = JPEG_QSCALE * FF_QP2LAMBDA;
    scaled.pts = 0n;
    const sent = encoder.sendFrameSync(scaled);
    if (sent < 0) return sent;
    const received = encoder.receivePacketSync(out);
    if (received < 0) return received;
    return Buffer.from(out.data ?? Buffer.alloc(0));
  } finally {
    out.free();
    scaled.free();
    encoder.freeContext();
    scaler.freeContext();
  }
}
