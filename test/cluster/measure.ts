/**
 * Per-file costs of a scan, measured with real processes: the time of one
 * scan of N files with W workers through the API, on the real Temporal server
 * on PostgreSQL (`npm run temporal:server`) or on the dev server (`npm start`'s
 * Temporal CLI `start-dev`, file-backed), and what it cost: Temporal actions
 * (the server's `action` metric) and history events, library and Temporal
 * PostgreSQL writes (pg_stat_database), worker and prober CPU (/proc).
 *
 *   node --require ./scripts/ts-register.js test/cluster/measure.ts --server cluster|dev [--files 2000] [--workers 3]
 *
 * Prints one JSON object. The capacity table in docs/operations.md is computed from it.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import pg from 'pg';
import { createLogger } from '../../src/logger';
import { ensureTemporalServer } from '../../src/temporal/dev-server';
import { findProjectRoot } from '../../src/temporal/go-binary';
import { buildLibrary, ensureTestMedia } from '../support/media';
import { freePort, killPart, startPart, type Part } from '../support/processes';

const adminUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const serverUrl = (database: string): string => adminUrl.replace(/\/[^/]*$/, `/${database}`);

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? (process.argv[at + 1] ?? fallback) : fallback;
}

async function sql<T extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** Rows written in a database so far (inserted + updated + deleted) and transactions committed. */
async function writes(database: string): Promise<{ rows: number; commits: number }> {
  const [row] = await sql<{ rows: string; commits: string }>(
    adminUrl,
    'select (tup_inserted + tup_updated + tup_deleted)::text as rows, xact_commit::text as commits from pg_stat_database where datname = $1',
    [database],
  );
  return { rows: Number(row?.rows ?? 0), commits: Number(row?.commits ?? 0) };
}

/** CPU seconds of a process and its descendants (the worker, its probe host, ffprobe runs reaped by it). */
async function cpuSeconds(pid: number): Promise<{ self: number; descendants: number }> {
  const ticks = 100;
  const stat = async (p: number): Promise<number[]> => {
    const text = await fs.readFile(`/proc/${p}/stat`, 'utf8').catch(() => '');
    return text.slice(text.lastIndexOf(')') + 2).split(' ').map(Number);
  };
  const children = async (p: number): Promise<number[]> => {
    const text = await fs.readFile(`/proc/${p}/task/${p}/children`, 'utf8').catch(() => '');
    return text.split(' ').filter(Boolean).map(Number);
  };
  // Fields after the command: utime is the 12th, stime 13th, cutime 14th, cstime 15th (0-based 11…14).
  const own = await stat(pid);
  const self = ((own[11] ?? 0) + (own[12] ?? 0)) / ticks;
  let descendants = ((own[13] ?? 0) + (own[14] ?? 0)) / ticks;
  for (const child of await children(pid)) {
    const c = await cpuSeconds(child);
    descendants += c.self + c.descendants;
  }
  return { self, descendants };
}

async function actions(metricsUrl: string | undefined): Promise<number | null> {
  if (!metricsUrl) return null;
  const text = await (await fetch(metricsUrl)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith('action{') && line.includes('namespace="default"'))
    .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
}

async function main(): Promise<void> {
  const kind = option('server', 'cluster');
  const files = Number(option('files', '2000'));
  const workerCount = Number(option('workers', '3'));
  const name = `measure_${randomBytes(4).toString('hex')}`;
  const work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'measure-')));
  const parts: Part[] = [];
  let stopDev: (() => Promise<void>) | undefined;
  await sql(adminUrl, `create database ${name}_library`);
  try {
    let address: string;
    let metricsUrl: string | undefined;
    if (kind === 'cluster') {
      const port = 20_000 + Math.floor(Math.random() * 12_000);
      address = `127.0.0.1:${port}`;
      const server = await startPart(
        'temporal/server-main',
        { TEMPORAL_DATABASE_URL: serverUrl(name), TEMPORAL_ADDRESS: address, TEMPORAL_UI_PORT: String(await freePort()) },
        /Ctrl-C stops it/,
        300_000,
      );
      parts.push(server);
      metricsUrl = /metrics\s+(\S+)/.exec(server.output())?.[1];
    } else {
      address = `127.0.0.1:${await freePort()}`;
      const dev = await ensureTemporalServer({
        address,
        uiPort: await freePort(),
        dataDir: path.join(work, 'temporal'),
        namespace: 'default',
        projectRoot: findProjectRoot(),
        logger: createLogger('measure', 'warn'),
      });
      stopDev = dev.stop;
    }
    const clips = await ensureTestMedia();
    const root = path.join(work, 'media');
    await buildLibrary(root, files, clips);
    const env = {
      TEMPORAL_ADDRESS: address,
      TEMPORAL_TASK_QUEUE: `measure-${name}`,
      DATABASE_URL: serverUrl(`${name}_library`),
      DATA_DIR: path.join(work, 'data'),
      PROBER: 'ffprobe',
      PROBE_CONCURRENCY: '1',
      LOG_LEVEL: 'warn',
    };
    const workers = await Promise.all(Array.from({ length: workerCount }, () => startPart('worker-main', { ...env, LOG_LEVEL: 'info' }, /worker running/, 180_000)));
    parts.push(...workers);
    const apiPort = await freePort();
    parts.push(await startPart('api/server', { ...env, LOG_LEVEL: 'info', PORT: String(apiPort) }, /api listening/, 120_000));

    const connection = await Connection.connect({ address });
    /** History events of every execution on the scan's task queue so far (the root's guard, the scans and their runs). */
    const historyEvents = async (): Promise<number> => {
      let events = 0;
      let token: Uint8Array | undefined;
      do {
        const page = await connection.workflowService.listWorkflowExecutions({
          namespace: 'default',
          query: `TaskQueue = "${env.TEMPORAL_TASK_QUEUE}" AND ExecutionStatus != "Running"`,
          nextPageToken: token,
        });
        for (const info of page.executions ?? []) events += Number(info.historyLength ?? 0);
        token = page.nextPageToken?.length ? page.nextPageToken : undefined;
      } while (token);
      return events;
    };
    const perFile = (value: number): number => Number((value / files).toFixed(4));
    /** One scan of the root through the API, and what it cost per file. */
    const scan = async (): Promise<Record<string, unknown>> => {
      // PostgreSQL's statistics reach pg_stat_database when a backend goes idle, within 10 s.
      await new Promise((resolve) => setTimeout(resolve, 11_000));
      const cpuBefore = await Promise.all(workers.map((w) => cpuSeconds(w.child.pid as number)));
      const libraryBefore = await writes(`${name}_library`);
      const temporalBefore = kind === 'cluster' ? await writes(name) : null;
      const actionsBefore = await actions(metricsUrl);
      const eventsBefore = await historyEvents();
      const started = performance.now();
      const response = await fetch(`http://127.0.0.1:${apiPort}/api/v1/videos/scan`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ path: root }),
      });
      const { job_id: jobId } = (await response.json()) as { job_id: string };
      let status = '';
      while (!['completed', 'failed', 'cancelled', 'timeout'].includes(status)) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        status = ((await (await fetch(`http://127.0.0.1:${apiPort}/api/v1/jobs/${jobId}`)).json()) as { status: string }).status;
      }
      const seconds = (performance.now() - started) / 1000;
      const cpuAfter = await Promise.all(workers.map((w) => cpuSeconds(w.child.pid as number)));
      await new Promise((resolve) => setTimeout(resolve, 11_000));
      const libraryAfter = await writes(`${name}_library`);
      const temporalAfter = kind === 'cluster' ? await writes(name) : null;
      const actionsAfter = await actions(metricsUrl);
      // Visibility is eventually consistent: wait until the closed executions are all listed.
      let eventsAfter = await historyEvents();
      for (let i = 0; i < 20 && eventsAfter === eventsBefore; i++) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        eventsAfter = await historyEvents();
      }
      const workerSelf = cpuAfter.reduce((sum, c, i) => sum + c.self - (cpuBefore[i]?.self ?? 0), 0);
      const prober = cpuAfter.reduce((sum, c, i) => sum + c.descendants - (cpuBefore[i]?.descendants ?? 0), 0);
      return {
        status,
        seconds: Number(seconds.toFixed(2)),
        files_per_s: Number((files / seconds).toFixed(1)),
        per_file: {
          temporal_actions: actionsAfter !== null && actionsBefore !== null ? perFile(actionsAfter - actionsBefore) : null,
          history_events: perFile(eventsAfter - eventsBefore),
          library_rows_written: perFile(libraryAfter.rows - libraryBefore.rows),
          library_commits: perFile(libraryAfter.commits - libraryBefore.commits),
          temporal_rows_written: temporalAfter && temporalBefore ? perFile(temporalAfter.rows - temporalBefore.rows) : null,
          temporal_commits: temporalAfter && temporalBefore ? perFile(temporalAfter.commits - temporalBefore.commits) : null,
          worker_cpu_ms: Number(((workerSelf / files) * 1000).toFixed(3)),
          prober_cpu_ms: Number(((prober / files) * 1000).toFixed(3)),
        },
      };
    };
    try {
      const first = await scan();
      // Unchanged files: an incremental rescan, what a scheduled rescan of a library costs.
      const rescan = await scan();
      process.stdout.write(`${JSON.stringify({ server: kind, files, workers: workerCount, first, rescan }, null, 2)}\n`);
    } finally {
      await connection.close();
    }
  } finally {
    await Promise.all(parts.map((part) => (part.child.kill('SIGTERM'), part.exited)).map((p) => Promise.race([p, new Promise((r) => setTimeout(r, 30_000))])));
    await Promise.all(parts.map((part) => killPart(part)));
    await stopDev?.();
    for (const db of [name, `${name}_visibility`, `${name}_library`]) await sql(adminUrl, `drop database if exists ${db} with (force)`);
    await fs.rm(work, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
