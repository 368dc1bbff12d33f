/**
 * `npm run worker`: one worker process. Any number may run, on any machine
 * that reaches the Temporal frontend, the library database and the media.
 */
import { Runtime } from '@temporalio/worker';
import { loadConfigOrExit } from './config';
import { errorLine } from './errors';
import { Library } from './library/library';
import { createLogger } from './logger';
import { createIsolatedProber } from './probe/isolated';
import { toSdkLogger } from './temporal/sdk-logger';
import { connectWorker, createScanWorker } from './worker';

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger('worker', config.logLevel);
  Runtime.install({ logger: toSdkLogger(logger), shutdownSignals: ['SIGINT', 'SIGTERM'] });
  const library = await Library.open(config.databaseUrl);
  const prober = createIsolatedProber({ ffprobePath: config.ffprobePath, concurrency: config.probeConcurrency });
  logger.info({ ffprobe: prober.path, version: await prober.version(), concurrency: config.probeConcurrency }, 'prober ready');
  const connection = await connectWorker(config);
  const worker = await createScanWorker({ config, connection, library, prober });
  logger.info({ taskQueue: config.temporal.taskQueue, address: config.temporal.address }, 'worker running');
  try {
    // Resolves once a shutdown signal has drained the worker.
    await worker.run();
  } finally {
    await connection.close();
    await library.close();
    logger.info('worker stopped');
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`worker failed: ${errorLine(error)}\n`);
  process.exit(1);
});
