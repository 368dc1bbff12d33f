/**
 * Human-readable text for jobs and videos (what `scanctl` prints without
 * `--json`). Plain functions from bodies to strings, so every command and the
 * follower word things the same way.
 */
import type { Video } from '../library/types';
import type { JobBody } from '../scans';
import type { ScheduleBody } from '../scans';

export const TERMINAL = new Set(['completed', 'failed', 'cancelled', 'timeout']);

/** Files handled so far: probed (whatever the outcome) plus unchanged ones skipped. */
export function filesDone(job: JobBody): number {
  return job.counts.probed + job.counts.skipped;
}

/** `1h02m`, `3m05s`, `42s`. */
export function formatSeconds(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '--';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m${String(rest).padStart(2, '0')}s`;
  return `${rest}s`;
}

export function formatPercent(progress: number | null): string {
  return progress === null ? '--' : `${(progress * 100).toFixed(1)}%`;
}

/** What `rate_per_s` counts in the phase under way: files while probing, pictures while making them. */
export function rateUnit(job: JobBody): string {
  return job.phase === 'thumbnails' ? 'pictures/s' : 'files/s';
}

/** One line for a job: what a piped `--follow` prints per change, and what `list` prints per scan. */
export function jobLine(job: JobBody): string {
  const parts = [
    job.job_id,
    job.status,
    job.status === 'running' ? job.phase : null,
    formatPercent(job.progress),
    `${filesDone(job)}/${job.counts.discovered} files`,
    `${job.counts.failed} failed`,
    // Rate and ETA are the phase's own: pictures while the scan makes them.
    TERMINAL.has(job.status) ? null : `${job.rate_per_s} ${rateUnit(job)}`,
    TERMINAL.has(job.status) || job.eta_seconds === null ? null : `eta ${formatSeconds(job.eta_seconds)}`,
    job.cancel_requested && !TERMINAL.has(job.status) ? 'cancelling' : null,
    job.pause_requested && !TERMINAL.has(job.status) ? 'pausing' : null,
  ];
  return parts.filter((part): part is string => part !== null).join('  ');
}

function elapsedSeconds(job: JobBody): number | null {
  if (job.finished_at === null) return null;
  return (Date.parse(job.finished_at) - Date.parse(job.created_at)) / 1000;
}

/** The closing summary of a scan: outcome, totals, first errors, and where to look in the Temporal UI. */
export function jobSummary(job: JobBody, maxErrors = 5): string {
  const c = job.counts;
  const lines: string[] = [];
  const took = elapsedSeconds(job);
  lines.push(
    `${job.status}${took !== null ? ` in ${formatSeconds(took)}` : ''}: ${filesDone(job)} of ${c.discovered} files scanned ` +
      `(${c.new} new, ${c.updated} updated, ${c.skipped} unchanged, ${c.failed} failed), ${job.rate_per_s} files/s`,
  );
  lines.push(`path: ${job.path}${job.recursive ? '' : ' (not recursive)'}`);
  if (job.error) lines.push(`error: ${job.error}`);
  const errors = job.result?.errors ?? [];
  if (errors.length > 0) {
    lines.push(`file errors (${Math.min(errors.length, maxErrors)} of ${c.failed}):`);
    for (const e of errors.slice(0, maxErrors)) lines.push(`  ${e.error}: ${e.path}`);
  }
  if (job.retry_of) lines.push(`retry of: ${job.retry_of}`);
  lines.push(`Temporal UI: ${job.temporal.ui_url}`);
  return lines.join('\n');
}

/** A job as `status` shows it: the line, then its details. */
export function jobDetails(job: JobBody): string {
  const lines = [jobLine(job)];
  if (TERMINAL.has(job.status)) {
    lines.push(jobSummary(job));
  } else {
    lines.push(`path: ${job.path}${job.recursive ? '' : ' (not recursive)'}`);
    lines.push(`started: ${job.created_at}`);
    lines.push(`Temporal UI: ${job.temporal.ui_url}`);
  }
  return lines.join('\n');
}

/** One line per video: size, codec, duration, path. */
export function videoLine(video: Video): string {
  const size = video.width !== null && video.height !== null ? `${video.width}x${video.height}` : '-';
  const seconds = video.duration_seconds;
  const duration = seconds === null ? '--' : seconds < 60 ? `${seconds.toFixed(1)}s` : formatSeconds(seconds);
  const missing = video.status === 'missing' ? '  (missing)' : '';
  return `${String(video.id).padStart(6)}  ${size.padEnd(9)}  ${(video.video_codec ?? '-').padEnd(6)}  ${duration.padStart(6)}  ${video.path}${missing}`;
}

/** One line per schedule: id, cadence, state, next run, last scan, folder. */
export function scheduleLine(schedule: ScheduleBody): string {
  const cadence = schedule.every !== undefined ? `every ${schedule.every}` : `cron ${schedule.cron ?? '?'}`;
  const state = schedule.paused ? 'paused' : `next ${schedule.next_run_at ?? '--'}`;
  return `${schedule.schedule_id}  ${cadence}  ${state}  last ${schedule.last_job_id ?? '--'}  ${schedule.path}`;
}
