/**
 * Measures a rescan of an unchanged library with the missing-file check on
 * (every full rescan makes it), against a fresh Temporal dev server, one
 * worker with the default prober, and a SQLite library: N hard links of one
 * small clip in folders of 1,000, one scan to fill the library, then
 * rescans of the unchanged tree, then one with a folder of 1,000 files gone
 * (marked missing), one after another folder was renamed (its files moved,
 * not probed), and one with the gone folder back (probed again, same ids).
 *
 *   node -r ./scripts/ts-register.js bench/rescan-missing.ts [--files 100000]
 *
 * Prints one JSON line: seconds from the start request to the completed job.
 */
import { promises as fs } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { NativeConnection } from '@temporalio/worker';
import { createApp } from '../src/api/app';
import { loadConfig } from '../src/config';
import { Library } from '../src/library/library';
import { createLogger } from '../src/logger';
import { createIsolatedProber } from '../src/media-host/pool';
import { locateTemporalCli } from '../src/temporal/cli';
import { connectClient } from '../src/temporal/client';
import { ensureTemporalServer } from '../src/temporal/dev-server';
import { ScanService } from '../src/scans';
import { createScanWorker } from '../src/worker';
import { ensureTestMedia } from '../test/support/media';
import { freePort } from '../test/support/processes';

const argument = (name: string, fallback: number): number => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? Number(process.argv[at + 1]) : fallback;
};

async function main(): Promise<void> {
  const files = argument('files', 100_000);
  const perFolder = 1000;
  const projectRoot = path.resolve(__dirname, '..');
  const logger = createLogger('bench', 'warn');
  const cli = await locateTemporalCli({ cliPath: process.env.TEMPORAL_CLI_PATH, projectRoot, log: () => undefined });
  const server = await ensureTemporalServer({
    address: `127.0.0.1:${await freePort()}`,
    uiPort: await freePort(),
    dataDir: null,
    namespace: 'default',
    cliPath: cli,
    projectRoot,
    logger,
  });
  const dir = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'bench-rescan-')));
  const config = loadConfig({ TEMPORAL_ADDRESS: server.address, DATA_DIR: path.join(dir, 'data'), PORT: '0', LOG_LEVEL: 'silent' });
  const library = await Library.open(config.databaseUrl);
  const prober = createIsolatedProber({ kind: config.prober ?? 'libav', ffprobePath: config.ffprobePath, concurrency: config.probeConcurrency });
  const nativeConnection = await NativeConnection.connect({ address: config.temporal.address });
  const worker = await createScanWorker({ config, connection: nativeConnection, library, prober });
  const running = worker.run();
  const { client, connection } = await connectClient(config);
  const scans = new ScanService(client, config, library);
  const app = createApp({ config, scans, library, logger, checkTemporal: async () => undefined });
  const httpServer = await new Promise<import('node:http').Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const base = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`;
  const root = path.join(dir, 'media');
  try {
    const clip = (await ensureTestMedia()).find((c) => c.hasVideo && c.file.endsWith('.mp4'));
    if (clip === undefined) throw new Error('no test clip');
    // ext4 allows 65,000 links to one inode: a fresh copy of the clip serves every 50,000.
    let source = '';
    for (let i = 0; i < files; i += perFolder) {
      if (i % 50_000 === 0) {
        source = path.join(dir, `clip-${i}.mp4`);
        await fs.copyFile(clip.file, source);
      }
      const folder = path.join(root, `folder-${String(i / perFolder).padStart(4, '0')}`);
      await fs.mkdir(folder, { recursive: true });
      const links: Promise<void>[] = [];
      for (let j = i; j < Math.min(i + perFolder, files); j += 1) links.push(fs.link(source, path.join(folder, `clip-${String(j).padStart(6, '0')}.mp4`)));
      await Promise.all(links);
    }

    /** Seconds from the start request to the completed job, and its counts. */
    const scan = async (): Promise<{ seconds: number; counts: Record<string, number> }> => {
      const t = performance.now();
      let res = await fetch(`${base}/api/v1/videos/scan`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: root }) });
      while (res.status === 200) {
        // The previous scan still holds the root for a moment.
        await new Promise((resolve) => setTimeout(resolve, 50));
        res = await fetch(`${base}/api/v1/videos/scan`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: root }) });
      }
      const { job_id: jobId } = (await res.json()) as { job_id: string };
      for (;;) {
        const job = (await (await fetch(`${base}/api/v1/jobs/${jobId}`)).json()) as { status: string; counts: Record<string, number> };
        if (['completed', 'failed', 'cancelled', 'timeout'].includes(job.status)) {
          if (job.status !== 'completed') throw new Error(`scan ended ${job.status}`);
          return { seconds: Math.round((performance.now() - t) / 10) / 100, counts: job.counts };
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };

    const first = await scan();
    const rescans = [await scan(), await scan()];
    const firstFolder = path.join(root, 'folder-0000');
    const gone = path.join(dir, 'gone');
    await fs.rename(firstFolder, gone);
    const withMissing = await scan();
    await fs.rename(path.join(root, 'folder-0001'), path.join(root, 'folder-0001-renamed'));
    const withMoves = await scan();
    await fs.rename(gone, firstFolder);
    const cameBack = await scan();
    process.stdout.write(
      `${JSON.stringify({
        files,
        machine: `${os.cpus().length} cpu, ${os.cpus()[0]?.model ?? ''}`.trim(),
        first_scan_seconds: first.seconds,
        first_scan_new: first.counts.new,
        rescan_unchanged_seconds: rescans.map((r) => r.seconds),
        rescan_unchanged_files_per_s: Math.round(files / Math.min(...rescans.map((r) => r.seconds))),
        rescan_unchanged_skipped: rescans[0]?.counts.skipped,
        rescan_1000_gone_seconds: withMissing.seconds,
        rescan_1000_gone_missing: withMissing.counts.missing,
        rescan_1000_moved_seconds: withMoves.seconds,
        rescan_1000_moved_moved: withMoves.counts.moved,
        rescan_1000_moved_probed: withMoves.counts.probed,
        rescan_1000_back_seconds: cameBack.seconds,
        rescan_1000_back_updated: cameBack.counts.updated,
      })}\n`,
    );
  } finally {
    httpServer.closeAllConnections();
    httpServer.close();
    worker.shutdown();
    await running.catch(() => undefined);
    await nativeConnection.close();
    await connection.close();
    await prober.close();
    await library.close();
    await server.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
