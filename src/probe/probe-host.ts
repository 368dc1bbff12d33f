/**
 * The probe host: a small process that spawns ffprobe on behalf of a worker.
 *
 * Why a separate process: spawning copies the parent's page tables, and a
 * Temporal worker is a large process; measured here, ChildProcess.spawn took
 * ~11 ms of the worker's main thread per file, more than ffprobe itself. A
 * host of a few tens of MB spawns in about a millisecond.
 *
 * When its parent goes away (the IPC channel closes) it kills every ffprobe
 * it started and exits, so no prober outlives its worker.
 */
import os from 'node:os';
import { createProber } from './ffprobe';
import type { HostReply, HostRequest } from './host-protocol';

function reply(message: HostReply): void {
  process.send?.(message);
}

/**
 * Niceness of the host and so of every ffprobe it starts: probing is the bulk
 * work, and on a machine it saturates, the API, the worker's coordination and
 * the Temporal server should get the CPU first when they need it.
 */
const PROBE_NICENESS = 10;

function main(): void {
  try {
    os.setPriority(PROBE_NICENESS);
  } catch {
    // Not permitted here: probing simply runs at normal priority.
  }
  const concurrency = Number(process.env.PROBE_HOST_CONCURRENCY ?? '1');
  const prober = createProber({ ffprobePath: process.env.PROBE_HOST_FFPROBE || undefined, concurrency });
  const inFlight = new Map<number, AbortController>();

  process.on('message', (message: HostRequest) => {
    if (message.type === 'abort') {
      inFlight.get(message.id)?.abort();
      return;
    }
    const controller = new AbortController();
    inFlight.set(message.id, controller);
    const work = message.type === 'version' ? prober.version() : prober.probe(message.file, { timeoutMs: message.timeoutMs, signal: controller.signal });
    work.then(
      (result) => reply({ id: message.id, result }),
      (error: unknown) => {
        const e = error as { name?: string; message?: string; code?: string };
        reply({ id: message.id, error: { name: controller.signal.aborted ? 'AbortError' : (e.name ?? 'Error'), message: e.message ?? String(error), code: e.code } });
      },
    ).finally(() => inFlight.delete(message.id));
  });

  process.on('disconnect', () => {
    for (const controller of inFlight.values()) controller.abort();
    // Give the aborted probes a moment to reap their processes, then go.
    const wait = setInterval(() => {
      if (prober.running === 0) process.exit(0);
    }, 10);
    setTimeout(() => process.exit(0), 2000).unref();
    wait.unref();
  });
}

main();
