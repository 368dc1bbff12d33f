/**
 * Replays recorded scan histories (a completed, a cancelled, a timed-out, a
 * retried and a continued-as-new scan) against today's workflow code: a change that would
 * break running scans fails here. Record new ones with RECORD_HISTORIES=1;
 * `v1-` histories predate the progress memo (patch `progress-memo`).
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

describe('recorded scan histories', () => {
  it('replay without nondeterminism against the current workflow code, for every kind of ending', async () => {
    const result = await replay();
    for (const kind of ['completed', 'cancelled', 'timeout', 'continued']) {
      expect(result.files.some((name) => name.startsWith(kind))).toBe(true);
      expect(result.files.some((name) => name.startsWith(`v1-${kind}`))).toBe(true);
    }
    expect(result.files.some((name) => name.startsWith('retried'))).toBe(true);
    expect(result.failures).toEqual([]);
    expect(result.replayed).toBe(result.files.length);
  });

  it('fail to replay against a deliberately incompatible workflow', async () => {
    // A copy of the workflows where discovery is no longer the first command.
    // Inside the project, so that the bundler resolves the SDK from node_modules.
    const cache = path.join(__dirname, '..', '..', '.cache');
    await fs.mkdir(cache, { recursive: true });
    const dir = await fs.mkdtemp(path.join(cache, 'incompatible-'));
    const src = path.join(__dirname, '..', '..', 'src');
    await fs.cp(src, path.join(dir, 'src'), { recursive: true });
    const file = path.join(dir, 'src', 'workflows', 'scan-library.ts');
    const code = await fs.readFile(file, 'utf8');
    const changed = code.replace('const discovered = await discoverFiles({', "await sleep('1s');\n      const discovered = await discoverFiles({");
    expect(changed).not.toBe(code);
    await fs.writeFile(file, changed);
    try {
      const result = await replay(path.join(dir, 'src', 'workflows', 'index.ts'));
      expect(result.failures.length).toBeGreaterThan(0);
      expect(result.failures.join('\n')).toMatch(/[Nn]ondeterminism|DeterminismViolation/);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
