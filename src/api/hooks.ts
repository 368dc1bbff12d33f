/**
 * `POST /api/v1/hooks/arr`: scans on cue from Sonarr and Radarr. Their
 * "Webhook" connection posts a JSON body for each event; when an event says
 * files were added or renamed, this starts a scan of just the folder
 * concerned; when it says files were deleted, it marks their records
 * missing. Every path goes through the same validation and SCAN_ROOTS
 * containment as any scan (containment first). See docs/webhooks.md.
 */
import path from 'node:path';
import express, { type Router } from 'express';
import { z } from 'zod';
import type { Config, PathMapping } from '../config';
import { DomainError } from '../errors';
import type { Logger } from '../logger';
import { httpMetrics } from '../metrics';
import type { Library } from '../library/library';
import type { ScanService } from '../scans';
import { isInside } from '../filesystem/containment';
import { mediaErrorReason, type MediaFs } from '../filesystem/media-fs';
import { containedPath, containedRoot, realRoots, resolveScanRoot, unanswered } from './paths';

/** Events after which files in a folder were added or renamed: scan that folder. */
const SCAN_EVENTS = ['Download', 'ImportComplete', 'Rename'] as const;

/** Events that say what was deleted: marked missing (the folder's videos, or the one file's). */
const DELETE_EVENTS = ['EpisodeFileDelete', 'SeriesDelete', 'MovieFileDelete', 'MovieDelete'] as const;

/** Events that change nothing on disk (yet): answered 200 without a scan. */
const QUIET_EVENTS = ['Test', 'Grab', 'SeriesAdd', 'MovieAdded', 'Health', 'HealthRestored', 'ApplicationUpdate', 'ManualInteractionRequired'] as const;

const FILE_EVENTS: readonly string[] = [...SCAN_EVENTS, ...DELETE_EVENTS];

const folderPath = z.string().min(1).max(4096);

/** A file as both tools describe it: its path relative to the series or movie folder, and (newer versions) absolute. */
const toolFile = z.looseObject({ relativePath: folderPath.optional(), path: folderPath.optional() });
const renamedFile = toolFile.extend({ previousRelativePath: folderPath.optional(), previousPath: folderPath.optional() });

/**
 * The one schema for both tools' bodies (Sonarr v3/v4, Radarr v3+). Only the
 * fields used here are checked; the rest (episodes, release, mediaInfo, …)
 * passes through, so a newer version's extra fields are no reason to refuse,
 * and neither is an event type this version does not know (it is answered
 * 200 without a scan: a 4xx would mark the connection failing in the tool).
 * Sonarr names the folder `series.path`, Radarr `movie.folderPath`.
 */
export const arrWebhookSchema = z
  .looseObject({
    eventType: z.string().min(1).max(100),
    instanceName: z.string().optional(),
    series: z.looseObject({ title: z.string().optional(), path: folderPath }).optional(),
    movie: z.looseObject({ title: z.string().optional(), folderPath: folderPath.optional() }).optional(),
    episodeFile: toolFile.optional(),
    episodeFiles: z.array(toolFile).max(10_000).optional(),
    movieFile: toolFile.optional(),
    renamedEpisodeFiles: z.array(renamedFile).max(10_000).optional(),
    renamedMovieFiles: z.array(renamedFile).max(10_000).optional(),
  })
  .refine((body) => !FILE_EVENTS.includes(body.eventType) || body.series !== undefined || body.movie?.folderPath !== undefined, {
    message: 'a file event must name series.path (Sonarr) or movie.folderPath (Radarr)',
  });

export type ArrWebhook = z.infer<typeof arrWebhookSchema>;

/** What the route answers (described in the OpenAPI document). */
export const arrWebhookResponseSchema = z.object({
  job_id: z.string().nullable(),
  event: z.string(),
  path: z.string().optional(),
  /** After a delete event: how many videos were marked missing. */
  missing: z.number().int().optional(),
  message: z.string().optional(),
});

/**
 * Translates a path as Sonarr or Radarr sees it into the workers' path by the
 * first (longest) matching PATH_MAP prefix, matched by whole components.
 * Backslashes count as separators, for tools running on Windows. `..`
 * segments are kept, so that path validation still sees and refuses them.
 */
export function mapToolPath(given: string, pathMap: PathMapping[]): string {
  for (const { from, to } of pathMap) {
    const prefix = from.replace(/[\\/]+$/, '');
    const next = given.charAt(prefix.length);
    if (given.startsWith(prefix) && (next === '' || next === '/' || next === '\\')) {
      const rest = given.slice(prefix.length).split(/[\\/]+/).filter((part) => part.length > 0);
      return [to.replace(/\/+$/, ''), ...rest].join('/') || '/';
    }
  }
  return given;
}

/** The tool's absolute path of a file given by its folder and relative path (any separators), or its own absolute path. */
function toolFilePath(base: string, file: { relativePath?: string; path?: string }): string | undefined {
  if (file.relativePath !== undefined) return `${base.replace(/[\\/]+$/, '')}/${file.relativePath}`;
  return file.path;
}

/** The deepest folder holding all of `paths` (absolute POSIX paths), by whole components. */
function commonFolder(paths: string[]): string {
  const split = paths.map((p) => p.split('/'));
  const first = split[0] ?? [''];
  let depth = 0;
  while (depth < first.length && split.every((parts) => parts[depth] === first[depth])) depth++;
  return first.slice(0, depth).join('/') || '/';
}

/** What an event concerns, in the workers' paths: the folder to scan, or what was deleted. */
type Target =
  | { kind: 'scan'; folder: string; base: string }
  | { kind: 'deleted-file'; file: string; base: string }
  | { kind: 'deleted-folder'; folder: string; base: string };

/**
 * The folder an event concerns, as narrow as the body allows: the imported
 * file's folder for a Download (`series.path` + the folder of
 * `episodeFile.relativePath`; Radarr's `movie.folderPath`), the folder
 * holding every file before and after a Rename (one scan of both, so the scan
 * sees a renamed file leave one path and arrive at the other, and keeps the
 * video's id), and what was deleted for the delete events. `base` is the
 * series or movie folder.
 */
function targetOf(hook: ArrWebhook, pathMap: PathMapping[]): Target {
  const toolBase = hook.series?.path ?? hook.movie?.folderPath ?? '';
  const map = (given: string): string => mapToolPath(given, pathMap);
  const base = map(toolBase);
  const files = (list: (string | undefined)[]): string[] => list.filter((p): p is string => p !== undefined).map(map);
  switch (hook.eventType) {
    case 'Download': {
      const file = hook.series !== undefined && hook.episodeFile !== undefined ? toolFilePath(toolBase, hook.episodeFile) : undefined;
      return { kind: 'scan', folder: file === undefined ? base : path.posix.dirname(map(file)), base };
    }
    case 'ImportComplete': {
      const imported = files((hook.episodeFiles ?? []).map((f) => toolFilePath(toolBase, f)));
      return { kind: 'scan', folder: imported.length === 0 ? base : commonFolder(imported.map((f) => path.posix.dirname(f))), base };
    }
    case 'Rename': {
      const renamed = hook.renamedEpisodeFiles ?? hook.renamedMovieFiles ?? [];
      const all = files(
        renamed.flatMap((f) => [
          toolFilePath(toolBase, f),
          f.previousRelativePath !== undefined ? toolFilePath(toolBase, { relativePath: f.previousRelativePath }) : f.previousPath,
        ]),
      );
      return { kind: 'scan', folder: all.length === 0 ? base : commonFolder(all.map((f) => path.posix.dirname(f))), base };
    }
    case 'EpisodeFileDelete':
    case 'MovieFileDelete': {
      const given = hook.episodeFile ?? hook.movieFile;
      const file = given === undefined ? undefined : toolFilePath(toolBase, given);
      return file === undefined ? { kind: 'scan', folder: base, base } : { kind: 'deleted-file', file: map(file), base };
    }
    default:
      // SeriesDelete, MovieDelete.
      return { kind: 'deleted-folder', folder: base, base };
  }
}

/**
 * Whether a path exists (without following a last link), as far as this
 * process can tell. A share that does not answer or fails the read rejects
 * (fs_timeout, io_error): then nothing can be said.
 */
async function exists(file: string, media: MediaFs): Promise<boolean> {
  return media.lstat(file).then(
    () => true,
    (error: NodeJS.ErrnoException) => {
      if (unanswered(error)) throw error;
      return error.code !== 'ENOENT' && error.code !== 'ENOTDIR';
    },
  );
}

/**
 * The deepest existing folder from `folder` up, never above `base` when
 * `folder` lies in it. A share that does not answer stops the search there:
 * resolveScanRoot then answers 503 for that folder.
 */
async function nearestExistingFolder(folder: string, base: string, media: MediaFs): Promise<string> {
  const stop = path.relative(base, folder).startsWith('..') ? '/' : base;
  let current = folder;
  while (current !== stop && current !== path.dirname(current)) {
    // Only a share that does not answer stops here; a folder that is gone or refused is passed over, as before.
    const stat = await media.stat(current).catch((error: unknown) => (unanswered(error) ? 'unanswered' : null));
    if (stat === 'unanswered' || stat?.isDirectory()) return current;
    current = path.dirname(current);
  }
  return current;
}

/**
 * Whether the scan root above a deleted path is online: present and not
 * empty (an unmounted share leaves an empty mount point, and then nothing
 * can be said about what is gone). The root is the SCAN_ROOTS entry holding
 * the path, or without SCAN_ROOTS the folder holding the series or movie
 * folder (the tool's root folder).
 */
async function rootOnline(real: string, base: string, scanRoots: string[] | undefined, media: MediaFs): Promise<boolean> {
  const root = scanRoots === undefined
    ? path.dirname(base)
    : (await realRoots(scanRoots, media.realpath)).filter((r) => isInside(r, real)).sort((a, b) => b.length - a.length)[0];
  if (root === undefined) return false;
  return media.readdir(root).then(
    (entries) => entries.length > 0,
    () => false,
  );
}

export interface HooksDependencies {
  config: Config;
  /** The API's bounded calls on media paths (FS_CALL_TIMEOUT, one limit of calls in flight). */
  media: MediaFs;
  scans: ScanService;
  library: Pick<Library, 'markDeletedMissing'>;
  logger: Logger;
}

/** The webhook routes; mount under `/api/v1/hooks` behind the token check. */
export function createHooksRouter({ config, media, scans, library, logger }: HooksDependencies): Router {
  const router = express.Router();
  // Its own parser with a larger limit than the API's 16 KiB: a season pack's
  // ImportComplete lists every episode and file, with media info, in one body.
  router.use(express.json({ limit: '1mb', strict: true, type: () => true }));

  /**
   * Sonarr or Radarr webhook: 202 with the folder's new scan, 200 with its
   * running one, 200 after a delete (what was deleted marked missing), 200
   * for events that need nothing and for event types this version does not know.
   */
  router.post('/arr', async (req, res) => {
    const parsed = arrWebhookSchema.safeParse(req.body ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
      throw new DomainError('INVALID_REQUEST', 400, `not a Sonarr or Radarr webhook: ${where}${issue?.message ?? 'unknown payload'}`);
    }
    const hook = parsed.data;
    const tool = hook.series !== undefined ? 'sonarr' : hook.movie !== undefined ? 'radarr' : 'unknown';
    const log = { event: hook.eventType, tool, instance: hook.instanceName };
    if (!FILE_EVENTS.includes(hook.eventType)) {
      const known = (QUIET_EVENTS as readonly string[]).includes(hook.eventType);
      if (known) logger.info(log, 'webhook needs no scan');
      else logger.warn(log, 'webhook event type not known to this version; no scan');
      const message = hook.eventType === 'Test' ? 'test event received' : known ? 'nothing changed on disk; no scan' : 'event type not known to this version; no scan';
      res.status(200).json({ job_id: null, event: hook.eventType, message });
      return;
    }
    const target = targetOf(hook, config.pathMap);
    if (target.kind !== 'scan') {
      const deleted = target.kind === 'deleted-file' ? target.file : target.folder;
      // The deleted path usually lies on a share: every call on it is bounded by FS_CALL_TIMEOUT.
      let real: string;
      let present: boolean;
      try {
        // Containment before existence: outside the roots, the same answer whether or not the path exists.
        real = await containedPath(deleted, config.scanRoots, media.realpath);
        present = await exists(real, media);
      } catch (error) {
        if (!unanswered(error)) throw error;
        const reason = mediaErrorReason(error);
        logger.warn({ ...log, path: deleted, reason, err: error }, 'webhook delete: the share did not answer; nothing marked');
        res.status(200).json({ job_id: null, event: hook.eventType, path: deleted, missing: 0, message: `the share did not answer (${reason}); nothing marked missing` });
        return;
      }
      if (!present) {
        if (!(await rootOnline(real, target.base, config.scanRoots, media))) {
          logger.warn({ ...log, path: real }, 'webhook delete: the scan root is offline or empty; nothing marked');
          res.status(200).json({ job_id: null, event: hook.eventType, path: real, missing: 0, message: 'the scan root is offline or empty; nothing marked missing' });
          return;
        }
        const missing = await library.markDeletedMissing(target.kind === 'deleted-file' ? { file: real } : { folder: real });
        logger.info({ ...log, path: real, missing }, 'webhook delete: marked missing');
        res.status(200).json({ job_id: null, event: hook.eventType, path: real, missing, message: `${missing} video(s) marked missing` });
        return;
      }
    }
    // A folder to scan, or a deleted file or folder that is still (or again) there: its folder is scanned.
    const wanted = target.kind === 'scan' || target.kind === 'deleted-folder' ? target.folder : path.posix.dirname(target.file);
    // Containment before existence, as for a scan request; resolveScanRoot answers 503 for a share that does not answer.
    await containedRoot(wanted, config.scanRoots, media);
    const root = await resolveScanRoot(await nearestExistingFolder(wanted, target.base, media), config.scanRoots, media);
    const { scanId, created } = await scans.start({ root, recursive: true, force: false });
    if (created) httpMetrics.scansStarted.inc();
    logger.info({ ...log, scanId, root, created }, 'webhook scan');
    res.status(created ? 202 : 200).json({ job_id: scanId, event: hook.eventType, path: root });
  });

  return router;
}
