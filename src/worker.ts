/**
 * Builds a worker: the process that runs scan workflows and their activities.
 * The one production module that imports @temporalio/worker.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { bundleWorkflowCode, NativeConnection, Worker, type WorkflowBundleOption } from '@temporalio/worker';
import { createActivities } from './activities';
import { HEARTBEAT_THROTTLE_MS } from './activities/shared';
import { ScanAdmission } from './scans/admission';
import { RootGuards } from './scans/guard';
import { removeStaleTemps } from './thumbnails/thumbnailer';
import { thumbnailerFor } from './media-host/select';
import type { Config } from './config';
import { temporalConnectionOptions } from './temporal/client';
import type { Library } from './library/library';
import type { FileProber } from './probe/contained';
import type { IsolatedProber } from './media-host/pool';

export interface ScanWorkerOptions {
  config: Config;
  connection: NativeConnection;
  library: Library;
  /** The media hosts (media-host/pool.ts): files are probed, and checked inside their roots, there. */
  prober: FileProber | IsolatedProber;
  /** Task queue override (tests give each test its own). */
  taskQueue?: string;
  /** A prebuilt workflow bundle (its code, or its file: WORKFLOW_BUNDLE); without it the workflows are bundled from source at start. */
  workflowBundle?: WorkflowBundleOption;
  /** A client of the same Temporal: scheduled runs wait for a slot of MAX_CONCURRENT_SCANS through it (admitted at once without). */
  client?: Client;
}

/** Creates (but does not run) a worker for scans. */
export async function createScanWorker(options: ScanWorkerOptions): Promise<Worker> {
  const { config } = options;
  const taskQueue = options.taskQueue ?? config.temporal.taskQueue;
  // Temp files of pictures a killed worker was making. Why twice the time
  // limit and at least ten minutes: a temp lives no longer than its picture's
  // limit, and a younger one may be another worker's, at work now.
  await removeStaleTemps(config.thumbnailDir, Math.max(2 * config.probeTimeoutMs, 10 * 60_000));
  return Worker.create({
    connection: options.connection,
    namespace: config.temporal.namespace,
    taskQueue,
    ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : { workflowsPath: require.resolve('./workflows') }),
    // The worker enforces its own SCAN_ROOTS: anyone who reaches Temporal can start a scan.
    activities: createActivities({
      library: options.library,
      prober: options.prober,
      scanRoots: config.scanRoots,
      // In the probe hosts when they run libav, else one ffmpeg per picture.
      thumbnailer: thumbnailerFor(options.prober, { dir: config.thumbnailDir, width: config.thumbnailWidth }),
      thumbnailConcurrency: config.thumbnailConcurrency,
      ...(options.client ? { admission: admissionOf(options.client, options.library, config.maxConcurrentScans, taskQueue) } : {}),
      fsCallTimeoutMs: config.fsCallTimeoutMs,
      scanRootMarker: config.scanRootMarker,
      thumbnailsByDefault: config.thumbnails,
    }),
    // The SDK throttles heartbeats to 80 % of the heartbeat timeout by default;
    // capping the throttle is what lets a cancel reach a running batch within half a second.
    maxHeartbeatThrottleInterval: HEARTBEAT_THROTTLE_MS,
    defaultHeartbeatThrottleInterval: HEARTBEAT_THROTTLE_MS,
    // Activities are cheap waiters: the prober's semaphore bounds real work, so
    // allow enough slots for many scans' windows to make progress side by side.
    maxConcurrentActivityTaskExecutions: Math.max(32, config.window * 16),
    // On SIGTERM in-flight activities are cancelled (their ffprobe killed) and
    // the scan's batches are retried on another worker from their checkpoints.
    shutdownGraceTime: '10s',
  });
}

/**
 * The workflow code bundled as a worker without WORKFLOW_BUNDLE bundles it at
 * start (webpack, a second or two of CPU): what `npm run bundle:workflows` writes.
 */
export async function bundleWorkflows(): Promise<string> {
  const quiet = () => undefined;
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('./workflows'),
    logger: { log: quiet, trace: quiet, debug: quiet, info: quiet, warn: quiet, error: (message: string) => process.stderr.write(`${message}\n`) },
  });
  return code;
}

/**
 * Writes the workflow bundle to `file` (for WORKFLOW_BUNDLE), beside it and
 * then renamed, so a worker never reads half a bundle; returns its full path.
 */
export async function writeWorkflowBundle(file: string): Promise<string> {
  const target = path.resolve(file);
  const partial = `${target}.${process.pid}.partial`;
  await fs.writeFile(partial, await bundleWorkflows());
  await fs.rename(partial, target);
  return target;
}

/** Connects to the Temporal frontend named in the configuration (with its TLS and API key). */
export async function connectWorker(config: Config): Promise<NativeConnection> {
  return NativeConnection.connect(temporalConnectionOptions(config));
}

/** Admission of scheduled runs, as the API's starts are admitted, and the freeing of a root whose guard is closing. */
function admissionOf(client: Client, library: Library, maxConcurrentScans: number, taskQueue: string) {
  const admission = new ScanAdmission(client, maxConcurrentScans, taskQueue);
  const guards = new RootGuards(client, library, taskQueue);
  return {
    reserve: (guardId: string) => admission.reserve(guardId),
    releaseEndedGuard: (guardId: string) => guards.releaseEnded(guardId),
  };
}
