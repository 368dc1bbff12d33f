/**
 * `POST /api/v1/hooks/arr`: scans on cue from Sonarr and Radarr. Their
 * "Webhook" connection posts a JSON body for each event; when an event says
 * files changed on disk, this starts a scan of just that series or movie
 * folder, through the same validation and SCAN_ROOTS containment as any scan.
 */
import { promises as fs } from 'node:fs';
import express, { type Router } from 'express';
import { z } from 'zod';
import type { Config, PathMapping } from '../config';
import { DomainError } from '../errors';
import type { Logger } from '../logger';
import { httpMetrics } from '../metrics';
import type { ScanService } from '../temporal/scans';
import { resolveScanRoot } from './paths';

/** Events after which files in the folder were added, renamed or removed: scan the folder. */
const SCAN_EVENTS = ['Download', 'ImportComplete', 'Rename', 'EpisodeFileDelete', 'SeriesDelete', 'MovieFileDelete', 'MovieDelete'] as const;

/** Events that change nothing on disk (yet): answered 200 without a scan, so the sender never reports a failure. */
const QUIET_EVENTS = ['Test', 'Grab', 'SeriesAdd', 'MovieAdded', 'Health', 'HealthRestored', 'ApplicationUpdate', 'ManualInteractionRequired'] as const;

/** After these the folder itself may be gone, which is no error. */
const DELETE_EVENTS = new Set<string>(['EpisodeFileDelete', 'SeriesDelete', 'MovieFileDelete', 'MovieDelete']);

const folderPath = z.string().min(1).max(4096);

/**
 * The one schema for both tools' bodies (Sonarr v3/v4, Radarr v3+). Only the
 * fields used here are checked; the rest (episodes, release, mediaInfo, …)
 * passes through, so a newer version's extra fields are no reason to refuse.
 * Sonarr names the folder `series.path`, Radarr `movie.folderPath`.
 */
export const arrWebhookSchema = z
  .looseObject({
    eventType: z.enum([...SCAN_EVENTS, ...QUIET_EVENTS]),
    instanceName: z.string().optional(),
    series: z.looseObject({ title: z.string().optional(), path: folderPath }).optional(),
    movie: z.looseObject({ title: z.string().optional(), folderPath: folderPath.optional() }).optional(),
  })
  .refine((body) => !(SCAN_EVENTS as readonly string[]).includes(body.eventType) || body.series !== undefined || body.movie?.folderPath !== undefined, {
    message: 'a file event must name series.path (Sonarr) or movie.folderPath (Radarr)',
  });

export type ArrWebhook = z.infer<typeof arrWebhookSchema>;

/** What the route answers (described in the OpenAPI document). */
export const arrWebhookResponseSchema = z.object({
  job_id: z.string().nullable(),
  event: z.string(),
  path: z.string().optional(),
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

async function exists(folder: string): Promise<boolean> {
  return fs.stat(folder).then(
    () => true,
    () => false,
  );
}

export interface HooksDependencies {
  config: Config;
  scans: ScanService;
  logger: Logger;
}

/** The webhook routes; mount under `/api/v1/hooks` behind the token check. */
export function createHooksRouter({ config, scans, logger }: HooksDependencies): Router {
  const router = express.Router();
  // Its own parser with a larger limit than the API's 16 KiB: a season pack's
  // ImportComplete lists every episode and file, with media info, in one body.
  router.use(express.json({ limit: '1mb', strict: true, type: () => true }));

  /** Sonarr or Radarr webhook: 202 with the folder's new scan, 200 with its running one, 200 for events that need none. */
  router.post('/arr', async (req, res) => {
    const parsed = arrWebhookSchema.safeParse(req.body ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
      throw new DomainError('INVALID_REQUEST', 400, `not a Sonarr or Radarr webhook: ${where}${issue?.message ?? 'unknown payload'}`);
    }
    const hook = parsed.data;
    const tool = hook.series !== undefined ? 'sonarr' : hook.movie !== undefined ? 'radarr' : 'unknown';
    if (!(SCAN_EVENTS as readonly string[]).includes(hook.eventType)) {
      logger.info({ event: hook.eventType, tool, instance: hook.instanceName }, 'webhook needs no scan');
      res.status(200).json({ job_id: null, event: hook.eventType, message: hook.eventType === 'Test' ? 'test event received' : 'nothing changed on disk; no scan' });
      return;
    }
    // The refinement guarantees one of the two.
    const given = hook.series?.path ?? hook.movie?.folderPath ?? '';
    const folder = mapToolPath(given, config.pathMap);
    if (DELETE_EVENTS.has(hook.eventType) && !folder.split(/[\\/]/).includes('..') && !(await exists(folder))) {
      // A deleted series or movie takes its folder with it: nothing left to scan.
      logger.info({ event: hook.eventType, tool, folder }, 'webhook folder is gone; no scan');
      res.status(200).json({ job_id: null, event: hook.eventType, path: folder, message: 'the folder no longer exists; no scan' });
      return;
    }
    const root = await resolveScanRoot(folder, config.scanRoots);
    const { jobId, created } = await scans.start({ root, recursive: true, force: false });
    if (created) httpMetrics.scansStarted.inc();
    logger.info({ jobId, root, created, event: hook.eventType, tool, instance: hook.instanceName }, 'webhook scan');
    res.status(created ? 202 : 200).json({ job_id: jobId, event: hook.eventType, path: root });
  });

  return router;
}
