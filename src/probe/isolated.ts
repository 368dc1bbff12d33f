/**
 * A Prober whose ffprobe processes are spawned by a probe host process
 * (probe-host.ts) instead of by the worker itself. Same contract as
 * createProber: per-file reasons resolve, machine problems and aborts reject,
 * and a probe settles only once its ffprobe process is gone.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { defaultFfprobePath, type Prober, type ProberOptions, type ProbeResult } from './ffprobe';
import type { HostReply, HostRequest } from './host-protocol';

interface Pending {
  resolve: (value: ProbeResult | string) => void;
  reject: (error: Error) => void;
}

/** Starts (lazily) one probe host and talks to it. */
export function createIsolatedProber(options: ProberOptions): Prober {
  const ffprobePath = options.ffprobePath ?? defaultFfprobePath();
  const hostFile = require.resolve('./probe-host');
  // Under Jest the sources are TypeScript: the host then loads them through swc.
  const execArgv = hostFile.endsWith('.ts') ? ['--require', path.join(__dirname, '..', '..', 'scripts', 'ts-register.js')] : [];
  let host: ChildProcess | null = null;
  let nextId = 1;
  const pending = new Map<number, Pending>();

  const startHost = (): ChildProcess => {
    const child = fork(hostFile, [], {
      execArgv: [...execArgv, '--max-old-space-size=64'],
      // An empty PROBE_HOST_FFPROBE lets the host pick the bundled build and its fallback.
      env: { ...process.env, PROBE_HOST_CONCURRENCY: String(options.concurrency), PROBE_HOST_FFPROBE: options.ffprobePath ?? '' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'json',
    });
    child.on('message', (message: HostReply) => {
      const waiter = pending.get(message.id);
      if (!waiter) return;
      pending.delete(message.id);
      if ('error' in message) {
        waiter.reject(Object.assign(new Error(message.error.message), { name: message.error.name, code: message.error.code }));
      } else {
        waiter.resolve(message.result);
      }
    });
    child.once('exit', (code, signal) => {
      if (host === child) host = null;
      // A host that died takes its probes with it: a transient failure, which Temporal retries.
      for (const [id, waiter] of pending) {
        pending.delete(id);
        waiter.reject(Object.assign(new Error(`probe host exited (${signal ?? code})`), { code: 'EPROBEHOST' }));
      }
    });
    // The host must not keep a finished worker alive.
    child.unref();
    child.channel?.unref();
    return child;
  };

  type Ask = { type: 'probe'; file: string; timeoutMs: number } | { type: 'version' };
  const request = (message: Ask, signal?: AbortSignal): Promise<ProbeResult | string> => {
    if (signal?.aborted) return Promise.reject(abortError(signal));
    host ??= startHost();
    const child = host;
    const id = nextId++;
    child.channel?.ref();
    return new Promise<ProbeResult | string>((resolve, reject) => {
      const onAbort = (): void => {
        child.send({ type: 'abort', id } satisfies HostRequest);
      };
      pending.set(id, {
        resolve: (value) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(value);
        },
        reject: (error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(signal?.aborted ? abortError(signal) : error);
        },
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      child.send({ ...message, id } as HostRequest);
    }).finally(() => {
      if (pending.size === 0) child.channel?.unref();
    });
  };

  return {
    path: ffprobePath,
    get running(): number {
      return pending.size;
    },
    async probe(file, probeOptions) {
      if (!path.isAbsolute(file)) throw new TypeError(`probe needs an absolute path, got ${JSON.stringify(file)}`);
      return (await request({ type: 'probe', file, timeoutMs: probeOptions.timeoutMs }, probeOptions.signal)) as ProbeResult;
    },
    async version() {
      return (await request({ type: 'version' })) as string;
    },
  };
}

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  return Object.assign(new Error('probe aborted'), { name: 'AbortError' });
}
