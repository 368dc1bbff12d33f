/**
 * Scheduled rescans as Temporal Schedules, against the real stack: a
 * schedule created over REST is a Temporal Schedule (`temporal schedule
 * list` shows it), fires at least twice at a short interval, and never
 * starts a scan of its root while another one runs (its runs and starts
 * through the API share the root's guard); trigger, pause, unpause and
 * delete; validation as for a scan start.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { JobBody } from '../../src/scans';
import type { ScheduleBody } from '../../src/scans';
import { recordRun } from '../support/histories';
import { buildLibrary, ensureTestMedia, type TestClip } from '../support/media';
import { scanctl } from '../support/scanctl';
import { http, startStack, temporalAddress, waitFor, type Stack, withProbeHook, type StackProber } from '../support/stack';

jest.setTimeout(300_000);

const TERMINAL = ['completed', 'failed', 'cancelled', 'timeout'];

let clips: TestClip[];
let work: string;
let stack: Stack;

beforeAll(async () => {
  clips = await ensureTestMedia();
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'schedules-')));
  // Probes of a held folder wait until it is released: a scan of it runs as long as a test needs.
  const holding = (prober: StackProber): StackProber => withProbeHook(prober, async (file) => {
    for (const [prefix, gate] of holds) if (file.startsWith(prefix)) await gate;
  });
  stack = await startStack({ PROBE_CONCURRENCY: '1', SCAN_BATCH_SIZE: '2', SCAN_WINDOW: '2' }, { wrapProber: holding });
});

afterAll(async () => {
  for (const release of releases.splice(0)) release();
  await stack?.close();
  await fs.rm(work, { recursive: true, force: true });
});

/** Folders whose probes wait, with what they wait for. */
const holds = new Map<string, Promise<void>>();
const releases: (() => void)[] = [];

/** Holds the probes of files under `folder` until the returned function is called. */
function hold(folder: string): () => void {
  let open: () => void = () => undefined;
  holds.set(folder + path.sep, new Promise<void>((resolve) => (open = resolve)));
  const release = (): void => {
    holds.delete(folder + path.sep);
    open();
  };
  releases.push(release);
  return release;
}

/** Runs of the schedule `id` that found their root held by another scan, and started nothing. */
async function skippedRunsOf(id: string): Promise<{ workflowId: string; runId: string }[]> {
  const skipped: { workflowId: string; runId: string }[] = [];
  for await (const run of stack.client.workflow.list({ query: `WorkflowType = 'scheduledScan' AND TaskQueue = '${stack.taskQueue}'` })) {
    if (!run.workflowId.startsWith(id)) continue;
    const memo = (await stack.client.workflow.getHandle(run.workflowId, run.runId).describe()).memo as { skipped?: string | null };
    if (typeof memo?.skipped === 'string') skipped.push({ workflowId: run.workflowId, runId: run.runId });
  }
  return skipped;
}

const job = async (jobId: string): Promise<JobBody> => (await http<JobBody>(stack.baseUrl, 'GET', `/api/v1/jobs/${jobId}`)).body;
const endOf = (jobId: string): Promise<JobBody> => waitFor(() => job(jobId), (j) => TERMINAL.includes(j.status), 240_000, 200);


/** Every scan of a root Temporal knows, with its start and close times. */
async function scansOf(root: string): Promise<{ id: string; start: number; close: number | null }[]> {
  const runs: { id: string; start: number; close: number | null }[] = [];
  const query = `WorkflowType = 'scanLibrary' AND ScanRoot = '${root}' AND TaskQueue = '${stack.taskQueue}'`;
  for await (const execution of stack.client.workflow.list({ query })) {
    runs.push({ id: execution.workflowId, start: execution.startTime.getTime(), close: execution.closeTime?.getTime() ?? null });
  }
  return runs;
}

describe('a schedule of scans', () => {
  it('is a Temporal Schedule, fires at least twice at a 2 s interval, and never overlaps a running scan of its root', async () => {
    const folder = path.join(work, 'every-2s');
    await buildLibrary(folder, 16, clips);
    // The schedule's first scan is held until the checks of one scan per root are done.
    const release = hold(folder);
    const created = await http<ScheduleBody>(stack.baseUrl, 'POST', '/api/v1/schedules', { path: folder, every: '2s' });
    expect(created.status).toBe(201);
    const id = created.body.schedule_id;
    expect(created.body).toMatchObject({ path: folder, every: '2s', paused: false, recursive: true, force: false });
    expect(typeof created.body.next_run_at).toBe('string');

    // The Temporal CLI lists it: it is a schedule of the server, as the Web UI shows it.
    const cli = process.env.TEMPORAL_TEST_CLI;
    if (!cli) throw new Error('TEMPORAL_TEST_CLI is not set: the jest global setup provides the CLI');
    const { stdout } = await promisify(execFile)(cli, ['schedule', 'list', '--address', temporalAddress(), '--namespace', 'default', '-o', 'json']);
    expect(stdout).toContain(id);

    const listed = await http<{ schedules: ScheduleBody[] }>(stack.baseUrl, 'GET', '/api/v1/schedules');
    expect(listed.body.schedules.map((s) => s.schedule_id)).toContain(id);

    // A scan started by hand while a scheduled one runs answers with the scheduled scan: one scan per root.
    const first = await waitFor(
      async () => (await http<ScheduleBody>(stack.baseUrl, 'GET', `/api/v1/schedules/${id}`)).body.last_job_id,
      (jobId) => jobId !== null,
      120_000,
      200,
    );
    await waitFor(() => job(first as string), (j) => j.status === 'running', 120_000, 100);
    const manual = await http<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: folder });
    expect(manual.status).toBe(200);
    expect(manual.body.job_id).toBe(first);
    // The schedule comes due again while its scan runs, and starts nothing (Temporal skips the overlap).
    await waitFor(async () => (await stack.client.schedule.getHandle(id).describe()).info.numActionsSkippedOverlap, (n) => n >= 1, 120_000, 300);
    expect((await job(first as string)).status).toBe('running');
    release();

    // At least two scheduled scans complete.
    await waitFor(
      () => scansOf(folder),
      (runs) => runs.filter((run) => run.close !== null).length >= 2,
      240_000,
      500,
    );
    const paused = await http<ScheduleBody>(stack.baseUrl, 'POST', `/api/v1/schedules/${id}/pause`);
    expect(paused.status).toBe(200);
    expect(paused.body.paused).toBe(true);
    expect(paused.body.next_run_at).toBeNull();
    const runs = await waitFor(() => scansOf(folder), (all) => all.every((run) => run.close !== null), 240_000, 500);
    expect(runs.length).toBeGreaterThanOrEqual(2);
    // No two scans of the root ran at once.
    const sorted = [...runs].sort((a, b) => a.start - b.start);
    for (let i = 1; i < sorted.length; i += 1) {
      expect(sorted[i]!.start).toBeGreaterThanOrEqual(sorted[i - 1]!.close as number);
    }
    for (const run of runs) expect((await job(run.id)).status).toBe('completed');

    const unpaused = await http<ScheduleBody>(stack.baseUrl, 'POST', `/api/v1/schedules/${id}/unpause`);
    expect(unpaused.body.paused).toBe(false);
    expect((await http(stack.baseUrl, 'DELETE', `/api/v1/schedules/${id}`)).status).toBe(204);
    expect((await http(stack.baseUrl, 'GET', `/api/v1/schedules/${id}`)).status).toBe(404);
  });

  it('starts no scan while a scan of its root started through the API runs', async () => {
    const folder = path.join(work, 'held');
    await buildLibrary(folder, 16, clips);
    const release = hold(folder);
    const manual = await http<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: folder });
    expect(manual.status).toBe(202);
    await waitFor(() => job(manual.body.job_id), (j) => j.status === 'running', 120_000, 100);
    const created = await http<ScheduleBody>(stack.baseUrl, 'POST', '/api/v1/schedules', { path: folder, every: '1s' });
    const id = created.body.schedule_id;
    // Runs of the schedule that found the root held by the manual scan, and started nothing.
    const skipped = await waitFor(() => skippedRunsOf(id), (runs) => runs.length >= 1, 120_000, 300);
    await recordRun(stack.client, skipped[0]!.workflowId, skipped[0]!.runId, 'scheduled-skipped');
    release();
    await endOf(manual.body.job_id);
    expect((await http(stack.baseUrl, 'POST', `/api/v1/schedules/${id}/pause`)).status).toBe(200);
    const runs = await waitFor(() => scansOf(folder), (all) => all.every((run) => run.close !== null), 240_000, 500);
    const sorted = [...runs].sort((a, b) => a.start - b.start);
    expect(sorted[0]?.id).toBe(manual.body.job_id);
    for (let i = 1; i < sorted.length; i += 1) {
      expect(sorted[i]!.start).toBeGreaterThanOrEqual(sorted[i - 1]!.close as number);
    }
    expect((await http(stack.baseUrl, 'DELETE', `/api/v1/schedules/${id}`)).status).toBe(204);
  });

  it('runs now on trigger, answering with the scan it started', async () => {
    const folder = path.join(work, 'trigger');
    const files = await buildLibrary(folder, 4, clips);
    const created = await http<ScheduleBody>(stack.baseUrl, 'POST', '/api/v1/schedules', { path: folder, cron: '0 3 * * *' });
    expect(created.status).toBe(201);
    const id = created.body.schedule_id;
    const triggered = await http<{ job_id: string }>(stack.baseUrl, 'POST', `/api/v1/schedules/${id}/trigger`);
    expect(triggered.status).toBe(202);
    expect(triggered.body.job_id).toMatch(/^scan-/);
    const end = await endOf(triggered.body.job_id);
    expect(end.status).toBe('completed');
    expect(end.result?.scanned).toBe(files.length);
    expect((await http<ScheduleBody>(stack.baseUrl, 'GET', `/api/v1/schedules/${id}`)).body.last_job_id).toBe(triggered.body.job_id);
    const run = (await stack.client.schedule.getHandle(id).describe()).info.recentActions.at(-1)?.action.workflow;
    if (run === undefined) throw new Error('the schedule lists no run');
    const started = await waitFor(() => stack.client.workflow.getHandle(run.workflowId, run.firstExecutionRunId).describe(), (d) => d.status.name === 'COMPLETED', 60_000, 200);
    await recordRun(stack.client, started.workflowId, started.runId, 'scheduled-started');
    expect((await http(stack.baseUrl, 'DELETE', `/api/v1/schedules/${id}`)).status).toBe(204);
  });

  it('is managed with scanctl schedules', async () => {
    const folder = path.join(work, 'cli');
    const files = await buildLibrary(folder, 2, clips);
    const created = await scanctl(stack.baseUrl, '--json', 'schedules', 'create', folder, '--every', '1d');
    expect(created.code).toBe(0);
    const id = (JSON.parse(created.stdout) as ScheduleBody).schedule_id;
    const listed = await scanctl(stack.baseUrl, 'schedules', 'list');
    expect(listed.stdout).toContain(`${id}  every 1d  next `);
    expect((await scanctl(stack.baseUrl, 'schedules', 'pause', id)).stdout).toContain(`${id}  every 1d  paused`);
    expect((await scanctl(stack.baseUrl, 'schedules', 'unpause', id)).stdout).toContain(`${id}  every 1d  next `);
    const triggered = await scanctl(stack.baseUrl, '--json', 'schedules', 'trigger', id);
    expect(triggered.code).toBe(0);
    const end = await endOf((JSON.parse(triggered.stdout) as { job_id: string }).job_id);
    expect(end.result?.scanned).toBe(files.length);
    expect(await scanctl(stack.baseUrl, 'schedules', 'delete', id)).toMatchObject({ code: 0, stdout: `${id} deleted\n` });
    expect((await scanctl(stack.baseUrl, 'schedules', 'delete', id)).code).toBe(3);
    expect((await scanctl(stack.baseUrl, 'schedules', 'create', folder)).code).toBe(2);
  });

  it('is refused where a scan start would be, and an unknown schedule is 404', async () => {
    const folder = path.join(work, 'refused');
    await fs.mkdir(folder, { recursive: true });
    const post = (body: unknown) => http<{ code: string }>(stack.baseUrl, 'POST', '/api/v1/schedules', body);
    expect((await post({ path: folder })).status).toBe(400);
    expect((await post({ path: folder, every: '2s', cron: '@daily' })).status).toBe(400);
    expect((await post({ path: folder, every: 'soon' })).status).toBe(400);
    const badCron = await post({ path: folder, cron: '99 99 * * *' });
    expect(badCron.status).toBe(400);
    expect(badCron.body.code).toBe('INVALID_REQUEST');
    expect((await post({ path: 'relative/path', every: '1h' })).body.code).toBe('INVALID_PATH');
    expect((await post({ path: path.join(folder, 'absent'), every: '1h' })).body.code).toBe('INVALID_PATH');
    expect((await http(stack.baseUrl, 'GET', '/api/v1/schedules/scan-schedule-00000000-0000-0000-0000-000000000000')).status).toBe(404);
    expect((await http(stack.baseUrl, 'POST', '/api/v1/schedules/not-one/trigger')).status).toBe(404);
  });

  it('stays inside SCAN_ROOTS: 403 PATH_NOT_ALLOWED outside them, as for a scan start', async () => {
    const allowed = path.join(work, 'allowed');
    const outside = path.join(work, 'outside');
    await fs.mkdir(allowed, { recursive: true });
    await fs.mkdir(outside, { recursive: true });
    // A link inside the roots that leads out of them is outside too.
    await fs.symlink(outside, path.join(allowed, 'link-out'));
    const guarded = await startStack({ SCAN_ROOTS: allowed });
    try {
      const post = (body: unknown) => http<{ code: string; schedule_id: string }>(guarded.baseUrl, 'POST', '/api/v1/schedules', body);
      for (const target of [outside, path.join(allowed, 'link-out')]) {
        const refused = await post({ path: target, every: '1h' });
        expect(refused.status).toBe(403);
        expect(refused.body.code).toBe('PATH_NOT_ALLOWED');
      }
      const ok = await post({ path: allowed, every: '1h' });
      expect(ok.status).toBe(201);
      expect((await http(guarded.baseUrl, 'DELETE', `/api/v1/schedules/${ok.body.schedule_id}`)).status).toBe(204);
    } finally {
      await guarded.close();
    }
  });

  it('are described, with pause and resume of a scan, in the OpenAPI document', async () => {
    const doc = await http<{ paths: Record<string, Record<string, unknown>> }>(stack.baseUrl, 'GET', '/api/openapi.json');
    for (const [route, methods] of Object.entries({
      '/api/v1/schedules': ['get', 'post'],
      '/api/v1/schedules/{schedule_id}': ['get', 'delete'],
      '/api/v1/schedules/{schedule_id}/trigger': ['post'],
      '/api/v1/schedules/{schedule_id}/pause': ['post'],
      '/api/v1/schedules/{schedule_id}/unpause': ['post'],
      '/api/v1/jobs/{job_id}/pause': ['post'],
      '/api/v1/jobs/{job_id}/resume': ['post'],
    })) {
      expect(Object.keys(doc.body.paths[route] ?? {}).sort()).toEqual([...methods].sort());
    }
  });
});
