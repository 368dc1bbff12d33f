/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The dashboard page in a real browser (Debian's Chromium through
 * playwright-core) against the real stack: start a scan, follow it to the
 * end, find the videos it recorded, cancel a second scan half-way, and show
 * the API's error for a bad folder. A second stack with API_TOKEN checks that
 * the page sends the token it is given.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { buildLibrary, ensureTestMedia, type TestClip } from '../support/media';
import { startStack, type Stack } from '../support/stack';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

let clips: TestClip[];
let work: string;
let stack: Stack;
let browser: Browser;

beforeAll(async () => {
  clips = await ensureTestMedia();
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'dashboard-')));
  stack = await startStack({ SCAN_BATCH_SIZE: '5', PROBE_CONCURRENCY: '2' });
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

async function openDashboard(baseUrl: string): Promise<Page> {
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.text().includes('401')) problems.push(message.text());
  });
  await page.goto(`${baseUrl}/`);
  await page.waitForSelector('#scan-form');
  // Content-Security-Policy or script errors would stop the page from working at all.
  expect(problems).toEqual([]);
  return page;
}

describe('dashboard', () => {
  it('starts a scan, follows it to completed and lists what it found', async () => {
    const folder = path.join(work, 'full');
    const files = await buildLibrary(folder, 12, clips);
    const page = await openDashboard(stack.baseUrl);

    await page.fill('#scan-path', folder);
    await page.click('#scan-start');
    await page.waitForFunction(() => document.getElementById('job-status')?.textContent === 'completed', undefined, { timeout: 60_000 });

    expect(await page.textContent('#message')).toMatch(/^Scan scan-.+ started\.$/);
    expect(await page.$eval('#job-progress', (el) => (el as HTMLProgressElement).value)).toBe(1);
    expect(await page.textContent('#job-counts')).toBe(`${files.length} of ${files.length} done: ${files.length} new, 0 updated, 0 unchanged, 0 failed`);
    expect(await page.isDisabled('#job-cancel')).toBe(true);
    const link = await page.getAttribute('#job-link', 'href');
    expect(link).toMatch(/\/namespaces\/default\/workflows\/scan-/);

    // The library table is refreshed when the scan ends, and searches by name.
    await page.waitForFunction((n) => document.querySelectorAll('#videos tr').length === n, files.length);
    const wanted = path.basename(files[0]!);
    await page.fill('#search-q', wanted);
    await page.click('#search-form button');
    await page.waitForFunction((name) => {
      const rows = [...document.querySelectorAll('#videos tr')];
      return rows.length > 0 && rows.every((row) => row.firstElementChild?.textContent?.endsWith(name));
    }, wanted);
    const row = await page.$$eval('#videos tr', (rows) => rows.map((r) => [...r.children].map((c) => c.textContent)));
    expect(row[0]?.[0]).toBe(files[0]);
    expect(row[0]?.[4]).toBe('present');
    await page.close();
  });

  it('cancels a running scan from the page', async () => {
    const folder = path.join(work, 'cancel');
    await buildLibrary(folder, 300, clips);
    const page = await openDashboard(stack.baseUrl);
    await page.fill('#scan-path', folder);
    await page.click('#scan-start');
    await page.waitForFunction(() => Number((document.getElementById('job-progress') as HTMLProgressElement).value) > 0.05, undefined, {
      timeout: 60_000,
    });
    await page.click('#job-cancel');
    await page.waitForFunction(() => document.getElementById('job-status')?.textContent === 'cancelled', undefined, { timeout: 30_000 });
    const progress = await page.$eval('#job-progress', (el) => (el as HTMLProgressElement).value);
    expect(progress).toBeGreaterThan(0);
    expect(progress).toBeLessThan(1);
    await page.close();
  });

  it('shows the API error for a folder that does not exist', async () => {
    const page = await openDashboard(stack.baseUrl);
    await page.fill('#scan-path', path.join(work, 'no-such-folder'));
    await page.click('#scan-start');
    await page.waitForFunction(() => document.getElementById('message')?.className === 'error');
    expect(await page.textContent('#message')).toMatch(/^INVALID_PATH: /);
    expect(await page.isHidden('#job')).toBe(true);
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

  it('refuses without the token and scans with it', async () => {
    const folder = path.join(work, 'guarded');
    await buildLibrary(folder, 3, clips);
    const page = await openDashboard(guarded.baseUrl);
    await page.fill('#scan-path', folder);
    await page.click('#scan-start');
    await page.waitForFunction(() => document.getElementById('message')?.className === 'error');
    expect(await page.textContent('#message')).toMatch(/^UNAUTHORIZED: /);

    await page.fill('#token', 'dashboard-secret');
    await page.click('#scan-start');
    await page.waitForFunction(() => document.getElementById('job-status')?.textContent === 'completed', undefined, { timeout: 60_000 });
    expect(await page.textContent('#search-total')).toBe('3 videos');
    await page.close();
  });
});
