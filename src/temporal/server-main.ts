/**
 * `npm run temporal:server`: the real Temporal server on PostgreSQL
 * (TEMPORAL_DATABASE_URL) with its frontend at TEMPORAL_ADDRESS and the Web UI
 * on TEMPORAL_UI_PORT. Sets up databases, schema, namespace and search
 * attribute on first start; prints the addresses; SIGINT/SIGTERM stop both.
 * `npm run temporal:server -- --obtain` only obtains the binaries and prints them;
 * `--check` exits 0 when the frontend answers its health check (for container health checks).
 */
import { loadConfigOrExit } from '../config';
import { createLogger } from '../logger';
import { temporalConnectionOptions } from './client';
import { temporalAnswers } from './dev-server';
import { findProjectRoot } from './go-binary';
import { obtainTemporalBinaries, startTemporalCluster } from './server';

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger('temporal-server', config.logLevel);
  if (process.argv.includes('--check')) {
    const { address, ...security } = temporalConnectionOptions(config, config.temporal.address.replace(/^0\.0\.0\.0:/, '127.0.0.1:'));
    const ok = await temporalAnswers(address, 3000, security);
    process.exit(ok ? 0 : 1);
  }
  const projectRoot = findProjectRoot();
  const binaries = await obtainTemporalBinaries({ projectRoot, log: (line) => process.stderr.write(`${line}\n`) });
  if (process.argv.includes('--obtain')) {
    process.stdout.write(`${binaries.server}\n${binaries.sqlTool}\n${binaries.uiServer}\n`);
    return;
  }
  const cluster = await startTemporalCluster({
    binaries,
    databaseUrl: config.temporal.databaseUrl,
    address: config.temporal.address,
    namespace: config.temporal.namespace,
    uiPort: config.temporal.uiPort,
    logger,
    security: config.temporal.security,
    serverTls: config.temporal.serverTls,
  });
  let stopping = false;
  const stop = async (code: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info('temporal server stopping');
    await cluster.stop();
    logger.info('temporal server stopped');
    process.exit(code);
  };
  process.once('SIGINT', () => void stop(0));
  process.once('SIGTERM', () => void stop(0));
  void cluster.died.then((which) => {
    if (stopping) return;
    logger.error({ process: which }, 'exited on its own; stopping');
    void stop(1);
  });
  process.stdout.write(
    [
      '',
      `  temporal     ${cluster.address} (namespace ${config.temporal.namespace}${
        config.temporal.serverTls ? (config.temporal.serverTls.clientCa ? ', mutual TLS' : ', TLS') : ''
      })`,
      `  temporal ui  ${cluster.uiUrl}`,
      `  metrics      ${cluster.metricsUrl}`,
      `  setup        ${cluster.setUp.length > 0 ? cluster.setUp.join('; ') : 'nothing to set up'}`,
      '',
      '  Ctrl-C stops it.',
      '',
    ].join('\n'),
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`temporal server failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
