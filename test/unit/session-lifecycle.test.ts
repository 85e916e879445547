// The session lifecycle through the real services (launch, agent callbacks, reconcile, routing, restore)
// on a mock scheduler the test drives by hand: every transition of the state machine, adoption of an
// interrupted submit, a scheduler outage, a gateway restart, the time limit, and agent callbacks refused
// and accepted. No Slurm, no agent, no app: milliseconds per case.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import type { SessionRequest } from '../../src/core/request.ts';
import type { SessionRow } from '../../src/db/sessions.ts';
import { createUser, toUser, type User } from '../../src/db/users.ts';
import { type Gateway, startGateway } from '../../src/server/gateway.ts';
import { type MockAdapter, mockAdapters } from '../helpers/mock-adapter.ts';

interface SessionStatesLike {
  apply(row: SessionRow, event: { type: string }, patch: Partial<SessionRow>): Promise<SessionRow>;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-lifecycle-'));
const configText = `
dataDir: ${dir}/data
installPackages: false
server: { port: 0 }
log: { level: silent }
clusters:
  - { name: mock, backend: mock, title: Mock cluster, bindHost: 127.0.0.1, appSockets: relay }
`;
let gw: Gateway;
let mock: MockAdapter;
let alice: User;
let bob: User;
let app: http.Server;
let appPort = 0;

const request = (over: Partial<SessionRequest> = {}): SessionRequest => ({
  cluster: 'mock',
  app: 'jupyter',
  cores: 1,
  memoryGb: 1,
  gpus: 0,
  hours: 1,
  ...over,
});

async function start(): Promise<Gateway> {
  const cfg = parseConfig(configText, path.join(dir, 'atrium.yaml'), dir);
  const g = await startGateway(cfg, {
    log: pino({ level: 'silent' }),
    print: () => undefined,
    adminUnixUser: 'nobody',
  });
  mock = mockAdapters.get('mock')!;
  return g;
}

async function poll(): Promise<void> {
  await gw.ctx.clusters.get('mock')!.poller.pollNow();
  // Reconcile runs on the snapshot's listeners: let their database writes finish.
  await new Promise((r) => setTimeout(r, 50));
}

async function state(id: string): Promise<{ state: string; displayState: string; reason: string | null }> {
  const row = await gw.ctx.sessions.getOwned(alice, id);
  const v = await gw.ctx.sessions.view(row!);
  return { state: v.state, displayState: v.displayState, reason: v.reason };
}

async function agent(pathname: string, secret: string, body: unknown) {
  const r = await gw.app.inject({
    method: 'POST',
    url: pathname,
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    payload: JSON.stringify(body),
  });
  return { status: r.statusCode, body: r.json() as Record<string, unknown> };
}

/** A session taken to `running`: submitted, started by the scheduler, the agent reported ready. */
async function running(): Promise<{ id: string; jobId: string; heartbeat: string }> {
  const v = await gw.ctx.sessions.create(alice, request());
  const sub = mock.submissions.at(-1)!;
  await poll();
  mock.set(v.jobId!, 'running');
  await poll();
  const ready = await agent('/api/agent/ready', sub.agentEnv.ATRIUM_AGENT_SECRET!, {
    sessionId: v.id,
    host: '127.0.0.1',
    port: appPort,
  });
  expect(ready.status).toBe(200);
  return { id: v.id, jobId: v.jobId!, heartbeat: String(ready.body.heartbeatToken) };
}

beforeAll(async () => {
  app = http.createServer((_req, res) => res.end('hello from the app'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  appPort = (app.address() as { port: number }).port;
  gw = await start();
  alice = toUser(await createUser(gw.ctx.db, { username: 'alice-l', unixUser: 'nobody', isAdmin: false }));
  bob = toUser(await createUser(gw.ctx.db, { username: 'bob-l', unixUser: 'nobody', isAdmin: false }));
});

afterAll(async () => {
  await gw?.close();
  app?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('session lifecycle on a mock scheduler', () => {
  it('requested → queued → starting → running → ending → ended (stopped by the user)', async () => {
    const v = await gw.ctx.sessions.create(alice, request());
    expect(v.state).toBe('queued');
    expect(mock.submissions.at(-1)!.identity.user).toBe('nobody');
    await poll();
    expect((await state(v.id)).state).toBe('queued');
    mock.set(v.jobId!, 'running');
    await poll();
    expect((await state(v.id)).state).toBe('starting');
    const secret = mock.submissions.at(-1)!.agentEnv.ATRIUM_AGENT_SECRET!;
    const ready = await agent('/api/agent/ready', secret, {
      sessionId: v.id,
      host: '127.0.0.1',
      port: appPort,
    });
    expect(ready.status).toBe(200);
    expect((await state(v.id)).state).toBe('running');
    // The route is live: the proxy reaches the app as alice's session.
    expect(gw.ctx.routes.get(v.id)).toBeTruthy();
    const row = await gw.ctx.sessions.getOwned(alice, v.id);
    const stopped = await gw.ctx.sessions.stop(row!, 'stopped by you');
    expect(stopped.state).toBe('ending');
    expect(mock.cancels).toContain(v.jobId);
    await poll();
    const end = await state(v.id);
    expect(end.state).toBe('ended');
    expect(end.reason).toBe('stopped by you');
    expect(gw.ctx.routes.get(v.id)).toBeFalsy();
  });

  it('agent callbacks: a wrong secret, another session, a second use and a foreign host are refused', async () => {
    const v = await gw.ctx.sessions.create(alice, request());
    const secret = mock.submissions.at(-1)!.agentEnv.ATRIUM_AGENT_SECRET!;
    const other = await gw.ctx.sessions.create(alice, request());
    const otherSecret = mock.submissions.at(-1)!.agentEnv.ATRIUM_AGENT_SECRET!;
    mock.set(v.jobId!, 'running');
    mock.set(other.jobId!, 'running');
    await poll();
    const body = { sessionId: v.id, host: '127.0.0.1', port: appPort };
    expect((await agent('/api/agent/ready', 'wrong-secret', body)).status).toBe(403);
    expect((await agent('/api/agent/ready', otherSecret, body)).status).toBe(403);
    expect((await agent('/api/agent/ready', secret, { ...body, host: '127.0.0.9' })).status).toBe(403);
    expect((await state(v.id)).state).toBe('starting');
    expect((await agent('/api/agent/ready', secret, body)).status).toBe(200);
    expect((await agent('/api/agent/ready', secret, body)).status).toBeGreaterThanOrEqual(400);
    expect((await state(v.id)).state).toBe('running');
  });

  it("the agent's starting report: a poll while the app starts, the secret unspent; a wrong one refused", async () => {
    const v = await gw.ctx.sessions.create(alice, request());
    const secret = mock.submissions.at(-1)!.agentEnv.ATRIUM_AGENT_SECRET!;
    await poll(); // the latest poll shows the job queued
    mock.set(v.jobId!, 'running');
    const starting = () => agent('/api/agent/starting', secret, { sessionId: v.id });
    const settled = () => new Promise((r) => setTimeout(r, 50));
    expect((await agent('/api/agent/starting', 'wrong-secret', { sessionId: v.id })).status).toBe(403);
    const before = mock.polls;
    expect((await starting()).status).toBe(200);
    await settled();
    expect(mock.polls).toBe(before + 1);
    // One poll per session, however often the report comes (the agent runs as the user).
    expect((await starting()).status).toBe(200);
    await settled();
    expect(mock.polls).toBe(before + 1);
    // The poll the report asked for found the job running: ready needs none of its own.
    const ready = await agent('/api/agent/ready', secret, {
      sessionId: v.id,
      host: '127.0.0.1',
      port: appPort,
    });
    expect(ready.status).toBe(200);
    expect(mock.polls).toBe(before + 1);
    expect((await state(v.id)).state).toBe('running');
    // The secret is spent now: a starting report is refused.
    expect((await starting()).status).toBe(403);
  });

  it("a poll that moves the session between the ready report's read and write: the report still lands", async () => {
    const v = await gw.ctx.sessions.create(alice, request());
    const secret = mock.submissions.at(-1)!.agentEnv.ATRIUM_AGENT_SECRET!;
    await poll();
    mock.set(v.jobId!, 'running');
    // The latest snapshot shows the job running while its listeners (queued to starting) have not run:
    // as on a gateway whose poll has just returned.
    const poller = gw.ctx.clusters.get('mock')!.poller;
    poller.receive(await mock.poll(), Date.now());
    expect((await state(v.id)).state).toBe('queued');
    const states = (gw.ctx.sessions as unknown as { states: SessionStatesLike }).states;
    const apply = states.apply.bind(states);
    let raced = 0;
    states.apply = async (row, event, patch) => {
      if (event.type === 'agent_ready' && raced++ === 0) await apply(row, { type: 'job_running' }, {});
      return apply(row, event, patch);
    };
    try {
      const ready = await agent('/api/agent/ready', secret, {
        sessionId: v.id,
        host: '127.0.0.1',
        port: appPort,
      });
      expect(ready.status).toBe(200);
    } finally {
      states.apply = apply;
    }
    expect(raced).toBeGreaterThan(1);
    expect((await state(v.id)).state).toBe('running');
    expect(gw.ctx.routes.get(v.id)).toBeDefined();
  });

  it('heartbeats with the token the ready call gave are accepted; with the one-time secret they are not', async () => {
    const s = await running();
    const beat = await agent('/api/agent/heartbeat', s.heartbeat, { sessionId: s.id });
    expect(beat.status).toBe(200);
    const secret = mock.submissions.at(-1)!.agentEnv.ATRIUM_AGENT_SECRET!;
    expect((await agent('/api/agent/heartbeat', secret, { sessionId: s.id })).status).toBeGreaterThanOrEqual(
      400,
    );
  });

  it('the app exits: the agent says so and the session ends with that reason', async () => {
    const s = await running();
    const exit = await agent('/api/agent/exit', s.heartbeat, { sessionId: s.id, code: 0 });
    expect(exit.status).toBe(200);
    mock.set(s.jobId, 'completed');
    await poll();
    const st = await state(s.id);
    expect(['ended', 'failed']).toContain(st.state);
    expect(st.reason).toBe('the app exited');
  });

  it('the scheduler ends the job at its time limit: "time limit reached"', async () => {
    const s = await running();
    mock.set(s.jobId, 'timeout');
    await poll();
    const st = await state(s.id);
    expect(st.state).toBe('ended');
    expect(st.reason).toBe('time limit reached');
  });

  it('a job that fails before the app is ready fails the session', async () => {
    const v = await gw.ctx.sessions.create(alice, request());
    mock.set(v.jobId!, 'running');
    await poll();
    mock.set(v.jobId!, 'failed');
    await poll();
    expect((await state(v.id)).state).toBe('failed');
  });

  it('a scheduler outage: sessions are shown as unknown, keep their state and route, and come back', async () => {
    const s = await running();
    mock.reachable = false;
    await poll();
    const during = await state(s.id);
    expect(during.state).toBe('running');
    expect(during.displayState).toBe('unknown');
    expect(gw.ctx.routes.get(s.id)).toBeTruthy();
    // A submit while the last poll failed is refused at once, and leaves nothing behind.
    const before = mock.submissions.length;
    const sessionsBefore = (await gw.ctx.sessions.listFor(alice)).length;
    await expect(gw.ctx.sessions.create(alice, request())).rejects.toMatchObject({ status: 503 });
    expect(mock.submissions.length).toBe(before);
    expect((await gw.ctx.sessions.listFor(alice)).length).toBe(sessionsBefore);
    mock.reachable = true;
    await poll();
    expect(await state(s.id)).toMatchObject({ state: 'running', displayState: 'running' });
  });

  it('a submit interrupted after the scheduler created the job is adopted by its tag, never submitted twice', async () => {
    const hang = mock.submitSession.bind(mock);
    let createdTag = '';
    // The submit creates the job, then never answers (a gateway that stalled or died mid-submit).
    mock.submitSession = async (sub) => {
      createdTag = sub.tag;
      await hang(sub);
      return new Promise(() => undefined);
    };
    void gw.ctx.sessions.create(alice, request()).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
    mock.submitSession = hang;
    const job = mock.jobOf(createdTag)!;
    expect(job).toBeTruthy();
    const count = mock.submissions.filter((s) => s.tag === createdTag).length;
    await poll();
    const st = await state(createdTag);
    expect(st.state).toBe('queued');
    expect(mock.submissions.filter((s) => s.tag === createdTag).length).toBe(count);
    const row = await gw.ctx.sessions.getOwned(alice, createdTag);
    expect(row?.job_id).toBe(job.jobId);
  });

  it("another user's session is not theirs to see or stop", async () => {
    const s = await running();
    expect(await gw.ctx.sessions.getOwned(bob, s.id)).toBeUndefined();
    expect((await gw.ctx.sessions.listFor(bob)).some((x) => x.id === s.id)).toBe(false);
  });

  it('a gateway restart: running sessions, their routes and their heartbeats carry on', async () => {
    const s = await running();
    const queued = await gw.ctx.sessions.create(alice, request());
    await gw.close();
    gw = await start();
    expect(gw.ctx.routes.get(s.id)).toBeTruthy();
    await poll();
    expect((await state(s.id)).state).toBe('running');
    expect((await state(queued.id)).state).toBe('queued');
    expect((await agent('/api/agent/heartbeat', s.heartbeat, { sessionId: s.id })).status).toBe(200);
    // A job that ended while the gateway was away is found ended at the next poll.
    mock.set(s.jobId, 'completed');
    await poll();
    expect(['ended', 'failed']).toContain((await state(s.id)).state);
  });

  it('a job the scheduler forgot while running ends the session (it never stays running)', async () => {
    const s = await running();
    mock.forget(s.jobId);
    // Within a few seconds of the submit a missing job may only have missed the poll under way.
    await poll();
    expect((await state(s.id)).state).toBe('running');
    // Later, missing means gone (as if the submit were a minute ago).
    await gw.ctx.db
      .updateTable('sessions')
      .set({ submitted_at: Date.now() - 60_000 })
      .where('id', '=', s.id)
      .execute();
    await poll();
    const st = await state(s.id);
    expect(['ended', 'failed']).toContain(st.state);
    expect(st.reason).toBeTruthy();
  });
});
