// What every gateway route gets on top of helmet: a rate limit on the API, headers helmet leaves out
// (Permissions-Policy, X-Frame-Options DENY to match frame-ancestors 'none'), and no caching of API
// answers (they carry CSRF tokens, session lists, new API tokens). Which routes are limited and uncached
// is each route's policy (src/server/route-policy.ts); a request no route matched is decided on its
// path in the normal form the router saw (src/server/paths.ts), so no spelling escapes either.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { RateLimiter } from '../auth/rate-limit.ts';
import { clientIp } from './auth.ts';
import type { AppContext } from './context.ts';
import { policyOf } from './route-policy.ts';

export const PERMISSIONS_POLICY =
  'accelerometer=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=()';

/** Under the API: a matched route's policy says; an unmatched request, its (normalised) path. */
function apiRequest(req: FastifyRequest): { api: boolean; limited: boolean } {
  const policy = policyOf(req);
  if (policy) return { api: policy.api, limited: policy.rateLimit };
  const api = req.url.startsWith('/api/');
  return { api, limited: api };
}

/**
 * The field of a decoded body, query or params value that holds a NUL character (keys included), as
 * the schema errors name fields (`a.b[2]`); undefined when none does.
 */
function nulField(v: unknown, at = '', depth = 0): string | undefined {
  if (typeof v === 'string') return v.includes('\0') ? at || 'body' : undefined;
  if (v === null || typeof v !== 'object' || depth > 32) return undefined;
  for (const [k, x] of Object.entries(v)) {
    const key = Array.isArray(v) ? `${at}[${k}]` : at ? `${at}.${k}` : k;
    if (k.includes('\0')) return at || 'body';
    const f = nulField(x, key, depth + 1);
    if (f) return f;
  }
  return undefined;
}

export function registerHardening(app: FastifyInstance, ctx: AppContext): void {
  const limiter = new RateLimiter(ctx.cfg.auth.apiRequestsPerMinute, 60_000);
  ctx.services.set('api.rateLimiter', limiter);

  // Runs after the auth hook (registered first), so it knows the user or token.
  app.addHook('onRequest', async (req, reply) => {
    if (!apiRequest(req).limited) return;
    const key = req.user ? `user:${req.user.id}` : `ip:${clientIp(req)}`;
    const wait = limiter.hit(key);
    if (wait > 0) {
      reply.header('retry-after', String(wait));
      return reply.code(429).send({ error: `too many requests; try again in ${wait} s` });
    }
  });

  // PostgreSQL cannot store a NUL character in text (a query with one fails: a 500), and no field needs
  // one: refused up front on both engines, before any handler reads or writes the database.
  app.addHook('preValidation', async (req, reply) => {
    const field = nulField(req.params) ?? nulField(req.query) ?? nulField(req.body);
    if (field) return reply.code(400).send({ error: `${field}: must not hold a NUL character`, field });
  });

  app.addHook('onSend', async (req, reply, payload) => {
    reply.header('permissions-policy', PERMISSIONS_POLICY);
    reply.header('x-frame-options', 'DENY');
    if (apiRequest(req).api && !reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    return payload;
  });
}
