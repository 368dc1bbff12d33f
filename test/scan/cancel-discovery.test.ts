/**
 * Cancel and the scan timeout stop discovery itself, in a tree of 200,000
 * files none of which is a video (1,000 folders of 200 empty files).
 *
 * Why the folder listings are slowed: from the page cache this machine lists
 * the whole tree in well under a second, less than a cancel needs to reach an
 * activity (its next heartbeat), so a walk that ignores cancellation could
 * not be told from one that obeys it. Each listing of the tree is made to
 * take 25 ms more, as on a network share: a full walk then needs at least
 * 25 s, whatever the machine, and a walk that stops early shows in the count
 * of folders listed, not in a timing.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { JobBody } from '../../src/temporal/scans';
import { http, startStack, waitFor, type Stack } from '../support/stack';

const FOLDERS = 1000;
const FILES_PER_FOLDER = 200;
const LISTING_DELAY_MS = 25;
/** The least time a full walk can take: every folder's listing is delayed, one after another. */
const FULL_WALK_MS = FOLDERS * LISTING_DELAY_MS;
const TERMINAL = ['completed', 'failed', 'cancelled', 'timeout'];

let work: string;
let tree: string;
let stack: Stack;
/** A second stack whose scans have a time limit. */
let timed: Stack;
const SCAN_TIMEOUT_MS = 3000;
/** Folders of the tree listed so far, by anyone (only the worker lists them). */
let listed = 0;

beforeAll(async () => {
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'cancel-discovery-')));
  tree = path.join(work, 'tree');
  for (let d = 0; d < FOLDERS; d += 1) {
    const folder = path.join(tree, `folder-${String(d).padStart(4, '0')}`);
    await fs.mkdir(folder, { recursive: true });
    await Promise.all(Array.from({ length: FILES_PER_FOLDER }, (_, i) => fs.writeFile(path.join(folder, `notes-${i}.txt`), '')));
  }
  const readdir = fs.readdir.bind(fs) as (...args: unknown[]) => Promise<unknown>;
  jest.spyOn(fs, 'readdir').mockImplementation((async (...args: unknown[]) => {
    if (String(args[0]).startsWith(tree)) {
      listed += 1;
      await new Promise((resolve) => setTimeout(resolve, LISTING_DELAY_MS));
    }
    return readdir(...args);
  }) as unknown as typeof fs.readdir);
  stack = await startStack();
  timed = await startStack({ SCAN_TIMEOUT: `${SCAN_TIMEOUT_MS}ms` });
}, 300_000);

afterAll(async () => {
  jest.restoreAllMocks();
  await stack?.close();
  await timed?.close();
  await fs.rm(work, { recursive: true, force: true });
}, 300_000);

/** Waits until no folder has been listed for a while: the walk has stopped (or never will, and the test fails). */
async function walkSettled(): Promise<number> {
  let last = -1;
  return waitFor(
    async () => {
      const seen = listed;
      const still = seen === last;
      last = seen;
      return { seen, still };
    },
    (state) => state.still,
    FULL_WALK_MS * 2,
    1000,
  ).then((state) => state.seen);
}

describe('discovery of a tree of 200,000 files and no video', () => {
  it('stops when the scan is cancelled: most folders are never listed', async () => {
    listed = 0;
    const started = await http<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: tree });
    expect(started.status).toBe(202);
    const jobId = started.body.job_id;
    await waitFor(async () => listed, (n) => n >= 20, 60_000, 10);

    const cancelAt = Date.now();
    const cancel = await http<JobBody>(stack.baseUrl, 'POST', `/api/v1/jobs/${jobId}/cancel`);
    expect(cancel.status).toBe(202);
    const job = await waitFor(() => stack.scans.get(jobId), (j) => TERMINAL.includes(j.status), FULL_WALK_MS * 3, 50);
    const cancelMs = Date.now() - cancelAt;
    const walked = await walkSettled();
    process.stderr.write(`cancel during discovery: ended ${job.status} after ${cancelMs} ms, ${walked} of ${FOLDERS + 1} folders listed\n`);

    expect(job.status).toBe('cancelled');
    // The walk stopped early: a walk that ignored the cancel lists every folder.
    expect(walked).toBeLessThan(FOLDERS / 2);
  }, 180_000);

  it('stops when the scan runs past its time limit (SCAN_TIMEOUT)', async () => {
    listed = 0;
    // The tree's parent as the root: the same 200,000 files, and a root of its own, not held by the scan above.
    const started = await http<{ job_id: string }>(timed.baseUrl, 'POST', '/api/v1/videos/scan', { path: work });
    expect(started.status).toBe(202);
    const startedAt = Date.now();
    const job = await waitFor(() => timed.scans.get(started.body.job_id), (j) => TERMINAL.includes(j.status), FULL_WALK_MS * 3, 50);
    const endedMs = Date.now() - startedAt;
    const walked = await walkSettled();
    process.stderr.write(`timeout during discovery: ended ${job.status} after ${endedMs} ms (SCAN_TIMEOUT ${SCAN_TIMEOUT_MS} ms), ${walked} of ${FOLDERS + 1} folders listed\n`);

    expect(job.status).toBe('timeout');
    // The time limit stopped the walk early, as the count of folders listed shows.
    expect(walked).toBeLessThan(FOLDERS / 2);
  }, 180_000);
});
