import { parseFfprobeOutput } from '../../src/probe/parse';

/** Trimmed from real ffprobe 6 output for a 2 s H.264 + AAC MP4. */
const h264Aac = {
  streams: [
    {
      index: 0, codec_name: 'h264', codec_type: 'video', width: 320, height: 240,
      r_frame_rate: '25/1', avg_frame_rate: '50/2', duration: '2.000000', nb_frames: '50',
      disposition: { default: 1, attached_pic: 0 },
    },
    { index: 1, codec_name: 'aac', codec_type: 'audio', r_frame_rate: '0/0', avg_frame_rate: '0/0', duration: '2.000000' },
  ],
  format: { format_name: 'mov,mp4,m4a,3gp,3g2,mj2', duration: '2.000000', bit_rate: '219380', tags: { major_brand: 'isom' } },
};

describe('parseFfprobeOutput', () => {
  it('reads size, reduced frame rate, duration, codecs, container and bit rate', () => {
    expect(parseFfprobeOutput(h264Aac, '/videos/a.mp4')).toEqual({
      ok: true,
      metadata: {
        durationSeconds: 2,
        durationFrames: 50,
        frameRateNumerator: 25,
        frameRateDenominator: 1,
        width: 320,
        height: 240,
        videoCodec: 'h264',
        audioCodec: 'aac',
        container: 'mp4',
        bitRate: 219380,
        streamCounts: { video: 1, audio: 1, subtitle: 0, data: 0 },
      },
    });
  });

  it('does not count cover art as video, and says no_video_stream when it is the only picture', () => {
    const music = {
      streams: [
        { codec_type: 'audio', codec_name: 'aac' },
        { codec_type: 'video', codec_name: 'mjpeg', width: 600, height: 600, disposition: { attached_pic: 1 } },
      ],
      format: { format_name: 'mov,mp4,m4a,3gp,3g2,mj2', duration: '180.0' },
    };
    expect(parseFfprobeOutput(music, '/music/song.mp4')).toEqual({ ok: false, reason: 'no_video_stream' });
  });

  it('takes the first real video stream after cover art and counts the art as data', () => {
    const withCover = {
      streams: [
        { codec_type: 'video', codec_name: 'mjpeg', width: 600, height: 600, disposition: { attached_pic: 1 } },
        { codec_type: 'video', codec_name: 'hevc', width: 1920, height: 1080, avg_frame_rate: '24000/1001' },
        { codec_type: 'subtitle', codec_name: 'subrip' },
        { codec_type: 'attachment', codec_name: 'ttf' },
      ],
      format: { format_name: 'matroska,webm', duration: '10.010000' },
    };
    const result = parseFfprobeOutput(withCover, '/films/b.mkv');
    expect(result).toMatchObject({
      ok: true,
      metadata: {
        width: 1920, height: 1080, videoCodec: 'hevc', audioCodec: null, container: 'matroska',
        frameRateNumerator: 24000, frameRateDenominator: 1001,
        durationFrames: 240, // round(10.01 × 24000/1001) with no nb_frames (Matroska has none)
        streamCounts: { video: 1, audio: 0, subtitle: 1, data: 2 },
      },
    });
  });

  test.each([
    ['avg_frame_rate 0/0 falls back to r_frame_rate', '0/0', '30/1', [30, 1]],
    ['both rates 0/0 give no rate', '0/0', '0/0', [null, null]],
    ['a missing avg rate falls back', undefined, '60000/1001', [60000, 1001]],
    ['garbage rates give no rate', 'abc', '1/0', [null, null]],
    ['a non-reduced rate is reduced', '48/2', undefined, [24, 1]],
  ])('%s', (_title, avg, r, [numerator, denominator]) => {
    const json = { streams: [{ codec_type: 'video', avg_frame_rate: avg, r_frame_rate: r }], format: { duration: '1' } };
    expect(parseFfprobeOutput(json, '/v.mkv')).toMatchObject({
      ok: true,
      metadata: { frameRateNumerator: numerator, frameRateDenominator: denominator },
    });
  });

  test.each([
    ['mov,mp4,m4a,3gp,3g2,mj2', '/a.MP4', 'mp4'],
    ['mov,mp4,m4a,3gp,3g2,mj2', '/a.m4v', 'mp4'],
    ['mov,mp4,m4a,3gp,3g2,mj2', '/a.mov', 'mov'],
    ['matroska,webm', '/a.webm', 'webm'],
    ['matroska,webm', '/a.mkv', 'matroska'],
    ['mpegts', '/a.ts', 'mpegts'],
    ['avi', '/a.avi', 'avi'],
    ['mpeg', '/a.mpg', 'mpeg'],
    ['asf', '/a.wmv', 'asf'],
  ])('names format %s of %s as %s', (formatName, file, container) => {
    const json = { streams: [{ codec_type: 'video' }], format: { format_name: formatName } };
    expect(parseFfprobeOutput(json, file)).toMatchObject({ ok: true, metadata: { container } });
  });

  it('tolerates missing and mistyped fields without throwing', () => {
    const odd = {
      streams: [{ codec_type: 'video', width: 'wide', height: -5, codec_name: 42, nb_frames: 'N/A', duration: 'N/A' }, 'junk', null],
      format: { duration: 'N/A', bit_rate: 'N/A', format_name: 7 },
    };
    expect(parseFfprobeOutput(odd, '/odd.mp4')).toEqual({
      ok: true,
      metadata: {
        durationSeconds: null, durationFrames: null, frameRateNumerator: null, frameRateDenominator: null,
        width: null, height: null, videoCodec: null, audioCodec: null, container: null, bitRate: null,
        streamCounts: { video: 1, audio: 0, subtitle: 0, data: 0 },
      },
    });
  });

  it('uses the video stream duration when the format has none', () => {
    const json = { streams: [{ codec_type: 'video', duration: '3.5', avg_frame_rate: '10/1' }], format: {} };
    expect(parseFfprobeOutput(json, '/v.mp4')).toMatchObject({ ok: true, metadata: { durationSeconds: 3.5, durationFrames: 35 } });
  });

  test.each([
    ['null', null],
    ['an array', []],
    ['a string', 'not json'],
  ])('reports probe_failed for %s instead of throwing', (_title, json) => {
    expect(parseFfprobeOutput(json, '/v.mp4')).toEqual({ ok: false, reason: expect.stringMatching(/^probe_failed: /) });
  });

  it('says no_video_stream for an object without streams', () => {
    expect(parseFfprobeOutput({}, '/v.mp4')).toEqual({ ok: false, reason: 'no_video_stream' });
  });
});
