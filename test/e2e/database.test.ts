// The database on both engines, on a real PostgreSQL 15 (scripts/postgres.sh): the same migrations
// from empty, run once when several gateways start together, values that come back as they went in,
// the statements that differ between SQLite and PostgreSQL, and one clear line (never a stack trace)
// when the `database` setting cannot be used, from `atrium serve` and `atrium config check`.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAnnouncement } from '../../src/admin/store.ts';
import { WebSessionStore } from '../../src/auth/web-sessions.ts';
import { AuditLog } from '../../src/db/audit.ts';
import { COPY_ORDER, copyDatabase, NOT_COPIED } from '../../src/db/copy.ts';
import { type Db, discardingBroken, keepConnectionErrors, openDb } from '../../src/db/index.ts';
import { migrations } from '../../src/db/migrations.ts';
import { casState } from '../../src/db/sessions.ts';
import { countUsers, createUser } from '../../src/db/users.ts';
import { ATRIUM, createTestGateway, freePort, type TestGateway } from '../helpers/gateway.ts';
import {
  createTestDatabase,
  databaseOf,
  PASSWORD_ROLE,
  pgQuery,
  postgresMissing,
  postgresUrl,
} from '../helpers/postgres.ts';
import { until } from '../helpers/wait.ts';

const missing = postgresMissing();
if (missing) console.warn(`[database e2e] PostgreSQL parts SKIPPED: ${missing}`);
const opened: Db[] = [];
const gateways: TestGateway[] = [];

afterAll(async () => {
  for (const g of gateways) await g.stop();
  for (const db of opened) await db.destroy();
});

async function open(url: string): Promise<Db> {
  const db = await openDb(url);
  opened.push(db);
  return db;
}

/** Table -> sorted column names, as the engine reports them. */
async function shape(db: Db): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const t of await db.introspection.getTables()) out[t.name] = t.columns.map((c) => c.name).sort();
  return out;
}

describe.skipIf(missing)('PostgreSQL: migrations', () => {
  it('migrates an empty database to the same tables and columns as SQLite, with 64-bit times', async () => {
    const url = await createTestDatabase();
    const pg = await open(url);
    const lite = await open('sqlite::memory:');
    const names = await pgQuery<{ name: string }>(
      'select name from kysely_migration order by name',
      [],
      databaseOf(url),
    );
    expect(names.map((r) => r.name)).toEqual(Object.keys(migrations).sort());
    const pgShape = await shape(pg);
    expect(Object.keys(pgShape).sort()).toEqual([...COPY_ORDER, ...NOT_COPIED].sort());
    expect(pgShape).toEqual(await shape(lite));

    const cols = await pgQuery<{
      table_name: string;
      column_name: string;
      data_type: string;
      column_default: string | null;
    }>(
      `select table_name, column_name, data_type, column_default from information_schema.columns
       where table_schema = 'public' and table_name not like 'kysely%'`,
      [],
      databaseOf(url),
    );
    // Every epoch-millisecond column is bigint (integer is 32 bits on PostgreSQL: it would overflow).
    const times = cols.filter((c) => c.column_name === 'at' || c.column_name.endsWith('_at'));
    expect(times.length).toBeGreaterThan(30);
    for (const c of times) expect(`${c.table_name}.${c.column_name} ${c.data_type}`).toMatch(/ bigint$/);
    // Auto-numbered ids are sequences; flags stay integers.
    const ids = cols.filter((c) => c.column_name === 'id' && c.data_type === 'integer');
    expect(ids.map((c) => c.table_name).sort()).toEqual(
      [
        'announcements',
        'api_tokens',
        'audit_log',
        'desktop_links',
        'jobs',
        'live_messages',
        'notifications',
        'session_events',
        'session_presets',
        'users',
      ].sort(),
    );
    for (const c of ids) expect(c.column_default).toMatch(/^nextval\(/);
    expect(cols.find((c) => c.table_name === 'users' && c.column_name === 'is_admin')?.data_type).toBe(
      'integer',
    );
  });

  it('four openDb at once on an empty database: all succeed, each migration runs once', async () => {
    const url = await createTestDatabase();
    const dbs = await Promise.all([1, 2, 3, 4].map(() => open(url)));
    expect(dbs).toHaveLength(4);
    const rows = await pgQuery<{ name: string; n: string }>(
      'select name, count(*) as n from kysely_migration group by name order by name',
      [],
      databaseOf(url),
    );
    expect(rows).toEqual(
      Object.keys(migrations)
        .sort()
        .map((name) => ({ name, n: '1' })),
    );
    // Tables were created once (a second run of 001 would have failed on "already exists").
    expect(await countUsers(dbs[0]!)).toBe(0);
  });

  it('two gateways started together on an empty database: both serve, one first administrator', async () => {
    const url = await createTestDatabase();
    const a = await createTestGateway({ name: 'pg-a', databaseUrl: url });
    const b = await createTestGateway({ name: 'pg-b', databaseUrl: url });
    gateways.push(a, b);
    await Promise.all([a.start(), b.start()]);
    for (const g of [a, b]) expect((await fetch(`${g.url}/api/health`)).status).toBe(200);
    // The first account is made after listening; "serving on" is printed once that is done.
    await until('both gateways to finish starting', () =>
      [a, b].every((g) => g.log().includes('atrium: serving on')),
    );
    expect([a, b].filter((g) => g.log().includes('created the first administrator'))).toHaveLength(1);
    const admins = await pgQuery<{ username: string }>('select username from users', [], databaseOf(url));
    expect(admins).toEqual([{ username: 'admin' }]);
    const runs = await pgQuery<{ n: string }>(
      'select count(*) as n from kysely_migration',
      [],
      databaseOf(url),
    );
    expect(Number(runs[0]!.n)).toBe(Object.keys(migrations).length);
  });
});

describe.skipIf(missing)('a connection the server ends under a running query', () => {
  it('fails that query, not the process; the next query gets a new connection', async () => {
    const url = await createTestDatabase();
    const db = await open(url);
    const running = sql`select pg_sleep(60)`.execute(db).then(
      () => 'finished',
      (e: Error) => e.message,
    );
    const sleeping = async () =>
      pgQuery<{ pid: number }>(
        "select pid from pg_stat_activity where datname = $1 and query like 'select pg_sleep(60)%'",
        [databaseOf(url)],
      );
    await until('the query to run', async () => (await sleeping()).length === 1, 10_000, 50);
    // What a server stopping (or an administrator) does to a connection in use: pg emits 'error' on
    // the checked-out client, which ended the process when nothing listened (src/db/index.ts).
    await pgQuery(
      'select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and query like $2',
      [databaseOf(url), 'select pg_sleep(60)%'],
    );
    expect(await running).toMatch(/terminating connection/);
    const [row] = (await sql<{ n: number }>`select 1 as n`.execute(db)).rows;
    expect(Number(row!.n)).toBe(1);
  });

  it('the connection whose query the server ended is discarded at its release, before its socket is read to the end', async () => {
    const url = await createTestDatabase();
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    keepConnectionErrors(pool);
    const client = await discardingBroken(pool).connect();
    try {
      const [{ pid }] = (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows as [
        { pid: number },
      ];
      // Released as kysely does, as soon as the query fails: the socket's end is not read yet.
      const running = client.query('select pg_sleep(60)').then(
        () => ['finished', -1] as const,
        (e: Error) => {
          client.release(false); // kysely's PostgresConnection always passes a boolean
          return [e.message, pool.totalCount] as const;
        },
      );
      await pgQuery('select pg_terminate_backend($1)', [pid]);
      const [message, pooled] = await running;
      expect(message).toMatch(/terminating connection/);
      // A statement's own error keeps a connection; this one must not go back to the pool (the next
      // query would be sent down a closing socket).
      expect(pooled).toBe(0);
      const again = await pool.query<{ n: number }>('select 1 as n');
      expect(Number(again.rows[0]!.n)).toBe(1);
    } finally {
      await pool.end();
    }
  });

  it('a statement that fails on its own keeps its connection', async () => {
    const pool = new pg.Pool({ connectionString: await createTestDatabase(), max: 1 });
    keepConnectionErrors(pool);
    const client = await discardingBroken(pool).connect();
    try {
      await expect(client.query('select 1/0')).rejects.toThrow(/division by zero/);
      client.release();
      expect(pool.totalCount).toBe(1);
    } finally {
      await pool.end();
    }
  });

  it("a checked-out connection's error event (a reset socket under a query) is heard, so it ends nothing", async () => {
    const pool = new pg.Pool({ connectionString: await createTestDatabase(), max: 1 });
    keepConnectionErrors(pool);
    const client = await pool.connect();
    try {
      // What pg does when the socket of a connection in use is reset (PostgreSQL stopped): with no
      // listener, EventEmitter throws it, out of the socket's callback, and the process ends.
      expect(() => client.emit('error', new Error('read ECONNRESET'))).not.toThrow();
    } finally {
      client.release(true);
      await pool.end();
    }
  });
});

describe.skipIf(missing)('text PostgreSQL cannot store', () => {
  it('a NUL character in a sign-in or a query is refused with 400, not a database error', async () => {
    const gw = await createTestGateway({ name: 'pg-nul', db: 'postgres', users: [{ name: 'alice' }] });
    gateways.push(gw);
    await gw.start();
    const login = (username: string) =>
      fetch(`${gw.url}/api/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: gw.url },
        body: JSON.stringify({ username, password: 'not-it' }),
      });
    expect((await login('ali\u0000ce')).status).toBe(400);
    expect((await login('alice')).status).toBe(401);
    expect((await fetch(`${gw.url}/api/jobs?cluster=a%00b`)).status).toBe(400);
    expect(gw.log()).not.toMatch(/"level":50/);
  });
});

describe.skipIf(missing)('copyDatabase', () => {
  it('copies more rows than one page, and new rows on the target are numbered after the copied ids', async () => {
    const src = await open(`sqlite:${fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-dbc-'))}/atrium.db`);
    const u = await createUser(src, { username: 'cy', unixUser: 'cy' });
    const rows = Array.from({ length: 4500 }, (_, i) => ({
      at: Date.now() + i,
      actor_user_id: u.id,
      actor: 'cy',
      action: 'test.row',
      target: String(i),
      ip: null,
      ok: i % 2,
      details: JSON.stringify({ i, text: 'naïve ✓' }),
    }));
    for (let i = 0; i < rows.length; i += 500)
      await src
        .insertInto('audit_log')
        .values(rows.slice(i, i + 500))
        .execute();
    // A gap in the ids (deleted rows) must survive the copy.
    await src.deleteFrom('audit_log').where('id', '<=', 10).execute();
    const dst = await open(await createTestDatabase());
    const said: string[] = [];
    const r = await copyDatabase(src, dst, { say: (l) => said.push(l) });
    expect(r.replaced).toBe(0);
    expect(said).toContain('audit_log: 4490 rows');
    expect(said).toContain('users: 1 row');
    const a = await dst.selectFrom('audit_log').selectAll().orderBy('id').execute();
    const b = await src.selectFrom('audit_log').selectAll().orderBy('id').execute();
    expect(a).toEqual(b);
    await new AuditLog(dst, pino({ level: 'silent' })).record({ action: 'after.copy', ok: true });
    const last = await dst
      .selectFrom('audit_log')
      .select('id')
      .orderBy('id', 'desc')
      .executeTakeFirstOrThrow();
    expect(last.id).toBe(4501);
    expect((await createUser(dst, { username: 'dee', unixUser: 'dee' })).id).toBe(u.id + 1);
    // Again: the target holds data now.
    await expect(copyDatabase(src, dst)).rejects.toThrow(
      /^to: the target database is not empty \(users: 2, audit_log: 4491\)/,
    );
    const again = await copyDatabase(src, dst, { force: true });
    expect(again.replaced).toBe(4493);
    expect(await countUsers(dst)).toBe(1);
  });
});

const ENGINES = missing ? (['sqlite'] as const) : (['sqlite', 'postgres'] as const);

describe.each(ENGINES)('the same answers on %s', (engine) => {
  let db: Db;
  const log = pino({ level: 'silent' });
  const FAR = Date.UTC(2200, 0, 1); // > 2^32 ms and > 2^31 s: needs 64 bits

  beforeAll(async () => {
    db = await open(
      engine === 'postgres'
        ? await createTestDatabase()
        : `sqlite:${fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-dbt-'))}/atrium.db`,
    );
  });

  it('epoch milliseconds, ids and counts come back as JS numbers', async () => {
    const u = await createUser(db, { username: 'ann', unixUser: 'ann' });
    expect(typeof u.id).toBe('number');
    expect(typeof u.created_at).toBe('number');
    expect(Math.abs(u.created_at - Date.now())).toBeLessThan(60_000);
    await db
      .insertInto('sessions')
      .values({
        id: 'sfar',
        user_id: u.id,
        cluster: 'c',
        app: 'jupyter',
        environment: null,
        label: null,
        state: 'requested',
        reason: null,
        request: '{}',
        job_id: null,
        host: null,
        port: 8888,
        socket_path: null,
        app_token: 't',
        agent_secret_hash: null,
        heartbeat_token_hash: null,
        last_heartbeat_at: null,
        time_limit_min: 60,
        created_at: FAR,
        submitted_at: null,
        started_at: null,
        ready_at: null,
        ended_at: null,
        expires_at: Number.MAX_SAFE_INTEGER,
        warned_at: null,
        queue_info: null,
        updated_at: FAR,
        apps: null,
        socket_apps: null,
      })
      .execute();
    const s = await db.selectFrom('sessions').selectAll().where('id', '=', 'sfar').executeTakeFirstOrThrow();
    expect(s.created_at).toBe(FAR);
    expect(s.expires_at).toBe(Number.MAX_SAFE_INTEGER);
    expect(s.port).toBe(8888);
    expect(s.submitted_at).toBeNull();
    const n = await countUsers(db);
    expect(n).toBe(1);
    expect(typeof n).toBe('number');
    const id = await createAnnouncement(db, {
      message: 'hello',
      level: 'info',
      expiresAt: null,
      authorUserId: u.id,
    });
    expect(typeof id).toBe('number');
    expect(id).toBeGreaterThan(0);
  });

  it('compare-and-set updates one row once', async () => {
    expect(await casState(db, 'sfar', 'requested', { state: 'queued' })).toBe(true);
    expect(await casState(db, 'sfar', 'requested', { state: 'queued' })).toBe(false);
  });

  it('audit prefixes are literal and case-sensitive on both engines', async () => {
    const audit = new AuditLog(db, log);
    for (const action of ['session.start', 'Session.start', 'sessionx.start', 'a_b.x', 'axb.x', 'a%b.x'])
      await audit.record({ action, ok: true });
    const actions = async (q: string) => (await audit.query({ action: q })).map((r) => r.action).sort();
    expect(await actions('session.*')).toEqual(['session.start']);
    expect(await actions('a_b.*')).toEqual(['a_b.x']);
    expect(await actions('a%*')).toEqual(['a%b.x']);
    const rows = await audit.query({ action: 'session.start' });
    expect(rows[0]!.ok).toBe(true);
    expect(typeof rows[0]!.at).toBe('number');
  });

  it('web sessions are found by a piece of their data, case-sensitively', async () => {
    const store = new WebSessionStore(db, 3600_000);
    const u = await createUser(db, { username: 'bea', unixUser: 'bea' });
    await store.create(u.id, { sid: 'Provider-SID-1' });
    expect(await store.rows({ dataContains: 'Provider-SID-1' })).toHaveLength(1);
    expect(await store.rows({ dataContains: 'provider-sid-1' })).toHaveLength(0);
    expect(await store.rows({ dataContains: '%' })).toHaveLength(0);
  });
});

/** Runs the CLI to its end; stdout, stderr and the exit code. */
function run(
  args: string[],
  timeoutMs = 120_000,
): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(ATRIUM, args, { env: { ...process.env, ATRIUM_ADMIN_UNIX_USER: 'nobody' } });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => {
      out += d;
    });
    p.stderr.on('data', (d) => {
      err += d;
    });
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, out, err });
    });
  });
}

describe.skipIf(missing)('a database that cannot be used: one line naming the setting', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-dberr-'));
  const config = (url: string, port = 0) => {
    const f = path.join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
    fs.writeFileSync(
      f,
      `server:\n  host: 127.0.0.1\n  port: ${port}\ndataDir: ${dir}/data\ninstallPackages: false\ndatabase:\n  url: ${JSON.stringify(url)}\n`,
    );
    return f;
  };

  const cases: [string, () => Promise<string>, RegExp][] = [
    [
      'a malformed URL',
      async () => 'postgres://atrium@127.0.0.1:5432',
      /^database\.url: name one database after the host in "postgres:\/\/atrium@127\.0\.0\.1:5432"/,
    ],
    [
      'an unknown scheme',
      async () => 'mysql://root:hunter2@127.0.0.1/atrium',
      /^database\.url: use sqlite:<file> or postgres:\/\/.* \(got "mysql:\/\/root:\*\*\*@127\.0\.0\.1\/atrium"\)$/,
    ],
    [
      'a wrong password',
      async () =>
        postgresUrl(databaseOf(await createTestDatabase()), { ...PASSWORD_ROLE, password: 'wrong' }),
      /^database\.url: cannot sign in to 127\.0\.0\.1:\d+ as "atrium_pw": password authentication failed$/,
    ],
    [
      'an unreachable server',
      async () => `postgres://atrium@127.0.0.1:${await freePort()}/atrium`,
      /^database\.url: cannot connect to 127\.0\.0\.1:\d+: connection refused$/,
    ],
    [
      'a database that does not exist',
      async () => postgresUrl('no_such_database'),
      /^database\.url: there is no database "no_such_database" on 127\.0\.0\.1:\d+$/,
    ],
  ];

  it.each(cases)(
    '%s: `atrium config check` and `atrium serve` exit 2 with one line',
    async (_what, url, line) => {
      const u = await url();
      const commands = [
        ['config', 'check', config(u)],
        ['serve', '-c', config(u, await freePort())],
      ];
      const results = await Promise.all(commands.map((args) => run(args)));
      for (const [i, args] of commands.entries()) {
        const r = results[i]!;
        expect(r.code, `${args[0]}: ${r.err}`).toBe(2);
        const lines = r.err.trim().split('\n');
        expect(lines, args[0]).toHaveLength(1);
        expect(lines[0]).toMatch(line);
        expect(r.err).not.toContain('hunter2');
      }
    },
  );

  it('the right password passes `atrium config check`, naming the server', async () => {
    const u = postgresUrl(databaseOf(await createTestDatabase()), PASSWORD_ROLE);
    await pgQuery(`grant all on database ${databaseOf(u)} to atrium_pw`);
    const r = await run(['config', 'check', config(u)]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^database\.url: PostgreSQL at 127\.0\.0\.1:\d+\/t_[0-9a-f]+ answers$/m);
    expect(r.out).not.toContain(PASSWORD_ROLE.password);
  });
});
