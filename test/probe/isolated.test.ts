/**
 * The probe hosts under stress: probes that time out or are cancelled (by
 * libavformat's interrupt, or by killing a host whose read will not return),
 * a file that crashes its host, and a host that dies under the worker.
 */
import { promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import execa from 'execa';
import { createIsolatedProber, PROBER_CRASHED, type IsolatedProber, type IsolatedProberOptions } from '../../src/media-host/pool';
import type { ProbeResult } from '../../src/probe/parse';
import { hostileHost, hostProcesses, hostsStarted, probeOne, standIn } from '../support/media-hosts';
import { ensureTestMedia, type TestClip } from '../support/media';
import { waitFor } from '../support/stack';
import { stopFifos, stuckFile as stuckFifo, trickleFile as trickleFifo } from './fifos';

let clips: TestClip[];
let work: string;

function clip(name: string): TestClip {
  const found = clips.find((candidate) => candidate.name === name);
  if (!found) throw new Error(`no test clip named ${name}`);
  return found;
}

/** A file that passes the checks inside its root, whose read then blocks in the kernel (a FIFO nobody writes to behind it). */
const stuckFile = async (): Promise<string> => standIn(work, await stuckFifo(work));
/** A file that passes the checks inside its root, whose read then goes on for ever (a trickled FIFO behind it). */
const trickleFile = async (): Promise<string> => standIn(work, await trickleFifo(work, clip('h264-aac-ts').file));

/** These processes and all their descendants (parents read from /proc/<pid>/stat). */
async function withDescendants(pids: number[]): Promise<number[]> {
  const parentOf = new Map<number, number>();
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await fs.readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (Number.isFinite(parent)) parentOf.set(Number(entry), parent);
  }
  const found = new Set(pids);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, parent] of parentOf) {
      if (found.has(parent) && !found.has(pid)) {
        found.add(pid);
        grew = true;
      }
    }
  }
  return [...found];
}

/**
 * Threads of these processes or their children (an ffprobe host's ffprobes)
 * blocked in the kernel opening a FIFO nobody writes to (their wait channel).
 */
async function threadsOpeningFifos(pids: number[]): Promise<number> {
  let count = 0;
  for (const pid of await withDescendants(pids)) {
    const tasks = await fs.readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
    for (const task of tasks) {
      const channel = await fs.readFile(`/proc/${pid}/task/${task}/wchan`, 'utf8').catch(() => '');
      if (channel === 'wait_for_partner') count += 1;
    }
  }
  return count;
}

/** Kills a process and returns once it is dead (a zombie not yet reaped), without letting this event loop run. */
function killAndWaitDead(pid: number): void {
  process.kill(pid, 'SIGKILL');
  const deadline = Date.now() + 10_000;
  for (;;) {
    let state = 'gone';
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? 'gone';
    } catch {
      // Already reaped.
    }
    if (state === 'Z' || state === 'gone') return;
    if (Date.now() > deadline) throw new Error(`process ${pid} did not die`);
  }
}

const outcome = (promise: Promise<ProbeResult>): Promise<string> =>
  promise.then(
    (result) => (result.ok ? `ok ${result.metadata.width}x${result.metadata.height}` : result.reason),
    (error: { name?: string; code?: string }) => `rejected ${error.code ?? error.name ?? 'Error'}`,
  );

const probers: IsolatedProber[] = [];
/** Each prober's logs: of the hosts it started, and of the files its hosts handed their prober. */
const logs = new Map<IsolatedProber, { startLog: string; probeLog: string }>();

/** A pool of test hosts (the real ones, which crash on request and log their starts and probes). */
function testProber(options: Omit<IsolatedProberOptions, 'host'> & { crashOn?: string }): IsolatedProber {
  const stem = path.join(work, `${probers.length}-${Date.now()}`);
  const log = { startLog: `${stem}.starts`, probeLog: `${stem}.probes` };
  const prober = createIsolatedProber({ ...options, host: hostileHost({ crashOn: options.crashOn, ...log }) });
  probers.push(prober);
  logs.set(prober, log);
  return prober;
}

function libavProber(options: { concurrency?: number; graceMs?: number; crashOn?: string } = {}): IsolatedProber {
  return testProber({ kind: 'libav', concurrency: options.concurrency ?? 2, graceMs: options.graceMs, crashOn: options.crashOn });
}

/** Hosts the prober has started so far, restarts included. */
const started = (prober: IsolatedProber): number => hostsStarted(logs.get(prober)?.startLog as string).length;

/**
 * Hosts started, once `expected` have logged their start (a host the pool has
 * just spawned logs it when its process is up): then exactly `expected`.
 */
const startedReaches = async (prober: IsolatedProber, expected: number): Promise<number> => {
  await waitFor(async () => started(prober), (count) => count >= expected, 10_000, 20).catch(() => undefined);
  return started(prober);
};

/** The files the prober's hosts have handed their prober so far, in order. */
const probed = async (prober: IsolatedProber): Promise<string[]> =>
  (await fs.readFile(logs.get(prober)?.probeLog as string, 'utf8').catch(() => '')).split('\n').filter((line) => line !== '');

/** Threads of the live hosts (and their ffprobes) stuck opening a FIFO. */
const stuckThreads = async (): Promise<number> => threadsOpeningFifos(await hostProcesses());

beforeAll(async () => {
  clips = await ensureTestMedia();
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'isolated-test-'));
}, 120_000);

afterEach(async () => {
  stopFifos();
  await Promise.all(probers.splice(0).map((prober) => prober.close()));
  // Every host of the test is gone with its prober.
  expect(await hostProcesses()).toEqual([]);
});

afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

describe('timeouts', () => {
  it('interrupts a probe that runs past its timeout, and keeps the host', async () => {
    // A grace of a minute: were the host killed, the answer would take that long.
    const prober = libavProber({ graceMs: 60_000 });
    await prober.version();
    await expect(probeOne(prober, await trickleFile(), { timeoutMs: 800 })).resolves.toEqual({ ok: false, reason: 'timeout' });
    expect(started(prober)).toBe(1);
    await expect(outcome(probeOne(prober, clip('h264-aac').file, { timeoutMs: 20_000 }))).resolves.toBe('ok 320x240');
    expect(started(prober)).toBe(1);
  });

  it('kills and restarts a host whose read does not return: that file is timeout, the others it held are probed again', async () => {
    const prober = libavProber({ concurrency: 2, graceMs: 300 });
    await prober.version();
    const [firstHost] = await hostProcesses();
    // The trickle keeps reading past the stuck file's deadline, so it is in flight when its host is killed.
    const stuck = probeOne(prober, await stuckFile(), { timeoutMs: 300 });
    const trickle = probeOne(prober, await trickleFile(), { timeoutMs: 3_000 });
    await expect(stuck).resolves.toEqual({ ok: false, reason: 'timeout' });
    // Sent again to the new host, it runs to its own timeout instead of failing with the host.
    await expect(trickle).resolves.toEqual({ ok: false, reason: 'timeout' });
    expect(started(prober)).toBe(2);
    expect(await hostProcesses()).not.toContain(firstHost);
    await expect(outcome(probeOne(prober, clip('vp9-opus').file, { timeoutMs: 20_000 }))).resolves.toBe('ok 160x120');
  });
});

describe('cancel', () => {
  it('interrupts a probe in flight at once, and keeps the host', async () => {
    const prober = libavProber({ graceMs: 60_000 });
    await prober.version();
    const controller = new AbortController();
    const probing = probeOne(prober, await trickleFile(), { timeoutMs: 60_000, signal: controller.signal });
    // Being read by the host's prober.
    await waitFor(() => probed(prober), (files) => files.length === 1);
    const reason = new Error('scan cancelled');
    controller.abort(reason);
    await expect(probing).rejects.toBe(reason);
    expect(started(prober)).toBe(1);
  });

  it('kills the host when the cancelled probe does not answer, and the next probe gets a new one', async () => {
    const prober = libavProber({ graceMs: 300 });
    await prober.version();
    const controller = new AbortController();
    const probing = probeOne(prober, await stuckFile(), { timeoutMs: 60_000, signal: controller.signal });
    // Its host is stuck in the kernel, opening the FIFO.
    await waitFor(stuckThreads, (threads) => threads === 1);
    controller.abort();
    await expect(probing).rejects.toMatchObject({ name: 'AbortError' });
    await expect(outcome(probeOne(prober, clip('h264-aac').file, { timeoutMs: 20_000 }))).resolves.toBe('ok 320x240');
    expect(started(prober)).toBe(2);
  });

  it('lets a probe waiting for a slot go without touching the one in flight', async () => {
    const prober = libavProber({ concurrency: 1, graceMs: 60_000 });
    await prober.version();
    const first = new AbortController();
    const trickle = await trickleFile();
    const firstProbe = outcome(probeOne(prober, trickle, { timeoutMs: 60_000, signal: first.signal }));
    await waitFor(() => probed(prober), (files) => files.length === 1);
    const waiting = new AbortController();
    const waitingProbe = outcome(probeOne(prober, clip('h264-aac').file, { timeoutMs: 20_000, signal: waiting.signal }));
    const third = outcome(probeOne(prober, clip('vp9-opus').file, { timeoutMs: 20_000 }));
    waiting.abort();
    await expect(waitingProbe).resolves.toBe('rejected AbortError');
    first.abort();
    // The one in flight ends only with its own abort.
    await expect(firstProbe).resolves.toBe('rejected AbortError');
    await expect(third).resolves.toBe('ok 160x120');
    // The one let go was never handed to the prober.
    expect(await probed(prober)).toEqual([await fs.realpath(trickle), await fs.realpath(clip('vp9-opus').file)]);
    expect(started(prober)).toBe(1);
  });
});

describe('probes waiting on their host for a slot', () => {
  it('start their time limit when their turn comes, not when they were sent', async () => {
    // A grace the long probe's own answer keeps on a busy machine (its host is not killed).
    const prober = libavProber({ concurrency: 1, graceMs: 3_000 });
    await prober.version();
    const long = probeOne(prober, await trickleFile(), { timeoutMs: 6_000 });
    // Sent at once, it waits on the host behind the long one: longer than its own limit and grace.
    const next = outcome(probeOne(prober, clip('h264-aac').file, { timeoutMs: 1_000 }));
    await expect(long).resolves.toEqual({ ok: false, reason: 'timeout' });
    await expect(next).resolves.toBe('ok 320x240');
    expect(started(prober)).toBe(1);
  });

  it('are checked inside their root again when their turn comes long after they reached the host', async () => {
    const prober = libavProber({ concurrency: 1, graceMs: 60_000 });
    await prober.version();
    const root = path.join(work, 'turn-root');
    await fs.mkdir(root);
    const file = path.join(root, 'late.mp4');
    await fs.copyFile(clip('h264-aac').file, file);
    const outside = path.join(work, 'turn-outside.mp4');
    await fs.copyFile(clip('vp9-opus').file, outside);
    const { size, mtimeMs } = await fs.stat(file);
    const long = probeOne(prober, await trickleFile(), { timeoutMs: 1_500 });
    const waiting = prober.probeFile({ file, realRoot: await fs.realpath(root), discovered: { size, mtimeMs }, timeoutMs: 10_000 });
    // It has reached the host, where it waits; the file becomes a link out of the root.
    await new Promise((resolve) => setTimeout(resolve, 300));
    await fs.rm(file);
    await fs.symlink(outside, file);
    await expect(long).resolves.toEqual({ ok: false, reason: 'timeout' });
    // Refused before any probe: nothing was opened.
    await expect(waiting).resolves.toEqual({ outcome: { kind: 'failed', reason: 'outside_scan_root' }, probeSeconds: null });
  });
});

describe('thumbnails in the hosts', () => {
  it('have their own limit: a picture in flight takes no probe slot, and a second picture waits for the first', async () => {
    const prober = libavProber({ concurrency: 1, graceMs: 60_000 });
    await prober.version();
    const slow = new AbortController();
    // Pictures are not checked inside a root (their files were, when probed): the FIFO itself.
    const endless = prober.thumbnail({ file: await trickleFifo(work, clip('h264-aac-ts').file), output: path.join(work, 'endless.jpg'), seconds: 5, width: 160, timeoutMs: 60_000, signal: slow.signal });
    const next = prober.thumbnail({ file: clip('h264-aac').file, output: path.join(work, 'next.jpg'), seconds: 0.5, width: 160, timeoutMs: 60_000 });
    // The one probe slot is free while the endless picture runs.
    await expect(outcome(probeOne(prober, clip('vp9-opus').file, { timeoutMs: 20_000 }))).resolves.toBe('ok 160x120');
    await new Promise((resolve) => setTimeout(resolve, 300));
    await expect(fs.stat(path.join(work, 'next.jpg'))).rejects.toThrow();
    slow.abort();
    await expect(endless).rejects.toMatchObject({ name: 'AbortError' });
    await expect(next).resolves.toEqual({ ok: true });
    expect((await fs.stat(path.join(work, 'next.jpg'))).size).toBeGreaterThan(0);
    expect(started(prober)).toBe(1);
  });

  it('wait on their host for a slot, and start their time limit when their turn comes', async () => {
    // As for probes above: a grace the long picture's own answer keeps on a busy machine.
    const prober = libavProber({ concurrency: 1, graceMs: 3_000 });
    await prober.version();
    const long = prober.thumbnail({ file: await trickleFifo(work, clip('h264-aac-ts').file), output: path.join(work, 'long.jpg'), seconds: 5, width: 160, timeoutMs: 6_000 });
    // Sent at once, it waits on the host behind the long one: longer than its own limit and grace.
    const next = prober.thumbnail({ file: clip('h264-aac').file, output: path.join(work, 'next.jpg'), seconds: 0.5, width: 160, timeoutMs: 1_000 });
    await expect(long).resolves.toEqual({ ok: false, reason: 'thumbnail_timeout' });
    await expect(next).resolves.toEqual({ ok: true });
    // Neither was taken for stuck: the host that made them is the first.
    expect(started(prober)).toBe(1);
  });

  it('are refused by ffprobe hosts', async () => {
    const prober = testProber({ kind: 'ffprobe', concurrency: 1 });
    await expect(prober.thumbnail({ file: clip('h264-aac').file, output: path.join(work, 'no.jpg'), seconds: 0, width: 160, timeoutMs: 1_000 })).rejects.toThrow(/libav/);
  });
});

describe('a file that crashes the prober', () => {
  it('fails alone: the other files in flight are probed again, the culprit found alone and recorded once', async () => {
    const prober = libavProber({ concurrency: 3, crashOn: 'CRASH-ME' });
    await prober.version();
    const culprit = path.join(work, 'CRASH-ME.mp4');
    await fs.copyFile(clip('h264-aac').file, culprit);
    const good = ['h264-aac', 'h264-vorbis', 'vp9-opus', 'mpeg4-aac', 'mpeg4-mp3', 'h264-ntsc'].map((name) => clip(name));
    const files = [good[0], good[1], { file: culprit }, good[2], good[3], good[4], good[5]].map((entry) => (entry as { file: string }).file);
    const results = await Promise.all(files.map((file) => outcome(probeOne(prober, file, { timeoutMs: 20_000 }))));
    expect(results).toEqual([
      'ok 320x240', 'ok 256x144', PROBER_CRASHED, 'ok 160x120', 'ok 240x180', 'ok 176x144', 'ok 288x216',
    ]);
    // Two crashes: once with the others in flight, once alone. Never a third.
    // A crashed host is replaced when work is waiting, else on the next probe;
    // which came first is timing, so one more good file makes sure: 3 hosts started.
    await expect(outcome(probeOne(prober, good[0]?.file as string, { timeoutMs: 20_000 }))).resolves.toBe('ok 320x240');
    expect(await startedReaches(prober, 3)).toBe(3);
    // The same file later: crashes, is tried alone, crashes again, recorded; a new host takes the next file.
    await expect(probeOne(prober, culprit, { timeoutMs: 20_000 })).resolves.toEqual({ ok: false, reason: 'probe_failed: prober crashed' });
    expect(await startedReaches(prober, 4)).toBe(4);
    await expect(outcome(probeOne(prober, clip('h264-aac').file, { timeoutMs: 20_000 }))).resolves.toBe('ok 320x240');
    expect(await startedReaches(prober, 5)).toBe(5);
  });
});

describe.each(['ffprobe', 'libav'] as const)('a %s probe host that dies under the worker', (kind) => {
  const make = (): IsolatedProber => testProber({ kind, concurrency: 2 });

  it('fails the probes of a send to it as transient, and a new host takes the next ones', async () => {
    const prober = make();
    await expect(outcome(probeOne(prober, clip('h264-aac').file, { timeoutMs: 20_000 }))).resolves.toBe('ok 320x240');
    const hosts = await hostProcesses();
    expect(hosts).toHaveLength(1);
    const [host] = hosts;
    // Dead, but this process has not yet heard: the next send goes to a closed channel.
    killAndWaitDead(host as number);
    const sentToTheDead = outcome(probeOne(prober, clip('vp9-opus').file, { timeoutMs: 20_000 }));
    await expect(sentToTheDead).resolves.toMatch(/^(rejected EPROBEHOST|ok 160x120)$/);
    await expect(outcome(probeOne(prober, clip('h264-aac').file, { timeoutMs: 20_000 }))).resolves.toBe('ok 320x240');
    expect(await hostProcesses()).not.toContain(host);
  });

  it('fails the probes in flight as transient when it is killed, and restarts', async () => {
    const prober = make();
    await prober.version();
    const inFlight = [outcome(probeOne(prober, await stuckFile(), { timeoutMs: 60_000 })), outcome(probeOne(prober, await stuckFile(), { timeoutMs: 60_000 }))];
    await waitFor(stuckThreads, (threads) => threads === 2);
    const hosts = await hostProcesses();
    expect(hosts).toHaveLength(1);
    process.kill(hosts[0] as number, 'SIGKILL');
    await expect(Promise.all(inFlight)).resolves.toEqual(['rejected EPROBEHOST', 'rejected EPROBEHOST']);
    await expect(outcome(probeOne(prober, clip('mpeg4-aac').file, { timeoutMs: 20_000 }))).resolves.toBe('ok 240x180');
  });
});

describe('closing the prober', () => {
  it('returns once every host has exited, one still starting included, in a process with nothing else to do', async () => {
    const script = [
      "const { createIsolatedProber } = require('./src/media-host/pool');",
      "const { hostProcesses } = require('./test/support/media-hosts');",
      '(async () => {',
      "  const prober = createIsolatedProber({ kind: 'libav', concurrency: 2, hosts: 2 });",
      '  await prober.version();',
      '  await prober.close();',
      "  process.stdout.write(`closed ${(await hostProcesses()).length}\\n`);",
      '})();',
    ].join('\n');
    const root = path.join(__dirname, '..', '..');
    const run = await execa(process.execPath, ['--require', path.join(root, 'scripts', 'ts-register.js'), '-e', script], { cwd: root, reject: false, timeout: 60_000 });
    expect({ stdout: run.stdout, exitCode: run.exitCode }).toEqual({ stdout: 'closed 0', exitCode: 0 });
  });
});
