/**
 * Real processes for reliability tests: workers and APIs started from the
 * TypeScript sources (through scripts/ts-register.js) and killed for real.
 */
import { spawn, type ChildProcess } from 'node:child_process';
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
  const child = spawn(process.execPath, ['--require', TS_REGISTER, path.join(ROOT, 'src', `${entry}.ts`)], {
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
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
