/**
 * `npm run api`: the API alone. Binds HOST:PORT first, so that a port in use
 * stops start-up at once with one line, then connects to the library and
 * Temporal and serves; SIGINT/SIGTERM close it cleanly.
 */
// First: sizes libuv's thread pool before anything starts it (a root to scan may lie on a share that hangs).
import '../filesystem/thread-pool';
import http, { type IncomingMessage, type RequestListener } from 'node:http';
import type { Duplex } from 'node:stream';
import { loadConfigOrExit } from '../config';
import { errorLine } from '../errors';
import { Library } from '../library/library';
import { createLogger } from '../logger';
import { connectApiClient } from '../temporal/client';
import { registerSearchAttributes } from '../temporal/dev-server';
import { ScanService } from '../scans';
import { activityFeedOf, createApp } from './app';
import { exposureCheck, listen } from './listen';

/** What the port answers until the app is ready: not yet, try again (so `npm start` keeps waiting). */
const starting: RequestListener = (_req, res) => {
  res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' });
  res.end(JSON.stringify({ code: 'UNAVAILABLE', message: 'the API is starting' }));
};

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger('api', config.logLevel);
  const exposure = exposureCheck(config);
  if (exposure.refuse) {
    process.stderr.write(`api refused to start: ${exposure.refuse}\n`);
    process.exit(2);
  }
  if (exposure.warn) logger.warn(exposure.warn);
  let handler: RequestListener = starting;
  const server = http.createServer((req, res) => handler(req, res));
  // WebSocket upgrades (/ws) are not requests: refused until the app is ready, then its feed's.
  let upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void = (_req, socket) => socket.destroy();
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => upgrade(req, socket, head));
  await listen(server, config.port, config.host);

  const library = await Library.open(config.databaseUrl);
  if (library.migrations.applied.length > 0 || library.migrations.unknown.length > 0) {
    // `unknown`: a newer version migrated this library; this one runs on the schema as it is.
    logger.info({ applied: library.migrations.applied, unknown: library.migrations.unknown }, 'library schema migrations');
  }
  const { client, connection } = await connectApiClient(config);
  await registerSearchAttributes(connection, config.temporal.namespace).catch((error: unknown) =>
    logger.warn({ err: error }, 'could not register search attributes; scans may fail to start'),
  );
  const scans = new ScanService(client, config, library);
  const app = createApp({
    config,
    scans,
    library,
    logger,
    checkTemporal: async () => {
      await connection.healthService.check({});
    },
  });
  handler = app;
  const feed = activityFeedOf(app);
  upgrade = feed.upgrade;
  logger.info({ url: `http://${config.host}:${config.port}` }, 'api listening');

  const stop = (): void => {
    logger.info('api stopping');
    feed.close();
    server.close(() => {
      void Promise.allSettled([connection.close(), library.close()]).then(() => process.exit(0));
    });
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 5000).unref();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`api failed: ${errorLine(error)}\n`);
  process.exit(1);
});
