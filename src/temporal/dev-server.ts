/**
 * The embedded Temporal server: the CLI's `server start-dev`, started when
 * nothing answers at TEMPORAL_ADDRESS, persisted under DATA_DIR (or in memory
 * for tests), with the `ScanRoot` search attribute registered.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Connection, type ConnectionOptions } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { Logger } from '../logger';
import { locateTemporalCli } from './cli';

/** Custom search attributes the service needs, registered idempotently. */
const SEARCH_ATTRIBUTES = { ScanRoot: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD };

export interface TemporalServerHandle {
  started: boolean;
  address: string;
  /** Stops the server if this call started it; leaves no process behind. */
  stop(): Promise<void>;
}

export interface TemporalServerOptions {
  address: string;
  uiPort: number;
  /** Where the server's database lives; null keeps it in memory. */
  dataDir: string | null;
  namespace: string;
  cliPath?: string;
  projectRoot: string;
  logger: Logger;
}

function splitAddress(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  return { host: address.slice(0, at) || '127.0.0.1', port: Number(address.slice(at + 1)) };
}

/** True when a Temporal frontend answers its health check at the address (over TLS and with an API key when given). */
export async function temporalAnswers(address: string, timeoutMs = 2000, security: Pick<ConnectionOptions, 'tls' | 'apiKey'> = {}): Promise<boolean> {
  const { host, port } = splitAddress(address);
  const open = await new Promise<boolean>((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
  if (!open) return false;
  try {
    const connection = await Connection.connect({ ...security, address, connectTimeout: timeoutMs });
    try {
      await connection.withDeadline(Date.now() + timeoutMs, () => connection.healthService.check({}));
      return true;
    } finally {
      await connection.close();
    }
  } catch {
    return false;
  }
}

/** Adds the service's search attributes through the operator service; existing ones are fine. */
export async function registerSearchAttributes(connection: Connection, namespace: string): Promise<void> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const missing = Object.fromEntries(Object.entries(SEARCH_ATTRIBUTES).filter(([name]) => !(name in (existing.customAttributes ?? {}))));
  if (Object.keys(missing).length === 0) return;
  try {
    await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: missing });
  } catch (error) {
    if (!/already exist/i.test(String(error))) throw error;
  }
}

/** Ensures a Temporal server answers at the address, starting the dev server when none does. */
export async function ensureTemporalServer(options: TemporalServerOptions): Promise<TemporalServerHandle> {
  if (await temporalAnswers(options.address)) {
    return { started: false, address: options.address, stop: async () => undefined };
  }
  const cli = await locateTemporalCli({
    cliPath: options.cliPath,
    projectRoot: options.projectRoot,
    log: (line) => options.logger.info({ component: 'temporal-cli' }, line),
  });
  const { host, port } = splitAddress(options.address);
  const args = ['server', 'start-dev', '--ip', host, '--port', String(port), '--ui-port', String(options.uiPort), '--namespace', options.namespace, '--log-level', 'error'];
  for (const name of Object.keys(SEARCH_ATTRIBUTES)) args.push('--search-attribute', `${name}=Keyword`);
  if (options.dataDir !== null) {
    await fs.mkdir(options.dataDir, { recursive: true });
    args.push('--db-filename', path.join(options.dataDir, 'temporal.sqlite'));
  }
  const child: ChildProcess = spawn(cli, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  const keep = (chunk: Buffer): void => {
    output.push(...chunk.toString().split('\n').filter(Boolean));
    if (output.length > 30) output.splice(0, output.length - 30);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  // Should this process die without stopping it, the server must not linger.
  const killOnExit = (): void => {
    if (!exited) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  const deadline = Date.now() + 90_000;
  while (!(await temporalAnswers(options.address, 1000))) {
    if (exited || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the Temporal dev server did not start at ${options.address}: ${output.slice(-5).join(' | ') || 'no output'}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  options.logger.info({ address: options.address, ui: options.uiPort, pid: child.pid }, 'temporal dev server started');
  return {
    started: true,
    address: options.address,
    stop: async () => {
      process.removeListener('exit', killOnExit);
      if (exited) return;
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(timer);
    },
  };
}
