// Who is calling: a signed-in browser (cookie + CSRF header on writes) or a script (scoped API token).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ErrorReply, FieldProblem } from '../api/common.ts';
import { hashToken, safeEqual } from '../auth/secrets.ts';
import { type ApiScope, scopeAllows } from '../auth/tokens.ts';
import type { WebSession } from '../auth/web-sessions.ts';
import { findUserById, toUser, type User } from '../db/users.ts';
import { type AppContext, SESSION_COOKIE } from './context.ts';
import { sendRefusal, wantsPage } from './networks.ts';
import { policyOf, registerRoutePolicy } from './route-policy.ts';

declare module 'fastify' {
  interface FastifyRequest {
    user: User | null;
    webSession: WebSession | null;
    /** Scopes of the API token used; null for browser sessions (which may do everything their user may). */
    tokenScopes: string[] | null;
  }
}

export { API_SCOPES, type ApiScope } from '../auth/tokens.ts';

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field?: string,
    /** Every problem, for forms that show each on its field. */
    readonly errors?: FieldProblem[],
  ) {
    super(message);
  }
}

/** The JSON body of an HttpError: `{error, field?, errors?}`, the shape the web UI reads (src/web/api.ts). */
export function errorBody(e: HttpError): ErrorReply {
  return {
    error: e.message,
    ...(e.field ? { field: e.field } : {}),
    ...(e.errors?.length ? { errors: e.errors } : {}),
  };
}

export function cookieOf(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function sameOriginRequest(req: FastifyRequest, ctx: AppContext): boolean {
  const origin = req.headers.origin;
  if (!origin) return true;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return false;
  }
  const pub = new URL(ctx.publicUrl()).host;
  return host === req.headers.host || host === pub;
}

export function registerAuth(app: FastifyInstance, ctx: AppContext): void {
  app.decorateRequest('user', null);
  app.decorateRequest('webSession', null);
  app.decorateRequest('tokenScopes', null);
  registerRoutePolicy(app);

  // Every check here reads the policy of the route the router matched (src/server/route-policy.ts),
  // never the URL; a request no route matched reaches no handler and is only identified.
  app.addHook('onRequest', async (req, reply) => {
    const policy = policyOf(req);
    // Before anything is looked up: an address the site does not let in learns nothing else.
    if (policy?.sourceNetworks !== false) {
      const why = ctx.networks.refusal(req.ip);
      if (why) {
        if (policy?.api || !wantsPage(req.raw)) return reply.code(403).send({ error: why });
        reply.hijack();
        sendRefusal(req.raw, reply.raw, why);
        return reply;
      }
    }
    const authz = req.headers.authorization;
    if (authz?.startsWith('Bearer atr_') && policy?.apiTokens !== false) {
      const token = authz.slice('Bearer '.length).trim();
      const row = await ctx.db
        .selectFrom('api_tokens')
        .selectAll()
        .where('token_hash', '=', hashToken(token))
        .executeTakeFirst();
      const now = Date.now();
      if (!row || row.revoked_at || (row.expires_at && row.expires_at < now)) {
        return reply.code(401).send({ error: 'invalid or revoked API token' });
      }
      const u = await findUserById(ctx.db, row.user_id);
      if (!u || u.disabled) return reply.code(401).send({ error: 'invalid or revoked API token' });
      req.user = toUser(u);
      req.tokenScopes = JSON.parse(row.scopes) as string[];
      if (!row.last_used_at || now - row.last_used_at > 60_000) {
        await ctx.db.updateTable('api_tokens').set({ last_used_at: now }).where('id', '=', row.id).execute();
      }
      if (policy?.access === 'admin') requireAdmin(req);
      return;
    }
    const token = cookieOf(req.headers.cookie, SESSION_COOKIE);
    const ws = token ? await ctx.webSessions.lookup(token) : null;
    if (ws) {
      req.webSession = ws;
      req.user = ws.user;
    }
    if (!policy) return;
    if (UNSAFE.has(req.method) && policy.csrf !== false) {
      if (!sameOriginRequest(req, ctx))
        return reply.code(403).send({ error: 'cross-origin request refused' });
      if (ws && policy.csrf === true) {
        const sent = req.headers['x-csrf-token'];
        if (typeof sent !== 'string' || !safeEqual(sent, ws.csrfToken)) {
          return reply.code(403).send({ error: 'missing or wrong CSRF token; reload the page' });
        }
      }
    }
    if (policy.access === 'admin') requireAdmin(req);
  });
}

export function requireUser(req: FastifyRequest, scope?: ApiScope): User {
  if (!req.user) throw new HttpError(401, 'sign in first');
  if (!scopeAllows(req.tokenScopes, scope, req.method)) {
    throw new HttpError(403, `this API token lacks the "${scope}" scope`);
  }
  return req.user;
}

/** Routes that manage credentials (API tokens) need a signed-in browser, not a token. */
export function requireBrowser(req: FastifyRequest): User {
  const u = requireUser(req);
  if (req.tokenScopes || !req.webSession) throw new HttpError(403, 'only a signed-in browser may do this');
  return u;
}

export function requireAdmin(req: FastifyRequest): User {
  const u = requireUser(req);
  // Admin work needs a browser session: API tokens are not admin credentials.
  if (!u.isAdmin || req.tokenScopes) throw new HttpError(403, 'administrators only');
  return u;
}

export function sendError(reply: FastifyReply, e: unknown): FastifyReply {
  if (e instanceof HttpError) return reply.code(e.status).send(errorBody(e));
  throw e;
}

export function clientIp(req: FastifyRequest): string {
  return req.ip;
}
