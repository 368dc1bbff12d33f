/**
 * Finds (or obtains) the Temporal CLI binary whose dev server the project
 * runs. No download from release pages: on a machine without internet the CLI
 * is built from the Go module proxy and cached (src/temporal/go-binary.ts).
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { binaryWorks, findCachedGoBinary, goBinaryCandidates, obtainGoBinary, type GoBinarySpec } from './go-binary';

/** Later tags carry a `replace` directive that `go install` refuses. */
export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal@v1.5.1';

/** The CLI as a Go program; cached without a version folder, where earlier checkouts put it. */
export const TEMPORAL_CLI: GoBinarySpec = {
  title: 'the Temporal CLI',
  module: TEMPORAL_CLI_MODULE,
  cacheDir: 'temporal',
  binary: 'temporal',
  checkArgs: ['--version'],
};

const works = (binary: string): Promise<boolean> => binaryWorks(binary, TEMPORAL_CLI.checkArgs);

async function onPath(name: string): Promise<string | null> {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (await works(candidate)) return candidate;
  }
  return null;
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
 * `temporal` on PATH, the caches, a build from the Go module proxy,
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
  const cached = await findCachedGoBinary(TEMPORAL_CLI, options.projectRoot);
  if (cached) return cached;
  const tried = ['TEMPORAL_CLI_PATH (unset)', '`temporal` on PATH', ...goBinaryCandidates(TEMPORAL_CLI, options.projectRoot)];
  try {
    return await obtainGoBinary(TEMPORAL_CLI, { projectRoot: options.projectRoot, log });
  } catch (error) {
    tried.push(`go install (${error instanceof Error ? error.message : String(error)})`);
  }
  const downloaded = await sdkDownload(path.join(os.tmpdir(), 'temporal-sdk-cli'));
  if (downloaded) return downloaded;
  tried.push("the SDK's download (no internet?)");
  throw new Error(`no Temporal CLI found; tried ${tried.join(', ')}`);
}
