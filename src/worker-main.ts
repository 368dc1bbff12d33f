/**
 * `npm run worker`: one worker process. Any number may run, on any machine
 * that reaches the Temporal frontend, the library database and the media.
 */
// First: sizes libuv's thread pool before anything starts it.
import './filesystem/thread-pool';
import { parseArgs } from 'node:util';
import { Runtime } from '@temporalio/worker';
import { loadConfigOrExit } from './config';
import { errorLine } from './errors';
import { Library } from './library/library';
import { startScanRecordPruning } from './library/retention';
import { createLogger } from './logger';
import { openProber } from './media-host/select';
import { connectClient } from './temporal/client';
import { toSdkLogger } from './temporal/sdk-logger';
import { sdkMetricsAddress, serveWorkerMetrics } from './worker-metrics';
import { unwritableReason } from './writable';
import { connectWorker, createScanWorker, writeWorkflowBundle } from './worker';

/** `--write-bundle FILE` (`npm run bundle:workflows -- FILE`): writes the workflow bundle for WORKFLOW_BUNDLE, and exits. */
async function writeBundle(file: string): Promise<void> {
  const target = await writeWorkflowBundle(file);
  process.stdout.write(`workflow bundle written to ${target}; a worker of this release loads it with WORKFLOW_BUNDLE=${target}\n`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { 'write-bundle': { type: 'string' } } });
  if (values['write-bundle'] !== undefined) return writeBundle(values['write-bundle']);
  const config = loadConfigOrExit();
  const logger = createLogger('worker', config.logLevel);
  // Pictures are written by workers: an unwritable folder stops start-up with one line (and the
  // container's health check fails), instead of every picture failing minutes into a scan.
  const unwritable = await unwritableReason(config.thumbnailDir, 'the pictures folder (THUMBNAIL_DIR, by default DATA_DIR/thumbnails)');
  if (unwritable) {
    process.stderr.write(`worker failed: ${unwritable}\n`);
    process.exit(2);
  }
  // The SDK core's worker metrics, on loopback; WORKER_METRICS_PORT serves them with the scan counters.
  const sdkAddress = config.workerMetricsPort !== undefined ? await sdkMetricsAddress() : undefined;
  Runtime.install({
    logger: toSdkLogger(logger),
    shutdownSignals: ['SIGINT', 'SIGTERM'],
    ...(sdkAddress ? { telemetryOptions: { metrics: { prometheus: { bindAddress: sdkAddress } } } } : {}),
  });
  const library = await Library.open(config.databaseUrl);
  if (library.migrations.applied.length > 0 || library.migrations.unknown.length > 0) {
    // `unknown`: a newer version migrated this library; this one runs on the schema as it is.
    logger.info({ applied: library.migrations.applied, unknown: library.migrations.unknown }, 'library schema migrations');
  }
  // Old scans' per-file records are removed in the background (SCAN_RECORD_RETENTION).
  const stopPruning = startScanRecordPruning({ library, retentionMs: config.scanRecordRetentionMs, logger });
  // PROBER, or libavformat in the probe hosts when it loads here, else ffprobe: logged once.
  const { prober } = await openProber(config, logger);
  const connection = await connectWorker(config);
  // For admission of scheduled runs under MAX_CONCURRENT_SCANS (scans/admission.ts).
  const { client, connection: clientConnection } = await connectClient(config);
  // WORKFLOW_BUNDLE: bundled ahead by this release, so the worker skips webpack at start.
  const workflowBundle = config.workflowBundlePath !== undefined ? { codePath: config.workflowBundlePath } : undefined;
  const worker = await createScanWorker({ config, connection, library, prober, client, ...(workflowBundle ? { workflowBundle } : {}) });
  const metrics =
    config.workerMetricsPort !== undefined
      ? await serveWorkerMetrics({ host: config.workerMetricsHost, port: config.workerMetricsPort, sdkAddress, logger })
      : undefined;
  if (metrics) logger.info({ url: `http://${config.workerMetricsHost}:${metrics.port}/metrics` }, 'worker metrics served');
  logger.info({ taskQueue: config.temporal.taskQueue, address: config.temporal.address, workflowBundle: config.workflowBundlePath ?? 'bundled at start' }, 'worker running');
  try {
    // Resolves once a shutdown signal has drained the worker.
    await worker.run();
  } finally {
    await metrics?.close();
    // The probe hosts stop with the worker, not a moment after it (their files in flight were already stopped with the activities).
    await prober.close();
    await connection.close();
    await clientConnection.close();
    await stopPruning();
    await library.close();
    logger.info('worker stopped');
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`worker failed: ${errorLine(error)}\n`);
  process.exit(1);
});
