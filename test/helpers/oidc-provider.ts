// A real OpenID provider for the tests (the npm oidc-provider package, in this process, on 127.0.0.1):
// authorization code + PKCE, refresh tokens, RP-initiated and back-channel logout, dev login forms (any password), an
// in-memory store the test can revoke grants in, and a hook that rewrites the next ID token the token
// endpoint returns (to send the gateway forged, expired or replayed ID tokens).
// It prints "Unsupported runtime" on Node 20 (a check on the LTS name); every flow used here works.
import crypto from 'node:crypto';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider, { type Adapter, type AdapterPayload } from 'oidc-provider';

export interface TestAccount {
  preferred_username: string;
  groups: string[];
  name: string;
  email: string;
}

/** Accounts by login name (the dev login form takes any password). */
export const ACCOUNTS: Record<string, TestAccount> = {
  alice: {
    preferred_username: 'alice',
    groups: ['/hpcusers'],
    name: 'Alice Example',
    email: 'alice@atrium.test',
  },
  bob: {
    preferred_username: 'bob',
    groups: ['/hpcusers', '/hpcadmins'],
    name: 'Bob Example',
    email: 'bob@atrium.test',
  },
  carol: {
    preferred_username: 'carol',
    groups: ['/physics'],
    name: 'Carol Example',
    email: 'carol@atrium.test',
  },
  // A provider account whose user name claim is no Unix name: never signed in.
  mallory: { preferred_username: '../root', groups: ['/hpcusers'], name: 'Mallory', email: 'm@atrium.test' },
};

const stores = new Map<string, Map<string, { payload: AdapterPayload; expiresAt?: number }>>();

/** A plain in-memory adapter (one store per model) so tests can revoke a user's grants. */
class MemoryAdapter implements Adapter {
  private readonly store: Map<string, { payload: AdapterPayload; expiresAt?: number }>;
  constructor(readonly name: string) {
    let s = stores.get(name);
    if (!s) {
      s = new Map();
      stores.set(name, s);
    }
    this.store = s;
  }
  async upsert(id: string, payload: AdapterPayload, expiresIn?: number) {
    this.store.set(id, { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : undefined });
  }
  async find(id: string) {
    const e = this.store.get(id);
    if (!e) return undefined;
    if (e.expiresAt && e.expiresAt < Date.now()) {
      this.store.delete(id);
      return undefined;
    }
    return e.payload;
  }
  async findByUserCode(code: string) {
    for (const e of this.store.values()) if (e.payload.userCode === code) return e.payload;
    return undefined;
  }
  async findByUid(uid: string) {
    for (const e of this.store.values()) if (e.payload.uid === uid) return e.payload;
    return undefined;
  }
  async consume(id: string) {
    const e = this.store.get(id);
    if (e) e.payload.consumed = Math.floor(Date.now() / 1000);
  }
  async destroy(id: string) {
    this.store.delete(id);
  }
  async revokeByGrantId(grantId: string) {
    for (const s of stores.values()) {
      for (const [k, e] of s) if (e.payload.grantId === grantId) s.delete(k);
    }
  }
}

export function b64urlJson(o: unknown): string {
  return Buffer.from(JSON.stringify(o)).toString('base64url');
}

export function decodeJwt(t: string): { header: Record<string, unknown>; payload: Record<string, unknown> } {
  const [h, p] = t.split('.');
  return {
    header: JSON.parse(Buffer.from(h!, 'base64url').toString()) as Record<string, unknown>,
    payload: JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>,
  };
}

/** Signs a JWT with RS256 (or leaves it unsigned for alg "none" when key is null). */
export function signJwt(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  key: crypto.KeyObject | null,
) {
  const input = `${b64urlJson(header)}.${b64urlJson(payload)}`;
  if (!key) return `${input}.`;
  return `${input}.${crypto.sign('sha256', Buffer.from(input), key).toString('base64url')}`;
}

export interface TestProvider {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** The provider's signing key (the test may sign "genuine" tokens with it) and its kid. */
  signingKey: crypto.KeyObject;
  kid: string;
  /** Rewrites the ID token of the next token-endpoint answer (one shot). */
  tamperNextIdToken(f: (idToken: string) => string): void;
  /** ID tokens the token endpoint returned, in order (after any tampering). */
  idTokens: string[];
  /** Back-channel logout deliveries to the gateway: ok, or the error the provider got. */
  backchannel: { ok: boolean; error?: string }[];
  /** Ends every grant of an account: its refresh tokens stop working. */
  revokeGrantsOf(accountId: string): Promise<number>;
  close(): Promise<void>;
}

export async function startOidcProvider(opts: {
  port: number;
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  accessTokenTtlSeconds?: number;
  clientSecret?: string;
  extraAccounts?: Record<string, TestAccount>;
  /** Where the provider POSTs logout tokens when a sign-in ends at the provider. */
  backchannelLogoutUri?: string;
}): Promise<TestProvider> {
  const accounts = { ...ACCOUNTS, ...opts.extraAccounts };
  const issuer = `http://127.0.0.1:${opts.port}`;
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = `test-${crypto.randomBytes(4).toString('hex')}`;
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
  const clientId = 'atrium';
  const clientSecret = opts.clientSecret ?? `secret-${crypto.randomBytes(12).toString('hex')}`;
  let tamper: ((t: string) => string) | null = null;
  const idTokens: string[] = [];
  for (const s of stores.values()) s.clear();

  const provider = new Provider(issuer, {
    adapter: MemoryAdapter,
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: opts.redirectUris,
        post_logout_redirect_uris: opts.postLogoutRedirectUris,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
        ...(opts.backchannelLogoutUri
          ? { backchannel_logout_uri: opts.backchannelLogoutUri, backchannel_logout_session_required: true }
          : {}),
      },
    ],
    jwks: { keys: [jwk as never] },
    cookies: { keys: [crypto.randomBytes(16).toString('hex')] },
    pkce: { required: () => true },
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      email: ['email'],
      groups: ['groups'],
    },
    // Like Keycloak: the profile claims are in the ID token too.
    conformIdTokenClaims: false,
    features: {
      devInteractions: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      revocation: { enabled: true },
      backchannelLogout: { enabled: !!opts.backchannelLogoutUri },
    },
    ttl: {
      AccessToken: opts.accessTokenTtlSeconds ?? 300,
      AuthorizationCode: 60,
      IdToken: 300,
      RefreshToken: 3600,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
    },
    // Its outgoing requests (back-channel logout) refuse loopback addresses as an SSRF guard; here
    // the gateway is on 127.0.0.1 by design, so the guard's dispatcher is left out.
    // (`fetch` is a configuration option of oidc-provider 9 that its typings do not list yet.)
    ...({
      fetch: (url: string | URL, options: RequestInit & { dispatcher?: unknown }) => {
        const { dispatcher: _guard, ...rest } = options;
        return globalThis.fetch(url, rest);
      },
    } as object),
    // Like Keycloak: refresh tokens without offline_access, no consent screen for this client.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    loadExistingGrant: async (ctx) => {
      const oidc = ctx.oidc;
      const grantId = oidc.result?.consent?.grantId || oidc.session!.grantIdFor(oidc.client!.clientId);
      if (grantId) {
        const g = await oidc.provider.Grant.find(grantId);
        if (g) return g;
      }
      const grant = new oidc.provider.Grant({
        clientId: oidc.client!.clientId,
        accountId: oidc.session!.accountId!,
      });
      grant.addOIDCScope('openid profile email groups');
      await grant.save();
      return grant;
    },
    findAccount: async (_ctx, id) => {
      const a = accounts[id];
      if (!a) return undefined;
      return { accountId: id, claims: async () => ({ sub: id, ...a }) };
    },
  });
  provider.proxy = false;
  const backchannel: { ok: boolean; error?: string }[] = [];
  const events = provider as unknown as NodeJS.EventEmitter; // a Koa app; its typings omit the emitter
  events.on('backchannel.success', () => backchannel.push({ ok: true }));
  events.on('backchannel.error', (_ctx: unknown, err: Error) =>
    backchannel.push({ ok: false, error: err.message }),
  );
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.method === 'POST' && ctx.path === '/token') {
      const body = ctx.body as { id_token?: string } | undefined;
      if (body && typeof body === 'object' && typeof body.id_token === 'string') {
        if (tamper) {
          const f = tamper;
          tamper = null;
          ctx.body = { ...body, id_token: f(body.id_token) };
        }
        idTokens.push((ctx.body as { id_token: string }).id_token);
      }
    }
  });
  const server: http.Server = await new Promise((resolve) => {
    const s = provider.listen(opts.port, '127.0.0.1', () => resolve(s));
  });
  if ((server.address() as AddressInfo).port !== opts.port) throw new Error('provider port mismatch');

  return {
    issuer,
    clientId,
    clientSecret,
    signingKey: privateKey,
    kid,
    idTokens,
    backchannel,
    tamperNextIdToken(f) {
      tamper = f;
    },
    async revokeGrantsOf(accountId) {
      let n = 0;
      const grants = stores.get('Grant');
      for (const [id, e] of grants ?? []) {
        if (e.payload.accountId === accountId) {
          const adapter = new MemoryAdapter('Grant');
          await adapter.revokeByGrantId(id);
          grants!.delete(id);
          n++;
        }
      }
      // Sessions at the provider end too, as an administrator's "sign out everywhere" would.
      for (const [id, e] of stores.get('Session') ?? [])
        if (e.payload.accountId === accountId) stores.get('Session')!.delete(id);
      return n;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---- a browser without a browser: fetch with a cookie jar, following redirects by hand ----------------

export class CookieJar {
  private readonly jar = new Map<string, Map<string, string>>();

  header(url: string): string {
    const m = this.jar.get(new URL(url).host);
    return m ? [...m].map(([k, v]) => `${k}=${v}`).join('; ') : '';
  }

  get(url: string, name: string): string | undefined {
    return this.jar.get(new URL(url).host)?.get(name);
  }

  set(url: string, name: string, value: string): void {
    const host = new URL(url).host;
    if (!this.jar.has(host)) this.jar.set(host, new Map());
    this.jar.get(host)!.set(name, value);
  }

  delete(url: string, name: string): void {
    this.jar.get(new URL(url).host)?.delete(name);
  }

  take(url: string, res: Response): void {
    for (const c of res.headers.getSetCookie()) {
      const [pair, ...attrs] = c.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a)) || value === '';
      if (expired) this.delete(url, name);
      else this.set(url, name, value);
    }
  }

  async fetch(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    const cookie = this.header(url);
    if (cookie) headers.set('cookie', cookie);
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    this.take(url, res);
    return res;
  }
}

/** Signs out at the provider itself (its end-session page, confirmed), as a user would on another site. */
export async function logoutAtProvider(jar: CookieJar, issuer: string, clientId: string): Promise<void> {
  const page = await jar.fetch(`${issuer}/session/end?client_id=${encodeURIComponent(clientId)}`);
  const html = await page.text();
  const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)?.[1];
  if (page.status !== 200 || !action || !xsrf)
    throw new Error(`provider logout page: HTTP ${page.status}: ${html.slice(0, 300)}`);
  const res = await jar.fetch(new URL(action.replace(/&amp;/g, '&'), issuer).href, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ xsrf, logout: 'yes' }),
  });
  await res.text();
  if (res.status >= 400) throw new Error(`provider logout answered ${res.status}`);
}

/**
 * Signs in at the provider with the dev login form, starting at the gateway's /api/auth/oidc/start,
 * and stops at the redirect back to the gateway: returns the callback URL without opening it.
 */
export async function loginAtProvider(
  jar: CookieJar,
  gatewayUrl: string,
  login: string,
  next?: string,
): Promise<string> {
  let url = `${gatewayUrl}/api/auth/oidc/start${next !== undefined ? `?next=${encodeURIComponent(next)}` : ''}`;
  for (let hop = 0; hop < 20; hop++) {
    if (url.startsWith(`${gatewayUrl}/api/auth/oidc/callback`)) return url;
    const res = await jar.fetch(url);
    if (res.status >= 300 && res.status < 400) {
      url = new URL(res.headers.get('location')!, url).href;
      await res.text();
      continue;
    }
    const html = await res.text();
    if (res.status !== 200)
      throw new Error(`sign-in at the provider: HTTP ${res.status} at ${url}: ${html.slice(0, 300)}`);
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    const prompt = /name="prompt" value="([a-z]+)"/.exec(html)?.[1];
    if (!action || !prompt) throw new Error(`unexpected page at ${url}: ${html.slice(0, 300)}`);
    const body = new URLSearchParams({ prompt });
    if (prompt === 'login') {
      body.set('login', login);
      body.set('password', 'any password');
    }
    const post = await jar.fetch(new URL(action.replace(/&amp;/g, '&'), url).href, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body,
    });
    await post.text();
    if (post.status < 300 || post.status >= 400) throw new Error(`provider form answered ${post.status}`);
    url = new URL(post.headers.get('location')!, url).href;
  }
  throw new Error('too many redirects during sign-in');
}
