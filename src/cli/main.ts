#!/usr/bin/env node
/**
 * `scanctl`: the command-line client of the scanner's REST API.
 *
 * Exit codes a script can rely on: 0 done (a followed scan completed), 1 a
 * followed scan ended failed, cancelled or timeout, 2 bad usage, 3 the API
 * refused (4xx; its code and message on stderr), 4 the API could not be
 * reached (or failed with a 5xx).
 */
import path from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ConfigError, loadCliConfig } from '../config';
import type { Video } from '../library/types';
import type { JobBody } from '../scans';
import type { ScheduleBody } from '../scans';
import { JOB_STATUSES } from '../scans';
import { packageVersion } from '../version';
import { ApiClient, ApiRefusedError, ApiUnreachableError } from './api-client';
import { followJob, type FollowMode } from './follow';
import { jobDetails, jobLine, scheduleLine, videoLine } from './format';

export const EXIT = { done: 0, notCompleted: 1, usage: 2, refused: 3, unreachable: 4 } as const;

interface GlobalOptions {
  apiUrl?: string;
  token?: string;
  json?: boolean;
}

/** Where a run writes; the real process's streams unless a caller passes others. */
export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream;
  cwd: string;
  env: NodeJS.ProcessEnv;
}

class UsageError extends Error {}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive whole number');
  return n;
}

/**
 * Runs one `scanctl` command line (without the node and script arguments)
 * and resolves to its exit code. Never calls process.exit, so it can be
 * driven in-process as well.
 */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const write = (text: string): void => {
    io.stdout.write(`${text}\n`);
  };
  const abort = new AbortController();
  let exitCode: number = EXIT.done;

  const program = new Command('scanctl')
    .description('Scan video folders and watch the scans, through the scanner API.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .addOption(new Option('--api-url <url>', 'API base URL (default: $API_URL, else http://127.0.0.1:8000)'))
    .addOption(new Option('--token <token>', 'bearer token (default: $API_TOKEN)'))
    .option('--json', 'print one JSON document on stdout (with --follow: one line per event, then the final job)')
    .configureHelp({ showGlobalOptions: true })
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    })
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText(
      'after',
      '\nExit codes: 0 done, 1 a followed scan ended failed/cancelled/timeout, 2 bad usage,\n' +
        '3 the API refused (its code and message on stderr), 4 the API could not be reached.',
    );

  const context = (command: Command): { client: ApiClient; json: boolean; mode: FollowMode } => {
    const options = command.optsWithGlobals<GlobalOptions>();
    // The flags take the variables' place, and go through the same schema.
    const env = { ...io.env, ...(options.apiUrl !== undefined ? { API_URL: options.apiUrl } : {}), ...(options.token !== undefined ? { API_TOKEN: options.token } : {}) };
    let config;
    try {
      config = loadCliConfig(env);
    } catch (error) {
      if (error instanceof ConfigError) throw new UsageError(`${error.message}${options.apiUrl !== undefined ? ' (from --api-url)' : ''}`);
      throw error;
    }
    if (!/^https?:\/\/[^/]/.test(config.apiUrl)) throw new UsageError(`the API URL must be http:// or https:// (got ${JSON.stringify(config.apiUrl)})`);
    const client = new ApiClient({ baseUrl: config.apiUrl, token: config.apiToken });
    const json = options.json === true;
    const mode: FollowMode = json ? 'json' : io.stdout.isTTY === true ? 'bar' : 'lines';
    return { client, json, mode };
  };

  const follow = async (client: ApiClient, jobId: string, mode: FollowMode): Promise<void> => {
    const job = await followJob({ client, jobId, mode, out: io.stdout, signal: abort.signal });
    if (job === null) {
      io.stderr.write(`stopped following; the scan goes on: scanctl follow ${jobId}\n`);
      exitCode = 130;
      return;
    }
    exitCode = job.status === 'completed' ? EXIT.done : EXIT.notCompleted;
  };

  program
    .command('scan')
    .description('start a scan of a folder (a relative path is taken from the current directory)')
    .argument('<path>', 'folder to scan')
    .option('--no-recursive', 'scan only the folder itself, not its subfolders')
    .option('--force', 're-probe files even when their size and modification time are unchanged')
    .option('--exclude <glob...>', 'glob(s) of paths to leave out of this scan')
    .option('--follow', 'follow the scan to its end (exit 1 unless it completes)')
    .action(async (target: string, options: { recursive: boolean; force?: boolean; exclude?: string[]; follow?: boolean }, command: Command) => {
      const { client, json, mode } = context(command);
      const body: Record<string, unknown> = {
        path: path.resolve(io.cwd, target),
        recursive: options.recursive,
        force: options.force === true,
      };
      // Sent only when given, so an API without exclusions still takes plain scans.
      if (options.exclude !== undefined) body.exclude = options.exclude;
      let started;
      try {
        started = await client.call<{ job_id: string }>('POST', '/api/v1/videos/scan', body);
      } catch (error) {
        if (error instanceof ApiRefusedError && options.exclude !== undefined && /exclude/i.test(error.message)) {
          io.stderr.write('note: this API does not accept --exclude; leave it out, or set SCAN_EXCLUDE on the server\n');
        }
        throw error;
      }
      const jobId = started.body.job_id;
      if (options.follow) {
        if (!json) write(`${jobId} ${started.status === 202 ? 'started' : 'already running'} for ${String(body.path)}`);
        await follow(client, jobId, mode);
        return;
      }
      if (json) write(JSON.stringify({ ...started.body, created: started.status === 202 }));
      else write(`${jobId} ${started.status === 202 ? 'started' : 'already running'} for ${String(body.path)}`);
    });

  program
    .command('status')
    .description("show a scan's status, progress and result")
    .argument('<job>', 'job id (scan-…)')
    .action(async (jobId: string, _options: unknown, command: Command) => {
      const { client, json } = context(command);
      const { body } = await client.call<JobBody>('GET', `/api/v1/jobs/${encodeURIComponent(jobId)}`);
      write(json ? JSON.stringify(body) : jobDetails(body));
    });

  program
    .command('follow')
    .description('follow a scan to its end: a live bar on a terminal, a line per change otherwise (exit 1 unless it completes)')
    .argument('<job>', 'job id (scan-…)')
    .action(async (jobId: string, _options: unknown, command: Command) => {
      const { client, mode } = context(command);
      await follow(client, jobId, mode);
    });

  program
    .command('cancel')
    .description('cancel a running scan (files already probed stay recorded)')
    .argument('<job>', 'job id (scan-…)')
    .action(async (jobId: string, _options: unknown, command: Command) => {
      const { client, json } = context(command);
      const { body } = await client.call<JobBody>('POST', `/api/v1/jobs/${encodeURIComponent(jobId)}/cancel`);
      write(json ? JSON.stringify(body) : `${jobId} cancel requested`);
    });

  for (const [name, description, done] of [
    ['pause', 'pause a running scan: its files in flight are stopped and no new one is opened until it is resumed', 'paused'],
    ['resume', 'resume a paused scan where it stopped', 'resumed'],
  ] as const) {
    program
      .command(name)
      .description(description)
      .argument('<job>', 'job id (scan-…)')
      .action(async (jobId: string, _options: unknown, command: Command) => {
        const { client, json } = context(command);
        const { body } = await client.call<JobBody>('POST', `/api/v1/jobs/${encodeURIComponent(jobId)}/${name}`);
        // A pause is complete once the files in flight have stopped: until then the job says so.
        write(json ? JSON.stringify(body) : `${jobId} ${body.pause_requested ? 'pausing' : done}`);
      });
  }

  const schedules = program.command('schedules').description('scheduled rescans (Temporal Schedules): list, create, delete, trigger, pause, unpause');
  schedules
    .command('list', { isDefault: true })
    .description('list the scan schedules')
    .action(async (_options: unknown, command: Command) => {
      const { client, json } = context(command);
      const { body } = await client.call<{ schedules: ScheduleBody[] }>('GET', '/api/v1/schedules');
      if (json) {
        write(JSON.stringify(body));
        return;
      }
      for (const schedule of body.schedules) write(scheduleLine(schedule));
      if (body.schedules.length === 0) write('no schedules');
    });
  schedules
    .command('create')
    .description('schedule rescans of a folder, every interval (--every 12h) or by cron (--cron "0 3 * * *")')
    .argument('<path>', 'folder to scan')
    .addOption(new Option('--every <duration>', 'interval between runs, e.g. 90s, 30m, 12h, 1d').conflicts('cron'))
    .option('--cron <expression>', 'cron expression of the runs')
    .option('--no-recursive', 'scan only the folder itself, not its subfolders')
    .option('--force', 're-probe files even when their size and modification time are unchanged')
    .option('--exclude <glob...>', 'glob(s) of paths to leave out of each scan')
    .action(async (target: string, options: { every?: string; cron?: string; recursive: boolean; force?: boolean; exclude?: string[] }, command: Command) => {
      const { client, json } = context(command);
      if ((options.every === undefined) === (options.cron === undefined)) throw new UsageError('give one of --every and --cron');
      const body: Record<string, unknown> = { path: path.resolve(io.cwd, target), recursive: options.recursive, force: options.force === true };
      if (options.every !== undefined) body.every = options.every;
      if (options.cron !== undefined) body.cron = options.cron;
      if (options.exclude !== undefined) body.exclude = options.exclude;
      const created = await client.call<ScheduleBody>('POST', '/api/v1/schedules', body);
      write(json ? JSON.stringify(created.body) : scheduleLine(created.body));
    });
  schedules
    .command('delete')
    .description('delete a schedule (a scan it started goes on)')
    .argument('<schedule>', 'schedule id (scan-schedule-…)')
    .action(async (scheduleId: string, _options: unknown, command: Command) => {
      const { client, json } = context(command);
      await client.call('DELETE', `/api/v1/schedules/${encodeURIComponent(scheduleId)}`);
      write(json ? JSON.stringify({ schedule_id: scheduleId, deleted: true }) : `${scheduleId} deleted`);
    });
  schedules
    .command('trigger')
    .description('run a schedule now; prints the scan it started (or the one already running for its folder)')
    .argument('<schedule>', 'schedule id (scan-schedule-…)')
    .option('--follow', 'follow the scan to its end (exit 1 unless it completes)')
    .action(async (scheduleId: string, options: { follow?: boolean }, command: Command) => {
      const { client, json, mode } = context(command);
      const { body } = await client.call<{ job_id: string }>('POST', `/api/v1/schedules/${encodeURIComponent(scheduleId)}/trigger`);
      if (options.follow) {
        if (!json) write(`${body.job_id} started by ${scheduleId}`);
        await follow(client, body.job_id, mode);
        return;
      }
      write(json ? JSON.stringify(body) : `${body.job_id} started by ${scheduleId}`);
    });
  for (const name of ['pause', 'unpause'] as const) {
    schedules
      .command(name)
      .description(name === 'pause' ? 'pause a schedule: no runs until it is unpaused' : 'unpause a schedule')
      .argument('<schedule>', 'schedule id (scan-schedule-…)')
      .action(async (scheduleId: string, _options: unknown, command: Command) => {
        const { client, json } = context(command);
        const { body } = await client.call<ScheduleBody>('POST', `/api/v1/schedules/${encodeURIComponent(scheduleId)}/${name}`);
        write(json ? JSON.stringify(body) : scheduleLine(body));
      });
  }

  program
    .command('retry')
    .description('start a new scan of what a finished scan failed on or never reached')
    .argument('<job>', 'job id (scan-…) of a finished scan')
    .option('--follow', 'follow the new scan to its end (exit 1 unless it completes)')
    .action(async (jobId: string, options: { follow?: boolean }, command: Command) => {
      const { client, json, mode } = context(command);
      const started = await client.call<{ job_id: string }>('POST', `/api/v1/jobs/${encodeURIComponent(jobId)}/retry`);
      const newId = started.body.job_id;
      if (options.follow) {
        if (!json) write(`${newId} started, retrying ${jobId}`);
        await follow(client, newId, mode);
        return;
      }
      write(json ? JSON.stringify({ ...started.body, created: started.status === 202 }) : `${newId} started, retrying ${jobId}`);
    });

  program
    .command('list')
    .description('list scans, newest first')
    .addOption(new Option('--status <status>', 'only scans in this state').choices(JOB_STATUSES as readonly string[]))
    .option('--limit <n>', 'at most this many scans (1-100)', positiveInt, 20)
    .action(async (options: { status?: string; limit: number }, command: Command) => {
      const { client, json } = context(command);
      const query = new URLSearchParams({ limit: String(options.limit) });
      if (options.status !== undefined) query.set('status', options.status);
      const { body } = await client.call<{ jobs: JobBody[]; next_page_token: string | null }>('GET', `/api/v1/jobs?${query.toString()}`);
      if (json) {
        write(JSON.stringify(body));
        return;
      }
      for (const job of body.jobs) write(`${jobLine(job)}  ${job.path}`);
      if (body.jobs.length === 0) write('no scans');
    });

  program
    .command('videos')
    .description('list the library, or search it by file name or path')
    .option('--search <text>', 'only videos whose name or path contains this text')
    .addOption(new Option('--missing', 'only videos whose files have gone missing').conflicts('search'))
    .option('--limit <n>', 'at most this many videos (1-500)', positiveInt, 50)
    .action(async (options: { search?: string; missing?: boolean; limit: number }, command: Command) => {
      const { client, json } = context(command);
      const query = new URLSearchParams({ limit: String(options.limit) });
      let route: string;
      if (options.search !== undefined) {
        query.set('q', options.search);
        route = `/api/v1/videos/search?${query.toString()}`;
      } else {
        if (options.missing) query.set('status', 'missing');
        route = `/api/v1/videos?${query.toString()}`;
      }
      const { body } = await client.call<{ videos: Video[]; total: number }>('GET', route);
      if (json) {
        write(JSON.stringify(body));
        return;
      }
      for (const video of body.videos) write(videoLine(video));
      write(`${body.videos.length} of ${body.total} video(s)`);
    });

  const onSigint = (): void => abort.abort();
  process.once('SIGINT', onSigint);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end here with code 0; anything else is a usage error.
      return error.exitCode === 0 ? EXIT.done : EXIT.usage;
    }
    if (error instanceof UsageError) {
      io.stderr.write(`scanctl: ${error.message}\n`);
      return EXIT.usage;
    }
    if (error instanceof ApiRefusedError) {
      io.stderr.write(`scanctl: the API refused (${error.status} ${error.code}): ${error.message}\n`);
      return EXIT.refused;
    }
    if (error instanceof ApiUnreachableError) {
      io.stderr.write(`scanctl: ${error.message}\n`);
      return EXIT.unreachable;
    }
    throw error;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

if (require.main === module) {
  // A reader that stops early (`scanctl list | head`) closes the pipe: end quietly, as a SIGPIPE would.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(141);
    throw error;
  });
  runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, cwd: process.cwd(), env: process.env }).then(
    // Exit once stdout has drained: idle keep-alive sockets must not hold a finished command open.
    (code) => process.stdout.write('', () => process.exit(code)),
    (error: unknown) => {
      process.stderr.write(`scanctl: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.stdout.write('', () => process.exit(70));
    },
  );
}
