/**
 * The library: videos keyed by absolute path, scans, and every scan's file
 * records, in SQLite or PostgreSQL. This facade is what the activities and
 * the API hold; each table's queries live in a repository of their own:
 *
 * - scans.ts: the scans table (a row per scan, its end)
 * - scan-files.ts: a scan's file records, its summaries and errors
 * - probes.ts: probe results written (probes-sqlite.ts, probes-postgres.ts)
 * - videos.ts: the videos the API reads, and what discovery knows of a file
 * - vanished.ts: videos whose files a scan did not find: moved or missing
 * - thumbnails.ts: the videos' pictures as recorded
 * - retention.ts: pruning old scans' file records
 */
import type BetterSqlite3 from 'better-sqlite3';
import { sql, type Kysely } from 'kysely';
import type { FileError, ScanCounts } from '../model/types';
import { openDatabase, type Database, type Dialect, type MigrationReport } from './database';
import { ProbeRepository, type ProbeResult, type ProbeVerdict } from './probes';
import { RetentionRepository } from './retention';
import { ScanFileRepository, type ProbeSummary } from './scan-files';
import { ScanRepository, type NewScan, type ScanEnd, type ScanListOptions } from './scans';
import { ThumbnailRepository, type ThumbnailTarget } from './thumbnails';
import type { ListVideosOptions, NewScanFile, Page, ScanFileRow, ScanRecord, VanishedVideo, Video } from './types';
import { VanishedRepository } from './vanished';
import type { KnownFiles } from './known-files';
import { VideoRepository } from './videos';

export class Library {
  private readonly scans: ScanRepository;
  private readonly scanFiles: ScanFileRepository;
  private readonly probes: ProbeRepository;
  private readonly videos: VideoRepository;
  private readonly vanished: VanishedRepository;
  private readonly thumbnails: ThumbnailRepository;
  private readonly retention: RetentionRepository;

  private constructor(
    private readonly db: Kysely<Database>,
    readonly dialect: Dialect,
    /** What the open did to the schema: migrations applied, or unknown ones a newer version recorded. */
    readonly migrations: MigrationReport,
    /** SQLite's connection under `db`, for its probe writer; undefined on PostgreSQL. */
    sqlite: BetterSqlite3.Database | undefined,
  ) {
    this.scans = new ScanRepository(db, dialect);
    this.scanFiles = new ScanFileRepository(db, dialect);
    this.probes = new ProbeRepository(db, dialect, sqlite);
    this.videos = new VideoRepository(db, dialect);
    this.vanished = new VanishedRepository(db, dialect);
    this.thumbnails = new ThumbnailRepository(db, dialect);
    this.retention = new RetentionRepository(db, dialect);
  }

  /** Opens (and migrates) the library at a `sqlite:` or `postgres://` URL. */
  static async open(databaseUrl: string): Promise<Library> {
    const { db, dialect, migrations, sqlite } = await openDatabase(databaseUrl);
    return new Library(db, dialect, migrations, sqlite);
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }

  /** Throws when the database does not answer. */
  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }

  // ---- Scans ----

  createScan(scan: NewScan): Promise<void> {
    return this.scans.createScan(scan);
  }

  getScan(scanId: string): Promise<ScanRecord | undefined> {
    return this.scans.getScan(scanId);
  }

  finishScan(scanId: string, end: ScanEnd): Promise<void> {
    return this.scans.finishScan(scanId, end);
  }

  /** See ScanRepository.listScans. */
  listScans(options: ScanListOptions): Promise<ScanRecord[]> {
    return this.scans.listScans(options);
  }

  /** A scan's counts and first errors, recomputed from its per-file records. */
  async scanTotals(scanId: string): Promise<{ counts: ScanCounts; errors: FileError[] }> {
    const files = await this.scanFiles.countScanFiles(scanId);
    const probed = await this.scanFiles.scanSummary(scanId);
    const lifecycle = await this.scanFiles.lifecycleCounts(scanId);
    const counts = {
      discovered: files.discovered,
      probed: probed.probed,
      new: probed.new,
      updated: probed.updated,
      skipped: files.skipped,
      failed: probed.failed,
      moved: lifecycle.moved,
      missing: lifecycle.missing,
      thumbnails: await this.thumbnails.scanThumbnailCount(scanId),
    };
    return { counts, errors: probed.errors };
  }

  /** See RetentionRepository.pruneScanRecords. */
  pruneScanRecords(finishedBefore: Date): Promise<{ scans: number; rows: number }> {
    return this.retention.pruneScanRecords(finishedBefore);
  }

  // ---- A scan's file records ----

  /** Forgets a scan's file records and its count of unchanged files without one (a retried discovery starts over). */
  resetScanFiles(scanId: string): Promise<void> {
    return this.scanFiles.resetScanFiles(scanId);
  }

  /** See ScanFileRepository.recordUnrecordedSkips. */
  recordUnrecordedSkips(scanId: string, skipped: number): Promise<void> {
    return this.scanFiles.recordUnrecordedSkips(scanId, skipped);
  }

  /** Records discovered files; idempotent on (scan, position). */
  addScanFiles(scanId: string, files: NewScanFile[]): Promise<void> {
    return this.scanFiles.addScanFiles(scanId, files);
  }

  countScanFiles(scanId: string): Promise<{ discovered: number; toProbe: number; skipped: number }> {
    return this.scanFiles.countScanFiles(scanId);
  }

  /** Paths of a scan's files that failed or were never reached, in discovery order. */
  unfinishedFiles(scanId: string): Promise<string[]> {
    return this.scanFiles.unfinishedFiles(scanId);
  }

  getProbeFiles(scanId: string, fromIndex: number, toIndex: number): Promise<ScanFileRow[]> {
    return this.scanFiles.getProbeFiles(scanId, fromIndex, toIndex);
  }

  /** Counts by outcome over probe indexes [from, to), with up to MAX_SUMMARY_ERRORS failures. */
  batchSummary(scanId: string, fromIndex: number, toIndex: number): Promise<ProbeSummary> {
    return this.scanFiles.batchSummary(scanId, fromIndex, toIndex);
  }

  scanErrors(scanId: string, limit: number, offset: number): Promise<{ errors: FileError[]; total: number }> {
    return this.scanFiles.scanErrors(scanId, limit, offset);
  }

  /** See ProbeRepository.recordProbes. */
  recordProbes(scanId: string, results: readonly ProbeResult[]): Promise<ProbeVerdict[]> {
    return this.probes.recordProbes(scanId, results);
  }

  // ---- Videos ----

  getVideo(id: number): Promise<Video | undefined> {
    return this.videos.getVideo(id);
  }

  listVideos(options: ListVideosOptions): Promise<Page<Video>> {
    return this.videos.listVideos(options);
  }

  /** Case-insensitive substring search over file name and path. */
  searchVideos(q: string, limit: number, offset: number): Promise<Page<Video>> {
    return this.videos.searchVideos(q, limit, offset);
  }

  /** Deletes the record only, never the file. */
  deleteVideo(id: number): Promise<boolean> {
    return this.videos.deleteVideo(id);
  }

  /** See VideoRepository.knownFilesUnder. */
  knownFilesUnder(root: string, recursive: boolean): Promise<KnownFiles> {
    return this.videos.knownFilesUnder(root, recursive);
  }

  // ---- Videos whose files a scan did not find (see vanished.ts) ----

  /** See VanishedRepository.presentVideos. */
  presentVideos(paths: string[]): Promise<VanishedVideo[]> {
    return this.vanished.presentVideos(paths);
  }

  moveCandidates(scanId: string, sizes: number[]): Promise<ScanFileRow[]> {
    return this.vanished.moveCandidates(scanId, sizes);
  }

  recordMove(scanId: string, file: { position: number; path: string; size: number; mtimeMs: number }, from: VanishedVideo): Promise<boolean> {
    return this.vanished.recordMove(scanId, file, from);
  }

  renumberProbeIndexes(scanId: string): Promise<void> {
    return this.vanished.renumberProbeIndexes(scanId);
  }

  markMissing(scanId: string, videos: VanishedVideo[], firstPosition: number): Promise<number> {
    return this.vanished.markMissing(scanId, videos, firstPosition);
  }

  /** What a media manager (Sonarr, Radarr) reports deleted: see api/hooks.ts. */
  markDeletedMissing(target: { file: string } | { folder: string }): Promise<number> {
    return this.vanished.markDeletedMissing(target);
  }

  // ---- Pictures (see thumbnails.ts) ----

  thumbnailTargets(scanId: string, fromIndex: number, toIndex: number): Promise<ThumbnailTarget[]> {
    return this.thumbnails.thumbnailTargets(scanId, fromIndex, toIndex);
  }

  numberPicturelessFiles(scanId: string, fromIndex: number): Promise<number> {
    return this.thumbnails.numberPicturelessFiles(scanId, fromIndex);
  }

  recordThumbnail(videoId: number, file: string, result: { ok: true } | { ok: false; reason: string }): Promise<boolean> {
    return this.thumbnails.recordThumbnail(videoId, file, result);
  }
}
