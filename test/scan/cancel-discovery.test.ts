/**
 * Cancel and the scan timeout stop discovery itself: a tree of 1,000 folders
 * and no video, served by a real filesystem whose every folder listing takes
 * 25 ms, as on a slow network share (the FUSE share of test/shares).
 *
 * Why the listings are slowed: from the page cache this machine lists a whole
 * tree in well under a second, less than a cancel needs to reach an activity
 * (its next heartbeat), so a walk that ignores cancellation could not be told
 * from one that obeys it. Slowed, a full walk needs at least 25 s one listing
 * after another, and a walk that stops early shows in the count of folders the
 * filesystem was asked to list, not in a timing. The files themselves add
 * nothing to that proof, so each folder holds one.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { JobBody } from '../../src/scans';
import { mountFaultFs, type FaultFs } from '../shares/fault-fs';
import { http, startStack, waitFor, type Stack } from '../support/stack';

const FOLDERS = 1000;
const LISTING_DELAY_MS = 25;
/** The least time a full walk can take: every folder's listing is delayed, one after another. */
const FULL_WALK_MS = FOLDERS * LISTING_DELAY_MS;
const TERMINAL = ['completed', 'failed', 'cancelled', 'timeout'];
const SCAN_TIMEOUT_MS = 3000;

let work: string;
let share: FaultFs;
/** The tree on the share, and the share's root (a second root holding the same tree). */
let tree: string;
let stack: Stack;
/** A second stack whose scans have a time limit. */
let timed: Stack;

beforeAll(async () => {
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'cancel-discovery-')));
  const source = path.join(work, 'source');
  const folders = Array.from({ length: FOLDERS }, (_, d) => `folder-${String(d).padStart(4, '0')}`);
  for (const folder of folders) {
    await fs.mkdir(path.join(source, 'tree', folder), { recursive: true });
    await fs.writeFile(path.join(source, 'tree', folder, 'notes.txt'), '');
  }
  share = await mountFaultFs(source, path.join(work, 'share'), work, { maxHangSeconds: 60 });
  for (const folder of folders) await share.rule('readdir', `/tree/${folder}`, { action: 'delay', ms: LISTING_DELAY_MS });
  tree = path.join(share.mountpoint, 'tree');
  [stack, timed] = await Promise.all([startStack(), startStack({ SCAN_TIMEOUT: `${SCAN_TIMEOUT_MS}ms` })]);
}, 300_000);

afterAll(async () => {
  await stack?.close();
  await timed?.close();
  await share?.destroy();
  await fs.rm(work, { recursive: true, force: true });
}, 300_000);

/** Folders of the tree listed so far. */
function listed(): Promise<number> {
  return share.calls('readdir', '/tree');
}

/** Waits until no folder has been listed for a while: the walk has stopped (or never will, and the test fails). */
async function walkSettled(): Promise<number> {
  let last = -1;
  return waitFor(
    async () => {
      const seen = await listed();
      const still = seen === last;
      last = seen;
      return { seen, still };
    },
    (state) => state.still,
    FULL_WALK_MS * 2,
    1000,
  ).then((state) => state.seen);
}

describe('discovery of a tree of 1,000 slow folders and no video', () => {
  it('stops when the scan is cancelled: most folders are never listed', async () => {
    const before = await listed();
    const started = await http<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: tree });
    expect(started.status).toBe(202);
    const jobId = started.body.job_id;
    await waitFor(listed, (n) => n - before >= 20, 60_000, 10);

    const cancel = await http<JobBody>(stack.baseUrl, 'POST', `/api/v1/jobs/${jobId}/cancel`);
    expect(cancel.status).toBe(202);
    const job = await waitFor(() => stack.scans.get(jobId), (j) => TERMINAL.includes(j.status), FULL_WALK_MS * 3, 50);
    const walked = (await walkSettled()) - before;
    process.stderr.write(`cancel during discovery: ended ${job.status}, ${walked} of ${FOLDERS + 1} folders listed\n`);

    expect(job.status).toBe('cancelled');
    // The walk stopped early: a walk that ignored the cancel lists every folder.
    expect(walked).toBeLessThan(FOLDERS / 2);
  }, 180_000);

  it('stops when the scan runs past its time limit (SCAN_TIMEOUT)', async () => {
    const before = await listed();
    // The share's root: the same tree, and a root of its own, not held by the scan above.
    const started = await http<{ job_id: string }>(timed.baseUrl, 'POST', '/api/v1/videos/scan', { path: share.mountpoint });
    expect(started.status).toBe(202);
    const job = await waitFor(() => timed.scans.get(started.body.job_id), (j) => TERMINAL.includes(j.status), FULL_WALK_MS * 3, 50);
    const walked = (await walkSettled()) - before;
    process.stderr.write(`timeout during discovery: ended ${job.status} (SCAN_TIMEOUT ${SCAN_TIMEOUT_MS} ms), ${walked} of ${FOLDERS + 1} folders listed\n`);

    expect(job.status).toBe('timeout');
    // The time limit stopped the walk early, as the count of folders listed shows.
    expect(walked).toBeLessThan(FOLDERS / 2);
  }, 180_000);
});
