/**
 * The deployment's settings, one module at a time: TLS to Temporal read and
 * checked at start-up (one line naming the variable), the API's refusal to
 * listen beyond loopback without a token, the worker metrics' loopback
 * default, the Temporal frontend's TLS section, and the server log's lines
 * kept whole however the pipe cuts them.
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { loadConfig } from '../../src/config';
import { exposureCheck } from '../../src/api/listen';
import { temporalTls, temporalUnavailable } from '../../src/temporal/client';
import { forEachLine } from '../../src/temporal/server';
import { frontendTlsConfig } from '../../src/temporal/server-config';

let dir: string;
let certs: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'deployment-config-'));
  certs = path.join(dir, 'certs');
  execFileSync('sh', [path.join(__dirname, '..', '..', 'scripts', 'make-certs.sh'), certs, path.join(dir, 'ca')], { stdio: 'ignore' });
});

afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

function oneLine(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    const message = (error as Error).message;
    expect(message).not.toContain('\n');
    return message;
  }
  throw new Error('expected a configuration error');
}

describe('TLS to Temporal', () => {
  it('is off by default, and the new variables have their defaults', () => {
    const config = loadConfig({});
    expect(config.temporal.security).toEqual({ tls: undefined, apiKey: undefined });
    expect(config.temporal.serverTls).toBeUndefined();
    expect(config.workerMetricsHost).toBe('127.0.0.1');
    expect(config.allowUnauthenticated).toBe(false);
  });

  it('reads the CA, the client pair and the server name into the SDK options', () => {
    const config = loadConfig({
      TEMPORAL_TLS_CA: path.join(certs, 'ca.pem'),
      TEMPORAL_TLS_CERT: path.join(certs, 'api.pem'),
      TEMPORAL_TLS_KEY: path.join(certs, 'api.key'),
      TEMPORAL_TLS_SERVER_NAME: 'temporal',
    });
    const tls = temporalTls(config.temporal.security);
    expect(tls?.serverNameOverride).toBe('temporal');
    expect(String(tls?.serverRootCACertificate)).toContain('BEGIN CERTIFICATE');
    expect(String(tls?.clientCertPair?.crt)).toContain('BEGIN CERTIFICATE');
    expect(String(tls?.clientCertPair?.key)).toContain('PRIVATE KEY');
  });

  it('an API key alone turns TLS on with the system CAs (Temporal Cloud)', () => {
    const config = loadConfig({ TEMPORAL_API_KEY: 'key' });
    expect(config.temporal.security.apiKey).toBe('key');
    expect(temporalTls(config.temporal.security)).toEqual({});
  });

  test.each([
    [{ TEMPORAL_TLS_CA: '/nonexistent/ca.pem' }, /^invalid TEMPORAL_TLS_CA: cannot read \/nonexistent\/ca\.pem \(ENOENT\)$/],
    [{ TEMPORAL_TLS_CERT: 'CERTS/api.pem' }, /^invalid TEMPORAL_TLS_KEY: required when TEMPORAL_TLS_CERT is set$/],
    [{ TEMPORAL_TLS_CERT: 'CERTS/api.key', TEMPORAL_TLS_KEY: 'CERTS/api.key' }, /^invalid TEMPORAL_TLS_CERT: .*holds no PEM certificate$/],
    [{ TEMPORAL_TLS_CERT: 'CERTS/api.pem', TEMPORAL_TLS_KEY: 'CERTS/api.pem' }, /^invalid TEMPORAL_TLS_KEY: .*holds no PEM private key$/],
    [{ TEMPORAL_SERVER_TLS_CLIENT_CA: 'CERTS/ca.pem' }, /^invalid TEMPORAL_SERVER_TLS_CERT: required when TEMPORAL_SERVER_TLS_CLIENT_CA is set/],
    [{ TEMPORAL_UI_TLS_KEY: 'CERTS/ui.key' }, /^invalid TEMPORAL_UI_TLS_CERT: required when TEMPORAL_UI_TLS_KEY is set$/],
    [{ ALLOW_UNAUTHENTICATED: 'yes' }, /^invalid ALLOW_UNAUTHENTICATED: /],
  ])('a bad setting stops start-up with one line naming the variable: %j', (env, expected) => {
    const resolved = Object.fromEntries(Object.entries(env).map(([key, value]) => [key, value.replace('CERTS', certs)]));
    expect(oneLine(() => loadConfig(resolved))).toMatch(expected);
  });

  it('a directory where a file belongs is named as unreadable', () => {
    expect(oneLine(() => loadConfig({ TEMPORAL_TLS_CA: certs }))).toMatch(/^invalid TEMPORAL_TLS_CA: cannot read .* \(EISDIR\)$/);
  });

  it("the frontend's TLS section requires client certificates signed by the client CA, and the server's own calls present its certificate", () => {
    const config = loadConfig({
      TEMPORAL_SERVER_TLS_CERT: path.join(certs, 'server.pem'),
      TEMPORAL_SERVER_TLS_KEY: path.join(certs, 'server.key'),
      TEMPORAL_SERVER_TLS_CLIENT_CA: path.join(certs, 'ca.pem'),
      TEMPORAL_TLS_CA: path.join(certs, 'ca.pem'),
    });
    const section = frontendTlsConfig(config.temporal.serverTls!, config.temporal.security) as {
      frontend: { server: Record<string, unknown>; client: Record<string, unknown> };
      systemWorker: Record<string, unknown>;
    };
    expect(section.frontend.server).toEqual({
      certFile: path.join(certs, 'server.pem'),
      keyFile: path.join(certs, 'server.key'),
      requireClientAuth: true,
      clientCaFiles: [path.join(certs, 'ca.pem')],
    });
    expect(section.frontend.client).toEqual({ serverName: 'localhost', rootCaFiles: [path.join(certs, 'ca.pem')] });
    expect(section.systemWorker).toMatchObject({ certFile: path.join(certs, 'server.pem'), keyFile: path.join(certs, 'server.key') });
  });
});

describe('no open doors by default', () => {
  it('the API refuses a non-loopback HOST without API_TOKEN, in one line', () => {
    const refusal = exposureCheck(loadConfig({ HOST: '0.0.0.0' })).refuse;
    expect(refusal).toMatch(/^HOST=0\.0\.0\.0 is reachable from other machines and API_TOKEN is not set/);
    expect(refusal).not.toContain('\n');
  });

  it('accepts loopback without a token, any host with one, and says so when told to run open', () => {
    for (const host of ['127.0.0.1', 'localhost', '::1', '127.0.0.2']) expect(exposureCheck(loadConfig({ HOST: host }))).toEqual({});
    expect(exposureCheck(loadConfig({ HOST: '0.0.0.0', API_TOKEN: 'secret' }))).toEqual({});
    const open = exposureCheck(loadConfig({ HOST: '0.0.0.0', ALLOW_UNAUTHENTICATED: 'true' }));
    expect(open.refuse).toBeUndefined();
    expect(open.warn).toMatch(/without API_TOKEN/);
  });

  it('worker metrics listen where WORKER_METRICS_HOST says', () => {
    expect(loadConfig({ WORKER_METRICS_HOST: '0.0.0.0' }).workerMetricsHost).toBe('0.0.0.0');
  });
});

describe('Temporal unreachable', () => {
  it('UNAVAILABLE and DEADLINE_EXCEEDED, bare or as a cause, are a 503; other errors are not', () => {
    const grpc = (code: number): Error => Object.assign(new Error(`${code} grpc`), { code, details: '', metadata: {} });
    expect(temporalUnavailable(grpc(14))?.status).toBe(503);
    expect(temporalUnavailable(Object.assign(new Error('wrapped'), { cause: grpc(4) }))?.code).toBe('UNAVAILABLE');
    expect(temporalUnavailable(grpc(5))).toBeUndefined();
    expect(temporalUnavailable(new Error('other'))).toBeUndefined();
  });
});

describe("the Temporal server's log", () => {
  it('is passed on line by line, whatever chunks the pipe delivers', async () => {
    const stream = new PassThrough();
    const lines: string[] = [];
    forEachLine(stream, (line) => lines.push(line));
    stream.write('{"level":"info","msg":"first');
    stream.write(' line"}\n{"level":"warn","msg":"sec');
    stream.write('ond"}\n\nthird without newline');
    stream.end();
    await new Promise((resolve) => stream.on('close', resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines).toEqual(['{"level":"info","msg":"first line"}', '{"level":"warn","msg":"second"}', 'third without newline']);
  });
});
