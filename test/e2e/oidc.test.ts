// OpenID Connect sign-in end to end against a real provider (oidc-provider on 127.0.0.1): a full
// sign-in in headless Chromium, group rules, refusal of forged, expired and replayed responses,
// refresh of the provider's tokens, a fresh access token inside a running session, sign-out, and
// back-channel logout (the provider ends our sign-ins; forged, replayed or malformed logout tokens
// end nothing).
import crypto from 'node:crypto';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, type TestBrowser } from '../helpers/browser.ts';
import { Client, type SessionView, waitForState } from '../helpers/client.ts';
import { echoApps } from '../helpers/echo-app.ts';
import { createTestGateway, freePort, type TestGateway } from '../helpers/gateway.ts';
import {
  CookieJar,
  decodeJwt,
  loginAtProvider,
  logoutAtProvider,
  signJwt,
  startOidcProvider,
  type TestProvider,
} from '../helpers/oidc-provider.ts';

const AT_TTL = 20;
let gw: TestGateway;
let op: TestProvider;
let browser: TestBrowser | undefined;
const echo = echoApps();

/** A Client (API helper) that uses the cookie a jar got at sign-in. */
async function clientFrom(jar: CookieJar): Promise<Client> {
  const c = new Client(gw.url);
  c.cookie = `atrium_session=${jar.get(gw.url, 'atrium_session')}`;
  const me = await c.get('/api/me');
  c.csrf = (me.body as { csrfToken: string }).csrfToken;
  return c;
}

/** Full sign-in without a browser; returns the jar and where the callback sent us. */
async function signInAs(login: string, next?: string) {
  const jar = new CookieJar();
  const cb = await loginAtProvider(jar, gw.url, login, next);
  const res = await jar.fetch(cb);
  await res.text();
  return {
    jar,
    status: res.status,
    location: res.headers.get('location') ?? '',
    cookies: res.headers.getSetCookie(),
  };
}

function refused(r: { status: number; location: string; cookies: string[] }, code?: string) {
  expect(r.status).toBe(302);
  expect(r.location).toMatch(code ? new RegExp(`^/login\\?error=${code}$`) : /^\/login\?error=/);
  expect(r.cookies.some((c) => /^atrium_session=[^;]/.test(c))).toBe(false);
}

async function auditOf(
  action: string,
): Promise<{ ok: boolean; actor: string | null; details: Record<string, unknown> }[]> {
  const rows = await gw.query<{ ok: number; actor: string | null; details: string }>(
    'select ok, actor, details from audit_log where action = ? order by id',
    [action],
  );
  return rows.map((r) => ({
    ok: r.ok === 1,
    actor: r.actor,
    details: JSON.parse(r.details) as Record<string, unknown>,
  }));
}

beforeAll(async () => {
  const opPort = await freePort();
  const secret = `s-${crypto.randomBytes(8).toString('hex')}`;
  gw = await createTestGateway({
    name: 'oidc',
    users: [{ name: 'dave', unixUser: 'nobody' }],
    yaml: `auth:
  allowGroups: [hpcusers]
  adminGroups: [hpcadmins]
  oidc:
    issuer: http://127.0.0.1:${opPort}
    clientId: atrium
    clientSecret: ${secret}
    scopes: [openid, profile, email, groups]
    label: Sign in with Test IdP
    allowInsecure: true
    passTokensToSessions: true
${echo.yaml}`,
  });
  op = await startOidcProvider({
    port: opPort,
    clientSecret: secret,
    redirectUris: [`${gw.url}/api/auth/oidc/callback`],
    postLogoutRedirectUris: [`${gw.url}/login`],
    backchannelLogoutUri: `${gw.url}/api/auth/oidc/backchannel-logout`,
    accessTokenTtlSeconds: AT_TTL,
    extraAccounts: {
      dave: { preferred_username: 'dave', groups: ['/hpcusers'], name: 'Dave', email: 'd@x' },
    },
  });
  await gw.start();
});

afterAll(async () => {
  await browser?.close();
  await gw?.stop();
  await op?.close();
});

describe('OpenID Connect sign-in', () => {
  it('advertises the provider on the login page', async () => {
    const r = await fetch(`${gw.url}/api/auth/methods`);
    expect(await r.json()).toMatchObject({
      oidc: { label: 'Sign in with Test IdP', url: '/api/auth/oidc/start' },
    });
  });

  it('signs in with headless Chromium (code + PKCE), with safe cookies, and signs out at the provider too', async () => {
    browser = await launchBrowser({ name: 'oidc' });
    const page = browser.page;
    const authRequests: string[] = [];
    page.on('request', (r) => {
      if (r.url().startsWith(`${op.issuer}/auth`)) authRequests.push(r.url());
    });
    await page.goto(`${gw.url}/api/auth/oidc/start?next=${encodeURIComponent('/sessions')}`);
    // The provider's login form.
    await page.waitForSelector('input[name="login"]');
    const auth = new URL(authRequests[0]!);
    expect(auth.searchParams.get('code_challenge_method')).toBe('S256');
    expect(auth.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(auth.searchParams.get('state')).toBeTruthy();
    expect(auth.searchParams.get('nonce')).toBeTruthy();
    expect(auth.searchParams.get('redirect_uri')).toBe(`${gw.url}/api/auth/oidc/callback`);
    await page.fill('input[name="login"]', 'alice');
    await page.fill('input[name="password"]', 'whatever');
    await Promise.all([page.waitForURL(`${gw.url}/sessions`), page.click('button[type="submit"]')]);

    const cookies = await browser.context.cookies(gw.url);
    const session = cookies.find((c) => c.name === 'atrium_session');
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/' });
    expect(cookies.find((c) => c.name === 'atrium_oidc')).toBeUndefined();
    // Scripts cannot read the session cookie; the API says who is signed in.
    const me = await page.evaluate(async () => {
      const r = await fetch('/api/me');
      return { status: r.status, body: await r.json(), cookie: document.cookie };
    });
    expect(me.status).toBe(200);
    expect(me.cookie).not.toContain('atrium_session');
    expect(me.body.user).toMatchObject({
      username: 'alice',
      unixUser: 'alice',
      source: 'oidc',
      isAdmin: false,
    });
    expect(me.body.user.groups).toEqual(['hpcusers']);
    // The provider's tokens never reach the browser.
    expect(JSON.stringify(me.body)).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}/);

    const out = await page.evaluate(async (csrf: string) => {
      const r = await fetch('/api/logout', {
        method: 'POST',
        headers: { 'x-csrf-token': csrf, 'content-type': 'application/json' },
        body: '{}',
      });
      return r.json();
    }, me.body.csrfToken as string);
    const logoutUrl = new URL(out.logoutUrl as string);
    expect(logoutUrl.origin + logoutUrl.pathname).toBe(`${op.issuer}/session/end`);
    expect(logoutUrl.searchParams.get('post_logout_redirect_uri')).toBe(`${gw.url}/login`);
    expect(logoutUrl.searchParams.get('id_token_hint')).toBeTruthy();
    await page.goto(logoutUrl.href);
    // oidc-provider asks to confirm the sign-out at the provider.
    await Promise.all([
      page.waitForURL(`${gw.url}/login`),
      page.click('button[autofocus], button[type="submit"]'),
    ]);
    const after = await page.evaluate(async () => (await fetch('/api/me')).status);
    expect(after).toBe(401);
    // The provider session is over too: signing in again asks for the password.
    await page.goto(`${gw.url}/api/auth/oidc/start`);
    await page.waitForSelector('input[name="login"]');
  });

  it('maps groups to access: an admin group makes an administrator, others are refused', async () => {
    const bob = await signInAs('bob');
    expect(bob.status).toBe(302);
    expect(bob.location).toBe('/');
    const c = await clientFrom(bob.jar);
    const me = (await c.get('/api/me')).body as { user: { isAdmin: boolean; groups: string[] } };
    expect(me.user.isAdmin).toBe(true);
    expect(me.user.groups.sort()).toEqual(['hpcadmins', 'hpcusers']);
    const audit = await c.get('/api/admin/audit?action=signin&ok=true');
    expect(audit.status).toBe(200);
    const entries = (audit.body as { entries: { actor: string; details: { method?: string } }[] }).entries;
    expect(entries.some((e) => e.actor === 'alice' && e.details.method === 'oidc')).toBe(true);

    const carol = await signInAs('carol');
    refused(carol, 'not_allowed');
    // A provider user name that is no Unix name, and a name that belongs to a local account.
    refused(await signInAs('mallory'), 'failed');
    refused(await signInAs('dave'), 'conflict');
    const fails = (await auditOf('signin')).filter((a) => !a.ok && a.details.method === 'oidc');
    expect(fails.map((f) => f.actor)).toEqual(expect.arrayContaining(['carol', 'dave']));
    expect(fails.find((f) => f.actor === 'carol')?.details.why).toMatch(/not in a group/);
  });

  it('only returns to paths on this site after sign-in (no open redirect)', async () => {
    for (const [next, expected] of [
      ['/sessions?tab=2', '/sessions?tab=2'],
      ['//evil.example/x', '/'],
      ['https://evil.example/', '/'],
      ['/\\evil.example', '/'],
      ['javascript:alert(1)', '/'],
      ['/%0d%0aSet-Cookie:%20x=1', '/%0d%0aSet-Cookie:%20x=1'],
    ] as const) {
      const r = await signInAs('alice', next);
      expect(r.status, next).toBe(302);
      expect(r.location, next).toBe(expected);
      expect(r.cookies.some((c) => c.startsWith('x='))).toBe(false);
    }
  });
});

describe('forged, expired and replayed responses are refused', () => {
  /** Starts a sign-in, lets the provider's token answer be rewritten, and delivers the callback. */
  async function withTamperedIdToken(
    f: (payload: Record<string, unknown>, header: Record<string, unknown>, raw: string) => string,
  ) {
    op.tamperNextIdToken((t) => {
      const { header, payload } = decodeJwt(t);
      return f(payload, header, t);
    });
    return signInAs('alice');
  }

  it('refuses ID tokens that are forged, expired, for another client or issuer, unsigned, or with a replayed nonce', async () => {
    const now = Math.floor(Date.now() / 1000);
    const otherKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    // A genuine sign-in first: its ID token's nonce is the one replayed below.
    expect((await signInAs('alice')).location).toBe('/');
    const earlier = decodeJwt(op.idTokens.at(-1)!).payload;
    type Tamper = (p: Record<string, unknown>, h: Record<string, unknown>, raw: string) => string;
    const sig = /JWT signature verification failed/;
    const cases: [string, RegExp, Tamper][] = [
      ['signed with another key', sig, (p, h) => signJwt(h, p, otherKey)],
      [
        'another user, signed with another key',
        sig,
        (p, h) =>
          signJwt(h, { ...p, sub: 'bob', preferred_username: 'bob', groups: ['/hpcadmins'] }, otherKey),
      ],
      [
        'payload changed, genuine signature kept',
        sig,
        (p, _h, raw) => {
          const [head, , signature] = raw.split('.');
          return `${head}.${Buffer.from(JSON.stringify({ ...p, preferred_username: 'bob' })).toString('base64url')}.${signature}`;
        },
      ],
      [
        'expired an hour ago (genuine key)',
        /"exp" \(expiration time\)/,
        (p, h) => signJwt(h, { ...p, iat: now - 7200, exp: now - 3600 }, op.signingKey),
      ],
      [
        'for another client (genuine key)',
        /"aud" \(audience\)/,
        (p, h) => signJwt(h, { ...p, aud: 'another-client' }, op.signingKey),
      ],
      [
        'from another issuer (genuine key)',
        /"iss" \(issuer\)/,
        (p, h) => signJwt(h, { ...p, iss: 'http://127.0.0.1:1' }, op.signingKey),
      ],
      ['unsigned (alg none)', /"alg"/, (p, h) => signJwt({ ...h, alg: 'none' }, p, null)],
      [
        'nonce of an earlier sign-in (genuine key)',
        /"nonce"/,
        (p, h) => signJwt(h, { ...p, nonce: earlier.nonce }, op.signingKey),
      ],
    ];
    for (const [name, why, f] of cases) {
      const r = await withTamperedIdToken(f);
      expect(r.status, name).toBe(302);
      expect(r.location, name).toBe('/login?error=failed');
      expect(
        r.cookies.some((c) => /^atrium_session=[^;]/.test(c)),
        name,
      ).toBe(false);
      // Refused for the reason the case is about (from the audit log).
      const last = (await auditOf('signin')).at(-1)!;
      expect(last.ok, name).toBe(false);
      expect(String(last.details.why), name).toMatch(why);
    }
    // The genuine response still works (the tampering hook was one-shot each time).
    const ok = await signInAs('alice');
    expect(ok.location).toBe('/');
  });

  it('refuses a replayed callback (state is single use), in the same or another browser', async () => {
    const jar = new CookieJar();
    const cb = await loginAtProvider(jar, gw.url, 'alice');
    const first = await jar.fetch(cb);
    expect(first.status).toBe(302);
    expect(first.headers.get('location')).toBe('/');
    expect(jar.get(gw.url, 'atrium_session')).toBeTruthy();
    const again = await jar.fetch(cb);
    expect(again.headers.get('location')).toBe('/login?error=expired');
    const other = new CookieJar();
    const r = await other.fetch(cb);
    expect(r.headers.get('location')).toBe('/login?error=expired');
    expect(other.get(gw.url, 'atrium_session')).toBeUndefined();
  });

  it("refuses an attacker's callback opened in a victim's browser (login CSRF)", async () => {
    const attacker = new CookieJar();
    const cb = await loginAtProvider(attacker, gw.url, 'bob');
    const victim = new CookieJar();
    const r = await victim.fetch(cb);
    expect(r.headers.get('location')).toBe('/login?error=failed');
    expect(victim.get(gw.url, 'atrium_session')).toBeUndefined();
    // The state was used up by that try: the attacker cannot use it either.
    const a = await attacker.fetch(cb);
    expect(a.headers.get('location')).toBe('/login?error=expired');
  });

  it("refuses a code delivered with another sign-in's state (PKCE and nonce do not match)", async () => {
    const jar = new CookieJar();
    const cbA = new URL(await loginAtProvider(jar, gw.url, 'alice'));
    const cbB = new URL(await loginAtProvider(jar, gw.url, 'alice'));
    const swapped = new URL(cbB);
    swapped.searchParams.set('code', cbA.searchParams.get('code')!);
    const r = await jar.fetch(swapped.href);
    expect(r.headers.get('location')).toBe('/login?error=failed');
    expect(jar.get(gw.url, 'atrium_session')).toBeUndefined();
  });

  it('refuses a sign-in state that has expired, and a provider error', async () => {
    const jar = new CookieJar();
    const cb = await loginAtProvider(jar, gw.url, 'alice');
    await gw.query('update oidc_login_states set expires_at = 1');
    const r = await jar.fetch(cb);
    expect(r.headers.get('location')).toBe('/login?error=expired');

    const jar2 = new CookieJar();
    const cb2 = new URL(await loginAtProvider(jar2, gw.url, 'alice'));
    const denied = new URL(`${gw.url}/api/auth/oidc/callback`);
    denied.searchParams.set('error', 'access_denied');
    denied.searchParams.set('state', cb2.searchParams.get('state')!);
    const d = await jar2.fetch(denied.href);
    expect(d.headers.get('location')).toBe('/login?error=denied');
    expect(jar2.get(gw.url, 'atrium_session')).toBeUndefined();
  });
});

describe("the provider's tokens in a running session", () => {
  let jar: CookieJar;
  let alice: Client;
  let session: SessionView;
  let tokenFile = '';

  const userinfo = async (token: string) =>
    (await fetch(`${op.issuer}/me`, { headers: { authorization: `Bearer ${token}` } })).status;

  it('writes a fresh access token into the session (mode 600, owned by the user)', async () => {
    ({ jar } = await signInAs('alice'));
    alice = await clientFrom(jar);
    const r = await alice.post('/api/sessions', {
      cluster: 'local',
      app: 'echo',
      cores: 1,
      memoryGb: 1,
      hours: 1,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    session = await waitForState(alice, (r.body as { session: SessionView }).session.id, ['running']);
    const echoed = (await alice.get(`${session.url}hello`)).body as { accessTokenFile: string };
    tokenFile = echoed.accessTokenFile;
    expect(tokenFile).toBe(`/home/alice/.atrium/sessions/${session.id}/access_token`);
    for (let i = 0; i < 100 && !fs.existsSync(tokenFile); i++) await new Promise((r) => setTimeout(r, 100));
    const st = fs.statSync(tokenFile);
    expect(st.mode & 0o777).toBe(0o600);
    expect(st.uid).toBe(Number(fs.readFileSync('/etc/passwd', 'utf8').match(/^alice:[^:]*:(\d+):/m)![1]));
    const token = fs.readFileSync(tokenFile, 'utf8');
    expect(await userinfo(token)).toBe(200);
    // Not in any API answer.
    expect(JSON.stringify((await alice.get('/api/me')).body)).not.toContain(token);
    expect(JSON.stringify((await alice.get('/api/sessions')).body)).not.toContain(token);
  });

  it('replaces it before it expires (the gateway refreshes with the refresh token)', async () => {
    const first = fs.readFileSync(tokenFile, 'utf8');
    let next = first;
    const deadline = Date.now() + (AT_TTL + 20) * 1000;
    while (next === first && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      if (fs.existsSync(tokenFile)) next = fs.readFileSync(tokenFile, 'utf8');
    }
    expect(next).not.toBe(first);
    expect(await userinfo(next)).toBe(200);
    // The browser session goes on across refreshes.
    expect((await alice.get('/api/me')).status).toBe(200);
  });

  it('signs the user out when the provider ends the sign-in, and the session loses the token', async () => {
    expect(await op.revokeGrantsOf('alice')).toBeGreaterThan(0);
    const deadline = Date.now() + (AT_TTL + 25) * 1000;
    let status = 200;
    while (status === 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      status = (await alice.get('/api/me')).status;
    }
    expect(status).toBe(401);
    const outs = await auditOf('signout');
    expect(outs.some((o) => o.actor === 'alice' && String(o.details.why).includes('ended the sign-in'))).toBe(
      true,
    );
    // The agent hears there is no token any more and removes it.
    const until = Date.now() + 45_000;
    while (fs.existsSync(tokenFile) && Date.now() < until) await new Promise((r) => setTimeout(r, 500));
    expect(fs.existsSync(tokenFile)).toBe(false);
  });

  afterAll(async () => {
    // Stop the session with a fresh sign-in.
    if (session) {
      const { jar: j } = await signInAs('alice');
      const c = await clientFrom(j);
      await c.del(`/api/sessions/${session.id}`);
    }
  });
});

describe('back-channel logout', () => {
  const BCL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
  const logoutToken = (
    claims: Record<string, unknown>,
    opts: { key?: crypto.KeyObject; header?: Record<string, unknown> } = {},
  ) =>
    signJwt(
      { alg: 'RS256', kid: op.kid, typ: 'logout+jwt', ...opts.header },
      {
        iss: op.issuer,
        aud: op.clientId,
        iat: Math.floor(Date.now() / 1000),
        jti: crypto.randomBytes(12).toString('hex'),
        events: { [BCL_EVENT]: {} },
        ...claims,
      },
      opts.key ?? op.signingKey,
    );
  const post = (token: string) =>
    fetch(`${gw.url}/api/auth/oidc/backchannel-logout`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ logout_token: token }),
    });
  const signedIn = async (jar: CookieJar) => {
    const r = await jar.fetch(`${gw.url}/api/me`);
    await r.text();
    return r.status === 200;
  };

  it('ends exactly the sign-in the provider ended (by its session id), not the same user elsewhere', async () => {
    const one = await signInAs('alice');
    const two = await signInAs('alice'); // another browser: another session at the provider
    const bob = await signInAs('bob');
    for (const x of [one, two, bob]) expect(await signedIn(x.jar)).toBe(true);
    const delivered = op.backchannel.length;
    await logoutAtProvider(one.jar, op.issuer, op.clientId);
    expect(op.backchannel.slice(delivered)).toEqual([{ ok: true }]);
    expect(await signedIn(one.jar)).toBe(false);
    expect(await signedIn(two.jar)).toBe(true);
    expect(await signedIn(bob.jar)).toBe(true);
    const outs = await auditOf('signout');
    expect(outs.some((o) => o.actor === 'alice' && String(o.details.why).includes('back-channel'))).toBe(
      true,
    );
  });

  it('refuses forged, foreign, malformed and replayed logout tokens, ending nothing', async () => {
    const bob = await signInAs('bob');
    const { privateKey: otherKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const bad: [string, string][] = [
      ['signed with another key', logoutToken({ sub: 'bob' }, { key: otherKey })],
      [
        'unsigned (alg none)',
        signJwt(
          { alg: 'none', typ: 'logout+jwt' },
          {
            iss: op.issuer,
            aud: op.clientId,
            iat: Math.floor(Date.now() / 1000),
            jti: 'x1',
            events: { [BCL_EVENT]: {} },
            sub: 'bob',
          },
          null,
        ),
      ],
      ['for another client', logoutToken({ sub: 'bob', aud: 'someone-else' })],
      ['from another issuer', logoutToken({ sub: 'bob', iss: 'http://127.0.0.1:1' })],
      ['issued an hour ago', logoutToken({ sub: 'bob', iat: Math.floor(Date.now() / 1000) - 3600 })],
      ['without the logout event', logoutToken({ sub: 'bob', events: { other: {} } })],
      ['an ID token (has a nonce)', logoutToken({ sub: 'bob', nonce: 'n' })],
      ['naming nobody', logoutToken({})],
      ['typed as an access token', logoutToken({ sub: 'bob' }, { header: { typ: 'at+jwt' } })],
      ['not a JWT', 'not-a-token'],
    ];
    for (const [why, token] of bad) {
      const r = await post(token);
      expect(r.status, why).toBe(400);
      await r.text();
    }
    const none = await fetch(`${gw.url}/api/auth/oidc/backchannel-logout`, { method: 'POST' });
    expect(none.status).toBe(400);
    expect(await signedIn(bob.jar)).toBe(true);

    // A genuine one for the subject (no sid) ends all of bob's sign-ins; replayed, it is refused.
    const genuine = logoutToken({ sub: 'bob' });
    expect((await post(genuine)).status).toBe(200);
    expect(await signedIn(bob.jar)).toBe(false);
    const again = await signInAs('bob');
    const replay = await post(genuine);
    expect(replay.status).toBe(400);
    expect(await signedIn(again.jar)).toBe(true);
  });
});
