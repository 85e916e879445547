// The embedded default end to end: real gateway process, real local backend (processes as the user),
// real Jupyter, everything reached through the gateway's proxy only.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Client, type SessionView, waitForState } from '../helpers/client.ts';
import { createTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { createKernel, kernelRoundTrip, runInKernel, wsStatus } from '../helpers/jupyter.ts';
import { until } from '../helpers/wait.ts';

let gw: TestGateway;
let alice: Client;
let bob: Client;
let session: SessionView;
let kernelId: string;

const jupyter = { cluster: 'local', app: 'jupyter', cores: 1, memoryGb: 1, hours: 1 };

function procUser(pid: number): string {
  return execFileSync('ps', ['-o', 'user=', '-p', String(pid)], { encoding: 'utf8' }).trim();
}

function pidsOfSession(id: string): number[] {
  const out = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => l.includes(`/user/alice/${id}/`) || l.includes(`sessions/${id}`))
    .map((l) => Number(l.trim().split(/\s+/)[0]));
}

beforeAll(async () => {
  gw = await createTestGateway({ name: 'local', users: [{ name: 'alice' }, { name: 'bob' }] });
  await gw.start();
  alice = new Client(gw.url);
  bob = new Client(gw.url);
  expect((await alice.login('alice', gw.passwords.alice!)).status).toBe(200);
  expect((await bob.login('bob', gw.passwords.bob!)).status).toBe(200);
});

afterAll(async () => {
  for (const s of ((await alice.get('/api/sessions')).body as { sessions: SessionView[] }).sessions ?? []) {
    if (s.state !== 'ended' && s.state !== 'failed') await alice.del(`/api/sessions/${s.id}`);
  }
  await new Promise((r) => setTimeout(r, 1500));
  await gw?.stop();
});

describe('local backend: sign in, start Jupyter, reach its kernel through the proxy', () => {
  it('refuses a wrong password and unauthenticated API calls', async () => {
    const c = new Client(gw.url);
    expect((await c.login('alice', 'wrong-password')).status).toBe(401);
    expect((await c.get('/api/sessions')).status).toBe(401);
  });

  it('starts a session as the Unix user and runs print(6*7) over the kernel WebSocket', async () => {
    const r = await alice.post('/api/sessions', jupyter);
    expect(r.status).toBe(201);
    session = (r.body as { session: SessionView }).session;
    expect(session.url).toBe(`/user/alice/${session.id}/`);
    session = await waitForState(alice, session.id, ['running']);
    const rt = await kernelRoundTrip(gw.url + session.url, alice.cookie);
    kernelId = rt.kernelId;
    expect(rt.stdout.trim()).toBe('42');
    // The app runs as alice, with her supplementary groups.
    const pids = pidsOfSession(session.id);
    expect(pids.length).toBeGreaterThan(0);
    for (const p of pids) expect(procUser(p)).toBe('alice');
    const groups = execFileSync('ps', ['-o', 'supgid=', '-p', String(pids[0])], { encoding: 'utf8' }).trim();
    const expected = execFileSync('id', ['-G', 'alice'], { encoding: 'utf8' }).trim().split(/\s+/).sort();
    expect(
      groups
        .split(',')
        .map((g) => g.trim())
        .sort(),
    ).toEqual(expected);
  });

  it('never shows the app token to the browser and never passes it on a command line', async () => {
    const r = await alice.req('GET', `${session.url}tree`, undefined, { accept: 'text/html' });
    expect(r.status).toBe(200);
    const html = await r.text();
    const appToken = fs.readFileSync(`/proc/${pidsOfSession(session.id)[0]}/environ`, 'latin1');
    const jt = /ATRIUM_(?:JUPYTER|APP)_TOKEN=([^\0]+)/.exec(appToken)?.[1];
    expect(jt).toBeTruthy();
    expect(html).not.toContain(jt);
    expect(r.headers.get('set-cookie') ?? '').not.toContain(jt!);
    expect(execFileSync('ps', ['-eo', 'args='], { encoding: 'utf8' })).not.toContain(jt!);
    const sessions = JSON.stringify((await alice.get('/api/sessions')).body);
    expect(sessions).not.toContain(jt!);
  });

  it("Jupyter's answers get the gateway's protections, and its _xsrf cookie stays at the session's address", async () => {
    const r = await alice.req('GET', `${session.url}tree`, undefined, { accept: 'text/html' });
    expect(r.status).toBe(200);
    await r.text();
    const cookies = r.headers.getSetCookie();
    const xsrf = cookies.find((c) => c.startsWith('_xsrf='));
    expect(xsrf, cookies.join('\n')).toBeDefined();
    // Jupyter sets it with Path=/: it would reach every page of the gateway and every other session.
    for (const c of cookies) {
      expect(c).toContain(`; Path=${session.url}`);
      expect(c).not.toMatch(/domain=/i);
    }
    expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    expect(r.headers.get('referrer-policy')).toBeTruthy();
    // Jupyter says frame-ancestors 'self' itself; where an app says nothing the gateway adds SAMEORIGIN.
    const framing = `${r.headers.get('x-frame-options') ?? ''} ${r.headers.get('content-security-policy') ?? ''}`;
    expect(framing).toMatch(/SAMEORIGIN|frame-ancestors 'self'/i);
  });

  it("a second user cannot reach, see or stop the first user's session (HTTP and WebSocket)", async () => {
    const base = gw.url + session.url;
    for (const p of ['', 'tree', 'api/status', `api/kernels/${kernelId}`]) {
      const r = await bob.req('GET', session.url + p);
      expect([403, 404]).toContain(r.status);
    }
    // Even bob's own user path with alice's session id.
    expect([403, 404]).toContain((await bob.req('GET', `/user/bob/${session.id}/api/status`)).status);
    const ws = `${base.replace(/^http/, 'ws')}api/kernels/${kernelId}/channels`;
    expect([401, 403, 404]).toContain(await wsStatus(ws, { cookie: bob.cookie }));
    expect([401, 403, 404]).toContain(await wsStatus(ws, {}));
    // A cross-site page cannot open alice's kernel WebSocket with her cookie.
    expect(await wsStatus(ws, { cookie: alice.cookie, origin: 'http://evil.example' })).toBe(403);
    expect((await bob.del(`/api/sessions/${session.id}`)).status).toBe(404);
    expect((await bob.get(`/api/sessions/${session.id}`)).status).toBe(404);
    const bobs = (await bob.get('/api/sessions')).body as { sessions: SessionView[] };
    expect(bobs.sessions.map((s) => s.id)).not.toContain(session.id);
    // Still running for alice.
    expect((await alice.get(`/api/sessions/${session.id}`)).body).toMatchObject({
      session: { state: 'running' },
    });
  });

  it('the gateway restarts while the session runs, and the same kernel still answers', async () => {
    const before = pidsOfSession(session.id).sort();
    await gw.restart();
    // The browser's cookie is still valid after the restart (sessions are in the database).
    expect((await alice.get(`/api/sessions/${session.id}`)).body).toMatchObject({
      session: { state: 'running' },
    });
    const out = await runInKernel(gw.url + session.url, alice.cookie, kernelId, 'print(6*7)');
    expect(out.trim()).toBe('42');
    expect(pidsOfSession(session.id).sort()).toEqual(before);
  });

  it('an upstream that dies leaves no open sockets behind, and answers 502 or an ended page', async () => {
    const base = gw.url + session.url;
    const wsUrl = `${base.replace(/^http/, 'ws')}api/kernels/${kernelId}/channels`;
    const sockets = await Promise.all(
      Array.from(
        { length: 20 },
        () =>
          new Promise<WebSocket>((res, rej) => {
            const w = new WebSocket(wsUrl, { headers: { cookie: alice.cookie } });
            w.on('open', () => res(w));
            w.on('error', rej);
          }),
      ),
    );
    const metric = async () => {
      const text = await (await fetch(`${gw.url}/metrics`)).text();
      return Number(/^atrium_proxy_open_websockets (\d+)/m.exec(text)?.[1] ?? -1);
    };
    expect(await metric()).toBe(20);
    const closed = Promise.all(sockets.map((w) => new Promise((r) => w.on('close', r))));
    // Kill the app (not the agent) hard, as a crash would.
    const out = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
    const appPid = Number(
      out
        .split('\n')
        .find((l) => l.includes('jupyter-notebook') && l.includes(session.id))
        ?.trim()
        .split(/\s+/)[0],
    );
    process.kill(-appPid, 'SIGKILL');
    await closed;
    for (let i = 0; i < 50 && (await metric()) !== 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await metric()).toBe(0);
    const r = await alice.req('GET', `${session.url}api/status`);
    expect([502, 503, 410]).toContain(r.status);
    await r.text();
    // The agent notices the app is gone and the session ends with a reason.
    const ended = await waitForState(alice, session.id, ['ended'], 30_000);
    expect(ended.reason).toBe('the app exited');
  });

  it('the first kernel is the spare one Jupyter started with the server: unlisted until asked for, in the home directory; others start where asked', async () => {
    const r = await alice.post('/api/sessions', jupyter);
    expect(r.status).toBe(201);
    const s = await waitForState(alice, (r.body as { session: SessionView }).session.id, ['running']);
    const base = gw.url + s.url;
    const log = () => fs.readFileSync(`/home/alice/.atrium/sessions/${s.id}/app.log`, 'utf8');
    const spare = await until(
      'the spare kernel to start',
      () => /Kernel started: ([0-9a-f-]{36})/.exec(log())?.[1],
    );
    const listed = async () =>
      ((await (await alice.req('GET', `${s.url}api/kernels`)).json()) as { id: string }[]).map((k) => k.id);
    // Not shown in Jupyter's list, nor seen by the gateway's idle check, until it is handed out.
    expect(await listed()).toEqual([]);
    const first = await createKernel(base, alice.cookie);
    expect(first).toBe(spare);
    expect(log()).toContain(`atrium: handing out the spare kernel ${spare}`);
    expect(await listed()).toEqual([spare]);
    expect((await runInKernel(base, alice.cookie, first, 'import os; print(os.getcwd())')).trim()).toBe(
      '/home/alice',
    );
    // A notebook in a folder gets a kernel of its own, started there.
    const dir = `atrium-spare-${s.id}`;
    expect((await alice.req('PUT', `${s.url}api/contents/${dir}`, { type: 'directory' })).status).toBe(201);
    const nb = await alice.req('POST', `${s.url}api/sessions`, {
      path: `${dir}/x.ipynb`,
      type: 'notebook',
      kernel: { name: 'python3' },
    });
    expect(nb.status).toBe(201);
    const second = ((await nb.json()) as { kernel: { id: string } }).kernel.id;
    expect(second).not.toBe(spare);
    expect((await runInKernel(base, alice.cookie, second, 'import os; print(os.getcwd())')).trim()).toBe(
      `/home/alice/${dir}`,
    );
    await alice.req('DELETE', `${s.url}api/contents/${dir}`);
    expect((await alice.del(`/api/sessions/${s.id}`)).status).toBe(200);
  });

  it('a user holds several sessions and stops their own', async () => {
    const a = (await alice.post('/api/sessions', { ...jupyter, label: 'first' })).body as {
      session: SessionView;
    };
    const b = (await alice.post('/api/sessions', { ...jupyter, label: 'second' })).body as {
      session: SessionView;
    };
    await waitForState(alice, a.session.id, ['running']);
    await waitForState(alice, b.session.id, ['running']);
    const k = await createKernel(gw.url + b.session.url, alice.cookie);
    expect((await runInKernel(gw.url + b.session.url, alice.cookie, k, 'print(1+1)')).trim()).toBe('2');
    expect((await alice.del(`/api/sessions/${a.session.id}`)).status).toBe(200);
    const ended = await waitForState(alice, a.session.id, ['ended'], 30_000);
    expect(ended.reason).toBe('stopped by you');
    expect(pidsOfSession(a.session.id)).toEqual([]);
    // The ended session's address says so, for its owner.
    const page = await alice.req('GET', `${a.session.url}tree`, undefined, { accept: 'text/html' });
    expect(page.status).toBe(410);
    expect(await page.text()).toContain('stopped by you');
    expect((await alice.get(`/api/sessions/${b.session.id}`)).body).toMatchObject({
      session: { state: 'running' },
    });
    await alice.del(`/api/sessions/${b.session.id}`);
  });

  it('validates every field and names it; nothing is started on error', async () => {
    const before = ((await alice.get('/api/sessions')).body as { sessions: unknown[] }).sessions.length;
    const bad: [Record<string, unknown>, string, RegExp][] = [
      [{ cores: 999 }, 'cores', /^Cores: at most \d+ per node/],
      [{ cores: 0 }, 'cores', /^Cores:/],
      [{ memoryGb: 100000 }, 'memoryGb', /^Memory: at most/],
      [{ hours: 0 }, 'hours', /^Hours:/],
      [{ hours: 1000 }, 'hours', /^Hours: at most 8/],
      [{ gpus: 1 }, 'gpus', /^GPUs: this cluster has no GPUs/],
      [{ app: 'nope' }, 'app', /^User interface:/],
      [{ cluster: 'elsewhere' }, 'cluster', /^Cluster:/],
      [{ label: '<script>alert(1)</script>' }, 'label', /^Name:/],
      [{ account: 'a;rm -rf /' }, 'account', /^Account:/],
      [{ partition: '$(id)' }, 'partition', /^Partition:/],
      [{ reservation: '`id`' }, 'reservation', /^Reservation:/],
    ];
    for (const [patch, field, msg] of bad) {
      const r = await alice.post('/api/sessions', { ...jupyter, ...patch });
      expect(r.status, JSON.stringify(patch)).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
      const errors = (r.body as { errors: { field: string; message: string }[] }).errors;
      const e = errors.find((x) => x.field === field);
      expect(e, `${JSON.stringify(patch)} → ${JSON.stringify(errors)}`).toBeDefined();
      expect(e!.message).toMatch(msg);
    }
    expect(((await alice.get('/api/sessions')).body as { sessions: unknown[] }).sessions.length).toBe(before);
  });

  it('rate-limits sign-in attempts', async () => {
    const c = new Client(gw.url);
    let limited = 0;
    for (let i = 0; i < 15; i++) if ((await c.login('bob', `wrong-${i}`)).status === 429) limited++;
    expect(limited).toBeGreaterThan(0);
  });
});

describe('agent callbacks are bound to one session, one secret, once', () => {
  let gw2: TestGateway;
  let c: Client;

  beforeAll(async () => {
    // The "agent" here is `sleep`: the job starts with the real environment but never calls back, so
    // the test (as root) can read the secret a real agent would have, and play the attacker with it.
    gw2 = await createTestGateway({
      name: 'cb',
      users: [{ name: 'alice' }],
      yaml: 'agent:\n  node: /bin/sleep\n  script: "300"\n',
    });
    await gw2.start();
    c = new Client(gw2.url);
    await c.login('alice', gw2.passwords.alice!);
  });

  afterAll(async () => {
    for (const s of ((await c.get('/api/sessions')).body as { sessions: SessionView[] }).sessions ?? []) {
      if (s.state !== 'ended' && s.state !== 'failed') await c.del(`/api/sessions/${s.id}`);
    }
    await new Promise((r) => setTimeout(r, 1000));
    await gw2?.stop();
  });

  function secretOf(jobId: string): string {
    const env = fs.readFileSync(`/proc/${jobId}/environ`, 'latin1');
    return /ATRIUM_AGENT_SECRET=([^\0]+)/.exec(env)![1]!;
  }

  async function callback(sessionId: string, secret: string, body: Record<string, unknown> = {}) {
    const r = await fetch(`${gw2.url}/api/agent/ready`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}` },
      body: JSON.stringify({ sessionId, host: '127.0.0.1', port: 45678, ...body }),
    });
    await r.text();
    return r.status;
  }

  it('refuses forged, wrong-session, SSRF and replayed callbacks, and logs them', async () => {
    const a = ((await c.post('/api/sessions', jupyter)).body as { session: SessionView }).session;
    const b = ((await c.post('/api/sessions', jupyter)).body as { session: SessionView }).session;
    await waitForState(c, a.id, ['starting']);
    await waitForState(c, b.id, ['starting']);
    const secretA = secretOf(a.jobId!);
    const secretB = secretOf(b.jobId!);
    expect(await callback(a.id, 'forged-secret-0123456789')).toBe(403);
    expect(await callback(a.id, '')).toBe(403);
    expect(await callback('nosuchsession', secretA)).toBe(403);
    expect(await callback(b.id, secretA)).toBe(403); // A's secret for B
    expect(await callback(a.id, secretA, { host: '10.1.2.3' })).toBe(403); // not the job's node
    expect(await callback(a.id, secretA, { host: 'evil host' })).toBe(400);
    expect(await callback(a.id, secretA, { port: 70000 })).toBe(400);
    // Extra fields are ignored, never applied.
    expect(await callback(a.id, secretA, { user_id: 2, state: 'ended', app_token: 'x' })).toBe(200);
    const va = await waitForState(c, a.id, ['running']);
    expect(va.jobId).toBe(a.jobId);
    expect(await callback(a.id, secretA)).toBe(403); // replay
    expect(await callback(b.id, secretB)).toBe(200);
    expect(await callback(b.id, secretB)).toBe(403); // replay
    // Heartbeats need the token from the callback, not the secret.
    const hb = await fetch(`${gw2.url}/api/agent/heartbeat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${secretA}` },
      body: JSON.stringify({ sessionId: a.id }),
    });
    expect(hb.status).toBe(403);
    const refused = gw2
      .log()
      .split('\n')
      .filter((l) => l.includes('"action":"agent.callback"') && l.includes('"ok":false'));
    expect(refused.length).toBeGreaterThanOrEqual(7);
  });
});
