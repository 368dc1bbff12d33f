/**
 * The API while Temporal is away (a restart, a network cut): status reads
 * answer 503 UNAVAILABLE instead of hanging on the SDK's retries, and answer
 * again once Temporal is back. The API process talks to the real dev server
 * through a TCP relay this test cuts: first refusing connections (a server
 * restarting), then accepting and never answering (a black hole).
 */
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort, killPart, startPart, type Part } from '../support/processes';
import { waitFor } from '../support/stack';

type Mode = 'relay' | 'refuse' | 'blackhole';

/** A relay to `target` whose behaviour can be switched; switching drops every open connection. */
async function relay(target: string): Promise<{ address: string; set: (mode: Mode) => Promise<void>; close: () => Promise<void> }> {
  const at = target.lastIndexOf(':');
  const host = target.slice(0, at);
  const port = Number(target.slice(at + 1));
  const sockets = new Set<net.Socket>();
  let mode: Mode = 'relay';
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    if (mode === 'blackhole') return;
    const upstream = net.connect({ host, port });
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  const listenPort = await freePort();
  const listen = (): Promise<void> => new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(listenPort, '127.0.0.1', () => resolve());
  });
  await listen();
  const dropAll = (): void => {
    for (const socket of sockets) socket.destroy();
  };
  return {
    address: `127.0.0.1:${listenPort}`,
    set: async (next) => {
      mode = next;
      dropAll();
      if (next === 'refuse' && server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
      if (next !== 'refuse' && !server.listening) await listen();
    },
    close: async () => {
      dropAll();
      if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let dir: string;
let api: Part | undefined;
let cut: Awaited<ReturnType<typeof relay>>;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'temporal-away-'));
  const target = process.env.TEMPORAL_TEST_ADDRESS;
  if (!target) throw new Error('TEMPORAL_TEST_ADDRESS is not set: the jest global setup starts the dev server');
  cut = await relay(target);
});

afterAll(async () => {
  await killPart(api);
  await cut?.close();
  await fs.rm(dir, { recursive: true, force: true });
});

describe('status reads while Temporal is away', () => {
  it('answer 503 UNAVAILABLE when connections are refused and when nothing answers, and 404 again once it is back', async () => {
    const port = await freePort();
    api = await startPart('api/server', { TEMPORAL_ADDRESS: cut.address, PORT: String(port), DATA_DIR: path.join(dir, 'data') }, /api listening/, 120_000);
    const read = async (): Promise<{ status: number; code: string | undefined }> => {
      const response = await fetch(`http://127.0.0.1:${port}/api/v1/jobs/scan-does-not-exist`);
      const body = (await response.json()) as { code?: string };
      return { status: response.status, code: body.code };
    };
    expect(await read()).toEqual({ status: 404, code: 'NOT_FOUND' });

    // A server restarting: the port refuses connections.
    await cut.set('refuse');
    expect(await read()).toEqual({ status: 503, code: 'UNAVAILABLE' });

    // A network cut: connections are accepted and nothing ever answers.
    await cut.set('blackhole');
    expect(await read()).toEqual({ status: 503, code: 'UNAVAILABLE' });

    // Back: the same read is answered by Temporal again.
    await cut.set('relay');
    await waitFor(read, (result) => result.status === 404, 60_000, 250);
  }, 180_000);
});
