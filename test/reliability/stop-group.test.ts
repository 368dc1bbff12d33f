/**
 * A worker stopped as systemd, Docker or a terminal stop one: SIGTERM to its
 * whole process group, probe hosts and ffprobe processes included. The files
 * being probed at that moment are interruptions, never verdicts: another
 * worker resumes the scan and every file ends in the library, none recorded
 * `probe_failed: ffprobe killed by SIGTERM`. With either prober. And the
 * worker stops its probe hosts before it exits.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { loadConfig } from '../../src/config';
import { Library } from '../../src/library/library';
import { ScanService, type JobBody } from '../../src/scans';
import { buildLibrary, ensureTestMedia, type TestClip } from '../support/media';
import { killPart, startPart, type Part } from '../support/processes';
import { processesMatching, temporalAddress, waitFor, writeProberWrapper } from '../support/stack';

jest.setTimeout(300_000);

const realFfprobe = (require('@ffprobe-installer/ffprobe') as { path: string }).path;
const ROOT = path.join(__dirname, '..', '..');
const TERMINAL = ['completed', 'failed', 'cancelled', 'timeout'];

let clips: TestClip[];
let work: string;
let connection: Connection;
const parts: Part[] = [];
/** Workers started as group leaders, killed with their groups after each test whatever it did. */
const leaders: number[] = [];

beforeAll(async () => {
  clips = await ensureTestMedia();
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'stop-group-')));
  connection = await Connection.connect({ address: temporalAddress() });
});

afterEach(async () => {
  for (const pid of leaders.splice(0)) signal(-pid, 'SIGKILL');
  await Promise.all(parts.splice(0).map((part) => killPart(part)));
});

/** Sends a signal to a process (or a group, negative) that may have ended already. */
function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

afterAll(async () => {
  await connection?.close();
  await fs.rm(work, { recursive: true, force: true });
});

/** Starts a worker as the leader of its own process group, as a service manager does; resolves once it is running. */
async function groupLeader(env: Record<string, string>): Promise<{ pid: number; exited: Promise<unknown> }> {
  const child = spawn(process.execPath, ['--require', path.join(ROOT, 'scripts', 'ts-register.js'), path.join(ROOT, 'src', 'worker-main.ts')], {
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let text = '';
  child.stdout?.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  if (child.pid !== undefined) leaders.push(child.pid);
  await waitFor(async () => text, (t) => /worker running/.test(t) || child.exitCode !== null, 60_000, 100);
  if (child.pid === undefined || child.exitCode !== null) throw new Error(`worker did not start:\n${text.slice(-2000)}`);
  return { pid: child.pid, exited };
}

/** The worker's child processes (its probe hosts), by their parent pid in /proc. */
async function childrenOf(parent: number): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await fs.readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // The parent pid is the second field after the command, which is in parentheses and may hold spaces.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === parent) pids.push(Number(entry));
  }
  return pids;
}

/** Whether a process still exists (a zombie not yet reaped counts as gone). */
async function alive(pid: number): Promise<boolean> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat !== '' && stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
}

describe.each(['ffprobe', 'libav'])('a worker whose process group gets SIGTERM mid-scan (PROBER=%s)', (prober) => {
  it('leaves no file failed: the next worker probes the interrupted files again', async () => {
    const folder = path.join(work, prober);
    const files = await buildLibrary(folder, 120, clips);
    const wrapper = await writeProberWrapper(work, { realPath: realFfprobe, delayMs: 100 });
    const taskQueue = `stop-group-${prober}-${process.pid}-${Date.now()}`;
    const env: Record<string, string> = {
      TEMPORAL_ADDRESS: temporalAddress(),
      TEMPORAL_TASK_QUEUE: taskQueue,
      DATABASE_URL: `sqlite:${path.join(work, `${prober}.sqlite`)}`,
      DATA_DIR: path.join(work, `data-${prober}`),
      PROBER: prober,
      PROBE_CONCURRENCY: '2',
      SCAN_BATCH_SIZE: '10',
      // Pictures are the thumbnail tests' matter: these scans end after probing.
      THUMBNAILS: 'off',
      // ffprobe slowed so that probes are always in flight; libav probes as it is.
      ...(prober === 'ffprobe' ? { FFPROBE_PATH: wrapper.path } : {}),
    };
    const config = loadConfig(env);
    const library = await Library.open(config.databaseUrl);
    try {
      const scans = new ScanService(new Client({ connection }), config, library, taskQueue);
      const first = await groupLeader(env);
      const { scanId: jobId } = await scans.start({ root: folder, recursive: true, force: false });
      await waitFor(() => scans.get(jobId), (job) => job.counts.probed >= 20, 120_000, 50);
      if (prober === 'ffprobe') {
        // The signal reaches the group's processes in no set order: here the
        // ffprobe processes of the scan get it first, and their host, still
        // up, reports how they ended before it gets the signal in turn.
        const probing = await waitFor(() => processesMatching(`file:${folder}`), (pids) => pids.length > 0, 60_000, 10);
        for (const pid of probing) signal(pid, 'SIGTERM');
        await waitFor(() => processesMatching(`file:${folder}`), (pids) => !pids.some((pid) => probing.includes(pid)), 10_000, 10);
      }
      process.kill(-first.pid, 'SIGTERM');
      await first.exited;

      parts.push(await startPart('worker-main', env, /worker running/));
      const job = await waitFor(() => scans.get(jobId), (j: JobBody) => TERMINAL.includes(j.status), 240_000, 200);
      expect(job.status).toBe('completed');
      expect(job.result?.errors).toEqual([]);
      expect(job.counts.failed).toBe(0);
      expect((await library.searchVideos(folder + path.sep, 1000, 0)).total).toBe(files.length);
    } finally {
      await library.close();
    }
  });
});

describe('a worker stopped with SIGTERM', () => {
  it('stops its probe hosts before it exits', async () => {
    const folder = path.join(work, 'hosts');
    await buildLibrary(folder, 60, clips);
    const taskQueue = `stop-hosts-${process.pid}-${Date.now()}`;
    const env: Record<string, string> = {
      TEMPORAL_ADDRESS: temporalAddress(),
      TEMPORAL_TASK_QUEUE: taskQueue,
      DATABASE_URL: `sqlite:${path.join(work, 'hosts.sqlite')}`,
      DATA_DIR: path.join(work, 'data-hosts'),
      PROBER: 'libav',
      PROBE_CONCURRENCY: '2',
    };
    const config = loadConfig(env);
    const library = await Library.open(config.databaseUrl);
    try {
      const scans = new ScanService(new Client({ connection }), config, library, taskQueue);
      const worker = await groupLeader(env);
      const { scanId: jobId } = await scans.start({ root: folder, recursive: true, force: false });
      await waitFor(() => scans.get(jobId), (job) => job.counts.probed >= 1 || TERMINAL.includes(job.status), 120_000, 50);
      const hosts = await childrenOf(worker.pid);
      expect(hosts.length).toBeGreaterThan(0);
      // The worker alone, as `kill <pid>` does: its hosts must not outlive it.
      process.kill(worker.pid, 'SIGTERM');
      await worker.exited;
      const left: number[] = [];
      for (const pid of hosts) if (await alive(pid)) left.push(pid);
      expect(left).toEqual([]);
    } finally {
      await library.close();
    }
  });
});
