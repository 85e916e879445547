import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  AuthMethods,
  LoginBody,
  LogoutBody,
  LogoutReply,
  type Me,
  MeReply,
  SignedInReply,
} from '../../api/auth.ts';
import { admit } from '../../auth/accounts.ts';
import { type PasswordSignIn, SignInUnavailable } from '../../auth/sign-in.ts';
import { toUser, type User, updateUser } from '../../db/users.ts';
import { clientIp, requireUser } from '../auth.ts';
import { type AppContext, SESSION_COOKIE } from '../context.ts';
import { spec } from '../route-spec.ts';

export function setSessionCookie(reply: FastifyReply, ctx: AppContext, token: string): void {
  const maxAge = Math.round(ctx.cfg.auth.sessionHours * 3600);
  const parts = [`${SESSION_COOKIE}=${token}`, 'Path=/', 'HttpOnly', 'SameSite=Lax', `Max-Age=${maxAge}`];
  if (ctx.secureCookies) parts.push('Secure');
  reply.header('set-cookie', parts.join('; '));
}

export function clearSessionCookie(reply: FastifyReply, ctx: AppContext): void {
  const parts = [`${SESSION_COOKIE}=`, 'Path=/', 'HttpOnly', 'SameSite=Lax', 'Max-Age=0'];
  if (ctx.secureCookies) parts.push('Secure');
  reply.header('set-cookie', parts.join('; '));
}

/** Ends any current browser session and starts a new one (a fresh token: no session fixation). */
export async function signIn(
  req: FastifyRequest,
  reply: FastifyReply,
  ctx: AppContext,
  user: User,
  data: Record<string, unknown> = {},
): Promise<{ csrfToken: string; sessionId: string }> {
  if (req.webSession) await endWebSessions(ctx, req.webSession.user.id, req.webSession.id);
  const { token, session } = await ctx.webSessions.create(user.id, data);
  await updateUser(ctx.db, user.id, { lastLoginAt: Date.now() });
  setSessionCookie(reply, ctx, token);
  return { csrfToken: session.csrfToken, sessionId: session.id };
}

type SignInResult = 'ok' | 'refused' | 'failed' | 'rate_limited' | 'unavailable';

/**
 * Counts a sign-in attempt by method and result (`null`: not counted, e.g. a disabled account) and puts it
 * in the audit log, under the signed-in user or the name that was tried.
 */
export async function recordSignIn(
  ctx: AppContext,
  who: User | string | null,
  a: { method: string; result: SignInResult | null; ip: string; details: Record<string, unknown> },
): Promise<void> {
  if (a.result) ctx.metrics.signIns.inc({ method: a.method, result: a.result });
  const user = typeof who === 'object' ? who : null;
  await ctx.audit.record({
    actorUserId: user?.id,
    actor: user ? user.username : (who as string | null),
    action: 'signin',
    ip: a.ip,
    ok: a.result === 'ok',
    details: a.details,
  });
}

/**
 * Ends one browser session (or every one of the user's) and closes the WebSockets that were opened
 * through the proxy with it, so no open tab keeps a way in after sign-out.
 */
export async function endWebSessions(ctx: AppContext, userId: number, sessionId?: string): Promise<void> {
  if (sessionId) await ctx.webSessions.destroy(sessionId);
  else await ctx.webSessions.destroyAllFor(userId);
  ctx.proxy.closeWebSockets(userId, sessionId);
  for (const f of signOutListeners(ctx)) f(userId, sessionId);
}

/**
 * A browser session ended on another gateway sharing the database (src/server/shared.ts): the WebSockets
 * and event streams opened with it here close too.
 */
export function signedOutElsewhere(ctx: AppContext, userId: number, sessionId: string): void {
  ctx.proxy.closeWebSockets(userId, sessionId);
  for (const f of signOutListeners(ctx)) f(userId, sessionId);
}

type SignOutListener = (userId: number, sessionId?: string) => void;

function signOutListeners(ctx: AppContext): Set<SignOutListener> {
  let s = ctx.services.get('auth.signOutListeners') as Set<SignOutListener> | undefined;
  if (!s) {
    s = new Set();
    ctx.services.set('auth.signOutListeners', s);
  }
  return s;
}

/**
 * Calls `f` when browser sessions end (sessionId undefined: all of the user's), so long-lived
 * streams opened with them can close. Returns the function that unregisters it.
 */
export function onSignOut(ctx: AppContext, f: SignOutListener): () => void {
  const s = signOutListeners(ctx);
  s.add(f);
  return () => s.delete(f);
}

export function meView(user: User): Me {
  return {
    id: user.id,
    username: user.username,
    unixUser: user.unixUser,
    displayName: user.displayName,
    isAdmin: user.isAdmin,
    groups: user.groups,
    source: user.source,
  };
}

export function registerAuthRoutes(fastify: FastifyInstance, ctx: AppContext): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const passwordMethods = ctx.signInMethods.filter((m): m is PasswordSignIn => m.kind === 'password');
  const redirect = ctx.signInMethods.find((m) => m.kind === 'redirect');
  app.get(
    '/api/auth/methods',
    spec('How the sign-in page offers to sign in', AuthMethods),
    async (): Promise<AuthMethods> => ({
      local: passwordMethods.length > 0,
      passwordLabel: passwordMethods.map((m) => m.start().form.label).find((l) => l !== null) ?? 'Sign in',
      oidc: redirect ? { label: redirect.label, url: `/api/auth/${redirect.name}/start` } : null,
    }),
  );

  // Before sign-in there is no CSRF token: the Origin check (login CSRF) is the route's, in onRequest.
  // Sign-in attempts have their own limits, per address and per user name.
  const loginRoute = {
    config: { csrf: 'origin', rateLimit: false },
    schema: {
      summary: 'Sign in with a user name and password (local accounts, then the directory)',
      body: LoginBody,
      reply: { 200: SignedInReply },
    },
  } as const;
  app.post('/api/login', loginRoute, async (req, reply) => {
    const ip = clientIp(req);
    const username = req.body?.username?.trim() ?? '';
    const password = req.body?.password ?? '';
    if (!username || !password || username.length > 100 || password.length > 1000) {
      return reply
        .code(400)
        .send({ error: 'enter a user name and a password', field: username ? 'password' : 'username' });
    }
    const waitIp = ctx.loginLimiter.hit(`ip:${ip}`);
    const waitUser = ctx.loginLimiter.hit(`user:${username.toLowerCase()}`);
    const wait = Math.max(waitIp, waitUser);
    if (wait > 0) {
      await recordSignIn(ctx, username, {
        method: 'password',
        result: 'rate_limited',
        ip,
        details: { why: 'rate limited' },
      });
      reply.header('retry-after', String(wait));
      return reply.code(429).send({ error: `too many sign-in attempts; try again in ${wait} s` });
    }
    let unavailable = false;
    for (const method of passwordMethods) {
      let signedIn: Awaited<ReturnType<typeof method.finish>>;
      try {
        signedIn = await method.finish({ username, password });
      } catch (e) {
        if (!(e instanceof SignInUnavailable)) throw e;
        unavailable = true;
        continue;
      }
      if (!signedIn) continue;
      const id = signedIn.identity;
      const admission = await admit(ctx.db, ctx.cfg.auth, id);
      if (!admission.admitted) {
        const refuse = async (details: Record<string, unknown>, error: string) => {
          const result = admission.refusal === 'disabled' ? null : 'refused';
          await recordSignIn(ctx, id.username, { method: method.name, result, ip, details });
          return reply.code(403).send({ error });
        };
        switch (admission.refusal) {
          case 'conflict':
            return refuse(
              {
                method: method.name,
                why: `an account of source "${admission.existingSource}" has this name`,
              },
              'Sign-in refused: this name belongs to another kind of account',
            );
          case 'disabled':
            return refuse(
              { method: method.name, why: 'account disabled' },
              'Sign-in refused: this account is disabled',
            );
          case 'not_allowed':
            return refuse({ why: admission.reason }, `Sign-in refused: ${admission.reason}`);
        }
      }
      const user = { ...toUser(admission.row), groups: id.groups };
      const { csrfToken } = await signIn(req, reply, ctx, user);
      ctx.loginLimiter.reset(`user:${username.toLowerCase()}`);
      await recordSignIn(ctx, user, {
        method: method.name,
        result: 'ok',
        ip,
        details: { method: method.name },
      });
      return { user: meView(user), csrfToken } satisfies SignedInReply;
    }
    await recordSignIn(ctx, username, {
      method: 'password',
      result: unavailable ? 'unavailable' : 'failed',
      ip,
      details: { why: unavailable ? 'a sign-in provider is unavailable' : 'wrong user name or password' },
    });
    if (unavailable) {
      return reply
        .code(503)
        .send({ error: 'Sign-in is unavailable: the directory cannot be reached; try again later' });
    }
    return reply.code(401).send({ error: 'wrong user name or password' });
  });

  app.post(
    '/api/logout',
    spec('Sign out this browser, or every browser of the user (`everywhere`)', LogoutReply, {
      body: LogoutBody,
    }),
    async (req, reply): Promise<LogoutReply> => {
      const everywhere = req.body?.everywhere === true;
      if (req.webSession) {
        await endWebSessions(ctx, req.webSession.user.id, everywhere ? undefined : req.webSession.id);
        await ctx.audit.record({
          actorUserId: req.webSession.user.id,
          actor: req.webSession.user.username,
          action: 'signout',
          ip: clientIp(req),
          ok: true,
          details: { everywhere },
        });
      }
      clearSessionCookie(reply, ctx);
      // The sign-in may go on at its source (an identity provider): the browser is sent there to end it too.
      const data = req.webSession?.data ?? {};
      const logoutUrl =
        ctx.signInMethods
          .filter((m) => data[m.name] !== undefined)
          .map((m) => m.signOutUrl(data[m.name], `${ctx.publicUrl()}/login`))
          .find((u) => u !== null) ?? null;
      return { ok: true, logoutUrl };
    },
  );

  app.get(
    '/api/me',
    spec('Who is calling, and the CSRF token of this browser', MeReply),
    async (req, reply): Promise<MeReply> => {
      const user = requireUser(req);
      reply.header('cache-control', 'no-store');
      return { user: meView(user), csrfToken: req.webSession?.csrfToken ?? null };
    },
  );
}
