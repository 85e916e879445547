// The in-memory route table: which upstream serves /user/<name>/<session>/. Added when an agent
// reports ready, removed when the session ends, rebuilt from the database at start. No restart needed.
import { TunnelHub } from './tunnel.ts';

export interface RouteTarget {
  host: string;
  port: number;
  /** When set, connect to this Unix socket instead of host:port. */
  socketPath?: string;
  /** Connect to socketPath with this user's credentials (see src/proxy/upstream.ts). */
  owner?: { uid: number; gid: number };
  /** host:port is an agent relay: each connection starts with a handshake proving this secret both ways
   * (src/apps/relay-protocol.ts). */
  relaySecret?: string;
  /** Reached through the session agent's dial-out tunnel (src/proxy/tunnel.ts), never host:port. */
  tunnel?: { hub: TunnelHub; sessionId: string; app: string };
}

/** Where one app of a session is served: the session's main app, or one of its extra apps. */
export type RouteEndpoint = Omit<
  Route,
  'subRoutes' | 'stoppedApps' | 'sessionId' | 'userId' | 'username' | 'cluster'
>;

export interface Route {
  sessionId: string;
  userId: number;
  username: string;
  /** The session's cluster: its source-network rule applies to the route (src/server/networks.ts). */
  cluster?: string;
  /** '/user/<name>/<session>/' */
  prefix: string;
  target: RouteTarget;
  stripPrefix: boolean;
  /** Added to every upstream request (e.g. Jupyter's token); the browser never sees them. */
  headers: Record<string, string>;
  transport: 'http' | 'rfb';
  /** Extra apps on the same allocation, by app id: /user/<name>/<session>.<app>/... */
  subRoutes?: Map<string, RouteEndpoint>;
  /** Extra apps whose exit the agent reported: their route is gone, their address says so. */
  stoppedApps?: Set<string>;
  /** Set while the session's agent misses its heartbeats: when it was last heard from (error pages say so). */
  notRespondingSince?: number;
}

export function sessionPrefix(username: string, sessionId: string): string {
  return `/user/${encodeURIComponent(username)}/${sessionId}/`;
}

export class RouteTable {
  private readonly routes = new Map<string, Route>();
  /** The dial-out tunnels of sessions on clusters whose nodes accept no inbound connection. */
  readonly tunnels: TunnelHub;

  constructor(log: ConstructorParameters<typeof TunnelHub>[0] = { info() {}, warn() {} }) {
    this.tunnels = new TunnelHub(log);
  }

  set(route: Route): void {
    this.routes.set(route.sessionId, route);
  }

  get(sessionId: string): Route | undefined {
    return this.routes.get(sessionId);
  }

  delete(sessionId: string): boolean {
    return this.routes.delete(sessionId);
  }

  get size(): number {
    return this.routes.size;
  }

  all(): IterableIterator<Route> {
    return this.routes.values();
  }
}

export interface ParsedUserPath {
  username: string;
  sessionId: string;
  /** The extra app addressed by /user/<name>/<session>.<app>/; undefined for the main app. */
  app?: string;
  /** The rest after the session prefix, starting with '/', including the query string. */
  rest: string;
  /** true when the URL is exactly /user/<name>/<session> without the trailing slash. */
  bare: boolean;
}

/** Parses /user/<name>/<session>/<rest>. Returns null for anything else (including encoded slashes tricks). */
export function parseUserPath(url: string): ParsedUserPath | null {
  if (!url.startsWith('/user/')) return null;
  const q = url.indexOf('?');
  const pathPart = q === -1 ? url : url.slice(0, q);
  const query = q === -1 ? '' : url.slice(q);
  const second = pathPart.indexOf('/', 6);
  if (second === -1) return null;
  let username: string;
  try {
    username = decodeURIComponent(pathPart.slice(6, second));
  } catch {
    return null;
  }
  const third = pathPart.indexOf('/', second + 1);
  const segment = third === -1 ? pathPart.slice(second + 1) : pathPart.slice(second + 1, third);
  const m = /^([a-z0-9]{4,32})(?:\.([A-Za-z0-9][A-Za-z0-9_.-]{0,63}))?$/.exec(segment);
  if (!m || username.length === 0 || username.includes('/')) return null;
  const sessionId = m[1]!;
  const app = m[2];
  if (third === -1) return { username, sessionId, app, rest: `/${query}`, bare: true };
  return { username, sessionId, app, rest: pathPart.slice(third) + query, bare: false };
}
