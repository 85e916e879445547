// Which database engine a URL names, and the one-line errors an operator gets when it cannot be used.
import { type Kysely, PostgresAdapter } from 'kysely';

export type Engine = 'sqlite' | 'postgres';

export type DatabaseTarget =
  | { engine: 'sqlite'; file: string }
  | {
      engine: 'postgres';
      url: string;
      host: string;
      port: number;
      user: string;
      database: string;
    };

/**
 * A database that cannot be opened: bad URL, unreachable server, refused credentials, failed migration.
 * The message is one line that names the setting; the CLI prints it alone (no stack trace).
 */
export class DbOpenError extends Error {
  constructor(message: string) {
    super(`database.url: ${message}`);
    this.name = 'DbOpenError';
  }
}

/** The URL as it may be shown: without its password. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*):[^@/]*@/i, '$1:***@');
}

const USAGE = 'sqlite:<file> or postgres://user:password@host:port/database';

/** Parses `sqlite:<path>`, `sqlite::memory:` or `postgres[ql]://user:password@host:port/database[?...]`. */
export function parseDatabaseUrl(url: string): DatabaseTarget {
  const sqlite = /^sqlite:(.+)$/.exec(url);
  if (sqlite) return { engine: 'sqlite', file: sqlite[1]! };
  if (!/^postgres(ql)?:\/\//i.test(url)) throw new DbOpenError(`use ${USAGE} (got "${redactUrl(url)}")`);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new DbOpenError(`not a valid URL: "${redactUrl(url)}" (expected ${USAGE})`);
  }
  // A Unix socket directory may come as ?host=/run/postgresql instead of a host name.
  const host = decodeURIComponent(u.hostname) || u.searchParams.get('host') || '';
  if (!host) throw new DbOpenError(`no host in "${redactUrl(url)}" (expected ${USAGE})`);
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (!database || database.includes('/'))
    throw new DbOpenError(`name one database after the host in "${redactUrl(url)}" (expected ${USAGE})`);
  const user = decodeURIComponent(u.username) || process.env.PGUSER || process.env.USER || 'postgres';
  return { engine: 'postgres', url, host, port: Number(u.port || 5432), user, database };
}

/** The engine behind a Kysely instance (or transaction): for the few statements that differ. */
// biome-ignore lint/suspicious/noExplicitAny: works on any schema
export function engineOf(db: Kysely<any>): Engine {
  return db.getExecutor().adapter instanceof PostgresAdapter ? 'postgres' : 'sqlite';
}

/** What went wrong reaching a PostgreSQL server, in the operator's terms. */
export function describeConnectError(
  e: unknown,
  t: { host: string; port: number; user: string; database: string },
) {
  const err = e as { code?: string; message?: string; errors?: { code?: string }[] };
  const code = err.code ?? err.errors?.[0]?.code;
  const where = `${t.host}:${t.port}`;
  const msg = String(err.message ?? e);
  switch (code) {
    case 'ECONNREFUSED':
      return `cannot connect to ${where}: connection refused`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot connect to ${where}: unknown host "${t.host}"`;
    case 'ETIMEDOUT':
      return `cannot connect to ${where}: timed out`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `cannot connect to ${where}: no route to the host`;
    case 'ECONNRESET':
      return `cannot connect to ${where}: the connection was reset`;
    case 'ENOENT':
      return `cannot connect to ${where}: no such socket`;
    case '28P01':
      return `cannot sign in to ${where} as "${t.user}": password authentication failed`;
    case '28000':
      return `cannot sign in to ${where} as "${t.user}": ${msg}`;
    case '3D000':
      return `there is no database "${t.database}" on ${where}`;
    case '57P03':
      return `${where} is not accepting connections yet (${msg})`;
  }
  if (/timeout expired|connection timeout/i.test(msg)) return `cannot connect to ${where}: no answer`;
  if (/client password must be a string/.test(msg))
    return `cannot sign in to ${where} as "${t.user}": the server wants a password and the URL has none`;
  return `${where}: ${msg}`;
}

/** Error codes of a PostgreSQL server that cannot be used right now (down, restarting, full, unreachable). */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '53300', // too_many_connections
]);

const UNAVAILABLE_MESSAGE =
  /connection terminated|timeout exceeded when trying to connect|connection error and is not queryable|terminating connection due to administrator command|the database system is (starting up|shutting down|in recovery mode)/i;

/**
 * Whether a failed query failed because the database server cannot be reached or used now (rather
 * than because of the query): requests then get a 503 naming the database, and work is retried later.
 */
export function isDatabaseUnavailable(e: unknown): boolean {
  const err = e as { code?: unknown; message?: unknown; errors?: { code?: unknown }[] } | null;
  if (!err || typeof err !== 'object') return false;
  const code = typeof err.code === 'string' ? err.code : err.errors?.[0]?.code;
  // SQLSTATE class 08: connection exception.
  if (typeof code === 'string' && (UNAVAILABLE_CODES.has(code) || /^08[0-9A-Z]{3}$/.test(code))) return true;
  return UNAVAILABLE_MESSAGE.test(String(err.message ?? ''));
}

/** What a request is told while the database cannot be used (no address, no stack: one line). */
export function unavailableReply(e: unknown): string {
  const err = e as { code?: string; errors?: { code?: string }[]; message?: string };
  const code = err.code ?? err.errors?.[0]?.code;
  const why =
    code === 'ECONNREFUSED'
      ? 'connection refused'
      : code === '57P01' || code === '57P02' || /terminat/i.test(String(err.message))
        ? 'the server is shutting down or restarting'
        : code === '57P03' || /starting up|recovery/i.test(String(err.message))
          ? 'the server is starting up'
          : code === '53300'
            ? 'too many connections'
            : 'no answer';
  return `database unavailable: PostgreSQL cannot be used right now (${why}); try again in a moment`;
}
