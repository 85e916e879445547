// Two gateways on one PostgreSQL (the test command's, ATRIUM_TEST_POSTGRES_URL), in this process, on
// the mock scheduler (one scheduler for both, as a site has): one polls and the other takes its
// snapshots, live events reach each page once, routes and sign-outs follow across gateways, a session
// whose gateway died before submitting is settled by the next poll. End to end with real processes,
// HAProxy and Slurm: test/e2e/ha.test.ts.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import type { SessionRequest } from '../../src/core/request.ts';
import { createUser, toUser, type User } from '../../src/db/users.ts';
import { sessionPrefix } from '../../src/proxy/routes.ts';
import { type Gateway, startGateway } from '../../src/server/gateway.ts';
import { notificationService } from '../../src/server/routes/notifications.ts';
import type { SharedDatabase } from '../../src/server/shared.ts';
import type { ActivityBoard } from '../../src/sessions/idle.ts';
import { type MockAdapter, mockAdapters } from '../helpers/mock-adapter.ts';
import { createTestDatabase, postgresMissing } from '../helpers/postgres.ts';
import { until } from '../helpers/wait.ts';

const missing = postgresMissing();
if (missing) console.warn(`[shared-gateways] SKIPPED: ${missing}`);

const CLUSTER = 'mockha';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-shared-'));
let url = '';
let A: Gateway;
let B: Gateway;
let mock: MockAdapter;
let alice: User;
let app: http.Server;
let appPort = 0;
let polls = 0;

async function start(name: string): Promise<Gateway> {
  const cfg = parseConfig(
    `
dataDir: ${dir}/${name}
installPackages: false
server: { port: 0 }
log: { level: silent }
database: { url: ${JSON.stringify(url)} }
clusters:
  - { name: ${CLUSTER}, backend: mock, title: Mock cluster, bindHost: 127.0.0.1, appSockets: relay }
`,
    path.join(dir, `${name}.yaml`),
    dir,
  );
  return startGateway(cfg, {
    log: pino({ level: 'silent' }),
    print: () => undefined,
    adminUnixUser: 'nobody',
  });
}

const request = (): SessionRequest => ({
  cluster: CLUSTER,
  app: 'jupyter',
  cores: 1,
  memoryGb: 1,
  gpus: 0,
  hours: 1,
});
const poller = (g: Gateway) => g.ctx.clusters.get(CLUSTER)!.poller;
const leader = () => [A, B].find((g) => poller(g).leading);

describe.skipIf(missing)('two gateways sharing one PostgreSQL', { timeout: 30_000 }, () => {
  beforeAll(async () => {
    app = http.createServer((_req, res) => res.end('hello from the app'));
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    appPort = (app.address() as { port: number }).port;
    url = await createTestDatabase('shared');
    [A, B] = await Promise.all([start('a'), start('b')]);
    mock = mockAdapters.get(CLUSTER)!;
    const poll = mock.poll.bind(mock);
    mock.poll = () => {
      polls++;
      return poll();
    };
    alice = toUser(await createUser(A.ctx.db, { username: 'alice-s', unixUser: 'nobody', isAdmin: false }));
  });

  afterAll(async () => {
    await Promise.all([A?.close(), B?.close()]);
    app?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('one of them polls the cluster; the other takes its snapshot and asks it for early polls', async () => {
    await until('a gateway to hold the lease', () => leader(), 10_000, 50);
    expect([A, B].filter((g) => poller(g).leading)).toHaveLength(1);
    const follower = leader() === A ? B : A;
    // Ask between two of the leader's polls: a snapshot taken up to 100 ms before the ask is accepted
    // as fresh (src/scheduler/poller.ts allows for the gateways' clocks), which would answer without a
    // new poll.
    await until('the leader between polls', () => poller(leader()!).ageMs > 300, 10_000, 10);
    const before = polls;
    // The follower's pollNow is a poll of the leader after the ask (early, or its next tick), shared.
    const snap = await poller(follower).pollNow();
    expect(polls).toBeGreaterThan(before);
    expect(snap.ok).toBe(true);
    expect(poller(follower).latest).toEqual(poller(leader()!).latest);
  });

  /**
   * A session started through A whose agent reports ready through B (the other gateway), as its job
   * runs. `plainTcp`: its app is a plain TCP one (the test's HTTP server cannot do the relay's handshake).
   */
  async function readyThroughB(plainTcp = false): Promise<string> {
    const v = await A.ctx.sessions.create(alice, request());
    if (plainTcp)
      await A.ctx.db.updateTable('sessions').set({ socket_apps: '[]' }).where('id', '=', v.id).execute();
    const sub = mock.submissions.at(-1)!;
    mock.set(v.jobId!, 'running');
    await poller(A).pollNow();
    await until(
      'the session to start',
      async () => (await B.ctx.sessions.getOwned(alice, v.id))?.state === 'starting',
    );
    const ready = await B.app.inject({
      method: 'POST',
      url: '/api/agent/ready',
      headers: {
        authorization: `Bearer ${sub.agentEnv.ATRIUM_AGENT_SECRET}`,
        'content-type': 'application/json',
      },
      payload: JSON.stringify({ sessionId: v.id, host: '127.0.0.1', port: appPort }),
    });
    expect(ready.statusCode).toBe(200);
    return v.id;
  }

  it('a session started on one is routed on the other once running, and its route goes on both when stopped', async () => {
    const id = await readyThroughB();
    await until('the route on A', () => A.ctx.routes.get(id), 1000, 10);
    expect(A.ctx.routes.get(id)?.target.port).toBe(appPort);
    const row = (await A.ctx.sessions.getOwned(alice, id))!;
    await A.ctx.sessions.stop(row, 'stopped by you');
    await until('the route to go on B', () => !B.ctx.routes.get(id), 1000, 10);
  });

  it("a request that reaches a gateway before the other's notice of a running session is answered by the app", async () => {
    const id = await readyThroughB(true);
    // A had not heard yet (the notice travels through PostgreSQL): it used to answer "Connecting".
    await until('the route on A', () => A.ctx.routes.get(id), 1000, 10);
    A.ctx.routes.delete(id);
    const { token } = await A.ctx.webSessions.create(alice.id);
    const res = await fetch(`${A.url}${sessionPrefix(alice.username, id)}`, {
      headers: { cookie: `atrium_session=${token}` },
    });
    expect([res.status, await res.text()]).toEqual([200, 'hello from the app']);
    await A.ctx.sessions.stop((await A.ctx.sessions.getOwned(alice, id))!, 'stopped by you');
  });

  it('an event published on one gateway reaches the pages of both, each once', async () => {
    const got: Record<string, string[]> = { A: [], B: [] };
    const subs = [
      A.ctx.bus.subscribe({
        userId: alice.id,
        isAdmin: false,
        send: (e) => void (e.type === 'test' && got.A!.push(String(e.data))),
      }),
      B.ctx.bus.subscribe({
        userId: alice.id,
        isAdmin: false,
        send: (e) => void (e.type === 'test' && got.B!.push(String(e.data))),
      }),
    ];
    A.ctx.bus.publish({ userId: alice.id }, { type: 'test', data: 'from A' });
    B.ctx.bus.publish({ userId: alice.id }, { type: 'test', data: 'from B' });
    // Too large for a NOTIFY payload: it goes through the table.
    B.ctx.bus.publish({ userId: alice.id }, { type: 'test', data: `big ${'x'.repeat(20_000)}` });
    await until('every event everywhere', () => got.A!.length === 3 && got.B!.length === 3, 5000, 20);
    await new Promise((r) => setTimeout(r, 200));
    for (const list of Object.values(got))
      expect(list.map((e) => e.slice(0, 6)).sort()).toEqual(['big xx', 'from A', 'from B']);
    for (const u of subs) u();
  });

  it("what a gateway's proxy saw of a session's app reaches the other's idle clock", async () => {
    const board = (g: Gateway) => g.ctx.services.get('activity') as ActivityBoard;
    const at = Date.now() - 1000;
    board(A).touch('seen0001', undefined, 'ws', at);
    const got = await until(
      'the activity on B',
      () => board(B).get('seen0001', undefined, ['ws']),
      10_000,
      100,
    );
    // Sent as an age: the same moment give or take the trip.
    expect(Math.abs(got - at)).toBeLessThan(500);
  });

  it("a user's notification settings changed on one gateway are those the other notifies with", async () => {
    const prefs = (g: Gateway) => notificationService(g.ctx);
    const before = await prefs(B).prefs(alice.id);
    await prefs(A).setPrefs(alice.id, { browser: !before.browser });
    await until(
      'B to read them again',
      async () => (await prefs(B).prefs(alice.id)).browser !== before.browser,
      5000,
      20,
    );
  });

  it('a sign-out on one gateway ends the browser session the other had cached', async () => {
    const { token, session } = await A.ctx.webSessions.create(alice.id);
    expect((await B.ctx.webSessions.lookup(token))?.user.id).toBe(alice.id);
    expect(B.ctx.webSessions.peek(token)).not.toBeUndefined();
    await A.ctx.webSessions.destroy(session.id);
    await until('B to forget it', () => B.ctx.webSessions.peek(token) === undefined, 1000, 10);
    expect(await B.ctx.webSessions.lookup(token)).toBeNull();
  });

  it('a session whose gateway died before submitting is failed by the next poll; one of a live gateway is not', async () => {
    const db = A.ctx.db;
    const now = Date.now();
    // A gateway last heard from a minute ago, and one of each gateway's sessions left `requested`.
    await db
      .insertInto('gateways')
      .values({ id: 'gone', host: 'h', pid: 1, url: 'http://gone', started_at: 0, seen_at: now - 60_000 })
      .execute();
    const base = {
      user_id: alice.id,
      cluster: CLUSTER,
      app: 'jupyter',
      environment: null,
      label: null,
      state: 'requested',
      reason: null,
      request: JSON.stringify(request()),
      job_id: null,
      host: null,
      port: null,
      socket_path: null,
      app_token: 't',
      agent_secret_hash: 'h',
      heartbeat_token_hash: null,
      last_heartbeat_at: null,
      time_limit_min: 60,
      created_at: now,
      submitted_at: null,
      started_at: null,
      ready_at: null,
      ended_at: null,
      expires_at: null,
      warned_at: null,
      queue_info: null,
      updated_at: now,
      apps: null,
      socket_apps: '[]',
    };
    await db
      .insertInto('sessions')
      .values([
        { ...base, id: 'orphan0001', gateway: 'gone' },
        { ...base, id: 'living0001', gateway: (B.ctx.services.get('shared') as SharedDatabase).id },
      ])
      .execute();
    // The registry reads the table every half second: the poll after that settles the orphan.
    await new Promise((r) => setTimeout(r, 1200));
    await poller(leader()!).pollNow();
    await until(
      'the orphan to fail',
      async () => (await A.ctx.sessions.getOwned(alice, 'orphan0001'))?.state === 'failed',
      5000,
      50,
    );
    expect((await A.ctx.sessions.getOwned(alice, 'orphan0001'))?.reason).toBe(
      'the gateway that took the request stopped before submitting it; no job was created',
    );
    expect((await A.ctx.sessions.getOwned(alice, 'living0001'))?.state).toBe('requested');
  });

  it('when the polling gateway stops, the other takes the lease at once', async () => {
    const first = leader()!;
    const other = first === A ? B : A;
    await first.close();
    await until('the other to poll', () => poller(other).leading, 3000, 20);
    if (first === A) A = await start('a');
    else B = await start('b');
  });
});
