// OpenID Connect sign-in (authorization code flow with PKCE S256, state and nonce) against any standard
// provider (Keycloak first). This module talks to the provider; the sign-in method that keeps the
// single-use login state is oidc-sign-in.ts, and src/server/routes/oidc.ts maps HTTP onto it.
import * as jose from 'jose';
import * as client from 'openid-client';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { isValidUnixName } from '../system/users.ts';

export type OidcSettings = NonNullable<Config['auth']['oidc']>;

/** The provider's tokens as kept in a browser session's server-side data (never sent to the browser). */
export interface OidcTokens {
  sub: string;
  accessToken: string;
  refreshToken?: string;
  idToken?: string;
  /** Epoch ms when the access token expires; absent when the provider did not say. */
  expiresAt?: number;
  /** Lifetime of the access token as issued, in ms (to plan the next refresh). */
  lifetimeMs?: number;
  /** The provider's session id (the ID token's `sid`): a back-channel logout may name it. */
  sid?: string;
}

/** What a verified back-channel logout token asks: end the sign-ins of `sub`, or of session `sid`. */
export interface LogoutRequest {
  sub?: string;
  sid?: string;
  jti: string;
}

const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** What the provider's claims say of the user; `username` is null when the claim is no Unix user name. */
export interface OidcIdentity {
  sub: string;
  username: string | null;
  groups: string[];
  displayName: string | null;
  email: string | null;
}

export type Claims = Record<string, unknown>;

/** A claim by name; a dotted name (realm_access.roles) walks into nested objects when no claim has that exact name. */
export function claimValue(claims: Claims, name: string): unknown {
  if (name in claims) return claims[name];
  let cur: unknown = claims;
  for (const part of name.split('.')) {
    if (!cur || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/**
 * Group names from a claim: a list of strings (or one string). Keycloak's group mapper with "full
 * group path" gives "/hpc/users": the leading slash is dropped, so rules name groups as "hpc/users".
 */
export function groupsFrom(value: unknown): string[] {
  const raw = Array.isArray(value) ? value : typeof value === 'string' ? [value] : [];
  const out = new Set<string>();
  for (const g of raw) {
    if (typeof g !== 'string') continue;
    const name = g.startsWith('/') ? g.slice(1) : g;
    if (name && name.length <= 256) out.add(name);
  }
  return [...out];
}

/** The cluster user name from a claim: only a valid Unix user name is taken (it names the account sessions run as). */
export function usernameFrom(value: unknown): string | null {
  return typeof value === 'string' && isValidUnixName(value) ? value : null;
}

export function identityFrom(
  claims: Claims,
  cfg: Pick<OidcSettings, 'usernameClaim' | 'groupsClaim'>,
): OidcIdentity {
  const username = usernameFrom(claimValue(claims, cfg.usernameClaim));
  const groups = groupsFrom(claimValue(claims, cfg.groupsClaim));
  const str = (v: unknown) => (typeof v === 'string' && v.length <= 256 ? v : null);
  return {
    sub: String(claims.sub ?? ''),
    username,
    groups,
    displayName: str(claims.name),
    email: str(claims.email),
  };
}

/**
 * Where to go after sign-in: a path on this site only. Anything that a browser could read as another
 * origin (//host, /\host, schemes, control characters) becomes "/".
 */
export function safeNext(next: unknown): string {
  if (typeof next !== 'string' || next.length === 0 || next.length > 2000) return '/';
  if (!next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return '/';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses
  if (/[\u0000-\u001f\u007f\\]/.test(next)) return '/';
  try {
    const u = new URL(next, 'http://gateway.invalid');
    if (u.origin !== 'http://gateway.invalid') return '/';
    return u.pathname + u.search + u.hash;
  } catch {
    return '/';
  }
}

/**
 * When to refresh an access token: a quarter of its lifetime before it expires (between 5 s and 60 s
 * early), so a session's copy is replaced well before anything sees it expire.
 */
export function refreshDueAt(expiresAt: number | undefined, lifetimeMs: number | undefined): number | null {
  if (!expiresAt) return null;
  const margin = Math.min(60_000, Math.max(5_000, (lifetimeMs ?? 300_000) / 4));
  return expiresAt - margin;
}

/** An openid-client error in words for the audit log: the underlying check's message and code. */
export function describeOidcError(e: unknown): string {
  const err = e as { message?: string; code?: string; error?: string; cause?: unknown };
  // openid-client wraps the precise oauth4webapi error (which names the claim at fault) as `cause`.
  const inner = err.cause instanceof Error ? (err.cause as Error & { code?: string }) : undefined;
  const parts = [inner?.message ?? err.message ?? String(e)];
  if (err.error) parts.push(`error=${err.error}`);
  const code = inner?.code ?? err.code;
  if (code) parts.push(`[${code}]`);
  return parts.join(' ');
}

/** Whether a refresh failure means the provider has ended the sign-in (not a passing outage). */
export function refreshEnded(e: unknown): boolean {
  return e instanceof client.ResponseBodyError && e.status < 500;
}

function tokensFrom(
  r: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers,
  sub: string,
  previous?: OidcTokens,
): OidcTokens {
  const expiresIn = r.expiresIn();
  const lifetimeMs = expiresIn !== undefined ? expiresIn * 1000 : undefined;
  const sid = (r.claims() as Claims | undefined)?.sid;
  return {
    sid: typeof sid === 'string' ? sid : previous?.sid,
    sub,
    accessToken: r.access_token,
    // Providers that do not rotate refresh tokens send none back: keep the one we have.
    refreshToken: r.refresh_token ?? previous?.refreshToken,
    idToken: r.id_token ?? previous?.idToken,
    expiresAt: lifetimeMs !== undefined ? Date.now() + lifetimeMs : undefined,
    lifetimeMs,
  };
}

export class OidcClient {
  private configuration: client.Configuration | null = null;
  private discovering: Promise<client.Configuration> | null = null;
  private failedAt = 0;

  constructor(
    readonly cfg: OidcSettings,
    /** The redirect URI registered at the provider: <publicUrl>/api/auth/oidc/callback. */
    readonly callbackUrl: () => string,
    private readonly log: Logger,
  ) {
    if (!cfg.allowInsecure && !cfg.issuer.startsWith('https://')) {
      throw new Error('auth.oidc.issuer must be an https:// URL (allowInsecure is for test providers only)');
    }
  }

  /** The provider's metadata (discovery), fetched once; after a failure, tried again at most every 10 s. */
  async config(): Promise<client.Configuration> {
    if (this.configuration) return this.configuration;
    if (this.discovering) return this.discovering;
    if (Date.now() - this.failedAt < 10_000) throw new Error('the identity provider could not be reached');
    const auth = this.cfg.clientSecret ? client.ClientSecretBasic(this.cfg.clientSecret) : client.None();
    this.discovering = client
      .discovery(new URL(this.cfg.issuer), this.cfg.clientId, undefined, auth, {
        // ID tokens are checked against the provider's published keys even though they come over
        // the back channel (TLS alone would be allowed by the spec): a forged answer on that channel
        // (a bad proxy, a mis-trusted certificate) still cannot name a user.
        execute: [
          client.enableNonRepudiationChecks,
          ...(this.cfg.allowInsecure ? [client.allowInsecureRequests] : []),
        ],
        timeout: 10,
      })
      .then(
        (c) => {
          this.configuration = c;
          this.discovering = null;
          this.log.info({ issuer: this.cfg.issuer }, 'oidc: provider discovered');
          return c;
        },
        (e: Error) => {
          this.discovering = null;
          this.failedAt = Date.now();
          this.log.error({ issuer: this.cfg.issuer, err: e.message }, 'oidc: discovery failed');
          throw e;
        },
      );
    return this.discovering;
  }

  scopes(): string {
    return [...new Set(['openid', ...this.cfg.scopes])].join(' ');
  }

  async authorizationUrl(p: { state: string; nonce: string; codeVerifier: string }): Promise<URL> {
    const c = await this.config();
    return client.buildAuthorizationUrl(c, {
      redirect_uri: this.callbackUrl(),
      scope: this.scopes(),
      response_type: 'code',
      state: p.state,
      nonce: p.nonce,
      code_challenge: await client.calculatePKCECodeChallenge(p.codeVerifier),
      code_challenge_method: 'S256',
    });
  }

  /**
   * Exchanges the code: checks state, PKCE, the ID token (signature, issuer, audience, expiry, nonce).
   * `query` is the callback's query string; the URL is rebuilt from the configured callback, never from
   * the request's Host header.
   */
  async exchange(
    query: string,
    checks: { state: string; nonce: string; codeVerifier: string },
  ): Promise<{ tokens: OidcTokens; identity: OidcIdentity }> {
    const c = await this.config();
    const current = new URL(this.callbackUrl());
    current.search = query;
    const r = await client.authorizationCodeGrant(c, current, {
      pkceCodeVerifier: checks.codeVerifier,
      expectedState: checks.state,
      expectedNonce: checks.nonce,
      idTokenExpected: true,
    });
    const idClaims = r.claims() as Claims | undefined;
    if (!idClaims?.sub) throw new Error('the provider sent no ID token');
    let claims: Claims = { ...idClaims };
    // Providers that keep profile claims out of the ID token have them at the userinfo endpoint.
    if (
      (claimValue(claims, this.cfg.usernameClaim) === undefined ||
        claimValue(claims, this.cfg.groupsClaim) === undefined) &&
      c.serverMetadata().userinfo_endpoint
    ) {
      const info = (await client.fetchUserInfo(c, r.access_token, String(idClaims.sub))) as Claims;
      claims = { ...info, ...idClaims };
    }
    return { tokens: tokensFrom(r, String(idClaims.sub)), identity: identityFrom(claims, this.cfg) };
  }

  /** A refresh token grant. The new ID token, when the provider sends one, is checked like the first. */
  async refresh(previous: OidcTokens): Promise<{ tokens: OidcTokens; identity: OidcIdentity | null }> {
    if (!previous.refreshToken) throw new Error('no refresh token');
    const c = await this.config();
    const r = await client.refreshTokenGrant(c, previous.refreshToken);
    const claims = r.claims() as Claims | undefined;
    if (claims?.sub !== undefined && claims.sub !== previous.sub) {
      throw new Error('the refreshed ID token names another subject');
    }
    return {
      tokens: tokensFrom(r, previous.sub, previous),
      identity:
        claims && claimValue(claims, this.cfg.usernameClaim) !== undefined
          ? identityFrom(claims, this.cfg)
          : null,
    };
  }

  /** The provider's end-session URL (RP-initiated logout), when it has one and discovery has run. */
  logoutUrl(idToken: string | undefined, postLogoutRedirect: string): string | null {
    const c = this.configuration;
    if (!c?.serverMetadata().end_session_endpoint) return null;
    const params: Record<string, string> = {
      client_id: this.cfg.clientId,
      post_logout_redirect_uri: postLogoutRedirect,
    };
    if (idToken) params.id_token_hint = idToken;
    return client.buildEndSessionUrl(c, params).href;
  }

  private jwks: ReturnType<typeof jose.createRemoteJWKSet> | null = null;

  /**
   * Verifies a back-channel logout token (OpenID Connect Back-Channel Logout 1.0, section 2.6):
   * signed with the provider's published keys, our issuer and client as audience, issued in the last
   * few minutes, with the logout event, a jti, a sub or sid, and no nonce (so an ID token cannot pose
   * as one). Throws with the reason otherwise.
   */
  async verifyLogoutToken(token: string): Promise<LogoutRequest> {
    const c = await this.config();
    const meta = c.serverMetadata();
    if (!meta.jwks_uri) throw new Error('the provider publishes no keys (jwks_uri)');
    this.jwks ??= jose.createRemoteJWKSet(new URL(meta.jwks_uri), { timeoutDuration: 10_000 });
    const { payload, protectedHeader } = await jose.jwtVerify(token, this.jwks, {
      issuer: meta.issuer,
      audience: this.cfg.clientId,
      maxTokenAge: '5m',
      clockTolerance: 30,
      requiredClaims: ['iat', 'jti', 'events'],
    });
    // The spec types logout tokens "logout+jwt"; Keycloak sends "JWT". Other types (an access token's
    // "at+jwt") are refused.
    const typ = protectedHeader.typ?.toLowerCase();
    if (typ !== undefined && typ !== 'logout+jwt' && typ !== 'jwt')
      throw new Error(`wrong token type ${protectedHeader.typ}`);
    const events = payload.events as Record<string, unknown> | undefined;
    const event = events?.[BACKCHANNEL_EVENT];
    if (!event || typeof event !== 'object') throw new Error('no back-channel logout event');
    if ('nonce' in payload) throw new Error('a logout token carries no nonce');
    const sub = typeof payload.sub === 'string' ? payload.sub : undefined;
    const sid = typeof payload.sid === 'string' ? payload.sid : undefined;
    if (!sub && !sid) throw new Error('neither sub nor sid');
    return { sub, sid, jti: String(payload.jti) };
  }

  static randomState(): string {
    return client.randomState();
  }

  static randomNonce(): string {
    return client.randomNonce();
  }

  static randomVerifier(): string {
    return client.randomPKCECodeVerifier();
  }
}
