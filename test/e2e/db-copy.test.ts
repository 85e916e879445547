// `atrium db copy` end to end: a site on SQLite gets users, browser sessions, API tokens, a session, a
// batch job, notifications, announcements and an audit trail through a real gateway on the Slurm test
// cluster; it stops, its file is copied into PostgreSQL (refused when the target holds data, unless
// --force), and a gateway on PostgreSQL shows the same things through the API, with the same cookie
// and token still valid and new rows numbered after the copied ones.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COPY_ORDER } from '../../src/db/copy.ts';
import { Client, type SessionView, waitForState } from '../helpers/client.ts';
import { type ClusterJson, testCluster } from '../helpers/cluster.ts';
import { ATRIUM, createTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { gatewayYaml } from '../helpers/jobs-cluster.ts';
import { createTestDatabase, databaseOf, pgQuery, postgresMissing } from '../helpers/postgres.ts';
import { until } from '../helpers/wait.ts';

const cluster = testCluster('db-copy', { up: 'nodes' });
const missing = postgresMissing();
if (missing) console.warn(`[db-copy e2e] SKIPPED: ${missing}`);

function copy(args: string[]) {
  const r = spawnSync(ATRIUM, ['db', 'copy', ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe.skipIf(!cluster || missing)('atrium db copy: a SQLite site moves to PostgreSQL', () => {
  const c = cluster as ClusterJson;
  let lite: TestGateway;
  let pgw: TestGateway;
  let alice: Client;
  let boss: Client;
  let token = '';
  let jobId = '';
  let sessionId = '';
  let url = '';
  let sqliteFile = '';
  const seen: Record<string, unknown> = {};

  beforeAll(async () => {
    lite = await createTestGateway({
      name: 'copy-lite',
      db: 'sqlite',
      users: [{ name: 'alice' }, { name: 'boss', unixUser: 'bob', admin: true }],
      yaml: gatewayYaml(c),
    });
    await lite.start();
    sqliteFile = path.join(lite.dir, 'data', 'atrium.db');
  });

  afterAll(async () => {
    await lite?.stop();
    await pgw?.stop();
  });

  it('fills the SQLite site through its API: token, job, notification, session, announcement, audit', async () => {
    alice = new Client(lite.url);
    boss = new Client(lite.url);
    expect((await alice.login('alice', lite.passwords.alice!)).status).toBe(200);
    expect((await boss.login('boss', lite.passwords.boss!)).status).toBe(200);

    const t = await alice.post('/api/tokens', { name: 'ci', scopes: ['read', 'jobs'] });
    expect(t.status, JSON.stringify(t.body)).toBe(201);
    token = (t.body as { token: string }).token;

    const j = await alice.post('/api/jobs', {
      cluster: 'hpc',
      source: 'text',
      script: '#!/bin/bash\necho copied\n',
    });
    expect(j.status, JSON.stringify(j.body)).toBe(201);
    jobId = (j.body as { job: { jobId: string } }).job.jobId;
    await until('the job to finish', async () => {
      const jobs = ((await alice.get('/api/jobs')).body as { jobs: { jobId: string; finished: boolean }[] })
        .jobs;
      return jobs.find((x) => x.jobId === jobId)?.finished;
    });
    await until('a notification', async () => {
      const n = (await alice.get('/api/notifications')).body as { notifications: unknown[] };
      return n.notifications.length > 0;
    });
    expect((await alice.json('PUT', '/api/notifications/prefs', { browser: true })).status).toBe(200);

    const s = await alice.post('/api/sessions', {
      cluster: 'hpc',
      app: 'jupyter',
      cores: 1,
      memoryGb: 1,
      hours: 1,
    });
    expect(s.status, JSON.stringify(s.body)).toBe(201);
    sessionId = (s.body as { session: SessionView }).session.id;
    await waitForState(alice, sessionId, ['queued', 'starting', 'running']);
    expect((await alice.del(`/api/sessions/${sessionId}`)).status).toBeLessThan(300);
    await waitForState(alice, sessionId, ['ended']);

    const a = await boss.post('/api/admin/announcements', { message: 'moving to PostgreSQL', level: 'info' });
    expect(a.status, JSON.stringify(a.body)).toBeLessThan(300);
    expect((await boss.post('/api/admin/clusters/hpc/drain')).status).toBe(200);
    expect((await boss.post('/api/admin/clusters/hpc/undrain')).status).toBe(200);

    seen.me = (await alice.get('/api/me')).body;
    seen.session = (await alice.get(`/api/sessions/${sessionId}`)).body;
    seen.jobs = ((await alice.get('/api/jobs')).body as { jobs: { jobId: string }[] }).jobs.filter(
      (x) => x.jobId === jobId,
    );
    seen.notifications = (await alice.get('/api/notifications')).body;
    seen.tokens = (await alice.get('/api/tokens')).body;
    seen.announcements = (await alice.get('/api/announcements')).body;
    seen.audit = ((await boss.get('/api/admin/audit?limit=1000')).body as { entries: unknown[] }).entries;
    expect((seen.audit as { action: string }[]).map((e) => e.action)).toEqual(
      expect.arrayContaining(['token.create', 'admin.cluster.drain', 'admin.cluster.undrain']),
    );
    await lite.stop();
  });

  it('copies every table into an empty PostgreSQL database and prints the count of each', async () => {
    url = await createTestDatabase();
    const counts = new Database(sqliteFile, { readonly: true });
    const expected = COPY_ORDER.map((t) => {
      const n = (counts.prepare(`select count(*) as n from ${t}`).get() as { n: number }).n;
      return `${t}: ${n} row${n === 1 ? '' : 's'}`;
    });
    counts.close();
    const r = copy(['--from', sqliteFile, '--to', url]);
    expect(r.code, r.err).toBe(0);
    const lines = r.out.trim().split('\n');
    expect(lines.slice(0, -1)).toEqual(expected);
    expect(lines.at(-1)).toMatch(
      new RegExp(
        `^copied \\d+ rows in ${COPY_ORDER.length} tables from ${sqliteFile} to postgres://.*; the counts match$`,
      ),
    );
    for (const t of [
      'users',
      'web_sessions',
      'api_tokens',
      'sessions',
      'session_events',
      'jobs',
      'audit_log',
    ]) {
      const [row] = await pgQuery<{ n: string }>(`select count(*) as n from ${t}`, [], databaseOf(url));
      expect(Number(row!.n), t).toBeGreaterThan(0);
    }
  });

  it('refuses a target that holds data, and replaces it with --force', async () => {
    const before = await pgQuery<{ n: string }>('select count(*) as n from audit_log', [], databaseOf(url));
    const refused = copy(['--from', sqliteFile, '--to', url]);
    expect(refused.code).toBe(2);
    expect(refused.out).toBe('');
    expect(refused.err.trim()).toMatch(
      /^to: the target database is not empty \(users: 2, .*audit_log: \d+.*\); --force replaces its contents$/,
    );
    expect(await pgQuery('select count(*) as n from audit_log', [], databaseOf(url))).toEqual(before);

    const forced = copy(['--from', sqliteFile, '--to', url, '--force']);
    expect(forced.code, forced.err).toBe(0);
    expect(forced.out).toMatch(/\(replacing \d+ rows it held\); the counts match\n$/);
    expect(await pgQuery('select count(*) as n from audit_log', [], databaseOf(url))).toEqual(before);
  });

  it('a gateway on PostgreSQL shows the same users, sessions, jobs, notifications and audit trail', async () => {
    pgw = await createTestGateway({ name: 'copy-pg', databaseUrl: url, yaml: gatewayYaml(c) });
    await pgw.start();
    // The browser's cookie from the SQLite site is still a valid browser session.
    const same = new Client(pgw.url);
    same.cookie = alice.cookie;
    same.csrf = alice.csrf;
    expect((await same.get('/api/me')).body).toEqual(seen.me);
    expect((await same.get(`/api/sessions/${sessionId}`)).body).toEqual(seen.session);
    expect(
      ((await same.get('/api/jobs')).body as { jobs: { jobId: string }[] }).jobs.filter(
        (x) => x.jobId === jobId,
      ),
    ).toEqual(seen.jobs);
    expect((await same.get('/api/notifications')).body).toEqual(seen.notifications);
    expect((await same.get('/api/tokens')).body).toEqual(seen.tokens);
    expect((await same.get('/api/announcements')).body).toEqual(seen.announcements);

    // The API token and the passwords work as before.
    const byToken = await fetch(`${pgw.url}/api/jobs`, { headers: { authorization: `Bearer ${token}` } });
    expect(byToken.status).toBe(200);
    const adm = new Client(pgw.url);
    expect((await adm.login('boss', lite.passwords.boss!)).status).toBe(200);
    const audit = ((await adm.get('/api/admin/audit?limit=1000')).body as { entries: { id: number }[] })
      .entries;
    const old = seen.audit as { id: number }[];
    const oldMax = Math.max(...old.map((e) => e.id));
    expect(audit.filter((e) => e.id <= oldMax)).toEqual(old);
    // Sign-in was audited on PostgreSQL, numbered after the copied entries (the sequences were reset).
    expect(audit.filter((e) => e.id > oldMax).length).toBeGreaterThan(0);

    const t2 = await same.post('/api/tokens', { name: 'after the move', scopes: ['read'] });
    expect(t2.status, JSON.stringify(t2.body)).toBe(201);
    const oldTokenIds = (seen.tokens as { tokens: { id: number }[] }).tokens.map((x) => x.id);
    expect((t2.body as { info: { id: number } }).info.id).toBeGreaterThan(Math.max(...oldTokenIds));
  });
});
