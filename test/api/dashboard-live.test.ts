/// <reference lib="dom" />
/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core)
 * against the real stack with API_TOKEN: a scan started elsewhere shows up
 * while the page follows another scan's stream (it learns of it from the
 * /ws activity feed, opened with the token as its subprotocol), and the
 * library shows a scan's videos as they are recorded, before the scan ends,
 * beside the phase the scan is in.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page, type WebSocket as PageSocket } from 'playwright-core';
import type { JobBody } from '../../src/scans';
import { buildLibrary, ensureTestMedia, type TestClip } from '../support/media';
import { http, startStack, waitFor, withProbeHook, type Stack } from '../support/stack';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const TOKEN = 'dashboard-live-token';
const auth = { authorization: `Bearer ${TOKEN}` };
/** Files of a `gated` folder past the first batch wait here while it is closed. */
const FIRST_BATCH = 5;

let clips: TestClip[];
let work: string;
let stack: Stack;
let browser: Browser;
let openGate: () => void = () => undefined;
const gate = new Promise<void>((resolve) => (openGate = resolve));

beforeAll(async () => {
  clips = await ensureTestMedia();
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'dashboard-live-')));
  stack = await startStack(
    { API_TOKEN: TOKEN, SCAN_BATCH_SIZE: String(FIRST_BATCH), PROBE_CONCURRENCY: '2' },
    {
      wrapProber: (prober) =>
        withProbeHook(prober, async (file, options) => {
          const held = file.startsWith(path.join(work, 'held') + path.sep);
          const gated = file.startsWith(path.join(work, 'gated') + path.sep) && Number(/video-(\d+)/.exec(file)?.[1] ?? 0) >= FIRST_BATCH;
          if (!held && !gated) return;
          // Held files wait for their scan's cancel; gated ones for the gate, or a cancel.
          await new Promise<void>((resolve, reject) => {
            options.signal?.addEventListener('abort', () => reject(options.signal?.reason), { once: true });
            if (gated) void gate.then(resolve);
          });
        }),
    },
  );
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
});

afterAll(async () => {
  openGate();
  await browser?.close();
  await stack?.close();
  await fs.rm(work, { recursive: true, force: true });
});

async function openDashboard(): Promise<{ page: Page; sockets: PageSocket[] }> {
  const page = await browser.newPage();
  const problems: string[] = [];
  const sockets: PageSocket[] = [];
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('websocket', (socket) => sockets.push(socket));
  await page.goto(`${stack.baseUrl}/`);
  await page.waitForSelector('#scan-form');
  await page.fill('#token', TOKEN);
  await page.dispatchEvent('#token', 'change');
  // Loaded: the list has answered and the activity feed is open.
  await page.waitForFunction(() => document.body.dataset.feed === 'open', undefined, { timeout: 60_000 });
  expect(problems).toEqual([]);
  return { page, sockets };
}

const scanRow = (jobId: string): string => `#scans > li[data-job-id="${jobId}"]`;

async function start(folder: string): Promise<string> {
  const res = await http<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: folder }, auth);
  expect(res.status).toBe(202);
  return res.body.job_id;
}

async function job(jobId: string): Promise<JobBody> {
  return (await http<JobBody>(stack.baseUrl, 'GET', `/api/v1/jobs/${jobId}`, undefined, auth)).body;
}

describe('dashboard, live', () => {
  it('shows a scan started elsewhere while it follows another scan, learning of it from /ws', async () => {
    await buildLibrary(path.join(work, 'held'), 3, clips);
    await buildLibrary(path.join(work, 'elsewhere'), 3, clips);
    const { page, sockets } = await openDashboard();
    // A scan the page follows through its event stream, running until cancelled.
    const followed = await start(path.join(work, 'held'));
    await page.waitForSelector(`${scanRow(followed)}[data-status="running"]`, { timeout: 60_000 });
    await page.waitForFunction((id) => document.querySelector(`#scans > li[data-job-id="${id}"] .scan-live`)?.textContent === 'live', followed);

    // Started as the CLI, a schedule or a webhook starts one: not from this page.
    const other = await start(path.join(work, 'elsewhere'));
    await page.waitForSelector(scanRow(other), { timeout: 60_000 });
    expect(await page.textContent(`${scanRow(other)} .scan-path`)).toBe(path.join(work, 'elsewhere'));
    await page.waitForSelector(`${scanRow(other)}[data-status="completed"]`, { timeout: 60_000 });
    // The followed scan is still running: its stream was open all along.
    expect((await job(followed)).status).toBe('running');

    // The page's activity feed, opened with the token as its subprotocol (never in the URL).
    const feed = sockets.find((socket) => new URL(socket.url()).pathname === '/ws');
    expect(feed).toBeDefined();
    expect(feed?.url()).not.toContain(TOKEN);
    await http(stack.baseUrl, 'POST', `/api/v1/jobs/${followed}/cancel`, undefined, auth);
    await page.waitForSelector(`${scanRow(followed)}[data-status="cancelled"]`, { timeout: 60_000 });
    await page.close();
  });

  it('shows the videos a scan has recorded before it ends, and the phase it is in', async () => {
    const folder = path.join(work, 'gated');
    await buildLibrary(folder, 20, clips);
    const { page } = await openDashboard();
    await page.waitForFunction(() => document.getElementById('search-total')?.textContent !== '');
    const jobId = await start(folder);
    // The first batch is recorded; the rest wait at the gate, so the scan cannot end meanwhile.
    await waitFor(() => job(jobId), (j) => j.counts.new >= FIRST_BATCH);
    await page.waitForFunction(
      ({ prefix, count }) => [...document.querySelectorAll('#videos tr td:first-child')].filter((td) => (td.textContent ?? '').startsWith(prefix)).length >= count,
      { prefix: folder + '/', count: FIRST_BATCH },
      { timeout: 60_000 },
    );
    expect((await job(jobId)).status).toBe('running');
    expect(await page.getAttribute(scanRow(jobId), 'data-phase')).toBe('probing');
    expect(await page.textContent(`${scanRow(jobId)} .scan-phase`)).toBe('probing');
    expect(await page.isVisible(`${scanRow(jobId)} .scan-phase`)).toBe(true);

    openGate();
    await page.waitForSelector(`${scanRow(jobId)}[data-status="completed"]`, { timeout: 90_000 });
    expect(await page.isHidden(`${scanRow(jobId)} .scan-phase`)).toBe(true);
    await page.waitForFunction(
      ({ prefix, count }) => [...document.querySelectorAll('#videos tr td:first-child')].filter((td) => (td.textContent ?? '').startsWith(prefix)).length === count,
      { prefix: folder + '/', count: 20 },
      { timeout: 60_000 },
    );
    await page.close();
  });
});
