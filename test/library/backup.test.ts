/**
 * Backups of the library as docs/operations.md describes them, taken while a
 * scan writes to it, and restores that serve the same videos:
 *   - SQLite: scripts/backup-sqlite.js (SQLite's online backup API);
 *   - PostgreSQL: pg_dump -Fc, restored with pg_restore into a new database.
 * The restored library is opened by a new API, whose video list must equal
 * the one served before the backup.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { withPgClient } from '../support/postgres';
import { buildLibrary, ensureTestMedia } from '../support/media';
import { startStack, waitFor, writeProberWrapper, type Stack } from '../support/stack';

const ROOT = path.join(__dirname, '..', '..');
/** Each scan of them takes seconds at one probe at a time: the backup lands mid-rescan with the rescan still running after it. */
const FILES = 60;
const adminUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const dbUrl = (name: string): string => adminUrl.replace(/\/[^/]*$/, `/${name}`);
const realFfprobe = (require('@ffprobe-installer/ffprobe') as { path: string }).path;

let work: string;
let media: string;
const stacks: Stack[] = [];
const databases: string[] = [];

async function admin(sql: string): Promise<void> {
  await withPgClient(adminUrl, (client) => client.query(sql));
}

beforeAll(async () => {
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'backup-')));
  media = path.join(work, 'media');
  await buildLibrary(media, FILES, await ensureTestMedia());
});

afterEach(async () => {
  await Promise.all(stacks.splice(0).map((stack) => stack.close()));
});

afterAll(async () => {
  for (const name of databases) await admin(`drop database if exists ${name} with (force)`);
  if (work) await fs.rm(work, { recursive: true, force: true });
});

interface Served {
  id: number;
  path: string;
  duration_seconds: number | null;
  width: number | null;
}

/** The videos an API serves, in a stable order. */
async function served(stack: Stack): Promise<Served[]> {
  const body = (await (await fetch(`${stack.baseUrl}/api/v1/videos?limit=200`)).json()) as { videos: Served[]; total: number };
  return body.videos.map(({ id, path: file, duration_seconds, width }) => ({ id, path: file, duration_seconds, width })).sort((a, b) => a.id - b.id);
}

async function scan(stack: Stack, force: boolean): Promise<string> {
  const response = await fetch(`${stack.baseUrl}/api/v1/videos/scan`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ path: media, force }),
  });
  expect(response.status).toBe(202);
  return ((await response.json()) as { job_id: string }).job_id;
}

async function status(stack: Stack, id: string): Promise<{ status: string; counts: { probed: number } }> {
  return (await (await fetch(`${stack.baseUrl}/api/v1/jobs/${id}`)).json()) as { status: string; counts: { probed: number } };
}

/**
 * A library scanned once, then a forced rescan running (slowed by a probe
 * delay) while `backup` runs; returns what the API served before. No
 * pictures: they are the thumbnail tests' matter.
 */
async function backUpDuringScan(env: Record<string, string>, databaseUrl: string | undefined, backup: () => void): Promise<Served[]> {
  const wrapper = await writeProberWrapper(work, { realPath: realFfprobe, delayMs: 40 });
  const stack = await startStack({ ...env, PROBER: 'ffprobe', FFPROBE_PATH: wrapper.path, PROBE_CONCURRENCY: '1', SCAN_BATCH_SIZE: '5', THUMBNAILS: 'off' }, databaseUrl ? { databaseUrl } : {});
  stacks.push(stack);
  const first = await scan(stack, false);
  await waitFor(() => status(stack, first), (s) => s.status === 'completed', 300_000, 100);
  const before = await served(stack);
  expect(before).toHaveLength(FILES);
  const rescan = await scan(stack, true);
  // Mid-scan: the rescan is rewriting the videos as the backup copies them.
  await waitFor(() => status(stack, rescan), (s) => s.status === 'running' && s.counts.probed >= 5, 300_000, 50);
  backup();
  expect((await status(stack, rescan)).status).toBe('running');
  await waitFor(() => status(stack, rescan), (s) => s.status === 'completed', 300_000, 100);
  return before;
}

describe('library backups taken while a scan runs', () => {
  it('SQLite: the online backup restores to a library that serves the same videos', async () => {
    const dataDir = path.join(work, 'sqlite-data');
    const copy = path.join(work, 'backups', 'library.sqlite');
    const before = await backUpDuringScan({ DATA_DIR: dataDir }, undefined, () => {
      const result = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'backup-sqlite.js'), path.join(dataDir, 'library.sqlite'), copy], { encoding: 'utf8' });
      expect(result.stderr).toBe('');
      expect(result.stdout).toMatch(new RegExp(`^backed up .* ${FILES} videos`));
    });
    // Restore: the copy as the library file of a new DATA_DIR, opened by a new API.
    const restoredDir = path.join(work, 'sqlite-restored');
    await fs.mkdir(restoredDir);
    await fs.copyFile(copy, path.join(restoredDir, 'library.sqlite'));
    const restored = await startStack({ DATA_DIR: restoredDir });
    stacks.push(restored);
    expect(await served(restored)).toEqual(before);
  }, 15 * 60_000);

  it('PostgreSQL: pg_dump restores with pg_restore to a library that serves the same videos', async () => {
    const name = `deploy_backup_${randomBytes(4).toString('hex')}`;
    databases.push(name, `${name}_restored`);
    await admin(`create database ${name}`);
    const dump = path.join(work, 'library.dump');
    const before = await backUpDuringScan({ DATA_DIR: path.join(work, 'pg-data') }, dbUrl(name), () => {
      execFileSync('pg_dump', ['--format=custom', `--file=${dump}`, dbUrl(name)]);
    });
    await admin(`create database ${name}_restored`);
    execFileSync('pg_restore', ['--no-owner', `--dbname=${dbUrl(`${name}_restored`)}`, dump]);
    const restored = await startStack({ DATA_DIR: path.join(work, 'pg-restored') }, { databaseUrl: dbUrl(`${name}_restored`) });
    stacks.push(restored);
    expect(await served(restored)).toEqual(before);
  }, 15 * 60_000);
});
