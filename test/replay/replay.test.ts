/**
 * Replays recorded scan histories (a completed, a cancelled, a timed-out, a
 * retried and a continued-as-new scan) and histories of the per-root guard
 * against today's workflow code: a change that would break running scans
 * fails here. Record new ones with RECORD_HISTORIES=1; `v1-` histories
 * predate the progress memo (patch `progress-memo`); `paused-` histories
 * were paused and resumed (patch `pause-resume`); `guard-v1-` histories
 * are guards that answered claims through update-with-start, `guard-v2-`
 * guards given their scan id by the API (scripts/record-guard-histories.ts).
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { HISTORIES_DIR } from '../support/histories';

const SCRIPT = path.join(__dirname, '..', '..', 'scripts', 'replay-histories.js');

async function replay(workflowsPath?: string): Promise<{ replayed: number; files: string[]; failures: string[] }> {
  const { stdout } = await promisify(execFile)(process.execPath, [SCRIPT, HISTORIES_DIR, ...(workflowsPath ? [workflowsPath] : [])], {
    maxBuffer: 16 * 1024 * 1024,
  });
  return JSON.parse(stdout.trim().split('\n').pop() as string) as { replayed: number; files: string[]; failures: string[] };
}

/**
 * Guards recorded as deployments have them: before the API chose scan ids
 * (v1: a scan that completed, one claimed twice while it ran, one cancelled)
 * and since (v2: a scan that completed, one cancelled); v3 (test/lifecycle/pending-pause.test.ts):
 * a guard that held a pause of its pending job and started its scan paused.
 */
const GUARD_HISTORIES = ['guard-v1-completed', 'guard-v1-claimed-twice', 'guard-v1-cancelled', 'guard-v2-completed', 'guard-v2-cancelled', 'guard-v3-paused-pending'];

/** Scans paused and resumed (test/lifecycle/pause.test.ts). */
const PAUSED_HISTORIES = ['paused-0', 'paused-cancelled-0', 'paused-worker-killed-0'];

/** Runs of a scan schedule (test/lifecycle/schedules.test.ts): one that started its root's guard, one that found the root held; (scheduled-waiting-job.test.ts) one that waited for a slot as a pending job paused meanwhile, one cancelled while it waited; (scheduled-closing-guard.test.ts) one that ended a closing guard and started its scan. */
const SCHEDULED_HISTORIES = ['scheduled-started', 'scheduled-skipped', 'scheduled-waited-paused', 'scheduled-waiting-cancelled', 'scheduled-closing-guard'];

/** Scans with a thumbnail phase (patch `thumbnails`, test/thumbnails/scan-thumbnails.test.ts): completed, and cancelled during it. */
const THUMBNAIL_HISTORIES = ['thumbnails-0', 'thumbnails-cancelled-0'];

/** A completed scan that finished in a local activity (patch `local-finish`, test/workflows/scan-shape.test.ts). */
const LOCAL_FINISH_HISTORIES = ['local-finish-0'];

/** Replays the histories against a copy of src/ whose `file` went through `change`. */
async function replayChanged(file: string, change: (code: string) => string): Promise<{ replayed: number; files: string[]; failures: string[] }> {
  // Inside the project, so that the bundler resolves the SDK from node_modules.
  const cache = path.join(__dirname, '..', '..', '.cache');
  await fs.mkdir(cache, { recursive: true });
  const dir = await fs.mkdtemp(path.join(cache, 'incompatible-'));
  try {
    await fs.cp(path.join(__dirname, '..', '..', 'src'), path.join(dir, 'src'), { recursive: true });
    const target = path.join(dir, 'src', 'workflows', file);
    const code = await fs.readFile(target, 'utf8');
    const changed = change(code);
    expect(changed).not.toBe(code);
    await fs.writeFile(target, changed);
    return await replay(path.join(dir, 'src', 'workflows', 'index.ts'));
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

describe('recorded scan histories', () => {
  it('replay without nondeterminism against the current workflow code, for every kind of ending', async () => {
    const result = await replay();
    for (const kind of ['completed', 'cancelled', 'timeout', 'continued']) {
      expect(result.files.some((name) => name.startsWith(kind))).toBe(true);
      expect(result.files.some((name) => name.startsWith(`v1-${kind}`))).toBe(true);
    }
    expect(result.files.some((name) => name.startsWith('retried'))).toBe(true);
    // Scans paused and resumed (patch `pause-resume`): through the API, cancelled while paused, across a worker killed while paused.
    for (const paused of PAUSED_HISTORIES) expect(result.files).toContain(`${paused}.binpb`);
    for (const scheduled of SCHEDULED_HISTORIES) expect(result.files).toContain(`${scheduled}.binpb`);
    for (const thumbnails of THUMBNAIL_HISTORIES) expect(result.files).toContain(`${thumbnails}.binpb`);
    for (const guard of GUARD_HISTORIES) expect(result.files).toContain(`${guard}.binpb`);
    for (const local of LOCAL_FINISH_HISTORIES) expect(result.files).toContain(`${local}.binpb`);
    expect(result.failures).toEqual([]);
    expect(result.replayed).toBe(result.files.length);
  });

  it('fail to replay against a deliberately incompatible workflow', async () => {
    // A copy of the workflows where discovery is no longer the first command.
    const result = await replayChanged('scan-library.ts', (code) =>
      code.replace('const discovered = await discoverFiles({', "await sleep('1s');\n      const discovered = await discoverFiles({"),
    );
    expect(result.failures.length).toBeGreaterThan(0);
    expect(result.failures.join('\n')).toMatch(/[Nn]ondeterminism|DeterminismViolation/);
  });

  it('fail to replay the guard histories against a guard that no longer starts the scan first', async () => {
    // A timer before the child start: every recorded guard now disagrees with its history.
    const result = await replayChanged('scan-root-guard.ts', (code) =>
      code
        .replace("import {\n", "import {\n  sleep,\n")
        .replace('const child = await startChild(scanLibrary, {', "await sleep('1s');\n  const child = await startChild(scanLibrary, {"),
    );
    for (const guard of GUARD_HISTORIES) {
      expect(result.failures.find((failure) => failure.startsWith(`${guard}.binpb`))).toMatch(/[Nn]ondeterminism|DeterminismViolation/);
    }
  });
});
