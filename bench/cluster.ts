/**
 * `npm run bench:cluster -- --files N [--dir DIR] [--json FILE] [--keep]`: a
 * large library on the cluster. The real Temporal server on PostgreSQL
 * (`dist/src/temporal/server-main.js`, plain gRPC), the library in PostgreSQL,
 * two workers and the API, each its own process, and a library of N files
 * (hard links to the test clips, 50 per folder; default 1,000,000). The workers
 * load the workflow code bundled ahead (WORKFLOW_BUNDLE), as the image's do.
 *
 *   1  the first scan without pictures (`"thumbnails": false`): wall time and files/s
 *   2  a rescan of the unchanged library: files/s
 *   3  the largest history of any run of the first scan (continue-as-new makes several; target < 10,240 events)
 *   4  peak RSS of each process: each worker, its probe hosts, the API, the Temporal server (VmHWM)
 *   5  the API's p50/p99 latency of GET /api/v1/jobs/{id}, polled at 20 Hz during the first scan (one poll at a
 *      time: a slower answer delays the next)
 *   6  the library database's size after the first scan (pg_database_size)
 *   7  CPU seconds per process during each scan, PostgreSQL's backends of this run's databases included
 *
 * The library tree is kept in DIR and reused by later runs of the same N (a
 * build that was stopped resumes where it was). Each run creates its own
 * databases and drops them at the end (--keep leaves them), and stops every
 * process it started, on failure and on Ctrl-C too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import pg from 'pg';
import { withPgClient } from '../test/support/postgres';
import { ensureTestMedia, type TestClip } from '../test/support/media';
import { freePort, freeServerPorts } from '../test/support/processes';
import { writeWorkflowBundle } from '../src/worker';
import { apiCaller } from './limits';

/** As test/support/media.ts's buildLibrary lays a library out: 50 files a folder, 50 folders a group. */
const FILES_PER_FOLDER = 50;
/**
 * Links to one source file: ext4 allows 65,000 links to an inode, and a
 * million files over a handful of clips would pass it. Every LINKS_PER_SOURCE
 * files of a clip link to a fresh copy of it.
 */
const LINKS_PER_SOURCE = 50_000;
/** Folders linked at once while building. */
const BUILD_CONCURRENCY = 32;
/** The scan API is polled at 20 Hz. */
const POLL_MS = 50;
const TERMINAL = ['completed', 'failed', 'cancelled', 'timeout'];

interface Args {
  files: number;
  workDir: string;
  json: string | null;
  keep: boolean;
}

function readArgs(argv: string[]): Args {
  const { values } = parseArgs({
    args: argv,
    options: {
      files: { type: 'string', default: '1000000' },
      dir: { type: 'string', default: path.join(os.tmpdir(), 'scanner-bench-cluster') },
      json: { type: 'string' },
      keep: { type: 'boolean', default: false },
    },
  });
  const files = Number(values.files);
  if (!Number.isInteger(files) || files < 10) throw new Error('--files takes a whole number of at least 10');
  return { files, workDir: path.resolve(values.dir), json: values.json ?? null, keep: values.keep };
}

const say = (text: string): void => {
  process.stderr.write(`${text}\n`);
};

const round = (n: number, digits = 2): number => Math.round(n * 10 ** digits) / 10 ** digits;

function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

/**
 * The library of `count` files in `dir/library-<count>`: the same paths
 * buildLibrary makes, each a hard link to a copy of a test clip kept in
 * `dir/sources-<count>` (on the library's file system, so a link never crosses one).
 * A tree marked complete is reused as it is; otherwise every folder is
 * checked and only the files it lacks are linked, so a stopped build resumes.
 */
async function ensureLibrary(dir: string, count: number, clips: TestClip[]): Promise<string> {
  const root = path.join(dir, `library-${count}`);
  const marker = path.join(dir, `library-${count}.complete`);
  if (await fs.stat(marker).then(() => true, () => false)) {
    say(`reusing the library of ${count} files in ${root}`);
    return root;
  }
  const videos = clips.filter((clip) => clip.hasVideo);
  // Each library its own copies: two large libraries in one DIR would otherwise share the inodes' link budget.
  const sourcesDir = path.join(dir, `sources-${count}`);
  await fs.mkdir(sourcesDir, { recursive: true });
  const sources = new Map<string, Promise<string>>();
  /** The copy of clip `clipIndex` that file `index` links to (made once). */
  const sourceOf = (index: number): Promise<string> => {
    const clipIndex = index % videos.length;
    const generation = Math.floor(index / videos.length / LINKS_PER_SOURCE);
    const clip = videos[clipIndex] as TestClip;
    const file = path.join(sourcesDir, `clip-${clipIndex}-${generation}${path.extname(clip.file)}`);
    let made = sources.get(file);
    if (!made) {
      made = fs.stat(file).then(
        () => file,
        async () => {
          await fs.copyFile(clip.file, `${file}.part`);
          await fs.rename(`${file}.part`, file);
          return file;
        },
      );
      sources.set(file, made);
    }
    return made;
  };
  const folders = Math.ceil(count / FILES_PER_FOLDER);
  const started = performance.now();
  let linked = 0;
  let nextFolder = 0;
  const buildFolder = async (folder: number): Promise<void> => {
    const folderPath = path.join(
      root,
      `group-${String(Math.floor(folder / FILES_PER_FOLDER)).padStart(3, '0')}`,
      `folder-${String(folder % FILES_PER_FOLDER).padStart(3, '0')}`,
    );
    const present = new Set(await fs.readdir(folderPath).catch(async () => {
      await fs.mkdir(folderPath, { recursive: true });
      return [] as string[];
    }));
    const last = Math.min(count, (folder + 1) * FILES_PER_FOLDER);
    for (let index = folder * FILES_PER_FOLDER; index < last; index++) {
      const clip = videos[index % videos.length] as TestClip;
      const name = `video-${String(index).padStart(6, '0')}${path.extname(clip.file)}`;
      if (present.has(name)) continue;
      await fs.link(await sourceOf(index), path.join(folderPath, name));
      linked += 1;
    }
  };
  await Promise.all(
    Array.from({ length: BUILD_CONCURRENCY }, async () => {
      for (let folder = nextFolder++; folder < folders; folder = nextFolder++) {
        await buildFolder(folder);
        if (folder % 2000 === 1999) say(`   ${folder + 1} of ${folders} folders`);
      }
    }),
  );
  await fs.writeFile(marker, `${JSON.stringify({ files: count, folders })}\n`);
  say(`built the library of ${count} files in ${root}: ${linked} links made in ${round((performance.now() - started) / 1000)} s`);
  return root;
}

/** A part of the service: a node process started from dist/, its output in a log file. */
interface Part {
  name: string;
  child: ChildProcess;
  exited: Promise<void>;
  running: () => boolean;
  /** The end of its output, for an error message. */
  tail: () => string;
}

function startPart(name: string, script: string, env: NodeJS.ProcessEnv, logFile: string): Part {
  const child = spawn(process.execPath, [path.join(__dirname, '..', 'src', script)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = createWriteStream(logFile);
  let tail = '';
  const keep = (chunk: Buffer): void => {
    log.write(chunk);
    tail = (tail + chunk.toString()).slice(-8192);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let done = false;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      done = true;
      log.end();
      resolve();
    }),
  );
  return { name, child, exited, running: () => !done, tail: () => tail };
}

/** SIGTERM (the server part then stops its Temporal server and UI), SIGKILL after the grace time. */
async function stopPart(part: Part, graceMs = 30_000): Promise<void> {
  if (!part.running()) return;
  part.child.kill('SIGTERM');
  const timer = setTimeout(() => part.child.kill('SIGKILL'), graceMs);
  await part.exited;
  clearTimeout(timer);
}

async function waitUntil(what: string, ok: () => Promise<boolean>, timeoutMs: number, everyMs = 250): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** The fields of /proc/<pid>/stat after the command name (state is [0], ppid [1]); empty when the process is gone. */
async function statFields(pid: number): Promise<string[]> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat === '' ? [] : stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** The children of some processes (one pass over /proc), with their parent and command line. */
async function childrenOf(parents: number[]): Promise<{ pid: number; parent: number; cmdline: string }[]> {
  const found: { pid: number; parent: number; cmdline: string }[] = [];
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const parent = Number((await statFields(Number(entry)))[1]);
    if (!parents.includes(parent)) continue;
    found.push({ pid: Number(entry), parent, cmdline: (await fs.readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).replace(/\0/g, ' ') });
  }
  return found;
}

/** A /proc/<pid>/status figure in kB (VmHWM, VmRSS); 0 when the process is gone. */
async function vmKb(pid: number, field: string): Promise<number> {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(status);
  return match ? Number(match[1]) : 0;
}

/** CPU seconds of a process: its own, and those of its children it reaped (ffprobe runs, for a probe host). */
async function cpuOf(pid: number): Promise<{ own: number; reaped: number } | null> {
  const fields = await statFields(pid);
  if (fields.length === 0) return null;
  const tick = 100; // USER_HZ on Linux
  return { own: (Number(fields[11]) + Number(fields[12])) / tick, reaped: (Number(fields[13]) + Number(fields[14])) / tick };
}

interface Job {
  job_id: string;
  status: string;
  phase: string;
  counts: { discovered: number; probed: number; skipped: number; failed: number };
  result: { scanned: number } | null;
}

async function main(): Promise<void> {
  const args = readArgs(process.argv.slice(2));
  await fs.mkdir(args.workDir, { recursive: true });
  const clips = await ensureTestMedia();
  const libraryDir = await ensureLibrary(args.workDir, args.files, clips);

  const adminUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const databaseUrl = (database: string): string => adminUrl.replace(/\/[^/]*$/, `/${database}`);
  const name = `bench_cluster_${randomBytes(4).toString('hex')}`;
  // The server creates `name` and `name_visibility` on its first start; the library's database is created here.
  const databases = [name, `${name}_visibility`, `${name}_library`];
  const libraryDb = `${name}_library`;
  const runDir = path.join(args.workDir, `run-${name}`);
  await fs.mkdir(runDir, { recursive: true });
  const admin = <T>(fn: (client: pg.Client) => Promise<T>): Promise<T> => withPgClient(adminUrl, fn);

  const parts: Part[] = [];
  let connection: Connection | null = null;
  let sampler: NodeJS.Timeout | null = null;
  let cleaned: Promise<void> | null = null;
  const cleanUp = (): Promise<void> =>
    (cleaned ??= (async () => {
      if (sampler) clearInterval(sampler);
      await connection?.close().catch(() => undefined);
      // The service's clients first, then the server: a worker stopping sends its last calls to a server that still answers.
      await Promise.all(parts.filter((part) => part.name !== 'temporal').map((part) => stopPart(part)));
      await Promise.all(parts.map((part) => stopPart(part)));
      if (args.keep) {
        say(`kept the databases ${databases.join(', ')} and ${runDir}`);
        return;
      }
      await admin(async (client) => {
        for (const db of databases) await client.query(`drop database if exists ${db} with (force)`);
      }).catch((error: unknown) => say(`could not drop the databases ${databases.join(', ')}: ${String(error)}`));
      await fs.rm(runDir, { recursive: true, force: true });
    })());
  const interrupted = (signal: NodeJS.Signals): void => {
    say(`${signal}: stopping every process and dropping the databases`);
    void cleanUp().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);

  try {
    await admin((client) => client.query(`create database ${libraryDb}`));
    const ports = await freeServerPorts();
    const address = `127.0.0.1:${ports.frontend}`;
    // The shell's settings pass on (PROBE_CONCURRENCY, SCAN_BATCH_SIZE, …); the addresses and databases are this run's.
    const baseEnv: NodeJS.ProcessEnv = {
      ...process.env,
      TEMPORAL_ADDRESS: address,
      LOG_LEVEL: 'info',
    };
    say(`starting the Temporal server at ${address} on PostgreSQL (${name}, ${name}_visibility)`);
    const server = startPart(
      'temporal',
      path.join('temporal', 'server-main.js'),
      { ...baseEnv, TEMPORAL_DATABASE_URL: databaseUrl(name), TEMPORAL_UI_PORT: String(ports.ui), LOG_LEVEL: 'warn' },
      path.join(runDir, 'temporal.log'),
    );
    parts.push(server);
    await waitUntil('the Temporal server', async () => {
      if (!server.running()) throw new Error(`the Temporal server exited:\n${server.tail()}`);
      return /Ctrl-C stops it/.test(server.tail());
    }, 300_000).catch((error: unknown) => {
      throw server.running() ? error : new Error(`the Temporal server exited:\n${server.tail()}`);
    });
    const temporalChildren = await childrenOf([server.child.pid as number]);
    const goServer = temporalChildren.find((child) => child.cmdline.includes('--service'));
    if (!goServer) throw new Error('no Temporal server process under the server command');

    const taskQueue = `bench-cluster-${name}`;
    // As the image runs its workers (Dockerfile): the workflow code bundled once, ahead, so no worker runs webpack at start.
    const workflowBundle = await writeWorkflowBundle(path.join(runDir, 'workflow-bundle.js'));
    const appEnv: NodeJS.ProcessEnv = {
      ...baseEnv,
      TEMPORAL_TASK_QUEUE: taskQueue,
      DATABASE_URL: databaseUrl(libraryDb),
      DATA_DIR: path.join(runDir, 'data'),
      WORKFLOW_BUNDLE: workflowBundle,
    };
    const workers = [1, 2].map((n) => {
      const part = startPart(`worker-${n}`, 'worker-main.js', appEnv, path.join(runDir, `worker-${n}.log`));
      parts.push(part);
      return part;
    });
    const apiPort = await freePort();
    const api = startPart('api', path.join('api', 'server.js'), { ...appEnv, PORT: String(apiPort), HOST: '127.0.0.1' }, path.join(runDir, 'api.log'));
    parts.push(api);
    const base = `http://127.0.0.1:${apiPort}`;
    const alive = (): void => {
      for (const part of parts) if (!part.running()) throw new Error(`${part.name} exited:\n${part.tail()}`);
    };
    await waitUntil('the API', async () => {
      alive();
      return (await fetch(`${base}/health`)).ok;
    }, 120_000);

    connection = await Connection.connect({ address });
    const client = new Client({ connection });
    // A scan is measured on a running service: both workers poll for workflow and activity tasks.
    const pollers = async (taskQueueType: 1 | 2): Promise<number> => {
      const answer = await connection!.workflowService.describeTaskQueue({ namespace: 'default', taskQueue: { name: taskQueue }, taskQueueType });
      return new Set((answer.pollers ?? []).map((poller) => poller.identity)).size;
    };
    await waitUntil('two workers polling', async () => {
      alive();
      return (await pollers(1)) >= 2 && (await pollers(2)) >= 2;
    }, 300_000);

    /** Every process measured, by name: the parts, the Go server and UI, each worker's probe hosts (found as they come). */
    const processes = new Map<number, string>();
    processes.set(goServer.pid, 'temporal_server');
    for (const child of temporalChildren) if (child.pid !== goServer.pid) processes.set(child.pid, 'temporal_ui');
    processes.set(server.child.pid as number, 'temporal_server_command');
    processes.set(api.child.pid as number, 'api');
    for (const worker of workers) processes.set(worker.child.pid as number, worker.name);
    const findHosts = async (): Promise<void> => {
      const byPid = new Map(workers.map((worker) => [worker.child.pid as number, worker.name]));
      for (const child of await childrenOf([...byPid.keys()])) {
        if (child.cmdline.includes('media-host')) processes.set(child.pid, `${byPid.get(child.parent) as string}_probe_hosts`);
      }
    };
    await findHosts();
    /** The highest VmHWM seen per process (kept after it exits), and the peak of the probe hosts' summed VmRSS per worker. */
    const peakKb = new Map<number, number>();
    const hostsSumPeakKb = new Map<string, number>();
    const sample = async (): Promise<void> => {
      await findHosts();
      const hostsSum = new Map<string, number>();
      for (const [pid, part] of processes) {
        const hwm = await vmKb(pid, 'VmHWM');
        if (hwm > 0) peakKb.set(pid, Math.max(peakKb.get(pid) ?? 0, hwm));
        if (part.endsWith('_probe_hosts')) hostsSum.set(part, (hostsSum.get(part) ?? 0) + (await vmKb(pid, 'VmRSS')));
      }
      for (const [part, kb] of hostsSum) hostsSumPeakKb.set(part, Math.max(hostsSumPeakKb.get(part) ?? 0, kb));
    };
    let sampling = false;
    sampler = setInterval(() => {
      if (sampling) return;
      sampling = true;
      void sample().catch(() => undefined).finally(() => (sampling = false));
    }, 1000);

    /**
     * CPU seconds used so far per part (processes that exited keep what was
     * last read). A probe host counts its reaped ffprobe runs; a worker's
     * reaped children (a probe host that exited) are its own line.
     */
    const lastCpu = new Map<number, { own: number; reaped: number }>();
    const cpuByPart = async (): Promise<Record<string, number>> => {
      await findHosts();
      // PostgreSQL's backends serving this run's databases (pooled connections: most live through a scan; one that closed
      // before the reading keeps what was last read, and one that came and went between two readings is not counted).
      const backends = await admin((db) =>
        db.query<{ pid: number; datname: string }>('select pid, datname from pg_stat_activity where datname = any($1)', [databases]),
      );
      for (const backend of backends.rows) processes.set(backend.pid, backend.datname === libraryDb ? 'postgres_library' : 'postgres_temporal');
      const totals: Record<string, number> = {};
      for (const [pid, part] of processes) {
        const cpu = (await cpuOf(pid)) ?? lastCpu.get(pid);
        if (!cpu) continue;
        lastCpu.set(pid, cpu);
        const reapedCounts = part.endsWith('_probe_hosts');
        totals[part] = (totals[part] ?? 0) + cpu.own + (reapedCounts ? cpu.reaped : 0);
        if (part.startsWith('worker-') && !reapedCounts) totals[`${part}_reaped_children`] = (totals[`${part}_reaped_children`] ?? 0) + cpu.reaped;
      }
      return totals;
    };
    const cpuBetween = (from: Record<string, number>, to: Record<string, number>): Record<string, number> =>
      Object.fromEntries(Object.entries(to).map(([part, seconds]) => [part, round(seconds - (from[part] ?? 0))]));

    const call = apiCaller(base);

    /** One scan of the library without pictures, polled at 20 Hz until it ends. */
    const scan = async (label: string): Promise<{ jobId: string; seconds: number; latencies: number[]; cpu: Record<string, number>; job: Job }> => {
      say(`${label}: a scan of ${args.files} files without pictures`);
      const cpuBefore = await cpuByPart();
      const started = performance.now();
      const answer = await call<{ job_id: string }>('POST', '/api/v1/videos/scan', { path: libraryDir, thumbnails: false });
      if (answer.status !== 202) throw new Error(`the scan was not started: ${answer.status} ${JSON.stringify(answer.body)}`);
      const jobId = answer.body.job_id;
      const latencies: number[] = [];
      let job: Job;
      let lastSaid = performance.now();
      for (;;) {
        const tick = performance.now();
        const res = await call<Job>('GET', `/api/v1/jobs/${jobId}`);
        latencies.push(res.ms);
        job = res.body;
        if (TERMINAL.includes(job.status)) break;
        if (tick - lastSaid > 30_000) {
          lastSaid = tick;
          say(`   ${round((tick - started) / 1000, 0)} s: ${job.phase}, ${job.counts.discovered} discovered, ${job.counts.probed} probed, ${job.counts.skipped} skipped`);
        }
        alive();
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, POLL_MS - (performance.now() - tick))));
      }
      const seconds = (performance.now() - started) / 1000;
      const cpu = cpuBetween(cpuBefore, await cpuByPart());
      if (job.status !== 'completed') throw new Error(`${label} ended ${job.status}: ${JSON.stringify(job)}`);
      say(`   ${round(seconds)} s, ${round(args.files / seconds)} files/s; counts ${JSON.stringify(job.counts)}; CPU seconds ${JSON.stringify(cpu)}`);
      return { jobId, seconds, latencies, cpu, job };
    };

    const first = await scan('1: first scan');
    const [{ size: librarySize }] = (await admin((db) => db.query<{ size: string }>('select pg_database_size($1)::text as size', [libraryDb]))).rows as [{ size: string }];
    const [{ size: temporalSize }] = (
      await admin((db) => db.query<{ size: string }>('select (pg_database_size($1) + pg_database_size($2))::text as size', [name, `${name}_visibility`]))
    ).rows as [{ size: string }];
    // Visibility records follow a run's close shortly: list until the last run (the one that completed) is among them.
    const lastRun = (await client.workflow.getHandle(first.jobId).describe()).runId;
    let runIds: string[] = [];
    await waitUntil(`the runs of ${first.jobId} in visibility`, async () => {
      runIds = [];
      for await (const run of client.workflow.list({ query: `WorkflowId = '${first.jobId}'` })) runIds.push(run.runId);
      return runIds.includes(lastRun);
    }, 60_000, 1000);
    const runs: { runId: string; events: number }[] = [];
    for (const runId of runIds) {
      runs.push({ runId, events: (await client.workflow.getHandle(first.jobId, runId).fetchHistory()).events?.length ?? 0 });
    }
    const maxHistory = Math.max(0, ...runs.map((run) => run.events));
    say(`   ${runs.length} runs of ${first.jobId}, the largest history ${maxHistory} events; library database ${round(Number(librarySize) / 2 ** 20)} MiB`);

    const rescan = await scan('2: rescan of the unchanged library');
    await sample();
    const peakMb = (part: string): number => round(Math.max(0, ...[...processes].filter(([, p]) => p === part).map(([pid]) => peakKb.get(pid) ?? 0)) / 1024, 1);
    const rss: Record<string, number> = {};
    for (const part of new Set(processes.values())) rss[part] = peakMb(part);
    // A backend's resident set is mostly PostgreSQL's shared buffers, not its own: no peak RSS for them.
    delete rss.postgres_library;
    delete rss.postgres_temporal;
    for (const [part, kb] of hostsSumPeakKb) rss[`${part}_together`] = round(kb / 1024, 1);

    const results = {
      files: args.files,
      scan_seconds: round(first.seconds),
      scan_files_per_s: round(args.files / first.seconds),
      rescan_seconds: round(rescan.seconds),
      rescan_files_per_s: round(args.files / rescan.seconds),
      scan_runs: runs.length,
      max_history_events: maxHistory,
      history_events_per_run: runs.map((run) => run.events),
      // VmHWM of each process; for probe hosts the largest one, and *_together the peak of their summed VmRSS (sampled each second).
      peak_rss_mb: rss,
      api_p50_ms: round(percentile(first.latencies, 50)),
      api_p99_ms: round(percentile(first.latencies, 99)),
      api_polls: first.latencies.length,
      library_database_mb: round(Number(librarySize) / 2 ** 20, 1),
      temporal_databases_mb: round(Number(temporalSize) / 2 ** 20, 1),
      cpu_seconds_during_scan: first.cpu,
      cpu_seconds_during_rescan: rescan.cpu,
      scan_counts: first.job.counts,
      rescan_counts: rescan.job.counts,
      machine: {
        cores: os.availableParallelism(),
        memory_gb: round(os.totalmem() / 2 ** 30, 1),
        cpu: os.cpus()[0]?.model ?? 'unknown',
        node: process.version,
        // The load average when the run ended: the figures mean most on a quiet machine.
        load_average: os.loadavg().map((load) => round(load)),
      },
    };
    const partNames = Object.keys(results.peak_rss_mb).sort();
    const cpuParts = [...new Set([...Object.keys(first.cpu), ...Object.keys(rescan.cpu)])].sort();
    const table = [
      `| figure (N = ${results.files}, 2 workers) | value |`,
      '|---|---|',
      `| 1: first scan without pictures | ${results.scan_seconds} s, ${results.scan_files_per_s} files/s |`,
      `| 2: rescan of the unchanged library | ${results.rescan_seconds} s, ${results.rescan_files_per_s} files/s |`,
      `| 3: largest history of a run of the scan (${results.scan_runs} runs; target < 10,240) | ${results.max_history_events} events |`,
      ...partNames.map((part) => `| 4: peak RSS, ${part} | ${results.peak_rss_mb[part]} MB |`),
      `| 5: GET /api/v1/jobs/{id} during the scan, p50 / p99 (${results.api_polls} polls, one at most every ${POLL_MS} ms) | ${results.api_p50_ms} / ${results.api_p99_ms} ms |`,
      `| 6: library database after the scan (Temporal's two: ${results.temporal_databases_mb} MB) | ${results.library_database_mb} MB |`,
      ...cpuParts.map((part) => `| 7: CPU seconds, ${part}: scan / rescan | ${first.cpu[part] ?? 0} / ${rescan.cpu[part] ?? 0} |`),
      '',
      `Machine: ${results.machine.cores} cores (${results.machine.cpu}), ${results.machine.memory_gb} GiB, Node ${results.machine.node}, load average at the end ${results.machine.load_average.join(' / ')}.`,
    ].join('\n');
    process.stdout.write(`${table}\n`);
    if (args.json) await fs.writeFile(args.json, `${JSON.stringify(results, null, 2)}\n`);
  } finally {
    await cleanUp();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
