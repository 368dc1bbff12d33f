/**
 * Start-up failures of the real processes (`npm run api`, `npm run worker`,
 * `npm start`, run from the sources): a port in use and a bad or unreachable
 * database stop them with one clear line on stderr and a non-zero exit, and
 * no line ever shows a credential.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { redactSecrets } from '../../src/errors';
import { freePort } from '../support/processes';
import { temporalAddress } from '../support/stack';

const ROOT = path.join(__dirname, '..', '..');
const TS_REGISTER = path.join(ROOT, 'scripts', 'ts-register.js');
const ENTRIES = { api: 'api/server', worker: 'worker-main', start: 'main' } as const;
const PASSWORD = 'Tr0ub4dor-s3cret';

interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

let work: string;

beforeAll(async () => {
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'startup-'));
});

afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

/** The environment of a fresh process: only what it needs, nothing inherited from Jest but PATH and HOME. */
function environment(extra: Record<string, string>): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? os.tmpdir(),
    TEMPORAL_ADDRESS: temporalAddress(),
    DATA_DIR: path.join(work, 'data'),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    ...extra,
  };
}

/**
 * Runs `src/<entry>.ts` to its end. A process still running after `limitMs`
 * (the failure this file guards against: a start that hangs) is killed and
 * reported with signal SIGKILL.
 */
function runToExit(entry: string, env: Record<string, string>, limitMs = 90_000): Promise<Ended> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--require', TS_REGISTER, path.join(ROOT, 'src', `${entry}.ts`)], {
      env: environment(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Holds a port on 127.0.0.1 for the length of a test, as another program would. */
async function holdPort(): Promise<{ port: number; release: () => Promise<void> }> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return { port, release: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

function stderrLines(ended: Ended): string[] {
  return ended.stderr.split('\n').filter((line) => line.trim().length > 0);
}

describe('a port already in use', () => {
  test.each([
    ['npm run api', ENTRIES.api, 'api failed: '],
    ['npm start', ENTRIES.start, 'start failed: '],
  ])('stops %s with one line naming the port and a non-zero exit', async (_name, entry, prefix) => {
    const held = await holdPort();
    try {
      const ended = await runToExit(entry, { PORT: String(held.port) });
      expect(ended.signal).toBeNull();
      expect(ended.code).not.toBe(0);
      expect(stderrLines(ended)).toEqual([expect.stringContaining(prefix)]);
      expect(ended.stderr).toContain(`port ${held.port}`);
      expect(ended.stderr).toMatch(/already in use/);
      expect(ended.stderr).not.toMatch(/\n\s+at /);
    } finally {
      await held.release();
    }
  }, 180_000);

  it('does not stop the API when the port is free: it serves, reports its prober, and stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, ['--require', TS_REGISTER, path.join(ROOT, 'src', `${ENTRIES.api}.ts`)], {
      env: environment({ PORT: String(port), DATA_DIR: path.join(work, 'serving') }),
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const deadline = Date.now() + 90_000;
      let health: { status: number; body: { status?: string; checks?: { ffmpeg?: { version?: string } } } } | undefined;
      while (Date.now() < deadline && child.exitCode === null) {
        const res = await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined);
        if (res?.status === 200) {
          health = { status: res.status, body: (await res.json()) as NonNullable<typeof health>['body'] };
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(stderr).toBe('');
      expect(health?.body.status).toBe('ok');
      // The default prober: libavformat in the probe hosts.
      expect(health?.body.checks?.ffmpeg?.version).toMatch(/^libavformat \S+ \(FFmpeg /);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});

describe('credentials in start-up errors', () => {
  test.each([
    ['npm run api', ENTRIES.api],
    ['npm run worker', ENTRIES.worker],
    ['npm start', ENTRIES.start],
  ])('%s names a malformed DATABASE_URL without its password', async (_name, entry) => {
    const ended = await runToExit(entry, { PORT: String(await freePort()), DATABASE_URL: `mysql://scanner:${PASSWORD}@db.example/library` });
    expect(ended.code).toBe(2);
    expect(stderrLines(ended)).toEqual([expect.stringMatching(/^configuration error: invalid DATABASE_URL/)]);
    expect(ended.stderr).toContain('mysql://scanner:***@db.example/library');
    expect(`${ended.stdout}${ended.stderr}`).not.toContain(PASSWORD);
  });

  test.each([
    ['npm run api', ENTRIES.api, 'api failed: '],
    ['npm run worker', ENTRIES.worker, 'worker failed: '],
  ])('%s reports a database it cannot reach in one line without the password', async (_name, entry, prefix) => {
    // Nothing listens on a free port: the connection is refused.
    const url = `postgres://scanner:${PASSWORD}@127.0.0.1:${await freePort()}/library`;
    const ended = await runToExit(entry, { PORT: String(await freePort()), DATABASE_URL: url });
    expect(ended.code).toBe(1);
    expect(stderrLines(ended)).toEqual([expect.stringContaining(prefix)]);
    expect(`${ended.stdout}${ended.stderr}`).not.toContain(PASSWORD);
  });

  test.each([
    ['a URL password', `postgres://scanner:${PASSWORD}@db/library`, 'postgres://scanner:***@db/library'],
    ['a password holding @ and /', `postgres://scanner:${PASSWORD}@x/y@db:5432/library`, 'postgres://scanner:***@db:5432/library'],
    ['a URL inside a sentence', `cannot open "postgres://u:${PASSWORD}@db/x" (refused)`, 'cannot open "postgres://u:***@db/x" (refused)'],
    ['a libpq keyword string', `host=db user=scanner password=${PASSWORD} dbname=library`, 'host=db user=scanner password=*** dbname=library'],
    ['a password query parameter', `postgres://db/library?user=scanner&password=${PASSWORD}`, 'postgres://db/library?user=scanner&password=***'],
  ])('the redaction of every process edge hides %s', (_name, text, expected) => {
    expect(redactSecrets(text)).toBe(expected);
  });

  test.each([
    ['a URL without credentials', 'http://127.0.0.1:8000/api/v1/jobs'],
    ['a user without a password', 'postgres://scanner@db/library'],
  ])('leaves %s as it is', (_name, text) => {
    expect(redactSecrets(text)).toBe(text);
  });
});
