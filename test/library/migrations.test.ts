/**
 * The library's schema history on both dialects: concurrent opens of a new
 * library, an upgrade of a library made before versioned migrations (the
 * fixtures of commit c976dc4, see fixtures/README.md), and a library a newer
 * version has migrated. PostgreSQL at 127.0.0.1:5432, or TEST_DATABASE_URL's
 * server; a throwaway database per test.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { Library } from '../../src/library/library';
import { libraryMigrations } from '../../src/library/migrations';
import type { VideoMetadata } from '../../src/library/types';
import { recordProbe, videoByPath } from '../support/library-rows';

const ROOT = path.join(__dirname, '..', '..');
const FIXTURES = path.join(__dirname, 'fixtures');
const adminUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const ALL_MIGRATIONS = Object.keys(libraryMigrations('sqlite')).sort();
const TABLES = ['videos', 'scans', 'scan_files'] as const;
const ORDER: Record<string, string> = { videos: 'id', scans: 'scan_id', scan_files: 'scan_id, position', kysely_migration: 'name' };

type Row = Record<string, unknown>;

/** A database of one dialect, read and written without the library's code. */
interface Raw {
  url: string;
  rows(table: string): Promise<Row[]>;
  exec(statement: string): Promise<void>;
  indexes(): Promise<string[]>;
  drop(): Promise<void>;
}

let tmp: string;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'migrations-'));
});

afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

async function sqliteRaw(fixture?: string): Promise<Raw> {
  const file = path.join(tmp, `${randomBytes(4).toString('hex')}.sqlite`);
  if (fixture !== undefined) await fs.copyFile(fixture, file);
  const withDb = <T>(use: (db: BetterSqlite3.Database) => T): T => {
    const db = new BetterSqlite3(file);
    try {
      return use(db);
    } finally {
      db.close();
    }
  };
  return {
    url: `sqlite:${file}`,
    rows: async (table) => withDb((db) => db.prepare(`select * from ${table} order by ${ORDER[table] ?? '1'}`).all() as Row[]),
    exec: async (statement) => withDb((db) => void db.exec(statement)),
    indexes: async () => withDb((db) => (db.prepare(`select name from sqlite_master where type = 'index'`).all() as { name: string }[]).map((r) => r.name)),
    drop: async () => undefined,
  };
}

async function postgresRaw(fixture?: string): Promise<Raw> {
  const name = `scanner_migrate_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = adminUrl.replace(/\/[^/]*$/, `/${name}`);
  const withClient = async <T>(use: (client: pg.Client) => Promise<T>): Promise<T> => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return await use(client);
    } finally {
      await client.end();
    }
  };
  if (fixture !== undefined) {
    const dump = await fs.readFile(fixture, 'utf8');
    await withClient(async (client) => void (await client.query(dump)));
  }
  return {
    url,
    rows: async (table) => withClient(async (c) => (await c.query(`select * from ${table} order by ${ORDER[table] ?? '1'}`)).rows as Row[]),
    exec: async (statement) => withClient(async (c) => void (await c.query(statement))),
    indexes: async () => withClient(async (c) => (await c.query(`select indexname from pg_indexes where schemaname = 'public'`)).rows.map((r: { indexname: string }) => r.indexname)),
    drop: async () => {
      const admin2 = new pg.Client({ connectionString: adminUrl });
      await admin2.connect();
      await admin2.query(`drop database if exists ${name} with (force)`);
      await admin2.end();
    },
  };
}

/** Opens the library in a separate Node process; resolves with what its open reported. */
async function openInChild(url: string): Promise<{ applied: string[]; unknown: string[] }> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--require', path.join(ROOT, 'scripts', 'ts-register.js'), path.join(__dirname, 'support', 'open-library.ts'), url],
    { timeout: 110_000 },
  );
  return JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as { applied: string[]; unknown: string[] };
}

const metadata: VideoMetadata = {
  durationSeconds: 1,
  durationFrames: 25,
  frameRateNumerator: 25,
  frameRateDenominator: 1,
  width: 640,
  height: 360,
  videoCodec: 'vp9',
  audioCodec: null,
  container: 'webm',
  bitRate: 1000,
  streamCounts: { video: 1, audio: 0, subtitle: 0, data: 0 },
};

describe.each([
  ['SQLite', sqliteRaw, path.join(FIXTURES, 'library-v0.sqlite')],
  ['PostgreSQL', postgresRaw, path.join(FIXTURES, 'library-v0.postgres.sql')],
])('the library schema on %s', (_name, makeRaw, fixture) => {
  let raw: Raw | undefined;

  afterEach(async () => {
    await raw?.drop();
    raw = undefined;
  });

  it('is created once when processes open a new library at the same moment', async () => {
    raw = await makeRaw();
    const url = raw.url;
    const inProcess = async (): Promise<{ applied: string[]; unknown: string[] }> => {
      const library = await Library.open(url);
      await library.close();
      return library.migrations;
    };
    const reports = await Promise.all([openInChild(url), openInChild(url), inProcess(), inProcess(), openInChild(url)]);
    // Exactly one open ran the migrations; the others found them done.
    expect(reports.filter((r) => r.applied.length > 0).map((r) => r.applied)).toEqual([ALL_MIGRATIONS]);
    expect(reports.every((r) => r.unknown.length === 0)).toBe(true);
    expect((await raw.rows('kysely_migration')).map((r) => r.name).sort()).toEqual(ALL_MIGRATIONS);
    expect(await raw.indexes()).toEqual(expect.arrayContaining(['scans_finished_at', 'scan_files_probe_index', 'scan_files_status']));
  });

  it('upgrades a library made before versioned migrations and keeps every row', async () => {
    raw = await makeRaw(fixture);
    const before = Object.fromEntries(await Promise.all(TABLES.map(async (t) => [t, await raw!.rows(t)] as const)));
    expect(before.videos).toHaveLength(2);
    expect(before.scans).toHaveLength(2);
    expect(before.scan_files).toHaveLength(8);

    const library = await Library.open(raw.url);
    try {
      expect(library.migrations).toEqual({ applied: ALL_MIGRATIONS, unknown: [] });
      for (const table of TABLES) {
        const after = await raw.rows(table);
        // Every row and every old column as it was; new columns only added.
        expect(after).toEqual(before[table]!.map((row, i) => ({ ...after[i], ...row })));
      }
      expect((await raw.rows('scans')).map((s) => s.files_pruned_at)).toEqual([null, null]);
      expect(await raw.indexes()).toEqual(expect.arrayContaining(['scans_finished_at']));

      // The library's own reads see the old rows.
      expect(await videoByPath(raw.url, '/media/a.mkv')).toMatchObject({ id: 1, file_size: 5_000_000_001, modified_at: new Date(1_700_000_000_123.456).toISOString(), frame_rate_numerator: 24000, stream_counts: { video: 1, audio: 2, subtitle: 1, data: 0 } });
      expect(await library.getScan('scan-v0-finished')).toMatchObject({ outcome: 'completed', counts: { discovered: 6, failed: 2 }, filesPrunedAt: null });
      expect(await library.unfinishedFiles('scan-v0-running')).toEqual(['/media/sub/c.webm']);
      expect(await library.scanErrors('scan-v0-finished', 10, 0)).toEqual({ errors: [{ path: '/media/broken.avi', error: 'invalid_data' }, { path: '/media/locked', error: 'unreadable_folder' }], total: 2 });

      // Writes carry on where the old code stopped: the scan in flight
      // finishes, and a new video takes an id past every one ever used.
      const file = { path: '/media/sub/c.webm', size: 4321, mtimeMs: 1_700_000_010_000 };
      expect(await recordProbe(library, 'scan-v0-running', 1, { kind: 'probed', file, metadata })).toBe('new');
      expect((await videoByPath(raw.url, file.path))!.id).toBeGreaterThan(3);
      const b = { path: '/media/b.mp4', size: 1300, mtimeMs: 1_700_000_009_000 };
      await library.createScan({ scanId: 'after-upgrade', root: '/media', recursive: true, force: true, retryOf: null });
      await library.addScanFiles('after-upgrade', [{ position: 0, probeIndex: 0, ...b, status: 'pending' }]);
      expect(await recordProbe(library, 'after-upgrade', 0, { kind: 'probed', file: b, metadata })).toBe('updated');
      expect((await videoByPath(raw.url, b.path))!.id).toBe(2);
    } finally {
      await library.close();
    }

    // Opening again finds nothing to do.
    const again = await Library.open(raw.url);
    await again.close();
    expect(again.migrations).toEqual({ applied: [], unknown: [] });
  });

  it('opens a library that a newer version has migrated, without migrating it', async () => {
    raw = await makeRaw(fixture);
    const first = await Library.open(raw.url);
    await first.close();
    await raw.exec(`insert into kysely_migration (name, timestamp) values ('9999_from_a_newer_version', '2030-01-01T00:00:00.000Z')`);
    const library = await Library.open(raw.url);
    try {
      expect(library.migrations).toEqual({ applied: [], unknown: ['9999_from_a_newer_version'] });
      expect((await library.listVideos({ limit: 10, offset: 0 })).total).toBe(2);
    } finally {
      await library.close();
    }
  });
});
