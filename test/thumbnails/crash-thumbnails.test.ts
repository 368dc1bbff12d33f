/**
 * A worker killed with SIGKILL during a scan's thumbnail phase, as a real
 * process: a new worker finishes the scan, every video gets its picture, and
 * only the pictures that were in flight are made twice (a remade picture is a
 * new file: its inode changes).
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { loadConfig, type Config } from '../../src/config';
import { Library } from '../../src/library/library';
import { ScanService, type JobBody } from '../../src/scans';
import { createThumbnailer } from '../../src/thumbnails/thumbnailer';
import { buildLibrary, ensureTestMedia, type TestClip } from '../support/media';
import { killPart, startPart, type Part } from '../support/processes';
import { temporalAddress, waitFor } from '../support/stack';

jest.setTimeout(300_000);

const TERMINAL = ['completed', 'failed', 'cancelled', 'timeout'];
const WORKER_READY = /worker running/;
const FILES = 240;

let clips: TestClip[];
let work: string;
let env: Record<string, string>;
let config: Config;
let library: Library;
let connection: Connection;
let scans: ScanService;
const parts: Part[] = [];

async function startWorker(): Promise<Part> {
  const part = await startPart('worker-main', env, WORKER_READY);
  parts.push(part);
  return part;
}

beforeAll(async () => {
  clips = await ensureTestMedia();
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'crash-thumbs-')));
  env = {
    TEMPORAL_ADDRESS: temporalAddress(),
    TEMPORAL_TASK_QUEUE: `crash-thumbs-${process.pid}-${Date.now()}`,
    DATABASE_URL: `sqlite:${path.join(work, 'library.sqlite')}`,
    DATA_DIR: path.join(work, 'data'),
    SCAN_BATCH_SIZE: '20',
    THUMBNAIL_CONCURRENCY: '1',
  };
  config = loadConfig(env);
  library = await Library.open(config.databaseUrl);
  connection = await Connection.connect({ address: config.temporal.address });
  scans = new ScanService(new Client({ connection }), config, library, config.temporal.taskQueue);
});

afterAll(async () => {
  await Promise.all(parts.splice(0).map((part) => killPart(part)));
  await connection?.close();
  await library?.close();
  await fs.rm(work, { recursive: true, force: true });
});

describe('a worker killed in the thumbnail phase', () => {
  it('leaves a scan that a new worker finishes, every video with a picture, only the in-flight ones made twice', async () => {
    const folder = path.join(work, 'media');
    await buildLibrary(folder, FILES, clips);
    const thumbnails = createThumbnailer({ dir: config.thumbnailDir, width: config.thumbnailWidth });
    const first = await startWorker();
    const { scanId: jobId } = await scans.start({ root: folder, recursive: true, force: false });
    await waitFor(() => scans.get(jobId), (job) => job.phase === 'thumbnails', 180_000, 20);
    // Killed halfway through a batch (of 20): its first pictures are made and recorded, the rest are not.
    const pictures = async (): Promise<string[]> =>
      (await fs.readdir(config.thumbnailDir, { recursive: true }).catch(() => [])).map(String).filter((name) => name.endsWith('.jpg'));
    await waitFor(pictures, (names) => names.length >= 50, 180_000, 10);

    first.child.kill('SIGKILL');
    await first.exited;
    // Pictures on disk at the kill, by inode; a picture made again is renamed into place as a new file.
    const inodes = new Map<string, number>();
    for (const name of await pictures()) inodes.set(name, (await fs.stat(path.join(config.thumbnailDir, name))).ino);
    expect(inodes.size).toBeGreaterThanOrEqual(50);
    expect(inodes.size).toBeLessThan(FILES);

    await startWorker();
    const job: JobBody = await waitFor(() => scans.get(jobId), (j) => TERMINAL.includes(j.status), 240_000, 200);
    expect(job.status).toBe('completed');
    expect(job.counts.thumbnails).toBe(FILES);
    const videos = await library.searchVideos(folder + path.sep, 1000, 0);
    expect(videos.total).toBe(FILES);
    for (const video of videos.items) {
      expect(video.thumbnail_at).not.toBeNull();
      await expect(fs.stat(thumbnails.pathFor(video.id))).resolves.toBeDefined();
    }
    let remade = 0;
    for (const [name, ino] of inodes) if ((await fs.stat(path.join(config.thumbnailDir, name))).ino !== ino) remade += 1;
    // One thumbnail slot per worker: at most the picture in flight (written, not yet recorded) is made again.
    expect(remade).toBeLessThanOrEqual(1);
  });
});
