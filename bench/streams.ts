/**
 * `npm run bench:streams -- [--streams 200] [--seconds 20] [--files 20000] [--json FILE]`:
 * what many open event streams on one running scan cost a plain status poll.
 *
 * A real Temporal dev server, the worker and the API as their own processes
 * (as in `npm run bench`), one scan of a library big enough to keep running
 * throughout, and GET /api/v1/jobs/{id} polled at 20 Hz in three phases of
 * equal length: no stream open, then `--streams` event streams open on that
 * scan, then none again. The figure is the poll's p99 with the streams
 * against its p99 without them (both quiet phases together); the API's CPU
 * seconds per phase show where the difference goes. The streams are held by
 * a child process, as other clients' would be, so that their traffic does
 * not share the poller's event loop.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs, existsSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config';
import { createLogger } from '../src/logger';
import { ensureTemporalServer } from '../src/temporal/dev-server';
import { buildLibrary, ensureTestMedia } from '../test/support/media';
import { freePort } from '../test/support/processes';

interface Args {
  streams: number;
  seconds: number;
  files: number;
  json: string | null;
  workDir: string;
}

function parseArgs(argv: string[]): Args {
  const value = (name: string): string | undefined => {
    const at = argv.indexOf(name);
    return at >= 0 ? argv[at + 1] : undefined;
  };
  const whole = (name: string, fallback: number, least: number): number => {
    const n = Number(value(name) ?? fallback);
    if (!Number.isInteger(n) || n < least) throw new Error(`${name} takes a whole number of at least ${least}`);
    return n;
  };
  return {
    streams: whole('--streams', 200, 1),
    seconds: whole('--seconds', 20, 2),
    files: whole('--files', 20000, 100),
    json: value('--json') ?? null,
    workDir: path.resolve(value('--dir') ?? path.join(os.tmpdir(), 'scanner-bench')),
  };
}

const say = (text: string): void => {
  process.stderr.write(`${text}\n`);
};

function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

const round = (n: number, digits = 2): number => Math.round(n * 10 ** digits) / 10 ** digits;

/** CPU seconds a process has used so far (user + system). */
async function cpuSeconds(pid: number | undefined): Promise<number> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

interface Phase {
  name: string;
  latencies: number[];
  apiCpuSeconds: number;
  /** Events the open streams received during the phase. */
  events: number;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  await fs.mkdir(args.workDir, { recursive: true });

  say(`building a library of ${args.files} files in ${args.workDir}`);
  const clips = await ensureTestMedia();
  const libraryDir = path.join(args.workDir, `streams-library-${args.files}`);
  const marker = path.join(libraryDir, '.complete');
  if (!existsSync(marker)) {
    await fs.rm(libraryDir, { recursive: true, force: true });
    await buildLibrary(libraryDir, args.files, clips);
    await fs.writeFile(marker, '');
  }

  const temporalPort = await freePort();
  const apiPort = await freePort();
  const dataDir = path.join(args.workDir, `streams-data-${Date.now()}`);
  const server = await ensureTemporalServer({
    address: `127.0.0.1:${temporalPort}`,
    uiPort: await freePort(),
    dataDir: null,
    namespace: 'default',
    cliPath: process.env.TEMPORAL_CLI_PATH,
    projectRoot: path.resolve(__dirname, '..', '..'),
    logger: createLogger('bench', 'warn'),
  });
  const env = {
    ...process.env,
    TEMPORAL_ADDRESS: server.address,
    PORT: String(apiPort),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    // One ffprobe at a time: the scan lasts long enough for all three phases
    // (the in-process prober gets through 20,000 files in about a minute).
    PROBE_CONCURRENCY: process.env.PROBE_CONCURRENCY ?? '1',
    PROBER: process.env.PROBER ?? 'ffprobe',
    // Every stream comes from this one client.
    MAX_STREAMS_PER_CLIENT: String(args.streams + 10),
  };
  loadConfig(env);
  const children: ChildProcess[] = [];
  const startProcess = (script: string): ChildProcess => {
    const child = spawn(process.execPath, [path.join(__dirname, '..', 'src', script)], { env, stdio: ['ignore', 'ignore', 'inherit'] });
    children.push(child);
    return child;
  };
  startProcess('worker-main.js');
  const api = startProcess(path.join('api', 'server.js'));
  const base = `http://127.0.0.1:${apiPort}`;

  const get = async <T>(route: string): Promise<{ status: number; body: T; ms: number }> => {
    const started = performance.now();
    const res = await fetch(`${base}${route}`);
    const body = (await res.json()) as T;
    return { status: res.status, body, ms: performance.now() - started };
  };
  const waitUntil = async (ok: () => Promise<boolean>, timeoutMs: number): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!(await ok().catch(() => false))) {
      if (Date.now() > deadline) throw new Error('timed out waiting');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  };

  try {
    await waitUntil(async () => (await get('/health')).status === 200, 120_000);
    const startRes = await fetch(`${base}/api/v1/videos/scan`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ path: libraryDir }),
    });
    const { job_id: jobId } = (await startRes.json()) as { job_id: string };
    say(`scan ${jobId} of ${args.files} files; waiting for it to probe`);
    await waitUntil(async () => {
      const job = (await get<{ status: string; phase: string }>(`/api/v1/jobs/${jobId}`)).body;
      return job.status === 'running' && job.phase === 'probing';
    }, 300_000);

    // The streams live in a process of their own, as other clients' would:
    // their traffic must not queue behind (or ahead of) the poller's in one event loop.
    let holder: ChildProcess | null = null;
    let events = 0;
    const openStreams = async (count: number): Promise<void> => {
      const child = spawn(process.execPath, [__filename, '--hold', `${base}/api/v1/jobs/${jobId}/events`, String(count)], { stdio: ['ignore', 'pipe', 'inherit'] });
      holder = child;
      children.push(child);
      await new Promise<void>((resolve, reject) => {
        let buffer = '';
        child.stdout?.setEncoding('utf8');
        child.stdout?.on('data', (chunk: string) => {
          buffer += chunk;
          for (let at = buffer.indexOf('\n'); at >= 0; at = buffer.indexOf('\n')) {
            const line = buffer.slice(0, at);
            buffer = buffer.slice(at + 1);
            if (line === 'open') resolve();
            else if (/^events \d+$/.test(line)) events = Number(line.slice(7));
            else reject(new Error(line));
          }
        });
        child.once('exit', (code) => reject(new Error(`the stream holder exited (${code})`)));
      });
    };
    const closeStreams = async (): Promise<void> => {
      const child = holder;
      holder = null;
      if (child === null || child.exitCode !== null) return;
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    };

    const measure = async (name: string): Promise<Phase> => {
      const cpuBefore = await cpuSeconds(api.pid);
      const eventsBefore = events;
      const latencies: number[] = [];
      const until = performance.now() + args.seconds * 1000;
      while (performance.now() < until) {
        const tick = performance.now();
        const res = await get<{ status: string }>(`/api/v1/jobs/${jobId}`);
        if (res.body.status !== 'running') throw new Error(`the scan ended (${res.body.status}) during phase "${name}": use more --files`);
        latencies.push(res.ms);
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, 50 - (performance.now() - tick))));
      }
      const phase = { name, latencies, apiCpuSeconds: round((await cpuSeconds(api.pid)) - cpuBefore), events: events - eventsBefore };
      say(`   ${name}: p50 ${round(percentile(latencies, 50))} ms, p99 ${round(percentile(latencies, 99))} ms over ${latencies.length} polls, API CPU ${phase.apiCpuSeconds} s`);
      return phase;
    };

    say(`polling at 20 Hz, ${args.seconds} s per phase`);
    const before = await measure('no streams');
    await openStreams(args.streams);
    // Let the burst of opens settle before measuring.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const loaded = await measure(`${args.streams} streams`);
    await closeStreams();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const after = await measure('no streams again');
    await fetch(`${base}/api/v1/jobs/${jobId}/cancel`, { method: 'POST' });

    const quiet = [...before.latencies, ...after.latencies];
    const results = {
      streams: args.streams,
      seconds_per_phase: args.seconds,
      files: args.files,
      none_p50_ms: round(percentile(quiet, 50)),
      none_p99_ms: round(percentile(quiet, 99)),
      none_polls: quiet.length,
      streams_p50_ms: round(percentile(loaded.latencies, 50)),
      streams_p99_ms: round(percentile(loaded.latencies, 99)),
      streams_polls: loaded.latencies.length,
      p99_ratio: round(percentile(loaded.latencies, 99) / percentile(quiet, 99), 3),
      phases: [before, loaded, after].map((phase) => ({
        name: phase.name,
        p50_ms: round(percentile(phase.latencies, 50)),
        p99_ms: round(percentile(phase.latencies, 99)),
        polls: phase.latencies.length,
        api_cpu_seconds: phase.apiCpuSeconds,
        stream_events: phase.events,
      })),
      machine: { cores: os.availableParallelism(), cpu: os.cpus()[0]?.model ?? 'unknown', node: process.version },
    };
    const table = [
      `| status poll at 20 Hz during a scan (${args.seconds} s per phase) | p50 | p99 | polls | API CPU |`,
      '|---|---|---|---|---|',
      ...results.phases.map((p) => `| ${p.name} | ${p.p50_ms} ms | ${p.p99_ms} ms | ${p.polls} | ${p.api_cpu_seconds} s |`),
      '',
      `p99 with ${args.streams} streams / p99 without: ${results.p99_ratio} (${results.streams_p99_ms} / ${results.none_p99_ms} ms)`,
    ].join('\n');
    process.stdout.write(`${table}\n`);
    if (args.json) await fs.writeFile(args.json, `${JSON.stringify(results, null, 2)}\n`);
  } finally {
    for (const child of children) child.kill('SIGTERM');
    await Promise.all(children.map((child) => new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)))));
    await server.stop();
    await fs.rm(dataDir, { recursive: true, force: true });
  }
}

/**
 * `--hold URL N`: opens N event streams on URL, each on its own connection,
 * prints `open` once all are accepted and `events <n>` now and then, and
 * holds them until it is stopped.
 */
async function hold(url: string, count: number): Promise<void> {
  let events = 0;
  const statuses = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<number>((resolve, reject) => {
          const req = http.get(url, { agent: false }, (res) => {
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => {
              events += chunk.split('\n\n').length - 1;
            });
            resolve(res.statusCode ?? 0);
          });
          req.on('error', reject);
        }),
    ),
  );
  const refused = statuses.filter((status) => status !== 200).length;
  if (refused > 0) {
    process.stdout.write(`${refused} of ${count} streams were refused (statuses ${[...new Set(statuses)].join(', ')})\n`);
    process.exit(1);
  }
  process.stdout.write('open\n');
  setInterval(() => process.stdout.write(`events ${events}\n`), 1000);
  process.once('SIGTERM', () => process.exit(0));
}

const holdAt = process.argv.indexOf('--hold');
(holdAt >= 0 ? hold(process.argv[holdAt + 1] as string, Number(process.argv[holdAt + 2])) : main()).catch((error: unknown) => {
  process.stderr.write(`bench:streams failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
