/**
 * `npm run bench -- --files N --json FILE`: measures, side by side in one run,
 * the limits (ffprobe alone, the prober pool alone, a bare walk) and the
 * service (a full scan through the API on a real Temporal server, worker and
 * API as separate processes, started before any phase and idle between them;
 * the worker loads the workflow code bundled ahead, as the image's workers do).
 *
 *   A  raw: the same ffprobe and arguments over the same files, PROBE_CONCURRENCY at once, in two
 *      slices (half of the files right before B, the other half right after it; the ratios use the
 *      mean of the two rates) (--raw-files K: over the first K files only; rates are per second, so the ratios hold)
 *   A' raw thumbnails: `ffmpeg -ss T -i FILE -frames:v 1 -vf scale=W:-1`, one process per file, over
 *      A's files, THUMBNAIL_CONCURRENCY at once (the same value B's worker runs with)
 *   C  the prober pool alone: `probeFile` through the probe hosts as the probe activity calls it, B's
 *      kind of prober, PROBE_CONCURRENCY probing, no Temporal and no database; over all files, in two
 *      slices like A (right before and right after B)
 *   B  a full scan through the API, start to the end of probing (thumbnails follow), with the worker's default prober
 *      (PROBER unset); API latency polled at 20 Hz meanwhile
 *      and its thumbnail phase (end of probing to the last picture). Both ends are the times Temporal's
 *      history gives (the last probe batch's completion, the scan's close): a poll sees them up to the
 *      API's cache of a polled scan (250 ms) plus the poll interval later; the polled times are kept too
 *   D  an incremental rescan of the unchanged library
 *   W  a bare walk of the same tree in this process (readdir with file types, lstat per file), median of 3
 *   E  cancel latency at about half-way, 5 runs
 *   T  a probe that hangs (an ffprobe that never answers), through the pool: how far past its limit
 *      (1 s) it ends, and how long after an abort, 5 runs each
 *   B' the same scan with PROBER=ffprobe, on a fresh library (worker and API restarted);
 *      --skip-ffprobe-scan leaves it out
 *   J  50 scans started at once on small distinct roots, then the median of 10 reads of a page of 50 jobs
 *   and Temporal's cost (history events) and the worker's peak RSS.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import ffmpegInstaller from '@ffmpeg-installer/ffmpeg';
import { Client, Connection } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import execa from 'execa';
import { loadConfig } from '../src/config';
import { createLogger } from '../src/logger';
import { createProber, type Prober } from '../src/probe/ffprobe';
import { ensureTemporalServer } from '../src/temporal/dev-server';
import { thumbnailSeekSeconds } from '../src/thumbnails/thumbnailer';
import { writeWorkflowBundle } from '../src/worker';
import { buildLibrary, ensureTestMedia, type TestClip } from '../test/support/media';
import { freePort } from '../test/support/processes';
import { apiCaller, bareWalk, jobsPageAfterStarts, median, openProberPool, probeStopTimes, type ProberPoolRun, type WalkRun } from './limits';

/** J: scans started at once before the page of jobs is read, the files in each one's root, and the page reads. */
const JOBS_PAGE_STARTS = 50;
const JOBS_PAGE_ROOT_FILES = 2;
const JOBS_PAGE_READS = 10;

interface Args {
  files: number;
  json: string | null;
  cancelRuns: number;
  workDir: string;
  /** A and the raw thumbnails run over the first `rawFiles` files. */
  rawFiles: number;
  skipFfprobeScan: boolean;
}

function readArgs(argv: string[]): Args {
  const { values } = parseArgs({
    args: argv,
    options: {
      files: { type: 'string', default: '5000' },
      json: { type: 'string' },
      'cancel-runs': { type: 'string', default: '5' },
      dir: { type: 'string', default: path.join(os.tmpdir(), 'scanner-bench') },
      'raw-files': { type: 'string' },
      'skip-ffprobe-scan': { type: 'boolean', default: false },
    },
  });
  const files = Number(values.files);
  if (!Number.isInteger(files) || files < 10) throw new Error('--files takes a whole number of at least 10');
  const rawFiles = values['raw-files'] === undefined ? files : Number(values['raw-files']);
  if (!Number.isInteger(rawFiles) || rawFiles < 1) throw new Error('--raw-files takes a whole number of at least 1');
  const cancelRuns = Number(values['cancel-runs']);
  if (!Number.isInteger(cancelRuns) || cancelRuns < 0) throw new Error('--cancel-runs takes a whole number');
  return {
    files,
    json: values.json ?? null,
    cancelRuns,
    workDir: path.resolve(values.dir),
    rawFiles: Math.min(rawFiles, files),
    skipFfprobeScan: values['skip-ffprobe-scan'],
  };
}

const say = (text: string): void => {
  process.stderr.write(`${text}\n`);
};

/** The first half of a list and the rest (a list of one file is both halves). */
function halves<T>(items: T[]): [T[], T[]] {
  const first = items.slice(0, Math.ceil(items.length / 2));
  const rest = items.slice(first.length);
  return [first, rest.length > 0 ? rest : first];
}

/** One run of ffprobe alone (A) over some files. */
interface RawRun {
  files: number;
  seconds: number;
  failures: number;
  /** CPU seconds of ffprobe and of spawning it. */
  cpuSeconds: number;
}

/** A: the files through the ffprobe prober (its own limit keeps PROBE_CONCURRENCY running), in this process. */
async function ffprobeAlone(prober: Prober, files: string[]): Promise<RawRun> {
  const started = performance.now();
  const cpuBefore = await childrenCpuSeconds();
  const results = await Promise.all(files.map(async (file) => prober.probe(file, { timeoutMs: 30_000 })));
  const seconds = (performance.now() - started) / 1000;
  return { files: files.length, seconds, failures: results.filter((result) => !result.ok).length, cpuSeconds: (await childrenCpuSeconds()) - cpuBefore };
}

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
  counts: { probed: number; skipped: number; discovered: number; thumbnails?: number };
}

async function main(): Promise<void> {
  const args = readArgs(process.argv.slice(2));
  const concurrency = Number(process.env.PROBE_CONCURRENCY ?? os.availableParallelism());
  // B's worker makes this many pictures at once (the service's default is 1
  // per worker; the benchmark uses the cores, as for probing), and the raw
  // thumbnails run the same number of ffmpeg at once, for a fair ratio.
  const thumbnailConcurrency = Number(process.env.THUMBNAIL_CONCURRENCY ?? os.availableParallelism());
  const thumbnailWidth = loadConfig(process.env).thumbnailWidth;
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

  // The service: dev server in memory, worker and API as their own processes.
  const temporalPort = await freePort();
  const uiPort = await freePort();
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
  // Picked once the Temporal server is up: it binds ports of its own choosing
  // too, and one picked before could be taken by then (it was, once).
  const apiPort = await freePort();
  // As the image runs its workers (Dockerfile): the workflow code bundled once, ahead, so the worker runs no webpack at start.
  await fs.mkdir(dataDir, { recursive: true });
  const workflowBundle = await writeWorkflowBundle(path.join(dataDir, 'workflow-bundle.js'));
  const env = {
    ...process.env,
    WORKFLOW_BUNDLE: workflowBundle,
    TEMPORAL_ADDRESS: server.address,
    PORT: String(apiPort),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    PROBE_CONCURRENCY: String(concurrency),
    // J starts JOBS_PAGE_STARTS scans at once: none may be refused for the bound.
    MAX_CONCURRENT_SCANS: String(Math.max(2 * JOBS_PAGE_STARTS, loadConfig(process.env).maxConcurrentScans)),
    THUMBNAIL_CONCURRENCY: String(thumbnailConcurrency),
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
  const call = apiCaller(base);
  const waitUntil = async (ok: () => Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!(await ok().catch(() => false))) {
      if (Date.now() > deadline) throw new Error('timed out waiting');
      await new Promise((resolve) => setTimeout(resolve, everyMs));
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
  /** The history events of every run of a workflow id (continue-as-new makes several). */
  const runHistories = async (workflowId: string): Promise<temporal.api.history.v1.IHistoryEvent[][]> => {
    const runs: temporal.api.history.v1.IHistoryEvent[][] = [];
    for await (const run of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
      runs.push((await client.workflow.getHandle(workflowId, run.runId).fetchHistory()).events ?? []);
    }
    return runs;
  };
  const history = async (workflowId: string): Promise<{ total: number; max: number }> => {
    const lengths = (await runHistories(workflowId)).map((events) => events.length);
    return { total: lengths.reduce((sum, n) => sum + n, 0), max: Math.max(0, ...lengths) };
  };

  /**
   * When a scan's probing ended (its last probe batch completed) and when it
   * closed, in epoch ms, as Temporal recorded them over all its runs: a
   * client's poll sees either up to the API's cache of a polled scan's body
   * (JOB_CACHE_MS, 250 ms) plus the poll interval later. Null where the
   * history has no such event (nothing probed; still running).
   */
  const scanTimeline = async (workflowId: string): Promise<{ probingEndMs: number | null; closedMs: number | null }> => {
    let probingEndMs: number | null = null;
    let closedMs: number | null = null;
    for (const events of await runHistories(workflowId)) {
      const probeBatches = new Set<string>();
      for (const event of events) {
        const at = Number(event.eventTime?.seconds ?? 0) * 1000 + (event.eventTime?.nanos ?? 0) / 1e6;
        if (event.activityTaskScheduledEventAttributes?.activityType?.name === 'probeBatch') probeBatches.add(String(event.eventId));
        const completed = event.activityTaskCompletedEventAttributes;
        if (completed && probeBatches.has(String(completed.scheduledEventId))) probingEndMs = Math.max(probingEndMs ?? 0, at);
        if (event.workflowExecutionCompletedEventAttributes) closedMs = Math.max(closedMs ?? 0, at);
      }
    }
    return { probingEndMs, closedMs };
  };

  /** A full scan of the library through the API, polled at 20 Hz throughout, with the CPU each part used. */
  const fullScan = async (
    label: string,
  ): Promise<{
    jobId: string;
    seconds: number;
    withPicturesSeconds: number;
    filesPerS: number;
    /** Pictures made from the end of probing to the end of the scan, and per second of that phase. */
    thumbnailsMade: number;
    thumbnailsPerS: number | null;
    /** Seconds from the start to the end of probing, and to the end of the scan, as the polls saw them. */
    polledSeconds: number;
    polledWithPicturesSeconds: number;
    latencies: number[];
    /** CPU seconds per part while probing, and in the thumbnail phase that follows. */
    cpu: Record<string, number>;
    thumbnailCpu: Record<string, number>;
  }> => {
    const cpuBefore = await cpuByPart(temporalPort);
    const scanStarted = performance.now();
    const startedAtMs = Date.now();
    const started = await call<{ job_id: string }>('POST', '/api/v1/videos/scan', { path: libraryDir });
    const jobId = started.body.job_id;
    const latencies: number[] = [];
    let job: Job;
    // The scan's rate is its probing: thumbnails follow in a phase of their own.
    let probedAt: number | null = null;
    let thumbnailsWhenProbed = 0;
    let cpuWhenProbed: Record<string, number> | null = null;
    /** Seconds from the start to the first poll that saw each phase. */
    const phases: Record<string, number> = {};
    for (;;) {
      const tick = performance.now();
      const res = await call<Job>('GET', `/api/v1/jobs/${jobId}`);
      latencies.push(res.ms);
      job = res.body;
      phases[`${job.status}/${job.phase}`] ??= round((performance.now() - scanStarted) / 1000);
      const ended = ['completed', 'failed', 'cancelled', 'timeout'].includes(job.status);
      if (probedAt === null && (ended || job.phase === 'thumbnails')) {
        probedAt = performance.now();
        thumbnailsWhenProbed = job.counts.thumbnails ?? 0;
        cpuWhenProbed = await cpuByPart(temporalPort);
      }
      if (ended) break;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, Number(process.env.BENCH_POLL_MS ?? 50) - (performance.now() - tick))));
    }
    const polledWithPicturesSeconds = (performance.now() - scanStarted) / 1000;
    const polledSeconds = ((probedAt ?? performance.now()) - scanStarted) / 1000;
    // The scan's rate runs from the request to the end of probing as Temporal recorded it, not as a poll saw it.
    const timeline = await scanTimeline(jobId);
    const seconds = timeline.probingEndMs === null ? polledSeconds : (timeline.probingEndMs - startedAtMs) / 1000;
    const withPicturesSeconds = timeline.closedMs === null ? polledWithPicturesSeconds : (timeline.closedMs - startedAtMs) / 1000;
    const cpuAfter = await cpuByPart(temporalPort);
    const used = (from: Record<string, number>, to: Record<string, number>): Record<string, number> =>
      Object.fromEntries(Object.entries(to).map(([part, seconds]) => [part, round(seconds - (from[part] ?? 0))]));
    const cpu = used(cpuBefore, cpuWhenProbed ?? cpuAfter);
    const thumbnailCpu = used(cpuWhenProbed ?? cpuAfter, cpuAfter);
    say(`   CPU seconds during ${label}'s probing: ${JSON.stringify(cpu)} over ${round(seconds)} s; its thumbnails: ${JSON.stringify(thumbnailCpu)}`);
    if (job.status !== 'completed') throw new Error(`scan ended ${job.status}`);
    const filesPerS = files.length / seconds;
    // Pictures follow the last probe: by the history's clock, every picture is made in the phase.
    const thumbnailsMade = (job.counts.thumbnails ?? 0) - (timeline.probingEndMs === null ? thumbnailsWhenProbed : 0);
    const thumbnailSeconds = withPicturesSeconds - seconds;
    const thumbnailsPerS = thumbnailSeconds > 0 ? thumbnailsMade / thumbnailSeconds : null;
    say(
      `   ${round(filesPerS)} files/s probed; then ${thumbnailsMade} pictures in ${round(thumbnailSeconds)} s (${thumbnailsPerS === null ? '-' : round(thumbnailsPerS)} pictures/s), ` +
        `${round(withPicturesSeconds)} s until every picture; ${latencies.length} polls; phases first seen at (s): ${JSON.stringify(phases)}; ` +
        `probing ended at ${round(seconds)} s and the scan at ${round(withPicturesSeconds)} s by its history (polls saw ${round(polledSeconds)} and ${round(polledWithPicturesSeconds)} s)`,
    );
    return { jobId, seconds, withPicturesSeconds, filesPerS, thumbnailsMade, thumbnailsPerS, polledSeconds, polledWithPicturesSeconds, latencies, cpu, thumbnailCpu };
  };

  // A and C run in two slices each, one right before B and one right after
  // it, on a service that is up but idle: noise on the shared machine then
  // moves the limits and B alike, and the ratios use the mean of the slices.
  // A runs over the first --raw-files files (all of them by default), C over all of them.
  const rawFiles = files.slice(0, args.rawFiles);
  const sampled = rawFiles.length < files.length ? ` (sampled: the first ${rawFiles.length} of ${files.length} files)` : '';
  const [rawBefore, rawAfter] = halves(rawFiles);
  const [poolBefore, poolAfter] = halves(files);
  const prober = createProber({ ffprobePath: process.env.FFPROBE_PATH, concurrency });
  const pool = await openProberPool(libraryDir, {
    kind: defaultProber === 'libav' || defaultProber === 'ffprobe' ? defaultProber : config.prober,
    ffprobePath: config.ffprobePath,
    concurrency,
    thumbnailConcurrency,
    probeTimeoutMs: config.probeTimeoutMs,
    logger,
  });
  const rawSlice = async (slice: string[], when: string): Promise<RawRun> => {
    say(`A (${when} B): ffprobe alone, ${concurrency} at once, ${slice.length} files${sampled}`);
    const run = await ffprobeAlone(prober, slice);
    say(`   ${round(run.files / run.seconds)} files/s (${run.failures} failures), CPU (ffprobe and spawning it) ${round(run.cpuSeconds)} s over ${round(run.seconds)} s`);
    return run;
  };
  const poolSlice = async (slice: string[], when: string): Promise<ProberPoolRun> => {
    say(`C (${when} B): the prober pool alone (${pool.kind}), probeFile with ${concurrency} probing, ${slice.length} files`);
    const run = await pool.run(slice);
    say(
      `   ${round(run.files / run.seconds)} files/s (${run.failures} failures), CPU: probe hosts ${round(run.hostCpuSeconds)} s, ` +
        `the pool's caller ${round(run.callerCpuSeconds)} s over ${round(run.seconds)} s`,
    );
    return run;
  };

  try {
    const rawRuns: RawRun[] = [await rawSlice(rawBefore, 'before')];

    // A': the same pictures as B's thumbnail phase, made by ffmpeg alone.
    say(`A': raw thumbnails, ffmpeg -ss T -i FILE -frames:v 1 -vf scale=${thumbnailWidth}:-1, ${thumbnailConcurrency} at once${sampled}`);
    const rawThumbs = await rawThumbnails(
      rawFiles,
      await seekSecondsOf(rawFiles, clips),
      thumbnailWidth,
      thumbnailConcurrency,
      path.join(args.workDir, `raw-thumbnails-${Date.now()}`),
    );
    const rawThumbnailsPerS = (rawFiles.length - rawThumbs.failures) / rawThumbs.seconds;
    say(`   ${round(rawThumbnailsPerS)} pictures/s (${rawThumbs.slowSeeks} with a slow seek, ${rawThumbs.failures} failures), CPU (ffmpeg and spawning it) ${round(rawThumbs.cpuSeconds)} s over ${round(rawThumbs.seconds)} s`);

    const poolRuns: ProberPoolRun[] = [await poolSlice(poolBefore, 'before')];

    // B: a full scan with the default prober.
    say(`B: a full scan through the API (default prober: ${defaultProber})`);
    const scan = await fullScan('B');
    const { jobId, latencies, cpu: cpuDuringScan } = scan;
    const scanSeconds = scan.seconds;
    const scanFilesPerS = scan.filesPerS;

    poolRuns.push(await poolSlice(poolAfter, 'after'));
    rawRuns.push(await rawSlice(rawAfter, 'after'));
    await pool.close();
    // The limits: the mean of each one's two slices.
    const rawRates = rawRuns.map((run) => run.files / run.seconds);
    const rawFilesPerS = (rawRates[0] as number) / 2 + (rawRates[1] as number) / 2;
    const rawSeconds = rawRuns.reduce((sum, run) => sum + run.seconds, 0);
    const rawFailures = rawRuns.reduce((sum, run) => sum + run.failures, 0);
    // The CPU of A (ffprobe and spawning it), and how much of the machine it
    // kept busy: the same figures for B show what the service's bookkeeping costs.
    const rawCpuSeconds = rawRuns.reduce((sum, run) => sum + run.cpuSeconds, 0);
    const poolRates = poolRuns.map((run) => run.files / run.seconds);
    const poolFilesPerS = (poolRates[0] as number) / 2 + (poolRates[1] as number) / 2;
    const poolSeconds = poolRuns.reduce((sum, run) => sum + run.seconds, 0);
    say(
      `   A: ${rawRates.map((rate) => round(rate)).join(' before, ')} after B: mean ${round(rawFilesPerS)} files/s; ` +
        `C: ${poolRates.map((rate) => round(rate)).join(' before, ')} after B: mean ${round(poolFilesPerS)} files/s`,
    );

    await new Promise((resolve) => setTimeout(resolve, 1000));
    const scanHistory = await history(jobId);

    // D: rescan of the unchanged library.
    say('D: incremental rescan');
    const rescanStarted = performance.now();
    const rescan = await call<{ job_id: string }>('POST', '/api/v1/videos/scan', { path: libraryDir });
    // Polled every 10 ms: the rescan of a few thousand files takes a fraction of a second, which a coarser poll would blur.
    const rescanPhases: Record<string, number> = {};
    await waitUntil(
      async () => {
        const { body } = await call<Job>('GET', `/api/v1/jobs/${rescan.body.job_id}`);
        rescanPhases[`${body.status}/${body.phase}`] ??= round((performance.now() - rescanStarted) / 1000);
        return body.status === 'completed';
      },
      600_000,
      10,
    );
    const rescanFilesPerS = files.length / ((performance.now() - rescanStarted) / 1000);
    say(`   ${round(rescanFilesPerS)} files/s; phases first seen at (s): ${JSON.stringify(rescanPhases)}`);

    // W: the same tree listed and stat-ed in this process, right after D (the
    // same warm cache): the floor under any rescan. The median of three walks.
    say('W: a bare walk of the library (readdir with file types, lstat per file), 3 runs');
    const walks: WalkRun[] = [];
    for (let run = 0; run < 3; run += 1) walks.push(await bareWalk(libraryDir));
    const walkFilesPerS = median(walks.map((walk) => walk.files / walk.seconds));
    say(`   ${walks.map((walk) => round(walk.files / walk.seconds)).join(', ')} files/s (${walks[0]?.files} files in ${walks[0]?.folders} folders): median ${round(walkFilesPerS)}`);

    // E: cancel at about half-way, on fresh paths each run so there is probing to cancel.
    say(`E: cancel latency, ${args.cancelRuns} runs`);
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

    // T: a hanging probe ended by its limit and by an abort.
    say('T: a probe that hangs, ended by its limit (1 s) and by an abort, 5 runs each');
    const probeStops = await probeStopTimes(files[0] as string, args.workDir, { limitMs: 1000, runs: 5, logger });
    say(`   past the limit ${probeStops.overrunMs.map((ms) => round(ms)).join(', ')} ms; after the abort ${probeStops.abortMs.map((ms) => round(ms)).join(', ')} ms`);

    // B': the same full scan with PROBER=ffprobe, on a fresh library: worker and API restarted.
    let ffprobeScan: Awaited<ReturnType<typeof fullScan>> | null = null;
    if (args.skipFfprobeScan) {
      say("B': skipped (--skip-ffprobe-scan)");
    } else {
      say("B': a full scan through the API with PROBER=ffprobe");
      await stopProcesses();
      const ffprobeData = { DATA_DIR: path.join(dataDir, 'ffprobe') };
      worker = startProcess('worker-main.js', { ...ffprobeData, PROBER: 'ffprobe' });
      startProcess(path.join('api', 'server.js'), ffprobeData);
      await waitUntil(async () => (await call<{ status: string }>('GET', '/health')).status === 200, 60_000);
      await waitUntil(async () => (await polled(1)) && (await polled(2)), 120_000);
      ffprobeScan = await fullScan("B'");
    }

    // J: a burst of starts through the API on small distinct roots, then a page of 50 jobs, read 10 times.
    say(`J: ${JOBS_PAGE_STARTS} scans started at once on roots of ${JOBS_PAGE_ROOT_FILES} files, then ${JOBS_PAGE_READS} reads of GET /api/v1/jobs?limit=50`);
    const startsDir = path.join(args.workDir, `starts-${Date.now()}`);
    const roots = Array.from({ length: JOBS_PAGE_STARTS }, (_, index) => path.join(startsDir, `root-${String(index).padStart(2, '0')}`));
    for (const root of roots) await buildLibrary(root, JOBS_PAGE_ROOT_FILES, clips);
    const jobsPage = await jobsPageAfterStarts(base, roots, JOBS_PAGE_READS).finally(() => fs.rm(startsDir, { recursive: true, force: true }));
    const jobsPageP50Ms = median(jobsPage.pageMs);
    say(
      `   starts answered in ${round(jobsPage.startsSeconds)} s; pages of ${jobsPage.pageJobs} jobs: ${jobsPage.pageMs.map((ms) => round(ms, 1)).join(', ')} ms, ` +
        `median ${round(jobsPageP50Ms, 1)} ms; every scan ended ${round(jobsPage.drainedSeconds)} s after the first start`,
    );
    const machineBusy = (cpu: Record<string, number>, seconds: number): number =>
      round(Object.values(cpu).reduce((sum, used) => sum + used, 0) / (seconds * os.availableParallelism()), 3);

    const results = {
      files: files.length,
      // A: the mean of its two slices, the one right before B and the one right after it (both below).
      raw_files_per_s: round(rawFilesPerS),
      raw_files_per_s_before: round(rawRates[0] as number),
      raw_files_per_s_after: round(rawRates[1] as number),
      scan_files_per_s: round(scanFilesPerS),
      scan_vs_raw: round(scanFilesPerS / rawFilesPerS, 3),
      // C: the prober pool alone (B's kind of prober, PROBE_CONCURRENCY probing), the mean of its slices before and after B.
      libav_raw_files_per_s: round(poolFilesPerS),
      libav_raw_files_per_s_before: round(poolRates[0] as number),
      libav_raw_files_per_s_after: round(poolRates[1] as number),
      scan_vs_libav_raw: round(scanFilesPerS / poolFilesPerS, 3),
      libav_raw_prober: pool.kind,
      libav_raw_seconds: round(poolSeconds),
      libav_raw_failures: poolRuns.reduce((sum, run) => sum + run.failures, 0),
      // CPU of C: the probe hosts, and this process's side of the pool (the worker's share in B).
      libav_raw_cpu_seconds: {
        probe_hosts: round(poolRuns.reduce((sum, run) => sum + run.hostCpuSeconds, 0)),
        caller: round(poolRuns.reduce((sum, run) => sum + run.callerCpuSeconds, 0)),
      },
      prober: defaultProber,
      // null with --skip-ffprobe-scan, as every B' figure below.
      scan_ffprobe_files_per_s: ffprobeScan && round(ffprobeScan.filesPerS),
      scan_ffprobe_vs_raw: ffprobeScan && round(ffprobeScan.filesPerS / rawFilesPerS, 3),
      api_p50_ms: round(percentile(latencies, 50)),
      api_p99_ms: round(percentile(latencies, 99)),
      api_polls: latencies.length,
      cancel_p50_s: round(percentile(cancelSeconds, 50), 3),
      cancel_p95_s: round(percentile(cancelSeconds, 95), 3),
      // T: how far past PROBE_TIMEOUT_MS a hanging probe ends, and how long after an abort it rejects.
      probe_timeout_overrun_p50_ms: round(percentile(probeStops.overrunMs, 50)),
      probe_timeout_overrun_max_ms: round(Math.max(...probeStops.overrunMs)),
      probe_abort_p50_ms: round(percentile(probeStops.abortMs, 50)),
      probe_abort_max_ms: round(Math.max(...probeStops.abortMs)),
      rescan_files_per_s: round(rescanFilesPerS),
      // W: the median of three bare walks of the library in one process, and D's share of it.
      walk_files_per_s: round(walkFilesPerS),
      rescan_vs_walk: round(rescanFilesPerS / walkFilesPerS, 3),
      // J: the median of 10 reads of a page of 50 jobs right after 50 starts, each read's time, and the jobs on the page.
      jobs_page_p50_ms: round(jobsPageP50Ms, 1),
      jobs_page_ms: jobsPage.pageMs.map((ms) => round(ms, 1)),
      jobs_page_jobs: jobsPage.pageJobs,
      jobs_page_starts_seconds: round(jobsPage.startsSeconds),
      history_events_per_1000_files: round((scanHistory.total / files.length) * 1000, 1),
      max_history_events: scanHistory.max,
      worker_peak_rss_mb: round(workerPeakRssMb, 1),
      // The worker and its probe hosts together (sampled every 0.5 s), over the whole run.
      worker_and_hosts_peak_rss_mb: round(workerAndHostsPeakRssMb, 1),
      scan_seconds: round(scanSeconds),
      // Start to completed, thumbnail phase included: the whole library has its pictures.
      scan_with_thumbnails_seconds: round(scan.withPicturesSeconds),
      scan_polled_seconds: round(scan.polledSeconds),
      scan_with_thumbnails_polled_seconds: round(scan.polledWithPicturesSeconds),
      // Pictures per second in B's thumbnail phase (end of probing to the last picture), against A'
      // (ffmpeg alone, the same frames, THUMBNAIL_CONCURRENCY at once: settings.thumbnail_concurrency).
      thumbnails_per_s: scan.thumbnailsPerS && round(scan.thumbnailsPerS),
      raw_thumbnails_per_s: round(rawThumbnailsPerS),
      thumbnails_vs_raw: scan.thumbnailsPerS && round(scan.thumbnailsPerS / rawThumbnailsPerS, 3),
      thumbnails_made: scan.thumbnailsMade,
      thumbnails_seconds: round(scan.withPicturesSeconds - scan.seconds),
      // CPU per part in that phase; worker_children is the ffmpeg runs the worker started (and reaped).
      cpu_seconds_during_thumbnails: scan.thumbnailCpu,
      cpu_seconds_during_scan: cpuDuringScan,
      cpu_seconds_during_ffprobe_scan: ffprobeScan && ffprobeScan.cpu,
      ffprobe_scan_seconds: ffprobeScan && round(ffprobeScan.seconds),
      ffprobe_scan_api_p99_ms: ffprobeScan && round(percentile(ffprobeScan.latencies, 99)),
      // Pictures per second in B''s thumbnail phase (the thumbnailer may differ with the prober).
      ffprobe_scan_thumbnails_per_s: ffprobeScan?.thumbnailsPerS == null ? null : round(ffprobeScan.thumbnailsPerS),
      // A and A' ran over the first raw_files files (all of them unless --raw-files).
      raw_files: rawFiles.length,
      raw_seconds: round(rawSeconds),
      raw_failures: rawFailures,
      raw_ffprobe_cpu_seconds: round(rawCpuSeconds),
      raw_thumbnails_seconds: round(rawThumbs.seconds),
      raw_thumbnail_failures: rawThumbs.failures,
      // Files whose fast seek made no picture, made again decoding from the start (the thumbnailer's fallback).
      raw_thumbnail_slow_seeks: rawThumbs.slowSeeks,
      raw_thumbnails_cpu_seconds: round(rawThumbs.cpuSeconds),
      // Share of the machine's CPU time in use: A (ffprobe alone) and B (the whole service).
      raw_machine_busy: round(rawCpuSeconds / (rawSeconds * os.availableParallelism()), 3),
      scan_machine_busy: machineBusy(cpuDuringScan, scanSeconds),
      scan_ffprobe_machine_busy: ffprobeScan && machineBusy(ffprobeScan.cpu, ffprobeScan.seconds),
      settings: {
        probe_concurrency: concurrency,
        thumbnail_concurrency: thumbnailConcurrency,
        max_concurrent_scans: config.maxConcurrentScans,
        thumbnail_width: thumbnailWidth,
        batch_size: config.batchSize,
        window: config.window,
      },
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
      `| A: ffprobe alone${sampled}, before / after B: mean (the A of every B/A) | ${results.raw_files_per_s_before} / ${results.raw_files_per_s_after}: ${results.raw_files_per_s} files/s |`,
      `| C: the prober pool alone (${results.libav_raw_prober}), before / after B: mean | ${results.libav_raw_files_per_s_before} / ${results.libav_raw_files_per_s_after}: ${results.libav_raw_files_per_s} files/s |`,
      `| B: full scan through the API, default prober (${results.prober}) | ${results.scan_files_per_s} files/s |`,
      `| B/A / B/C | ${results.scan_vs_raw} / ${results.scan_vs_libav_raw} |`,
      ffprobeScan
        ? `| B with PROBER=ffprobe / its B/A; its thumbnail phase | ${results.scan_ffprobe_files_per_s} files/s / ${results.scan_ffprobe_vs_raw}; ${results.ffprobe_scan_thumbnails_per_s ?? '-'} pictures/s |`
        : '| B with PROBER=ffprobe | skipped (--skip-ffprobe-scan) |',
      `| A': ffmpeg alone, \`-ss T -i FILE -frames:v 1 -vf scale=${thumbnailWidth}:-1\`, ${thumbnailConcurrency} at once${sampled} | ${results.raw_thumbnails_per_s} pictures/s (${results.raw_thumbnail_slow_seeks} slow-seek reruns, ${results.raw_thumbnail_failures} failures) |`,
      `| B's thumbnail phase, THUMBNAIL_CONCURRENCY=${thumbnailConcurrency} (${results.thumbnails_made} pictures in ${results.thumbnails_seconds} s) / B/A' | ${results.thumbnails_per_s ?? '-'} pictures/s / ${results.thumbnails_vs_raw ?? '-'} |`,
      `| B until the whole library has pictures | ${results.scan_with_thumbnails_seconds} s |`,
      `| API latency during B, p50 / p99 (${results.api_polls} polls at 20 Hz) | ${results.api_p50_ms} / ${results.api_p99_ms} ms |`,
      `| cancel to \`cancelled\` and no ffprobe left, p50 / p95 (${args.cancelRuns} runs) | ${results.cancel_p50_s} / ${results.cancel_p95_s} s |`,
      `| a hanging ffprobe past its 1 s limit / after an abort, p50 (max) of 5 | ${results.probe_timeout_overrun_p50_ms} (${results.probe_timeout_overrun_max_ms}) / ${results.probe_abort_p50_ms} (${results.probe_abort_max_ms}) ms |`,
      `| incremental rescan, unchanged library | ${results.rescan_files_per_s} files/s |`,
      `| bare walk (readdir and lstat in one process, median of 3) / rescan's share of it | ${results.walk_files_per_s} files/s / ${results.rescan_vs_walk} |`,
      `| a page of 50 jobs right after ${JOBS_PAGE_STARTS} starts, median of ${JOBS_PAGE_READS} (${results.jobs_page_jobs} jobs on the page) | ${results.jobs_page_p50_ms} ms |`,
      `| history events per 1,000 files / largest run | ${results.history_events_per_1000_files} / ${results.max_history_events} |`,
      `| worker peak RSS / worker and probe hosts together | ${results.worker_peak_rss_mb} / ${results.worker_and_hosts_peak_rss_mb} MB |`,
      `| CPU busy, A / B / B with ffprobe (share of ${results.machine.cores} cores) | ${results.raw_machine_busy} / ${results.scan_machine_busy} / ${results.scan_ffprobe_machine_busy ?? 'skipped'} |`,
      `| CPU seconds during B: probe hosts (and ffprobe) / worker / Temporal / API | ${cpuDuringScan.probe_host_and_ffprobe ?? 0} / ${cpuDuringScan.worker ?? 0} / ${cpuDuringScan.temporal_server ?? 0} / ${cpuDuringScan.api ?? 0} (A: ffprobe and its spawning ${results.raw_ffprobe_cpu_seconds}) |`,
      `| CPU seconds during C (${results.libav_raw_seconds} s over all files): probe hosts / the pool's caller | ${results.libav_raw_cpu_seconds.probe_hosts} / ${results.libav_raw_cpu_seconds.caller} |`,
      `| CPU seconds during B's thumbnail phase: worker / its ffmpeg / probe hosts / Temporal / API | ${scan.thumbnailCpu.worker ?? 0} / ${scan.thumbnailCpu.worker_children ?? 0} / ${scan.thumbnailCpu.probe_host_and_ffprobe ?? 0} / ${scan.thumbnailCpu.temporal_server ?? 0} / ${scan.thumbnailCpu.api ?? 0} (A': ffmpeg and its spawning ${results.raw_thumbnails_cpu_seconds}) |`,
      ...(ffprobeScan
        ? [
            `| CPU seconds during B with ffprobe: ffprobe and host / worker / Temporal / API | ${ffprobeScan.cpu.probe_host_and_ffprobe ?? 0} / ${ffprobeScan.cpu.worker ?? 0} / ${ffprobeScan.cpu.temporal_server ?? 0} / ${ffprobeScan.cpu.api ?? 0} |`,
          ]
        : []),
      '',
      `Machine: ${results.machine.cores} cores (${results.machine.cpu}), ${results.machine.memory_gb} GiB, Node ${results.machine.node}, ${results.machine.ffprobe}; ` +
        `PROBE_CONCURRENCY=${concurrency}, THUMBNAIL_CONCURRENCY=${thumbnailConcurrency} (B's worker and A'), THUMBNAIL_WIDTH=${thumbnailWidth}, SCAN_BATCH_SIZE=${config.batchSize}, SCAN_WINDOW=${config.window}.`,
    ].join('\n');
    process.stdout.write(`${table}\n`);
    if (args.json) await fs.writeFile(args.json, `${JSON.stringify(results, null, 2)}\n`);
  } finally {
    clearInterval(rssTimer);
    await pool.close();
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

/**
 * The second each file's picture is taken at, as the thumbnailer picks it
 * from the clip's duration. A library file is a hard link to its clip (same
 * inode); a copy (across devices) is the clip buildLibrary put at its index.
 */
async function seekSecondsOf(files: string[], clips: TestClip[]): Promise<number[]> {
  const videos = clips.filter((clip) => clip.hasVideo);
  const byInode = new Map<string, number>();
  for (const clip of videos) {
    const stat = await fs.stat(clip.file);
    byInode.set(`${stat.dev}:${stat.ino}`, clip.durationSeconds);
  }
  return Promise.all(
    files.map(async (file, index) => {
      const stat = await fs.stat(file);
      const duration = byInode.get(`${stat.dev}:${stat.ino}`) ?? (videos[index % videos.length] as TestClip).durationSeconds;
      return thumbnailSeekSeconds(duration);
    }),
  );
}

/**
 * A': one `ffmpeg -ss T -i FILE -frames:v 1 -vf scale=W:-1` per file (the
 * static ffmpeg the thumbnailer runs), `concurrency` at once, each picture
 * written as a JPEG into `outDir` (removed afterwards). Where that makes no
 * picture, a second run with `-ss` after `-i`, as the thumbnailer's fallback,
 * so that A' makes the same pictures as B.
 */
async function rawThumbnails(
  files: string[],
  seekSeconds: number[],
  width: number,
  concurrency: number,
  outDir: string,
): Promise<{ seconds: number; failures: number; slowSeeks: number; cpuSeconds: number }> {
  await fs.mkdir(outDir, { recursive: true });
  const cpuBefore = await childrenCpuSeconds();
  const started = performance.now();
  let next = 0;
  let failures = 0;
  let slowSeeks = 0;
  try {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let index = next++; index < files.length; index = next++) {
          const picture = path.join(outDir, `${index}.jpg`);
          const seek = ['-ss', (seekSeconds[index] as number).toFixed(3)];
          const made = async (fastSeek: boolean): Promise<boolean> => {
            const input = ['-i', files[index] as string];
            const args = ['-nostdin', '-hide_banner', '-loglevel', 'error', ...(fastSeek ? [...seek, ...input] : [...input, ...seek])];
            args.push('-frames:v', '1', '-vf', `scale=${width}:-1`, '-y', picture);
            const run = await execa(ffmpegInstaller.path, args, { stdin: 'ignore', stdout: 'ignore', reject: false, timeout: 30_000 });
            // ffmpeg exits 0 when the seek lands past every frame: no picture is a failure too.
            return run.exitCode === 0 && ((await fs.stat(picture).catch(() => null))?.size ?? 0) > 0;
          };
          if (await made(true)) continue;
          // As the thumbnailer does: where the fast seek lands past every frame
          // (an MPEG-TS clip with one keyframe), decode from the start to T.
          slowSeeks += 1;
          if (!(await made(false))) failures += 1;
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    return { seconds, failures, slowSeeks, cpuSeconds: (await childrenCpuSeconds()) - cpuBefore };
  } finally {
    await fs.rm(outDir, { recursive: true, force: true });
  }
}

/** The fields of /proc/<pid>/stat after the command name (state is [0], ppid [1]); empty when the process is gone. */
async function statFields(pid: number | string): Promise<string[]> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat === '' ? [] : stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** Whether a process descends from this one: other runs of the benchmark on the machine have workers and APIs too. */
async function isOurs(pid: number): Promise<boolean> {
  for (let at = pid, depth = 0; at > 1 && depth < 8; depth += 1) {
    at = Number((await statFields(at))[1] ?? 0);
    if (at === process.pid) return true;
  }
  return false;
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
        : cmdline.includes('media-host/host-main.js')
          ? 'probe_host_and_ffprobe'
          : cmdline.includes('start-dev') && cmdline.includes(`--port ${temporalPort}`)
            ? 'temporal_server'
            : null;
    if (part === null || (part !== 'temporal_server' && !(await isOurs(Number(entry))))) continue;
    const fields = await statFields(entry);
    if (fields.length === 0) continue;
    // C's probe hosts are this process's own children: not part of the service.
    if (part === 'probe_host_and_ffprobe' && Number(fields[1]) === process.pid) continue;
    // utime, stime, and for the probe host also cutime, cstime: its reaped ffprobe children.
    const own = Number(fields[11]) + Number(fields[12]);
    const children = Number(fields[13]) + Number(fields[14]);
    parts[part] = (parts[part] ?? 0) + (own + (part === 'probe_host_and_ffprobe' ? children : 0)) / tick;
    // The worker's reaped children apart: the thumbnailer's ffmpeg runs (and any probe host that exited).
    if (part === 'worker') parts.worker_children = (parts.worker_children ?? 0) + children / tick;
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
    if (Number((await statFields(entry))[1]) !== workerPid) continue;
    const cmdline = await fs.readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes('media-host')) pids.push(Number(entry));
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
