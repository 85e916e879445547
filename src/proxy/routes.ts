// The in-memory route table: which upstream serves /user/<name>/<session>/. Added when an agent
// reports ready, removed when the session ends, rebuilt from the database at start. No restart needed.

export interface RouteTarget {
  host: string;
  port: number;
  /** When set, connect to this Unix socket instead of host:port. */
  socketPath?: string;
}

export interface Route {
  sessionId: string;
  userId: number;
  username: string;
  /** '/user/<name>/<session>/' */
  prefix: string;
  target: RouteTarget;
  stripPrefix: boolean;
  /** Added to every upstream request (e.g. Jupyter's token); the browser never sees them. */
  headers: Record<string, string>;
  transport: 'http' | 'rfb';
  /** Extra apps on the same allocation: /user/<name>/<session>/<subapp>/... */
  subRoutes?: Map<string, Omit<Route, 'subRoutes' | 'sessionId' | 'userId' | 'username'>>;
}

export function sessionPrefix(username: string, sessionId: string): string {
  return `/user/${encodeURIComponent(username)}/${sessionId}/`;
}

export class RouteTable {
  private readonly routes = new Map<string, Route>();

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
  const sessionId = third === -1 ? pathPart.slice(second + 1) : pathPart.slice(second + 1, third);
  if (!/^[a-z0-9]{4,32}$/.test(sessionId) || username.length === 0 || username.includes('/')) return null;
  if (third === -1) return { username, sessionId, rest: `/${query}`, bare: true };
  return { username, sessionId, rest: pathPart.slice(third) + query, bare: false };
}
