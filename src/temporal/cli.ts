/**
 * Finds (or obtains) the Temporal CLI binary whose dev server the project
 * runs. No download from release pages: on a machine without internet the CLI
 * is built from the Go module proxy and cached under `.cache/temporal/`.
 */
import { execFile, spawn } from 'node:child_process';
import { promises as fs, constants as fsConstants } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Later tags carry a `replace` directive that `go install` refuses. */
export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal@v1.5.1';

async function works(binary: string): Promise<boolean> {
  try {
    await fs.access(binary, fsConstants.X_OK);
    await run(binary, ['--version'], { timeout: 30_000 });
    return true;
  } catch {
    return false;
  }
}

async function onPath(name: string): Promise<string | null> {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (await works(candidate)) return candidate;
  }
  return null;
}

/** Holds a lock file while `fn` runs, so two processes never build at once. */
async function withLock<T>(lockFile: string, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 20 * 60_000;
  for (;;) {
    try {
      const handle = await fs.open(lockFile, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      break;
    } catch {
      const holder = Number(await fs.readFile(lockFile, 'utf8').catch(() => '0'));
      const alive = holder > 0 && (() => { try { process.kill(holder, 0); return true; } catch { return false; } })();
      if (!alive) await fs.rm(lockFile, { force: true });
      else if (Date.now() > deadline) throw new Error(`timed out waiting for ${lockFile}`);
      else await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
  try {
    return await fn();
  } finally {
    await fs.rm(lockFile, { force: true });
  }
}

async function goInstall(cacheDir: string, log: (line: string) => void): Promise<void> {
  log(`building the Temporal CLI: go install ${TEMPORAL_CLI_MODULE} (a few minutes the first time)`);
  await new Promise<void>((resolve, reject) => {
    const child = spawn('go', ['install', TEMPORAL_CLI_MODULE], {
      env: { ...process.env, GOBIN: cacheDir, GOFLAGS: '-mod=mod' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const tail: string[] = [];
    const collect = (chunk: Buffer): void => {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        tail.push(line);
        if (tail.length > 20) tail.shift();
        log(line);
      }
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`go install exited ${code}: ${tail.slice(-3).join(' | ')}`))));
  });
}

/**
 * The SDK's own download of the CLI (needs internet): the testing package's
 * ephemeral server fetches it into a cache directory.
 */
async function sdkDownload(cacheDir: string): Promise<string | null> {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { TestWorkflowEnvironment } = require('@temporalio/testing') as typeof import('@temporalio/testing');
    const env = await TestWorkflowEnvironment.createLocal({ server: { executable: { type: 'cached-download', downloadDir: cacheDir } } });
    await env.teardown();
    for (const entry of await fs.readdir(cacheDir)) {
      const candidate = path.join(cacheDir, entry);
      if (entry.startsWith('temporal') && (await works(candidate))) return candidate;
    }
  } catch {
    // No internet, or no such build: the caller reports what was tried.
  }
  return null;
}

/**
 * Returns the absolute path of a working Temporal CLI: TEMPORAL_CLI_PATH,
 * `temporal` on PATH, the project cache, a build from the Go module proxy,
 * the SDK's download; one clear error when none works.
 */
export async function locateTemporalCli(options: { cliPath?: string; projectRoot: string; log?: (line: string) => void }): Promise<string> {
  const log = options.log ?? (() => undefined);
  if (options.cliPath) {
    const resolved = path.resolve(options.cliPath);
    if (await works(resolved)) return resolved;
    throw new Error(`TEMPORAL_CLI_PATH=${options.cliPath} is not an executable Temporal CLI`);
  }
  const found = await onPath('temporal');
  if (found) return found;
  const cacheDir = path.join(options.projectRoot, '.cache', 'temporal');
  const cached = path.join(cacheDir, 'temporal');
  if (await works(cached)) return cached;
  await fs.mkdir(cacheDir, { recursive: true });
  const tried = ['TEMPORAL_CLI_PATH (unset)', '`temporal` on PATH', cached];
  // `go` answers `go version`, not `--version`.
  const hasGo = await run('go', ['version'], { timeout: 30_000 }).then(
    () => true,
    () => false,
  );
  if (hasGo) {
    try {
      await withLock(path.join(cacheDir, '.build.lock'), async () => {
        if (!(await works(cached))) await goInstall(cacheDir, log);
      });
      if (await works(cached)) return cached;
      tried.push('go install (built nothing usable)');
    } catch (error) {
      tried.push(`go install (${error instanceof Error ? error.message : String(error)})`);
    }
  } else {
    tried.push('go install (no Go toolchain)');
  }
  const downloaded = await sdkDownload(path.join(os.tmpdir(), 'temporal-sdk-cli'));
  if (downloaded) return downloaded;
  tried.push("the SDK's download (no internet?)");
  throw new Error(`no Temporal CLI found; tried ${tried.join(', ')}`);
}
