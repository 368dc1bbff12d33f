/**
 * The OpenAPI document, generated from the same zod schemas that validate the
 * requests; nothing here is a hand-kept copy of a body.
 */
import { z } from 'zod';
import type { Video } from '../library/types';
import type { JobBody } from '../scans';
import type { ScheduleBody } from '../scans';
import { arrWebhookResponseSchema, arrWebhookSchema } from './hooks';
import {
  errorSchema,
  healthSchema,
  jobIdBodySchema,
  jobListSchema,
  jobSchema,
  listJobsQuerySchema,
  listVideosQuerySchema,
  scanRequestSchema,
  scheduleListSchema,
  scheduleRequestSchema,
  scheduleSchema,
  searchVideosQuerySchema,
  videoListSchema,
  videoSchema,
  videoSearchSchema,
} from './schemas';

// Compile-time proof that the response schemas describe what the code returns.
type Assert<T extends true> = T;
export type JobSchemaMatches = Assert<JobBody extends z.infer<typeof jobSchema> ? true : false>;
export type VideoSchemaMatches = Assert<Video extends z.infer<typeof videoSchema> ? true : false>;
export type ScheduleSchemaMatches = Assert<ScheduleBody extends z.infer<typeof scheduleSchema> ? true : false>;

type Schema = z.ZodType;

const json = (schema: Schema, io: 'input' | 'output' = 'output'): Record<string, unknown> => {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
};

const body = (description: string, schema: Schema) => ({ description, content: { 'application/json': { schema: json(schema) } } });
const errors = (...codes: number[]) =>
  Object.fromEntries(codes.map((code) => [String(code), body('error: {"code", "message"}', errorSchema)]));

function queryParameters(schema: z.ZodObject): Record<string, unknown>[] {
  const shape = json(schema, 'input') as { properties?: Record<string, unknown>; required?: string[] };
  return Object.entries(shape.properties ?? {}).map(([name, s]) => ({
    name,
    in: 'query',
    required: (shape.required ?? []).includes(name),
    schema: s,
  }));
}

const jobIdParameter = { name: 'job_id', in: 'path', required: true, schema: { type: 'string' } };
const scheduleIdParameter = { name: 'schedule_id', in: 'path', required: true, schema: { type: 'string' } };
const videoIdParameter = { name: 'id', in: 'path', required: true, schema: { type: 'integer' } };

/** Builds the document; `version` is the package's. */
export function openApiDocument(version: string): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: { title: 'Video library scanner', version, description: 'Scans media folders with ffprobe as durable Temporal workflows.' },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' }, basic: { type: 'http', scheme: 'basic', description: 'the webhook only: any user name, the API token as password' } } },
    security: [{ bearer: [] }],
    paths: {
      '/api/v1/videos/scan': {
        post: {
          summary: 'Start a scan of a directory',
          requestBody: { required: true, content: { 'application/json': { schema: json(scanRequestSchema, 'input') } } },
          responses: {
            '202': body('scan started', jobIdBodySchema),
            '200': body('a scan of this root is already running: its id', jobIdBodySchema),
            ...errors(400, 401, 403, 413),
          },
        },
      },
      '/api/v1/jobs': {
        get: { summary: 'List scans, newest first', parameters: queryParameters(listJobsQuerySchema), responses: { '200': body('a page of jobs', jobListSchema), ...errors(400, 401) } },
      },
      '/api/v1/jobs/{job_id}': {
        get: { summary: 'A scan: status, progress, result', parameters: [jobIdParameter], responses: { '200': body('the job', jobSchema), ...errors(401, 404) } },
      },
      '/api/v1/jobs/{job_id}/cancel': {
        post: { summary: 'Cancel a running scan', parameters: [jobIdParameter], responses: { '202': body('cancel requested', jobSchema), ...errors(401, 404, 409) } },
      },
      '/api/v1/jobs/{job_id}/pause': {
        post: {
          summary: 'Pause a running scan: no new probes (those in flight finish), status `paused`; the scan timeout keeps counting',
          parameters: [jobIdParameter],
          responses: { '202': body('the paused job', jobSchema), ...errors(401, 404, 409) },
        },
      },
      '/api/v1/jobs/{job_id}/resume': {
        post: { summary: 'Resume a paused scan where it stopped', parameters: [jobIdParameter], responses: { '202': body('the resumed job', jobSchema), ...errors(401, 404, 409) } },
      },
      '/api/v1/schedules': {
        get: { summary: 'Scan schedules (Temporal Schedules)', responses: { '200': body('every scan schedule', scheduleListSchema), ...errors(401) } },
        post: {
          summary: 'Schedule rescans of a directory, every interval or by cron; a run that finds a scan of its root running starts none',
          requestBody: { required: true, content: { 'application/json': { schema: json(scheduleRequestSchema, 'input') } } },
          responses: { '201': body('the schedule', scheduleSchema), ...errors(400, 401, 403) },
        },
      },
      '/api/v1/schedules/{schedule_id}': {
        get: { summary: 'One scan schedule', parameters: [scheduleIdParameter], responses: { '200': body('the schedule', scheduleSchema), ...errors(401, 404) } },
        delete: { summary: 'Delete a scan schedule (its running scan goes on)', parameters: [scheduleIdParameter], responses: { '204': { description: 'deleted' }, ...errors(401, 404) } },
      },
      '/api/v1/schedules/{schedule_id}/trigger': {
        post: {
          summary: 'Run a schedule now: the scan it started, or the one already holding its root',
          parameters: [scheduleIdParameter],
          responses: { '202': body('the scan', jobIdBodySchema), ...errors(401, 404, 503) },
        },
      },
      '/api/v1/schedules/{schedule_id}/pause': {
        post: { summary: 'Pause a schedule (no runs until unpaused)', parameters: [scheduleIdParameter], responses: { '200': body('the schedule', scheduleSchema), ...errors(401, 404) } },
      },
      '/api/v1/schedules/{schedule_id}/unpause': {
        post: { summary: 'Unpause a schedule', parameters: [scheduleIdParameter], responses: { '200': body('the schedule', scheduleSchema), ...errors(401, 404) } },
      },
      '/api/v1/jobs/{job_id}/retry': {
        post: {
          summary: 'Re-probe what a finished scan failed on or never reached',
          parameters: [jobIdParameter],
          responses: { '202': body('the new scan', jobIdBodySchema), ...errors(401, 404, 409) },
        },
      },
      '/api/v1/jobs/{job_id}/events': {
        get: {
          summary: 'Server-Sent Events: `progress` events with the job body, then one `end` event; 429 TOO_MANY_STREAMS past MAX_STREAMS_PER_CLIENT open streams',
          parameters: [jobIdParameter],
          responses: { '200': { description: 'event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } }, ...errors(401, 404, 429) },
        },
      },
      '/api/v1/hooks/arr': {
        post: {
          summary: 'Sonarr or Radarr webhook: scan just the folder concerned (the imported file\'s; both folders of a rename); deletes mark what was deleted missing',
          security: [{ bearer: [] }, { basic: [] }],
          requestBody: { required: true, content: { 'application/json': { schema: json(arrWebhookSchema, 'input') } } },
          responses: {
            '202': body('a scan of the folder started', arrWebhookResponseSchema),
            '200': body('the running scan of the folder; a delete (what was deleted marked missing); or no scan needed (test event, nothing changed on disk, an event type this version does not know)', arrWebhookResponseSchema),
            ...errors(400, 401, 403, 413),
          },
        },
      },
      '/api/v1/videos': {
        get: { summary: 'The library, by path', parameters: queryParameters(listVideosQuerySchema), responses: { '200': body('a page of videos', videoListSchema), ...errors(400, 401) } },
      },
      '/api/v1/videos/search': {
        get: { summary: 'Search by file name or path', parameters: queryParameters(searchVideosQuerySchema), responses: { '200': body('matching videos', videoSearchSchema), ...errors(400, 401) } },
      },
      '/api/v1/videos/{id}': {
        get: { summary: 'One video', parameters: [videoIdParameter], responses: { '200': body('the video', videoSchema), ...errors(401, 404) } },
        delete: { summary: 'Delete the record (never the file)', parameters: [videoIdParameter], responses: { '204': { description: 'deleted' }, ...errors(401, 404) } },
      },
      '/api/v1/videos/{id}/thumbnail': {
        get: {
          summary: "The video's thumbnail (THUMBNAIL_WIDTH wide, JPEG); a placeholder, marked X-Thumbnail: placeholder, until it has one",
          parameters: [videoIdParameter, { name: 'If-None-Match', in: 'header', required: false, schema: { type: 'string' } }],
          responses: {
            '200': {
              description: 'the picture (X-Thumbnail: video) or the placeholder (X-Thumbnail: placeholder)',
              headers: {
                ETag: { schema: { type: 'string' } },
                'Cache-Control': { schema: { type: 'string' } },
                'X-Thumbnail': { schema: { type: 'string', enum: ['video', 'placeholder'] } },
              },
              content: { 'image/jpeg': { schema: { type: 'string', format: 'binary' } } },
            },
            '304': { description: 'the picture named by If-None-Match is current' },
            ...errors(401, 404),
          },
        },
      },
      '/ws': {
        get: {
          summary:
            'WebSocket: the activity feed. One JSON text message per event, {type, payload, correlation_id, timestamp}: scan_started {path, job_id}, scan_completed {path, job_id, video_count}, scan_cancelled, scan_failed, scan_paused, scan_resumed {path, job_id}, health_status {status} on change, heartbeat {} every WS_HEARTBEAT_INTERVAL seconds. With API_TOKEN, the token as bearer header or as the subprotocol bearer.<token>.',
          responses: { '101': { description: 'switching to the WebSocket protocol' }, ...errors(401, 403) },
        },
      },
      '/health': { get: { summary: 'Readiness: Temporal and the database', security: [], responses: { '200': body('ready', healthSchema), '503': body('a part is failing', healthSchema) } } },
      '/health/ready': { get: { summary: 'Same as /health', security: [], responses: { '200': body('ready', healthSchema), '503': body('a part is failing', healthSchema) } } },
      '/health/live': { get: { summary: 'Liveness', security: [], responses: { '200': { description: 'the process runs' } } } },
      '/metrics': { get: { summary: 'Prometheus metrics', responses: { '200': { description: 'Prometheus text format' } } } },
      '/api/openapi.json': { get: { summary: 'This document', responses: { '200': { description: 'OpenAPI 3.1' } } } },
    },
  };
}
