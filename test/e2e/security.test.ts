// The adversarial suite. Signed in as bob (and as nobody, and as a cross-site page driving alice's
// browser), it tries to reach alice's sessions, proxy URLs, API objects, tokens and files; to make the
// proxy reach other hosts and sockets; to forge or replay agent callbacks; to plant script; to post
// from another origin; to inject headers; to abuse token scopes, fixed and logged-out sessions.
// Every try must be refused AND change nothing: at the end alice's sessions, routes, tokens and
// files are as they were, her app never saw a try, no canary was touched, and no answer to an
// attacker held a secret of hers. Prints "security: N tries, N refused".
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Client, type SessionView, waitForState } from '../helpers/client.ts';
import { echoApps, echoLog } from '../helpers/echo-app.ts';
import { createTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { wsStatus } from '../helpers/jupyter.ts';

const RUN = crypto.randomBytes(4).toString('hex');
const MARK = `atrium-try-${RUN}`;
const echo = echoApps();
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-sec-'));
fs.chmodSync(scratch, 0o755);

let gw: TestGateway;
let gwPid = 0;
let alice: Client;
let bob: Client;
let carol: Client;
let adm: Client;
/** alice's running echo session, her session that stays "starting", bob's running session. */
let A: SessionView;
let S: SessionView;
let B: SessionView;
let secretA = '';
let secretS = '';
let appTokenA = '';
let aliceTokens: { read: string; readId: number; sessions: string; sessionsId: number };
let bobToken = '';
let admToken = '';
let aliceJobId = '1';
/** alice's own preset of the new-session form, and the administrators' site preset. */
let alicePreset = 0;
let sitePreset = 0;
let canaryFile = '';
let canarySecret = '';
let routeBefore = '';
const pwnedFile = path.join(scratch, 'pwned');
const canaryTcp = { port: 0, hits: 0, server: null as net.Server | null };
const canaryUnix = { path: path.join(scratch, 'canary.sock'), hits: 0, server: null as net.Server | null };
const canaryInHome = { path: '', hits: 0, server: null as net.Server | null };

/** Everything an attacker (bob, or nobody) got back, to look for alice's secrets in. */
const seenByAttacker: string[] = [];
let tryNo = 0;
const mark = () => `${MARK}-${++tryNo}`;

// ---- helpers ------------------------------------------------------------------------------------

interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One HTTP request with the path exactly as given (no normalisation of "..", "//" or "%2e"). */
function req(
  method: string,
  p: string,
  headers: Record<string, string> = {},
  body?: string,
  attacker = true,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    const r = http.request(
      {
        host: '127.0.0.1',
        port: gw.port,
        method,
        path: p,
        headers: { connection: 'close', ...headers },
        agent: false,
      },
      (res) => {
        let data = '';
        res.setEncoding('latin1');
        res.on('data', (d: string) => {
          data += d;
        });
        res.on('end', () => {
          if (attacker) seenByAttacker.push(JSON.stringify(res.headers) + data);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data });
        });
      },
    );
    r.on('error', reject);
    r.setTimeout(10_000, () => r.destroy(new Error('timeout')));
    if (body !== undefined) r.write(body);
    r.end();
  });
}

/** Raw bytes on a socket: for request lines and headers that no HTTP client would send. */
function raw(
  text: string | Buffer,
  attacker = true,
): Promise<{ status: number; head: string; body: string }> {
  return new Promise((resolve) => {
    const sock = net.connect(gw.port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      const s = buf.toString('latin1');
      const i = s.indexOf('\r\n\r\n');
      const head = i >= 0 ? s.slice(0, i) : s;
      if (attacker) seenByAttacker.push(s);
      resolve({
        status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0),
        head,
        body: i >= 0 ? s.slice(i + 4) : '',
      });
    };
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
    });
    sock.on('end', finish);
    sock.on('close', finish);
    sock.on('error', finish);
    sock.setTimeout(5_000, () => sock.destroy());
    sock.write(text);
  });
}

const host = () => `127.0.0.1:${gw.port}`;
const origin = () => `http://${host()}`;
const cookieOf = (c: Client) => c.cookie;
const notFoundish = (s: number) => [401, 403, 404].includes(s);

/** Did alice's app (session A) receive anything carrying this marker? */
function reachedAlice(m: string): boolean {
  return echoLog('alice', A.id).some((r) => r.path.includes(m) || JSON.stringify(r.headers).includes(m));
}

/** A proxy try: refused with 401/403/404 (or a redirect to sign in) and alice's app saw nothing. */
async function proxyRefused(
  method: string,
  p: (m: string) => string,
  headers: Record<string, string>,
  ok = (s: number) => notFoundish(s) || s === 302,
): Promise<boolean> {
  const m = mark();
  const r = await req(method, p(m), headers);
  if (r.status === 302 && !String(r.headers.location).startsWith('/login?next=')) return false;
  return (
    ok(r.status) && !r.body.includes('"app": "echo"') && !r.body.includes('"app":"echo"') && !reachedAlice(m)
  );
}

/** Refused, or answered by something other than alice's app (e.g. the web UI's page), which never saw it. */
async function rawRefused(text: (m: string) => string): Promise<boolean> {
  const m = mark();
  const r = await raw(text(m));
  return r.status !== 101 && !r.body.includes('"app": "echo"') && !reachedAlice(m);
}

/** An answer from bob's own app (its base is bob's prefix), or a refusal. */
function servedByBobOrRefused(r: Res): boolean {
  if (r.status !== 200) return r.status >= 300;
  try {
    return (JSON.parse(r.body) as { base?: string }).base === `/user/bob/${B.id}/`;
  } catch {
    return false;
  }
}

function agentCall(route: string, secret: string, body: Record<string, unknown>): Promise<Res> {
  const json = JSON.stringify(body);
  return req(
    'POST',
    `/api/agent/${route}`,
    {
      'content-type': 'application/json',
      authorization: `Bearer ${secret}`,
      'content-length': String(Buffer.byteLength(json)),
    },
    json,
  );
}

function envOf(pid: string | null, key: string): string {
  const env = fs.readFileSync(`/proc/${pid}/environ`, 'latin1');
  return new RegExp(`${key}=([^\\0]+)`).exec(env)?.[1] ?? '';
}

/** SQL on the gateway's database, SQLite or PostgreSQL (ATRIUM_TEST_DB). */
const sql = <T = Record<string, unknown>>(text: string, params: unknown[] = []) => gw.query<T>(text, params);

/**
 * What no refused try may change, read from the database (no API call, so no rate limit): sessions and
 * their states, tokens, browser sign-ins, drain flags and stop requests, announcements, preferences,
 * users' roles.
 */
async function stateNow(): Promise<string> {
  const out: unknown[] = [];
  for (const text of [
    'select id, state from sessions order by id',
    'select id, revoked_at from api_tokens order by id',
    'select id from web_sessions order by id',
    "select key, value from settings where key like 'cluster.drained.%' or key like 'admin.stop.%' order by key",
    'select id, active, expires_at from announcements order by id',
    'select user_id, prefs from notification_prefs order by user_id',
    'select id, is_admin, disabled from users order by id',
    'select id, user_id, cluster, name, form_values, is_default from session_presets order by id',
    'select id, session_id, grant_hash, used_at, ended_at from desktop_links order by id',
  ])
    out.push(await sql(text));
  return JSON.stringify(out);
}

async function sessionRow(id: string): Promise<{
  state: string;
  host: string | null;
  port: number | null;
  socket_path: string | null;
}> {
  const [row] = await sql('select state, host, port, socket_path from sessions where id = ?', [id]);
  return row as never;
}

async function aliceSessionsNow(): Promise<Record<string, string>> {
  const list = ((await alice.get('/api/sessions')).body as { sessions: SessionView[] }).sessions;
  return Object.fromEntries(list.map((s) => [s.id, s.state]));
}

const uidOf = (u: string) => Number(execFileSync('id', ['-u', u], { encoding: 'utf8' }).trim());
const gidOf = (u: string) => Number(execFileSync('id', ['-g', u], { encoding: 'utf8' }).trim());

// ---- the table of tries -------------------------------------------------------------------------

interface Try {
  area: string;
  name: string;
  run: () => Promise<boolean>;
}
const tries: Try[] = [];
const results: { area: string; name: string; refused: boolean; error?: string }[] = [];
const attempt = (area: string, name: string, run: () => Promise<boolean>) => tries.push({ area, name, run });

// Proxy, HTTP: bob on alice's session addresses.
const asBob = () => ({ cookie: cookieOf(bob) });
attempt('proxy', "bob GETs alice's session root", () =>
  proxyRefused('GET', (m) => `/user/alice/${A.id}/?${m}`, asBob()),
);
attempt('proxy', "bob GETs a path in alice's session", () =>
  proxyRefused('GET', (m) => `/user/alice/${A.id}/api/${m}`, asBob()),
);
for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD']) {
  attempt('proxy', `bob sends ${method} into alice's session`, () =>
    proxyRefused(method, (m) => `/user/alice/${A.id}/${m}`, { ...asBob(), origin: origin() }),
  );
}
attempt('proxy', "bob uses his own name with alice's session id", () =>
  proxyRefused('GET', (m) => `/user/bob/${A.id}/${m}`, asBob()),
);
attempt('proxy', 'no cookie at all', () => proxyRefused('GET', (m) => `/user/alice/${A.id}/${m}`, {}));
attempt('proxy', 'a forged session cookie', () =>
  proxyRefused('GET', (m) => `/user/alice/${A.id}/${m}`, {
    cookie: `atrium_session=${crypto.randomBytes(32).toString('base64url')}`,
  }),
);
attempt('proxy', "bob's API token instead of a cookie", () =>
  proxyRefused('GET', (m) => `/user/alice/${A.id}/${m}`, { authorization: `Bearer ${bobToken}` }),
);
attempt('proxy', 'user name in capitals', () =>
  proxyRefused('GET', (m) => `/user/ALICE/${A.id}/${m}`, asBob()),
);
attempt('proxy', 'user name percent-encoded', () =>
  proxyRefused('GET', (m) => `/user/%61lice/${A.id}/${m}`, asBob()),
);
attempt('proxy', 'session id in capitals', () =>
  proxyRefused('GET', (m) => `/user/alice/${A.id.toUpperCase()}/${m}`, asBob()),
);
attempt('proxy', 'NUL after the session id', () =>
  proxyRefused('GET', (m) => `/user/alice/${A.id}%00/${m}`, asBob()),
);
attempt('proxy', 'NUL in the user name', () =>
  proxyRefused('GET', (m) => `/user/alice%00bob/${A.id}/${m}`, asBob()),
);
attempt('proxy', '/user/bob/../alice/<id>/', () =>
  proxyRefused('GET', (m) => `/user/bob/../alice/${A.id}/${m}`, asBob()),
);
attempt('proxy', '/user/bob/%2e%2e/alice/<id>/', () =>
  proxyRefused('GET', (m) => `/user/bob/%2e%2e/alice/${A.id}/${m}`, asBob()),
);
attempt('proxy', 'encoded slash between name and id', () =>
  proxyRefused('GET', (m) => `/user/alice%2f${A.id}/${m}`, asBob()),
);
attempt('proxy', 'double slashes', () => proxyRefused('GET', (m) => `/user//alice//${A.id}/${m}`, asBob()));
attempt('proxy', "through bob's own session with ../ to alice's", async () => {
  const m = mark();
  const r = await req('GET', `/user/bob/${B.id}/../../alice/${A.id}/${m}`, asBob());
  // bob reaches at most his own app; alice's app never sees it.
  return servedByBobOrRefused(r) && !reachedAlice(m);
});
attempt('proxy', "through bob's own session with encoded ../ to alice's", async () => {
  const m = mark();
  const r = await req('GET', `/user/bob/${B.id}/..%2f..%2falice%2f${A.id}%2f${m}`, asBob());
  return servedByBobOrRefused(r) && !reachedAlice(m);
});
attempt('proxy', 'an overlong user name', () =>
  proxyRefused(
    'GET',
    (m) => `/user/${'a'.repeat(6000)}/${A.id}/${m}`,
    asBob(),
    (s) => [404, 414, 431].includes(s),
  ),
);
attempt('proxy', 'an overlong session id', () =>
  proxyRefused('GET', (m) => `/user/alice/${'a'.repeat(300)}/${m}`, asBob()),
);
attempt('proxy', "bob on alice's bare session address (no redirect for him)", () =>
  proxyRefused('GET', (m) => `/user/alice/${A.id}?${m}`, asBob()),
);
attempt('proxy', 'a spoofed Host header', () =>
  proxyRefused('GET', (m) => `/user/alice/${A.id}/${m}`, { ...asBob(), host: 'evil.example' }),
);
attempt('proxy', 'absolute-form request target', () =>
  rawRefused(
    (m) =>
      `GET http://${host()}/user/alice/${A.id}/${m} HTTP/1.1\r\nHost: ${host()}\r\nCookie: ${cookieOf(bob)}\r\nConnection: close\r\n\r\n`,
  ),
);

// Proxy, WebSocket.
const wsUrl = (p: string) => `ws://${host()}${p}`;
attempt('websocket', "bob opens alice's WebSocket", async () =>
  notFoundish(await wsStatus(wsUrl(`/user/alice/${A.id}/ws`), { cookie: cookieOf(bob) })),
);
attempt('websocket', 'no cookie', async () =>
  notFoundish(await wsStatus(wsUrl(`/user/alice/${A.id}/ws`), {})),
);
attempt('websocket', 'forged cookie', async () =>
  notFoundish(await wsStatus(wsUrl(`/user/alice/${A.id}/ws`), { cookie: 'atrium_session=forged' })),
);
attempt(
  'websocket',
  "alice's cookie from a cross-site page (Origin evil)",
  async () =>
    (await wsStatus(wsUrl(`/user/alice/${A.id}/ws`), {
      cookie: cookieOf(alice),
      origin: 'http://evil.example',
    })) === 403,
);
attempt(
  'websocket',
  "alice's cookie with Origin null (sandboxed frame)",
  async () =>
    (await wsStatus(wsUrl(`/user/alice/${A.id}/ws`), { cookie: cookieOf(alice), origin: 'null' })) === 403,
);
attempt('websocket', "bob's name with alice's session id", async () =>
  notFoundish(await wsStatus(wsUrl(`/user/bob/${A.id}/ws`), { cookie: cookieOf(bob) })),
);
attempt('websocket', 'path trick /user/bob/../alice/<id>/ws', () =>
  rawRefused(
    (m) =>
      `GET /user/bob/../alice/${A.id}/ws?${m} HTTP/1.1\r\nHost: ${host()}\r\nCookie: ${cookieOf(bob)}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\n\r\n`,
  ),
);

// Cross-site writes into alice's app with her cookie.
for (const [method, o] of [
  ['POST', 'http://evil.example'],
  ['PUT', 'null'],
  ['DELETE', `http://127.0.0.1:${1}`],
] as const) {
  attempt('proxy-csrf', `${method} into alice's app from Origin ${o}`, () =>
    proxyRefused(
      method,
      (m) => `/user/alice/${A.id}/${m}`,
      { cookie: cookieOf(alice), origin: o },
      (s) => s === 403,
    ),
  );
}

// The API: bob on alice's objects.
const bobApi = async (method: string, p: string, body?: unknown, headers: Record<string, string> = {}) => {
  const r = await bob.req(method, p, body, headers);
  const text = await r.text();
  seenByAttacker.push(text);
  return { status: r.status, text };
};
attempt(
  'api',
  "GET alice's session",
  async () => (await bobApi('GET', `/api/sessions/${A.id}`)).status === 404,
);
attempt(
  'api',
  "GET alice's starting session",
  async () => (await bobApi('GET', `/api/sessions/${S.id}`)).status === 404,
);
attempt(
  'api',
  "DELETE alice's session",
  async () => (await bobApi('DELETE', `/api/sessions/${A.id}`)).status === 404,
);
attempt(
  'api',
  "stop alice's session",
  async () => (await bobApi('POST', `/api/sessions/${A.id}/stop`, {})).status === 404,
);
attempt('api', "alice's sessions are not in bob's list", async () => {
  const r = await bobApi('GET', '/api/sessions');
  return r.status === 200 && !r.text.includes(A.id) && !r.text.includes(S.id);
});
// Encoded NUL and slashes in a path of the gateway's own are refused before any handler (400).
const refusedPath = (s: number) => notFoundish(s) || s === 400;
attempt('api', 'session id with NUL', async () =>
  refusedPath((await bobApi('GET', `/api/sessions/${A.id}%00`)).status),
);
attempt('api', 'session id with ../', async () =>
  refusedPath((await bobApi('GET', `/api/sessions/..%2f${A.id}`)).status),
);
attempt(
  'api',
  "revoke alice's API token",
  async () => (await bobApi('DELETE', `/api/tokens/${aliceTokens.readId}`)).status === 404,
);
attempt('api', "alice's tokens are not in bob's list", async () => {
  const r = await bobApi('GET', '/api/tokens');
  const list = JSON.parse(r.text) as { tokens: { id: number }[] };
  return !list.tokens.some((t) => t.id === aliceTokens.readId || t.id === aliceTokens.sessionsId);
});
attempt('api', 'the admin audit log', async () => (await bobApi('GET', '/api/admin/audit')).status === 403);
// Presets of the new-session form: alice's are hers alone; the site's are read-only for users.
attempt('api', "alice's presets are not in bob's list", async () => {
  const r = await bobApi('GET', '/api/presets');
  const list = JSON.parse(r.text) as { presets: { id: number; site: boolean }[] };
  return (
    r.status === 200 &&
    !list.presets.some((p) => p.id === alicePreset) &&
    list.presets.some((p) => p.id === sitePreset && p.site) &&
    !r.text.includes('alice private preset')
  );
});
for (const [what, method, body] of [
  ['rename', 'PATCH', { name: 'pwned' }],
  ['change the values of', 'PATCH', { values: { cores: 2 } }],
  ['make his default', 'PATCH', { isDefault: true }],
  ['delete', 'DELETE', undefined],
] as const) {
  attempt('api', `${what} alice's preset`, async () => {
    const before = await stateNow();
    const r = await bobApi(method, `/api/presets/${alicePreset}`, body);
    return r.status === 404 && !r.text.includes('alice private preset') && (await stateNow()) === before;
  });
  attempt('api', `${what} the site preset as a user`, async () => {
    const before = await stateNow();
    const own = await bobApi(method, `/api/presets/${sitePreset}`, body);
    const admin = await bobApi(method, `/api/admin/presets/${sitePreset}`, body);
    return own.status === 404 && admin.status === 403 && (await stateNow()) === before;
  });
}
attempt('api', 'bob creates a site preset', async () => {
  const before = await stateNow();
  const r = await bobApi('POST', '/api/admin/presets', { name: 'x', cluster: 'local', values: {} });
  return r.status === 403 && (await stateNow()) === before;
});
attempt('api', "bob's token deletes alice's preset", async () => {
  const r = await req('DELETE', `/api/presets/${alicePreset}`, { authorization: `Bearer ${bobToken}` });
  return r.status === 404;
});
attempt('api', "a preset id of another form (or another user's, by number) is no such preset", async () => {
  const statuses: number[] = [];
  for (const id of ['0', '-1', '1e3', `${alicePreset}.0`, '99999999999', 'x'])
    statuses.push((await bobApi('DELETE', `/api/presets/${id}`)).status);
  return statuses.every((x) => x === 404);
});
// One-time desktop links: only the owner of a running desktop session makes one, from a browser; a forged
// link or grant opens nothing (alice's session A is no desktop, so every try here must fail before that).
attempt('links', "bob makes a desktop link for alice's session", async () => {
  const before = await stateNow();
  const r = await bobApi('POST', `/api/sessions/${A.id}/desktop-links`, { minutes: 1 });
  return r.status === 404 && (await stateNow()) === before;
});
attempt('links', "bob's API token makes a desktop link (a browser only may)", async () => {
  const before = await stateNow();
  const r = await req(
    'POST',
    `/api/sessions/${B.id}/desktop-links`,
    {
      authorization: `Bearer ${bobToken}`,
      'content-type': 'application/json',
    },
    JSON.stringify({ minutes: 1 }),
  );
  return r.status === 403 && (await stateNow()) === before;
});
attempt('links', 'a desktop link to a session that is no desktop', async () => {
  const before = await stateNow();
  const r = await bobApi('POST', `/api/sessions/${B.id}/desktop-links`, { minutes: 1 });
  return r.status === 409 && (await stateNow()) === before;
});
attempt('links', "bob revokes links by number (alice's, if any)", async () => {
  const statuses: number[] = [];
  for (const id of ['1', '2', '0', '-1', '1e0', 'x'])
    statuses.push((await bobApi('DELETE', `/api/desktop-links/${id}`)).status);
  return statuses.every((x) => x === 404);
});
for (const method of ['GET', 'POST']) {
  attempt('links', `${method} a forged desktop link`, async () => {
    const before = await stateNow();
    const r = await req(method, `/desktop-link/${crypto.randomBytes(32).toString('base64url')}`, {
      origin: origin(),
    });
    return r.status === 404 && !r.headers['set-cookie'] && (await stateNow()) === before;
  });
}
attempt('links', 'open a desktop link from another site', async () => {
  const r = await req('POST', `/desktop-link/${crypto.randomBytes(32).toString('base64url')}`, {
    origin: 'http://evil.example',
  });
  return r.status === 403 && !r.headers['set-cookie'];
});
attempt('links', "a forged desktop link grant on alice's session", () =>
  proxyRefused('GET', (m) => `/user/alice/${A.id}/${m}`, {
    cookie: `atrium_desktop_link=${crypto.randomBytes(32).toString('base64url')}`,
  }),
);
attempt('links', "a forged grant on alice's session WebSocket", async () => {
  const cookie = `atrium_desktop_link=${crypto.randomBytes(32).toString('base64url')}`;
  return (await wsStatus(wsUrl(`/user/alice/${A.id}/ws`), { cookie, origin: origin() })) === 401;
});
attempt('api', "bob's token on alice's session", async () => {
  const r = await req('GET', `/api/sessions/${A.id}`, { authorization: `Bearer ${bobToken}` });
  return r.status === 404;
});
attempt('api', "bob's token stops alice's session", async () => {
  const r = await req('DELETE', `/api/sessions/${A.id}`, { authorization: `Bearer ${bobToken}` });
  return r.status === 404;
});
attempt('api', "bob's live event stream carries nothing of alice's", async () => {
  const got: string[] = [];
  const controller = new AbortController();
  const stream = await fetch(`${gw.url}/api/events`, {
    headers: { cookie: cookieOf(bob) },
    signal: controller.signal,
  });
  const reader = stream.body!.getReader();
  const reading = (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        got.push(Buffer.from(value).toString());
      }
    } catch {
      // aborted
    }
  })();
  // alice starts and stops a session while bob listens.
  const r = await alice.post('/api/sessions', {
    cluster: 'local',
    app: 'echo',
    cores: 1,
    memoryGb: 1,
    hours: 1,
  });
  const c = (r.body as { session: SessionView }).session;
  await waitForState(alice, c.id, ['running']);
  await alice.del(`/api/sessions/${c.id}`);
  await waitForState(alice, c.id, ['ended'], 30_000);
  await new Promise((res) => setTimeout(res, 500));
  controller.abort();
  await reading;
  const all = got.join('');
  seenByAttacker.push(all);
  return all.length > 0 && !all.includes(c.id) && !all.includes(A.id) && !all.includes('"session"');
});

// Jobs, outputs and files: these routes come with batch jobs; until then every try must be a 4xx.
const noLeak = (t: string) => !t.includes(canarySecret) && !t.includes('root:x:0:0');
attempt('jobs', 'list jobs', async () => {
  const r = await bobApi('GET', '/api/jobs');
  return (
    (notFoundish(r.status) || r.status === 200) && !r.text.includes(`"id":${aliceJobId},`) && noLeak(r.text)
  );
});
for (const p of ['', '/output', '/output?stream=stderr', '/files', '/script']) {
  attempt('jobs', `GET alice's job${p}`, async () => {
    const r = await bobApi('GET', `/api/jobs/${aliceJobId}${p}`);
    return notFoundish(r.status) && noLeak(r.text);
  });
}
attempt('jobs', "cancel alice's job (DELETE)", async () =>
  notFoundish((await bobApi('DELETE', `/api/jobs/${aliceJobId}`)).status),
);
attempt('jobs', "cancel alice's job (POST)", async () =>
  notFoundish((await bobApi('POST', `/api/jobs/${aliceJobId}/cancel`, {})).status),
);
attempt('jobs', 'list jobs of another user by query', async () => {
  const r = await bobApi('GET', '/api/jobs?user=alice&userId=1');
  return (notFoundish(r.status) || r.status === 200) && !r.text.includes(`"id":${aliceJobId},`);
});
for (const [name, q] of [
  ['absolute path', () => `/api/files?path=${encodeURIComponent(canaryFile)}`],
  ['../ path', () => `/api/files?path=${encodeURIComponent(`../alice/${path.basename(canaryFile)}`)}`],
  ["symlink in bob's home to alice's file", () => '/api/files?path=link-to-alice'],
  ['NUL byte', () => `/api/files?path=${encodeURIComponent(canaryFile)}%00.txt`],
  ['encoded traversal in the path', () => `/api/files/..%2f..%2fhome%2falice%2f${path.basename(canaryFile)}`],
  [
    'job output path traversal',
    () => `/api/jobs/${aliceJobId}/output?path=${encodeURIComponent(canaryFile)}`,
  ],
  ['static files traversal', () => `/static/..%2f..%2f..%2f..%2fhome%2falice%2f${path.basename(canaryFile)}`],
  ['root traversal to /etc/shadow', () => '/%2e%2e/%2e%2e/%2e%2e/etc/shadow'],
] as const) {
  attempt('files', name, async () => {
    const r = await req('GET', q(), asBob());
    return r.status !== 200 ? noLeak(r.body) : noLeak(r.body) && !r.body.includes('root:');
  });
}

// Agent callbacks: forged, replayed, for another session, or pointing the proxy elsewhere (SSRF).
const ready = (secret: string, body: Record<string, unknown>) =>
  agentCall('ready', secret, { sessionId: S.id, host: '127.0.0.1', port: canaryTcp.port, ...body });
attempt('agent', "replay A's used secret", async () =>
  [403, 409].includes(
    (await agentCall('ready', secretA, { sessionId: A.id, host: '127.0.0.1', port: canaryTcp.port })).status,
  ),
);
attempt('agent', "A's secret for session S", async () => (await ready(secretA, {})).status === 403);
attempt(
  'agent',
  "S's secret for bob's session",
  async () =>
    (await agentCall('ready', secretS, { sessionId: B.id, host: '127.0.0.1', port: canaryTcp.port }))
      .status === 403,
);
attempt(
  'agent',
  'a forged secret',
  async () => (await ready(crypto.randomBytes(32).toString('base64url'), {})).status === 403,
);
attempt('agent', 'no secret', async () => (await ready('', {})).status === 403);
attempt(
  'agent',
  'a forged secret with fields to set (state, owner, token)',
  async () =>
    (await ready('x'.repeat(43), { state: 'running', user_id: 3, app_token: 'x', heartbeat_token_hash: 'x' }))
      .status === 403,
);
for (const h of [
  '10.0.0.1',
  '169.254.169.254',
  'metadata.google.internal',
  '127.0.0.2',
  '0.0.0.0',
  '2130706433',
  '127.1',
  'localhost.evil.example',
]) {
  attempt('agent-ssrf', `S's real secret, host ${h}`, async () =>
    [400, 403].includes((await ready(secretS, { host: h })).status),
  );
}
for (const [name, body] of [
  ['header injection in host', { host: 'evil\r\nX-Injected: 1' }],
  ['host with a path', { host: '127.0.0.1/../admin' }],
  ['host with credentials', { host: 'user:pw@127.0.0.1' }],
  ['IPv4-mapped IPv6 host', { host: '::ffff:127.0.0.1' }],
  ['port 0', { port: 0 }],
  ['port 70000', { port: 70000 }],
  ['port as a string', { port: '80' }],
  ['fractional port', { port: 80.5 }],
  ['socket: the Docker socket', { socket: '/var/run/docker.sock' }],
  ['socket with ..', { socket: `/home/alice/../bob/.atrium/sessions/${'S'}/app.sock` }],
] as [string, Record<string, unknown>][]) {
  attempt('agent-ssrf', `S's real secret, ${name}`, async () =>
    [400, 403].includes(
      (
        await ready(secretS, {
          ...body,
          socket: body.socket === undefined ? undefined : String(body.socket).replace('/S/', `/${S.id}/`),
        })
      ).status,
    ),
  );
}
attempt('agent-ssrf', "S's real secret, a symlink (in a dir alice owns) to a root-only socket", async () => {
  const dir = path.join(scratch, 'alice-dir', '.atrium', 'sessions', S.id);
  fs.mkdirSync(dir, { recursive: true });
  const link = path.join(dir, 'app.sock');
  fs.symlinkSync(canaryUnix.path, link);
  for (let d = dir; d.startsWith(path.join(scratch, 'alice-dir')); d = path.dirname(d))
    fs.chownSync(d, uidOf('alice'), gidOf('alice'));
  fs.lchownSync(link, uidOf('alice'), gidOf('alice'));
  return (await ready(secretS, { socket: link })).status === 403;
});
attempt(
  'agent-ssrf',
  "S's real secret, a root-owned socket inside alice's session dir",
  async () => (await ready(secretS, { socket: canaryInHome.path })).status === 403,
);
attempt(
  'agent',
  "heartbeat for A with A's (one-time) secret",
  async () => (await agentCall('heartbeat', secretA, { sessionId: A.id })).status === 403,
);
attempt(
  'agent',
  'heartbeat for A with a forged token',
  async () => (await agentCall('heartbeat', 'forged', { sessionId: A.id })).status === 403,
);
attempt(
  'agent',
  "report A's app as exited with a forged token",
  async () =>
    (await agentCall('exit', crypto.randomBytes(32).toString('base64url'), { sessionId: A.id, code: 0 }))
      .status === 403,
);
attempt(
  'agent',
  "report S as failed with A's secret",
  async () => (await agentCall('failed', secretA, { sessionId: S.id, reason: 'pwned' })).status === 403,
);
attempt(
  'agent',
  "report A as failed with A's used secret",
  async () => (await agentCall('failed', secretA, { sessionId: A.id, reason: 'pwned' })).status === 403,
);
attempt('agent', 'an oversized callback body', async () =>
  [400, 403, 413].includes((await ready(secretS, { pad: 'x'.repeat(10_000) })).status),
);

// Script planted in names and texts: refused by validation, or only ever served as inert JSON.
const isInertJson = (r: Response) =>
  (r.headers.get('content-type') ?? '').startsWith('application/json') &&
  r.headers.get('x-content-type-options') === 'nosniff';
for (const [field, value] of [
  ['label', '<script>alert(1)</script>'],
  ['label', '"><img src=x onerror=alert(1)>'],
  ['label', 'line\r\nbreak'],
  ['label', 'rtl\u202eoverride'],
  ['app', '<svg/onload=alert(1)>'],
  ['cluster', '<script>alert(1)</script>'],
  ['environment', '<iframe src=javascript:alert(1)>'],
] as const) {
  attempt('xss', `session ${field} ${JSON.stringify(value)}`, async () => {
    const before = Object.keys(await aliceSessionsNow()).length;
    const r = await alice.req('POST', '/api/sessions', {
      cluster: 'local',
      app: 'echo',
      cores: 1,
      memoryGb: 1,
      hours: 1,
      [field]: value,
    });
    await r.text();
    const after = Object.keys(await aliceSessionsNow()).length;
    return r.status === 400 && isInertJson(r) && before === after;
  });
}
attempt('xss', 'API token name with script', async () => {
  const r = await alice.req('POST', '/api/tokens', { name: '<script>alert(1)</script>', scopes: ['read'] });
  await r.text();
  return r.status === 400 && isInertJson(r);
});
for (const [name, body] of [
  ['job name', { name: '<script>alert(1)</script>', script: '#!/bin/sh\necho hi\n' }],
  [
    'job script text',
    { name: 'x', script: `#!/bin/sh\n</script><script>alert(1)</script>\ntouch ${pwnedFile}\n` },
  ],
] as const) {
  attempt('xss', `${name} with script`, async () => {
    const r = await alice.req('POST', '/api/jobs', { cluster: 'local', ...body });
    await r.text();
    if (r.status >= 400) return r.status < 500;
    // Once jobs exist: accepted text must come back as inert JSON, never as a page.
    const id = (
      (await r
        .clone()
        .json()
        .catch(() => ({}))) as { job?: { id?: number } }
    ).job?.id;
    const g = await alice.req('GET', `/api/jobs/${id}`);
    await g.text();
    return isInertJson(g);
  });
}
attempt('xss', 'script in a proxy URL is not reflected', async () => {
  const r = await req('GET', `/user/%3Cscript%3Ealert(1)%3C%2Fscript%3E/${A.id}/`, asBob());
  return (
    notFoundish(r.status) &&
    !r.body.includes('<script>alert') &&
    String(r.headers['content-security-policy']).includes("default-src 'none'")
  );
});
attempt('xss', 'script in an unknown API path is answered as JSON', async () => {
  const r = await req('GET', '/api/%3Cscript%3Ealert(1)%3C%2Fscript%3E', asBob());
  // 400: the encoded slash is refused before any handler; without it, 404.
  const r2 = await req('GET', '/api/%3Cscript%3Ealert(1)%3C/script%3E', asBob());
  return (
    r.status === 400 &&
    r2.status === 404 &&
    !r.body.includes('<script>') &&
    String(r2.headers['content-type']).startsWith('application/json') &&
    r2.headers['x-content-type-options'] === 'nosniff' &&
    String(r.headers['content-type']).startsWith('application/json') &&
    r.headers['x-content-type-options'] === 'nosniff'
  );
});

// Type confusion: every body, query and path parameter is checked against the route's schema before
// use, so a value of the wrong type is a 400 naming the field (never a 500, never applied).
const asBrowser = (c: Client) => ({ cookie: c.cookie, 'x-csrf-token': c.csrf, ...jsonType });
const goodSession = { cluster: 'local', app: 'echo', cores: 1, memoryGb: 1, hours: 1 };
const typeTries: [string, () => Parameters<typeof req>, string][] = [];
const confuse = (name: string, field: string, request: () => Parameters<typeof req>) =>
  typeTries.push([name, request, field]);
const post =
  (c: () => Client, p: string, body: unknown, method = 'POST') =>
  () =>
    [method, p, asBrowser(c()), typeof body === 'string' ? body : JSON.stringify(body)] as Parameters<
      typeof req
    >;
const getAs = (c: () => Client, p: string) => () =>
  ['GET', p, { cookie: c().cookie }] as Parameters<typeof req>;
const newSession = (patch: Record<string, unknown>) =>
  post(() => alice, '/api/sessions', { ...goodSession, ...patch });
confuse('session cluster {"toString":1}', 'cluster', newSession({ cluster: { toString: 1 } }));
confuse('session cluster as a list', 'cluster', newSession({ cluster: ['local'] }));
confuse('session cluster as a number', 'cluster', newSession({ cluster: 7 }));
confuse('session cores as an object', 'cores', newSession({ cores: {} }));
confuse('session cores as a list', 'cores', newSession({ cores: [1] }));
confuse('session cores true', 'cores', newSession({ cores: true }));
confuse('session cores "NaN"', 'cores', newSession({ cores: 'NaN' }));
confuse('session hours as a query operator', 'hours', newSession({ hours: { $gt: 0 } }));
confuse('session memory "1e999" (infinite)', 'memoryGb', newSession({ memoryGb: '1e999' }));
confuse('session memory 1e999 (a JSON number too large)', 'memoryGb', () => {
  const [m, p, h] = newSession({})();
  return [m, p, h, JSON.stringify(goodSession).replace('"memoryGb":1', '"memoryGb":1e999')];
});
confuse('session label nested objects', 'label', newSession({ label: { a: { b: { c: 1 } } } }));
confuse('session extraApps as an object', 'extraApps', newSession({ extraApps: { terminal: true } }));
confuse('session extraApps with a number', 'extraApps.0', newSession({ extraApps: [1] }));
confuse('session body __proto__', '__proto__', () => {
  const [m, p, h] = newSession({})();
  return [m, p, h, `{"__proto__":{"isAdmin":true},${JSON.stringify(goodSession).slice(1)}`];
});
confuse(
  'session body constructor.prototype',
  'constructor',
  newSession({ constructor: { prototype: { x: 1 } } }),
);
confuse(
  'session body a JSON string',
  'body',
  post(() => alice, '/api/sessions', JSON.stringify('cluster=local')),
);
confuse(
  'session body a list',
  'body',
  post(() => alice, '/api/sessions', [goodSession]),
);
confuse(
  'session body null',
  'body',
  post(() => alice, '/api/sessions', 'null'),
);
confuse(
  'token scopes as text',
  'scopes',
  post(() => alice, '/api/tokens', { name: 'x', scopes: 'read' }),
);
confuse(
  'token scopes nested',
  'scopes.0',
  post(() => alice, '/api/tokens', { name: 'x', scopes: [['read']] }),
);
confuse('token days "30" (a number as text)', 'expiresInDays', () =>
  post(() => alice, '/api/tokens', { name: 'x', scopes: ['read'], expiresInDays: '30' })(),
);
confuse('token days 1e308', 'expiresInDays', () =>
  post(() => alice, '/api/tokens', { name: 'x', scopes: ['read'], expiresInDays: 1e308 })(),
);
confuse(
  'token name {"toString":1}',
  'name',
  post(() => alice, '/api/tokens', { name: { toString: 1 }, scopes: ['read'] }),
);
confuse(
  'sign-out everywhere "true" (text)',
  'everywhere',
  post(() => alice, '/api/logout', { everywhere: 'true' }),
);
confuse(
  'notification preference "yes"',
  'browser',
  post(() => alice, '/api/notifications/prefs', { browser: 'yes' }, 'PUT'),
);
confuse(
  'notification kinds a list',
  'kinds',
  post(() => alice, '/api/notifications/prefs', { kinds: [] }, 'PUT'),
);
confuse(
  'notification kinds __proto__',
  'kinds.__proto__',
  post(() => alice, '/api/notifications/prefs', '{"kinds":{"__proto__":{"polluted":true}}}', 'PUT'),
);
confuse(
  'mark read ids "all"',
  'ids',
  post(() => alice, '/api/notifications/read', { ids: 'all' }),
);
confuse('sign-in user name as a list', 'username', () => [
  'POST',
  '/api/login',
  jsonType,
  JSON.stringify({ username: ['alice'], password: 'x' }),
]);
confuse(
  'job script {"toString":1}',
  'script',
  post(() => alice, '/api/jobs', { cluster: 'local', script: { toString: 1 } }),
);
confuse(
  'job list limit twice',
  'limit',
  getAs(() => alice, '/api/jobs?limit=1&limit=2'),
);
confuse(
  'announcement message {"toString":1}',
  'message',
  post(() => adm, '/api/admin/announcements', { message: { toString: 1 } }),
);
confuse(
  'announcement hours an object',
  'hours',
  post(() => adm, '/api/admin/announcements', { message: 'x', hours: {} }),
);
confuse(
  'admin session list limit "NaN"',
  'limit',
  getAs(() => adm, '/api/admin/sessions?limit=NaN'),
);
confuse(
  'audit log actor twice',
  'actor',
  getAs(() => adm, '/api/admin/audit?actor=a&actor=b'),
);
confuse('agent callback sessionId {"toString":1}', 'sessionId', () => {
  const json = JSON.stringify({ sessionId: { toString: 1 }, host: '127.0.0.1', port: canaryTcp.port });
  return ['POST', '/api/agent/ready', { ...jsonType, authorization: `Bearer ${secretS}` }, json];
});
confuse('agent heartbeat stoppedApps as text', 'stoppedApps', () => {
  const json = JSON.stringify({ sessionId: A.id, stoppedApps: 'all' });
  return ['POST', '/api/agent/heartbeat', { ...jsonType, authorization: 'Bearer forged' }, json];
});
for (const [name, request, field] of typeTries) {
  attempt('types', name, async () => {
    const before = await stateNow();
    const r = await req(...request());
    const body = JSON.parse(r.body) as { error?: unknown; field?: unknown };
    if (r.status !== 400 || body.field !== field) throw new Error(`got ${r.status} ${r.body.slice(0, 200)}`);
    return (
      typeof body.error === 'string' &&
      String(r.headers['content-type']).startsWith('application/json') &&
      (await stateNow()) === before
    );
  });
}

// CSRF: a page on another site makes alice's browser send her cookie, without her CSRF token.
const asAliceBrowser = (extra: Record<string, string> = {}) => ({ cookie: cookieOf(alice), ...extra });
const sessionBody = JSON.stringify({ cluster: 'local', app: 'echo', cores: 1, memoryGb: 1, hours: 1 });
const unchanged = async (f: () => Promise<number>, ok: (s: number) => boolean) => {
  const before = JSON.stringify(await aliceSessionsNow());
  const s = await f();
  return ok(s) && JSON.stringify(await aliceSessionsNow()) === before;
};
// Each: a try's name, the statuses that count as refused, and the request alice's browser is made to send.
const jsonType = { 'content-type': 'application/json' };
const csrfTries: [string, number[], () => Parameters<typeof req>][] = [
  [
    'POST /api/sessions without the CSRF header',
    [403],
    () => ['POST', '/api/sessions', asAliceBrowser(jsonType), sessionBody],
  ],
  [
    'POST /api/sessions with a wrong CSRF header',
    [403],
    () => ['POST', '/api/sessions', asAliceBrowser({ ...jsonType, 'x-csrf-token': 'guess' }), sessionBody],
  ],
  [
    "POST /api/sessions with bob's (valid) CSRF token",
    [403],
    () => ['POST', '/api/sessions', asAliceBrowser({ ...jsonType, 'x-csrf-token': bob.csrf }), sessionBody],
  ],
  [
    'POST /api/sessions from Origin evil (even with the token)',
    [403],
    () => [
      'POST',
      '/api/sessions',
      asAliceBrowser({ ...jsonType, 'x-csrf-token': alice.csrf, origin: 'http://evil.example' }),
      sessionBody,
    ],
  ],
  [
    'POST /api/sessions from Origin null',
    [403],
    () => ['POST', '/api/sessions', asAliceBrowser({ ...jsonType, origin: 'null' }), sessionBody],
  ],
  [
    'form-encoded POST /api/sessions',
    [403, 415],
    () => [
      'POST',
      '/api/sessions',
      asAliceBrowser({ 'content-type': 'application/x-www-form-urlencoded' }),
      'cluster=local&app=echo&cores=1&memoryGb=1&hours=1',
    ],
  ],
  [
    'text/plain POST with a JSON body',
    [403, 415],
    () => ['POST', '/api/sessions', asAliceBrowser({ 'content-type': 'text/plain' }), sessionBody],
  ],
  [
    "DELETE alice's session without the header",
    [403],
    () => ['DELETE', `/api/sessions/${A.id}`, asAliceBrowser()],
  ],
  [
    "stop alice's session without the header",
    [403],
    () => ['POST', `/api/sessions/${A.id}/stop`, asAliceBrowser()],
  ],
  ['GET on the stop route', [404, 405], () => ['GET', `/api/sessions/${A.id}/stop`, asAliceBrowser()]],
  [
    'method override header on a GET',
    [200],
    () => ['GET', `/api/sessions/${A.id}`, asAliceBrowser({ 'x-http-method-override': 'DELETE' })],
  ],
];
for (const [name, statuses, request] of csrfTries)
  attempt('csrf', name, () =>
    unchanged(
      async () => (await req(...request())).status,
      (s) => statuses.includes(s),
    ),
  );
attempt('csrf', 'sign alice out without the header', async () => {
  const r = await req('POST', '/api/logout', asAliceBrowser());
  return r.status === 403 && (await alice.get('/api/me')).status === 200;
});
attempt('csrf', 'create an API token without the header', async () => {
  const before = ((await alice.get('/api/tokens')).body as { tokens: unknown[] }).tokens.length;
  const body = JSON.stringify({ name: 'csrf', scopes: ['sessions'] });
  const r = await req('POST', '/api/tokens', asAliceBrowser({ 'content-type': 'application/json' }), body);
  return (
    r.status === 403 &&
    ((await alice.get('/api/tokens')).body as { tokens: unknown[] }).tokens.length === before
  );
});
attempt('csrf', 'revoke an API token without the header', async () => {
  const r = await req('DELETE', `/api/tokens/${aliceTokens.readId}`, asAliceBrowser());
  return (
    r.status === 403 &&
    (await req('GET', '/api/sessions', { authorization: `Bearer ${aliceTokens.read}` }, undefined, false))
      .status === 200
  );
});
attempt('csrf', 'sign-in from another origin (login CSRF)', async () => {
  const body = JSON.stringify({ username: 'bob', password: 'whatever' });
  const r = await req(
    'POST',
    '/api/login',
    { 'content-type': 'application/json', origin: 'http://evil.example' },
    body,
  );
  return r.status === 403 && !String(r.headers['set-cookie'] ?? '').includes('atrium_session=');
});

// Admin writes: an admin's browser driven by another site's page, bob, and nobody.
const asAdmBrowser = (extra: Record<string, string> = {}) => ({ cookie: cookieOf(adm), ...extra });
const announcementBody = JSON.stringify({ message: 'pwned', level: 'info' });
const adminTries: [string, number[], () => Parameters<typeof req>][] = [
  [
    "adm's browser drains the cluster from Origin evil (text/plain, even with the token)",
    [403],
    () => [
      'POST',
      '/api/admin/clusters/local/drain',
      asAdmBrowser({ 'content-type': 'text/plain', origin: 'http://evil.example', 'x-csrf-token': adm.csrf }),
      'x',
    ],
  ],
  [
    "adm's browser drains the cluster without the CSRF header",
    [403],
    () => ['POST', '/api/admin/clusters/local/drain', asAdmBrowser()],
  ],
  [
    "adm's browser stops alice's session without the CSRF header",
    [403],
    () => ['POST', `/api/admin/sessions/${A.id}/stop`, asAdmBrowser()],
  ],
  [
    "adm's browser posts an announcement without the CSRF header",
    [403],
    () => ['POST', '/api/admin/announcements', asAdmBrowser(jsonType), announcementBody],
  ],
  [
    'bob (with his CSRF token) drains the cluster',
    [403],
    () => ['POST', '/api/admin/clusters/local/drain', { cookie: cookieOf(bob), 'x-csrf-token': bob.csrf }],
  ],
  [
    "bob (with his CSRF token) stops alice's session as an admin would",
    [403],
    () => ['POST', `/api/admin/sessions/${A.id}/stop`, { cookie: cookieOf(bob), 'x-csrf-token': bob.csrf }],
  ],
  ['bob lists every session', [403], () => ['GET', '/api/admin/sessions', { cookie: cookieOf(bob) }]],
  ['bob reads the audit log', [403], () => ['GET', '/api/admin/audit', { cookie: cookieOf(bob) }]],
  ['nobody drains the cluster', [401], () => ['POST', '/api/admin/clusters/local/drain', {}]],
  [
    "adm's API token posts an announcement",
    [403],
    () => [
      'POST',
      '/api/admin/announcements',
      { authorization: `Bearer ${admToken}`, ...jsonType },
      announcementBody,
    ],
  ],
];
for (const [name, statuses, request] of adminTries)
  attempt('admin', name, async () => {
    const before = await stateNow();
    return statuses.includes((await req(...request())).status) && (await stateNow()) === before;
  });

// Header injection and spoofing (alice on her own session: what reaches her app?).
const echoOf = async (extra: Record<string, string>, sub = 'headers') => {
  const r = await req(
    'GET',
    `/user/alice/${A.id}/${sub}`,
    { cookie: `${cookieOf(alice)}; app_pref=kept`, ...extra },
    undefined,
    false,
  );
  let j: { headers: [string, string][]; tokenOk: boolean; tokenCount: number };
  try {
    j = JSON.parse(r.body);
  } catch {
    throw new Error(
      `not the echo app's answer: ${r.status} ${JSON.stringify(r.headers)} ${r.body.slice(0, 400)}`,
    );
  }
  return { r, j };
};
const hdr = (h: [string, string][], name: string) =>
  h.filter(([k]) => k.toLowerCase() === name).map(([, v]) => v);
attempt(
  'headers',
  'spoofed X-Forwarded-For / Forwarded / X-Real-IP do not reach the app as trusted',
  async () => {
    const { j } = await echoOf({
      'x-forwarded-for': '6.6.6.6',
      forwarded: 'for=6.6.6.6',
      'x-real-ip': '6.6.6.6',
      'x-forwarded-proto': 'https',
    });
    const all = JSON.stringify(j.headers);
    return (
      !all.includes('6.6.6.6') &&
      hdr(j.headers, 'x-forwarded-for')[0] === '127.0.0.1' &&
      hdr(j.headers, 'x-forwarded-proto')[0] === 'http'
    );
  },
);
attempt('headers', "the browser's Authorization header never reaches the app", async () => {
  const { j } = await echoOf({ authorization: 'Bearer stolen' });
  return hdr(j.headers, 'authorization').length === 0;
});
attempt('headers', "a forged app-token header is replaced by the gateway's", async () => {
  const { j } = await echoOf({ 'x-echo-token': 'forged' });
  return j.tokenOk && j.tokenCount === 1;
});
attempt('headers', "the gateway's session cookie is not passed to the app", async () => {
  const { j } = await echoOf({});
  const cookie = hdr(j.headers, 'cookie').join(';');
  return !cookie.includes('atrium_session') && cookie.includes('app_pref=kept');
});
attempt('headers', "an app cannot set the gateway's session cookie", async () => {
  const { r } = await echoOf({}, 'setcookie');
  const set = ([] as string[]).concat(r.headers['set-cookie'] ?? []);
  return !set.some((c) => c.startsWith('atrium_session=')) && set.some((c) => c.startsWith('app_pref='));
});
attempt('headers', "an app's cookies stay at its own address (Path, no Domain)", async () => {
  const { r } = await echoOf({}, 'setcookie');
  const set = ([] as string[]).concat(r.headers['set-cookie'] ?? []);
  const prefix = `/user/alice/${A.id}/`;
  return (
    set.length === 4 &&
    set.every((c) => c.includes(`; Path=${prefix}`) && !/domain=/i.test(c)) &&
    set.some((c) => c.startsWith('api_pref=1;') && c.includes('HttpOnly'))
  );
});
attempt('headers', "an app's answer gets the gateway's protections it lacks", async () => {
  const { r } = await echoOf({});
  return (
    r.headers['x-frame-options'] === 'SAMEORIGIN' &&
    r.headers['referrer-policy'] === 'same-origin' &&
    r.headers['x-content-type-options'] === 'nosniff'
  );
});
attempt('headers', "an app's own protections are kept", async () => {
  const { r } = await echoOf({}, 'ownheaders');
  return (
    r.headers['x-frame-options'] === 'DENY' &&
    r.headers['referrer-policy'] === 'no-referrer' &&
    r.headers['content-security-policy'] === "frame-ancestors 'none'" &&
    r.headers['x-content-type-options'] === 'nosniff'
  );
});
attempt('headers', 'CRLF in the URL does not become a response header', async () => {
  const m = mark();
  const r = await raw(
    `GET /user/alice/${A.id}%0d%0aX-Injected:%20${m}?${m} HTTP/1.1\r\nHost: ${host()}\r\nCookie: ${cookieOf(bob)}\r\nConnection: close\r\n\r\n`,
  );
  return !/^x-injected:/im.test(r.head) && !reachedAlice(m);
});
attempt('headers', 'a bare LF inside a header value', async () => {
  const m = mark();
  const r = await raw(
    `GET /user/alice/${A.id}/${m} HTTP/1.1\r\nHost: ${host()}\r\nX-A: a\nX-Injected: b\r\nCookie: ${cookieOf(bob)}\r\nConnection: close\r\n\r\n`,
  );
  return r.status === 400 || (notFoundish(r.status) && !reachedAlice(m));
});
attempt('headers', 'an obs-folded header', async () => {
  const m = mark();
  const r = await raw(
    `GET /user/alice/${A.id}/${m} HTTP/1.1\r\nHost: ${host()}\r\nX-A: a\r\n folded\r\nCookie: ${cookieOf(bob)}\r\nConnection: close\r\n\r\n`,
  );
  return r.status === 400 && !reachedAlice(m);
});
attempt('headers', 'request smuggling (Content-Length with Transfer-Encoding)', async () => {
  const m = mark();
  const inner = `GET /user/alice/${A.id}/${m} HTTP/1.1\r\nHost: ${host()}\r\nCookie: ${cookieOf(alice)}\r\n\r\n`;
  const body = `0\r\n\r\n${inner}`;
  const r = await raw(
    `POST /api/health HTTP/1.1\r\nHost: ${host()}\r\nContent-Length: ${body.length}\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n${body}`,
  );
  await new Promise((res) => setTimeout(res, 300));
  return r.status === 400 && !reachedAlice(m);
});
attempt('headers', 'a spoofed Host does not make absolute redirects', async () => {
  const r = await req(
    'GET',
    `/user/alice/${A.id}`,
    { cookie: cookieOf(alice), host: 'evil.example' },
    undefined,
    false,
  );
  return r.status === 302 && String(r.headers.location).startsWith('/user/alice/');
});

// API tokens: scopes, revocation, expiry, where a token is (not) accepted.
const withToken = (t: string, method: string, p: string, body?: unknown) => {
  const json = body === undefined ? undefined : JSON.stringify(body);
  return req(
    method,
    p,
    { authorization: `Bearer ${t}`, ...(json ? { 'content-type': 'application/json' } : {}) },
    json,
  );
};
attempt('tokens', 'a read token cannot start a session', async () =>
  unchanged(
    async () => (await withToken(aliceTokens.read, 'POST', '/api/sessions', JSON.parse(sessionBody))).status,
    (s) => s === 403,
  ),
);
attempt('tokens', 'a read token cannot stop a session', async () =>
  unchanged(
    async () => (await withToken(aliceTokens.read, 'DELETE', `/api/sessions/${A.id}`)).status,
    (s) => s === 403,
  ),
);
attempt(
  'tokens',
  'a token cannot create tokens',
  async () =>
    (await withToken(aliceTokens.sessions, 'POST', '/api/tokens', { name: 'more', scopes: ['sessions'] }))
      .status === 403,
);
attempt(
  'tokens',
  "a token cannot revoke the user's other tokens",
  async () =>
    (await withToken(aliceTokens.read, 'DELETE', `/api/tokens/${aliceTokens.sessionsId}`)).status === 403,
);
attempt(
  'tokens',
  "an admin's token is not an admin credential",
  async () => (await withToken(admToken, 'GET', '/api/admin/audit')).status === 403,
);
attempt('tokens', 'a revoked token', async () => {
  const made = await alice.post('/api/tokens', { name: 'to revoke', scopes: ['read'] });
  const { token, info } = made.body as { token: string; info: { id: number } };
  const okBefore = (await withToken(token, 'GET', '/api/sessions')).status === 200;
  await alice.del(`/api/tokens/${info.id}`);
  return okBefore && (await withToken(token, 'GET', '/api/sessions')).status === 401;
});
attempt('tokens', 'an expired token', async () => {
  const made = await alice.post('/api/tokens', { name: 'to expire', scopes: ['read'], expiresInDays: 1 });
  const { token, info } = made.body as { token: string; info: { id: number } };
  await sql('update api_tokens set expires_at = ? where id = ?', [Date.now() - 1000, info.id]);
  return (await withToken(token, 'GET', '/api/sessions')).status === 401;
});
attempt(
  'tokens',
  'a token in the session cookie',
  async () =>
    (await req('GET', '/api/me', { cookie: `atrium_session=${aliceTokens.sessions}` })).status === 401,
);
attempt(
  'tokens',
  'a token in the query string',
  async () => (await req('GET', `/api/sessions?access_token=${aliceTokens.sessions}`)).status === 401,
);
attempt(
  'tokens',
  'a made-up token',
  async () =>
    (await withToken(`atr_${crypto.randomBytes(32).toString('base64url')}`, 'GET', '/api/sessions'))
      .status === 401,
);
attempt('tokens', 'tokens are stored only as hashes', async () => {
  const dump = JSON.stringify(await sql('select * from api_tokens'));
  return !dump.includes(aliceTokens.read) && !dump.includes(aliceTokens.sessions) && !dump.includes(bobToken);
});

// Session fixation and sign-out.
attempt('fixation', 'a cookie planted before sign-in is not the one after', async () => {
  const planted = crypto.randomBytes(32).toString('base64url');
  const r = await req(
    'POST',
    '/api/login',
    { 'content-type': 'application/json', cookie: `atrium_session=${planted}` },
    JSON.stringify({ username: 'alice', password: gw.passwords.alice }),
    false,
  );
  const set = String(r.headers['set-cookie'] ?? '');
  const issued = /atrium_session=([^;]+)/.exec(set)?.[1] ?? '';
  return (
    r.status === 200 &&
    issued !== '' &&
    issued !== planted &&
    (await req('GET', '/api/me', { cookie: `atrium_session=${planted}` })).status === 401
  );
});
attempt('fixation', "an attacker's own valid session planted in the victim's browser", async () => {
  const attacker = new Client(gw.url);
  await attacker.login('carol', gw.passwords.carol!);
  const plantedCookie = attacker.cookie;
  const r = await req(
    'POST',
    '/api/login',
    { 'content-type': 'application/json', cookie: plantedCookie },
    JSON.stringify({ username: 'alice', password: gw.passwords.alice }),
    false,
  );
  const issued = /atrium_session=[^;]+/.exec(String(r.headers['set-cookie'] ?? ''))?.[0] ?? '';
  const me = JSON.parse((await req('GET', '/api/me', { cookie: issued }, undefined, false)).body) as {
    user: { username: string };
  };
  return (
    issued !== plantedCookie &&
    me.user.username === 'alice' &&
    (await req('GET', '/api/me', { cookie: plantedCookie })).status === 401
  );
});
/** Opens alice's session WebSocket with `cookie`; `closed` tells whether it closes within 5 s from now. */
async function openAliceWs(cookie: string): Promise<{ closed: Promise<boolean> }> {
  const ws = new WebSocket(wsUrl(`/user/alice/${A.id}/ws`), { headers: { cookie } });
  await new Promise((res, rej) => {
    ws.on('open', res);
    ws.on('error', rej);
  });
  const closed = new Promise<boolean>((res) => {
    ws.on('close', () => res(true));
    setTimeout(() => res(false), 5_000);
  });
  return { closed };
}
attempt(
  'logout',
  'a signed-out cookie is refused by the API, the proxy and WebSockets; open WebSockets and event streams close',
  async () => {
    const c = new Client(gw.url);
    await c.login('alice', gw.passwords.alice!);
    const { closed } = await openAliceWs(c.cookie);
    const events = await fetch(`${gw.url}/api/events`, { headers: { cookie: c.cookie } });
    const reader = events.body!.getReader();
    const streamEnded = (async () => {
      for (;;) if ((await reader.read()).done) return true;
    })().catch(() => true);
    const timeout = new Promise<boolean>((r) => setTimeout(() => r(false), 5_000));
    expect((await c.post('/api/logout', {})).status).toBe(200);
    const wsClosed = await closed;
    const sseEnded = await Promise.race([streamEnded, timeout]);
    const api = (await req('GET', '/api/me', { cookie: c.cookie })).status;
    const proxy = (await req('GET', `/user/alice/${A.id}/${mark()}`, { cookie: c.cookie })).status;
    const wsAgain = await wsStatus(wsUrl(`/user/alice/${A.id}/ws`), { cookie: c.cookie });
    return wsClosed && sseEnded && api === 401 && proxy === 401 && wsAgain === 401;
  },
);
attempt('logout', 'signing out everywhere ends the other browsers too', async () => {
  const other = new Client(gw.url);
  await other.login('alice', gw.passwords.alice!);
  const here = new Client(gw.url);
  await here.login('alice', gw.passwords.alice!);
  const { closed } = await openAliceWs(other.cookie);
  expect((await here.post('/api/logout', { everywhere: true })).status).toBe(200);
  const refusedApi = (await req('GET', '/api/me', { cookie: other.cookie })).status === 401;
  const refusedProxy =
    (await req('GET', `/user/alice/${A.id}/${mark()}`, { cookie: other.cookie })).status === 401;
  const ok = (await closed) && refusedApi && refusedProxy;
  // alice's main browser was signed out too: sign it in again for the remaining checks.
  await alice.login('alice', gw.passwords.alice!);
  return ok;
});

// ---- encoded spellings: every write, admin and token try again, its path spelled every way ----------
// fastify decodes a path before it matches a route, and checks that read the raw URL were skipped by
// `/%61pi/...`. Each try is sent again with the API prefix and the route's own segment spelled as a
// client can: spellings that mean the same route must get the same refusal (and headers) as the plain
// one; odd ones (encoded slashes and dots, double encoding, NUL, overlong UTF-8, //, /./, /../,
// trailing dots, backslashes) a 400 before any handler; and nothing may change.

const hexOf = (c: string, upper = false) => {
  const h = c.charCodeAt(0).toString(16).padStart(2, '0');
  return `%${upper ? h.toUpperCase() : h}`;
};
const encodeAll = (s: string, upper = false) => [...s].map((c) => hexOf(c, upper)).join('');
/** The two-byte overlong UTF-8 form of an ASCII character (invalid UTF-8, e.g. %C1%A1 for "a"). */
const overlong = (c: string) => {
  const n = c.charCodeAt(0);
  return `%${(0xc0 | (n >> 6)).toString(16)}%${(0x80 | (n & 0x3f)).toString(16)}`.toUpperCase();
};

interface Spelling {
  name: string;
  url: string;
  /** Refused as odd before any handler (400); otherwise it means the same route as the plain URL. */
  odd: boolean;
}

/** Spellings of `url` (`/<prefix>/<segment>/...?query`) a client can send. */
function spellings(url: string): Spelling[] {
  const q = url.indexOf('?');
  const p = q === -1 ? url : url.slice(0, q);
  const query = q === -1 ? '' : url.slice(q);
  const [, first = '', second = '', ...more] = p.split('/');
  const tail = [second, ...more].join('/');
  const after = more.length > 0 ? `/${more.join('/')}` : '';
  const mixed = [...second].map((c, i) => hexOf(c, i % 2 === 1)).join('');
  const same = (name: string, u: string): Spelling => ({ name, url: u + query, odd: false });
  const odd = (name: string, u: string): Spelling => ({ name, url: u + query, odd: true });
  return [
    same('first letter of the prefix as %XX', `/${hexOf(first[0]!)}${first.slice(1)}/${tail}`),
    same('the prefix all encoded', `/${encodeAll(first, true)}/${tail}`),
    same("the route's segment encoded, lower-case hex", `/${first}/${encodeAll(second)}${after}`),
    same("the route's segment encoded, upper-case hex", `/${first}/${encodeAll(second, true)}${after}`),
    same('prefix and segment encoded, mixed-case hex', `/${encodeAll(first)}/${mixed}${after}`),
    odd('%2F for the slash after the prefix', `/${first}%2F${tail}`),
    odd('%2f for the slash after the prefix', `/${first}%2f${tail}`),
    odd("%2f in the route's segments", `/${first}/${second}%2f${more.join('%2F')}`),
    odd('a %2e segment', `/${first}/%2e/${tail}`),
    odd('%2E%2E back to the prefix', `/${first}/%2E%2E/${first}/${tail}`),
    odd('%2e%2E from elsewhere', `/x/%2e%2E/${first}/${tail}`),
    odd('double encoding of the prefix (%25XX)', `/%25${hexOf(first[0]!).slice(1)}${first.slice(1)}/${tail}`),
    odd(
      "double encoding in the route's segment",
      `/${first}/%25${hexOf(second[0]!).slice(1)}${second.slice(1)}${after}`,
    ),
    odd('// before the prefix', `//${first}/${tail}`),
    odd('// after the prefix', `/${first}//${tail}`),
    odd('/./ before the prefix', `/./${first}/${tail}`),
    odd('/./ after the prefix', `/${first}/./${tail}`),
    odd('/../ after the prefix', `/${first}/x/../${tail}`),
    odd('a trailing dot on the prefix', `/${first}./${tail}`),
    odd("trailing dots on the route's segment", `/${first}/${second}..${after}`),
    odd('a trailing dot at the end', `${p}.`),
    odd('NUL in the prefix', `/${first}%00/${tail}`),
    odd('an overlong UTF-8 letter', `/${overlong(first[0]!)}${first.slice(1)}/${tail}`),
    odd('a backslash for the slash', `/${first}\\${tail}`),
  ];
}

/**
 * Sends the try in every spelling of its path. Each must get the plain spelling's refusal (status and
 * cache-control) or, when odd, `oddOk` (400); nothing may change. Throws naming the first that did not.
 */
async function everySpelling(
  request: () => Parameters<typeof req>,
  refused: number[],
  oddOk: (status: number) => boolean = (s) => s === 400,
  reached: () => boolean = () => false,
): Promise<boolean> {
  const [method, url, headers, body] = request();
  const before = await stateNow();
  const plain = await req(method, url, headers, body);
  if (!refused.includes(plain.status)) throw new Error(`the plain spelling got ${plain.status}`);
  for (const s of spellings(url)) {
    const r = await req(method, s.url, headers, body);
    const ok = s.odd
      ? oddOk(r.status)
      : r.status === plain.status && r.headers['cache-control'] === plain.headers['cache-control'];
    if (!ok) throw new Error(`${s.name} (${s.url}) got ${r.status}, the plain spelling ${plain.status}`);
    if ((await stateNow()) !== before || reached()) throw new Error(`${s.name} (${s.url}) changed something`);
  }
  return true;
}

const bobBrowser = () => ({ cookie: cookieOf(bob), 'x-csrf-token': bob.csrf });
const asToken = (t: () => string, extra: Record<string, string> = {}) => ({
  authorization: `Bearer ${t()}`,
  ...extra,
});
const replayed: [string, number[], () => Parameters<typeof req>][] = [
  ...csrfTries,
  ['sign alice out without the header', [403], () => ['POST', '/api/logout', asAliceBrowser()]],
  [
    'sign alice out from Origin evil (bodiless)',
    [403],
    () => ['POST', '/api/logout', asAliceBrowser({ origin: 'http://evil.example' })],
  ],
  [
    'create an API token without the header',
    [403],
    () => [
      'POST',
      '/api/tokens',
      asAliceBrowser(jsonType),
      JSON.stringify({ name: 'csrf', scopes: ['sessions'] }),
    ],
  ],
  [
    'revoke an API token without the header',
    [403],
    () => ['DELETE', `/api/tokens/${aliceTokens.readId}`, asAliceBrowser()],
  ],
  [
    'sign-in from another origin',
    [403],
    () => [
      'POST',
      '/api/login',
      { ...jsonType, origin: 'http://evil.example' },
      JSON.stringify({ username: 'bob', password: 'whatever' }),
    ],
  ],
  [
    'a read token starts a session',
    [403],
    () => ['POST', '/api/sessions', asToken(() => aliceTokens.read, jsonType), sessionBody],
  ],
  [
    'a read token stops a session',
    [403],
    () => ['DELETE', `/api/sessions/${A.id}`, asToken(() => aliceTokens.read)],
  ],
  [
    'a token creates tokens',
    [403],
    () => [
      'POST',
      '/api/tokens',
      asToken(() => aliceTokens.sessions, jsonType),
      JSON.stringify({ name: 'more', scopes: ['sessions'] }),
    ],
  ],
  [
    "a token revokes the user's other tokens",
    [403],
    () => ['DELETE', `/api/tokens/${aliceTokens.sessionsId}`, asToken(() => aliceTokens.read)],
  ],
  ["an admin's token reads the audit log", [403], () => ['GET', '/api/admin/audit', asToken(() => admToken)]],
  ["bob stops alice's session", [404], () => ['POST', `/api/sessions/${A.id}/stop`, bobBrowser()]],
  ["bob revokes alice's token", [404], () => ['DELETE', `/api/tokens/${aliceTokens.readId}`, bobBrowser()]],
  ["bob deletes alice's preset", [404], () => ['DELETE', `/api/presets/${alicePreset}`, bobBrowser()]],
  ['bob deletes the site preset', [403], () => ['DELETE', `/api/admin/presets/${sitePreset}`, bobBrowser()]],
  [
    "delete alice's preset without the CSRF header",
    [403],
    () => ['DELETE', `/api/presets/${alicePreset}`, asAliceBrowser()],
  ],
  [
    "a read token renames alice's preset",
    [403],
    () => [
      'PATCH',
      `/api/presets/${alicePreset}`,
      asToken(() => aliceTokens.read, jsonType),
      JSON.stringify({ name: 'renamed' }),
    ],
  ],
  ...adminTries,
];
for (const [name, refused, request] of replayed)
  attempt('encoded', name, () => everySpelling(request, refused));

// The proxy's prefix too: `/%75ser/...` is /user/ (and refused to bob likewise); what follows the
// prefix is the app's, parsed by the proxy's strict parser (404 rather than 400).
const proxyReplayed: [string, number[], (m: string) => Parameters<typeof req>][] = [
  ["bob GETs alice's session", [404], (m) => ['GET', `/user/alice/${A.id}/${m}`, asBob()]],
  ['no cookie', [401], (m) => ['GET', `/user/alice/${A.id}/${m}`, {}]],
  [
    "POST into alice's app from Origin evil",
    [403],
    (m) => ['POST', `/user/alice/${A.id}/${m}`, { cookie: cookieOf(alice), origin: 'http://evil.example' }],
  ],
];
for (const [name, refused, request] of proxyReplayed)
  attempt('encoded', `proxy: ${name}`, () => {
    const m = mark();
    return everySpelling(
      () => request(m),
      refused,
      (s) => s === 400 || notFoundish(s),
      () => reachedAlice(m),
    );
  });

// Rate limits (last: they leave the limiters full for a while).
attempt('rate-limit', 'the API limits a flood from one user (429, Retry-After), not the others', async () => {
  let limited: Res | undefined;
  for (let i = 0; i < 420 && !limited; i++) {
    const r = await req('GET', '/api/me', { cookie: cookieOf(carol) }, undefined, false);
    if (r.status === 429) limited = r;
  }
  return (
    !!limited && Number(limited.headers['retry-after']) > 0 && (await alice.get('/api/me')).status === 200
  );
});
attempt('rate-limit', 'sign-in attempts are limited', async () => {
  let limited = false;
  for (let i = 0; i < 40 && !limited; i++) {
    const body = JSON.stringify({ username: 'nobody-here', password: `guess-${i}` });
    limited = (await req('POST', '/api/login', { 'content-type': 'application/json' }, body)).status === 429;
  }
  return limited;
});

/**
 * The status of `spelled()`, sent between two plain requests that both got 429: the limiter's window
 * cannot have turned in between (a new window would need the whole limit again), so a 2xx from
 * `spelled()` could only be a way around it. When the window did turn, floods and asks again.
 */
async function whileLimited(
  plain: () => Promise<number>,
  flood: () => Promise<void>,
  spelled: () => Promise<Res>,
): Promise<Res> {
  for (let i = 0; i < 5; i++) {
    if ((await plain()) !== 429) {
      await flood();
      continue;
    }
    const r = await spelled();
    if ((await plain()) === 429) return r;
  }
  throw new Error('the limit did not hold over three requests, five times');
}
const carolGet = (p: string) => req('GET', p, { cookie: cookieOf(carol) }, undefined, false);
const floodCarol = async () => {
  for (let i = 0; i < 500 && (await carolGet('/api/me')).status !== 429; i++);
};
const signInTry = (p: string) =>
  req(
    'POST',
    p,
    { 'content-type': 'application/json' },
    JSON.stringify({ username: 'nobody-here', password: 'guess' }),
  );
const floodSignIn = async () => {
  for (let i = 0; i < 100 && (await signInTry('/api/login')).status !== 429; i++);
};
for (const p of ['/api/me', '/api/tokens', '/api/sessions']) {
  attempt('encoded', `rate limit: carol's flood, then GET ${p} spelled every way`, async () => {
    for (const s of spellings(p)) {
      const r = await whileLimited(
        async () => (await carolGet(p)).status,
        floodCarol,
        () => carolGet(s.url),
      );
      const ok = s.odd ? r.status === 400 : r.status === 429 && Number(r.headers['retry-after']) > 0;
      if (!ok || r.headers['cache-control'] !== 'no-store')
        throw new Error(`${s.name} (${s.url}) got ${r.status} (cache-control ${r.headers['cache-control']})`);
    }
    return true;
  });
}
attempt('encoded', 'rate limit: sign-in attempts spelled every way', async () => {
  const before = await stateNow();
  for (const s of spellings('/api/login')) {
    const r = await whileLimited(
      async () => (await signInTry('/api/login')).status,
      floodSignIn,
      () => signInTry(s.url),
    );
    if (r.status !== (s.odd ? 400 : 429)) throw new Error(`${s.name} (${s.url}) got ${r.status}`);
  }
  return (await stateNow()) === before;
});

// ---- setup ------------------------------------------------------------------------------------------

function listen(server: net.Server, target: number | string): Promise<number> {
  return new Promise((resolve) => {
    if (typeof target === 'string') server.listen(target, () => resolve(0));
    else server.listen(target, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
  });
}

beforeAll(async () => {
  canaryTcp.server = net.createServer((s) => {
    canaryTcp.hits++;
    s.destroy();
  });
  canaryTcp.port = await listen(canaryTcp.server, 0);
  canaryUnix.server = net.createServer((s) => {
    canaryUnix.hits++;
    s.destroy();
  });
  await listen(canaryUnix.server, canaryUnix.path);

  gw = await createTestGateway({
    name: 'security',
    users: [
      { name: 'alice' },
      { name: 'bob' },
      { name: 'carol' },
      { name: 'adm', unixUser: 'nobody', admin: true },
    ],
    yaml: `auth:
  loginAttemptsPerMinute: 30
  apiRequestsPerMinute: 400
${echo.yaml}`,
  });
  await gw.start();
  gwPid = gw.proc!.pid!;
  alice = new Client(gw.url);
  bob = new Client(gw.url);
  carol = new Client(gw.url);
  adm = new Client(gw.url);
  for (const [c, n] of [
    [alice, 'alice'],
    [bob, 'bob'],
    [carol, 'carol'],
    [adm, 'adm'],
  ] as const) {
    expect((await c.login(n, gw.passwords[n]!)).status).toBe(200);
  }
  const start = async (c: Client, app: string) => {
    const r = await c.post('/api/sessions', { cluster: 'local', app, cores: 1, memoryGb: 1, hours: 1 });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return (r.body as { session: SessionView }).session;
  };
  A = await start(alice, 'echo');
  S = await start(alice, 'echoslow');
  B = await start(bob, 'echo');
  A = await waitForState(alice, A.id, ['running']);
  B = await waitForState(bob, B.id, ['running']);
  S = await waitForState(alice, S.id, ['starting']);
  secretA = envOf(A.jobId, 'ATRIUM_AGENT_SECRET');
  appTokenA = envOf(A.jobId, 'ATRIUM_APP_TOKEN');
  for (let i = 0; i < 100 && !secretS; i++) {
    secretS = envOf(S.jobId, 'ATRIUM_AGENT_SECRET');
    if (!secretS) await new Promise((r) => setTimeout(r, 100));
  }
  expect(secretA && secretS && appTokenA).toBeTruthy();
  // A root-owned socket inside alice's session dir (its owner is wrong).
  canaryInHome.path = `/home/alice/.atrium/sessions/${S.id}/app.sock`;
  canaryInHome.server = net.createServer((s) => {
    canaryInHome.hits++;
    s.destroy();
  });
  await listen(canaryInHome.server, canaryInHome.path);

  const mk = async (c: Client, scopes: string[]) => {
    const r = await c.post('/api/tokens', { name: `t ${scopes.join(' ')}`, scopes });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body as { token: string; info: { id: number } };
  };
  const read = await mk(alice, ['read']);
  const sessions = await mk(alice, ['sessions']);
  aliceTokens = {
    read: read.token,
    readId: read.info.id,
    sessions: sessions.token,
    sessionsId: sessions.info.id,
  };
  bobToken = (await mk(bob, ['sessions', 'jobs', 'read'])).token;
  const preset = async (c: Client, p: string, name: string) => {
    const r = await c.post(p, { name, cluster: 'local', values: { app: 'echo', cores: 1, label: 'mine' } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return (r.body as { preset: { id: number } }).preset.id;
  };
  alicePreset = await preset(alice, '/api/presets', 'alice private preset');
  sitePreset = await preset(adm, '/api/admin/presets', 'course preset');
  admToken = (await mk(adm, ['sessions', 'jobs', 'read'])).token;
  // alice's job, when batch jobs exist.
  const job = await alice.post('/api/jobs', {
    cluster: 'local',
    name: 'mine',
    script: '#!/bin/sh\necho secret\n',
  });
  const jid = (job.body as { job?: { id?: number } }).job?.id;
  if (job.status < 300 && jid) aliceJobId = String(jid);
  // A file only alice may read, and a link to it in bob's home.
  canarySecret = `canary-${crypto.randomBytes(16).toString('hex')}`;
  canaryFile = `/home/alice/atrium-canary-${RUN}.txt`;
  fs.writeFileSync(canaryFile, canarySecret, { mode: 0o600 });
  fs.chownSync(canaryFile, uidOf('alice'), gidOf('alice'));
  const link = `/home/bob/link-to-alice`;
  fs.rmSync(link, { force: true });
  fs.symlinkSync(canaryFile, link);
  fs.lchownSync(link, uidOf('bob'), gidOf('bob'));
  // Positive controls: the channels the tries use do work for the owner.
  const own = await req('GET', `/user/alice/${A.id}/control`, { cookie: cookieOf(alice) }, undefined, false);
  expect(own.status).toBe(200);
  expect(JSON.parse(own.body)).toMatchObject({ app: 'echo', tokenOk: true });
  // ...and what reaches alice's app is seen (so "her app never saw a try" means something).
  expect(echoLog('alice', A.id).some((r) => r.path.includes('/control'))).toBe(true);
  expect(await wsStatus(wsUrl(`/user/alice/${A.id}/ws`), { cookie: cookieOf(alice), origin: origin() })).toBe(
    101,
  );
  expect(
    (await req('GET', '/api/sessions', { authorization: `Bearer ${aliceTokens.read}` }, undefined, false))
      .status,
  ).toBe(200);
  routeBefore = JSON.stringify(await sessionRow(A.id));
}, 180_000);

afterAll(async () => {
  try {
    for (const [c, list] of [
      [alice, ['A', 'S']],
      [bob, ['B']],
    ] as const) {
      for (const k of list) {
        const s = { A, S, B }[k];
        if (s) await c.del(`/api/sessions/${s.id}`);
      }
    }
    await new Promise((r) => setTimeout(r, 1500));
  } finally {
    await gw?.stop();
    canaryTcp.server?.close();
    canaryUnix.server?.close();
    canaryInHome.server?.close();
    fs.rmSync(canaryFile, { force: true });
    fs.rmSync('/home/bob/link-to-alice', { force: true });
    fs.rmSync(scratch, { recursive: true, force: true });
    fs.rmSync(echo.dir, { recursive: true, force: true });
  }
});

// ---- run ------------------------------------------------------------------------------------------

describe('adversarial suite: bob (and nobody) against alice', () => {
  for (const t of tries) {
    it(`[${t.area}] ${t.name}`, async () => {
      let refused = false;
      let error: string | undefined;
      try {
        refused = await t.run();
      } catch (e) {
        error = (e as Error).message;
      }
      results.push({ area: t.area, name: t.name, refused, error });
      expect(error, t.name).toBeUndefined();
      expect(refused, t.name).toBe(true);
    });
  }

  it('changed nothing: sessions, routes, files, canaries, tokens, and no secret reached an attacker', async () => {
    // Every try ran and was refused.
    const refusedCount = results.filter((r) => r.refused).length;
    const byArea = new Map<string, [number, number]>();
    for (const r of results) {
      const [n, ok] = byArea.get(r.area) ?? [0, 0];
      byArea.set(r.area, [n + 1, ok + (r.refused ? 1 : 0)]);
    }
    console.log(
      `security: ${results.length} tries, ${refusedCount} refused (${[...byArea].map(([a, [n, ok]]) => `${a} ${ok}/${n}`).join(', ')})`,
    );
    for (const r of results.filter((x) => !x.refused))
      console.log(`security: NOT refused: [${r.area}] ${r.name} ${r.error ?? ''}`);
    expect(results.length).toBe(tries.length);
    expect(refusedCount).toBe(tries.length);

    // alice's sessions: the same, in the same states; the running one still routed to the same place.
    const now = await aliceSessionsNow();
    expect(now[A.id]).toBe('running');
    expect(now[S.id]).toBe('starting');
    expect(JSON.stringify(await sessionRow(A.id))).toBe(routeBefore);
    expect(await sessionRow(S.id)).toMatchObject({
      state: 'starting',
      host: null,
      port: null,
      socket_path: null,
    });
    expect(
      Object.entries(now).filter(
        ([id, st]) => id !== A.id && id !== S.id && st !== 'ended' && st !== 'failed',
      ),
    ).toEqual([]);
    // bob has only his own session.
    const bobs = ((await bob.get('/api/sessions')).body as { sessions: SessionView[] }).sessions.map(
      (s) => s.id,
    );
    expect(bobs).toEqual([B.id]);
    // alice's app never saw a try; the owner's control request did reach it.
    const log = echoLog('alice', A.id);
    expect(log.some((r) => r.path.includes('/control'))).toBe(true);
    expect(log.filter((r) => JSON.stringify(r).includes(MARK))).toEqual([]);
    // Nothing connected to the canaries (no SSRF), no file was written, alice's file is intact.
    expect(canaryTcp.hits).toBe(0);
    expect(canaryUnix.hits).toBe(0);
    expect(canaryInHome.hits).toBe(0);
    expect(fs.existsSync(pwnedFile)).toBe(false);
    expect(fs.readFileSync(canaryFile, 'utf8')).toBe(canarySecret);
    // alice's first two tokens are still valid (bob's and CSRF tries to revoke them failed).
    expect(
      (await req('GET', '/api/sessions', { authorization: `Bearer ${aliceTokens.read}` }, undefined, false))
        .status,
    ).toBe(200);
    expect(
      (
        await req(
          'GET',
          '/api/sessions',
          { authorization: `Bearer ${aliceTokens.sessions}` },
          undefined,
          false,
        )
      ).status,
    ).toBe(200);
    // No answer to an attacker held alice's secrets.
    const seen = seenByAttacker.join('\n');
    for (const secret of [canarySecret, appTokenA, aliceTokens.read, aliceTokens.sessions, secretS]) {
      expect(seen.includes(secret)).toBe(false);
    }
    // Refused callbacks are in the audit log; the gateway is the same process and still healthy.
    const [{ n: refusedCallbacks } = { n: 0 }] = await sql<{ n: number }>(
      "select count(*) n from audit_log where action = 'agent.callback' and ok = 0",
    );
    expect(refusedCallbacks).toBeGreaterThanOrEqual(20);
    expect(gw.proc?.pid).toBe(gwPid);
    expect(gw.proc?.exitCode).toBeNull();
    expect((await fetch(`${gw.url}/api/health`)).status).toBe(200);
  });
});
