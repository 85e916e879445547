// OpenID Connect routes: start (redirect to the provider), callback (single-use login state, bound to
// the browser that started it), background refresh of the provider's tokens, the provider's logout
// URL for POST /api/logout, back-channel logout (the provider ends our sign-ins), and the endpoint
// agents use to keep a session's access token fresh.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AgentTokenBody, AgentTokenReply } from '../../api/agent.ts';
import {
  BackchannelLogoutBody,
  OidcCallbackQuery,
  type OidcErrorCode,
  OidcStartQuery,
} from '../../api/auth.ts';
import { NoBody } from '../../api/common.ts';
import { decideAccess } from '../../auth/access.ts';
import {
  describeOidcError,
  OidcClient,
  type OidcTokens,
  refreshDueAt,
  refreshEnded,
  safeNext,
} from '../../auth/oidc.ts';
import { hashToken, newToken, safeEqual } from '../../auth/secrets.ts';
import { findUserById, findUserByName, toUser, upsertExternalUser } from '../../db/users.ts';
import { clientIp, cookieOf } from '../auth.ts';
import type { AppContext } from '../context.ts';
import { AGENT_ROUTE } from '../route-policy.ts';
import { endWebSessions, signIn } from './auth.ts';

export const OIDC_COOKIE = 'atrium_oidc';
const COOKIE_PATH = '/api/auth/oidc/';
const STATE_TTL_MS = 10 * 60_000;
/** Sign-ins under way at once; past this, /start answers 503 (bounded table under a flood). */
const MAX_PENDING = 10_000;
const REFRESH_TICK_MS = 5_000;
const RETRY_AFTER_OUTAGE_MS = 30_000;

// Error codes the login page may show (`/login?error=<code>`): a type of the API contract.
export type { OidcErrorCode };

export interface OidcRuntime {
  client: OidcClient;
  start(): void;
  stop(): void;
  /** A current access token of the user's (refreshed when about to expire), or null when signed out. */
  tokenForUser(userId: number): Promise<OidcTokens | null>;
}

function bearer(req: FastifyRequest): string {
  const h = req.headers.authorization ?? '';
  return h.startsWith('Bearer ') ? h.slice(7).trim() : '';
}

export function registerOidc(app: FastifyInstance, ctx: AppContext): OidcRuntime | null {
  const cfg = ctx.cfg.auth.oidc;
  if (!cfg) return null;
  const log = ctx.log.child({ part: 'oidc' });
  const oidc = new OidcClient(cfg, () => `${ctx.publicUrl()}/api/auth/oidc/callback`, log);

  const cookie = (value: string, maxAge: number) => {
    const parts = [
      `${OIDC_COOKIE}=${value}`,
      `Path=${COOKIE_PATH}`,
      'HttpOnly',
      'SameSite=Lax',
      `Max-Age=${maxAge}`,
    ];
    if (ctx.secureCookies) parts.push('Secure');
    return parts.join('; ');
  };

  const start = {
    schema: {
      summary: 'Sign in with the identity provider: redirects there',
      querystring: OidcStartQuery,
      reply: { 302: NoBody('To the provider, or to /login?error=unavailable when it cannot be reached.') },
    },
  };
  app.get('/api/auth/oidc/start', start, async (req, reply) => {
    const next = safeNext((req.query as Record<string, unknown>).next);
    const now = Date.now();
    await ctx.db.deleteFrom('oidc_login_states').where('expires_at', '<=', now).execute();
    const pending = await ctx.db
      .selectFrom('oidc_login_states')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    if (Number(pending.n) >= MAX_PENDING) {
      log.warn('too many sign-ins under way; refusing new ones for now');
      return reply
        .code(503)
        .header('retry-after', '60')
        .send({ error: 'too many sign-ins under way; try again soon' });
    }
    const state = OidcClient.randomState();
    const nonce = OidcClient.randomNonce();
    const codeVerifier = OidcClient.randomVerifier();
    const binder = newToken();
    let url: URL;
    try {
      url = await oidc.authorizationUrl({ state, nonce, codeVerifier });
    } catch (e) {
      log.error({ err: (e as Error).message }, 'cannot start a sign-in');
      return reply.header('cache-control', 'no-store').redirect('/login?error=unavailable');
    }
    await ctx.db
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
    reply.header('set-cookie', cookie(binder, STATE_TTL_MS / 1000));
    reply.header('cache-control', 'no-store');
    return reply.redirect(url.href);
  });

  const callback = {
    schema: {
      summary: "The provider's redirect back: signs in and redirects to where the sign-in started",
      querystring: OidcCallbackQuery,
      reply: {
        302: NoBody(
          'Signed in: to `next` of the start; refused: to `/login?error=<code>` (an OidcErrorCode).',
        ),
      },
    },
  };
  app.get('/api/auth/oidc/callback', callback, async (req, reply) => {
    const ip = clientIp(req);
    const q = (req.query ?? {}) as Record<string, unknown>;
    const rawQuery = req.url.includes('?') ? req.url.slice(req.url.indexOf('?') + 1) : '';
    reply.header('cache-control', 'no-store');
    reply.header('set-cookie', cookie('', 0));
    const fail = async (code: OidcErrorCode, why: string, actor?: string) => {
      ctx.metrics.signIns.inc({ method: 'oidc', result: code === 'not_allowed' ? 'refused' : 'failed' });
      await ctx.audit.record({
        actor: actor ?? null,
        action: 'signin',
        ip,
        ok: false,
        details: { method: 'oidc', why: why.slice(0, 300) },
      });
      return reply.redirect(`/login?error=${code}`);
    };

    const state = typeof q.state === 'string' ? q.state : '';
    if (!state || state.length > 512) return fail('failed', 'the callback has no state');
    // Single use: the record is deleted as it is read, so a replayed callback finds nothing.
    const pending = await ctx.db
      .deleteFrom('oidc_login_states')
      .where('id', '=', hashToken(state))
      .returningAll()
      .executeTakeFirst();
    if (!pending) return fail('expired', 'unknown or already used sign-in state');
    if (pending.expires_at <= Date.now()) return fail('expired', 'the sign-in took too long');
    const binder = cookieOf(req.headers.cookie, OIDC_COOKIE);
    if (!binder || !safeEqual(hashToken(binder), pending.browser_hash)) {
      // Someone else's callback URL opened in this browser (login CSRF), or cookies were lost.
      return fail('failed', 'the sign-in was started in another browser');
    }
    if (typeof q.error === 'string') {
      const desc = typeof q.error_description === 'string' ? q.error_description.slice(0, 200) : '';
      return fail(
        q.error === 'access_denied' ? 'denied' : 'failed',
        `the provider answered ${q.error.slice(0, 60)} ${desc}`,
      );
    }
    let result: Awaited<ReturnType<OidcClient['exchange']>>;
    try {
      result = await oidc.exchange(rawQuery, {
        state,
        nonce: pending.nonce,
        codeVerifier: pending.code_verifier,
      });
    } catch (e) {
      const why = describeOidcError(e);
      log.warn({ err: why, ip }, 'sign-in refused: the code exchange or the ID token failed checks');
      return fail('failed', `code exchange or ID token refused: ${why}`);
    }
    const id = result.identity;
    if (!id.username) {
      return fail(
        'failed',
        `the ID token has no usable "${cfg.usernameClaim}" claim (a Unix user name)`,
        id.sub,
      );
    }
    const existing = await findUserByName(ctx.db, id.username);
    if (existing && existing.source === 'local') {
      return fail('conflict', 'a local account has this name; it is not taken over', id.username);
    }
    if (existing?.disabled) return fail('disabled', 'the account is disabled', id.username);
    const decision = decideAccess(id.username, id.groups, ctx.cfg.auth);
    if (!decision.allowed) return fail('not_allowed', decision.reason ?? 'not allowed', id.username);
    const row = await upsertExternalUser(ctx.db, {
      username: id.username,
      unixUser: id.username,
      source: 'oidc',
      groups: id.groups,
      isAdmin: decision.isAdmin,
      displayName: id.displayName,
      email: id.email,
    });
    const user = toUser(row);
    const { sessionId } = await signIn(req, reply, ctx, user, { oidc: result.tokens });
    await ctx.webSessions.setRefreshAt(sessionId, refreshAt(result.tokens));
    ctx.webSessions.invalidateUser(user.id);
    ctx.metrics.signIns.inc({ method: 'oidc', result: 'ok' });
    await ctx.audit.record({
      actorUserId: user.id,
      actor: user.username,
      action: 'signin',
      ip,
      ok: true,
      details: { method: 'oidc', groups: id.groups, admin: decision.isAdmin },
    });
    return reply.redirect(pending.next);
  });

  ctx.services.set('oidc.logoutUrl', (req: FastifyRequest): string | null => {
    const t = req.webSession?.data?.oidc as OidcTokens | undefined;
    if (!t) return null;
    return oidc.logoutUrl(t.idToken, `${ctx.publicUrl()}/login`);
  });

  // ---- back-channel logout: the provider tells us a sign-in ended there ---------------------------

  /** jti of logout tokens already acted on, with when they may be forgotten (tokens live 5 minutes). */
  const usedLogoutTokens = new Map<string, number>();

  app.register(async (scope) => {
    // Providers POST a form (application/x-www-form-urlencoded) with one field, logout_token.
    scope.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string', bodyLimit: 16_384 },
      (_req, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))),
    );
    // The provider's signed logout token is the credential: no browser, so no CSRF token.
    const backchannel = {
      config: { csrf: false },
      schema: {
        summary:
          'The provider ends sign-ins (OpenID Connect Back-Channel Logout 1.0; its signed logout token)',
        body: BackchannelLogoutBody,
        consumes: ['application/x-www-form-urlencoded'],
        reply: { 200: NoBody('The sign-ins it names are ended.') },
      },
    } as const;
    scope.post('/api/auth/oidc/backchannel-logout', backchannel, async (req, reply) => {
      reply.header('cache-control', 'no-store');
      const ip = clientIp(req);
      const token = (req.body as BackchannelLogoutBody | null)?.logout_token ?? '';
      const refuse = (why: string) => {
        log.warn({ why, ip }, 'back-channel logout refused');
        return reply.code(400).send({ error: 'invalid_request', error_description: why });
      };
      if (!token || token.length > 8192) return refuse('no logout_token');
      let request: Awaited<ReturnType<OidcClient['verifyLogoutToken']>>;
      try {
        request = await oidc.verifyLogoutToken(token);
      } catch (e) {
        return refuse(`logout token refused: ${describeOidcError(e)}`);
      }
      const now = Date.now();
      for (const [k, until] of usedLogoutTokens) if (until <= now) usedLogoutTokens.delete(k);
      if (usedLogoutTokens.has(request.jti)) return refuse('logout token replayed');
      if (usedLogoutTokens.size >= MAX_PENDING) return refuse('too many logout tokens at once');
      usedLogoutTokens.set(request.jti, now + 6 * 60_000);
      // The sign-ins it names: by the provider's session id when given, else every one of the subject.
      const ended: { userId: number; sessionId: string }[] = [];
      for (const row of await ctx.webSessions.rows({ dataContains: '"oidc"' })) {
        const t = (JSON.parse(row.data) as { oidc?: OidcTokens }).oidc;
        if (!t) continue;
        if (request.sid ? t.sid === request.sid : t.sub === request.sub) {
          if (request.sid && request.sub && t.sub !== request.sub) continue;
          ended.push({ userId: row.user_id, sessionId: row.id });
        }
      }
      for (const e of ended) await endWebSessions(ctx, e.userId, e.sessionId);
      for (const userId of new Set(ended.map((e) => e.userId))) {
        const u = await findUserById(ctx.db, userId);
        await ctx.audit.record({
          actorUserId: userId,
          actor: u?.username ?? null,
          action: 'signout',
          ip,
          ok: true,
          details: { method: 'oidc', why: 'back-channel logout from the identity provider' },
        });
      }
      log.info({ sessions: ended.length, ip }, 'back-channel logout');
      return reply.code(200).send();
    });
  });

  // ---- keeping tokens fresh ------------------------------------------------------------------------

  function refreshAt(t: OidcTokens): number | null {
    return t.refreshToken ? refreshDueAt(t.expiresAt, t.lifetimeMs) : null;
  }

  const inflight = new Map<string, Promise<OidcTokens | null>>();

  /** Refreshes one browser session's tokens; null when the provider has ended the sign-in (we sign out too). */
  function refreshSession(sessionId: string): Promise<OidcTokens | null> {
    let p = inflight.get(sessionId);
    if (!p) {
      p = doRefresh(sessionId).finally(() => inflight.delete(sessionId));
      inflight.set(sessionId, p);
    }
    return p;
  }

  async function doRefresh(sessionId: string): Promise<OidcTokens | null> {
    const row = (await ctx.webSessions.rows({ id: sessionId }))[0];
    if (!row) return null;
    const data = JSON.parse(row.data) as Record<string, unknown>;
    const tokens = data.oidc as OidcTokens | undefined;
    if (!tokens?.refreshToken) {
      await ctx.webSessions.setRefreshAt(sessionId, null);
      return tokens ?? null;
    }
    const end = async (why: string) => {
      const u = await findUserById(ctx.db, row.user_id);
      await endWebSessions(ctx, row.user_id, sessionId);
      await ctx.audit.record({
        actorUserId: row.user_id,
        actor: u?.username ?? null,
        action: 'signout',
        ok: true,
        details: { method: 'oidc', why },
      });
      log.info({ user: u?.username, why }, 'signed out');
      return null;
    };
    let r: Awaited<ReturnType<OidcClient['refresh']>>;
    try {
      r = await oidc.refresh(tokens);
    } catch (e) {
      if (refreshEnded(e)) return end('the identity provider ended the sign-in (refresh refused)');
      log.warn({ err: describeOidcError(e) }, 'token refresh failed; trying again soon');
      await ctx.webSessions.setRefreshAt(sessionId, Date.now() + RETRY_AFTER_OUTAGE_MS);
      return tokens;
    }
    if (r.identity) {
      // The provider may have changed the groups: apply the access rules again.
      const user = await findUserById(ctx.db, row.user_id);
      if (!user || r.identity.username !== user.username)
        return end('the refreshed identity names another user');
      const decision = decideAccess(user.username, r.identity.groups, ctx.cfg.auth);
      if (!decision.allowed) return end(`access withdrawn: ${decision.reason}`);
      await upsertExternalUser(ctx.db, {
        username: user.username,
        unixUser: user.unix_user,
        source: 'oidc',
        groups: r.identity.groups,
        isAdmin: decision.isAdmin,
        displayName: r.identity.displayName,
        email: r.identity.email,
      });
      ctx.webSessions.invalidateUser(user.id);
    }
    await ctx.webSessions.updateData(sessionId, { ...data, oidc: r.tokens }, refreshAt(r.tokens));
    return r.tokens;
  }

  let timer: NodeJS.Timeout | undefined;
  let ticking = false;
  const tick = async () => {
    if (ticking) return;
    ticking = true;
    try {
      for (const s of await ctx.webSessions.dueForRefresh()) await refreshSession(s.id);
    } catch (e) {
      log.error({ err: (e as Error).message }, 'token refresh pass failed');
    } finally {
      ticking = false;
    }
  };

  async function tokenForUser(userId: number): Promise<OidcTokens | null> {
    const now = Date.now();
    const candidates = (await ctx.webSessions.rows({ userId }))
      .map((r) => ({ id: r.id, t: (JSON.parse(r.data) as { oidc?: OidcTokens }).oidc }))
      .filter((c): c is { id: string; t: OidcTokens } => !!c.t)
      .sort(
        (a, b) => (b.t.expiresAt ?? Number.MAX_SAFE_INTEGER) - (a.t.expiresAt ?? Number.MAX_SAFE_INTEGER),
      );
    for (const c of candidates) {
      if (!c.t.expiresAt || c.t.expiresAt - now > 15_000) return c.t;
      const fresh = await refreshSession(c.id);
      if (fresh?.expiresAt && fresh.expiresAt > now) return fresh;
    }
    return null;
  }

  // An agent (with its session's heartbeat token) asks for the user's current access token.
  const tokenRoute = {
    bodyLimit: 4096,
    config: AGENT_ROUTE,
    schema: {
      summary: "The user's current access token, for the session (its heartbeat token as Bearer)",
      body: AgentTokenBody,
      reply: { 200: AgentTokenReply },
    },
  };
  app.post('/api/agent/token', tokenRoute, async (req, reply: FastifyReply) => {
    if (!cfg.passTokensToSessions)
      return reply.code(404).send({ error: 'tokens are not passed to sessions here' });
    const b = (req.body ?? {}) as Record<string, unknown>;
    const row = await ctx.sessions.agentSession(String(b.sessionId ?? ''), bearer(req));
    if (row === 'gone') return reply.code(410).send({ error: 'session over' });
    if (!row) {
      log.warn(
        { session: String(b.sessionId ?? '').slice(0, 40), ip: clientIp(req) },
        'token request refused',
      );
      return reply.code(403).send({ error: 'refused' });
    }
    const t = await tokenForUser(row.user_id);
    if (!t) return reply.code(404).send({ error: 'no token: the user is signed out' });
    const due = refreshAt(t);
    const refreshInSeconds = due ? Math.max(2, Math.ceil((due - Date.now()) / 1000) + 2) : 300;
    return {
      accessToken: t.accessToken,
      expiresAt: t.expiresAt ?? null,
      refreshInSeconds,
    } satisfies AgentTokenReply;
  });

  return {
    client: oidc,
    start() {
      // Discover early so the first sign-in is quick; failures are retried on use.
      oidc.config().catch(() => undefined);
      timer = setInterval(() => void tick(), REFRESH_TICK_MS);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
    },
    tokenForUser,
  };
}
