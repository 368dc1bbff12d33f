/**
 * A rolling upgrade that keeps running scans. The previous release (the
 * commit before this deployment work, PREVIOUS below) is taken from git,
 * compiled beside the checkout (its node_modules shared by a symlink; the
 * compiled output kept in the per-user cache for the next run), and run
 * as real processes against the test run's Temporal server and one SQLite
 * library:
 *   1. workers first: a scan started by the previous API on a previous
 *      worker; the worker replaced by today's mid-scan, then the API; the scan
 *      completes through today's API with every file in the library once.
 *   2. API first: today's API starts a scan that a previous worker runs; the
 *      worker is replaced by today's mid-scan; the scan completes the same way.
 * Workers are stopped as an orchestrator stops them (SIGTERM, drained).
 */
import { execFileSync, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { scannerCacheDir } from '../../src/config';
import { buildLibrary, ensureTestMedia } from '../support/media';
import { freePort, killPart, startPart, type Part } from '../support/processes';
import { waitFor, writeProberWrapper } from '../support/stack';

/** The release before this work (main's commit when it began). */
const PREVIOUS = '137ab59';
const ROOT = path.join(__dirname, '..', '..');
const FILES = 120;
const TERMINAL = ['completed', 'failed', 'cancelled', 'timeout'];
const realFfprobe = (require('@ffprobe-installer/ffprobe') as { path: string }).path;

let work: string;
let previous: string;
const parts: Part[] = [];

/** Starts a compiled entry point of the previous release, as startPart does for today's sources. */
async function startPrevious(entry: string, env: Record<string, string>, ready: RegExp): Promise<Part> {
  const child = spawn(process.execPath, [path.join(previous, 'dist', 'src', `${entry}.js`)], {
    cwd: previous,
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const exited = new Promise<number | NodeJS.Signals | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
  const part: Part = { child, output: () => text, exited };
  parts.push(part);
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`previous ${entry} exited:\n${text.slice(-2000)}`);
      return ready.test(text);
    },
    Boolean,
    180_000,
    100,
  );
  return part;
}

async function startToday(entry: string, env: Record<string, string>, ready: RegExp): Promise<Part> {
  const part = await startPart(entry, env, ready, 180_000);
  parts.push(part);
  return part;
}

/** SIGTERM, as an orchestrator replaces a container, and the exit awaited. */
async function stop(part: Part): Promise<void> {
  part.child.kill('SIGTERM');
  await part.exited;
}

beforeAll(async () => {
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'upgrade-')));
  previous = path.join(work, 'previous');
  await fs.mkdir(previous);
  try {
    execFileSync('git', ['-C', ROOT, 'cat-file', '-e', `${PREVIOUS}^{commit}`]);
  } catch {
    throw new Error(`commit ${PREVIOUS} (the previous release) is not in this clone: fetch its history (git fetch --unshallow) to run the upgrade test`);
  }
  // The previous release's sources, compiled with today's toolchain and modules (its lockfile matched them).
  execFileSync('sh', ['-c', `git -C '${ROOT}' archive ${PREVIOUS} src package.json tsconfig.json tsconfig.build.json | tar -x -C '${previous}'`]);
  await fs.symlink(path.join(ROOT, 'node_modules'), path.join(previous, 'node_modules'));
  // Its sources never change: the output is cached per user (as the Temporal binaries are) by commit and compiler.
  const { version: tscVersion } = JSON.parse(await fs.readFile(path.join(ROOT, 'node_modules', 'typescript', 'package.json'), 'utf8')) as { version: string };
  const cached = path.join(scannerCacheDir(), 'upgrade-previous', `${PREVIOUS}-typescript-${tscVersion}`);
  if (!(await fs.stat(cached).catch(() => null))) {
    await fs.writeFile(path.join(previous, 'tsconfig.upgrade.json'), JSON.stringify({ extends: './tsconfig.build.json', include: ['src'] }));
    execFileSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(previous, 'tsconfig.upgrade.json')], { cwd: previous, stdio: 'inherit' });
    // Copied whole, then renamed into place: another run never sees half of it (a run that lost the race keeps its own copy).
    await fs.mkdir(path.dirname(cached), { recursive: true });
    const partial = `${cached}.${process.pid}.partial`;
    await fs.cp(path.join(previous, 'dist'), partial, { recursive: true });
    await fs.rename(partial, cached).catch(() => fs.rm(partial, { recursive: true, force: true }));
  } else {
    await fs.cp(cached, path.join(previous, 'dist'), { recursive: true });
  }
}, 10 * 60_000);

afterEach(async () => {
  await Promise.all(parts.splice(0).map((part) => killPart(part)));
});

afterAll(async () => {
  if (work) await fs.rm(work, { recursive: true, force: true });
});

interface JobBody {
  status: string;
  error: string | null;
  counts: { discovered: number; probed: number; failed: number };
  result: { scanned: number } | null;
}

describe('a rolling upgrade from the previous release', () => {
  it('keeps a running scan going when the workers are replaced mid-scan, then the API, and in the other order', async () => {
    const address = process.env.TEMPORAL_TEST_ADDRESS;
    if (!address) throw new Error('TEMPORAL_TEST_ADDRESS is not set: the jest global setup starts the dev server');
    const root = path.join(work, 'media');
    const files = await buildLibrary(root, FILES, await ensureTestMedia());
    const probeLog = path.join(work, 'probes.log');
    // 30 ms per file keeps the scan running while its parts are replaced.
    const wrapper = await writeProberWrapper(work, { realPath: realFfprobe, delayMs: 30, logFile: probeLog });
    const dataDir = path.join(work, 'data');
    const env = {
      TEMPORAL_ADDRESS: address,
      TEMPORAL_TASK_QUEUE: `upgrade-${process.pid}-${Date.now()}`,
      DATA_DIR: dataDir,
      SCAN_ROOTS: root,
      PROBER: 'ffprobe',
      FFPROBE_PATH: wrapper.path,
      PROBE_CONCURRENCY: '1',
      SCAN_BATCH_SIZE: '10',
    };
    const probes = async (): Promise<number> =>
      (await fs.readFile(probeLog, 'utf8').catch(() => '')).split('\n').filter((line) => line.startsWith(`file:${root}`)).length;
    const library = (): { n: number; paths: number } => {
      const db = new Database(path.join(dataDir, 'library.sqlite'), { readonly: true, fileMustExist: true });
      try {
        return db.prepare("select count(*) as n, count(distinct path) as paths from videos where path like ? || '/%' and status = 'present'").get(root) as {
          n: number;
          paths: number;
        };
      } finally {
        db.close();
      }
    };
    const job = async (port: number, id: string): Promise<JobBody | null> => {
      const response = await fetch(`http://127.0.0.1:${port}/api/v1/jobs/${id}`).catch(() => null);
      return response?.ok ? ((await response.json()) as JobBody) : null;
    };
    const startScan = async (port: number, force: boolean): Promise<string> => {
      const response = await fetch(`http://127.0.0.1:${port}/api/v1/videos/scan`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ path: root, force }),
      });
      expect(response.status).toBe(202);
      return ((await response.json()) as { job_id: string }).job_id;
    };
    const expectCompleted = (end: JobBody | null): void => {
      expect({ status: end?.status, error: end?.error }).toEqual({ status: 'completed', error: null });
      expect(end?.counts.discovered).toBe(FILES);
      expect(end?.counts.failed).toBe(0);
      expect(end?.result?.scanned).toBe(FILES);
      expect(library()).toEqual({ n: FILES, paths: FILES });
    };

    // 1. Workers first, then the API.
    let worker = await startPrevious('worker-main', env, /worker running/);
    const oldApiPort = await freePort();
    const oldApi = await startPrevious('api/server', { ...env, PORT: String(oldApiPort) }, /api listening/);
    const first = await startScan(oldApiPort, false);
    await waitFor(probes, (n) => n >= FILES * 0.2, 300_000, 100);
    await stop(worker);
    const atWorkerSwap = await probes();
    expect(atWorkerSwap).toBeLessThan(FILES);
    worker = await startToday('worker-main', env, /worker running/);
    // Today's worker carries the scan on before the API is replaced.
    await waitFor(probes, (n) => n >= atWorkerSwap + FILES * 0.2, 300_000, 100);
    expect((await job(oldApiPort, first))?.status).toBe('running');
    await stop(oldApi);
    const apiPort = await freePort();
    const api = await startToday('api/server', { ...env, PORT: String(apiPort) }, /api listening/);
    expectCompleted(await waitFor(() => job(apiPort, first), (j) => j !== null && TERMINAL.includes(j.status), 600_000, 250));
    const firstProbes = await probes();
    expect(new Set((await fs.readFile(probeLog, 'utf8')).split('\n').filter((line) => line.startsWith('file:')))).toEqual(new Set(files.map((file) => `file:${file}`)));

    // 2. The API first: today's API, a previous worker running the scan, replaced mid-scan.
    await stop(worker);
    worker = await startPrevious('worker-main', env, /worker running/);
    const second = await startScan(apiPort, true);
    await waitFor(probes, (n) => n >= firstProbes + FILES * 0.2, 300_000, 100);
    await stop(worker);
    const atSecondSwap = await probes();
    expect(atSecondSwap - firstProbes).toBeLessThan(FILES);
    worker = await startToday('worker-main', env, /worker running/);
    expectCompleted(await waitFor(() => job(apiPort, second), (j) => j !== null && TERMINAL.includes(j.status), 600_000, 250));
    expect(api.child.exitCode).toBeNull();
  }, 30 * 60_000);
});
