/**
 * What the processes refuse or keep closed as they start: a worker whose
 * pictures folder cannot be written stops with one line; the API will not
 * listen beyond loopback without a token; a worker's metrics listen on
 * loopback unless WORKER_METRICS_HOST says otherwise; a worker given a
 * workflow bundle written ahead (WORKFLOW_BUNDLE) runs from it, and one whose
 * bundle is missing stops with one line naming it.
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, killPart, startPart, type Part } from '../support/processes';

let dir: string;
const parts: Part[] = [];

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'deployment-startup-'));
});

afterEach(async () => {
  await Promise.all(parts.splice(0).map((part) => killPart(part)));
});

afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** Runs an entry point that is expected to stop by itself; its exit code and output. */
async function runToExit(entry: string, env: Record<string, string>): Promise<{ code: number | NodeJS.Signals | null; output: string }> {
  // Never ready: the part is watched until it exits.
  const part = await startPart(entry, env, /(?!)/, 120_000).catch((error: Error) => error);
  if (!(part instanceof Error)) throw new Error(`${entry} did not stop`);
  const match = /exited before it was ready:\n([\s\S]*)$/.exec(part.message);
  if (!match) throw part;
  return { code: null, output: match[1] ?? '' };
}

const temporalAddress = (): string => {
  const address = process.env.TEMPORAL_TEST_ADDRESS;
  if (!address) throw new Error('TEMPORAL_TEST_ADDRESS is not set: the jest global setup starts the dev server');
  return address;
};

describe('start-up checks of a deployment', () => {
  it('a worker that cannot write its pictures folder stops at start-up with one line naming it', async () => {
    // A file where a folder must be: no user, root included, can create the folder inside it.
    const blocker = path.join(dir, 'not-a-folder');
    await fs.writeFile(blocker, '');
    const thumbnails = path.join(blocker, 'thumbnails');
    const { output } = await runToExit('worker-main', {
      TEMPORAL_ADDRESS: temporalAddress(),
      DATA_DIR: path.join(dir, 'worker-data'),
      THUMBNAIL_DIR: thumbnails,
    });
    const lines = output.split('\n').filter((line) => line.includes('worker failed'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^worker failed: cannot write the pictures folder \\(THUMBNAIL_DIR.*\\) ${thumbnails.replace(/[/.]/g, '\\$&')} .*\\(ENOTDIR\\)`));
    // It stopped before running: it never said it was running.
    expect(output).not.toMatch(/worker running/);
  });

  it('the API refuses a non-loopback HOST without API_TOKEN, in one line, before it listens', async () => {
    const port = await freePort();
    const { output } = await runToExit('api/server', { HOST: '0.0.0.0', PORT: String(port), TEMPORAL_ADDRESS: temporalAddress(), DATA_DIR: path.join(dir, 'api-data') });
    expect(output.trim()).toMatch(/^api refused to start: HOST=0\.0\.0\.0 is reachable from other machines and API_TOKEN is not set/);
    expect(output.trim().split('\n')).toHaveLength(1);
    await expect(fetch(`http://127.0.0.1:${port}/health/live`)).rejects.toThrow();
  });

  it('with ALLOW_UNAUTHENTICATED=true the API listens there and warns', async () => {
    const port = await freePort();
    const api = await startPart(
      'api/server',
      { HOST: '0.0.0.0', PORT: String(port), ALLOW_UNAUTHENTICATED: 'true', TEMPORAL_ADDRESS: temporalAddress(), DATA_DIR: path.join(dir, 'open-data') },
      /api listening/,
      120_000,
    );
    parts.push(api);
    expect(api.output()).toMatch(/without API_TOKEN \(ALLOW_UNAUTHENTICATED=true\)/);
    expect((await fetch(`http://127.0.0.1:${port}/health/live`)).status).toBe(200);
  });

  it("a worker's metrics listen on loopback by default", async () => {
    const port = await freePort();
    const worker = await startPart(
      'worker-main',
      {
        TEMPORAL_ADDRESS: temporalAddress(),
        TEMPORAL_TASK_QUEUE: `deployment-startup-${process.pid}`,
        DATA_DIR: path.join(dir, 'metrics-data'),
        // A HOST for the API beyond loopback must not move the worker's metrics there.
        HOST: '0.0.0.0',
        WORKER_METRICS_PORT: String(port),
      },
      /worker running/,
      120_000,
    );
    parts.push(worker);
    expect(worker.output()).toContain(`"url":"http://127.0.0.1:${port}/metrics"`);
    expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status).toBe(200);
    // Every other address of this machine is refused.
    const others = Object.values(os.networkInterfaces())
      .flat()
      .filter((info): info is os.NetworkInterfaceInfo => info !== undefined && !info.internal && info.family === 'IPv4')
      .map((info) => info.address);
    for (const address of others) await expect(fetch(`http://${address}:${port}/metrics`)).rejects.toThrow();
  });

  it('a worker runs from the workflow bundle `npm run bundle:workflows` wrote, and stops with one line when it is missing', async () => {
    const bundle = path.join(dir, 'bundle', 'workflows.js');
    await fs.mkdir(path.dirname(bundle));
    const root = path.join(__dirname, '..', '..');
    const said = execFileSync(process.execPath, ['--require', path.join(root, 'scripts', 'ts-register.js'), path.join(root, 'src', 'worker-main.ts'), '--write-bundle', bundle], {
      encoding: 'utf8',
    });
    expect(said).toContain(`WORKFLOW_BUNDLE=${bundle}`);
    expect((await fs.stat(bundle)).size).toBeGreaterThan(0);
    const env = { TEMPORAL_ADDRESS: temporalAddress(), TEMPORAL_TASK_QUEUE: `deployment-bundle-${process.pid}`, DATA_DIR: path.join(dir, 'bundle-data') };
    const worker = await startPart('worker-main', { ...env, WORKFLOW_BUNDLE: bundle }, /worker running/, 120_000);
    parts.push(worker);
    expect(worker.output()).toContain(`"workflowBundle":"${bundle}"`);
    const missing = path.join(dir, 'bundle', 'nothing-here.js');
    const { output } = await runToExit('worker-main', { ...env, WORKFLOW_BUNDLE: missing });
    const lines = output.split('\n').filter((line) => line.includes('worker failed'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(missing);
    expect(output).not.toMatch(/worker running/);
  });
});
