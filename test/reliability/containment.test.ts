/**
 * The scan root holds on every route a worker takes to a file, against the
 * real stack: a retry of a scan that met links out of its root, a file or a
 * folder swapped for a link between discovery and probing, and a scan started
 * straight through Temporal (no API) with a root outside the worker's
 * SCAN_ROOTS. Every file the prober opens is logged (by an ffprobe wrapper,
 * or by the probe hosts themselves), so the tests see not only the library
 * but what reached the prober. These scans make no pictures (THUMBNAILS
 * off): the picture phase's own containment is hostile-thumbnails.test.ts's.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import pLimit from 'p-limit';
import type { ScanInput } from '../../src/model/types';
import type { JobBody } from '../../src/scans';
import type { scanLibrary } from '../../src/workflows';
import { ensureTestMedia, type TestClip } from '../support/media';
import { http, startStack, waitFor, writeProberWrapper, type Stack, withProbeHook, type StackProber } from '../support/stack';

const realFfprobe = (require('@ffprobe-installer/ffprobe') as { path: string }).path;
const TERMINAL = ['completed', 'failed', 'cancelled', 'timeout'];

let clips: TestClip[];
let work: string;

beforeAll(async () => {
  clips = await ensureTestMedia();
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'containment-')));
});

afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

const videoClips = (): TestClip[] => clips.filter((c) => c.hasVideo);

/** Copies `count` real clips into `folder` as `<prefix>-NN<ext>`. */
async function placeClips(folder: string, prefix: string, count: number): Promise<string[]> {
  await fs.mkdir(folder, { recursive: true });
  const files: string[] = [];
  for (let i = 0; i < count; i += 1) {
    const clip = videoClips()[i % videoClips().length] as TestClip;
    const file = path.join(folder, `${prefix}-${String(i).padStart(2, '0')}${path.extname(clip.file)}`);
    await fs.copyFile(clip.file, file);
    files.push(file);
  }
  return files;
}

/** The files the prober was asked to open, as logged by the wrapper (without the `file:` prefix). */
async function probed(logFile: string): Promise<string[]> {
  const text = await fs.readFile(logFile, 'utf8').catch(() => '');
  return text.split('\n').filter((line) => line.length > 0).map((line) => line.replace(/^file:/, ''));
}

async function startScan(stack: Stack, body: Record<string, unknown>): Promise<string> {
  const res = await http<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', body);
  expect(res.status).toBe(202);
  return res.body.job_id;
}

function waitForEnd(stack: Stack, jobId: string): Promise<JobBody> {
  return waitFor(() => stack.scans.get(jobId), (job) => TERMINAL.includes(job.status), 120_000, 100);
}

async function errorsOf(stack: Stack, jobId: string): Promise<Map<string, string>> {
  return new Map((await stack.library.scanErrors(jobId, 1000, 0)).errors.map((e) => [e.path, e.error]));
}

/** Every path in the library, through the API. */
async function libraryPaths(stack: Stack): Promise<string[]> {
  const res = await http<{ videos: { path: string }[] }>(stack.baseUrl, 'GET', '/api/v1/videos?limit=500');
  expect(res.status).toBe(200);
  return res.body.videos.map((v) => v.path);
}

const insideOf = (root: string) => (file: string): boolean => file.startsWith(root + path.sep);

describe('a retry of a scan that met links out of its root', () => {
  let stack: Stack;
  let logFile: string;

  beforeAll(async () => {
    logFile = path.join(work, 'retry-probes.log');
    const wrapper = await writeProberWrapper(work, { realPath: realFfprobe, logFile });
    stack = await startStack({ FFPROBE_PATH: wrapper.path, PROBE_TIMEOUT_MS: '10000', THUMBNAILS: 'off' });
  });

  afterAll(async () => {
    await stack?.close();
  });

  it('records the links as outside the root again and never probes or walks their targets', async () => {
    const root = path.join(work, 'retry-root');
    const outside = path.join(work, 'retry-outside');
    const ordinary = await placeClips(root, 'ordinary', 4);
    // A link to a real video outside, and a link named like a video to a folder of videos outside.
    const [secret] = await placeClips(outside, 'secret', 1);
    await placeClips(path.join(outside, 'hidden'), 'hidden', 3);
    const fileLink = path.join(root, 'secret-link.mp4');
    const folderLink = path.join(root, 'hidden-folder.mkv');
    await fs.symlink(secret as string, fileLink);
    await fs.symlink(path.join(outside, 'hidden'), folderLink);

    const firstId = await startScan(stack, { path: root });
    const first = await waitForEnd(stack, firstId);
    expect(first.status).toBe('completed');
    const firstErrors = await errorsOf(stack, firstId);
    expect(firstErrors.get(fileLink)).toBe('outside_scan_root');
    expect(firstErrors.get(folderLink)).toBe('outside_scan_root');

    const retried = await http<{ job_id: string }>(stack.baseUrl, 'POST', `/api/v1/jobs/${firstId}/retry`);
    expect(retried.status).toBe(202);
    const retry = await waitForEnd(stack, retried.body.job_id);
    expect(retry.status).toBe('completed');
    const retryErrors = await errorsOf(stack, retry.job_id);
    expect(retryErrors.get(fileLink)).toBe('outside_scan_root');
    expect(retryErrors.get(folderLink)).toBe('outside_scan_root');
    expect(retry.counts.discovered).toBe(2);

    // Nothing outside reached the library, under its own name or the link's.
    const paths = await libraryPaths(stack);
    expect(paths.sort()).toEqual([...ordinary].sort());
    // Nor the prober: it was asked for the ordinary files only, by their real paths.
    const asked = await probed(logFile);
    expect(asked.filter((file) => !insideOf(root)(file) || /secret|hidden/.test(file))).toEqual([]);
    expect(new Set(asked)).toEqual(new Set(ordinary));
  });
});

/**
 * Twelve files, the last two swapped for links out of the root once probing
 * has begun: the file itself, and the folder that holds the other.
 */
async function swapDuringProbing(stack: Stack, name: string, asked: () => Promise<string[]>): Promise<void> {
  const root = path.join(work, `swap-root-${name}`);
  const away = path.join(work, `swap-away-${name}`);
  const early = await placeClips(root, 'a', 10);
  // Files of a folder come before its subfolders: these are probed last.
  const [swappedFile] = await placeClips(root, 'z-swapped', 1);
  const [inner] = await placeClips(path.join(root, 'z-folder'), 'inner', 1);
  const [target] = await placeClips(away, 'target', 1);

  const jobId = await startScan(stack, { path: root });
  await waitFor(asked, (files) => files.length > 0, 60_000, 20);
  const now = await stack.scans.get(jobId);
  expect(now.counts.discovered).toBe(12);
  // The file becomes a link to a video outside; the folder is moved out and a link left in its place.
  await fs.rm(swappedFile as string);
  await fs.symlink(target as string, swappedFile as string);
  await fs.rename(path.join(root, 'z-folder'), path.join(away, 'z-folder'));
  await fs.symlink(path.join(away, 'z-folder'), path.join(root, 'z-folder'));

  const job = await waitForEnd(stack, jobId);
  expect(job.status).toBe('completed');
  const errors = await errorsOf(stack, jobId);
  expect(errors.get(swappedFile as string)).toBe('outside_scan_root');
  expect(errors.get(inner as string)).toBe('outside_scan_root');
  expect((await libraryPaths(stack)).filter(insideOf(root)).sort()).toEqual([...early].sort());
  const probedFiles = await asked();
  expect(probedFiles.filter((file) => !insideOf(root)(file) || /z-swapped|z-folder|target/.test(file))).toEqual([]);
  expect(new Set(probedFiles)).toEqual(new Set(early));
}

describe('a file or folder swapped for a link out of the root between discovery and probing', () => {
  describe('with ffprobe (a wrapper logs what it opens)', () => {
    let stack: Stack;
    let logFile: string;

    beforeAll(async () => {
      logFile = path.join(work, 'swap-probes.log');
      // One probe at a time, each 400 ms longer than ffprobe alone: the files
      // swapped come last, seconds after probing began.
      const wrapper = await writeProberWrapper(work, { realPath: realFfprobe, delayMs: 400, logFile });
      stack = await startStack({ FFPROBE_PATH: wrapper.path, PROBE_TIMEOUT_MS: '10000', PROBE_CONCURRENCY: '1', SCAN_BATCH_SIZE: '4', THUMBNAILS: 'off' });
    });

    afterAll(async () => {
      await stack?.close();
    });

    it('neither probes their targets nor records them', async () => {
      await swapDuringProbing(stack, 'ffprobe', () => probed(logFile));
    });
  });

  describe("with the worker's default prober (the hosts log every path they open)", () => {
    let stack: Stack;
    let logFile: string;

    beforeAll(async () => {
      logFile = path.join(work, 'host-probes.log');
      // One file handed to the prober every 400 ms: the two swapped come last, seconds after probing began.
      const oneAtATime = pLimit(1);
      const slow = (prober: StackProber): StackProber =>
        withProbeHook(prober, () => oneAtATime(() => new Promise((resolve) => setTimeout(resolve, 400))));
      stack = await startStack({ PROBE_TIMEOUT_MS: '10000', PROBE_CONCURRENCY: '1', SCAN_BATCH_SIZE: '4' }, { wrapProber: slow, probeLog: logFile });
    });

    afterAll(async () => {
      await stack?.close();
    });

    it('neither probes their targets nor records them', async () => {
      await swapDuringProbing(stack, 'default', () => probed(logFile));
    });
  });
});

describe('a scan started through Temporal, not the API', () => {
  let stack: Stack;
  let logFile: string;
  let allowed: string;
  let outside: string;

  beforeAll(async () => {
    allowed = path.join(work, 'allowed');
    outside = path.join(work, 'not-allowed');
    await placeClips(allowed, 'fine', 2);
    await placeClips(outside, 'forbidden', 2);
    // A root inside SCAN_ROOTS by its name, outside by its real path.
    await fs.symlink(outside, path.join(allowed, 'escape'));
    logFile = path.join(work, 'direct-probes.log');
    const wrapper = await writeProberWrapper(work, { realPath: realFfprobe, logFile });
    stack = await startStack({ FFPROBE_PATH: wrapper.path, SCAN_ROOTS: allowed, THUMBNAILS: 'off' });
  });

  afterAll(async () => {
    await stack?.close();
  });

  const input = (root: string, scanId: string): ScanInput => ({
    scanId,
    root,
    recursive: true,
    force: false,
    extensions: [],
    retryOf: null,
    batchSize: 10,
    window: 2,
    probeTimeoutMs: 10_000,
    scanTimeoutMs: null,
    maxBatchesPerRun: 400,
  });

  const run = async (root: string): Promise<{ scanId: string; outcome: Promise<unknown> }> => {
    const scanId = `scan-direct-${Math.random().toString(36).slice(2)}`;
    const handle = await stack.client.workflow.start<typeof scanLibrary>('scanLibrary', {
      taskQueue: stack.taskQueue,
      workflowId: scanId,
      args: [input(root, scanId)],
      workflowExecutionTimeout: '2m',
    });
    return { scanId, outcome: handle.result() };
  };

  it.each([
    ['a root outside SCAN_ROOTS', (): string => outside],
    ['a link inside SCAN_ROOTS to a folder outside them', (): string => path.join(allowed, 'escape')],
  ])('fails with InvalidScanRoot for %s, and nothing there is probed or recorded', async (_name, rootOf) => {
    const { scanId, outcome } = await run(rootOf());
    const error = await outcome.then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    // The scan's failure says why.
    expect((error as WorkflowFailedError).cause?.message).toMatch(/outside this worker's SCAN_ROOTS/);
    // The activity failed once, without retries.
    const history = await stack.client.workflow.getHandle(scanId).fetchHistory();
    const failures = (history.events ?? []).flatMap((e) => (e.activityTaskFailedEventAttributes?.failure ? [e.activityTaskFailedEventAttributes.failure] : []));
    expect(failures).toHaveLength(1);
    expect(failures[0]?.applicationFailureInfo?.type).toBe('InvalidScanRoot');
    expect(failures[0]?.applicationFailureInfo?.nonRetryable).toBe(true);
    expect(failures[0]?.message).toMatch(/outside this worker's SCAN_ROOTS/);
    expect((await libraryPaths(stack)).filter(insideOf(outside))).toEqual([]);
    expect((await probed(logFile)).filter((file) => !insideOf(allowed)(file))).toEqual([]);
  });

  it('runs a root inside SCAN_ROOTS as usual', async () => {
    const { outcome } = await run(allowed);
    await expect(outcome).resolves.toMatchObject({ scanned: 2, errors: [] });
    const asked = await probed(logFile);
    expect(asked.length).toBeGreaterThan(0);
    expect(asked.filter((file) => !insideOf(allowed)(file))).toEqual([]);
  });
});
