/**
 * Real processes for reliability tests: workers and APIs started from the
 * TypeScript sources (through scripts/ts-register.js) and killed for real.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');
const TS_REGISTER = path.join(ROOT, 'scripts', 'ts-register.js');

export interface Part {
  child: ChildProcess;
  /** Everything it printed so far. */
  output: () => string;
  /** Resolves with the exit code or signal once it has exited. */
  exited: Promise<number | NodeJS.Signals | null>;
}

/**
 * Starts `src/<entry>.ts` as its own process (as another user when `as` is
 * given) and waits until its output matches `ready`.
 */
export async function startPart(
  entry: string,
  env: Record<string, string>,
  ready: RegExp,
  timeoutMs = 60_000,
  as?: { uid: number; gid: number },
): Promise<Part> {
  // A worker loads the workflow bundle the run's global setup built (WORKFLOW_BUNDLE) instead of running webpack again.
  const bundle = process.env.TEMPORAL_TEST_WORKFLOW_BUNDLE;
  const child = spawn(process.execPath, ['--require', TS_REGISTER, path.join(ROOT, 'src', `${entry}.ts`)], {
    env: { ...process.env, LOG_LEVEL: 'info', ...(bundle ? { WORKFLOW_BUNDLE: bundle } : {}), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(as ? { uid: as.uid, gid: as.gid } : {}),
  });
  let text = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  const exited = new Promise<number | NodeJS.Signals | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
  const deadline = Date.now() + timeoutMs;
  while (!ready.test(text)) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${entry} exited before it was ready:\n${text.slice(-2000)}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${entry} not ready within ${timeoutMs} ms:\n${text.slice(-2000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { child, output: () => text, exited };
}

/** Stops a part if it still runs (SIGKILL), and waits for it. */
export async function killPart(part: Part | undefined): Promise<void> {
  if (!part) return;
  if (part.child.exitCode === null && part.child.signalCode === null) part.child.kill('SIGKILL');
  await part.exited;
}

/** A TCP port on 127.0.0.1 that nothing listens on at the moment. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * A frontend port whose block (P … P+8, see src/temporal's serverPorts) and the Web UI's port
 * (P+9) are free, below 32768 as the server's membership table needs, and below
 * the kernel's ephemeral range: the kernel never hands out such a port for an
 * outgoing connection or a bind to port 0, so between this check and the
 * server's bind only a deliberate listener could take it.
 */
export async function freeServerPorts(): Promise<{ frontend: number; ui: number }> {
  const ephemeralLow = Number((await fs.readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')).trim().split(/\s+/)[0]);
  const highest = Math.min(32_759, ephemeralLow - 1) - 9;
  const canBind = (port: number): Promise<boolean> =>
    new Promise((resolve) => {
      const server = net.createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * (highest - 20_000));
    const free = await Promise.all([0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => canBind(port + i)));
    if (free.every(Boolean)) return { frontend: port, ui: port + 9 };
  }
}
