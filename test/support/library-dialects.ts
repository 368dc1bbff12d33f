/**
 * Library tests on both dialects: a SQLite file in a temp folder and a
 * PostgreSQL database created for the test file (at 127.0.0.1:5432, or
 * TEST_DATABASE_URL's server) and dropped after it.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { VideoMetadata } from '../../src/library/types';

export const adminUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * Registers the file's beforeAll/afterAll that make and remove both
 * databases, and returns the `describe.each` table of their URLs (read once
 * the tests run). `sqliteFile` is the library's file inside the temp folder.
 */
export function bothDialects(prefix: string, sqliteFile = 'library.sqlite'): [string, () => string][] {
  const pgName = `${prefix}_${randomBytes(4).toString('hex')}`;
  let tmp = '';
  beforeAll(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), `${prefix}-`));
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    await admin.query(`create database ${pgName}`);
    await admin.end();
  });
  afterAll(async () => {
    await fs.rm(tmp, { recursive: true, force: true });
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    await admin.query(`drop database if exists ${pgName} with (force)`);
    await admin.end();
  });
  return [
    ['SQLite', () => `sqlite:${path.join(tmp, sqliteFile)}`],
    ['PostgreSQL', () => adminUrl.replace(/\/[^/]*$/, `/${pgName}`)],
  ];
}

/** What a probe of a small h264/aac clip gives: the metadata library tests record. */
export const sampleMetadata: VideoMetadata = {
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
