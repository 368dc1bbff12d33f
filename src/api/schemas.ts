/**
 * One schema per request body or query, used both to validate at the edge and
 * to describe the API in its OpenAPI document.
 */
import { z } from 'zod';
import { DomainError } from '../errors';
import { parseDuration } from '../model/duration';
import { JOB_STATUSES } from '../scans';

/** Parses with a schema or throws a 400 with the first problem named. */
export function parse<T extends z.ZodType>(schema: T, value: unknown, code: 'INVALID_PATH' | 'INVALID_REQUEST' = 'INVALID_REQUEST'): z.infer<T> {
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
    throw new DomainError(code, 400, `${where}${issue?.message ?? 'invalid request'}`);
  }
  return result.data;
}

export const scanRequestSchema = z
  .object({
    path: z.string().min(1, 'path is required').max(4096, 'path is too long'),
    recursive: z.boolean().default(true),
    force: z.boolean().default(false),
    /** Globs of paths to leave out of this scan, added to SCAN_EXCLUDE (see filesystem/walk.ts for how they match). */
    exclude: z
      .array(z.string().min(1, 'an exclude glob is empty').max(256, 'an exclude glob is too long').refine((glob) => !glob.includes('\0'), 'an exclude glob holds a NUL'))
      .max(50, 'at most 50 exclude globs')
      .optional(),
    /**
     * Files of this root in flight at once across all workers (each worker's
     * own limits cap it further): lower for a share that stalls under many
     * parallel reads, such as SMB (see docs/shares.md).
     */
    max_parallel_files: z.number().int().min(1, 'max_parallel_files must be at least 1').max(1024, 'max_parallel_files is at most 1024').optional(),
    /** false: no picture phase; absent: the workers' THUMBNAILS default. */
    thumbnails: z.boolean().optional(),
  })
  .strict();

export type ScanRequest = z.infer<typeof scanRequestSchema>;

export const jobIdSchema = z.string().regex(/^scan-[A-Za-z0-9-]{1,100}$/, 'not a job id');

export const listJobsQuerySchema = z
  .object({
    status: z.enum(JOB_STATUSES as [string, ...string[]]).optional(),
    limit: z.coerce.number().int().min(1).max(100).default(20),
    page_token: z.string().max(4096).optional(),
  })
  .strict();

export const listVideosQuerySchema = z
  .object({
    limit: z.coerce.number().int().min(1).max(500).default(50),
    offset: z.coerce.number().int().min(0).default(0),
    status: z.enum(['present', 'missing']).optional(),
  })
  .strict();

export const searchVideosQuerySchema = z
  .object({
    q: z.string().min(1, 'q is required').max(1000),
    limit: z.coerce.number().int().min(1).max(500).default(50),
    offset: z.coerce.number().int().min(0).default(0),
  })
  .strict();

export const videoIdSchema = z.coerce.number().int().positive();

// ---- response bodies: described for the OpenAPI document, and checked
// against the TypeScript types at compile time (see openapi.ts) ----

const countsSchema = z.object({
  discovered: z.number().int(),
  probed: z.number().int(),
  new: z.number().int(),
  updated: z.number().int(),
  skipped: z.number().int(),
  failed: z.number().int(),
  moved: z.number().int(),
  missing: z.number().int(),
  thumbnails: z.number().int().optional(),
});

const fileErrorSchema = z.object({ path: z.string(), error: z.string() });

export const jobSchema = z.object({
  job_id: z.string(),
  status: z.enum(JOB_STATUSES as [string, ...string[]]),
  progress: z.number().min(0).max(1).nullable(),
  result: z
    .object({ scanned: z.number().int(), new: z.number().int(), updated: z.number().int(), skipped: z.number().int(), errors: z.array(fileErrorSchema) })
    .nullable(),
  error: z.string().nullable(),
  path: z.string(),
  recursive: z.boolean(),
  phase: z.enum(['discovering', 'probing', 'thumbnails', 'finalizing', 'done']),
  counts: countsSchema,
  rate_per_s: z.number(),
  eta_seconds: z.number().nullable(),
  cancel_requested: z.boolean(),
  pause_requested: z.boolean(),
  retry_of: z.string().nullable(),
  created_at: z.string(),
  finished_at: z.string().nullable(),
  temporal: z.object({ workflow_id: z.string(), run_id: z.string(), ui_url: z.string() }),
});

export const videoSchema = z.object({
  id: z.number().int(),
  path: z.string(),
  filename: z.string(),
  file_size: z.number(),
  modified_at: z.string(),
  duration_seconds: z.number().nullable(),
  duration_frames: z.number().nullable(),
  frame_rate_numerator: z.number().nullable(),
  frame_rate_denominator: z.number().nullable(),
  width: z.number().nullable(),
  height: z.number().nullable(),
  video_codec: z.string().nullable(),
  audio_codec: z.string().nullable(),
  container: z.string().nullable(),
  bit_rate: z.number().nullable(),
  stream_counts: z.object({ video: z.number().int(), audio: z.number().int(), subtitle: z.number().int(), data: z.number().int() }),
  status: z.enum(['present', 'missing']),
  missing_since: z.string().nullable(),
  moved_from: z.string().nullable(),
  thumbnail_at: z.string().nullable(),
  probed_at: z.string(),
  created_at: z.string(),
  updated_at: z.string(),
});

export const errorSchema = z.object({ code: z.string(), message: z.string() });
export const jobIdBodySchema = z.object({ job_id: z.string() });
export const jobListSchema = z.object({ jobs: z.array(jobSchema), next_page_token: z.string().nullable() });
export const videoListSchema = z.object({ videos: z.array(videoSchema), total: z.number().int(), limit: z.number().int(), offset: z.number().int() });
export const videoSearchSchema = z.object({ videos: z.array(videoSchema), total: z.number().int(), query: z.string() });
export const healthSchema = z.object({ status: z.string(), temporal: z.string(), database: z.string() });

/** Shortest interval a schedule may have: short ones serve tests and demos, and a run that finds its root busy starts nothing. */
const MIN_SCHEDULE_EVERY_MS = 1000;

/** The schedule body of API.md: a root and either an interval (`every`, e.g. `12h`) or a cron expression. */
export const scheduleRequestSchema = z
  .object({
    path: z.string().min(1, 'path is required').max(4096, 'path is too long'),
    every: z
      .string()
      .max(64)
      .refine((text) => (parseDuration(text) ?? 0) >= MIN_SCHEDULE_EVERY_MS, 'every must be a duration of at least 1s, such as 90s, 30m, 12h or 1d')
      .optional(),
    cron: z
      .string()
      .max(256)
      .regex(/^(@\w+|\S+(\s+\S+){4,6})$/, 'cron must be a cron expression of 5 to 7 fields, or an @ shorthand such as @daily')
      .optional(),
    recursive: z.boolean().default(true),
    force: z.boolean().default(false),
    /** Globs of paths to leave out of each scheduled scan, added to SCAN_EXCLUDE. */
    exclude: z.array(z.string().min(1).max(256)).max(50, 'at most 50 exclude globs').optional(),
  })
  .strict()
  .refine((body) => (body.every === undefined) !== (body.cron === undefined), 'give exactly one of every and cron');

export const scheduleIdSchema = z.string().regex(/^scan-schedule-[A-Za-z0-9-]{1,100}$/, 'not a schedule id');

export const scheduleSchema = z.object({
  schedule_id: z.string(),
  path: z.string(),
  every: z.string().optional(),
  cron: z.string().optional(),
  recursive: z.boolean(),
  force: z.boolean(),
  paused: z.boolean(),
  next_run_at: z.string().nullable(),
  last_job_id: z.string().nullable(),
});

export const scheduleListSchema = z.object({ schedules: z.array(scheduleSchema) });
