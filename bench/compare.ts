/**
 * `node dist/bench/compare.js [options] REF_A REF_B -- [bench arguments]`:
 * the benchmark of two versions side by side in one run.
 *
 * Each ref is checked out in a temporary git worktree (detached, under
 * --work), given this checkout's node_modules as a hard-linked copy, and
 * built. Then `npm run bench` runs with the same arguments for each in turn,
 * A B A B … (--rounds rounds), each writing its JSON results; at the end a
 * table gives, for each chosen key, the median per ref and B/A. The library
 * of test files (the bench's --dir) is the same for both, built once.
 *
 *   --rounds N       rounds (each runs A then B); 3 by default
 *   --keys K1,K2     keys of the bench's JSON results (a.b for a nested one);
 *                    by default scan_files_per_s,rescan_files_per_s,walk_files_per_s
 *   --work DIR       where worktrees and results go; $TMPDIR/scanner-compare by default
 *   --keep           leave the worktrees (and their builds) for the next run
 *
 * Example (issue 18's check, the walk before and after the shares work):
 *   node dist/bench/compare.js --rounds 5 fb321c4 HEAD -- --files 5000 --skip-ffprobe-scan
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { median } from './limits';

const DEFAULT_KEYS = ['scan_files_per_s', 'rescan_files_per_s', 'walk_files_per_s'];

interface Side {
  label: 'A' | 'B';
  ref: string;
  commit: string;
  dir: string;
  values: Map<string, number[]>;
}

const say = (text: string): void => {
  process.stderr.write(`${text}\n`);
};

function git(args: string[], cwd: string): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8' }).trim();
}

/** Runs a command to its end, its output on this process's stderr; rejects unless it exits 0. */
function run(command: string, args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', process.stderr, process.stderr] });
    child.once('error', reject);
    child.once('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`${command} ${args.join(' ')} in ${cwd} ended with ${code ?? signal}`))));
  });
}

/** The value at a dotted key of the results, when it is a number. */
function valueAt(results: unknown, key: string): number | null {
  let at: unknown = results;
  for (const part of key.split('.')) {
    if (at === null || typeof at !== 'object') return null;
    at = (at as Record<string, unknown>)[part];
  }
  return typeof at === 'number' && Number.isFinite(at) ? at : null;
}

/** A worktree of `commit` at `dir`, with node_modules and a build. */
async function prepare(repo: string, side: Side): Promise<void> {
  if (!existsSync(path.join(side.dir, '.git'))) {
    say(`${side.label}: worktree of ${side.ref} (${side.commit.slice(0, 12)}) at ${side.dir}`);
    git(['worktree', 'add', '--detach', side.dir, side.commit], repo);
  }
  if (!existsSync(path.join(side.dir, 'node_modules'))) {
    // Hard links: a copy in seconds that takes no room. The ref's own lock file should match.
    await run('cp', ['-al', path.join(repo, 'node_modules'), path.join(side.dir, 'node_modules')], repo);
  }
  const lock = (dir: string): Promise<string> => fs.readFile(path.join(dir, 'package-lock.json'), 'utf8').catch(() => '');
  if ((await lock(repo)) !== (await lock(side.dir))) say(`${side.label}: warning: package-lock.json differs from this checkout's; its node_modules are this checkout's`);
  say(`${side.label}: building`);
  await run('npm', ['run', '--silent', 'build'], side.dir);
}

async function main(): Promise<void> {
  const dashDash = process.argv.indexOf('--');
  const own = dashDash === -1 ? process.argv.slice(2) : process.argv.slice(2, dashDash);
  const benchArgs = dashDash === -1 ? [] : process.argv.slice(dashDash + 1);
  const { values, positionals } = parseArgs({
    args: own,
    allowPositionals: true,
    options: {
      rounds: { type: 'string', default: '3' },
      keys: { type: 'string', default: DEFAULT_KEYS.join(',') },
      work: { type: 'string', default: path.join(os.tmpdir(), 'scanner-compare') },
      keep: { type: 'boolean', default: false },
    },
  });
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds takes a whole number of at least 1');
  if (positionals.length !== 2) throw new Error('give two git refs: REF_A (before) REF_B (after)');
  if (benchArgs.includes('--json')) throw new Error('--json is set by this script; leave it out of the bench arguments');
  const keys = values.keys.split(',').map((key) => key.trim()).filter((key) => key.length > 0);
  const repo = git(['rev-parse', '--show-toplevel'], process.cwd());
  const work = path.resolve(values.work);
  await fs.mkdir(work, { recursive: true });
  const sides: Side[] = (positionals as [string, string]).map((ref, i) => {
    const commit = git(['rev-parse', '--verify', `${ref}^{commit}`], repo);
    return { label: i === 0 ? 'A' : 'B', ref, commit, dir: path.join(work, `tree-${commit.slice(0, 12)}`), values: new Map(keys.map((key) => [key, []])) };
  });
  const created = sides.filter((side) => !existsSync(side.dir));
  try {
    for (const side of sides) await prepare(repo, side);
    for (let round = 1; round <= rounds; round += 1) {
      for (const side of sides) {
        const json = path.join(work, `results-${side.commit.slice(0, 12)}-${Date.now()}.json`);
        say(`round ${round}/${rounds}, ${side.label} (${side.ref}): npm run bench -- ${[...benchArgs, '--json', json].join(' ')}`);
        await run('npm', ['run', '--silent', 'bench', '--', ...benchArgs, '--json', json], side.dir);
        const results = JSON.parse(await fs.readFile(json, 'utf8')) as unknown;
        for (const key of keys) {
          const value = valueAt(results, key);
          if (value === null) say(`   ${key}: not a number in ${side.label}'s results`);
          else side.values.get(key)?.push(value);
        }
      }
    }
  } finally {
    if (!values.keep) {
      for (const side of created) {
        if (existsSync(side.dir)) git(['worktree', 'remove', '--force', side.dir], repo);
      }
    }
  }
  const [a, b] = sides as [Side, Side];
  const cell = (list: number[] | undefined): string => (list === undefined || list.length === 0 ? '-' : String(Math.round(median(list) * 1000) / 1000));
  const lines = [
    `A = ${a.ref} (${a.commit.slice(0, 12)}), B = ${b.ref} (${b.commit.slice(0, 12)}); ${rounds} round(s), A B alternated; bench arguments: ${benchArgs.join(' ') || '(none)'}`,
    '',
    '| key | A median | B median | B/A | A runs | B runs |',
    '|---|---|---|---|---|---|',
    ...keys.map((key) => {
      const av = a.values.get(key) ?? [];
      const bv = b.values.get(key) ?? [];
      const ratio = av.length > 0 && bv.length > 0 && median(av) !== 0 ? (median(bv) / median(av)).toFixed(3) : '-';
      return `| ${key} | ${cell(av)} | ${cell(bv)} | ${ratio} | ${av.join(', ')} | ${bv.join(', ')} |`;
    }),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
