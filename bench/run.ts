/**
 * `npm run bench -- --files N --json FILE`: measures, side by side in one run,
 * the physical limit (ffprobe alone) and the service (a full scan through the
 * API on a real Temporal server, worker and API as separate processes).
 *
 *   A  raw: the same ffprobe and arguments over the same files, PROBE_CONCURRENCY at once
 *   B  a full scan through the API, start to the end of probing (thumbnails follow), with the worker's default prober
 *      (PROBER unset); API latency polled at 20 Hz meanwhile
 *   B' the same scan with PROBER=ffprobe, on a fresh library (worker and API restarted)
 *   C  cancel latency at about half-way, 5 runs
 *   D  an incremental rescan of the unchanged library
 *   and Temporal's cost (history events) and the worker's peak RSS.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { loadConfig } from '../src/config';
import { createLogger } from '../src/logger';
import { createProber } from '../src/probe/ffprobe';
import { ensureTemporalServer } from '../src/temporal/dev-server';
import { buildLibrary, ensureTestMedia } from '../test/support/media';
import { freePort } from '../test/support/processes';

interface Args {
  files: number;
  json: string | null;
  cancelRuns: number;
  workDir: string;
}

function parseArgs(argv: string[]): Args {
  const value = (name: string): string | undefined => {
    const at = argv.indexOf(name);
    return at >= 0 ? argv[at + 1] : undefined;
  };
  const files = Number(value('--files') ?? 5000);
  if (!Number.isInteger(files) || files < 10) throw new Error('--files takes a whole number of at least 10');
  return {
    files,
    json: value('--json') ?? null,
    cancelRuns: Number(value('--cancel-runs') ?? 5),
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

interface Job {
  job_id: string;
  status: string;
  phase: string;
  progress: number | null;
  counts: { probed: number; skipped: number; discovered: number };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const concurrency = Number(process.env.PROBE_CONCURRENCY ?? os.availableParallelism());
  await fs.mkdir(args.workDir, { recursive: true });

  say(`building a library of ${args.files} files in ${args.workDir}`);
  const clips = await ensureTestMedia();
  const libraryDir = path.join(args.workDir, `library-${args.files}`);
  const marker = path.join(libraryDir, '.complete');
  let files: string[];
  if (existsSync(marker)) {
    files = JSON.parse(await fs.readFile(marker, 'utf8')) as string[];
  } else {
    await fs.rm(libraryDir, { recursive: true, force: true });
    files = await buildLibrary(libraryDir, args.files, clips);
    await fs.writeFile(marker, JSON.stringify(files));
  }

  // A: the physical limit.
  say(`A: ffprobe alone, ${concurrency} at once`);
  const prober = createProber({ ffprobePath: process.env.FFPROBE_PATH, concurrency });
  const rawStarted = performance.now();
  const rawCpuBefore = await childrenCpuSeconds();
  let rawFailures = 0;
  await Promise.all(
    files.map(async (file) => {
      const result = await prober.probe(file, { timeoutMs: 30_000 });
      if (!result.ok) rawFailures += 1;
    }),
  );
  const rawSeconds = (performance.now() - rawStarted) / 1000;
  const rawFilesPerS = files.length / rawSeconds;
  // The CPU of A (ffprobe and spawning it), and how much of the machine it
  // kept busy: the same figures for B show what the service's bookkeeping costs.
  const rawCpuSeconds = (await childrenCpuSeconds()) - rawCpuBefore;
  say(`   ${round(rawFilesPerS)} files/s (${rawFailures} failures), CPU (ffprobe and spawning it) ${round(rawCpuSeconds)} s over ${round(rawSeconds)} s`);

  // The service: dev server in memory, worker and API as their own processes.
  const temporalPort = await freePort();
  const uiPort = await freePort();
  const apiPort = await freePort();
  const dataDir = path.join(args.workDir, `data-${Date.now()}`);
  const logger = createLogger('bench', 'warn');
  const server = await ensureTemporalServer({
    address: `127.0.0.1:${temporalPort}`,
    uiPort,
    dataDir: null,
    namespace: 'default',
    cliPath: process.env.TEMPORAL_CLI_PATH,
    projectRoot: path.resolve(__dirname, '..', '..'),
    logger,
  });
  const env = {
    ...process.env,
    TEMPORAL_ADDRESS: server.address,
    PORT: String(apiPort),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    PROBE_CONCURRENCY: String(concurrency),
    LOG_LEVEL: 'warn',
  };
  const config = loadConfig(env);
  const children: ChildProcess[] = [];
  const startProcess = (script: string, extraEnv: Record<string, string>): ChildProcess => {
    // BENCH_PROFILE_DIR: write V8 CPU profiles of the worker and the API there.
    const profile = process.env.BENCH_PROFILE_DIR ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROFILE_DIR] : [];
    const child = spawn(process.execPath, [...profile, path.join(__dirname, '..', 'src', script)], {
      env: { ...env, ...extraEnv },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    children.push(child);
    return child;
  };
  const stopProcesses = async (): Promise<void> => {
    const stopping = children.splice(0);
    for (const child of stopping) child.kill('SIGTERM');
    await Promise.all(stopping.map((child) => new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(null) : child.once('exit', resolve)))));
  };
  let worker = startProcess('worker-main.js', {});
  startProcess(path.join('api', 'server.js'), {});
  let workerPeakRssMb = 0;
  let workerAndHostsPeakRssMb = 0;
  const rssTimer = setInterval(() => {
    void Promise.all([vmKb(worker.pid, 'VmHWM'), vmKb(worker.pid, 'VmRSS'), probeHostsOf(worker.pid)])
      .then(async ([hwm, rss, hosts]) => {
        workerPeakRssMb = Math.max(workerPeakRssMb, hwm / 1024);
        const hostsRss = await Promise.all(hosts.map((pid) => vmKb(pid, 'VmRSS')));
        workerAndHostsPeakRssMb = Math.max(workerAndHostsPeakRssMb, (rss + hostsRss.reduce((sum, kb) => sum + kb, 0)) / 1024);
      })
      .catch(() => undefined);
  }, 500);

  const base = `http://127.0.0.1:${apiPort}`;
  const call = async <T>(method: string, route: string, body?: unknown): Promise<{ status: number; body: T; ms: number }> => {
    const started = performance.now();
    const res = await fetch(`${base}${route}`, {
      method,
      headers: body !== undefined ? { 'content-type': 'application/json' } : {},
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const parsed = (await res.json()) as T;
    return { status: res.status, body: parsed, ms: performance.now() - started };
  };
  const waitUntil = async (ok: () => Promise<boolean>, timeoutMs: number): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!(await ok().catch(() => false))) {
      if (Date.now() > deadline) throw new Error('timed out waiting');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  await waitUntil(async () => (await call<{ status: string }>('GET', '/health')).status === 200, 60_000);

  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection });
  // B measures a scan on a running service: it starts once the worker polls
  // for both workflow and activity tasks (its start-up, bundling the workflow
  // code, takes seconds and is not part of any scan).
  const polled = async (taskQueueType: 1 | 2): Promise<boolean> => {
    const answer = await connection.workflowService.describeTaskQueue({
      namespace: config.temporal.namespace,
      taskQueue: { name: config.temporal.taskQueue },
      taskQueueType,
    });
    return (answer.pollers?.length ?? 0) > 0;
  };
  await waitUntil(async () => (await polled(1)) && (await polled(2)), 120_000);
  // Which prober the worker picked with PROBER unset: its probe hosts say so in their environment.
  await waitUntil(async () => (await probeHostsOf(worker.pid)).length > 0, 60_000);
  const defaultProber = await proberOf(worker.pid);
  const history = async (workflowId: string): Promise<{ total: number; max: number }> => {
    let total = 0;
    let max = 0;
    for await (const run of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
      const events = (await client.workflow.getHandle(workflowId, run.runId).fetchHistory()).events?.length ?? 0;
      total += events;
      max = Math.max(max, events);
    }
    return { total, max };
  };

  /** A full scan of the library through the API, polled at 20 Hz throughout, with the CPU each part used. */
  const fullScan = async (
    label: string,
  ): Promise<{ jobId: string; seconds: number; withPicturesSeconds: number; filesPerS: number; latencies: number[]; cpu: Record<string, number> }> => {
    const cpuBefore = await cpuByPart(temporalPort);
    const scanStarted = performance.now();
    const started = await call<{ job_id: string }>('POST', '/api/v1/videos/scan', { path: libraryDir });
    const jobId = started.body.job_id;
    const latencies: number[] = [];
    let job: Job;
    // The scan's rate is its probing: thumbnails follow in a phase of their own.
    let probedAt: number | null = null;
    for (;;) {
      const tick = performance.now();
      const res = await call<Job>('GET', `/api/v1/jobs/${jobId}`);
      latencies.push(res.ms);
      job = res.body;
      const ended = ['completed', 'failed', 'cancelled', 'timeout'].includes(job.status);
      if (probedAt === null && (ended || job.phase === 'thumbnails')) probedAt = performance.now();
      if (ended) break;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, Number(process.env.BENCH_POLL_MS ?? 50) - (performance.now() - tick))));
    }
    const withPicturesSeconds = (performance.now() - scanStarted) / 1000;
    const seconds = ((probedAt ?? performance.now()) - scanStarted) / 1000;
    const cpuAfter = await cpuByPart(temporalPort);
    const cpu = Object.fromEntries(Object.entries(cpuAfter).map(([part, used]) => [part, round(used - (cpuBefore[part] ?? 0))]));
    say(`   CPU seconds during ${label}: ${JSON.stringify(cpu)} over ${round(seconds)} s`);
    if (job.status !== 'completed') throw new Error(`scan ended ${job.status}`);
    const filesPerS = files.length / seconds;
    say(`   ${round(filesPerS)} files/s probed, ${round(withPicturesSeconds)} s until every picture, ${latencies.length} polls`);
    return { jobId, seconds, withPicturesSeconds, filesPerS, latencies, cpu };
  };

  try {
    // B: a full scan with the default prober.
    say(`B: a full scan through the API (default prober: ${defaultProber})`);
    const scan = await fullScan('B');
    const { jobId, latencies, cpu: cpuDuringScan } = scan;
    const scanSeconds = scan.seconds;
    const scanFilesPerS = scan.filesPerS;
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const scanHistory = await history(jobId);

    // D: rescan of the unchanged library.
    say('D: incremental rescan');
    const rescanStarted = performance.now();
    const rescan = await call<{ job_id: string }>('POST', '/api/v1/videos/scan', { path: libraryDir });
    await waitUntil(async () => (await call<Job>('GET', `/api/v1/jobs/${rescan.body.job_id}`)).body.status === 'completed', 600_000);
    const rescanFilesPerS = files.length / ((performance.now() - rescanStarted) / 1000);
    say(`   ${round(rescanFilesPerS)} files/s`);

    // C: cancel at about half-way, on fresh paths each run so there is probing to cancel.
    say(`C: cancel latency, ${args.cancelRuns} runs`);
    const cancelSeconds: number[] = [];
    const cancelFiles = Math.min(files.length, 2000);
    for (let run = 0; run < args.cancelRuns; run += 1) {
      const dir = path.join(args.workDir, `cancel-${Date.now()}-${run}`);
      await buildLibrary(dir, cancelFiles, clips);
      const res = await call<{ job_id: string }>('POST', '/api/v1/videos/scan', { path: dir });
      const id = res.body.job_id;
      await waitUntil(async () => ((await call<Job>('GET', `/api/v1/jobs/${id}`)).body.progress ?? 0) >= 0.5, 600_000);
      const requested = performance.now();
      await call('POST', `/api/v1/jobs/${id}/cancel`);
      await waitUntil(async () => (await call<Job>('GET', `/api/v1/jobs/${id}`)).body.status === 'cancelled', 60_000);
      await waitUntil(async () => (await probesRunningIn(dir)) === 0, 60_000);
      cancelSeconds.push((performance.now() - requested) / 1000);
      await fs.rm(dir, { recursive: true, force: true });
    }
    say(`   ${cancelSeconds.map((s) => round(s)).join(', ')} s`);

    // B': the same full scan with PROBER=ffprobe, on a fresh library: worker and API restarted.
    say("B': a full scan through the API with PROBER=ffprobe");
    await stopProcesses();
    const ffprobeData = { DATA_DIR: path.join(dataDir, 'ffprobe') };
    worker = startProcess('worker-main.js', { ...ffprobeData, PROBER: 'ffprobe' });
    startProcess(path.join('api', 'server.js'), ffprobeData);
    await waitUntil(async () => (await call<{ status: string }>('GET', '/health')).status === 200, 60_000);
    await waitUntil(async () => (await polled(1)) && (await polled(2)), 120_000);
    const ffprobeScan = await fullScan("B'");

    const results = {
      files: files.length,
      raw_files_per_s: round(rawFilesPerS),
      scan_files_per_s: round(scanFilesPerS),
      scan_vs_raw: round(scanFilesPerS / rawFilesPerS, 3),
      prober: defaultProber,
      scan_ffprobe_files_per_s: round(ffprobeScan.filesPerS),
      scan_ffprobe_vs_raw: round(ffprobeScan.filesPerS / rawFilesPerS, 3),
      api_p50_ms: round(percentile(latencies, 50)),
      api_p99_ms: round(percentile(latencies, 99)),
      api_polls: latencies.length,
      cancel_p50_s: round(percentile(cancelSeconds, 50), 3),
      cancel_p95_s: round(percentile(cancelSeconds, 95), 3),
      rescan_files_per_s: round(rescanFilesPerS),
      history_events_per_1000_files: round((scanHistory.total / files.length) * 1000, 1),
      max_history_events: scanHistory.max,
      worker_peak_rss_mb: round(workerPeakRssMb, 1),
      // The worker and its probe hosts together (sampled every 0.5 s), over the whole run.
      worker_and_hosts_peak_rss_mb: round(workerAndHostsPeakRssMb, 1),
      scan_seconds: round(scanSeconds),
      // Start to completed, thumbnail phase included: the whole library has its pictures.
      scan_with_thumbnails_seconds: round(scan.withPicturesSeconds),
      cpu_seconds_during_scan: cpuDuringScan,
      cpu_seconds_during_ffprobe_scan: ffprobeScan.cpu,
      ffprobe_scan_seconds: round(ffprobeScan.seconds),
      ffprobe_scan_api_p99_ms: round(percentile(ffprobeScan.latencies, 99)),
      raw_seconds: round(rawSeconds),
      raw_ffprobe_cpu_seconds: round(rawCpuSeconds),
      // Share of the machine's CPU time in use: A (ffprobe alone) and B (the whole service).
      raw_machine_busy: round(rawCpuSeconds / (rawSeconds * os.availableParallelism()), 3),
      scan_machine_busy: round(
        Object.values(cpuDuringScan).reduce((sum, seconds) => sum + seconds, 0) / (scanSeconds * os.availableParallelism()),
        3,
      ),
      scan_ffprobe_machine_busy: round(
        Object.values(ffprobeScan.cpu).reduce((sum, seconds) => sum + seconds, 0) / (ffprobeScan.seconds * os.availableParallelism()),
        3,
      ),
      settings: { probe_concurrency: concurrency, batch_size: config.batchSize, window: config.window },
      machine: {
        cores: os.availableParallelism(),
        memory_gb: round(os.totalmem() / 2 ** 30, 1),
        cpu: os.cpus()[0]?.model ?? 'unknown',
        node: process.version,
        ffprobe: await prober.version(),
      },
    };
    const table = [
      `| figure (N = ${results.files}) | value |`,
      '|---|---|',
      `| A: ffprobe alone | ${results.raw_files_per_s} files/s |`,
      `| B: full scan through the API, default prober (${results.prober}) | ${results.scan_files_per_s} files/s |`,
      `| B/A | ${results.scan_vs_raw} |`,
      `| B with PROBER=ffprobe / its B/A | ${results.scan_ffprobe_files_per_s} files/s / ${results.scan_ffprobe_vs_raw} |`,
      `| API latency during B, p50 / p99 (${results.api_polls} polls at 20 Hz) | ${results.api_p50_ms} / ${results.api_p99_ms} ms |`,
      `| cancel to \`cancelled\` and no ffprobe left, p50 / p95 (${args.cancelRuns} runs) | ${results.cancel_p50_s} / ${results.cancel_p95_s} s |`,
      `| incremental rescan, unchanged library | ${results.rescan_files_per_s} files/s |`,
      `| history events per 1,000 files / largest run | ${results.history_events_per_1000_files} / ${results.max_history_events} |`,
      `| worker peak RSS / worker and probe hosts together | ${results.worker_peak_rss_mb} / ${results.worker_and_hosts_peak_rss_mb} MB |`,
      `| CPU busy, A / B / B with ffprobe (share of ${results.machine.cores} cores) | ${results.raw_machine_busy} / ${results.scan_machine_busy} / ${results.scan_ffprobe_machine_busy} |`,
      `| CPU seconds during B: probe hosts (and ffprobe) / worker / Temporal / API | ${cpuDuringScan.probe_host_and_ffprobe ?? 0} / ${cpuDuringScan.worker ?? 0} / ${cpuDuringScan.temporal_server ?? 0} / ${cpuDuringScan.api ?? 0} (A: ffprobe and its spawning ${results.raw_ffprobe_cpu_seconds}) |`,
      `| CPU seconds during B with ffprobe: ffprobe and host / worker / Temporal / API | ${ffprobeScan.cpu.probe_host_and_ffprobe ?? 0} / ${ffprobeScan.cpu.worker ?? 0} / ${ffprobeScan.cpu.temporal_server ?? 0} / ${ffprobeScan.cpu.api ?? 0} |`,
      '',
      `Machine: ${results.machine.cores} cores (${results.machine.cpu}), ${results.machine.memory_gb} GiB, Node ${results.machine.node}, ${results.machine.ffprobe}; PROBE_CONCURRENCY=${concurrency}, SCAN_BATCH_SIZE=${config.batchSize}, SCAN_WINDOW=${config.window}.`,
    ].join('\n');
    process.stdout.write(`${table}\n`);
    if (args.json) await fs.writeFile(args.json, `${JSON.stringify(results, null, 2)}\n`);
  } finally {
    clearInterval(rssTimer);
    await stopProcesses();
    await connection.close();
    await server.stop();
    await fs.rm(dataDir, { recursive: true, force: true });
  }
}

/**
 * CPU seconds of this process and its reaped children: in A, the ffprobe runs
 * and the spawning of them (the same work the probe host does in B).
 */
async function childrenCpuSeconds(): Promise<number> {
  const stat = await fs.readFile('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / 100;
}

/** CPU seconds used so far by each part of the service (ffprobe counted in its reaping parent's children time). */
async function cpuByPart(temporalPort: number): Promise<Record<string, number>> {
  const parts: Record<string, number> = {};
  const tick = 100; // USER_HZ on Linux
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = (await fs.readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).replace(/\0/g, ' ');
    const part = cmdline.includes('worker-main.js')
      ? 'worker'
      : cmdline.includes('api/server.js')
        ? 'api'
        : cmdline.includes('probe-host.js')
          ? 'probe_host_and_ffprobe'
          : cmdline.includes('start-dev') && cmdline.includes(`--port ${temporalPort}`)
            ? 'temporal_server'
            : null;
    if (part === null) continue;
    const stat = await fs.readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime, stime, and for the probe host also cutime, cstime: its reaped ffprobe children.
    const own = Number(fields[11]) + Number(fields[12]);
    const children = part === 'probe_host_and_ffprobe' ? Number(fields[13]) + Number(fields[14]) : 0;
    parts[part] = (parts[part] ?? 0) + (own + children) / tick;
  }
  return parts;
}

/** A /proc/<pid>/status figure in kB (VmRSS, VmHWM), 0 when the process is gone. */
async function vmKb(pid: number | undefined, field: string): Promise<number> {
  if (pid === undefined) return 0;
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(status);
  return match ? Number(match[1]) : 0;
}

/** The probe host processes a worker started. */
async function probeHostsOf(workerPid: number | undefined): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await fs.readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== workerPid) continue;
    const cmdline = await fs.readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes('probe-host')) pids.push(Number(entry));
  }
  return pids;
}

/** The prober a worker's hosts run (PROBE_HOST_PROBER in their environment). */
async function proberOf(workerPid: number | undefined): Promise<string> {
  const [host] = await probeHostsOf(workerPid);
  const environ = host === undefined ? '' : await fs.readFile(`/proc/${host}/environ`, 'utf8').catch(() => '');
  return /(?:^|\0)PROBE_HOST_PROBER=([^\0]*)/.exec(environ)?.[1] ?? 'unknown';
}

/** ffprobe processes (or wrappers) whose arguments name a file under `dir`. */
async function probesRunningIn(dir: string): Promise<number> {
  let count = 0;
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await fs.readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(`file:${dir}`)) count += 1;
  }
  return count;
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
