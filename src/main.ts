/**
 * `npm start`: the embedded default. Starts the Temporal dev server when
 * nothing answers at TEMPORAL_ADDRESS, then a worker and the API as their own
 * processes (probing never shares an event loop with HTTP), prints the URLs,
 * and on SIGINT/SIGTERM stops everything it started.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { ensurePortFree, exposureCheck } from './api/listen';
import { loadConfigOrExit } from './config';
import { errorLine } from './errors';
import { createLogger } from './logger';
import { ensureTemporalServer } from './temporal/dev-server';

/** How long the worker may take to drain on SIGTERM (its own grace time is 10 s). */
const WORKER_STOP_MS = 15_000;
const API_STOP_MS = 6_000;

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger('main', config.logLevel);
  const projectRoot = path.resolve(__dirname, '..', '..');
  // Refuse before starting a Temporal server and a worker for an API that could not listen,
  // or that would listen beyond this machine without a token.
  const refusal = exposureCheck(config).refuse;
  if (refusal) {
    process.stderr.write(`refused to start: ${refusal}\n`);
    process.exit(2);
  }
  if (config.port !== 0) await ensurePortFree(config.port, config.host);
  const server = await ensureTemporalServer({
    address: config.temporal.address,
    uiPort: config.temporal.uiPort,
    dataDir: config.dataDir,
    namespace: config.temporal.namespace,
    cliPath: config.temporal.cliPath,
    projectRoot,
    logger,
  });
  if (!server.started) logger.info({ address: server.address }, 'using the Temporal server that answers there');

  const children = new Map<string, ChildProcess>();
  let stopping = false;
  const start = (name: string, script: string): void => {
    const child = spawn(process.execPath, [path.join(__dirname, script)], {
      env: { ...process.env, TEMPORAL_ADDRESS: server.address },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    children.set(name, child);
    child.once('exit', (code, signal) => {
      if (stopping) return;
      logger.error({ process: name, code, signal }, 'a part stopped unexpectedly; stopping everything');
      void stop(1);
    });
  };

  const stopChild = async (name: string, graceMs: number): Promise<void> => {
    const child = children.get(name);
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };

  const stop = async (code: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('stopping…\n');
    await stopChild('api', API_STOP_MS);
    await stopChild('worker', WORKER_STOP_MS);
    await server.stop();
    process.exit(code);
  };
  process.once('SIGINT', () => void stop(0));
  process.once('SIGTERM', () => void stop(0));

  start('worker', 'worker-main.js');
  start('api', path.join('api', 'server.js'));

  const host = config.host === '0.0.0.0' ? '127.0.0.1' : config.host;
  const apiUrl = `http://${host}:${config.port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ok = await fetch(`${apiUrl}/health/live`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline || stopping) {
      if (!stopping) {
        logger.error('the API did not come up within 60 s');
        await stop(1);
      }
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  process.stdout.write(
    [
      '',
      `  api          ${apiUrl}`,
      `  dashboard    ${apiUrl}/`,
      `  temporal ui  ${config.temporal.uiUrl}`,
      '',
      '  Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`start failed: ${errorLine(error)}\n`);
  process.exit(1);
});
