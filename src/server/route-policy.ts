// Which checks a route gets is part of the route: every route carries its policy in its fastify
// config, filled in with defaults when it is registered, and the hooks (src/server/auth.ts,
// src/server/hardening.ts) read the policy of the route the router matched, never the URL. A check
// that lives with the route cannot drift from it: any spelling of a path that reaches a handler
// brings that handler's checks along.
import type { FastifyInstance, FastifyRequest } from 'fastify';

export interface RoutePolicy {
  /** The route belongs to the API: its answers are never cached. Set from the route's own path. */
  api: boolean;
  /**
   * Writes (POST, PUT, PATCH, DELETE) from a browser session need its CSRF token, and a foreign Origin
   * is refused: `true` (the default for every route). `'origin'`: the Origin check only (sign-in,
   * before there is a token). `false`: the route proves who calls it on its own (agents' secrets,
   * the identity provider's signed logout tokens).
   */
  csrf: boolean | 'origin';
  /** Counts towards `auth.apiRequestsPerMinute` (default: every API route). */
  rateLimit: boolean;
  /** An `Authorization: Bearer atr_...` API token signs the request in (false where Bearer carries an agent's secret). */
  apiTokens: boolean;
  /** `'admin'`: administrators with a browser session only (default for /api/admin/...), checked before the handler. */
  access: 'any' | 'admin';
  /**
   * The client's address must be in the site's `sourceNetworks` (default: every route, and every request
   * no route matched). `false` for callers that are not the site's users: agents on the nodes (the
   * session's secret proves them), the health check of load balancers, `/metrics` (`metrics.allowFrom`).
   */
  sourceNetworks: boolean;
}

declare module 'fastify' {
  interface FastifyContextConfig extends Partial<RoutePolicy> {}
}

/** What a route gets unless it says otherwise; derived from the path it is registered under. */
export function defaultPolicy(url: string): RoutePolicy {
  const api = url.startsWith('/api/');
  return {
    api,
    csrf: true,
    rateLimit: api,
    apiTokens: true,
    access: url.startsWith('/api/admin/') ? 'admin' : 'any',
    sourceNetworks: true,
  };
}

/** Fills in every route's policy as it is registered; call before any route is added. */
export function registerRoutePolicy(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    route.config = { ...defaultPolicy(route.url), ...(route.config ?? {}) };
  });
}

/** The policy of the route a request matched; null when no route matched (the not-found handler). */
export function policyOf(req: FastifyRequest): RoutePolicy | null {
  if (req.routeOptions.url === undefined) return null;
  return { ...defaultPolicy(req.routeOptions.url), ...req.routeOptions.config };
}

/** Agent callbacks: the session's secret in Authorization is the credential, not a browser or an API token. */
export const AGENT_ROUTE = {
  csrf: false,
  rateLimit: false,
  apiTokens: false,
  sourceNetworks: false,
} as const;
