/**
 * `npm run api`: the API alone. Connects to Temporal and the library, then
 * listens on HOST:PORT; SIGINT/SIGTERM close it cleanly.
 */
import { loadConfigOrExit } from '../config';
import { Library } from '../library/library';
import { createLogger } from '../logger';
import { connectClient } from '../temporal/client';
import { registerSearchAttributes } from '../temporal/dev-server';
import { ScanService } from '../temporal/scans';
import { createApp } from './app';

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger('api', config.logLevel);
  const library = await Library.open(config.databaseUrl);
  const { client, connection } = await connectClient(config);
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
  const server = app.listen(config.port, config.host, () => {
    logger.info({ url: `http://${config.host}:${config.port}` }, 'api listening');
  });
  const stop = (): void => {
    logger.info('api stopping');
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
  process.stderr.write(`api failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
