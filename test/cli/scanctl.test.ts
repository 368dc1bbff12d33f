/**
 * `scanctl` as a user runs it: a real process (the TypeScript source through
 * the swc register hook) against the real stack (Temporal dev server, worker,
 * real prober, SQLite, the API on a port with a bearer token).
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import http_ from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { JobBody } from '../../src/scans';
import { buildLibrary, ensureTestMedia, type TestClip } from '../support/media';
import { freePort } from '../support/processes';
import { http, startStack, waitFor, type Stack, holdingProber } from '../support/stack';

const PROJECT = path.resolve(__dirname, '..', '..');
const TOKEN = 'cli-test-token';
const TERMINAL = ['completed', 'failed', 'cancelled', 'timeout'];

let clips: TestClip[];
let work: string;
let stack: Stack;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface Running {
  /** Resolves when the process has exited. */
  done: Promise<Run>;
  /** What it has printed so far. */
  stdout(): string;
}

/** Starts `scanctl <args>` as its own process; the environment carries API_URL and API_TOKEN unless `env` overrides them. */
function start(args: string[], options: { cwd?: string; env?: Record<string, string | undefined>; tty?: boolean } = {}): Running {
  const env: NodeJS.ProcessEnv = { ...process.env, API_URL: stack.baseUrl, API_TOKEN: TOKEN, ...options.env };
  for (const [key, value] of Object.entries(env)) if (value === undefined) delete env[key];
  const command = [process.execPath, '--require', path.join(PROJECT, 'scripts/ts-register.js'), path.join(PROJECT, 'src/cli/main.ts'), ...args];
  // `script` gives the process a pseudo-terminal, as a person at a terminal has.
  const quoted = command.map((part) => `'${part.replace(/'/g, `'\\''`)}'`).join(' ');
  const child = options.tty
    ? spawn('script', ['-qfec', quoted, '/dev/null'], { cwd: options.cwd ?? PROJECT, env, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(command[0] as string, command.slice(1), { cwd: options.cwd ?? PROJECT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const done = new Promise<Run>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
  return { done, stdout: () => stdout };
}

function scanctl(args: string[], options: Parameters<typeof start>[1] = {}): Promise<Run> {
  return start(args, options).done;
}

const auth = { authorization: `Bearer ${TOKEN}` };

async function jobOf(jobId: string): Promise<JobBody> {
  return (await http<JobBody>(stack.baseUrl, 'GET', `/api/v1/jobs/${jobId}`, undefined, auth)).body;
}

async function startHeldScan(name: string): Promise<string> {
  const folder = path.join(work, name, 'held');
  await buildLibrary(folder, 6, clips);
  const res = await http<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: folder }, auth);
  expect(res.status).toBe(202);
  return res.body.job_id;
}

async function cancelAndWait(jobId: string): Promise<void> {
  await http(stack.baseUrl, 'POST', `/api/v1/jobs/${jobId}/cancel`, undefined, auth);
  await waitFor(() => jobOf(jobId), (job) => TERMINAL.includes(job.status), 60_000, 200);
}

beforeAll(async () => {
  clips = await ensureTestMedia();
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'scanctl-')));
  stack = await startStack({ API_TOKEN: TOKEN, SCAN_BATCH_SIZE: '10', PROBE_CONCURRENCY: '2' }, { wrapProber: holdingProber });
});

afterAll(async () => {
  await stack?.close();
  await fs.rm(work, { recursive: true, force: true });
});

describe('scanctl', () => {
  it('follows a scan of a relative path to its end without a terminal, showing the file count and rate, and exits 0', async () => {
    await buildLibrary(path.join(work, 'plain', 'media'), 60, clips);
    const run = await scanctl(['scan', 'media', '--follow'], { cwd: path.join(work, 'plain') });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    // The relative path was resolved against the current directory.
    expect(run.stdout).toContain(`started for ${path.join(work, 'plain', 'media')}`);
    expect(run.stdout).toMatch(/\b60\/60 files\b/);
    expect(run.stdout).toMatch(/completed.*60 of 60 files scanned \(60 new, 0 updated, 0 unchanged, 0 failed\), [\d.]+ files\/s/);
    expect(run.stdout).toMatch(/Temporal UI: http:\/\/\S+\/workflows\/scan-/);
  });

  it('shows a live bar on a terminal and ends with the summary', async () => {
    await buildLibrary(path.join(work, 'tty'), 40, clips);
    const run = await scanctl(['scan', path.join(work, 'tty'), '--follow'], { tty: true });
    expect(run.code).toBe(0);
    // The bar: drawn with cli-progress's block characters, with percent, file count, rate and ETA.
    expect(run.stdout).toMatch(/█+\S*\s+\d+\.\d% \| \d+\/40 files \| [\d.]+ files\/s \| ETA \S+ \| \w+/);
    expect(run.stdout).toContain('100.0% | 40/40 files');
    expect(run.stdout).toMatch(/completed.*40 of 40 files scanned/);
    expect(run.stdout).toContain('Temporal UI: http');
  });

  it('exits 1 when a followed scan is cancelled from elsewhere', async () => {
    const folder = path.join(work, 'cancelled', 'held');
    await buildLibrary(folder, 6, clips);
    const follower = start(['scan', folder, '--follow']);
    const line = await waitFor(
      async () => follower.stdout(),
      (text) => /scan-\S+ started/.test(text),
      60_000,
      100,
    );
    const jobId = /(scan-\S+) started/.exec(line)?.[1] as string;
    const cancelled = await http(stack.baseUrl, 'POST', `/api/v1/jobs/${jobId}/cancel`, undefined, auth);
    expect(cancelled.status).toBe(202);
    const run = await follower.done;
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^cancelled.*files scanned/m);
    expect(run.stdout).toContain('Temporal UI: http');
  });

  it('reopens an event stream that drops before the scan ends', async () => {
    // A proxy in front of the API that cuts the first event stream after its first event.
    let streams = 0;
    const proxy = http_.createServer((req, res) => {
      const upstream = http_.request(`${stack.baseUrl}${req.url ?? '/'}`, { method: req.method, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        if ((req.url ?? '').endsWith('/events') && streams++ === 0) {
          up.once('data', (chunk: Buffer) => {
            res.end(chunk);
            up.destroy();
          });
        } else {
          up.pipe(res);
        }
      });
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const jobId = await startHeldScan('reconnect');
      const follower = start(['follow', jobId, '--json'], { env: { API_URL: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}` } });
      await waitFor(async () => streams, (n) => n >= 2, 60_000, 100);
      await http(stack.baseUrl, 'POST', `/api/v1/jobs/${jobId}/cancel`, undefined, auth);
      const run = await follower.done;
      expect(run.stderr).toBe('');
      expect(run.code).toBe(1);
      const last = JSON.parse(run.stdout.trim().split('\n').at(-1) as string) as JobBody;
      expect(last).toEqual(expect.objectContaining({ job_id: jobId, status: 'cancelled' }));
    } finally {
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  it('prints one JSON document for every command, and JSON lines when following', async () => {
    const folder = path.join(work, 'json');
    await buildLibrary(folder, 20, clips);
    const parseOne = (run: Run): Record<string, unknown> => {
      expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
      expect(run.stdout.trim().split('\n')).toHaveLength(1);
      return JSON.parse(run.stdout) as Record<string, unknown>;
    };

    const started = parseOne(await scanctl(['scan', folder, '--json']));
    expect(started).toEqual({ job_id: expect.stringMatching(/^scan-/), created: true });
    const jobId = started.job_id as string;

    const followed = await scanctl(['follow', jobId, '--json']);
    expect(followed.code).toBe(0);
    const lines = followed.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const event of lines.slice(0, -1)) {
      expect(event).toEqual({ event: expect.stringMatching(/^(progress|end)$/), job: expect.objectContaining({ job_id: jobId }) });
    }
    expect(lines.at(-2)?.event).toBe('end');
    expect(lines.at(-1)).toEqual(expect.objectContaining({ job_id: jobId, status: 'completed', progress: 1 }));

    const status = parseOne(await scanctl(['status', jobId, '--json']));
    expect(status).toEqual(expect.objectContaining({ job_id: jobId, status: 'completed', counts: expect.objectContaining({ new: 20 }) }));

    const list = parseOne(await scanctl(['list', '--json', '--status', 'completed', '--limit', '5']));
    expect((list.jobs as JobBody[]).map((job) => job.job_id)).toContain(jobId);

    const videos = parseOne(await scanctl(['videos', '--json', '--limit', '3']));
    expect(videos).toEqual(expect.objectContaining({ total: expect.any(Number), videos: expect.any(Array) }));
    expect((videos.videos as unknown[]).length).toBe(3);

    const found = parseOne(await scanctl(['videos', '--json', '--search', `${path.sep}json${path.sep}`]));
    expect(found.total).toBe(20);

    const missing = parseOne(await scanctl(['videos', '--json', '--missing']));
    expect(missing).toEqual(expect.objectContaining({ total: 0, videos: [] }));

    // Following a scan in one go, --json: event lines, then the final job.
    const again = await scanctl(['scan', folder, '--force', '--follow', '--json']);
    expect(again.code).toBe(0);
    const againLines = again.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(againLines.at(-1)).toEqual(expect.objectContaining({ status: 'completed', counts: expect.objectContaining({ updated: 20 }) }));

    const held = await startHeldScan('json-held');
    const cancel = parseOne(await scanctl(['cancel', held, '--json']));
    expect(cancel).toEqual(expect.objectContaining({ job_id: held, cancel_requested: true }));
    await waitFor(() => jobOf(held), (job) => TERMINAL.includes(job.status), 60_000, 200);

    const retry = parseOne(await scanctl(['retry', held, '--json']));
    expect(retry).toEqual({ job_id: expect.stringMatching(/^scan-/), created: true });
    expect((await jobOf(retry.job_id as string)).retry_of).toBe(held);
    await cancelAndWait(retry.job_id as string);
  });

  it('exits 3 with the API code when the token is wrong, and works with the right one', async () => {
    const refused = await scanctl(['list', '--token', 'not-the-token']);
    expect(refused.code).toBe(3);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toContain('401 UNAUTHORIZED');

    const noToken = await scanctl(['list', '--json'], { env: { API_TOKEN: undefined } });
    expect(noToken.code).toBe(3);
    expect(noToken.stderr).toContain('UNAUTHORIZED');

    const allowed = await scanctl(['list']);
    expect(allowed.code).toBe(0);
  });

  it('exits 3 with the API code for a refused scan or an unknown job', async () => {
    const notThere = await scanctl(['scan', path.join(work, 'no-such-folder')]);
    expect(notThere.code).toBe(3);
    expect(notThere.stderr).toContain('400 INVALID_PATH');

    const unknown = await scanctl(['status', 'scan-does-not-exist', '--json']);
    expect(unknown.code).toBe(3);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr).toContain('404 NOT_FOUND');
  });

  it('sends --exclude only when given, and reports honestly an API that does not take it', async () => {
    const folder = path.join(work, 'exclude');
    await buildLibrary(folder, 4, clips);
    const doc = await http<{ paths: Record<string, { post?: { requestBody?: { content: Record<string, { schema: { properties?: Record<string, unknown> } }> } } }> }>(
      stack.baseUrl,
      'GET',
      '/api/openapi.json',
      undefined,
      auth,
    );
    const takesExclude = 'exclude' in (doc.body.paths['/api/v1/videos/scan']?.post?.requestBody?.content['application/json']?.schema.properties ?? {});
    const run = await scanctl(['scan', folder, '--exclude', '*.tmp', 'extras/**', '--follow']);
    if (takesExclude) {
      expect(run.code).toBe(0);
    } else {
      expect(run.code).toBe(3);
      expect(run.stderr).toMatch(/400 INVALID_PATH\b.*exclude/);
      expect(run.stderr).toContain('this API does not accept --exclude');
    }
    // Without the flag the same API takes the scan.
    const plain = await scanctl(['scan', folder, '--follow']);
    expect(plain.code).toBe(0);
  });

  it('exits 4 when no API answers', async () => {
    const port = await freePort();
    const run = await scanctl(['status', 'scan-x'], { env: { API_URL: `http://127.0.0.1:${port}` } });
    expect(run.code).toBe(4);
    expect(run.stderr).toContain(`cannot reach the API at http://127.0.0.1:${port}`);
    const flag = await scanctl(['list', '--api-url', `http://127.0.0.1:${port}`]);
    expect(flag.code).toBe(4);
  });

  it('exits 2 on bad usage and explains every command with --help', async () => {
    expect((await scanctl(['scan'])).code).toBe(2);
    expect((await scanctl(['list', '--limit', 'many'])).code).toBe(2);
    expect((await scanctl(['list', '--status', 'sleeping'])).code).toBe(2);
    expect((await scanctl(['videos', '--search', 'x', '--missing'])).code).toBe(2);
    expect((await scanctl(['frobnicate'])).code).toBe(2);
    expect((await scanctl(['status', 'scan-x'], { env: { API_URL: 'not a url' } })).code).toBe(2);

    const version = await scanctl(['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toBe((require('../../package.json') as { version: string }).version);

    const help = await scanctl(['--help']);
    expect(help.code).toBe(0);
    for (const command of ['scan', 'status', 'follow', 'cancel', 'retry', 'list', 'videos']) expect(help.stdout).toContain(command);
    const scanHelp = await scanctl(['scan', '--help']);
    expect(scanHelp.code).toBe(0);
    for (const flag of ['--no-recursive', '--force', '--exclude', '--follow', '--json', '--api-url', '--token']) expect(scanHelp.stdout).toContain(flag);
  });
});
