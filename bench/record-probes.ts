/**
 * CPU of recording probe results: a fresh library (SQLite in a temp folder,
 * or a PostgreSQL database created for the run), N discovered files recorded
 * through recordProbes in groups of 1 and of 4 (every file new), then a
 * rescan of the same files (every file updated). Prints process.cpuUsage()
 * (user + system) per file for each pass.
 *
 *   node dist/bench/record-probes.js [sqlite|postgres] [files]
 *
 * PostgreSQL: ADMIN_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres).
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { Library } from '../src/library/library';
import type { NewScanFile, ProbeOutcome, VideoMetadata } from '../src/library/types';

const metadata: VideoMetadata = {
  durationSeconds: 2,
  durationFrames: 50,
  frameRateNumerator: 25,
  frameRateDenominator: 1,
  width: 320,
  height: 240,
  videoCodec: 'h264',
  audioCodec: 'aac',
  container: 'mp4',
  bitRate: 123456,
  streamCounts: { video: 1, audio: 1, subtitle: 0, data: 0 },
};

async function pass(library: Library, scanId: string, files: NewScanFile[], group: number): Promise<{ cpuUsPerFile: number; wallMsPerFile: number; verdicts: Record<string, number> }> {
  await library.createScan({ scanId, root: '/bench', recursive: true, force: true, retryOf: null });
  await library.addScanFiles(scanId, files);
  const verdicts: Record<string, number> = {};
  const start = process.cpuUsage();
  const wall = performance.now();
  for (let i = 0; i < files.length; i += group) {
    const results = files.slice(i, i + group).map((f) => {
      const outcome: ProbeOutcome =
        f.position % 50 === 49
          ? { kind: 'failed', reason: 'invalid_data' }
          : { kind: 'probed', file: { path: f.path, size: f.size, mtimeMs: f.mtimeMs, fingerprint: `fp-${f.position}` }, metadata };
      return { position: f.position, outcome };
    });
    for (const status of await library.recordProbes(scanId, results)) verdicts[status] = (verdicts[status] ?? 0) + 1;
  }
  const used = process.cpuUsage(start);
  return { cpuUsPerFile: (used.user + used.system) / files.length, wallMsPerFile: (performance.now() - wall) / files.length, verdicts };
}

async function main(): Promise<void> {
  const dialect = process.argv[2] ?? 'sqlite';
  const count = Number(process.argv[3] ?? 5000);
  let url: string;
  let cleanup: () => Promise<void>;
  if (dialect === 'postgres') {
    const adminUrl = process.env.ADMIN_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
    const name = `record_probes_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    await admin.query(`create database ${name}`);
    await admin.end();
    url = adminUrl.replace(/\/[^/]*$/, `/${name}`);
    cleanup = async () => {
      const drop = new pg.Client({ connectionString: adminUrl });
      await drop.connect();
      await drop.query(`drop database if exists ${name} with (force)`);
      await drop.end();
    };
  } else {
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'record-probes-'));
    url = `sqlite:${path.join(tmp, 'library.sqlite')}`;
    cleanup = () => fs.rm(tmp, { recursive: true, force: true });
  }
  const library = await Library.open(url);
  try {
    for (const group of [1, 4]) {
      const files = (folder: string): NewScanFile[] =>
        Array.from({ length: count }, (_, i) => ({ position: i, probeIndex: i, path: `/bench/${folder}/d${i % 20}/clip ${i}.mp4`, size: 1_000_000 + i, mtimeMs: 1_700_000_000_000 + i, status: 'pending' }));
      const set = files(`g${group}`);
      const fresh = await pass(library, `new-g${group}`, set, group);
      const again = await pass(library, `rescan-g${group}`, set, group);
      for (const [what, r] of [['new', fresh], ['rescan', again]] as const) {
        console.log(
          `${dialect} group=${group} ${what.padEnd(6)} cpu/file=${(r.cpuUsPerFile / 1000).toFixed(3)} ms  wall/file=${r.wallMsPerFile.toFixed(3)} ms  ${JSON.stringify(r.verdicts)}`,
        );
      }
    }
  } finally {
    await library.close();
    await cleanup();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
