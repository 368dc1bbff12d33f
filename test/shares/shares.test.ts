/**
 * Network shares that stall, fail and vanish, against the real stack
 * (Temporal, the worker, libav probe hosts, SQLite, the API) and a real
 * filesystem: a FUSE share (fault-fs.py) serving real clips, which can hang
 * a call until released (its caller waits in the kernel, deaf to SIGKILL,
 * as on a dead hard NFS mount), fail it with EIO, or make a path vanish.
 *
 * One share for the whole file, and two stacks on it: `quick`, whose short
 * FS_CALL_TIMEOUT is the only wait of the tests that wait it out, and `stack`,
 * whose longer one lets a probe's limit land first. Every hang is answered after
 * each test (afterEach), and the connection aborted and the share unmounted
 * after the file (afterAll), failures included: a call left hanging would
 * keep its process from exiting.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { temporal } from '@temporalio/proto';
import { CheckThreads } from '../../src/filesystem/check-thread';
import { resolveInside } from '../../src/filesystem/containment';
import { registry } from '../../src/metrics';
import type { Video } from '../../src/library/types';
import type { JobBody } from '../../src/scans';
import { ensureTestMedia, type TestClip } from '../support/media';
import { hostProcesses } from '../support/media-hosts';
import { http, startStack, waitFor, withProbeHook, type Stack } from '../support/stack';
import { mountFaultFs, type FaultFs } from './fault-fs';

const TERMINAL = ['completed', 'failed', 'cancelled', 'timeout'];
const MARKER = '.media-online';
/** The worker runs in this process: a rule for this pid alone hits the worker's calls, never the probe hosts'. */
const WORKER_PID = process.pid;

let clips: TestClip[];
let work: string;
/** The share's backing folder (what fault-fs serves). */
let source: string;
/** A local root that holds the share's mount point (`outer/share`), and clips of its own. */
let outer: string;
let local: string;
let share: FaultFs | undefined;
let stack: Stack;
/** The same share through a stack whose FS_CALL_TIMEOUT is short: for the tests that wait it out and need no other limit before it. */
let quick: Stack;
/** Files whose probe waits for `openGate` (see the pictures' cancel). */
let gate: { open: () => void; wait: Promise<void> } | null = null;
/** Probes of files under `gentle/` in flight now, and the most seen at once. */
const gentle = { now: 0, peak: 0 };

/** Each placed clip's file name by its name without extension (`discover/b` → `b.mkv`). */
const placed = new Map<string, string>();

/** Copies distinct real clips into `folder` as `<name><ext>`, with the root marker. */
async function placeClips(folder: string, names: string[]): Promise<void> {
  await fs.mkdir(folder, { recursive: true });
  await fs.writeFile(path.join(folder, MARKER), '');
  await Promise.all(
    names.map(async (name, i) => {
      const clip = clips[i % clips.length] as TestClip;
      const file = `${name}${path.extname(clip.file)}`;
      placed.set(path.join(path.relative(source, folder), name), file);
      await fs.copyFile(clip.file, path.join(folder, file));
    }),
  );
}

/** Probe hosts abandoned so far (the worker's metric). */
const hostsAbandoned = async (): Promise<number> =>
  Number(/scanner_probe_hosts_abandoned_total (\d+)/.exec(await registry.getSingleMetricAsString('scanner_probe_hosts_abandoned_total'))?.[1] ?? 0);

/** The path of a file of the share as the worker sees it, and as the share's rules name it. */
const onShare = (relative: string): string => path.join(outer, 'share', relative);
const rel = (relative: string): string => `/${relative}`;
/** A placed clip's path relative to the share's root (`discover/b.mkv`). */
const fileOf = (folder: string, name: string): string => {
  const file = placed.get(path.join(folder, name));
  if (file === undefined) throw new Error(`no clip placed as ${folder}/${name}`);
  return `${folder}/${file}`;
};

async function start(root: string, body: Record<string, unknown> = {}, on: Stack = stack): Promise<string> {
  let res = await http<{ job_id: string }>(on.baseUrl, 'POST', '/api/v1/videos/scan', { path: root, ...body });
  while (res.status === 200) {
    // The previous scan of the root may still hold it for a moment after it ended.
    await new Promise((resolve) => setTimeout(resolve, 100));
    res = await http<{ job_id: string }>(on.baseUrl, 'POST', '/api/v1/videos/scan', { path: root, ...body });
  }
  expect(res.status).toBe(202);
  return res.body.job_id;
}

const job = (id: string, on: Stack = stack): Promise<JobBody> => on.scans.get(id);
const ended = (id: string, on: Stack = stack): Promise<JobBody> => waitFor(() => job(id, on), (j) => TERMINAL.includes(j.status), 110_000, 100);

async function videosUnder(folder: string): Promise<Video[]> {
  const res = await http<{ videos: Video[] }>(stack.baseUrl, 'GET', '/api/v1/videos?limit=500');
  return res.body.videos.filter((v) => v.path.startsWith(folder + path.sep));
}

const errorsOf = (body: JobBody): Map<string, string> => new Map((body.result?.errors ?? []).map((e) => [e.path, e.error]));

/** Waits until the share has a call of `op` on `relative` hanging. */
async function hanging(op: string, relative: string): Promise<void> {
  await waitFor(() => (share as FaultFs).hung(), (calls) => calls.some((c) => c.op === op && c.path === relative), 60_000, 50);
}

/** Whether that call hangs yet: a cancel landed without waiting for it (the share answers it only after the test). */
async function stillHanging(op: string, relative: string): Promise<boolean> {
  return ((await share?.hung()) ?? []).some((c) => c.op === op && c.path === relative);
}

/** The activities of a scan that timed out or ran again: a worker whose loop stalled misses its heartbeats. */
async function activityTrouble(id: string, on: Stack = stack): Promise<string[]> {
  const history = await on.client.workflow.getHandle(id).fetchHistory();
  const trouble: string[] = [];
  for (const event of history.events ?? []) {
    if (event.eventType === temporal.api.enums.v1.EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT) trouble.push('activity timed out');
    const attempt = event.activityTaskStartedEventAttributes?.attempt;
    if (attempt !== undefined && attempt !== null && attempt > 1) trouble.push(`activity attempt ${attempt}`);
  }
  return trouble;
}

/** Cancels a scan and waits for its end; says how long the cancel took to land (reported, not asserted). */
async function cancelAndWait(id: string, what: string): Promise<JobBody> {
  const cancelAt = Date.now();
  const res = await http(stack.baseUrl, 'POST', `/api/v1/jobs/${id}/cancel`);
  expect(res.status).toBe(202);
  const body = await ended(id);
  const landedS = body.finished_at === null ? NaN : (Date.parse(body.finished_at) - cancelAt) / 1000;
  process.stdout.write(`cancel during ${what} landed in ${landedS.toFixed(2)} s\n`);
  return body;
}

beforeAll(async () => {
  clips = (await ensureTestMedia()).filter((c) => c.hasVideo);
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'shares-')));
  source = path.join(work, 'source');
  outer = path.join(work, 'outer');
  local = path.join(work, 'local');
  await placeClips(local, ['l0', 'l1', 'l2']);
  await placeClips(outer, ['o0']);
  // The stuck file in a folder of its own: FUSE as fusepy runs it answers one lookup at a time per folder.
  await placeClips(path.join(source, 'discover'), ['a', 'c']);
  await placeClips(path.join(source, 'discover', 'stuck'), ['b']);
  await placeClips(path.join(source, 'host-open'), ['a', 'b', 'c']);
  await placeClips(path.join(source, 'host-kill'), ['a', 'b', 'c']);
  await placeClips(path.join(source, 'host-check'), ['a-innocent']);
  await placeClips(path.join(source, 'host-check', 'stuck'), ['b']);
  await placeClips(path.join(source, 'eio'), ['bad', 'good']);
  await placeClips(path.join(source, 'eio', 'sub'), ['x']);
  await placeClips(path.join(source, 'offline'), ['a']);
  await placeClips(path.join(source, 'cancel-walk'), []);
  await placeClips(path.join(source, 'cancel-walk', 'f1'), ['a']);
  await placeClips(path.join(source, 'cancel-walk', 'f2'), ['a']);
  await placeClips(path.join(source, 'cancel-walk', 'f3'), ['a']);
  await placeClips(path.join(source, 'cancel-probe'), ['a', 'b']);
  await placeClips(path.join(source, 'cancel-missing'), ['m1']);
  await placeClips(path.join(source, 'cancel-check'), ['a']);
  await placeClips(path.join(source, 'cancel-pictures'), ['a', 'gate']);
  await placeClips(path.join(source, 'gentle'), ['a', 'b', 'c', 'd']);
  await placeClips(path.join(source, 'hook'), ['gone']);
  await placeClips(path.join(source, 'api-start'), ['a']);
  await placeClips(path.join(source, 'hook-start', 'season'), ['e1']);
  await placeClips(path.join(source, 'check-thread'), ['a']);
  await placeClips(path.join(source, 'check-thread', 'stuck'), ['b']);
  // Answered after 100 s at most: code that waits on a hang forever then fails instead of hanging the run.
  share = await mountFaultFs(source, path.join(outer, 'share'), work, { maxHangSeconds: 100 });
  // Started together: each start is mostly waiting on Temporal and the probe hosts.
  const quickStarted = startStack({ FS_CALL_TIMEOUT: '3s', PROBE_CONCURRENCY: '2', SCAN_ROOT_MARKER: MARKER }).then((started) => (quick = started));
  quickStarted.catch(() => undefined); // awaited below, after the other stack's start
  stack = await startStack(
    {
      // A probe's limit plus the pool's grace (5.5 s) ends a file stuck in a host's check before the
      // check's own deadline does; the files beside it have that long to finish on a busy machine.
      FS_CALL_TIMEOUT: '8s',
      PROBE_TIMEOUT_MS: '4000',
      PROBE_CONCURRENCY: '2',
      SCAN_ROOT_MARKER: MARKER,
    },
    {
      proberGraceMs: 1500,
      wrapProber: (real) => {
        const hooked = withProbeHook(real, async (file) => {
          if (path.basename(file).startsWith('gate') && gate !== null) await gate.wait;
        });
        return {
          get path() {
            return real.path;
          },
          version: () => real.version(),
          probeFile: async (request) => {
            const counted = request.file.includes(`${path.sep}gentle${path.sep}`);
            if (counted) gentle.peak = Math.max(gentle.peak, ++gentle.now);
            try {
              return await hooked.probeFile(request);
            } finally {
              if (counted) gentle.now -= 1;
            }
          },
        };
      },
    },
  );
  await quickStarted;
}, 120_000);

afterEach(async () => {
  await share?.clear();
});

afterAll(async () => {
  await share?.destroy();
  await stack?.close();
  await quick?.close();
  await fs.rm(work, { recursive: true, force: true });
}, 60_000);

describe('a call that hangs', () => {
  it('in discovery holds neither the worker nor the scan: another scan completes meanwhile, no heartbeat is missed, the file is fs_timeout', async () => {
    const stuck = fileOf('discover/stuck', 'b');
    await share?.rule('getattr', rel(stuck), { action: 'hang' });
    const shareScan = await start(onShare('discover'), {}, quick);
    await hanging('getattr', rel(stuck));

    const localScan = await start(local, {}, quick);
    const localEnd = await ended(localScan, quick);
    expect(localEnd.status).toBe('completed');
    expect(localEnd.counts.new).toBe(3);
    // Completed while the share's call still hangs.
    expect((await share?.hung())?.some((c) => c.path === rel(stuck))).toBe(true);

    const shareEnd = await ended(shareScan, quick);
    expect(shareEnd.status).toBe('completed');
    expect(errorsOf(shareEnd).get(onShare(stuck))).toBe('fs_timeout');
    expect(shareEnd.counts.new).toBe(2);
    // It went on around the call, which hangs yet.
    expect((await share?.hung())?.some((c) => c.path === rel(stuck))).toBe(true);
    expect(await activityTrouble(localScan, quick)).toEqual([]);
    expect(await activityTrouble(shareScan, quick)).toEqual([]);
    // The walk thread stuck in the call was abandoned (and counted); the walk went on through the thread pool.
    expect(await registry.getSingleMetricAsString('scanner_walk_threads_abandoned_total')).toMatch(/scanner_walk_threads_abandoned_total [1-9]/);
  });

  it('in a probe host\'s open times out that file alone; the others complete and a new host takes over', async () => {
    const stuck = fileOf('host-open', 'b');
    await share?.rule('open', rel(stuck), { action: 'hang' }, { excludePid: WORKER_PID });
    const hostsBefore = await hostProcesses();
    const id = await start(onShare('host-open'));
    const end = await ended(id);
    expect(end.status).toBe('completed');
    expect([...errorsOf(end)]).toEqual([[onShare(stuck), 'timeout']]);
    expect(end.counts.new).toBe(2);
    // Without waiting for the open, which hangs yet.
    expect(await stillHanging('open', rel(stuck))).toBe(true);
    expect((await hostProcesses()).some((pid) => !hostsBefore.includes(pid))).toBe(true);
    expect((await videosUnder(onShare('host-open'))).map((v) => v.path).sort()).toEqual([onShare(fileOf('host-open', 'a')), onShare(fileOf('host-open', 'c'))]);
  });

  it('in a probe host\'s check lands the time limit on that file, not on the one probed beside it', async () => {
    const stuck = fileOf('host-check/stuck', 'b');
    await share?.rule('getattr', rel(stuck), { action: 'hang' }, { excludePid: WORKER_PID });
    const id = await start(onShare('host-check'));
    const end = await ended(id);
    expect(end.status).toBe('completed');
    expect([...errorsOf(end)]).toEqual([[onShare(stuck), 'timeout']]);
    expect((await videosUnder(onShare('host-check'))).map((v) => v.path)).toEqual([onShare(fileOf('host-check', 'a-innocent'))]);
  });

  it('in a host\'s read leaves a host that SIGKILL cannot end: the pool abandons it, starts a new one at once, and the scan completes', async () => {
    const stuck = fileOf('host-kill', 'b');
    await share?.rule('read', rel(stuck), { action: 'hang' }, { excludePid: WORKER_PID });
    const abandonedBefore = await hostsAbandoned();
    // The other stack's hosts are this process's children too: a fresh host is one not running yet.
    const hostsBefore = await hostProcesses();
    const id = await start(onShare('host-kill'));
    await hanging('read', rel(stuck));
    const stuckPid = (await share?.hung())?.find((c) => c.path === rel(stuck))?.pid as number;
    expect(await hostProcesses()).toContain(stuckPid);

    const end = await ended(id);
    expect(end.status).toBe('completed');
    expect(errorsOf(end).get(onShare(stuck))).toBe('timeout');
    expect(end.counts.new).toBe(2);
    // The killed host is still there, a thread of it stuck in the kernel; the pool runs a fresh one beside it.
    const tasks = await fs.readdir(`/proc/${stuckPid}/task`);
    const states = await Promise.all(tasks.map((task) => fs.readFile(`/proc/${stuckPid}/task/${task}/status`, 'utf8').catch(() => '')));
    expect(states.some((state) => /^State:\s+D/m.test(state))).toBe(true);
    expect((await hostProcesses()).some((pid) => pid !== stuckPid && !hostsBefore.includes(pid))).toBe(true);
    await waitFor(hostsAbandoned, (n) => n > abandonedBefore, 30_000);
  });
});

describe("a probe host's check threads", () => {
  it('answer a check stuck past FS_CALL_TIMEOUT with fs_timeout, and the next check on a new thread while the call hangs yet', async () => {
    // Two threads at most, a deadline of 1 s (a host's own, from FS_CALL_TIMEOUT).
    const checks = new CheckThreads(2, 1000);
    // In a folder of its own, as in the host's check above: a lookup hung in a folder holds that folder's other lookups.
    const stuck = fileOf('check-thread/stuck', 'b');
    await share?.rule('getattr', rel(stuck), { action: 'hang' });
    const realRoot = await fs.realpath(onShare('check-thread'));
    const signal = new AbortController().signal;
    const first = await checks.check(onShare(stuck), null, signal);
    expect(await resolveInside(realRoot, onShare(stuck), first.calls)).toEqual({ ok: false, reason: 'fs_timeout' });
    const other = await resolveInside(realRoot, onShare(fileOf('check-thread', 'a')), (await checks.check(onShare(fileOf('check-thread', 'a')), null, signal)).calls);
    expect(other.ok).toBe(true);
    expect(await stillHanging('getattr', rel(stuck))).toBe(true);
  });
});

describe('the webhook', () => {
  it("answers a delete event whose file's stat hangs within FS_CALL_TIMEOUT, marking nothing missing, while the call hangs yet", async () => {
    const stuck = fileOf('hook', 'gone');
    await share?.rule('getattr', rel(stuck), { action: 'hang' });
    const movieFileDelete = {
      eventType: 'MovieFileDelete',
      instanceName: 'Radarr',
      movie: { id: 3, title: 'Gone', folderPath: onShare('hook') },
      movieFile: { id: 9, relativePath: path.basename(stuck), path: onShare(stuck) },
      deleteReason: 'manual',
    };
    const res = await http<{ job_id: string | null; missing: number; message: string }>(quick.baseUrl, 'POST', '/api/v1/hooks/arr', movieFileDelete);
    expect(res.status).toBe(200);
    expect(res.body).toEqual(expect.objectContaining({ job_id: null, missing: 0 }));
    expect(res.body.message).toContain('fs_timeout');
    // Answered while the share's call still hangs: the request did not wait for it.
    expect(await stillHanging('getattr', rel(stuck))).toBe(true);
  });
});

describe('a root to scan whose share hangs', () => {
  /** Answers a request within FS_CALL_TIMEOUT and a margin, while the share's call hangs yet; the API serves others meanwhile. */
  async function answeredInTime<T>(request: () => Promise<T>, op: string, relative: string): Promise<T> {
    const asked = Date.now();
    const answer = request();
    await hanging(op, relative);
    // Meanwhile the API answers other requests at once.
    const health = await http(quick.baseUrl, 'GET', '/api/v1/jobs?limit=1');
    expect(health.status).toBe(200);
    const result = await answer;
    expect(Date.now() - asked).toBeLessThan(quick.config.fsCallTimeoutMs + 5_000);
    expect(await stillHanging(op, relative)).toBe(true);
    return result;
  }

  it('is answered 503 UNAVAILABLE within FS_CALL_TIMEOUT, for a scan and for a schedule, and starts nothing', async () => {
    await share?.rule('getattr', rel('api-start'), { action: 'hang' });
    const scan = await answeredInTime(() => http<{ code: string; message: string }>(quick.baseUrl, 'POST', '/api/v1/videos/scan', { path: onShare('api-start') }), 'getattr', rel('api-start'));
    expect(scan.status).toBe(503);
    expect(scan.body.code).toBe('UNAVAILABLE');
    expect(scan.body.message).toContain('fs_timeout');
    const schedule = await http<{ code: string }>(quick.baseUrl, 'POST', '/api/v1/schedules', { path: onShare('api-start'), every: '1h' });
    expect(schedule.status).toBe(503);
    expect(schedule.body.code).toBe('UNAVAILABLE');
    const jobs = await http<{ jobs: { path: string }[] }>(quick.baseUrl, 'GET', '/api/v1/jobs?limit=100');
    expect(jobs.body.jobs.filter((j) => j.path === onShare('api-start'))).toEqual([]);
  });

  it("is answered 503 for a webhook's import into it, within FS_CALL_TIMEOUT", async () => {
    await share?.rule('getattr', rel('hook-start/season'), { action: 'hang' });
    const download = {
      eventType: 'Download',
      instanceName: 'Sonarr',
      series: { id: 4, title: 'Show', path: onShare('hook-start') },
      episodeFile: { id: 7, relativePath: `season/${path.basename(fileOf('hook-start/season', 'e1'))}`, path: onShare(fileOf('hook-start/season', 'e1')) },
    };
    const res = await answeredInTime(() => http<{ code: string }>(quick.baseUrl, 'POST', '/api/v1/hooks/arr', download), 'getattr', rel('hook-start/season'));
    expect(res.status).toBe(503);
    expect(res.body.code).toBe('UNAVAILABLE');
  });
});

describe('a cancel lands while a call hangs', () => {
  it('in discovery', async () => {
    for (const folder of ['f1', 'f2', 'f3']) await share?.rule('getattr', rel(fileOf(`cancel-walk/${folder}`, 'a')), { action: 'hang' });
    const id = await start(onShare('cancel-walk'));
    await hanging('getattr', rel(fileOf('cancel-walk/f1', 'a')));
    const end = await cancelAndWait(id, 'discovery');
    expect(end.status).toBe('cancelled');
    expect(await stillHanging('getattr', rel(fileOf('cancel-walk/f1', 'a')))).toBe(true);
  });

  it('in probing', async () => {
    const stuck = fileOf('cancel-probe', 'a');
    await share?.rule('open', rel(stuck), { action: 'hang' }, { excludePid: WORKER_PID });
    const id = await start(onShare('cancel-probe'));
    await hanging('open', rel(stuck));
    const end = await cancelAndWait(id, 'probing');
    expect(end.status).toBe('cancelled');
    expect(await stillHanging('open', rel(stuck))).toBe(true);
  });

  it("in a probe host's check, and the file is not recorded as failed", async () => {
    const stuck = fileOf('cancel-check', 'a');
    await share?.rule('getattr', rel(stuck), { action: 'hang' }, { excludePid: WORKER_PID });
    const id = await start(onShare('cancel-check'));
    await hanging('getattr', rel(stuck));
    const end = await cancelAndWait(id, "a probe host's check");
    expect(end.status).toBe('cancelled');
    // An interruption, not the file's failure: a retry probes it again.
    expect(end.counts.failed).toBe(0);
    expect(errorsOf(end).has(onShare(stuck))).toBe(false);
    expect(await stillHanging('getattr', rel(stuck))).toBe(true);
  });

  it('in the missing-file check', async () => {
    const first = await ended(await start(onShare('cancel-missing')));
    expect(first.status).toBe('completed');
    // Renamed on the share: the check fingerprints the new name to match it to the vanished record.
    const candidate = fileOf('cancel-missing', 'm1').replace('/m1', '/m2');
    await fs.rename(path.join(source, fileOf('cancel-missing', 'm1')), path.join(source, candidate));
    await share?.rule('open', rel(candidate), { action: 'hang' }, { onlyPid: WORKER_PID });
    const id = await start(onShare('cancel-missing'));
    await hanging('open', rel(candidate));
    const end = await cancelAndWait(id, 'the missing-file check');
    expect(end.status).toBe('cancelled');
    expect(await stillHanging('open', rel(candidate))).toBe(true);
  });

  it('in the pictures', async () => {
    let open = (): void => undefined;
    gate = { open: () => open(), wait: new Promise<void>((resolve) => (open = resolve)) };
    try {
      const target = fileOf('cancel-pictures', 'a');
      const id = await start(onShare('cancel-pictures'));
      // Probing waits at the gate: the picture's check is made to hang before it starts.
      await waitFor(() => job(id), (j) => j.phase === 'probing');
      await share?.rule('getattr', rel(target), { action: 'hang' }, { onlyPid: WORKER_PID });
      gate.open();
      await hanging('getattr', rel(target));
      expect((await job(id)).phase).toBe('thumbnails');
      const end = await cancelAndWait(id, 'the pictures');
      expect(end.status).toBe('cancelled');
      expect(await stillHanging('getattr', rel(target))).toBe(true);
    } finally {
      gate.open();
      gate = null;
    }
  });
});

describe('a slow share', () => {
  it('has no more of its files in flight than max_parallel_files asks, across the scan', async () => {
    // Every open answers slowly: without a limit the files of a batch are in flight together.
    for (const name of ['a', 'b', 'c', 'd']) await share?.rule('open', rel(fileOf('gentle', name)), { action: 'delay', ms: 300 }, { excludePid: WORKER_PID });
    const free = await ended(await start(onShare('gentle')));
    expect(free.status).toBe('completed');
    expect(gentle.peak).toBeGreaterThan(1);

    gentle.peak = 0;
    const limited = await ended(await start(onShare('gentle'), { force: true, max_parallel_files: 1 }));
    expect(limited.status).toBe('completed');
    expect(limited.counts.updated + limited.counts.new).toBe(4);
    expect(gentle.peak).toBe(1);
  });

  it('refuses a max_parallel_files that is not a positive integer', async () => {
    const res = await http(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: onShare('gentle'), max_parallel_files: 0 });
    expect(res.status).toBe(400);
  });
});

describe('read errors', () => {
  it('record io_error for a file and for a folder whose listing fails, and mark nothing missing there', async () => {
    const first = await ended(await start(onShare('eio')));
    expect(first.status).toBe('completed');
    expect(first.counts.new).toBe(3);
    const bad = fileOf('eio', 'bad');
    await share?.rule('getattr', rel(bad), { action: 'eio' }, { onlyPid: WORKER_PID });
    await share?.rule('readdir', '/eio/sub', { action: 'eio' });
    const second = await ended(await start(onShare('eio')));
    expect(second.status).toBe('completed');
    const errors = errorsOf(second);
    expect(errors.get(onShare(bad))).toBe('io_error');
    expect(errors.get(onShare('eio/sub'))).toBe('io_error');
    expect(second.counts.missing).toBe(0);
    expect((await videosUnder(onShare('eio'))).map((v) => v.status)).toEqual(['present', 'present', 'present']);
  });
});

describe('a share that is offline', () => {
  it('without its SCAN_ROOT_MARKER file fails root_offline and marks nothing missing', async () => {
    expect((await ended(await start(onShare('offline')))).status).toBe('completed');
    await share?.rule('*', `/offline/${MARKER}`, { action: 'vanish' });
    const end = await ended(await start(onShare('offline')));
    expect(end.status).toBe('failed');
    expect(end.error).toMatch(/^root_offline/);
    expect((await videosUnder(onShare('offline'))).map((v) => v.status)).toEqual(['present']);
  });

  // Last: it unmounts the share.
  it('mounted below the root and gone between two scans marks nothing under it missing', async () => {
    const first = await ended(await start(outer));
    expect(first.status).toBe('completed');
    const known = await videosUnder(onShare(''));
    expect(known.length).toBeGreaterThan(5);
    await share?.unmount();
    const second = await ended(await start(outer));
    expect(second.status).toBe('completed');
    expect(second.counts.missing).toBe(0);
    expect(errorsOf(second).get(path.join(outer, 'share'))).toMatch(/^missing_check_skipped/);
    expect((await videosUnder(onShare(''))).filter((v) => v.status !== 'present')).toEqual([]);
  });
});
