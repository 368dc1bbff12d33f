/**
 * The image-context check (no Docker engine needed): lays out in a clean
 * folder exactly what the Dockerfile's build stage copies from the context
 * (after .dockerignore), runs that stage's install and build steps there, then
 * checks that what later stages copy out of it exists and that every package
 * the built code requires is installed after the production prune. A file the
 * build needs that the Dockerfile does not copy fails it, as it would fail
 * `docker build`.
 *
 *   node scripts/check-image-context.js [--dockerfile FILE] [--stage build] [--keep]
 *                                       [--node-modules-from DIR]
 *
 * RUN steps that install system packages (apt-get) are skipped: the machine
 * running the check provides those (python3, make, g++). --node-modules-from
 * replaces `npm ci` with a hard-linked copy of DIR followed by `npm run prepare`,
 * as `npm ci` runs it (for tests; CI runs npm ci);
 * npm only unlinks and renames in it, and its hidden lockfile is not shared.
 * Exit status 0 when the image would build, 1 with the failing step otherwise.
 */
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');

function parseArgs(argv) {
  const options = { dockerfile: path.join(ROOT, 'Dockerfile'), stage: 'build', keep: false, nodeModulesFrom: null };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--dockerfile') options.dockerfile = path.resolve(argv[++i]);
    else if (arg === '--stage') options.stage = argv[++i];
    else if (arg === '--keep') options.keep = true;
    else if (arg === '--node-modules-from') options.nodeModulesFrom = path.resolve(argv[++i]);
    else throw new Error(`unknown argument ${arg}`);
  }
  return options;
}

/** Dockerfile instructions: continuation lines joined, comments dropped. */
function instructions(text) {
  const result = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (!current && (line.trim().startsWith('#') || line.trim() === '')) continue;
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    current += line;
    const match = /^\s*(\w+)\s+(.*)$/s.exec(current);
    if (match) result.push({ op: match[1].toUpperCase(), args: match[2].trim() });
    current = '';
  }
  return result;
}

/** Stages by name (or index): their instructions after FROM. */
function stages(list) {
  const byName = new Map();
  let current = null;
  let index = 0;
  for (const ins of list) {
    if (ins.op === 'FROM') {
      const match = /^(\S+)(?:\s+AS\s+(\S+))?/i.exec(ins.args);
      current = { base: match[1], name: match[2] ?? String(index), steps: [] };
      byName.set(current.name, current);
      index++;
    } else if (current) {
      current.steps.push(ins);
    }
  }
  return byName;
}

/** Arguments of COPY/RUN in exec (JSON) or shell form. */
function words(args) {
  if (args.startsWith('[')) return JSON.parse(args);
  return args.split(/\s+/).filter(Boolean);
}

/** The variables an ENV instruction sets (`NAME=value …`, a value in double quotes or without spaces). */
function envAssignments(args) {
  return Object.fromEntries([...args.matchAll(/(\w+)=("[^"]*"|\S+)/g)].map((match) => [match[1], match[2].replace(/^"|"$/g, '')]));
}

/** .dockerignore patterns as regular expressions on context-relative paths. */
function ignoreRules(contextDir) {
  const file = path.join(contextDir, '.dockerignore');
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((pattern) => {
      if (pattern.startsWith('!')) throw new Error(`.dockerignore exceptions (${pattern}) are not supported by this check`);
      const clean = pattern.replace(/^\/+|\/+$/g, '');
      const source = clean
        .split(/(\*\*\/?|\*|\?)/)
        .map((part) => (part === '**/' || part === '**' ? '(?:.*/)?' : part === '*' ? '[^/]*' : part === '?' ? '[^/]' : part.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
        .join('');
      // A pattern that names a folder excludes what is inside it too.
      return new RegExp(`^${source}(?:/.*)?$`);
    });
}

function ignored(rules, relative) {
  return rules.some((rule) => rule.test(relative));
}

/** Sources of a COPY resolved in the context (simple `*` globs in the last element). */
function expandSource(contextDir, source) {
  const clean = source.replace(/^\.\/+/, '').replace(/\/+$/, '') || '.';
  if (!/[*?]/.test(clean)) return [clean];
  const dir = path.dirname(clean);
  const pattern = new RegExp(`^${path.basename(clean).replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  const found = fs.existsSync(path.join(contextDir, dir)) ? fs.readdirSync(path.join(contextDir, dir)).filter((name) => pattern.test(name)) : [];
  return found.map((name) => path.join(dir, name));
}

function copyTree(contextDir, rules, relative, target) {
  const from = path.join(contextDir, relative);
  const stat = fs.statSync(from);
  if (stat.isDirectory()) {
    fs.mkdirSync(target, { recursive: true });
    for (const name of fs.readdirSync(from)) {
      const child = relative === '.' ? name : path.join(relative, name);
      if (!ignored(rules, child)) copyTree(contextDir, rules, child, path.join(target, name));
    }
  } else {
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.copyFileSync(from, target);
    fs.chmodSync(target, stat.mode);
  }
}

/** Maps a path inside the image (WORKDIR-relative or absolute under it) into the clean folder. */
function inImage(folder, workdir, imagePath) {
  const absolute = path.posix.resolve(workdir, imagePath);
  const rel = path.posix.relative(WORKDIR_ROOT.value, absolute);
  if (rel.startsWith('..')) throw new Error(`the check maps only paths under ${WORKDIR_ROOT.value}; the Dockerfile uses ${absolute}`);
  return path.join(folder, rel);
}

const WORKDIR_ROOT = { value: '/' };

class CheckFailed extends Error {}

function fail(message) {
  throw new CheckFailed(message);
}

/**
 * Required only where installed: the Temporal CLI lookup falls back to the
 * SDK's download through the testing package inside a try (src/temporal/cli.ts).
 */
const OPTIONAL_AT_RUNTIME = new Set(['@temporalio/testing']);

/** Bare package names the built JavaScript requires (relative and node: imports aside). */
function requiredPackages(dir) {
  const names = new Set();
  const walk = (current) => {
    for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
      const full = path.join(current, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.js')) {
        const text = fs.readFileSync(full, 'utf8');
        for (const match of text.matchAll(/require\(["']([^"'./][^"']*)["']\)/g)) {
          const spec = match[1];
          if (spec.startsWith('node:') || require('node:module').builtinModules.includes(spec.split('/')[0])) continue;
          if (!OPTIONAL_AT_RUNTIME.has(spec)) names.add({ spec, from: full });
        }
      }
    }
  };
  walk(dir);
  return [...names];
}

function main() {
  const options = parseArgs(process.argv.slice(2));
  // The context is the checkout, whichever Dockerfile is checked (tests check variants).
  const contextDir = ROOT;
  const all = stages(instructions(fs.readFileSync(options.dockerfile, 'utf8')));
  const stage = all.get(options.stage);
  if (!stage) throw new Error(`no stage named ${options.stage} in ${options.dockerfile}`);
  const rules = ignoreRules(contextDir);
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'image-context-'));
  process.stdout.write(`image-context check: stage ${options.stage} of ${path.relative(ROOT, options.dockerfile) || options.dockerfile} in ${folder}\n`);
  let workdir = '/';
  const env = { ...process.env };
  try {
    for (const step of stage.steps) {
      if (step.op === 'WORKDIR') {
        workdir = path.posix.resolve(workdir, step.args);
        if (WORKDIR_ROOT.value === '/') WORKDIR_ROOT.value = workdir;
        fs.mkdirSync(inImage(folder, workdir, '.'), { recursive: true });
      } else if (step.op === 'ENV') {
        Object.assign(env, envAssignments(step.args));
      } else if (step.op === 'COPY' || step.op === 'ADD') {
        const parts = words(step.args).filter((word) => !word.startsWith('--chown') && !word.startsWith('--chmod'));
        if (parts.some((word) => word.startsWith('--from'))) continue;
        const dest = parts.pop();
        const sources = parts.flatMap((source) => expandSource(contextDir, source));
        for (const source of sources) {
          if (!fs.existsSync(path.join(contextDir, source))) fail(`${step.op} ${step.args}: ${source} is not in the context`);
          if (source !== '.' && ignored(rules, source)) fail(`${step.op} ${step.args}: ${source} is excluded by .dockerignore`);
          const target = dest.endsWith('/') || sources.length > 1 ? path.join(inImage(folder, workdir, dest), path.basename(source)) : inImage(folder, workdir, dest);
          copyTree(contextDir, rules, source, target);
        }
        process.stdout.write(`  ${step.op} ${step.args}\n`);
      } else if (step.op === 'RUN') {
        const command = step.args.startsWith('[') ? JSON.parse(step.args).join(' ') : step.args;
        if (/\bapt-get\b|\bapk\b/.test(command)) {
          process.stdout.write(`  RUN ${command}\n    (skipped: system packages come from the machine running the check)\n`);
          continue;
        }
        let shell = command;
        if (options.nodeModulesFrom && /\bnpm ci\b/.test(command)) {
          // Hard links share file contents with DIR: npm rewrites its hidden lockfile in
          // place, so that one file is dropped from the copy rather than shared.
          // `npm ci` runs the package's `prepare` script (the build) after installing: so does the copy.
          shell = command.replace(/\bnpm ci\b/, `cp -al '${options.nodeModulesFrom}' node_modules && rm -f node_modules/.package-lock.json && npm run prepare`);
        }
        process.stdout.write(`  RUN ${shell}\n`);
        const result = spawnSync('sh', ['-c', shell], { cwd: inImage(folder, workdir, '.'), env, stdio: 'inherit' });
        if (result.status !== 0) fail(`RUN ${command} exited ${result.status ?? result.signal} (a file it needs may not be copied)`);
      }
    }
    // What later stages take from this one must exist.
    for (const other of all.values()) {
      for (const step of other.steps) {
        if (step.op !== 'COPY') continue;
        const parts = words(step.args);
        const from = parts.find((word) => word.startsWith('--from='));
        if (!from || from.slice('--from='.length) !== options.stage) continue;
        const sources = parts.filter((word) => !word.startsWith('--')).slice(0, -1);
        for (const source of sources) {
          if (!fs.existsSync(inImage(folder, '/', source))) fail(`stage ${other.name} copies ${source} from ${options.stage}, which the build did not produce`);
        }
      }
      // A workflow bundle a stage's workers load (WORKFLOW_BUNDLE) must be one the build wrote.
      for (const step of other.steps) {
        if (step.op !== 'ENV') continue;
        const bundle = envAssignments(step.args).WORKFLOW_BUNDLE;
        if (bundle !== undefined && !fs.existsSync(inImage(folder, '/', bundle))) fail(`stage ${other.name} sets WORKFLOW_BUNDLE=${bundle}, which the build did not write`);
      }
      // The command a stage runs must exist in what it got.
      const cmd = other.steps.filter((step) => step.op === 'CMD').pop();
      if (cmd && other.base !== 'golang' && !other.base.startsWith('golang:')) {
        const script = words(cmd.args).find((word) => word.endsWith('.js'));
        if (script && !fs.existsSync(inImage(folder, WORKDIR_ROOT.value, script))) fail(`stage ${other.name} runs ${script}, which the build did not produce`);
      }
    }
    // After the production prune, every package the built code requires must resolve.
    const dist = inImage(folder, WORKDIR_ROOT.value, 'dist');
    const missing = [];
    if (fs.existsSync(dist)) {
      for (const { spec, from } of requiredPackages(path.join(dist, 'src'))) {
        try {
          require.resolve(spec, { paths: [path.dirname(from)] });
        } catch {
          missing.push(`${spec} (required by ${path.relative(folder, from)})`);
        }
      }
    }
    if (missing.length > 0) fail(`not installed in the image: ${[...new Set(missing)].join(', ')}`);
    process.stdout.write('image-context check passed\n');
  } catch (error) {
    if (!(error instanceof CheckFailed)) throw error;
    process.stderr.write(`image-context check FAILED: ${error.message}\n`);
    process.exitCode = 1;
  } finally {
    if (!options.keep) execFileSync('rm', ['-rf', folder]);
  }
}

main();
