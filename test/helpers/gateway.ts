// Starts a real gateway as a child process (so tests can stop and restart it like an operator would).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { createTestDatabase } from './postgres.ts';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const ATRIUM = path.join(ROOT, 'bin', 'atrium');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

export type TestEngine = 'sqlite' | 'postgres';

/**
 * The engine of test gateways that do not choose one: ATRIUM_TEST_DB=postgres runs a whole suite on the
 * PostgreSQL of scripts/postgres.sh (ATRIUM_TEST_POSTGRES_URL), a database of its own per gateway.
 */
export const TEST_DB: TestEngine = (() => {
  const v = process.env.ATRIUM_TEST_DB ?? 'sqlite';
  if (v !== 'sqlite' && v !== 'postgres') throw new Error(`ATRIUM_TEST_DB: sqlite or postgres (got "${v}")`);
  return v;
})();

export interface TestUser {
  name: string;
  unixUser?: string;
  admin?: boolean;
  password?: string;
}

export interface TestGateway {
  url: string;
  port: number;
  dir: string;
  /** The gateway's `database.url`. */
  databaseUrl: string;
  engine: TestEngine;
  configFile: string;
  logFile: string;
  passwords: Record<string, string>;
  proc: ChildProcess | null;
  start(): Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<void>;
  restart(): Promise<void>;
  log(): string;
  /** Runs the atrium CLI with this gateway's config. */
  cli(args: string[], input?: string): string;
  /** SQL on the gateway's database, whichever engine (see queryDatabase). */
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
}

const INT8_OID = 20;

/**
 * Runs one statement on a gateway's database, SQLite or PostgreSQL alike: `?` placeholders (made $1, $2...
 * for PostgreSQL; none may appear in a literal), the rows of a query (none for other statements), bigint
 * columns and counts as numbers on both.
 */
export async function queryDatabase<T = Record<string, unknown>>(
  databaseUrl: string,
  text: string,
  params: unknown[] = [],
): Promise<T[]> {
  if (databaseUrl.startsWith('sqlite:')) {
    const db = new Database(databaseUrl.slice('sqlite:'.length));
    try {
      const st = db.prepare(text);
      if (st.reader) return st.all(...params) as T[];
      st.run(...params);
      return [];
    } finally {
      db.close();
    }
  }
  let n = 0;
  let pool = pools.get(databaseUrl);
  if (!pool) {
    // One small pool per database, kept for the file's next queries (idle connections do not keep the
    // process alive).
    pool = new pg.Pool({
      connectionString: databaseUrl,
      max: 2,
      allowExitOnIdle: true,
      types: {
        getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
          oid === INT8_OID
            ? (v: string) => Number(v)
            : pg.types.getTypeParser(oid, format as 'text')) as never,
      },
    });
    pool.on('error', () => undefined);
    pools.set(databaseUrl, pool);
  }
  return (
    await pool.query(
      text.replace(/\?/g, () => `$${++n}`),
      params,
    )
  ).rows as T[];
}

const pools = new Map<string, pg.Pool>();

/**
 * A gateway with its own data dir and config. `yaml` is appended to a base config that sets the port
 * and data dir. Users are created with the CLI before the first start. The database is SQLite in the
 * data dir, or a new PostgreSQL database (`db: 'postgres'`, or ATRIUM_TEST_DB), or `databaseUrl`.
 */
export async function createTestGateway(
  opts: { yaml?: string; users?: TestUser[]; name?: string; db?: TestEngine; databaseUrl?: string } = {},
): Promise<TestGateway> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `atrium-${opts.name ?? 'gw'}-`));
  fs.chmodSync(dir, 0o755);
  const port = await freePort();
  const configFile = path.join(dir, 'atrium.yaml');
  const engine: TestEngine = opts.databaseUrl
    ? opts.databaseUrl.startsWith('sqlite:')
      ? 'sqlite'
      : 'postgres'
    : (opts.db ?? TEST_DB);
  const databaseUrl =
    opts.databaseUrl ?? (engine === 'postgres' ? await createTestDatabase() : `sqlite:${dir}/data/atrium.db`);
  fs.writeFileSync(
    configFile,
    `server:\n  host: 127.0.0.1\n  port: ${port}\ndataDir: ${dir}/data\ninstallPackages: false\nlog:\n  level: ${process.env.ATRIUM_TEST_LOG ?? 'info'}\n` +
      // SQLite stays the default (no key), so a --data-dir given to the CLI moves it as for a site.
      (opts.databaseUrl || engine === 'postgres'
        ? `database:\n  url: ${JSON.stringify(databaseUrl)}\n`
        : '') +
      (opts.yaml ?? ''),
  );
  const logFile = path.join(dir, 'gateway.log');
  const passwords: Record<string, string> = {};
  const cli = (args: string[], input?: string) =>
    execFileSync(ATRIUM, [...args, '-c', configFile], {
      input,
      encoding: 'utf8',
      env: { ...process.env, ATRIUM_ADMIN_UNIX_USER: 'nobody' },
    });
  for (const u of opts.users ?? []) {
    const pw = u.password ?? `pw-${u.name}-${Math.random().toString(36).slice(2, 10)}`;
    passwords[u.name] = pw;
    cli(
      [
        'user',
        'add',
        u.name,
        '--unix-user',
        u.unixUser ?? u.name,
        '--password-stdin',
        ...(u.admin ? ['--admin'] : []),
      ],
      pw,
    );
  }
  const gw: TestGateway = {
    url: `http://127.0.0.1:${port}`,
    port,
    dir,
    databaseUrl,
    engine,
    configFile,
    logFile,
    passwords,
    proc: null,
    cli,
    query: (text, params) => queryDatabase(databaseUrl, text, params),
    log: () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : ''),
    async start() {
      const out = fs.openSync(logFile, 'a');
      const proc = spawn(ATRIUM, ['serve', '-c', configFile], {
        stdio: ['ignore', out, out],
        env: { ...process.env, ATRIUM_ADMIN_UNIX_USER: 'nobody' },
      });
      fs.closeSync(out);
      gw.proc = proc;
      const deadline = Date.now() + 90_000;
      for (;;) {
        if (proc.exitCode !== null)
          throw new Error(`gateway exited (${proc.exitCode}):\n${gw.log().slice(-3000)}`);
        try {
          const r = await fetch(`${gw.url}/api/health`);
          if (r.ok) break;
        } catch {
          // not yet
        }
        if (Date.now() > deadline) throw new Error(`gateway did not start:\n${gw.log().slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop(signal = 'SIGTERM') {
      const p = gw.proc;
      if (!p || p.exitCode !== null) return;
      const exited = new Promise((r) => p.once('exit', r));
      p.kill(signal);
      const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
      gw.proc = null;
    },
    async restart() {
      await gw.stop();
      await gw.start();
    },
  };
  return gw;
}
