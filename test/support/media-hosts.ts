/**
 * Test support for the worker's media hosts: a host with hostile behaviour
 * on demand (hostile-media-host.ts), the host processes found in /proc, and
 * a single file probed through the hosts as a scan probes it.
 */
import { promises as fs, readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { HostEntry } from '../../src/media-host/pool';
import type { FileProber } from '../../src/probe/contained';
import type { ProbeResult } from '../../src/probe/parse';

/** What a test host does beyond the real one (see hostile-media-host.ts). */
export interface HostileOptions {
  /** Dies of SIGSEGV on a file whose name contains this text. */
  crashOn?: string;
  /** Every path handed to the prober is appended to this file. */
  probeLog?: string;
  /** Every host started appends its pid to this file. */
  startLog?: string;
}

/** The test host, for IsolatedProberOptions.host. */
export function hostileHost(options: HostileOptions = {}): HostEntry {
  const args: string[] = [];
  if (options.crashOn !== undefined) args.push('--crash-on', options.crashOn);
  if (options.probeLog !== undefined) args.push('--probe-log', options.probeLog);
  if (options.startLog !== undefined) args.push('--start-log', options.startLog);
  return { module: path.join(__dirname, 'hostile-media-host.ts'), args };
}

/** The pids a start log holds: one per host started so far. */
export function hostsStarted(startLog: string): number[] {
  let text = '';
  try {
    text = readFileSync(startLog, 'utf8');
  } catch {
    // No host has started yet.
  }
  return text.split('\n').filter((line) => line !== '').map(Number);
}

/**
 * A regular file (`<name>.stand-in`) in `folder` that a test host probes
 * as `target` in its place: a FIFO that never ends behind a file that passes
 * the checks inside its root.
 */
export function standIn(folder: string, target: string): string {
  const file = path.join(folder, `${path.basename(target)}.stand-in`);
  writeFileSync(file, target);
  return file;
}

/** The live media host processes that are children of `parent` (this process by default), from /proc. */
export async function hostProcesses(parent = process.pid): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await fs.readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[1]) !== parent || fields[0] === 'Z') continue;
    const cmdline = await fs.readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes('media-host')) pids.push(Number(entry));
  }
  return pids;
}

/**
 * Probes one file through the hosts as a scan does (probeFile), its folder
 * taken for the scan's root, and answers as a prober does. Sends it at once:
 * the pool holds it when this returns.
 */
export function probeOne(prober: FileProber, file: string, options: { timeoutMs: number; signal?: AbortSignal }): Promise<ProbeResult> {
  let realRoot = path.dirname(file);
  let discovered = { size: 0, mtimeMs: 0 };
  try {
    realRoot = realpathSync(realRoot);
    const stat = statSync(file);
    discovered = { size: stat.size, mtimeMs: stat.mtimeMs };
  } catch {
    // Gone or unreadable: the host's checks say so.
  }
  return prober
    .probeFile({ file, realRoot, discovered, timeoutMs: options.timeoutMs, signal: options.signal })
    .then(({ outcome }) => (outcome.kind === 'probed' ? { ok: true, metadata: outcome.metadata } : { ok: false, reason: outcome.reason }));
}
