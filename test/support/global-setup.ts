/**
 * Starts one in-memory Temporal dev server for the whole test run (building
 * the CLI first on a fresh machine) and hands its address to the tests; bundles
 * the workflow code once for every test file's workers.
 */
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../../src/logger';
import { locateTemporalCli } from '../../src/temporal/cli';
import { ensureTemporalServer, type TemporalServerHandle } from '../../src/temporal/dev-server';
import { bundleWorkflows } from './stack';

declare global {
  var temporalTestServer: TemporalServerHandle | undefined;
  var temporalTestBundleDir: string | undefined;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export default async function globalSetup(): Promise<void> {
  const projectRoot = path.resolve(__dirname, '..', '..');
  const cli = await locateTemporalCli({
    cliPath: process.env.TEMPORAL_CLI_PATH,
    projectRoot,
    log: (line) => process.stderr.write(`${line}\n`),
  });
  // The bundle is built while the server starts: webpack is the slow part of a worker's start.
  const bundled = bundleWorkflows();
  bundled.catch(() => undefined); // awaited below; a failed server start must not leave it unhandled
  const server = await ensureTemporalServer({
    address: `127.0.0.1:${await freePort()}`,
    uiPort: await freePort(),
    dataDir: null,
    namespace: 'default',
    cliPath: cli,
    projectRoot,
    logger: createLogger('test-setup', 'warn'),
  });
  globalThis.temporalTestServer = server;
  process.env.TEMPORAL_TEST_ADDRESS = server.address;
  process.env.TEMPORAL_TEST_CLI = cli;
  const bundleDir = await fs.mkdtemp(path.join(os.tmpdir(), 'scanner-workflow-bundle-'));
  globalThis.temporalTestBundleDir = bundleDir;
  const bundleFile = path.join(bundleDir, 'workflows.js');
  await fs.writeFile(bundleFile, (await bundled).code);
  // Readable by every user: a test runs a worker as an unprivileged one (test/reliability/unprivileged.test.ts).
  await fs.chmod(bundleDir, 0o755);
  await fs.chmod(bundleFile, 0o644);
  process.env.TEMPORAL_TEST_WORKFLOW_BUNDLE = bundleFile;
}
