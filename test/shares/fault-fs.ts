/**
 * The share tests' FUSE filesystem (fault-fs.py, Debian's fuse3 and
 * python3-fusepy) from the test's side: mounts it over a folder of real
 * clips, sets its rules, and takes it down again, whatever state its
 * callers are in.
 */
import { spawn, type ChildProcess, execFileSync } from 'node:child_process';
import { promises as fs, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** A call of the filesystem a rule applies to. */
export type FaultOp = 'getattr' | 'readdir' | 'open' | 'read' | '*';

/** What a rule does to the calls it matches. */
export type FaultAction = { action: 'hang' } | { action: 'delay'; ms: number } | { action: 'eio' } | { action: 'eacces' } | { action: 'vanish' };

/** A call hanging in the daemon now. */
export interface HungCall {
  op: string;
  path: string;
  pid: number;
}

/** A mounted fault filesystem. */
export interface FaultFs {
  mountpoint: string;
  /** Adds a rule for `relative` (a path from the mount's root, e.g. `/hang/b.mp4`); calls of `excludePid` are left alone. */
  rule(op: FaultOp, relative: string, fault: FaultAction, options?: { excludePid?: number; onlyPid?: number }): Promise<void>;
  /** The calls hanging now. */
  hung(): Promise<HungCall[]>;
  /** How many `op` calls were made on `relative` (a path from the mount's root) or below it. */
  calls(op: FaultOp, relative: string): Promise<number>;
  /** Drops every rule and answers every hanging call. */
  clear(): Promise<void>;
  /** Unmounts it as an administrator would (the mount point is an empty folder again). */
  unmount(): Promise<void>;
  /** Ends it whatever its state: aborts the connection (every caller waiting in the kernel is released), kills the daemon, unmounts. */
  destroy(): Promise<void>;
}

const PYTHON = '/usr/bin/python3';
const CONNECTIONS = '/sys/fs/fuse/connections';

async function send(socketPath: string, message: Record<string, unknown>): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(socketPath);
    let buffer = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify(message)}\n`));
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const end = buffer.indexOf('\n');
      if (end < 0) return;
      socket.end();
      const reply = JSON.parse(buffer.slice(0, end)) as Record<string, unknown>;
      if (reply.ok !== true) reject(new Error(`fault-fs: ${String(reply.error)}`));
      else resolve(reply);
    });
    socket.on('error', reject);
  });
}

function isMounted(mountpoint: string): boolean {
  try {
    execFileSync('mountpoint', ['-q', mountpoint]);
    return true;
  } catch {
    return false;
  }
}

/** The fusectl connection of a FUSE mount: its device's minor number. */
function connectionOf(mountpoint: string): string {
  const dev = statSync(mountpoint).dev;
  const minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
  return path.join(CONNECTIONS, String(minor));
}

/** Mounts fusectl where it is not (it is how a hung connection is aborted). */
function ensureFusectl(): void {
  if (isMounted(CONNECTIONS)) return;
  execFileSync('mount', ['-t', 'fusectl', 'fusectl', CONNECTIONS]);
}

/** Mounts fault-fs.py's view of `source` at `mountpoint` (created if need be). */
export async function mountFaultFs(source: string, mountpoint: string, controlDir: string, options: { maxHangSeconds?: number } = {}): Promise<FaultFs> {
  ensureFusectl();
  await fs.mkdir(mountpoint, { recursive: true });
  const control = path.join(controlDir, `fault-fs-${process.pid}-${Date.now()}.sock`);
  const daemon: ChildProcess = spawn(PYTHON, [path.join(__dirname, 'fault-fs.py'), source, mountpoint, control], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, FAULT_FS_MAX_HANG_SECONDS: String(options.maxHangSeconds ?? 300) },
  });
  const exited = new Promise<void>((resolve) => daemon.once('exit', () => resolve()));
  let mounted = true;
  for (let i = 0; !isMounted(mountpoint) || !(await fs.stat(control).then(() => true, () => false)); i++) {
    if (daemon.exitCode !== null || i > 200) throw new Error(`fault-fs did not mount at ${mountpoint}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const connection = connectionOf(mountpoint);

  return {
    mountpoint,
    async rule(op, relative, fault, options = {}) {
      await send(control, { cmd: 'rule', op, path: relative, ...fault, ...(options.excludePid !== undefined ? { exclude_pid: options.excludePid } : {}), ...(options.onlyPid !== undefined ? { only_pid: options.onlyPid } : {}) });
    },
    async hung() {
      return (await send(control, { cmd: 'hung' })).hung as HungCall[];
    },
    async calls(op, relative) {
      return (await send(control, { cmd: 'calls', op, under: relative })).count as number;
    },
    async clear() {
      if (mounted) await send(control, { cmd: 'clear' });
    },
    async unmount() {
      await send(control, { cmd: 'clear' });
      execFileSync('umount', [mountpoint]);
      mounted = false;
      await exited;
    },
    async destroy() {
      await fs.writeFile(path.join(connection, 'abort'), '1').catch(() => undefined);
      if (daemon.exitCode === null && daemon.signalCode === null) {
        daemon.kill('SIGKILL');
        await exited;
      }
      // Whatever `mountpoint` says: an aborted connection fails its stat (ENOTCONN) and looks unmounted.
      try {
        execFileSync('umount', ['-l', mountpoint], { stdio: 'ignore' });
      } catch {
        // Not mounted any more.
      }
      await fs.rm(control, { force: true });
    },
  };
}
