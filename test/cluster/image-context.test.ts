/**
 * The image-context check (scripts/check-image-context.js) catches what it
 * is for: a variant of the Dockerfile that copies a file whose imports the
 * image does not carry (the Dockerfile as it was, whose build failed in the
 * image because bench/run.ts imports test/support, never copied) fails it.
 * So does one whose workers load a workflow bundle (WORKFLOW_BUNDLE) that its
 * build never wrote. That the project's own Dockerfile passes is `.ci/run`'s
 * step, which runs the same check once; running it here too would only repeat it.
 * `npm ci` is replaced by a hard-linked copy of the checkout's node_modules.
 */
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');
const CHECK = path.join(ROOT, 'scripts', 'check-image-context.js');

function check(dockerfile: string): { status: number | null; output: string } {
  const result = spawnSync(process.execPath, [CHECK, '--dockerfile', dockerfile, '--node-modules-from', path.join(ROOT, 'node_modules')], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 10 * 60_000,
  });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

let dir: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'image-context-test-'));
});

afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** The check's answer on the project's Dockerfile with `from` replaced by `to`, written as `name`. */
async function checkVariant(name: string, from: string, to: string): Promise<{ status: number | null; output: string }> {
  const dockerfile = await fs.readFile(path.join(ROOT, 'Dockerfile'), 'utf8');
  const variant = dockerfile.replace(from, to);
  expect(variant).not.toBe(dockerfile);
  const file = path.join(dir, name);
  await fs.writeFile(file, variant);
  return check(file);
}

describe('the image-context check', () => {
  it('fails when the build needs a file the Dockerfile does not copy', async () => {
    // Copying bench/ makes the build compile it, and bench imports test/support, which is not copied.
    const { status, output } = await checkVariant('Dockerfile.bench', 'COPY src ./src\n', 'COPY src ./src\nCOPY bench ./bench\n');
    expect(status).toBe(1);
    expect(output).toMatch(/Cannot find module '\.\.\/test\/support\/\w+'/);
    // `npm ci` builds (its `prepare` script): the build of what was copied fails there.
    expect(output).toMatch(/image-context check FAILED: RUN .*npm (ci|run prepare)/);
  }, 10 * 60_000);

  it('fails when the image points its workers at a workflow bundle the build did not write', async () => {
    const { status, output } = await checkVariant('Dockerfile.no-bundle', ' && node dist/src/worker-main.js --write-bundle dist/workflow-bundle.js', '');
    expect(status).toBe(1);
    expect(output).toMatch(/image-context check FAILED: stage app sets WORKFLOW_BUNDLE=\/app\/dist\/workflow-bundle\.js, which the build did not write/);
  }, 10 * 60_000);
});
