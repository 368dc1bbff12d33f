/**
 * Routes of scan schedules (API.md): create, list, read, delete, trigger,
 * pause and unpause. A schedule's path goes through the same validation and
 * SCAN_ROOTS containment as a scan start.
 */
import express, { type Router } from 'express';
import type { Config } from '../config';
import { DomainError } from '../errors';
import type { Logger } from '../logger';
import { parseDuration } from '../model/duration';
import type { ScanService } from '../scans';
import { resolveScanRoot, type RootCalls } from './paths';
import { parse, scheduleIdSchema, scheduleRequestSchema } from './schemas';

export interface SchedulesDependencies {
  config: Config;
  /** The API's bounded calls on media paths: a schedule's root is checked with them. */
  media: RootCalls;
  scans: ScanService;
  logger: Logger;
}

/** Mounted at /api/v1/schedules, after the JSON body parser. */
export function createSchedulesRouter({ config, media, scans, logger }: SchedulesDependencies): Router {
  const router = express.Router();
  const schedules = scans.schedules();
  const scheduleId = (value: unknown): string => {
    // A malformed id names no schedule.
    if (!scheduleIdSchema.safeParse(value).success) throw new DomainError('NOT_FOUND', 404, 'schedule not found');
    return value as string;
  };

  router.post('/', async (req, res) => {
    const body = parse(scheduleRequestSchema, req.body ?? {});
    const root = await resolveScanRoot(body.path, config.scanRoots, media);
    const every = body.every !== undefined ? { text: body.every, ms: parseDuration(body.every) as number } : undefined;
    const schedule = await schedules.create({ root, every, cron: body.cron, recursive: body.recursive, force: body.force, exclude: body.exclude });
    logger.info({ scheduleId: schedule.schedule_id, root }, 'scan schedule created');
    res.status(201).json(schedule);
  });

  router.get('/', async (_req, res) => {
    res.json({ schedules: await schedules.list() });
  });

  router.get('/:scheduleId', async (req, res) => {
    res.json(await schedules.get(scheduleId(req.params.scheduleId)));
  });

  router.delete('/:scheduleId', async (req, res) => {
    const id = scheduleId(req.params.scheduleId);
    await schedules.delete(id);
    logger.info({ scheduleId: id }, 'scan schedule deleted');
    res.status(204).end();
  });

  /** Runs a schedule now: 202 with the scan it started, or with the scan that already holds its root. */
  router.post('/:scheduleId/trigger', async (req, res) => {
    const id = scheduleId(req.params.scheduleId);
    const started = await scans.triggerSchedule(id);
    logger.info({ scheduleId: id, scanId: started.scanId, run: started.runId }, 'scan schedule triggered');
    res.status(202).json({ job_id: started.scanId });
  });

  router.post('/:scheduleId/pause', async (req, res) => {
    res.json(await schedules.pause(scheduleId(req.params.scheduleId)));
  });

  router.post('/:scheduleId/unpause', async (req, res) => {
    res.json(await schedules.unpause(scheduleId(req.params.scheduleId)));
  });

  return router;
}
