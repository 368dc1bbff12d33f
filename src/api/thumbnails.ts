/**
 * GET /api/v1/videos/{id}/thumbnail: a video's picture, made by its scan's
 * thumbnail phase and kept in THUMBNAIL_DIR. A video without one yet gets a
 * placeholder (marked `X-Thumbnail: placeholder`, never cached) of
 * THUMBNAIL_WIDTH at 16:9, so a library grid shows something for every video
 * in the box its pictures take; an unknown id is 404.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import ffmpegInstaller from '@ffmpeg-installer/ffmpeg';
import execa from 'execa';
import express, { type Router } from 'express';
import type { Config } from '../config';
import { notFound } from '../errors';
import type { Library } from '../library/library';
import { createThumbnailer, type Thumbnailer } from '../thumbnails/thumbnailer';
import { videoIdSchema } from './schemas';

/** A flat dark grey 320x180 JPEG (580 bytes), made once with ffmpeg's color source: the placeholder at the default width. */
const PLACEHOLDER = Buffer.from(
  '/9j/4AAQSkZJRgABAgAAAQABAAD//gAQTGF2YzU4LjQyLjEwMAD/2wBDAAgUFBcUFxsbGxsbGyAeICEhISAgICAhISEkJCQqKiokJCQhISQkKCgqKi4vLisrKisvLzIyMjw8OTlGRkhWVmf/xABLAAEBAAAAAAAAAAAAAAAAAAAABwEBAAAAAAAAAAAAAAAAAAAAABABAAAAAAAAAAAAAAAAAAAAABEBAAAAAAAAAAAAAAAAAAAAAP/AABEIALQBQAMBIgACEQADEQD/2gAMAwEAAhEDEQA/AJeAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAD/2Q==',
  'base64',
);
const DEFAULT_PLACEHOLDER_WIDTH = 320;

/** Why 10 s: one frame of a colour source takes ffmpeg milliseconds; only a wedged binary takes longer. */
const PLACEHOLDER_TIMEOUT_MS = 10_000;

interface Placeholder {
  jpeg: Buffer;
  etag: string;
}

function placeholderOf(jpeg: Buffer): Placeholder {
  return { jpeg, etag: `"placeholder-${createHash('sha1').update(jpeg).digest('hex').slice(0, 16)}"` };
}

/** The placeholder's height for a width: 16:9, even (as the pictures' heights are). */
export function placeholderHeight(width: number): number {
  return Math.max(2, Math.round((width * 9) / 32) * 2);
}

/**
 * The placeholder at THUMBNAIL_WIDTH: the stored one at the default width,
 * else drawn once by ffmpeg's colour source, the same dark grey. Should
 * ffmpeg fail here, the stored one is served (a picture of the wrong size
 * beats none).
 */
async function drawPlaceholder(width: number): Promise<Placeholder> {
  if (width === DEFAULT_PLACEHOLDER_WIDTH) return placeholderOf(PLACEHOLDER);
  try {
    const { stdout } = await execa(
      ffmpegInstaller.path,
      ['-nostdin', '-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', `color=c=0x303030:s=${width}x${placeholderHeight(width)}`,
        '-frames:v', '1', '-c:v', 'mjpeg', '-q:v', '4', '-f', 'mjpeg', 'pipe:1'],
      { stdin: 'ignore', encoding: null, timeout: PLACEHOLDER_TIMEOUT_MS, windowsHide: true },
    );
    return placeholderOf(stdout);
  } catch {
    return placeholderOf(PLACEHOLDER);
  }
}

export interface ThumbnailsDependencies {
  config: Config;
  library: Library;
}

/** The pictures' store as the API sees it: where a video's picture is, and deleting it with its record. */
export function apiThumbnails(config: Config): Thumbnailer {
  return createThumbnailer({ dir: config.thumbnailDir, width: config.thumbnailWidth });
}

/** Mounted at /api/v1/videos, behind the token check, before the video routes. */
export function createThumbnailsRouter({ config, library }: ThumbnailsDependencies): Router {
  const router = express.Router();
  const thumbnails = apiThumbnails(config);
  let placeholder: Promise<Placeholder> | undefined;

  router.get('/:id/thumbnail', async (req, res) => {
    const parsed = videoIdSchema.safeParse(req.params.id);
    if (!parsed.success) throw notFound(`video ${String(req.params.id).slice(0, 100)}`);
    const id = parsed.data;
    const video = await library.getVideo(id);
    if (video === undefined) throw notFound(`video ${id}`);
    const picture = thumbnails.pathFor(id);
    // Named after the picture file's size and modification time, known from a stat: a rescan that
    // remakes it (written to a temp file, renamed into place) changes them, and a conditional request
    // is answered without reading, let alone hashing, the picture.
    const stat = video.thumbnail_at === null ? null : await fs.stat(picture, { bigint: true }).catch(() => null);
    const etag = stat === null || !stat.isFile() ? null : `"${stat.size.toString(36)}-${stat.mtimeNs.toString(36)}-${stat.ino.toString(36)}"`;
    const ifNoneMatch = req.get('if-none-match') ?? '';
    if (etag !== null && ifNoneMatch.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag)) {
      res.set({ 'X-Thumbnail': 'video', 'Cache-Control': 'private, max-age=300', ETag: etag });
      res.status(304).end();
      return;
    }
    const file = etag === null ? null : await fs.readFile(picture).catch(() => null);
    res.type('image/jpeg');
    if (file === null) {
      // Not cached: the real picture replaces it as soon as the scan makes it.
      placeholder ??= drawPlaceholder(config.thumbnailWidth);
      const { jpeg, etag: placeholderEtag } = await placeholder;
      res.set({ 'X-Thumbnail': 'placeholder', 'Cache-Control': 'no-cache', ETag: placeholderEtag });
      res.send(jpeg);
      return;
    }
    res.set({ 'X-Thumbnail': 'video', 'Cache-Control': 'private, max-age=300', ETag: etag as string });
    res.send(file);
  });

  return router;
}
