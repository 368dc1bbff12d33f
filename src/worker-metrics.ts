/**
 * A worker's own Prometheus endpoint (WORKER_METRICS_PORT): the scan counters
 * this process counts (files probed, failures, probe durations, scans ended)
 * and the Temporal SDK's worker metrics (task slots, poll and schedule-to-start
 * latencies, sticky cache) on one page.
 *
 * The SDK's metrics come from its Rust core, which serves Prometheus text on a
 * port of its own; that port stays on loopback and this endpoint appends its
 * page to prom-client's, so scrapers see one target per worker.
 */
import http from 'node:http';
import net from 'node:net';
import type { Logger } from './logger';
import { registry } from './metrics';

/** A TCP port on 127.0.0.1 that nothing listens on at the moment. */
async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Where the SDK core should serve its metrics: a loopback port only this process reads. */
export async function sdkMetricsAddress(): Promise<string> {
  return `127.0.0.1:${await freeLoopbackPort()}`;
}

/** The combined page: this process's registry, then the SDK core's metrics. */
async function metricsPage(sdkAddress: string | undefined, logger: Logger): Promise<string> {
  const own = await registry.metrics();
  if (!sdkAddress) return own;
  try {
    const response = await fetch(`http://${sdkAddress}/metrics`, { signal: AbortSignal.timeout(2000) });
    return `${own}\n${await response.text()}`;
  } catch (error) {
    // The scan counters are still worth serving when the core's exporter does not answer.
    logger.warn({ err: error }, 'the Temporal SDK metrics did not answer');
    return own;
  }
}

/**
 * Serves `GET /metrics` on host:port until the returned close function is
 * called. Resolves once listening, with the bound port (port 0 picks one).
 */
export async function serveWorkerMetrics(options: {
  host: string;
  port: number;
  sdkAddress: string | undefined;
  logger: Logger;
}): Promise<{ port: number; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    metricsPage(options.sdkAddress, options.logger).then(
      (page) => res.writeHead(200, { 'content-type': registry.contentType }).end(page),
      (error: unknown) => {
        options.logger.error({ err: error }, 'metrics page failed');
        res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
