/**
 * The real server's PostgreSQL side: TEMPORAL_DATABASE_URL parsed, and the
 * persistence and visibility databases created and their schemas set up or
 * updated with Temporal's SQL tool, each step only when it is needed.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Client as PgClient } from 'pg';

const run = promisify(execFile);

/**
 * The two databases and the schema version the SQL tool of
 * TEMPORAL_SERVER_VERSION brings (its embedded `schema/postgresql/v12/*`;
 * the highest folder under `versioned/`). Bump with TEMPORAL_SERVER_VERSION (server.ts).
 */
export const TEMPORAL_SCHEMAS = {
  persistence: { schemaName: 'postgresql/v12/temporal', version: '1.18' },
  visibility: { schemaName: 'postgresql/v12/visibility', version: '1.9' },
} as const;

/** Where the server keeps its data: a PostgreSQL server and the persistence database's name. */
export interface TemporalDatabase {
  host: string;
  port: number;
  user: string;
  password: string;
  /** Persistence; visibility lives beside it in `<database>_visibility`. */
  database: string;
  visibilityDatabase: string;
  tls: boolean;
  verifyHost: boolean;
}

/** Parses TEMPORAL_DATABASE_URL (`postgres://user:pass@host:port/db?sslmode=…`). */
export function parseTemporalDatabaseUrl(url: string): TemporalDatabase {
  const parsed = new URL(url);
  if (!/^postgres(ql)?:$/.test(parsed.protocol)) throw new Error(`expected postgres://… (got ${parsed.protocol})`);
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, '')) || 'temporal';
  const sslmode = parsed.searchParams.get('sslmode') ?? 'disable';
  return {
    host: parsed.hostname || '127.0.0.1',
    port: Number(parsed.port || 5432),
    user: decodeURIComponent(parsed.username) || 'postgres',
    password: decodeURIComponent(parsed.password),
    database,
    visibilityDatabase: `${database}_visibility`,
    tls: ['require', 'verify-ca', 'verify-full'].includes(sslmode),
    verifyHost: sslmode === 'verify-full',
  };
}

/** What a start found in one database before doing anything. */
type SchemaState = { kind: 'no-database' } | { kind: 'no-schema' } | { kind: 'schema'; version: string };

function pgConfig(db: TemporalDatabase, database: string): ConstructorParameters<typeof PgClient>[0] {
  return {
    host: db.host,
    port: db.port,
    user: db.user,
    password: db.password || undefined,
    database,
    ssl: db.tls ? { rejectUnauthorized: db.verifyHost } : undefined,
    connectionTimeoutMillis: 10_000,
  };
}

async function withPg<T>(db: TemporalDatabase, database: string, fn: (client: PgClient) => Promise<T>): Promise<T> {
  const client = new PgClient(pgConfig(db, database));
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function schemaState(db: TemporalDatabase, database: string): Promise<SchemaState> {
  const exists = await withPg(db, 'postgres', async (client) => (await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database])).rowCount);
  if (!exists) return { kind: 'no-database' };
  return withPg(db, database, async (client) => {
    const table = await client.query<{ t: string | null }>("SELECT to_regclass('schema_version')::text AS t");
    if (!table.rows[0]?.t) return { kind: 'no-schema' };
    const row = await client.query<{ curr_version: string | null }>('SELECT curr_version FROM schema_version WHERE db_name = $1', [database]);
    const version = row.rows[0]?.curr_version;
    return version ? { kind: 'schema', version } : { kind: 'no-schema' };
  });
}

/** Compares dotted versions numerically (`1.9` < `1.18`). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const diff = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (diff !== 0) return diff;
  }
  return 0;
}

async function sqlTool(binary: string, db: TemporalDatabase, database: string, args: string[]): Promise<void> {
  // Connection settings through the tool's environment variables: the password stays out of `ps`.
  const env = {
    ...process.env,
    SQL_PLUGIN: 'postgres12',
    SQL_HOST: db.host,
    SQL_PORT: String(db.port),
    SQL_USER: db.user,
    SQL_PASSWORD: db.password,
    SQL_DATABASE: database,
    ...(db.tls ? { SQL_TLS: 'true', ...(db.verifyHost ? {} : { SQL_TLS_DISABLE_HOST_VERIFICATION: 'true' }) } : {}),
  };
  try {
    await run(binary, args, { env, timeout: 5 * 60_000, maxBuffer: 16 * 1024 * 1024 });
  } catch (error) {
    const detail = error as { stderr?: string; stdout?: string; message: string };
    const text = `${detail.stderr ?? ''}${detail.stdout ?? ''}`.trim().split('\n').slice(-3).join(' | ');
    throw new Error(`temporal sql tool ${args.join(' ')} on ${database} failed: ${text || detail.message}`);
  }
}

/**
 * Brings both databases to the schema of TEMPORAL_SERVER_VERSION with the SQL
 * tool: creates what is missing, updates what is older, and touches nothing
 * that is current. Returns one line per step taken (none on a second start).
 */
export async function setUpTemporalDatabases(options: { sqlTool: string; database: TemporalDatabase; log: (line: string) => void }): Promise<string[]> {
  const steps: string[] = [];
  const step = (line: string): void => {
    steps.push(line);
    options.log(line);
  };
  const targets = [
    { name: options.database.database, ...TEMPORAL_SCHEMAS.persistence },
    { name: options.database.visibilityDatabase, ...TEMPORAL_SCHEMAS.visibility },
  ];
  for (const target of targets) {
    const state = await schemaState(options.database, target.name);
    if (state.kind === 'schema' && compareVersions(state.version, target.version) >= 0) continue;
    if (state.kind === 'no-database') {
      await sqlTool(options.sqlTool, options.database, target.name, ['create-database']);
      step(`created database ${target.name}`);
    }
    if (state.kind !== 'schema') {
      // Version 0.0 sets up only the version tables; update-schema then applies every versioned step.
      await sqlTool(options.sqlTool, options.database, target.name, ['setup-schema', '-v', '0.0']);
    }
    await sqlTool(options.sqlTool, options.database, target.name, ['update-schema', '--schema-name', target.schemaName]);
    step(`schema of ${target.name} ${state.kind === 'schema' ? `updated from ${state.version}` : 'set up'} to ${target.version}`);
  }
  return steps;
}
