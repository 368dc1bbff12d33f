/**
 * Measures scan starts and the jobs list through the HTTP API, against a
 * fresh Temporal dev server and one worker: N starts for N different roots
 * from C concurrent clients, then the p50 of a page of 50 jobs
 * (`GET /api/v1/jobs?limit=50`, and filtered by `status=completed`).
 *
 *   node -r ./scripts/ts-register.js bench/starts.ts [--roots 300] [--clients 10] [--no-worker] [--wait]
 *
 * With --wait each client waits for its scan to end before the next start,
 * so at most C scans overlap (the list then reads few rows past its page);
 * the start times then include the scans and mean little.
 * With --no-worker nothing polls the task queue: only the starts are
 * measured (each must answer 202 with a pending job).
 * Prints one JSON line.
 */
import { promises as fs } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { NativeConnection } from '@temporalio/worker';
import { createApp } from '../src/api/app';
import { loadConfig } from '../src/config';
import { Library } from '../src/library/library';
import { createLogger } from '../src/logger';
import { createIsolatedProber } from '../src/media-host/pool';
import { locateTemporalCli } from '../src/temporal/cli';
import { connectClient } from '../src/temporal/client';
import { ensureTemporalServer } from '../src/temporal/dev-server';
import { ScanService } from '../src/scans';
import { createScanWorker } from '../src/worker';
import { freePort } from '../test/support/processes';

const argument = (name: string, fallback: number): number => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? Number(process.argv[at + 1]) : fallback;
};

const percentile = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
};

async function main(): Promise<void> {
  const roots = argument('roots', 300);
  const clients = argument('clients', 10);
  const projectRoot = path.resolve(__dirname, '..');
  const logger = createLogger('bench', 'warn');
  const cli = await locateTemporalCli({ cliPath: process.env.TEMPORAL_CLI_PATH, projectRoot, log: () => undefined });
  const server = await ensureTemporalServer({
    address: `127.0.0.1:${await freePort()}`,
    uiPort: await freePort(),
    dataDir: null,
    namespace: 'default',
    cliPath: cli,
    projectRoot,
    logger,
  });
  const dir = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'bench-starts-')));
  const config = loadConfig({
    TEMPORAL_ADDRESS: server.address,
    DATA_DIR: path.join(dir, 'data'),
    PORT: '0',
    LOG_LEVEL: 'silent',
    MAX_CONCURRENT_SCANS: String(roots * 2),
  });
  const library = await Library.open(config.databaseUrl);
  const prober = createIsolatedProber({ ffprobePath: config.ffprobePath, concurrency: 2 });
  const withWorker = !process.argv.includes('--no-worker');
  const nativeConnection = await NativeConnection.connect({ address: config.temporal.address });
  const worker = withWorker ? await createScanWorker({ config, connection: nativeConnection, library, prober }) : null;
  const running = worker?.run();
  const { client, connection } = await connectClient(config);
  const scans = new ScanService(client, config, library);
  const app = createApp({ config, scans, library, logger, checkTemporal: async () => undefined });
  const httpServer = await new Promise<import('node:http').Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const base = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`;
  try {
    const folders: string[] = [];
    for (let i = 0; i < roots; i += 1) {
      const folder = path.join(dir, 'roots', `root-${i}`);
      await fs.mkdir(folder, { recursive: true });
      folders.push(folder);
    }
    // Starts: C clients, each taking the next root until none is left.
    const startMs: number[] = [];
    const jobIds = new Set<string>();
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (next < folders.length) {
          const folder = folders[next++] as string;
          const t = performance.now();
          const res = await fetch(`${base}/api/v1/videos/scan`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ path: folder }),
          });
          const body = (await res.json()) as { job_id?: string };
          startMs.push(performance.now() - t);
          if (res.status !== 202 || !body.job_id) throw new Error(`start answered ${res.status} ${JSON.stringify(body)}`);
          jobIds.add(body.job_id);
          while (process.argv.includes('--wait')) {
            const job = (await (await fetch(`${base}/api/v1/jobs/${body.job_id}`)).json()) as { status: string };
            if (['completed', 'failed', 'cancelled', 'timeout'].includes(job.status)) break;
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
        }
      }),
    );
    const startsSeconds = (performance.now() - started) / 1000;
    const starts = {
      roots,
      clients,
      worker: withWorker,
      distinct_jobs: jobIds.size,
      starts_seconds: Math.round(startsSeconds * 100) / 100,
      start_p50_ms: Math.round(percentile(startMs, 50)),
      start_p99_ms: Math.round(percentile(startMs, 99)),
    };
    if (!withWorker) {
      const first = [...jobIds][0] as string;
      const job = (await (await fetch(`${base}/api/v1/jobs/${first}`)).json()) as { status: string };
      process.stdout.write(`${JSON.stringify({ ...starts, first_job_status: job.status })}\n`);
      return;
    }

    // Every scan to its end, so the list has a full set of completed jobs.
    for (const id of jobIds) {
      for (;;) {
        const job = (await (await fetch(`${base}/api/v1/jobs/${id}`)).json()) as { status: string };
        if (['completed', 'failed', 'cancelled', 'timeout'].includes(job.status)) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    const listP50 = async (query: string): Promise<{ p50: number; count: number }> => {
      const times: number[] = [];
      let count = 0;
      for (let i = 0; i < 30; i += 1) {
        const t = performance.now();
        const res = await fetch(`${base}/api/v1/jobs?${query}`);
        const body = (await res.json()) as { jobs: unknown[] };
        times.push(performance.now() - t);
        count = body.jobs.length;
      }
      return { p50: Math.round(percentile(times, 50) * 10) / 10, count };
    };
    // The floor: one visibility call for a page of 50 scans, with no job bodies built.
    const visibilityMs: number[] = [];
    for (let i = 0; i < 30; i += 1) {
      const t = performance.now();
      await client.workflowService.listWorkflowExecutions({ namespace: config.temporal.namespace, pageSize: 50, query: "WorkflowType = 'scanLibrary'" });
      visibilityMs.push(performance.now() - t);
    }
    const list = await listP50('limit=50');
    const listCompleted = await listP50('status=completed&limit=50');
    process.stdout.write(
      `${JSON.stringify({
        ...starts,
        visibility_page50_p50_ms: Math.round(percentile(visibilityMs, 50) * 10) / 10,
        jobs_page50_p50_ms: list.p50,
        jobs_page50_count: list.count,
        jobs_completed_page50_p50_ms: listCompleted.p50,
        jobs_completed_page50_count: listCompleted.count,
      })}\n`,
    );
  } finally {
    httpServer.closeAllConnections();
    httpServer.close();
    worker?.shutdown();
    await running?.catch(() => undefined);
    await nativeConnection.close();
    await connection.close();
    await library.close();
    await server.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
