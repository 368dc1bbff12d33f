/**
 * The demuxers ffprobe, ffmpeg and libavformat may use here: the containers
 * of VIDEO_EXTENSIONS and the raw video streams sometimes found under those
 * names. Left out on purpose are the formats that open other files or
 * addresses (concat lists, HLS and DASH playlists, IMF packages, image
 * sequences, SDP and RTSP), so that a hostile file cannot make a reader
 * open anything but itself, and the long tail of exotic parsers that a
 * hostile file could otherwise reach.
 */
export const ALLOWED_DEMUXERS: readonly string[] = [
  'mov', 'matroska', 'webm', 'avi', 'mpegts', 'mpegtsraw', 'mpeg', 'mpegvideo', 'm4v', 'h264', 'hevc', 'vc1',
  'asf', 'flv', 'live_flv', 'ogg', 'mxf', 'rm', 'dv', 'nut', 'ivf', 'obu', 'wtv',
];
