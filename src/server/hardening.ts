// What every gateway route gets on top of helmet: a rate limit on the API, headers helmet leaves out
// (Permissions-Policy, X-Frame-Options DENY to match frame-ancestors 'none'), and no caching of API
// answers (they carry CSRF tokens, session lists, new API tokens).
import type { FastifyInstance } from 'fastify';
import { RateLimiter } from '../auth/rate-limit.ts';
import { clientIp } from './auth.ts';
import type { AppContext } from './context.ts';

export const PERMISSIONS_POLICY =
  'accelerometer=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=()';

/** Routes outside the general API limit: agents (bound by their own secrets), health, sign-in (own limit). */
const UNLIMITED = [/^\/api\/agent\//, /^\/api\/health(?:\?|$)/, /^\/api\/login(?:\?|$)/];

export function registerHardening(app: FastifyInstance, ctx: AppContext): void {
  const limiter = new RateLimiter(ctx.cfg.auth.apiRequestsPerMinute, 60_000);
  ctx.services.set('api.rateLimiter', limiter);

  // Runs after the auth hook (registered first), so it knows the user or token.
  app.addHook('onRequest', async (req, reply) => {
    if (!req.url.startsWith('/api/') || UNLIMITED.some((r) => r.test(req.url))) return;
    const key = req.user ? `user:${req.user.id}` : `ip:${clientIp(req)}`;
    const wait = limiter.hit(key);
    if (wait > 0) {
      reply.header('retry-after', String(wait));
      return reply.code(429).send({ error: `too many requests; try again in ${wait} s` });
    }
  });

  app.addHook('onSend', async (req, reply, payload) => {
    reply.header('permissions-policy', PERMISSIONS_POLICY);
    reply.header('x-frame-options', 'DENY');
    if (req.url.startsWith('/api/') && !reply.hasHeader('cache-control'))
      reply.header('cache-control', 'no-store');
    return payload;
  });
}
