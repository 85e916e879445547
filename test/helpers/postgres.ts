// The throwaway PostgreSQL of scripts/postgres.sh (the test command starts it and exports
// ATRIUM_TEST_POSTGRES_URL, a base URL): a fresh database per gateway or test, SQL as the superuser,
// and the URLs the wrong-credentials tests need.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import type { PackageNeed } from '../../src/system/packages.ts';

/** Read when asked, not at import: bench:spawn sets it after starting a throwaway server. */
function serverUrl(): string | undefined {
  return process.env.ATRIUM_TEST_POSTGRES_URL;
}

/** Why PostgreSQL tests cannot run here, or undefined when they can. */
export function postgresMissing(): string | undefined {
  return serverUrl()
    ? undefined
    : 'no ATRIUM_TEST_POSTGRES_URL (bash scripts/postgres.sh up; see scripts/test.sh)';
}

function base(): URL {
  const url = serverUrl();
  if (!url) throw new Error(postgresMissing());
  return new URL(url);
}

/** The base URL with another database (and optionally other credentials). */
export function postgresUrl(database: string, creds?: { user: string; password?: string }): string {
  const u = base();
  u.pathname = `/${database}`;
  if (creds) {
    u.username = creds.user;
    u.password = creds.password ?? '';
  }
  return u.toString();
}

/** Runs SQL on a database of the test server (default: the base URL's) as its superuser. */
export async function pgQuery<T = Record<string, unknown>>(
  text: string,
  params: unknown[] = [],
  database?: string,
): Promise<T[]> {
  const client = new pg.Client({ connectionString: database ? postgresUrl(database) : base().toString() });
  await client.connect();
  try {
    return (await client.query(text, params)).rows as T[];
  } finally {
    await client.end();
  }
}

/** Creates an empty database of its own and returns its URL. */
export async function createTestDatabase(prefix = 't'): Promise<string> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  await pgQuery(`create database ${name}`);
  return postgresUrl(name);
}

/** Database name of a URL made by createTestDatabase. */
export function databaseOf(url: string): string {
  return new URL(url).pathname.slice(1);
}

/** The role scripts/postgres.sh makes for credential tests: its password is checked (scram). */
export const PASSWORD_ROLE = { user: 'atrium_pw', password: 'atrium_pw' };

/** A throwaway server (scripts/postgres.sh) needs the server's binaries (benchmarks install them). */
export const POSTGRES_NEED: PackageNeed = {
  packages: ['postgresql'],
  why: 'a throwaway PostgreSQL server',
  present: () =>
    fs.existsSync('/usr/lib/postgresql') &&
    fs.readdirSync('/usr/lib/postgresql').some((v) => fs.existsSync(`/usr/lib/postgresql/${v}/bin/initdb`)),
};

/**
 * The server of $ATRIUM_TEST_POSTGRES_URL, or a throwaway one on loopback `port` in `base`
 * (scripts/postgres.sh up; it sets $ATRIUM_TEST_POSTGRES_URL). Returns how to stop what it started.
 */
export function ensurePostgres(base: string, port: number, log: (s: string) => void): () => void {
  if (serverUrl()) return () => undefined;
  const env = { ...process.env, POSTGRES_BASE: base, POSTGRES_PORT: String(port) };
  const script = path.resolve(import.meta.dirname, '..', '..', 'scripts', 'postgres.sh');
  log('no ATRIUM_TEST_POSTGRES_URL: starting a throwaway PostgreSQL (scripts/postgres.sh up)');
  execFileSync('bash', [script, 'up'], { env, stdio: ['ignore', 'inherit', 'inherit'] });
  process.env.ATRIUM_TEST_POSTGRES_URL = execFileSync('bash', [script, 'url'], {
    env,
    encoding: 'utf8',
  }).trim();
  return () => {
    execFileSync('bash', [script, 'down'], { env, stdio: 'ignore' });
    delete process.env.ATRIUM_TEST_POSTGRES_URL;
  };
}
