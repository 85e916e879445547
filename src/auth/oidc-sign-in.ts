// OpenID Connect as a sign-in method: the login state of each sign-in under way (state, nonce, PKCE
// verifier, return path; single use, bound to the browser that started it), the callback's checks,
// token refresh, the end-session URL and back-channel logout tokens. It talks to the provider through
// OidcClient (oidc.ts); src/server/routes/oidc.ts maps HTTP onto it.
import type { Logger } from 'pino';
import type { Db } from '../db/index.ts';
import {
  describeOidcError,
  type LogoutRequest,
  OidcClient,
  type OidcIdentity,
  type OidcSettings,
  type OidcTokens,
  refreshDueAt,
  refreshEnded,
  safeNext,
} from './oidc.ts';
import { hashToken, newToken, safeEqual } from './secrets.ts';
import {
  type RedirectSignIn,
  type Refreshed,
  type SignedIn,
  SignInRefused,
  SignInUnavailable,
  TooManySignIns,
  type VerifiedIdentity,
} from './sign-in.ts';

const STATE_TTL_MS = 10 * 60_000;
/** Sign-ins under way at once (and logout tokens remembered); past this, new ones are refused. */
const MAX_PENDING = 10_000;
const RETRY_AFTER_OUTAGE_MS = 30_000;

export class OidcSignIn implements RedirectSignIn<OidcTokens> {
  readonly name = 'oidc';
  readonly kind = 'redirect';
  readonly expires = true;
  readonly label: string;
  readonly client: OidcClient;
  /** jti of logout tokens already acted on, with when they may be forgotten (tokens live 5 minutes). */
  private readonly usedLogoutTokens = new Map<string, number>();

  constructor(
    readonly cfg: OidcSettings,
    private readonly db: Db,
    publicUrl: () => string,
    private readonly log: Logger,
  ) {
    this.label = cfg.label;
    this.client = new OidcClient(cfg, () => `${publicUrl()}/api/auth/oidc/callback`, log);
  }

  prepare(): void {
    // Discover early so the first sign-in is quick; failures are retried on use.
    this.client.config().catch(() => undefined);
  }

  async start(p: { next?: string }): Promise<{ url: string; binder: string }> {
    const next = safeNext(p.next);
    const now = Date.now();
    await this.db.deleteFrom('oidc_login_states').where('expires_at', '<=', now).execute();
    const pending = await this.db
      .selectFrom('oidc_login_states')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    if (Number(pending.n) >= MAX_PENDING) {
      this.log.warn('too many sign-ins under way; refusing new ones for now');
      throw new TooManySignIns();
    }
    const state = OidcClient.randomState();
    const nonce = OidcClient.randomNonce();
    const codeVerifier = OidcClient.randomVerifier();
    const binder = newToken();
    let url: URL;
    try {
      url = await this.client.authorizationUrl({ state, nonce, codeVerifier });
    } catch (e) {
      this.log.error({ err: (e as Error).message }, 'cannot start a sign-in');
      throw new SignInUnavailable(this.name, 'the identity provider cannot be reached');
    }
    await this.db
      .insertInto('oidc_login_states')
      .values({
        id: hashToken(state),
        browser_hash: hashToken(binder),
        nonce,
        code_verifier: codeVerifier,
        next,
        created_at: now,
        expires_at: now + STATE_TTL_MS,
      })
      .execute();
    return { url: url.href, binder };
  }

  /** How long the browser keeps the binder cookie, in seconds: as long as the login state lives. */
  get binderMaxAge(): number {
    return STATE_TTL_MS / 1000;
  }

  async finish({
    query,
    binder,
  }: {
    query: string;
    binder: string | undefined;
  }): Promise<SignedIn<OidcTokens>> {
    const q = new URLSearchParams(query);
    const state = q.get('state') ?? '';
    if (!state || state.length > 512) throw new SignInRefused('failed', 'the callback has no state');
    // Single use: the record is deleted as it is read, so a replayed callback finds nothing.
    const pending = await this.db
      .deleteFrom('oidc_login_states')
      .where('id', '=', hashToken(state))
      .returningAll()
      .executeTakeFirst();
    if (!pending) throw new SignInRefused('expired', 'unknown or already used sign-in state');
    if (pending.expires_at <= Date.now()) throw new SignInRefused('expired', 'the sign-in took too long');
    if (!binder || !safeEqual(hashToken(binder), pending.browser_hash)) {
      // Someone else's callback URL opened in this browser (login CSRF), or cookies were lost.
      throw new SignInRefused('failed', 'the sign-in was started in another browser');
    }
    const error = q.get('error');
    if (error !== null) {
      const desc = (q.get('error_description') ?? '').slice(0, 200);
      throw new SignInRefused(
        error === 'access_denied' ? 'denied' : 'failed',
        `the provider answered ${error.slice(0, 60)} ${desc}`,
      );
    }
    let result: Awaited<ReturnType<OidcClient['exchange']>>;
    try {
      result = await this.client.exchange(query, {
        state,
        nonce: pending.nonce,
        codeVerifier: pending.code_verifier,
      });
    } catch (e) {
      const why = describeOidcError(e);
      this.log.warn({ err: why }, 'sign-in refused: the code exchange or the ID token failed checks');
      throw new SignInRefused('failed', `code exchange or ID token refused: ${why}`);
    }
    const id = result.identity;
    if (!id.username) {
      throw new SignInRefused(
        'failed',
        `the ID token has no usable "${this.cfg.usernameClaim}" claim (a Unix user name)`,
        id.sub,
      );
    }
    return {
      identity: this.verified(id, id.username),
      state: result.tokens,
      next: pending.next,
    };
  }

  async refresh(previous: OidcTokens): Promise<Refreshed<OidcTokens>> {
    if (!previous.refreshToken) return { outcome: 'unchanged' };
    let r: Awaited<ReturnType<OidcClient['refresh']>>;
    try {
      r = await this.client.refresh(previous);
    } catch (e) {
      if (refreshEnded(e)) {
        return { outcome: 'ended', why: 'the identity provider ended the sign-in (refresh refused)' };
      }
      this.log.warn({ err: describeOidcError(e) }, 'token refresh failed; trying again soon');
      return { outcome: 'retry', retryAt: Date.now() + RETRY_AFTER_OUTAGE_MS };
    }
    const id = r.identity;
    if (!id) return { outcome: 'renewed', state: r.tokens, identity: null };
    if (!id.username) return { outcome: 'ended', why: 'the refreshed identity names another user' };
    return {
      outcome: 'renewed',
      state: r.tokens,
      identity: this.verified(id, id.username),
    };
  }

  private verified(id: OidcIdentity, username: string): VerifiedIdentity {
    const { groups, displayName, email } = id;
    return { username, unixUser: username, groups, displayName, email, source: this.name };
  }

  refreshAt(t: OidcTokens): number | null {
    return t.refreshToken ? refreshDueAt(t.expiresAt, t.lifetimeMs) : null;
  }

  signOutUrl(t: OidcTokens | undefined, returnTo: string): string | null {
    if (!t) return null;
    return this.client.logoutUrl(t.idToken, returnTo);
  }

  /**
   * A back-channel logout token checked (oidc.ts) and used up: a replayed one is refused. Throws with
   * the reason otherwise.
   */
  async acceptLogoutToken(token: string): Promise<LogoutRequest> {
    let request: LogoutRequest;
    try {
      request = await this.client.verifyLogoutToken(token);
    } catch (e) {
      throw new Error(`logout token refused: ${describeOidcError(e)}`);
    }
    const now = Date.now();
    for (const [k, until] of this.usedLogoutTokens) if (until <= now) this.usedLogoutTokens.delete(k);
    if (this.usedLogoutTokens.has(request.jti)) throw new Error('logout token replayed');
    if (this.usedLogoutTokens.size >= MAX_PENDING) throw new Error('too many logout tokens at once');
    this.usedLogoutTokens.set(request.jti, now + 6 * 60_000);
    return request;
  }

  /** Whether a logout request names this sign-in: by the provider's session id when given, else by subject. */
  static endedBy(request: LogoutRequest, t: OidcTokens): boolean {
    if (request.sid) return t.sid === request.sid && !(request.sub && t.sub !== request.sub);
    return t.sub === request.sub;
  }

  /**
   * A current access token among a user's sign-ins: the one that lasts longest, renewed (`refresh`)
   * when it expires within 15 s; null when none is left.
   */
  static async currentTokens(
    signIns: { id: string; tokens: OidcTokens }[],
    refresh: (id: string) => Promise<OidcTokens | null>,
  ): Promise<OidcTokens | null> {
    const now = Date.now();
    const last = (t: OidcTokens) => t.expiresAt ?? Number.MAX_SAFE_INTEGER;
    for (const s of [...signIns].sort((a, b) => last(b.tokens) - last(a.tokens))) {
      if (!s.tokens.expiresAt || s.tokens.expiresAt - now > 15_000) return s.tokens;
      const fresh = await refresh(s.id);
      if (fresh?.expiresAt && fresh.expiresAt > now) return fresh;
    }
    return null;
  }
}
