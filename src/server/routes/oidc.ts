// OpenID Connect routes, mapping HTTP onto the OIDC sign-in method (src/auth/oidc-sign-in.ts): start
// (redirect to the provider, with the cookie that binds the sign-in to this browser), callback, back-
// channel logout (the provider ends our sign-ins), and the endpoint agents use to keep a session's
// access token fresh.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AgentTokenBody, AgentTokenReply } from '../../api/agent.ts';
import {
  BackchannelLogoutBody,
  OidcCallbackQuery,
  type OidcErrorCode,
  OidcStartQuery,
} from '../../api/auth.ts';
import { NoBody } from '../../api/common.ts';
import { admit } from '../../auth/accounts.ts';
import type { OidcTokens } from '../../auth/oidc.ts';
import { OidcSignIn } from '../../auth/oidc-sign-in.ts';
import { SignInRefused, SignInUnavailable, TooManySignIns } from '../../auth/sign-in.ts';
import { findUserById, toUser } from '../../db/users.ts';
import { clientIp, cookieOf } from '../auth.ts';
import type { AppContext } from '../context.ts';
import { AGENT_ROUTE } from '../route-policy.ts';
import { spec } from '../route-spec.ts';
import type { SignInRefresher } from '../sign-in-refresh.ts';
import { endWebSessions, recordSignIn, signIn } from './auth.ts';

export const OIDC_COOKIE = 'atrium_oidc';
const COOKIE_PATH = '/api/auth/oidc/';

// Error codes the login page may show (`/login?error=<code>`): a type of the API contract.
export type { OidcErrorCode };

function bearer(req: FastifyRequest): string {
  const h = req.headers.authorization ?? '';
  return h.startsWith('Bearer ') ? h.slice(7).trim() : '';
}

/** The OIDC routes, when the method is configured; `refresher` keeps its tokens fresh. */
export function registerOidc(app: FastifyInstance, ctx: AppContext, refresher: SignInRefresher | null): void {
  const oidc = ctx.signInMethods.find((m): m is OidcSignIn => m instanceof OidcSignIn);
  if (!oidc || !refresher) return;
  const cfg = oidc.cfg;
  const log = ctx.log.child({ part: 'oidc' });

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
    let started: { url: string; binder: string };
    try {
      started = await oidc.start({ next: (req.query as OidcStartQuery).next });
    } catch (e) {
      if (e instanceof TooManySignIns) {
        return reply.code(503).header('retry-after', '60').send({ error: e.message });
      }
      if (!(e instanceof SignInUnavailable)) throw e;
      return reply.header('cache-control', 'no-store').redirect('/login?error=unavailable');
    }
    reply.header('set-cookie', cookie(started.binder, oidc.binderMaxAge));
    reply.header('cache-control', 'no-store');
    return reply.redirect(started.url);
  });

  app.get(
    '/api/auth/oidc/callback',
    spec(
      "The provider's redirect back: signs in and redirects to where the sign-in started",
      NoBody('Signed in: to `next` of the start; refused: to `/login?error=<code>` (an OidcErrorCode).'),
      { querystring: OidcCallbackQuery },
      302,
    ),
    async (req, reply) => {
      const ip = clientIp(req);
      const query = req.url.includes('?') ? req.url.slice(req.url.indexOf('?') + 1) : '';
      reply.header('cache-control', 'no-store');
      reply.header('set-cookie', cookie('', 0));
      const fail = async (code: OidcErrorCode, why: string, actor?: string) => {
        await recordSignIn(ctx, actor ?? null, {
          method: 'oidc',
          result: code === 'not_allowed' ? 'refused' : 'failed',
          ip,
          details: { method: 'oidc', why: why.slice(0, 300) },
        });
        return reply.redirect(`/login?error=${code}`);
      };

      let signedIn: Awaited<ReturnType<OidcSignIn['finish']>>;
      try {
        signedIn = await oidc.finish({ query, binder: cookieOf(req.headers.cookie, OIDC_COOKIE) });
      } catch (e) {
        if (!(e instanceof SignInRefused)) throw e;
        return fail(e.code, e.why, e.actor);
      }
      const id = signedIn.identity;
      const admission = await admit(ctx.db, ctx.cfg.auth, id);
      if (!admission.admitted) {
        switch (admission.refusal) {
          case 'conflict':
            return fail('conflict', 'a local account has this name; it is not taken over', id.username);
          case 'disabled':
            return fail('disabled', 'the account is disabled', id.username);
          case 'not_allowed':
            return fail('not_allowed', admission.reason ?? 'not allowed', id.username);
        }
      }
      const user = toUser(admission.row);
      const tokens = signedIn.state!;
      const { sessionId } = await signIn(req, reply, ctx, user, { [oidc.name]: tokens });
      await ctx.webSessions.setRefreshAt(sessionId, oidc.refreshAt(tokens));
      ctx.webSessions.invalidateUser(user.id);
      await recordSignIn(ctx, user, {
        method: 'oidc',
        result: 'ok',
        ip,
        details: { method: 'oidc', groups: id.groups, admin: user.isAdmin },
      });
      return reply.redirect(signedIn.next ?? '/');
    },
  );

  // ---- back-channel logout: the provider tells us a sign-in ended there ---------------------------

  app.register(async (scope) => {
    // Providers POST a form (application/x-www-form-urlencoded) with one field, logout_token.
    scope.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string', bodyLimit: 16_384 },
      (_req, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))),
    );
    // The provider's signed logout token is the credential: no browser, so no CSRF token, and the
    // provider's server is no user: the site's source networks do not apply.
    const backchannel = {
      config: { csrf: false, sourceNetworks: false },
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
      let request: Awaited<ReturnType<OidcSignIn['acceptLogoutToken']>>;
      try {
        request = await oidc.acceptLogoutToken(token);
      } catch (e) {
        return refuse((e as Error).message);
      }
      const ended: { userId: number; sessionId: string }[] = [];
      for (const row of await ctx.webSessions.rows({ dataContains: `"${oidc.name}"` })) {
        const t = (JSON.parse(row.data) as Record<string, OidcTokens | undefined>)[oidc.name];
        if (t && OidcSignIn.endedBy(request, t)) ended.push({ userId: row.user_id, sessionId: row.id });
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

  // ---- the user's access token, for sessions -------------------------------------------------------

  /** A current access token of the user's (refreshed when about to expire), or null when signed out. */
  const tokenForUser = async (userId: number): Promise<OidcTokens | null> => {
    const signIns = (await ctx.webSessions.rows({ userId })).flatMap((r) => {
      const tokens = (JSON.parse(r.data) as Record<string, OidcTokens | undefined>)[oidc.name];
      return tokens ? [{ id: r.id, tokens }] : [];
    });
    return OidcSignIn.currentTokens(
      signIns,
      async (id) => (await refresher.refreshSession(id)) as OidcTokens | null,
    );
  };

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
    const due = oidc.refreshAt(t);
    const refreshInSeconds = due ? Math.max(2, Math.ceil((due - Date.now()) / 1000) + 2) : 300;
    return {
      accessToken: t.accessToken,
      expiresAt: t.expiresAt ?? null,
      refreshInSeconds,
    } satisfies AgentTokenReply;
  });
}
