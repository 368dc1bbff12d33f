/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The dashboard page in a real browser (Debian's Chromium through
 * playwright-core) against the real stack: a scan's bar fed by its event
 * stream with no polling, scans started elsewhere in the list, the library
 * paged past its first 50 videos, retry of what failed, cancel, pause and
 * resume, the missing-only filter, schedules, the API's errors, the library's
 * pictures (lazy, at a fixed size, the placeholder for a video without one),
 * and a second stack with API_TOKEN for the token on every call (the event
 * stream's and the pictures' included).
 */
import { promises as fs } from 'node:fs';
import { request } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { JobBody } from '../../src/scans';
import { buildLibrary, ensureTestMedia, ensureThumbnailClips, jpegSize, type TestClip } from '../support/media';
import { http, startStack, waitFor, withProbeHook, type Stack } from '../support/stack';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const TERMINAL = ['completed', 'failed', 'cancelled', 'timeout'];

let clips: TestClip[];
let work: string;
let stack: Stack;
let browser: Browser;

beforeAll(async () => {
  clips = await ensureTestMedia();
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'dashboard-')));
  // The in-process prober takes about a millisecond a file: the scan the cancel
  // and pause tests stop are slowed down so that they are still running when the page acts.
  // Four pictures at once: every scan here ends with its pictures, which one at a time took most of this file's time.
  stack = await startStack(
    { SCAN_BATCH_SIZE: '5', PROBE_CONCURRENCY: '2', THUMBNAIL_CONCURRENCY: '4' },
    {
      wrapProber: (prober) =>
        withProbeHook(prober, async (file) => {
          const slowed = ['cancel', 'pause'].some((name) => file.startsWith(path.join(work, name) + path.sep));
          if (slowed) await new Promise((resolve) => setTimeout(resolve, 50));
        }),
    },
  );
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
});

afterAll(async () => {
  await browser?.close();
  await stack?.close();
  await fs.rm(work, { recursive: true, force: true });
});

/** What the page asked the server for, in order: each request as it was sent and as it finished. */
type Traffic = { kind: 'sent' | 'done'; method: string; url: string }[];

async function openDashboard(baseUrl: string): Promise<{ page: Page; traffic: Traffic }> {
  const page = await browser.newPage();
  const problems: string[] = [];
  const traffic: Traffic = [];
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.text().includes('401')) problems.push(message.text());
  });
  page.on('request', (request) => traffic.push({ kind: 'sent', method: request.method(), url: request.url() }));
  page.on('requestfinished', (request) => traffic.push({ kind: 'done', method: request.method(), url: request.url() }));
  page.on('requestfailed', (request) => traffic.push({ kind: 'done', method: request.method(), url: request.url() }));
  await page.goto(`${baseUrl}/`);
  await page.waitForSelector('#scan-form');
  // Content-Security-Policy or script errors would stop the page from working at all.
  expect(problems).toEqual([]);
  return { page, traffic };
}

/** The status of GET `route` sent with exactly these headers (fetch() sets its own Host and, on a conditional request, Cache-Control). */
function statusOf(baseUrl: string, route: string, headers: Record<string, string>): Promise<number> {
  const url = new URL(route, baseUrl);
  return new Promise((resolve, reject) => {
    request({ host: url.hostname, port: url.port, path: url.pathname, headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    })
      .on('error', reject)
      .end();
  });
}

const scanRow = (jobId: string): string => `#scans > li[data-job-id="${jobId}"]`;

async function waitForStatus(page: Page, jobId: string, status: string, timeout = 90_000): Promise<void> {
  await page.waitForFunction(
    ([selector, wanted]) => document.querySelector(`${selector} .scan-status`)?.textContent === wanted,
    [scanRow(jobId), status] as const,
    { timeout },
  );
}

/** The job id in the page's message ("Scan scan-… started."). */
async function startedJobId(page: Page): Promise<string> {
  await page.waitForFunction(() => /scan-[A-Za-z0-9-]+/.test(document.getElementById('message')?.textContent ?? ''));
  const text = (await page.textContent('#message')) ?? '';
  return /(scan-[A-Za-z0-9-]+)/.exec(text)?.[1] as string;
}

async function scanToEnd(folder: string): Promise<JobBody> {
  const started = await http<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: folder });
  expect([200, 202]).toContain(started.status);
  return waitFor(() => stack.scans.get(started.body.job_id), (job) => TERMINAL.includes(job.status), 120_000, 200);
}

/** Records every value a scan's <progress> takes, from inside the page. */
async function recordProgress(page: Page): Promise<void> {
  await page.evaluate(() => {
    const seen: Record<string, number[]> = {};
    (window as unknown as { progressSeen: Record<string, number[]> }).progressSeen = seen;
    new MutationObserver((mutations) => {
      for (const mutation of mutations) {
        const bar = mutation.target as HTMLElement;
        if (!(bar instanceof HTMLProgressElement) || !bar.hasAttribute('value')) continue;
        const jobId = bar.closest('li')?.dataset.jobId ?? '?';
        (seen[jobId] ??= []).push(bar.value);
      }
    }).observe(document.getElementById('scans') as HTMLElement, { subtree: true, attributes: true, attributeFilter: ['value'] });
  });
}

/** What the page shows of each picture of the library, in row order. */
interface ShownPicture {
  src: string;
  kind: string | undefined;
  naturalWidth: number;
  naturalHeight: number;
  box: { width: number; height: number };
  /** Some of it lies inside the viewport. */
  visible: boolean;
}

function shownPictures(page: Page): Promise<ShownPicture[]> {
  return page.$$eval('#videos img.thumb', (imgs) =>
    imgs.map((element) => {
      const img = element as HTMLImageElement;
      const rect = img.getBoundingClientRect();
      return {
        src: img.dataset.src ?? '',
        kind: img.dataset.thumbnail,
        naturalWidth: img.complete ? img.naturalWidth : 0,
        naturalHeight: img.complete ? img.naturalHeight : 0,
        box: { width: rect.width, height: rect.height },
        visible: rect.bottom > 0 && rect.top < window.innerHeight,
      };
    }),
  );
}

/** Waits until every picture inside the viewport has been drawn. */
async function visiblePicturesLoaded(page: Page): Promise<void> {
  await page.waitForFunction(
    () => {
      const visible = [...document.querySelectorAll<HTMLImageElement>('#videos img.thumb')].filter((img) => {
        const rect = img.getBoundingClientRect();
        return rect.bottom > 0 && rect.top < window.innerHeight;
      });
      return visible.length > 0 && visible.every((img) => img.dataset.thumbnail !== undefined && img.complete && img.naturalWidth > 0);
    },
    undefined,
    { timeout: 30_000 },
  );
}

/** The width and height of the JPEG the API serves at `src`, and which kind it is. */
async function served(baseUrl: string, src: string, headers: Record<string, string> = {}): Promise<{ width: number; height: number; kind: string | null }> {
  const res = await fetch(`${baseUrl}${src}`, { headers });
  expect(res.status).toBe(200);
  return { ...jpegSize(Buffer.from(await res.arrayBuffer())), kind: res.headers.get('x-thumbnail') };
}

describe('dashboard', () => {
  it('fills a started scan’s bar from its event stream to 1, polling nothing while the stream is open', async () => {
    const folder = path.join(work, 'full');
    const files = await buildLibrary(folder, 60, clips);
    // A name that is HTML: it must show as text, never run.
    const hostile = path.join(folder, '<img src=x onerror="window.pwned=1">.mp4');
    await fs.link(files[0] as string, hostile);
    const { page, traffic } = await openDashboard(stack.baseUrl);
    await recordProgress(page);
    // The feed's opening reads the list once (what started before it opened): let that be done first.
    await page.waitForFunction(() => document.body.dataset.feed === 'open', undefined, { timeout: 60_000 });

    await page.fill('#scan-path', folder);
    await page.click('#scan-start');
    const jobId = await startedJobId(page);
    expect(await page.textContent('#message')).toBe(`Scan ${jobId} started.`);
    await waitForStatus(page, jobId, 'completed');

    const row = scanRow(jobId);
    expect(await page.$eval(`${row} .scan-progress`, (el) => (el as HTMLProgressElement).value)).toBe(1);
    const total = files.length + 1;
    expect(await page.textContent(`${row} .scan-counts`)).toBe(`${total} of ${total} done: ${total} new, 0 updated, 0 unchanged, 0 failed`);
    expect(await page.isHidden(`${row} .scan-cancel`)).toBe(true);
    expect(await page.getAttribute(`${row} .scan-link`, 'href')).toMatch(/\/namespaces\/default\/workflows\/scan-/);
    const seen = await page.evaluate((id) => (window as unknown as { progressSeen: Record<string, number[]> }).progressSeen[id] ?? [], jobId);
    expect(seen[seen.length - 1]).toBe(1);
    expect([...seen].sort((a, b) => a - b)).toEqual(seen);

    // The bar came from one event stream: the page never asked for the job
    // itself, and sent nothing about scans while its stream was open (the
    // library is read again as the scan records videos, with their pictures).
    const api = traffic.filter((t) => new URL(t.url).pathname.startsWith('/api/') && !new URL(t.url).pathname.startsWith('/api/v1/videos'));
    expect(api.filter((t) => new URL(t.url).pathname === `/api/v1/jobs/${jobId}`)).toEqual([]);
    const eventsPath = `/api/v1/jobs/${jobId}/events`;
    const opened = api.findIndex((t) => t.kind === 'sent' && new URL(t.url).pathname === eventsPath);
    const closed = api.findIndex((t) => t.kind === 'done' && new URL(t.url).pathname === eventsPath);
    expect(opened).toBeGreaterThanOrEqual(0);
    expect(closed).toBeGreaterThan(opened);
    expect(api.slice(opened + 1, closed).filter((t) => t.kind === 'sent')).toEqual([]);

    // The library is refreshed when the scan ends, file names as plain text.
    await page.fill('#search-q', 'onerror');
    await page.press('#search-q', 'Enter');
    await page.waitForFunction(() => document.querySelectorAll('#videos tr').length === 1);
    expect(await page.textContent('#videos tr td')).toBe(hostile);
    // The one picture is the video's own, not an element made from its name.
    expect(await page.$$eval('#videos img', (imgs) => imgs.map((img) => img.className))).toEqual(['thumb']);
    expect(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned)).toBeUndefined();
    await page.close();
  });

  it('lists a scan started elsewhere and follows it to its end', async () => {
    const { page, traffic } = await openDashboard(stack.baseUrl);
    // The list has loaded, with the scans so far.
    await page.waitForFunction(() => document.querySelectorAll('#scans > li').length > 0);
    const folder = path.join(work, 'elsewhere');
    await buildLibrary(folder, 30, clips);
    // Started as the CLI starts one: over HTTP, not from this page.
    const started = await http<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: folder });
    expect(started.status).toBe(202);
    const jobId = started.body.job_id;
    await page.waitForSelector(scanRow(jobId), { timeout: 60_000 });
    expect(await page.textContent(`${scanRow(jobId)} .scan-path`)).toBe(folder);
    await waitForStatus(page, jobId, 'completed');
    expect(await page.textContent(`${scanRow(jobId)} .scan-counts`)).toBe('30 of 30 done: 30 new, 0 updated, 0 unchanged, 0 failed');
    // Finished scans come after running ones, newest first.
    const order = await page.$$eval('#scans > li', (items) => items.map((li) => [li.dataset.status, li.querySelector('.scan-meta')?.textContent]));
    const firstEnded = order.findIndex(([status]) => TERMINAL.includes(status ?? ''));
    expect(order.slice(firstEnded).every(([status]) => TERMINAL.includes(status ?? ''))).toBe(true);
    // And it was never polled for on its own.
    expect(traffic.filter((t) => new URL(t.url).pathname === `/api/v1/jobs/${jobId}`)).toEqual([]);
    await page.close();
  });

  it('pages through the library past its first 50 videos', async () => {
    const folder = path.join(work, 'paged-library');
    const files = await buildLibrary(folder, 120, clips);
    const job = await scanToEnd(folder);
    expect(job.status).toBe('completed');
    const { page } = await openDashboard(stack.baseUrl);
    const paths = (): Promise<string[]> => page.$$eval('#videos tr', (rows) => rows.map((r) => r.firstElementChild?.textContent ?? ''));

    // The whole library: page 2 is what the API has past the first 50.
    await page.waitForFunction(() => document.querySelectorAll('#videos tr').length === 50);
    const all = await http<{ videos: { path: string }[]; total: number }>(stack.baseUrl, 'GET', '/api/v1/videos?limit=50&offset=50');
    expect(await page.isDisabled('#library-prev')).toBe(true);
    await page.focus('#library-next');
    await page.keyboard.press('Enter');
    await page.waitForFunction((first) => document.querySelector('#videos tr td')?.textContent === first, all.body.videos[0]?.path);
    expect(await paths()).toEqual(all.body.videos.map((v) => v.path));
    expect(await page.textContent('#library-range')).toBe(`Videos 51–${50 + all.body.videos.length} of ${all.body.total}`);

    // A search pages too, from its own first page, to its last.
    await page.fill('#search-q', 'paged-library');
    await page.click('#search-form button');
    await page.waitForFunction(() => document.getElementById('library-range')?.textContent === 'Videos 1–50 of 120');
    const seen = await paths();
    for (const range of ['Videos 51–100 of 120', 'Videos 101–120 of 120']) {
      await page.click('#library-next');
      await page.waitForFunction((wanted) => document.getElementById('library-range')?.textContent === wanted, range);
      seen.push(...(await paths()));
    }
    expect(await page.isDisabled('#library-next')).toBe(true);
    expect([...seen].sort()).toEqual([...files].sort());
    await page.click('#library-prev');
    await page.waitForFunction(() => document.getElementById('library-range')?.textContent === 'Videos 51–100 of 120');
    await page.close();
  });

  it('retries what a scan failed on, and the retry probes only that', async () => {
    const folder = path.join(work, 'retry');
    await buildLibrary(folder, 20, clips);
    const broken = path.join(folder, 'broken.mp4');
    await fs.writeFile(broken, 'this is not a video');
    const { page } = await openDashboard(stack.baseUrl);
    await page.fill('#scan-path', folder);
    await page.press('#scan-path', 'Enter');
    const first = await startedJobId(page);
    await waitForStatus(page, first, 'completed');
    const row = scanRow(first);
    expect(await page.textContent(`${row} .scan-counts`)).toBe('21 of 21 done: 20 new, 0 updated, 0 unchanged, 1 failed');
    expect(await page.textContent(`${row} .scan-errors li`)).toBe(`${broken}: not_a_media_file`);
    expect(await page.getAttribute(`${row} .scan-retry`, 'aria-label')).toBe(`Retry the failed files of the scan of ${folder}`);

    // Repaired since: the retry started from the page probes that one file again, and nothing else.
    await fs.copyFile(clips.find((c) => c.hasVideo)!.file, broken);
    await page.click(`${row} .scan-retry`);
    await page.waitForFunction((id) => (document.getElementById('message')?.textContent ?? '').endsWith(`of scan ${id} started.`), first);
    const retryId = /^Retry (scan-[A-Za-z0-9-]+) of/.exec((await page.textContent('#message')) ?? '')?.[1] as string;
    expect(retryId).not.toBe(first);
    await waitForStatus(page, retryId, 'completed');
    expect(await page.textContent(`${scanRow(retryId)} .scan-meta`)).toContain(`retry of ${first}`);
    const retried = await stack.scans.get(retryId);
    expect(retried.retry_of).toBe(first);
    expect(retried.counts.probed).toBe(1);
    expect(retried.result).toMatchObject({ scanned: 1, new: 1, errors: [] });
    expect(await page.isHidden(`${scanRow(retryId)} .scan-retry`)).toBe(true);
    await page.close();
  });

  it('cancels a running scan from the page', async () => {
    const folder = path.join(work, 'cancel');
    await buildLibrary(folder, 300, clips);
    const { page } = await openDashboard(stack.baseUrl);
    await page.fill('#scan-path', folder);
    await page.click('#scan-start');
    const jobId = await startedJobId(page);
    const row = scanRow(jobId);
    // The row appears once the list has heard of the scan.
    await page.waitForFunction(
      (selector) => Number((document.querySelector(`${selector} .scan-progress`) as HTMLProgressElement | null)?.value ?? 0) > 0.05,
      row,
      { timeout: 60_000 },
    );
    if (process.env.DASHBOARD_SCREENSHOT) await page.screenshot({ path: process.env.DASHBOARD_SCREENSHOT, fullPage: true });
    await page.click(`${row} .scan-cancel`);
    await waitForStatus(page, jobId, 'cancelled', 30_000);
    const progress = await page.$eval(`${row} .scan-progress`, (el) => (el as HTMLProgressElement).value);
    expect(progress).toBeGreaterThan(0);
    expect(progress).toBeLessThan(1);
    expect(await page.isVisible(`${row} .scan-retry`)).toBe(true);
    await page.close();
  });

  it('pauses a running scan from the page and resumes it to its end', async () => {
    const folder = path.join(work, 'pause');
    const files = await buildLibrary(folder, 300, clips);
    const { page, traffic } = await openDashboard(stack.baseUrl);
    await page.fill('#scan-path', folder);
    await page.click('#scan-start');
    const jobId = await startedJobId(page);
    const row = scanRow(jobId);
    await page.waitForFunction(
      (selector) => Number((document.querySelector(`${selector} .scan-progress`) as HTMLProgressElement | null)?.value ?? 0) > 0.05,
      row,
      { timeout: 60_000 },
    );
    expect(await page.isHidden(`${row} .scan-resume`)).toBe(true);
    expect(await page.getAttribute(`${row} .scan-pause`, 'aria-label')).toBe(`Pause the scan of ${folder}`);
    // From the keyboard, as a button is used without a mouse.
    await page.focus(`${row} .scan-pause`);
    await page.keyboard.press('Enter');
    await waitForStatus(page, jobId, 'paused', 60_000);
    expect(await page.textContent('#message')).toBe(`Paused scan ${jobId}.`);
    expect((await stack.scans.get(jobId)).status).toBe('paused');
    if (process.env.DASHBOARD_SCREENSHOT) await page.screenshot({ path: process.env.DASHBOARD_SCREENSHOT.replace(/\.png$/, '-paused.png'), fullPage: true });
    expect(await page.isHidden(`${row} .scan-pause`)).toBe(true);
    expect(await page.getAttribute(`${row} .scan-resume`, 'aria-label')).toBe(`Resume the scan of ${folder}`);
    // Still followed through its stream while paused: no request for the job itself.
    expect(await page.textContent(`${row} .scan-live`)).toBe('live');
    const paused = await page.$eval(`${row} .scan-progress`, (el) => (el as HTMLProgressElement).value);
    expect(paused).toBeLessThan(1);

    await page.click(`${row} .scan-resume`);
    await waitForStatus(page, jobId, 'completed', 120_000);
    expect(await page.textContent('#message')).toBe(`Resumed scan ${jobId}.`);
    expect(await page.textContent(`${row} .scan-counts`)).toBe(`${files.length} of ${files.length} done: ${files.length} new, 0 updated, 0 unchanged, 0 failed`);
    const done = await stack.scans.get(jobId);
    expect(done.status).toBe('completed');
    expect(done.counts.probed).toBe(files.length);
    expect(traffic.filter((t) => new URL(t.url).pathname === `/api/v1/jobs/${jobId}`)).toEqual([]);

    // A pause the API refuses (the scan has ended) shows the API's code and message:
    // the hidden button is shown again to click it, as a stale page would.
    expect(await page.isHidden(`${row} .scan-pause`)).toBe(true);
    await page.$eval(`${row} .scan-pause`, (button) => ((button as HTMLButtonElement).hidden = false));
    await page.click(`${row} .scan-pause`);
    await page.waitForFunction(() => document.getElementById('message')?.classList.contains('error'));
    expect(await page.textContent('#message')).toMatch(/^ALREADY_TERMINAL: \S/);
    await page.close();
  });

  it('lists only the videos whose files are gone, with when they went missing', async () => {
    const folder = path.join(work, 'missing');
    const files = await buildLibrary(folder, 4, clips);
    expect((await scanToEnd(folder)).status).toBe('completed');
    const gone = files[1] as string;
    await fs.rm(gone);
    const rescan = await scanToEnd(folder);
    expect(rescan.counts.missing).toBe(1);
    const fromApi = await http<{ videos: { path: string; missing_since: string }[]; total: number }>(
      stack.baseUrl,
      'GET',
      '/api/v1/videos?status=missing&limit=50&offset=0',
    );

    const { page, traffic } = await openDashboard(stack.baseUrl);
    await page.waitForFunction(() => document.querySelectorAll('#videos tr').length > 1);
    // The rescan's row says how many files it found gone.
    await page.waitForSelector(scanRow(rescan.job_id));
    expect(await page.textContent(`${scanRow(rescan.job_id)} .scan-counts`)).toBe('3 of 3 done: 0 new, 0 updated, 3 unchanged, 0 failed, 1 missing');
    await page.check('#library-missing');
    await page.waitForFunction(() => / missing$/.test(document.getElementById('search-total')?.textContent ?? ''));
    expect(await page.textContent('#search-total')).toBe(`${fromApi.body.total} ${fromApi.body.total === 1 ? 'video' : 'videos'} missing`);
    const rows = await page.$$eval('#videos tr', (trs) =>
      trs.map((tr) => ({ path: tr.firstElementChild?.textContent, status: tr.lastElementChild?.textContent, since: tr.querySelector('time')?.getAttribute('datetime') })),
    );
    expect(rows.map((r) => r.path)).toEqual(fromApi.body.videos.map((v) => v.path));
    if (process.env.DASHBOARD_SCREENSHOT) await page.screenshot({ path: process.env.DASHBOARD_SCREENSHOT.replace(/\.png$/, '-missing.png'), fullPage: true });
    const mine = rows.find((r) => r.path === gone);
    expect(mine?.status).toMatch(/^missing since \S/);
    expect(mine?.since).toBe(fromApi.body.videos.find((v) => v.path === gone)?.missing_since);
    expect(rows.some((r) => files.filter((f) => f !== gone).includes(r.path ?? ''))).toBe(false);
    expect(traffic.some((t) => t.kind === 'sent' && new URL(t.url).search === '?status=missing&limit=50&offset=0')).toBe(true);

    // Unchecked, the whole library again, the missing one among the present ones.
    await page.uncheck('#library-missing');
    await page.waitForFunction(() => !/ missing$/.test(document.getElementById('search-total')?.textContent ?? ''));
    await page.close();
  });

  it('creates a schedule, runs it now, pauses, unpauses and deletes it', async () => {
    const folder = path.join(work, 'scheduled');
    await buildLibrary(folder, 5, clips);
    const { page } = await openDashboard(stack.baseUrl);
    await page.fill('#schedule-path', folder);
    await page.fill('#schedule-every', '1h');
    await page.press('#schedule-every', 'Enter');
    await page.waitForFunction(() => /^Schedule \S+ created\.$/.test(document.getElementById('schedules-message')?.textContent ?? ''));
    const scheduleId = /^Schedule (\S+) created\.$/.exec((await page.textContent('#schedules-message')) ?? '')?.[1] as string;
    const item = `#schedules > li[data-schedule-id="${scheduleId}"]`;
    await page.waitForSelector(item);
    expect(await page.textContent(`${item} .schedule-path`)).toBe(folder);
    expect(await page.textContent(`${item} .schedule-state`)).toBe('active');
    expect(await page.textContent(`${item} .schedule-meta`)).toContain('every 1h');
    expect(await page.getAttribute(`${item} .schedule-trigger`, 'aria-label')).toBe(`Run the schedule of ${folder} now`);
    expect(await page.getAttribute(`${item} .schedule-delete`, 'aria-label')).toBe(`Delete the schedule of ${folder}`);
    const listed = await http<{ schedules: { schedule_id: string; path: string; every: string; paused: boolean }[] }>(stack.baseUrl, 'GET', '/api/v1/schedules');
    expect(listed.body.schedules.find((s) => s.schedule_id === scheduleId)).toMatchObject({ path: folder, every: '1h', paused: false });

    // Run now: a scan of the folder, followed in the scan list to its end.
    await page.click(`${item} .schedule-trigger`);
    await page.waitForFunction(() => /^Scan scan-\S+ started by schedule/.test(document.getElementById('schedules-message')?.textContent ?? ''));
    const jobId = /^Scan (scan-\S+) started/.exec((await page.textContent('#schedules-message')) ?? '')?.[1] as string;
    await waitForStatus(page, jobId, 'completed', 120_000);
    expect(await page.textContent(`${scanRow(jobId)} .scan-path`)).toBe(folder);
    expect((await stack.scans.get(jobId)).counts.new).toBe(5);

    await page.click(`${item} .schedule-pause`);
    await page.waitForFunction((selector) => document.querySelector(`${selector} .schedule-state`)?.textContent === 'paused', item);
    expect((await http<{ paused: boolean }>(stack.baseUrl, 'GET', `/api/v1/schedules/${scheduleId}`)).body.paused).toBe(true);
    if (process.env.DASHBOARD_SCREENSHOT) await page.screenshot({ path: process.env.DASHBOARD_SCREENSHOT.replace(/\.png$/, '-schedules.png'), fullPage: true });
    await page.click(`${item} .schedule-unpause`);
    await page.waitForFunction((selector) => document.querySelector(`${selector} .schedule-state`)?.textContent === 'active', item);
    expect((await http<{ paused: boolean }>(stack.baseUrl, 'GET', `/api/v1/schedules/${scheduleId}`)).body.paused).toBe(false);

    await page.click(`${item} .schedule-delete`);
    await page.waitForFunction((id) => document.getElementById('schedules-message')?.textContent === `Schedule ${id} deleted.`, scheduleId);
    await page.waitForFunction((selector) => document.querySelector(selector) === null, item);
    const after = await http<{ schedules: { schedule_id: string }[] }>(stack.baseUrl, 'GET', '/api/v1/schedules');
    expect(after.body.schedules.map((s) => s.schedule_id)).not.toContain(scheduleId);

    // The API's refusal shows as its message.
    await page.fill('#schedule-path', folder);
    await page.fill('#schedule-every', 'soon');
    await page.click('#schedule-create');
    await page.waitForFunction(() => document.getElementById('schedules-message')?.classList.contains('error'));
    expect(await page.textContent('#schedules-message')).toMatch(/^INVALID_REQUEST: every/);
    await page.close();
  });

  it("shows each video's picture at a fixed size, asking only for those scrolled near, the placeholder for a video without one", async () => {
    const folder = path.join(work, 'pictures');
    await buildLibrary(folder, 40, clips);
    // Its header probes, its frames are cut off: it is in the library without a picture.
    const anamorphic = (await ensureThumbnailClips()).find((c) => c.name === 'h264-anamorphic') as TestClip;
    const corrupt = path.join(folder, 'corrupt.mkv');
    await fs.writeFile(corrupt, (await fs.readFile(anamorphic.file)).subarray(0, 1200));
    const job = await scanToEnd(folder);
    expect(job.status).toBe('completed');
    expect(job.counts.thumbnails).toBe(40);

    const { page, traffic } = await openDashboard(stack.baseUrl);
    await page.setViewportSize({ width: 1280, height: 720 });
    await page.fill('#search-q', 'pictures');
    await page.press('#search-q', 'Enter');
    await page.waitForFunction(() => document.getElementById('search-total')?.textContent === '41 videos match');
    await page.$eval('#library', (section) => section.scrollIntoView());
    await visiblePicturesLoaded(page);
    const asked = (src: string): boolean => traffic.some((t) => t.kind === 'sent' && new URL(t.url).pathname === src);

    // Every picture in view is drawn at the size the API serves it; every box is the same size, drawn or not.
    const first = await shownPictures(page);
    expect(first).toHaveLength(41);
    expect(new Set(first.map((p) => `${p.box.width}x${p.box.height}`))).toEqual(new Set(['160x90']));
    const inView = first.filter((p) => p.visible);
    expect(inView.length).toBeGreaterThan(0);
    for (const picture of inView) {
      const jpeg = await served(stack.baseUrl, picture.src);
      expect({ src: picture.src, kind: picture.kind, width: picture.naturalWidth, height: picture.naturalHeight })
        .toEqual({ src: picture.src, kind: jpeg.kind, width: jpeg.width, height: jpeg.height });
      expect(picture.naturalWidth).toBe(320);
    }
    // Lazy: the pictures well below the viewport were not asked for.
    const below = await page.$$eval('#videos img.thumb', (imgs) =>
      imgs.filter((img) => img.getBoundingClientRect().top > window.innerHeight + 600).map((img) => (img as HTMLImageElement).dataset.src ?? ''),
    );
    expect(below.length).toBeGreaterThan(10);
    expect(below.filter(asked)).toEqual([]);

    // Scrolled to the end, the last ones are asked for and drawn; the rows kept their height.
    const heightBefore = await page.$eval('#videos', (tbody) => tbody.getBoundingClientRect().height);
    await page.$eval('#videos tr:last-child', (tr) => tr.scrollIntoView());
    await visiblePicturesLoaded(page);
    const last = below[below.length - 1] as string;
    expect(asked(last)).toBe(true);
    expect(await page.$eval('#videos', (tbody) => tbody.getBoundingClientRect().height)).toBe(heightBefore);

    // The video without a picture shows the API's placeholder.
    const corruptRow = await page.$$eval('#videos tr', (rows, file) => rows.findIndex((r) => r.firstElementChild?.textContent === file), corrupt);
    expect(corruptRow).toBeGreaterThanOrEqual(0);
    await page.$eval(`#videos tr:nth-child(${corruptRow + 1})`, (tr) => tr.scrollIntoView());
    await visiblePicturesLoaded(page);
    const placeholder = (await shownPictures(page))[corruptRow] as ShownPicture;
    const jpeg = await served(stack.baseUrl, placeholder.src);
    expect(jpeg.kind).toBe('placeholder');
    expect(placeholder).toMatchObject({ kind: 'placeholder', naturalWidth: jpeg.width, naturalHeight: jpeg.height });
    const drawn = (await shownPictures(page)).filter((p) => p.kind !== undefined);
    expect(drawn.filter((p) => p.kind === 'placeholder').map((p) => p.src)).toEqual([placeholder.src]);
    if (process.env.DASHBOARD_SCREENSHOT) await page.screenshot({ path: process.env.DASHBOARD_SCREENSHOT.replace(/\.png$/, '-pictures.png') });
    await page.close();
  });

  it('gives every control a name a screen reader can say', async () => {
    const { page } = await openDashboard(stack.baseUrl);
    // Scans and videos from the tests above fill the page.
    await page.waitForFunction(() => document.querySelectorAll('#scans > li').length > 0 && document.querySelectorAll('#videos tr').length > 0);
    const unnamed = await page.$$eval('input, button, progress, select, textarea, a', (controls) =>
      controls
        .filter((el) => (el as HTMLElement).offsetParent !== null)
        .filter((el) => {
          const labels = 'labels' in el ? [...((el as HTMLInputElement).labels ?? [])].map((l) => l.textContent?.trim() ?? '').join('') : '';
          const own = el.tagName === 'BUTTON' || el.tagName === 'A' ? (el.textContent?.trim() ?? '') : '';
          return !(el.getAttribute('aria-label') || labels || own);
        })
        .map((el) => el.outerHTML.slice(0, 120)),
    );
    expect(unnamed).toEqual([]);
    await page.close();
  });

  it('shows the API error for a folder that does not exist', async () => {
    const { page } = await openDashboard(stack.baseUrl);
    await page.fill('#scan-path', path.join(work, 'no-such-folder'));
    await page.click('#scan-start');
    await page.waitForFunction(() => document.getElementById('message')?.classList.contains('error'));
    expect(await page.textContent('#message')).toMatch(/^INVALID_PATH: /);
    await page.close();
  });
});

describe('dashboard files and policy', () => {
  it('serves the page, its stylesheet and its script modules for revalidation on every load, behind the Host check', async () => {
    const port = new URL(stack.baseUrl).port;
    const files = [
      ['/', 'text/html'],
      ['/dashboard/dashboard.css', 'text/css'],
      ...['dashboard', 'page', 'scans', 'library', 'schedules'].map((module) => [`/dashboard/${module}.js`, 'text/javascript']),
    ];
    for (const [route = '', type = ''] of files) {
      const res = await fetch(`${stack.baseUrl}${route}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain(type);
      expect(res.headers.get('cache-control')).toBe('no-cache');
      const etag = res.headers.get('etag') as string;
      expect(etag).toBeTruthy();
      expect(await statusOf(stack.baseUrl, route, { 'if-none-match': etag })).toBe(304);
      expect(await statusOf(stack.baseUrl, route, { host: `rebind.attacker.example:${port}` })).toBe(403);
    }
    // Only the page's own files: nothing else under the folder, and no way out of it.
    for (const route of ['/dashboard.js', '/tsconfig.dashboard.json', '/dashboard/..%2fpackage.json', '/dashboard/%2e%2e/package.json', '/dashboard/dashboard.js.map']) {
      expect((await fetch(`${stack.baseUrl}${route}`)).status).not.toBe(200);
    }
  });

  it('runs under a Content-Security-Policy that allows nothing inline, breaking none of it', async () => {
    const folder = path.join(work, 'policy');
    await buildLibrary(folder, 3, clips);
    await scanToEnd(folder);
    const page = await browser.newPage();
    const refused: string[] = [];
    page.on('console', (message) => {
      if (/Content.Security.Policy/i.test(message.text())) refused.push(message.text());
    });
    await page.addInitScript(() => {
      const seen: string[] = [];
      (window as unknown as { violations: string[] }).violations = seen;
      document.addEventListener('securitypolicyviolation', (event) => seen.push(`${event.effectiveDirective} ${event.blockedURI}`));
    });
    const response = await page.goto(`${stack.baseUrl}/`);
    const policy = response?.headers()['content-security-policy'] ?? '';
    expect(policy).not.toMatch(/unsafe-/);
    const directives = new Map(policy.split(';').map((directive) => {
      const [name = '', ...values] = directive.trim().split(/\s+/);
      return [name, values.join(' ')];
    }));
    expect(directives.get('script-src')).toBe("'self'");
    expect(directives.get('style-src')).toBe("'self'");
    expect(directives.get('default-src')).toBe("'none'");

    // The script ran (the feed opened, the library was read, its pictures drawn through blob: URLs),
    // and the stylesheet applied (the page's width is dashboard.css's).
    await page.waitForFunction(() => document.body.dataset.feed === 'open', undefined, { timeout: 60_000 });
    await page.fill('#search-q', folder);
    await page.press('#search-q', 'Enter');
    await page.waitForFunction(() => document.getElementById('search-total')?.textContent === '3 videos match');
    await page.$eval('#library', (section) => section.scrollIntoView());
    await visiblePicturesLoaded(page);
    expect(await page.$$eval('#videos img.thumb', (imgs) => imgs.map((img) => (img as HTMLImageElement).src.startsWith('blob:')))).toEqual([true, true, true]);
    expect(await page.evaluate(() => getComputedStyle(document.body).maxWidth)).toBe('1024px');

    expect(await page.evaluate(() => (window as unknown as { violations: string[] }).violations)).toEqual([]);
    expect(refused).toEqual([]);
    await page.close();
  });
});

describe('dashboard with API_TOKEN', () => {
  let guarded: Stack;
  beforeAll(async () => {
    guarded = await startStack({ API_TOKEN: 'dashboard-secret', SCAN_BATCH_SIZE: '5' });
  });
  afterAll(async () => {
    await guarded?.close();
  });

  it('refuses without the token and scans with it, its event stream included', async () => {
    const folder = path.join(work, 'guarded');
    await buildLibrary(folder, 3, clips);
    const { page, traffic } = await openDashboard(guarded.baseUrl);
    await page.fill('#scan-path', folder);
    await page.click('#scan-start');
    await page.waitForFunction(() => document.getElementById('message')?.classList.contains('error'));
    expect(await page.textContent('#message')).toMatch(/^UNAUTHORIZED: /);

    await page.fill('#token', 'dashboard-secret');
    await page.dispatchEvent('#token', 'change');
    await page.click('#scan-start');
    const jobId = await startedJobId(page);
    await waitForStatus(page, jobId, 'completed');
    expect(traffic.some((t) => new URL(t.url).pathname === `/api/v1/jobs/${jobId}/events`)).toBe(true);
    expect(traffic.filter((t) => new URL(t.url).pathname === `/api/v1/jobs/${jobId}`)).toEqual([]);
    await page.waitForFunction(() => document.getElementById('search-total')?.textContent === '3 videos');

    // The pictures came with the token too, and the token is in no URL.
    await page.$eval('#library', (section) => section.scrollIntoView());
    await visiblePicturesLoaded(page);
    const pictures = await shownPictures(page);
    expect(pictures).toHaveLength(3);
    for (const picture of pictures.filter((p) => p.visible)) {
      const jpeg = await served(guarded.baseUrl, picture.src, { authorization: 'Bearer dashboard-secret' });
      expect({ kind: picture.kind, width: picture.naturalWidth }).toEqual({ kind: 'video', width: jpeg.width });
    }
    expect((await fetch(`${guarded.baseUrl}${pictures[0]?.src}`)).status).toBe(401);
    expect(traffic.filter((t) => t.url.includes('dashboard-secret'))).toEqual([]);
    await page.close();
  });
});
