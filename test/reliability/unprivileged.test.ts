/**
 * Files and folders the scanner may not read. Root reads everything, so
 * when the tests run as root (as in CI) the worker runs as the unprivileged
 * user `nobody`, as a deployment would run it: an unreadable file and an
 * unreadable folder are recorded with their reasons, every other file is
 * probed, and a retry once they are readable picks up what was missed.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { loadConfig } from '../../src/config';
import { Library } from '../../src/library/library';
import { ScanService, type JobBody } from '../../src/scans';
import { buildLibrary, ensureTestMedia, type TestClip } from '../support/media';
import { killPart, startPart, type Part } from '../support/processes';
import { temporalAddress, waitFor } from '../support/stack';
import { videoByPath } from '../support/library-rows';

const realFfprobe = (require('@ffprobe-installer/ffprobe') as { path: string }).path;
const TERMINAL = ['completed', 'failed', 'cancelled', 'timeout'];
const NOBODY = { uid: 65534, gid: 65534 };

let clips: TestClip[];
let work: string;
let worker: Part | undefined;
let library: Library | undefined;
let connection: Connection | undefined;

beforeAll(async () => {
  clips = await ensureTestMedia();
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'unprivileged-')));
  await fs.chmod(work, 0o755);
});

afterAll(async () => {
  await killPart(worker);
  await connection?.close();
  await library?.close();
  await fs.rm(work, { recursive: true, force: true });
});

describe('a worker running as an unprivileged user', () => {
  it('records an unreadable file and an unreadable folder, probes the rest, and a retry picks them up once readable', async () => {
    // As root the worker runs as nobody; any other user is unprivileged already.
    const as = process.getuid?.() === 0 ? NOBODY : undefined;
    // The bundled binary is executable by its owner only; nobody gets a copy.
    const ffprobe = path.join(work, 'ffprobe');
    await fs.copyFile(realFfprobe, ffprobe);
    await fs.chmod(ffprobe, 0o755);
    const data = path.join(work, 'data');
    await fs.mkdir(data, { mode: 0o777 });
    await fs.chmod(data, 0o777);

    const root = path.join(work, 'media');
    const ordinary = await buildLibrary(path.join(root, 'ordinary'), 12, clips);
    const clip = (clips.find((c) => c.name === 'h264-aac') as TestClip).file;
    const lockedFile = path.join(root, 'locked.mp4');
    await fs.copyFile(clip, lockedFile);
    await fs.chmod(lockedFile, 0o000);
    const lockedFolder = path.join(root, 'locked-folder');
    const hidden = path.join(lockedFolder, 'inside.mp4');
    await fs.mkdir(lockedFolder);
    await fs.copyFile(clip, hidden);
    await fs.chmod(lockedFolder, 0o000);

    const env = {
      TEMPORAL_ADDRESS: temporalAddress(),
      TEMPORAL_TASK_QUEUE: `unprivileged-${process.pid}-${Date.now()}`,
      DATABASE_URL: `sqlite:${path.join(data, 'library.sqlite')}`,
      DATA_DIR: data,
      FFPROBE_PATH: ffprobe,
      PROBE_CONCURRENCY: '2',
      SCAN_BATCH_SIZE: '5',
    };
    // The worker creates the library, so the files are nobody's to write.
    worker = await startPart('worker-main', env, /worker running/, 60_000, as);
    const config = loadConfig(env);
    library = await Library.open(config.databaseUrl);
    connection = await Connection.connect({ address: config.temporal.address });
    const scans = new ScanService(new Client({ connection }), config, library, config.temporal.taskQueue);
    const endOf = (jobId: string): Promise<JobBody> => waitFor(() => scans.get(jobId), (job) => TERMINAL.includes(job.status), 120_000, 200);

    const first = await endOf((await scans.start({ root, recursive: true, force: false })).scanId);
    expect(first.status).toBe('completed');
    const errors = [...(first.result?.errors ?? [])].sort((a, b) => a.path.localeCompare(b.path));
    expect(errors).toEqual([
      { path: lockedFolder, error: 'unreadable_folder' },
      { path: lockedFile, error: 'permission_denied' },
    ]);
    for (const file of ordinary) expect(await videoByPath(config.databaseUrl, file)).toBeDefined();
    expect(await videoByPath(config.databaseUrl, lockedFile)).toBeUndefined();
    expect(await videoByPath(config.databaseUrl, hidden)).toBeUndefined();

    await fs.chmod(lockedFile, 0o644);
    await fs.chmod(lockedFolder, 0o755);
    const second = await endOf((await scans.retry(first.job_id)).scanId);
    expect(second).toMatchObject({ status: 'completed', retry_of: first.job_id });
    expect(second.result).toMatchObject({ scanned: 2, new: 2, errors: [] });
    expect(await videoByPath(config.databaseUrl, lockedFile)).toBeDefined();
    expect(await videoByPath(config.databaseUrl, hidden)).toBeDefined();
  });
});
