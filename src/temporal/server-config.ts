/**
 * The real server's configuration files, written as JSON (YAML is a superset
 * of it): the server's static configuration, its dynamic configuration and
 * that of the Web UI server, with the ports and TLS they share.
 */
import type { TemporalClientSecurity, TemporalServerTls } from '../config';
import type { TemporalDatabase } from './server-database';

export function splitAddress(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  const port = Number(address.slice(at + 1));
  if (at < 0 || !Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`expected host:port (got ${address})`);
  return { host: address.slice(0, at) || '127.0.0.1', port };
}

/**
 * Ports of one server process, a block from the frontend's: gRPC of the
 * frontend P, history P+1, matching P+2, internal worker P+3; their
 * membership ports P+4 … P+7; Prometheus metrics P+8 (loopback only).
 */
export function serverPorts(frontendPort: number): { grpc: number[]; membership: number[]; metrics: number } {
  // The server records membership ports in a smallint column: the block must end below 32768.
  if (frontendPort + 8 > 32767) throw new Error(`the frontend port ${frontendPort} must be at most 32759: the services after it (P+1 … P+8) need ports below 32768`);
  return {
    grpc: [0, 1, 2, 3].map((i) => frontendPort + i),
    membership: [4, 5, 6, 7].map((i) => frontendPort + i),
    metrics: frontendPort + 8,
  };
}

/**
 * The frontend's TLS (`global.tls`): its certificate; with a client CA, every
 * client must present a certificate it signed (requireClientAuth). The
 * server's own calls to its frontend (its system worker, the frontend client
 * of the other services) present the server certificate as their client
 * certificate, so it must carry clientAuth too and be signed by that CA, and
 * they verify the frontend by `serverName`.
 */
export function frontendTlsConfig(tls: TemporalServerTls, client: TemporalClientSecurity): unknown {
  const rootCaFiles = [client.tls?.ca?.path ?? tls.clientCa?.path].filter((file): file is string => file !== undefined);
  const serverName = client.tls?.serverName ?? 'localhost';
  const internalClient = { serverName, ...(rootCaFiles.length > 0 ? { rootCaFiles } : {}) };
  return {
    frontend: {
      server: {
        certFile: tls.cert.path,
        keyFile: tls.key.path,
        requireClientAuth: tls.clientCa !== undefined,
        ...(tls.clientCa ? { clientCaFiles: [tls.clientCa.path] } : {}),
      },
      client: internalClient,
    },
    systemWorker: { certFile: tls.cert.path, keyFile: tls.key.path, client: internalClient },
  };
}

/** The server's static configuration (YAML is a superset of JSON, so JSON it is). */
export function serverConfig(
  db: TemporalDatabase,
  address: string,
  dynamicConfigFile: string,
  logLevel: string,
  tls: { server: TemporalServerTls; client: TemporalClientSecurity } | undefined,
): unknown {
  const { host, port } = splitAddress(address);
  const ports = serverPorts(port);
  const wildcard = host === '0.0.0.0' || host === '::';
  const bind = host === 'localhost' ? '127.0.0.1' : host;
  const store = (database: string, maxConns: number, maxIdleConns: number): unknown => ({
    sql: {
      pluginName: 'postgres12',
      databaseName: database,
      connectAddr: `${db.host}:${db.port}`,
      connectProtocol: 'tcp',
      user: db.user,
      password: db.password,
      maxConns,
      maxIdleConns,
      maxConnLifetime: '1h',
      ...(db.tls ? { tls: { enabled: true, enableHostVerification: db.verifyHost } } : {}),
    },
  });
  // Only the frontend is for clients: with a wildcard address the other services (and their
  // membership) stay on loopback, where the frontend reaches them, not on every interface.
  const service = (i: number): unknown => ({
    rpc: { grpcPort: ports.grpc[i], membershipPort: ports.membership[i], bindOnIP: i > 0 && wildcard ? '127.0.0.1' : bind },
  });
  return {
    log: { stdout: true, level: logLevel },
    persistence: {
      defaultStore: 'postgres-default',
      visibilityStore: 'postgres-visibility',
      // Fixed for the life of the database. 16 lets history work spread over
      // many cores and PostgreSQL connections without the idle cost of hundreds.
      numHistoryShards: 16,
      // Each of the four services keeps its own pools: at most 4 × (10 + 4) connections.
      datastores: { 'postgres-default': store(db.database, 10, 4), 'postgres-visibility': store(db.visibilityDatabase, 4, 1) },
    },
    global: {
      // Members find each other at this address; a wildcard bind has to name a reachable one.
      membership: { maxJoinDuration: '30s', broadcastAddress: wildcard ? '127.0.0.1' : bind },
      metrics: { prometheus: { framework: 'tally', timerType: 'histogram', listenAddress: `127.0.0.1:${ports.metrics}` } },
      ...(tls ? { tls: frontendTlsConfig(tls.server, tls.client) } : {}),
    },
    services: { frontend: service(0), history: service(1), matching: service(2), worker: service(3) },
    clusterMetadata: {
      enableGlobalNamespace: false,
      failoverVersionIncrement: 10,
      masterClusterName: 'active',
      currentClusterName: 'active',
      clusterInformation: {
        active: { enabled: true, initialFailoverVersion: 1, rpcName: 'frontend', rpcAddress: `${wildcard ? '127.0.0.1' : bind}:${port}` },
      },
    },
    dcRedirectionPolicy: { policy: 'noop' },
    dynamicConfigClient: { filepath: dynamicConfigFile, pollInterval: '60s' },
  };
}

/** Dynamic configuration: the server's defaults but where the service needs more. */
export const DYNAMIC_CONFIG = {
  // The default 10 per second throttles job lists and the Web UI once a few operators poll.
  'frontend.namespaceRPS.visibility': [{ value: 100 }],
};

export function uiConfig(address: string, uiHost: string, uiPort: number, namespace: string, tls: { server: TemporalServerTls; client: TemporalClientSecurity } | undefined): unknown {
  // Over TLS the UI server verifies the frontend like any client and presents its own certificate.
  const uiTls = tls
    ? {
        tls: {
          ...(tls.client.tls?.ca ? { caFile: tls.client.tls.ca.path } : tls.server.clientCa ? { caFile: tls.server.clientCa.path } : {}),
          ...(tls.server.uiCert && tls.server.uiKey ? { certFile: tls.server.uiCert.path, keyFile: tls.server.uiKey.path } : {}),
          serverName: tls.client.tls?.serverName ?? 'localhost',
          enableHostVerification: true,
        },
      }
    : {};
  return {
    ...uiTls,
    temporalGrpcAddress: address.replace(/^0\.0\.0\.0:/, '127.0.0.1:'),
    host: uiHost,
    port: uiPort,
    enableUi: true,
    defaultNamespace: namespace,
    notifyOnNewVersion: false,
    refreshInterval: '0s',
    cors: { cookieInsecure: false, allowOrigins: [], unsafeAllowAllOrigins: false },
  };
}
