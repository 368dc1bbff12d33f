/**
 * The Express app: routes, validation at the edge, one error handler.
 * Built from its dependencies so tests can run it without a port.
 */
import type { Server } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Config } from '../config';
import { DomainError, notFound } from '../errors';
import type { Library } from '../library/library';
import type { Logger } from '../logger';
import { httpMetrics, registry } from '../metrics';
import { ScanError, type JobStatus, type ScanService } from '../scans';
import { packageVersion } from '../version';
import { temporalUnavailable } from '../temporal/client';
import { createHooksRouter } from './hooks';
import { createSchedulesRouter } from './schedules';
import { ActivityFeed } from './activity-feed';
import { tokenGuard } from './auth';
import { hostGuard, jsonBodiesOnly, originGuard } from './guards';
import { healthHandler, healthReport, serviceProberVersion } from './health';
import { resolveScanRoot } from './paths';
import { createMediaFs } from '../filesystem/media-fs';
import { httpErrorOf } from './scan-errors';
import {
  jobIdSchema,
  listJobsQuerySchema,
  parse,
  listVideosQuerySchema,
  scanRequestSchema,
  searchVideosQuerySchema,
  videoIdSchema,
} from './schemas';
import { createDashboardRouter } from './dashboard';
import { EventStream, JobEvents, type JobEvent, type JobSubscription } from './job-events';
import { openApiDocument } from './openapi';
import { apiThumbnails, createThumbnailsRouter } from './thumbnails';

export interface AppDependencies {
  config: Config;
  scans: ScanService;
  library: Library;
  logger: Logger;
  /** Throws when the Temporal frontend does not answer. */
  checkTemporal: () => Promise<void>;
  /** The prober's version line, for the health body; by default that of the prober PROBER selects for the workers, asked once. */
  proberVersion?: () => Promise<string>;
  /**
   * Timings of the event streams, for tests only (production uses the
   * defaults of job-events.ts): how often a job is read, and how often a
   * quiet stream gets a keep-alive comment.
   */
  eventStreams?: { readIntervalMs?: number; keepAliveMs?: number; activityPollMs?: number };
}

const feeds = new WeakMap<express.Express, ActivityFeed>();

/** The /ws feed of an app built by createApp: attach `upgrade` to the server's 'upgrade' event, `close` on shutdown. */
export function activityFeedOf(app: express.Express): ActivityFeed {
  const feed = feeds.get(app);
  if (feed === undefined) throw new TypeError('not an app built by createApp');
  return feed;
}

/** Builds the app; `listen` is the caller's business. */
export function createApp({ config, scans, library, logger, checkTemporal, proberVersion, eventStreams }: AppDependencies): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);

  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      // The route's pattern, not the URL, keeps the label set small (ids and paths never become labels).
      const route = (req.route as { path?: string } | undefined)?.path;
      httpMetrics.observe(
        { method: req.method, route: route === undefined ? 'unmatched' : `${req.baseUrl}${route}`, status: String(res.statusCode) },
        Number(process.hrtime.bigint() - started) / 1e9,
      );
    });
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
    next();
  });

  // CORS is closed unless CORS_ORIGINS names the origin: no header, so browsers refuse.
  app.use((req, res, next) => {
    const origin = req.get('origin');
    if (origin !== undefined && config.corsOrigins.includes(origin)) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Vary', 'Origin');
      res.setHeader('Access-Control-Allow-Methods', 'GET, POST, DELETE, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', 'Authorization, Content-Type');
      if (req.method === 'OPTIONS') {
        res.status(204).end();
        return;
      }
    }
    next();
  });

  // Before every route, health and the page included: forged requests get no further.
  app.use(hostGuard(config.host));
  app.use(originGuard(config.corsOrigins));

  // Health and liveness stay open whatever the token, for load balancers and orchestrators.
  app.get('/health/live', (_req, res) => {
    res.json({ status: 'ok' });
  });
  const readHealth = healthReport({
    checkDatabase: () => library.ping(),
    checkTemporal,
    proberVersion: proberVersion ?? serviceProberVersion(config, logger),
  });
  const health = healthHandler(readHealth);
  app.get('/health', health);
  app.get('/health/ready', health);

  // The dashboard's files hold no data, and a browser cannot send a bearer
  // token when it opens a page: the page asks for the token and sends it
  // with every API call it makes.
  app.use(createDashboardRouter());
  app.get('/favicon.ico', (_req, res) => {
    res.status(204).end();
  });

  app.use(tokenGuard(config.apiToken));

  const openApi = openApiDocument(packageVersion());
  app.get('/api/openapi.json', (_req, res) => {
    res.json(openApi);
  });
  app.get('/metrics', async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });

  // Every call the API makes on a media path (a root to scan, a webhook's
  // file): bounded by FS_CALL_TIMEOUT, and together at most
  // MEDIA_CALLS_IN_FLIGHT, so a share that hangs holds only some of the
  // process's pool threads (sized in filesystem/thread-pool.ts).
  const media = createMediaFs({ timeoutMs: config.fsCallTimeoutMs });
  app.use(jsonBodiesOnly);
  app.use('/api/v1/hooks', createHooksRouter({ config, media, scans, library, logger }));
  app.use(express.json({ limit: '16kb', strict: true, type: 'application/json' }));
  app.use('/api/v1/schedules', createSchedulesRouter({ config, media, scans, logger }));

  /** Starts a scan of a directory: 202 with the new job's id. */
  app.post('/api/v1/videos/scan', async (req, res) => {
    const body = parse(scanRequestSchema, req.body ?? {}, 'INVALID_PATH');
    const root = await resolveScanRoot(body.path, config.scanRoots, media);
    const { scanId, created } = await scans.start({
      root,
      recursive: body.recursive,
      force: body.force,
      exclude: body.exclude,
      maxParallelFiles: body.max_parallel_files,
      thumbnails: body.thumbnails,
    });
    httpMetrics.scansStarted.inc();
    logger.info({ scanId, root, created }, 'scan started');
    res.status(created ? 202 : 200).json({ job_id: scanId });
  });

  /** Scans, newest first, filtered by status, paged by token. */
  app.get('/api/v1/jobs', async (req, res) => {
    const query = parse(listJobsQuerySchema, req.query);
    const page = await scans.list({ status: query.status as JobStatus | undefined, limit: query.limit, pageToken: query.page_token });
    res.json({ jobs: page.jobs, next_page_token: page.nextPageToken });
  });

  /** A job's status, progress and result. */
  app.get('/api/v1/jobs/:job_id', async (req, res) => {
    const scanId = parseScanId(req.params.job_id);
    res.json(await scans.get(scanId));
  });

  /** Requests cancellation of a running job. */
  app.post('/api/v1/jobs/:job_id/cancel', async (req, res) => {
    const scanId = parseScanId(req.params.job_id);
    const job = await scans.cancel(scanId);
    logger.info({ scanId }, 'scan cancel requested');
    res.status(202).json(job);
  });

  /** Pauses a running job: no new probes until it is resumed. */
  app.post('/api/v1/jobs/:job_id/pause', async (req, res) => {
    const scanId = parseScanId(req.params.job_id);
    const job = await scans.pause(scanId);
    logger.info({ scanId }, 'scan paused');
    res.status(202).json(job);
  });

  /** Resumes a paused job where it stopped. */
  app.post('/api/v1/jobs/:job_id/resume', async (req, res) => {
    const scanId = parseScanId(req.params.job_id);
    const job = await scans.resume(scanId);
    logger.info({ scanId }, 'scan resumed');
    res.status(202).json(job);
  });

  /** Starts a new scan of what a finished one failed on or never reached. */
  app.post('/api/v1/jobs/:job_id/retry', async (req, res) => {
    const scanId = parseScanId(req.params.job_id);
    const retry = await scans.retry(scanId);
    logger.info({ scanId: retry.scanId, retryOf: scanId, created: retry.created }, 'scan retry started');
    res.status(retry.created ? 202 : 200).json({ job_id: retry.scanId });
  });

  // One reader per watched job, shared by all its streams.
  const jobEvents = new JobEvents({ scans, logger, maxStreamsPerClient: config.maxStreamsPerClient, intervalMs: eventStreams?.readIntervalMs });

  /**
   * Server-Sent Events: the job's current body, then a `progress` event with
   * the job body whenever it changes, then one `end` event with the terminal
   * body, then the stream closes. All streams of a job share one reader
   * (job-events.ts); a client may hold MAX_STREAMS_PER_CLIENT of them open
   * at once (429 TOO_MANY_STREAMS past it).
   */
  app.get('/api/v1/jobs/:job_id/events', async (req, res) => {
    const scanId = parseScanId(req.params.job_id);
    const release = jobEvents.admit(req.socket.remoteAddress ?? 'unknown');
    let closed = false;
    let unsubscribe = (): void => undefined;
    res.on('close', () => {
      closed = true;
      unsubscribe();
      release();
    });
    // Set once the headers are out; no event comes before (subscribe resolves and what follows runs in one turn).
    let stream: EventStream | undefined = undefined;
    const send = (event: JobEvent): void => stream?.send(event);
    let subscription: JobSubscription;
    try {
      subscription = await jobEvents.subscribe(scanId, send);
    } catch (error) {
      release();
      throw error;
    }
    if (closed) {
      subscription.unsubscribe();
      return;
    }
    unsubscribe = subscription.unsubscribe;
    res.status(200).set({ 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    res.flushHeaders();
    stream = new EventStream(res, eventStreams?.keepAliveMs);
    stream.send(subscription.current);
  });

  /** The library, a page at a time, ordered by path. */
  app.get('/api/v1/videos', async (req, res) => {
    const query = parse(listVideosQuerySchema, req.query);
    const page = await library.listVideos(query);
    res.json({ videos: page.items, total: page.total, limit: query.limit, offset: query.offset });
  });

  /** Videos whose file name or path contains the query, case-insensitively. */
  app.get('/api/v1/videos/search', async (req, res) => {
    const query = parse(searchVideosQuerySchema, req.query);
    const page = await library.searchVideos(query.q, query.limit, query.offset);
    res.json({ videos: page.items, total: page.total, query: query.q });
  });

  app.use('/api/v1/videos', createThumbnailsRouter({ config, library }));

  /** One video's record. */
  app.get('/api/v1/videos/:id', async (req, res) => {
    const id = parseVideoId(req.params.id);
    const video = await library.getVideo(id);
    if (video === undefined) throw notFound(`video ${id}`);
    res.json(video);
  });

  /** Deletes a video's record (never the file). */
  app.delete('/api/v1/videos/:id', async (req, res) => {
    const id = parseVideoId(req.params.id);
    if (!(await library.deleteVideo(id))) throw notFound(`video ${id}`);
    // Its picture goes with it (a new record of the file gets a new id and picture).
    await apiThumbnails(config).remove(id);
    res.status(204).end();
  });

  // GET /ws: the activity feed, served on the HTTP server's upgrades (see activityFeedOf).
  const feed = new ActivityFeed({ config, scans, readHealth, logger, pollMs: eventStreams?.activityPollMs });
  feeds.set(app, feed);
  // app.listen serves /ws too; a server built apart attaches it with activityFeedOf(app).upgrade.
  const listen = app.listen.bind(app) as (...args: unknown[]) => Server;
  Object.assign(app, {
    listen: (...args: unknown[]): Server => {
      const server = listen(...args);
      server.on('upgrade', feed.upgrade);
      // Upgraded sockets are no longer the server's to close, and close() waits for them: the feed closes its own first.
      const close = server.close.bind(server);
      server.close = (callback?: (error?: Error) => void): Server => {
        feed.close();
        return close(callback);
      };
      return server;
    },
  });

  app.use((_req, _res, next) => next(new DomainError('NOT_FOUND', 404, 'no such route')));

  // One error handler: domain errors keep their code; body-parser errors get
  // theirs; anything else is a 500 without internals.
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    let domain: DomainError;
    const unreachable = temporalUnavailable(error);
    if (error instanceof DomainError) {
      domain = error;
    } else if (error instanceof ScanError) {
      domain = httpErrorOf(error);
    } else if (unreachable) {
      // Temporal restarting or unreachable: a clear 503 within the call's deadline, not a hang.
      domain = unreachable;
    } else if (isBodyError(error) && error.status === 415) {
      // An unsupported charset or Content-Encoding of a JSON body.
      domain = new DomainError('UNSUPPORTED_MEDIA_TYPE', 415, 'request bodies must be application/json in UTF-8');
    } else if (isBodyError(error) && error.type === 'entity.too.large') {
      domain = new DomainError('PAYLOAD_TOO_LARGE', 413, 'request body is too large');
    } else if (isBodyError(error) && (error.type === 'entity.parse.failed' || error.status === 400)) {
      const code = req.path === '/api/v1/videos/scan' ? 'INVALID_PATH' : 'INVALID_REQUEST';
      domain = new DomainError(code, 400, 'request body is not valid JSON');
    } else {
      logger.error({ err: error, path: req.path }, 'request failed');
      domain = new DomainError('INTERNAL', 500, 'internal error');
    }
    res.status(domain.status).json({ code: domain.code, message: domain.message });
  });

  return app;
}

/** The scan id of a route's `job_id` (the API's word for it; see JobBody). */
function parseScanId(raw: unknown): string {
  const result = jobIdSchema.safeParse(raw);
  if (!result.success) throw notFound(`job ${String(raw).slice(0, 100)}`);
  return result.data;
}

function parseVideoId(raw: unknown): number {
  const result = videoIdSchema.safeParse(raw);
  if (!result.success) throw notFound(`video ${String(raw).slice(0, 100)}`);
  return result.data;
}

function isBodyError(error: unknown): error is { type?: string; status?: number } {
  return typeof error === 'object' && error !== null && 'type' in error;
}

