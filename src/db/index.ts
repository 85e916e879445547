import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import { DbOpenError, describeConnectError, parseDatabaseUrl } from './engine.ts';
import { migrate } from './migrations.ts';
import type { Database } from './schema.ts';

export type Db = Kysely<Database>;

export {
  DbOpenError,
  type Engine,
  engineOf,
  isDatabaseUnavailable,
  redactUrl,
  unavailableReply,
} from './engine.ts';

/** Connections per gateway when `database.poolSize` is not set (PostgreSQL). */
export const DEFAULT_POOL_SIZE = 10;
/** How long a new PostgreSQL connection may take before the open (or a query waiting for one) fails. */
const CONNECT_TIMEOUT_MS = 10_000;

const INT8_OID = 20;
/**
 * node-postgres returns bigint (int8) as a string, since it may not fit a double. Ours are epoch
 * milliseconds, ids and counts, all far below 2^53, so they come back as numbers like SQLite's.
 */
const pgTypes = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary'
      ? (v: string) => Number(v)
      : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

export interface OpenOptions {
  /** PostgreSQL connections in the pool (default DEFAULT_POOL_SIZE). */
  poolSize?: number;
  /** An idle pooled connection failed (server restart...): the pool drops it; say so. */
  onError?: (e: Error) => void;
  /** Skip the migrations (a check that only wants to know the database answers). */
  migrate?: boolean;
}

/** Distinct SQL texts kept compiled; queries with `in (...)` lists of many lengths make more. */
const STATEMENT_CACHE_SIZE = 500;

/**
 * Kysely's SQLite driver compiles every query anew (`prepare`); the gateway runs the same few hundred
 * SQL texts all day, and compiling them was a large part of its CPU under load (bench:scale's
 * profile). Statements are reused by their text. Safe because the driver runs one query at a time on
 * this connection and the gateway never streams a query (an open iterator would keep its statement busy).
 */
function withStatementCache(sqlite: SQLite.Database) {
  const cache = new Map<string, SQLite.Statement>();
  return {
    close: () => {
      cache.clear();
      sqlite.close();
    },
    prepare: (text: string) => {
      let stmt = cache.get(text);
      if (!stmt) {
        if (cache.size >= STATEMENT_CACHE_SIZE) cache.clear();
        stmt = sqlite.prepare(text);
        cache.set(text, stmt);
      }
      return stmt;
    },
  };
}

/**
 * Opens (and migrates) the database. `url` is `sqlite:<path>`, `sqlite::memory:` or
 * `postgres://user:password@host:port/database`. Every failure is a DbOpenError with a one-line message.
 */
export async function openDb(url: string, opts: OpenOptions = {}): Promise<Db> {
  const target = parseDatabaseUrl(url);
  let db: Db;
  let where: string;
  if (target.engine === 'sqlite') {
    const file = target.file;
    where = file;
    let sqlite: SQLite.Database;
    try {
      if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      sqlite = new SQLite(file);
      if (file !== ':memory:') fs.chmodSync(file, 0o600);
    } catch (e) {
      throw new DbOpenError(`cannot open the SQLite file ${file}: ${(e as Error).message}`);
    }
    // WAL lets page reads run while a poll writes; NORMAL sync is safe with WAL and much faster.
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('busy_timeout = 5000');
    db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) });
  } else {
    where = `${target.host}:${target.port}/${target.database}`;
    const pool = new pg.Pool({
      connectionString: target.url,
      max: opts.poolSize ?? DEFAULT_POOL_SIZE,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      types: pgTypes,
    });
    keepConnectionErrors(pool, opts.onError);
    try {
      const client = await pool.connect();
      client.release();
    } catch (e) {
      await pool.end().catch(() => {});
      throw new DbOpenError(describeConnectError(e, target));
    }
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: discardingBroken(pool) }) });
  }
  if (opts.migrate === false) return db;
  try {
    await migrate(db);
  } catch (e) {
    await db.destroy().catch(() => {});
    throw new DbOpenError(`${where}: ${(e as Error).message}`);
  }
  return db;
}

/**
 * A connection's error never ends the process. An idle one's (the server restarted) goes to `onError`
 * (pg-pool drops the connection). One in use when the server goes is failing its query, whose caller
 * hears of it, but pg also emits 'error' on the connection, and pg-pool takes its own listener off while
 * a connection is checked out: that ended a gateway when PostgreSQL stopped (test/e2e/ha.test.ts).
 */
export function keepConnectionErrors(pool: pg.Pool, onError?: (e: Error) => void): void {
  pool.on('error', (e) => onError?.(e));
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
    discardWhenBroken(client);
  });
}

/** The pool as kysely takes it (PostgresPool), its connections released with an error once broken (discardWhenBroken). */
export function discardingBroken(pool: pg.Pool): { connect(): Promise<pg.PoolClient>; end(): Promise<void> } {
  return {
    connect: async () => {
      const client = await pool.connect();
      // pg-pool sets release afresh on every checkout, after its 'acquire' event.
      const release = client.release;
      // kysely releases with release(false) when it has nothing to say, hence || and not ??.
      client.release = (err?: Error | boolean) =>
        release(
          err || (brokenClients.has(client) ? new Error('the server ended this connection') : undefined),
        );
      return client;
    },
    end: () => pool.end(),
  };
}

const brokenClients = new WeakSet<pg.PoolClient>();

/**
 * A query the server ended its connection under (pg_terminate_backend, a server stopping: FATAL) fails
 * at once, but the socket's end is read a moment later; released without an error, pg-pool would hand
 * the dead connection to the next query, which then failed too ("Connection terminated unexpectedly").
 * Any failure other than a statement's own error (severity ERROR) marks the connection for discarding.
 */
function discardWhenBroken(client: pg.PoolClient): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  (client as { query: unknown }).query = (...args: unknown[]) => {
    const result = query(...args);
    if (result instanceof Promise) {
      result.catch((e: unknown) => {
        if (!(e instanceof pg.DatabaseError) || e.severity !== 'ERROR') brokenClients.add(client);
      });
    }
    return result;
  };
}

/**
 * Opens the database only to see that it answers (`atrium config check`): no migrations, and no file
 * is created for SQLite. Returns what was reached, or throws a DbOpenError.
 */
export async function probeDb(url: string): Promise<string> {
  const target = parseDatabaseUrl(url);
  if (target.engine === 'sqlite') return `SQLite ${target.file}`;
  const db = await openDb(url, { poolSize: 1, migrate: false });
  try {
    // A query through kysely also makes destroy() end the pool: kysely sets its driver up lazily, and
    // a pool it never used keeps its idle connection (and the process) alive for another 10 s.
    await sql`select 1`.execute(db);
    return `PostgreSQL at ${target.host}:${target.port}/${target.database}`;
  } finally {
    await db.destroy();
  }
}

export function now(): number {
  return Date.now();
}
