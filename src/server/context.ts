import type { Logger } from 'pino';
import type { RateLimiter } from '../auth/rate-limit.ts';
import type { SignInMethod } from '../auth/sign-in.ts';
import type { WebSessionStore } from '../auth/web-sessions.ts';
import type { LoadedConfig } from '../config/load.ts';
import type { AuditLog } from '../db/audit.ts';
import type { Db } from '../db/index.ts';
import type { EventBus } from '../events/bus.ts';
import type { GatewayProxy } from '../proxy/proxy.ts';
import type { RouteTable } from '../proxy/routes.ts';
import type { Cluster } from '../sessions/clusters.ts';
import type { SessionService } from '../sessions/service.ts';
import type { Metrics } from './metrics.ts';
import type { SourceNetworks } from './networks.ts';

/** Everything a route module may use; built once by the gateway at start. */
export interface AppContext {
  cfg: LoadedConfig;
  db: Db;
  log: Logger;
  bus: EventBus;
  routes: RouteTable;
  proxy: GatewayProxy;
  clusters: Map<string, Cluster>;
  sessions: SessionService;
  webSessions: WebSessionStore;
  audit: AuditLog;
  metrics: Metrics;
  loginLimiter: RateLimiter;
  /** The configured sign-in methods (src/auth/registry.ts); password methods are tried in this order. */
  signInMethods: SignInMethod[];
  /** The gateway's public base URL (no trailing slash). */
  publicUrl: () => string;
  secureCookies: boolean;
  /** Which client addresses the site and each cluster let in (src/server/networks.ts). */
  networks: SourceNetworks;
  /** Extra services registered by feature modules (jobs, notifications, ...), by name. */
  services: Map<string, unknown>;
}

export const SESSION_COOKIE = 'atrium_session';
