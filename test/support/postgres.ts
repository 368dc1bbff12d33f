/** PostgreSQL for tests and benches: a client for one piece of work (no test framework needed, so bench/ can use it). */
import pg from 'pg';

/** Runs `use` on a client of `connectionString` connected for it alone, and ends the client after. */
export async function withPgClient<T>(connectionString: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}
