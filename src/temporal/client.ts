import { Client, Connection } from '@temporalio/client';
import type { Config } from '../config';

/** Opens a connection to the Temporal frontend of the configuration and a client on it. */
export async function connectClient(config: Config): Promise<{ client: Client; connection: Connection }> {
  const connection = await Connection.connect({ address: config.temporal.address });
  return { client: new Client({ connection, namespace: config.temporal.namespace }), connection };
}
