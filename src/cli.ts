/**
 * `npm run cli -- <command>`: a small client of the REST API.
 *
 *   scan <path> [--force] [--no-recursive] [--follow]   start a scan (and follow it)
 *   job <job_id>                                        show a job
 *   follow <job_id>                                     follow a job until it ends
 *   cancel <job_id> | retry <job_id>
 *   jobs [--status S]                                   list jobs
 *   videos [--q TEXT]                                   list or search the library
 *
 * The API address comes from HOST/PORT (or SCANNER_URL), the token from API_TOKEN.
 */
import { loadConfigOrExit } from './config';

interface JobView {
  job_id: string;
  status: string;
  progress: number | null;
  phase: string;
  counts: { discovered: number; probed: number; skipped: number; failed: number; new: number; updated: number };
  rate_per_s: number;
  eta_seconds: number | null;
  error: string | null;
}

const TERMINAL = new Set(['completed', 'failed', 'cancelled', 'timeout']);

function out(text: string): void {
  process.stdout.write(`${text}\n`);
}

async function main(argv: string[]): Promise<number> {
  const config = loadConfigOrExit();
  const base = process.env.SCANNER_URL ?? `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${config.port}`;
  const call = async <T>(method: string, route: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${base}${route}`, {
      method,
      headers: {
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(config.apiToken ? { authorization: `Bearer ${config.apiToken}` } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const parsed = (text ? JSON.parse(text) : {}) as T & { code?: string; message?: string };
    if (!res.ok) throw new Error(`${res.status} ${parsed.code ?? ''}: ${parsed.message ?? text}`);
    return parsed;
  };
  const line = (job: JobView): string => {
    const pct = job.progress === null ? '  -  ' : `${(job.progress * 100).toFixed(1).padStart(5)}%`;
    const c = job.counts;
    return `${job.job_id} ${job.status.padEnd(9)} ${pct} ${job.phase.padEnd(11)} ${c.probed + c.skipped}/${c.discovered} files, ${c.failed} failed, ${job.rate_per_s} files/s${job.eta_seconds !== null ? `, eta ${job.eta_seconds}s` : ''}${job.error ? ` (${job.error})` : ''}`;
  };
  const follow = async (jobId: string): Promise<number> => {
    for (;;) {
      const job = await call<JobView>('GET', `/api/v1/jobs/${encodeURIComponent(jobId)}`);
      out(line(job));
      if (TERMINAL.has(job.status)) return job.status === 'completed' ? 0 : 1;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  };
  const flag = (name: string): boolean => argv.includes(name);
  const option = (name: string): string | undefined => {
    const at = argv.indexOf(name);
    return at >= 0 ? argv[at + 1] : undefined;
  };
  const [command, arg] = argv;
  switch (command) {
    case 'scan': {
      if (!arg) throw new Error('usage: scan <path> [--force] [--no-recursive] [--follow]');
      const { job_id } = await call<{ job_id: string }>('POST', '/api/v1/videos/scan', {
        path: arg,
        force: flag('--force'),
        recursive: !flag('--no-recursive'),
      });
      out(job_id);
      return flag('--follow') ? follow(job_id) : 0;
    }
    case 'job':
      out(JSON.stringify(await call('GET', `/api/v1/jobs/${encodeURIComponent(arg ?? '')}`), null, 2));
      return 0;
    case 'follow':
      return follow(arg ?? '');
    case 'cancel':
      out(line(await call<JobView>('POST', `/api/v1/jobs/${encodeURIComponent(arg ?? '')}/cancel`)));
      return 0;
    case 'retry':
      out((await call<{ job_id: string }>('POST', `/api/v1/jobs/${encodeURIComponent(arg ?? '')}/retry`)).job_id);
      return 0;
    case 'jobs': {
      const status = option('--status');
      const page = await call<{ jobs: JobView[] }>('GET', `/api/v1/jobs${status ? `?status=${encodeURIComponent(status)}` : ''}`);
      for (const job of page.jobs) out(line(job));
      return 0;
    }
    case 'videos': {
      const q = option('--q');
      const page = await call<{ videos: { path: string; width: number; height: number; video_codec: string; duration_seconds: number }[]; total: number }>(
        'GET',
        q ? `/api/v1/videos/search?q=${encodeURIComponent(q)}` : '/api/v1/videos?limit=100',
      );
      for (const v of page.videos) out(`${v.width}x${v.height} ${v.video_codec} ${v.duration_seconds?.toFixed(1)}s ${v.path}`);
      out(`${page.total} video(s)`);
      return 0;
    }
    default:
      out('commands: scan <path> [--force] [--no-recursive] [--follow] | job <id> | follow <id> | cancel <id> | retry <id> | jobs [--status S] | videos [--q TEXT]');
      return command ? 2 : 0;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
