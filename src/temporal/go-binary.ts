/**
 * Go programs the project runs (the Temporal CLI, the Temporal server, its SQL
 * schema tool, the Temporal Web UI server), obtained without release pages:
 * built once from the Go module proxy with `go install` and cached per user
 * (SCANNER_CACHE_DIR) for every clone on the machine, one build at a time
 * across processes; a project's own `.cache/` is still looked at first.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, promises as fs, readFileSync, constants as fsConstants } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import lockfile from 'proper-lockfile';
import { scannerCacheDir } from '../config';

const run = promisify(execFile);

const PACKAGE_NAME = 'video-library-scanner';

/** One Go program: where it comes from and where it is cached. */
export interface GoBinarySpec {
  /** What the logs call it. */
  title: string;
  /** `module/path/cmd/x@version`, as `go install` takes it. */
  module: string;
  /** Folder under the cache; the version belongs in it, so a new version is a new build. */
  cacheDir: string;
  /** File name `go install` produces: the last element of the package path. */
  binary: string;
  /** Build tags (the server's Makefile builds with `disable_grpc_modules`). */
  tags?: string[];
  /** Arguments a working binary answers with exit status 0. */
  checkArgs: string[];
}

/**
 * The project's root (the folder with its package.json), whether this module
 * runs from `src/` or from `dist/src/`.
 */
export function findProjectRoot(from: string = __dirname): string {
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === PACKAGE_NAME) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no ${PACKAGE_NAME} package.json above ${from}`);
  }
}

/** True when `binary` exists, is executable and answers `checkArgs`. */
export async function binaryWorks(binary: string, checkArgs: string[]): Promise<boolean> {
  try {
    await fs.access(binary, fsConstants.X_OK);
    await run(binary, checkArgs, { timeout: 30_000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * Holds a lock while `fn` runs, so two processes never build into one folder
 * at once. The lock is proper-lockfile's: a directory `<lockFile>.lock` made
 * with one atomic `mkdir` (never seen half-written), kept fresh while held and
 * taken over only once it has gone stale (its holder died).
 */
export async function withLock<T>(lockFile: string, fn: () => Promise<T>, timeoutMs = 40 * 60_000, pollMs = 1000): Promise<T> {
  let compromised: Error | undefined;
  const release = await lockfile
    .lock(lockFile, {
      realpath: false,
      stale: LOCK_STALE_MS,
      retries: { retries: Math.ceil(timeoutMs / pollMs), factor: 1, minTimeout: pollMs, maxTimeout: pollMs },
      onCompromised: (error) => {
        compromised = error;
      },
    })
    .catch((error: unknown) => {
      throw new Error(`timed out waiting for ${lockFile}: ${error instanceof Error ? error.message : String(error)}`);
    });
  let result: T;
  try {
    result = await fn();
  } finally {
    await release().catch(() => undefined);
  }
  if (compromised) throw new Error(`the lock ${lockFile} was lost while held: ${compromised.message}`);
  return result;
}

/** A lock whose holder has not refreshed it for this long is dead; refreshed every half of it. */
const LOCK_STALE_MS = 60_000;

/** The `go` command: on PATH, or where the official tarball installs it. */
export async function findGo(): Promise<string | null> {
  for (const candidate of ['go', '/usr/local/go/bin/go']) {
    // `go` answers `go version`, not `--version`.
    const ok = await run(candidate, ['version'], { timeout: 30_000 }).then(
      () => true,
      () => false,
    );
    if (ok) return candidate;
  }
  return null;
}

/** Runs `go install` for the spec with GOBIN set to `binDir`, passing its output to `log`. */
export async function goInstall(go: string, spec: GoBinarySpec, binDir: string, log: (line: string) => void): Promise<void> {
  const args = ['install', ...(spec.tags?.length ? ['-tags', spec.tags.join(',')] : []), spec.module];
  log(`building ${spec.title}: go ${args.join(' ')} (minutes the first time, seconds once the modules are cached)`);
  await new Promise<void>((resolve, reject) => {
    const child = spawn(go, args, {
      // CGO off as in Temporal's own Makefile: a static binary that runs in any image.
      // -mod=mod: a surrounding go.mod, if any, must not constrain the install.
      env: { ...process.env, GOBIN: binDir, GOFLAGS: '-mod=mod', CGO_ENABLED: '0' },
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
 * Where a built `spec` may be found, in order: the project's `.cache/` (where
 * the image and earlier checkouts put it), then the per-user cache shared by
 * every clone on the machine (SCANNER_CACHE_DIR, by default
 * `${XDG_CACHE_HOME:-~/.cache}/video-library-scanner`), where builds go.
 */
export function goBinaryCandidates(spec: GoBinarySpec, projectRoot: string, cacheRoot: string = scannerCacheDir()): string[] {
  return [path.join(projectRoot, '.cache', spec.cacheDir, spec.binary), path.join(cacheRoot, spec.cacheDir, spec.binary)];
}

/** The first working cached binary of `spec`, or null. */
export async function findCachedGoBinary(spec: GoBinarySpec, projectRoot: string, cacheRoot?: string): Promise<string | null> {
  for (const candidate of goBinaryCandidates(spec, projectRoot, cacheRoot)) {
    if (await binaryWorks(candidate, spec.checkArgs)) return candidate;
  }
  return null;
}

/**
 * Returns a cached binary of `spec` (see goBinaryCandidates), building it
 * first into the per-user cache (under a lock, so parallel callers wait for
 * one build) when none works. Throws one line saying what was tried.
 */
export async function obtainGoBinary(
  spec: GoBinarySpec,
  options: { projectRoot: string; log?: (line: string) => void; cacheRoot?: string },
): Promise<string> {
  const log = options.log ?? (() => undefined);
  const found = await findCachedGoBinary(spec, options.projectRoot, options.cacheRoot);
  if (found) return found;
  const cached = goBinaryCandidates(spec, options.projectRoot, options.cacheRoot)[1] as string;
  const binDir = path.dirname(cached);
  const go = await findGo();
  if (!go) throw new Error(`${spec.title}: not in ${cached}, and no Go toolchain to build it (go install ${spec.module})`);
  await fs.mkdir(binDir, { recursive: true });
  await withLock(path.join(binDir, '.build.lock'), async () => {
    if (!(await binaryWorks(cached, spec.checkArgs))) await goInstall(go, spec, binDir, log);
  });
  if (await binaryWorks(cached, spec.checkArgs)) return cached;
  throw new Error(`${spec.title}: go install ${spec.module} built nothing usable at ${cached}`);
}
