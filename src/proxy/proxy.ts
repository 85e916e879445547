// The HTTP and WebSocket reverse proxy for /user/<name>/<session>/. Only the session's owner gets
// through; the app's token is added upstream so the browser never holds it. Upstream sockets are
// pooled (keep-alive), and every error path closes both sides so nothing leaks when apps die
// (configurable-http-proxy issues 388, 434, 557).
import http from 'node:http';
import type net from 'node:net';
import { ProxyServer } from 'http-proxy-3';
import type { Logger } from 'pino';
import { addResponseDefaults, scopeAppCookie } from './app-response.ts';
import { forwardWeb } from './forward-http.ts';
import {
  type ParsedUserPath,
  parseUserPath,
  type Route,
  type RouteEndpoint,
  type RouteTable,
} from './routes.ts';
import { TunnelDown } from './tunnel.ts';
import { agentFor, RelayRefused } from './upstream.ts';

export interface ProxyUser {
  id: number;
  username: string;
  /** Which sign-in (browser session) the request came with: its WebSockets close when it ends. */
  sessionKey?: string;
}

export interface ProxyHooks {
  /**
   * Why the request's client address is refused (the site's source-network rule, and with a cluster
   * that cluster's), or null; asked before anything else, and again with the session's cluster.
   */
  refusal?(req: http.IncomingMessage, cluster?: string): string | null;
  /** Answers a refused request (a page or the API's JSON error). */
  refuse?(req: http.IncomingMessage, res: http.ServerResponse, message: string): void;
  /** Answers a refused WebSocket upgrade. */
  refuseUpgrade?(socket: net.Socket, message: string): void;
  /** The signed-in user of a request (cookie), or null. May answer synchronously from a cache. */
  authenticate(req: http.IncomingMessage): ProxyUser | null | Promise<ProxyUser | null>;
  /**
   * Called when a session has no route here: another gateway sharing the database may have made it
   * running a moment ago, before this one heard of it. Loads the route from the database if there is
   * one; the request is then looked up again (absent: the session's page says it is connecting).
   */
  loadRoute?(sessionId: string): Promise<void>;
  /** Called when no route exists: render a "starting" or "ended" page. Returns false when the session is unknown. */
  placeholder(
    sessionId: string,
    user: ProxyUser,
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): Promise<boolean>;
  /** Bridges a WebSocket to a raw (non-HTTP) upstream, e.g. VNC; `guest` when a desktop link let it in. */
  bridge?(
    route: RouteEndpoint,
    req: http.IncomingMessage,
    socket: net.Socket,
    head: Buffer,
    guest?: ProxyGuest,
  ): void;
  /** Answers HTTP requests for a raw (non-HTTP) upstream, e.g. the noVNC page of a desktop. */
  rawPage?(
    route: RouteEndpoint,
    rest: string,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    guest?: ProxyGuest,
  ): void;
  onRequest?(): void;
  /**
   * The browser used a session's app: an HTTP request (`read` for GET/HEAD, `write` for others) or a
   * WebSocket opened or carrying a message from the browser (`ws`). Feeds idle culling.
   */
  onTraffic?(sessionId: string, app: string | undefined, kind: 'read' | 'write' | 'ws'): void;
  onWsOpen?(): void;
  onWsClose?(): void;
}

/**
 * A browser let in by a one-time desktop link instead of a sign-in: to that session's desktop (its main
 * app, an rfb one) and nothing else.
 */
export interface ProxyGuest {
  sessionId: string;
  /** The session's owner. */
  userId: number;
  viewOnly: boolean;
  /** When the grant ends (its link's expiry): its open connections are closed then. */
  until: number;
  /** Names the grant, to close its connections when it ends early (revoked, session stopped). */
  key: string;
  /** The grant is over (expired, revoked, its session stopped): its browser is told so. */
  ended: boolean;
}

/** How the proxy tells a guest (src/server/features/desktop-links.ts). */
export interface ProxyGuests {
  /** The gateway's cookie that carries a grant: never sent to an app, never set by one. */
  cookie: string;
  /** The grant a request carries for the session of its path, or null. */
  authenticate(req: http.IncomingMessage, p: ParsedUserPath): ProxyGuest | null | Promise<ProxyGuest | null>;
}

export interface ProxyOptions {
  routes: RouteTable;
  hooks: ProxyHooks;
  log: Logger;
  /** Honour X-Forwarded-* from the client (only behind a trusted reverse proxy): every peer, or those it accepts. */
  trustProxy: boolean | ((peer: string) => boolean);
  /** Names of the gateway's own cookies: stripped before a request goes upstream. */
  ownCookies: string[];
}

const UNSAFE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const HOP_BY_HOP_SENSITIVE = [
  'authorization',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-port',
  'forwarded',
  'x-real-ip',
];

export class GatewayProxy {
  readonly agent: http.Agent;
  private readonly proxy: ProxyServer;
  openWebSockets = 0;
  /** Open proxied WebSockets and the sign-in (or a guest's grant) each was opened with. */
  private readonly sockets = new Map<net.Socket, { userId: number; sessionKey?: string; guest?: string }>();
  private guests: ProxyGuests | null = null;

  /** Lets guests in: browsers holding a desktop link's grant (one feature gives them). */
  setGuests(guests: ProxyGuests): void {
    this.guests = guests;
  }

  /** The gateway's cookies, which an app neither receives nor sets. */
  private get ownCookies(): string[] {
    return this.guests ? [...this.opts.ownCookies, this.guests.cookie] : this.opts.ownCookies;
  }

  constructor(private readonly opts: ProxyOptions) {
    this.agent = new http.Agent({
      keepAlive: true,
      maxSockets: 512,
      // Kept idle per app; fewer than its concurrent requests and the surplus is closed and reopened.
      maxFreeSockets: 256,
      timeout: 60_000,
      scheduling: 'lifo',
    });
    this.proxy = new ProxyServer({ agent: this.agent, ws: true, xfwd: false, proxyTimeout: 0 });
    this.proxy.on('error', (err, req, res) => this.onProxyError(err as Error, req, res));
    // An app may not set the gateway's own cookies (session swapping or fixation from inside a session),
    // its cookies stay at its own address, and it gets the gateway's protections it lacks
    // (src/proxy/app-response.ts).
    this.proxy.on('proxyRes', (proxyRes, req) => {
      addResponseDefaults(proxyRes.headers);
      const set = proxyRes.headers['set-cookie'];
      if (!set) return;
      const prefix = this.appPrefix.get(req);
      const kept = set
        .filter((c) => !this.ownCookies.includes(c.split('=')[0]?.trim() ?? ''))
        .map((c) => (prefix ? scopeAppCookie(c, prefix) : c));
      if (kept.length > 0) proxyRes.headers['set-cookie'] = kept;
      else delete proxyRes.headers['set-cookie'];
    });
  }

  /** The address of the app each forwarded request is for (`/user/<name>/<session>[.<app>]/`). */
  private readonly appPrefix = new WeakMap<http.IncomingMessage, string>();

  /** The grants with open desktop connections on this gateway. */
  guestKeys(): string[] {
    const keys = new Set<string>();
    for (const who of this.sockets.values()) if (who.guest) keys.add(who.guest);
    return [...keys];
  }

  /** Closes the desktop connections a guest's grant opened (the grant ended before its time). */
  closeGuestSockets(key: string): number {
    let n = 0;
    for (const [socket, who] of this.sockets) {
      if (who.guest === key) {
        socket.destroy();
        this.sockets.delete(socket);
        n++;
      }
    }
    return n;
  }

  /** Closes the proxied WebSockets of a user: all of them, or those opened with one sign-in. */
  closeWebSockets(userId: number, sessionKey?: string): number {
    let n = 0;
    for (const [socket, who] of this.sockets) {
      if (who.userId === userId && (sessionKey === undefined || who.sessionKey === sessionKey)) {
        socket.destroy();
        this.sockets.delete(socket);
        n++;
      }
    }
    return n;
  }

  private onProxyError(err: Error, req: http.IncomingMessage, res: http.ServerResponse | net.Socket): void {
    // A relay that does not prove it knows the secret may be someone else's listener on a dead agent's
    // port: worth a warning (the path only: a query may hold a user's secrets).
    if (err instanceof RelayRefused)
      this.opts.log.warn({ err: err.message, path: req.url?.split('?')[0] }, 'upstream refused');
    else this.opts.log.debug({ err: err.message, url: req.url }, 'upstream error');
    if (res instanceof http.ServerResponse) {
      if (!res.headersSent && !res.writableEnded) {
        if (err instanceof TunnelDown) {
          // The node accepts no inbound connection: the gateway waits for the agent to dial back in.
          sendPage(
            res,
            502,
            'The session is reconnecting',
            "The session's agent is reconnecting to the gateway (after a restart of the gateway, or a network break). This page retries by itself.",
            { refreshSeconds: 5 },
          );
          return;
        }
        const silent = this.silentSince(req);
        if (silent !== undefined) {
          // The agent has missed its heartbeats too: more likely the node than the app; say what is known.
          sendPage(
            res,
            502,
            'The session is not responding',
            `Not responding since ${clockUtc(silent)}: neither the app nor the session's agent answers. The node may have failed; the session ends by itself if the scheduler says so. This page retries by itself.`,
            { refreshSeconds: 10 },
          );
          return;
        }
        sendPage(
          res,
          502,
          'The app is not answering',
          "The session's app did not answer. It may be restarting or may have stopped; reload in a moment.",
        );
      } else {
        res.destroy();
      }
    } else {
      res.destroy();
    }
  }

  /** The session each forwarded request is for (its URL may have been rewritten for the app). */
  private readonly sessionOfRequest = new WeakMap<http.IncomingMessage, string>();
  /** Requests whose session's route was already asked of the database (withRoute). */
  private readonly routeAsked = new WeakSet<http.IncomingMessage>();

  /** When the agent of the session a request is for was last heard from, if it is silent now. */
  private silentSince(req: http.IncomingMessage): number | undefined {
    const id = this.sessionOfRequest.get(req);
    return id === undefined ? undefined : this.opts.routes.get(id)?.notRespondingSince;
  }

  close(): void {
    this.agent.destroy();
  }

  /** Handles a request under /user/; answers everything itself. */
  web(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.opts.hooks.onRequest?.();
    if (this.refused(req, res)) return;
    const parsed = parseUserPath(req.url ?? '');
    if (!parsed) return notFound(res);
    const auth = this.opts.hooks.authenticate(req);
    if (auth instanceof Promise) {
      auth.then(
        (u) => this.webAuthed(parsed, u, req, res),
        // Sign-ins are in the database: it is down or restarting (a known browser is still let in).
        () =>
          sendPage(
            res,
            503,
            'Database unavailable',
            'Sign-in could not be checked: the database does not answer. Try again in a moment.',
          ),
      );
    } else {
      this.webAuthed(parsed, auth, req, res);
    }
  }

  private webAuthed(
    p: ParsedUserPath,
    user: ProxyUser | null,
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): void {
    if (!user || user.username !== p.username) {
      if (this.guests && hasCookie(req, this.guests.cookie)) return this.guestWeb(p, user, req, res);
      return refuseWeb(user, req, res);
    }
    if (this.withRoute(p.sessionId, req, () => this.webAuthed(p, user, req, res))) return;
    const route = this.opts.routes.get(p.sessionId);
    if (route && route.userId !== user.id) return notFound(res);
    if (route?.cluster !== undefined && this.refused(req, res, route.cluster)) return;
    // Apps trust the gateway's token, so the gateway refuses writes that another site's page sends.
    if (UNSAFE_METHODS.has(req.method ?? '') && !sameOrigin(req, this.trusted(req))) {
      return sendPage(res, 403, 'Refused', 'A request from another site was refused.');
    }
    if (p.bare) {
      res.writeHead(302, {
        location: `${req.url?.split('?')[0]}/${req.url?.includes('?') ? req.url.slice(req.url.indexOf('?')) : ''}`,
      });
      res.end();
      return;
    }
    // An extra app (/user/<name>/<session>.<app>/) is served by the session's route like its main app.
    const ep = endpointOf(route, p);
    if (route && p.app && !ep) {
      if (!route.stoppedApps?.has(p.app)) return notFound(res);
      return sendPage(
        res,
        502,
        'The app has stopped',
        'This app of the session has stopped; the others go on.',
      );
    }
    if (ep && ep.transport !== 'http' && this.opts.hooks.rawPage) {
      this.opts.hooks.rawPage(ep, p.rest, req, res);
      return;
    }
    if (!ep || ep.transport !== 'http') {
      this.opts.hooks.placeholder(p.sessionId, user, req, res).then(
        (handled) => {
          if (!handled) notFound(res);
        },
        () => sendPage(res, 500, 'Error', 'The session could not be looked up.'),
      );
      return;
    }
    this.prepareUpstream(req, ep, p);
    this.sessionOfRequest.set(req, p.sessionId);
    this.opts.hooks.onTraffic?.(p.sessionId, p.app, UNSAFE_METHODS.has(req.method ?? '') ? 'write' : 'read');
    forwardWeb(this.proxy, req, res, { target: targetOf(ep), agent: agentFor(ep.target) ?? this.agent });
  }

  /** A guest's request: the page and assets of the one desktop its grant is for, nothing else. */
  private guestWeb(
    p: ParsedUserPath,
    user: ProxyUser | null,
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): void {
    Promise.resolve(this.guests!.authenticate(req, p)).then(
      (g) => {
        if (!g || g.sessionId !== p.sessionId) return refuseWeb(user, req, res);
        if (g.ended) {
          return sendPage(
            res,
            410,
            'This desktop link has ended',
            'It no longer opens this desktop: its time is over, its owner revoked it, or the session stopped.',
          );
        }
        // The grant is for the desktop alone: not the session's other apps.
        if (p.app !== undefined || p.bare) return notFound(res);
        if (this.withRoute(p.sessionId, req, () => this.guestWeb(p, user, req, res))) return;
        const route = this.opts.routes.get(p.sessionId);
        if (!route || route.userId !== g.userId) {
          return sendPage(
            res,
            410,
            'The shared desktop has ended',
            'The session this link was for has stopped.',
          );
        }
        if (route.cluster !== undefined && this.refused(req, res, route.cluster)) return;
        if (route.transport !== 'rfb' || !this.opts.hooks.rawPage) return notFound(res);
        this.opts.hooks.rawPage(route, p.rest, req, res, g);
      },
      () =>
        sendPage(
          res,
          503,
          'Database unavailable',
          'The link could not be checked: the database does not answer.',
        ),
    );
  }

  /** Handles an upgrade under /user/. */
  upgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    if (this.upgradeRefused(req, socket)) return;
    const parsed = parseUserPath(req.url ?? '');
    if (!parsed) return refuse(socket, 404);
    if (!sameOrigin(req, this.trusted(req))) return refuse(socket, 403);
    const auth = this.opts.hooks.authenticate(req);
    const go = (user: ProxyUser | null) => {
      if (!user || user.username !== parsed.username) {
        if (this.guests && hasCookie(req, this.guests.cookie))
          return this.guestUpgrade(parsed, req, socket, head, user ? 404 : 401);
        return refuse(socket, user ? 404 : 401);
      }
      if (this.withRoute(parsed.sessionId, req, () => go(user))) return;
      const route = this.opts.routes.get(parsed.sessionId);
      if (!route || route.userId !== user.id) return refuse(socket, 404);
      if (route.cluster !== undefined && this.upgradeRefused(req, socket, route.cluster)) return;
      const ep = endpointOf(route, parsed);
      if (!ep) return refuse(socket, parsed.app && route.stoppedApps?.has(parsed.app) ? 502 : 404);
      this.track(socket, { userId: user.id, sessionKey: user.sessionKey });
      if (ep.transport === 'rfb') {
        if (!this.opts.hooks.bridge) return refuse(socket, 502);
        this.opts.hooks.bridge(ep, req, socket, head);
        return;
      }
      this.prepareUpstream(req, ep, parsed);
      const traffic = this.opts.hooks.onTraffic;
      if (traffic) {
        traffic(parsed.sessionId, parsed.app, 'ws');
        // Counted once the proxy pipes the socket (it resumes it then), so no byte is read before.
        socket.once('resume', () => socket.on('data', () => traffic(parsed.sessionId, parsed.app, 'ws')));
      }
      // When the app's side goes away, http-proxy-3 ends the browser's side, which may be left paused
      // (unpiped, with unread bytes): the browser's FIN or RST is then never read and the socket stays
      // open for good. Once our side is finished, the browser gets 2 s to close its side.
      socket.once('finish', () => {
        const t = setTimeout(() => socket.destroy(), 2000);
        socket.once('close', () => clearTimeout(t));
      });
      this.proxy.ws(req, socket, head, { target: targetOf(ep), agent: agentFor(ep.target) ?? this.agent });
    };
    if (auth instanceof Promise) auth.then(go, () => refuse(socket, 503));
    else go(auth);
  }

  /** A guest's WebSocket: the bridge to the one desktop its grant is for, closed when the grant ends. */
  private guestUpgrade(
    p: ParsedUserPath,
    req: http.IncomingMessage,
    socket: net.Socket,
    head: Buffer,
    refused: number,
  ): void {
    Promise.resolve(this.guests!.authenticate(req, p)).then(
      (g) => {
        if (!g || g.sessionId !== p.sessionId) return refuse(socket, refused);
        if (g.ended) return refuse(socket, 410);
        if (this.withRoute(p.sessionId, req, () => this.guestUpgrade(p, req, socket, head, refused))) return;
        const route = this.opts.routes.get(p.sessionId);
        if (p.app !== undefined || !route || route.userId !== g.userId || route.transport !== 'rfb')
          return refuse(socket, 404);
        if (route.cluster !== undefined && this.upgradeRefused(req, socket, route.cluster)) return;
        if (!this.opts.hooks.bridge) return refuse(socket, 502);
        this.track(socket, { userId: g.userId, guest: g.key });
        // setTimeout fires at once past 2^31 ms; a grant that long is closed by its feature's checks.
        const end = setTimeout(
          () => socket.destroy(),
          Math.min(2 ** 31 - 1, Math.max(0, g.until - Date.now())),
        );
        socket.once('close', () => clearTimeout(end));
        this.opts.hooks.bridge(route, req, socket, head, g);
      },
      () => refuse(socket, 503),
    );
  }

  /**
   * When the session has no route here and the database may have one (loadRoute), asks for it once per
   * request and calls `again` when that is done: true then, and the caller stops. The second pass finds
   * the request marked and goes on with what the table has.
   */
  private withRoute(sessionId: string, req: http.IncomingMessage, again: () => void): boolean {
    const load = this.opts.hooks.loadRoute;
    if (!load || this.routeAsked.has(req) || this.opts.routes.get(sessionId)) return false;
    this.routeAsked.add(req);
    load(sessionId).then(again, again);
    return true;
  }

  /** Counts an open WebSocket and remembers whose it is, until it closes. */
  private track(socket: net.Socket, who: { userId: number; sessionKey?: string; guest?: string }): void {
    this.opts.hooks.onWsOpen?.();
    this.openWebSockets++;
    this.sockets.set(socket, who);
    socket.once('close', () => {
      this.openWebSockets--;
      this.sockets.delete(socket);
      this.opts.hooks.onWsClose?.();
    });
  }

  /** Whether the request's peer is a trusted reverse proxy (its X-Forwarded-* headers count). */
  private trusted(req: http.IncomingMessage): boolean {
    const t = this.opts.trustProxy;
    return typeof t === 'boolean' ? t : t(req.socket.remoteAddress ?? '');
  }

  /** Answers a request whose client address is refused (the site's rule, or the cluster's); true if so. */
  private refused(req: http.IncomingMessage, res: http.ServerResponse, cluster?: string): boolean {
    const why = this.opts.hooks.refusal?.(req, cluster);
    if (!why) return false;
    if (this.opts.hooks.refuse) this.opts.hooks.refuse(req, res, why);
    else sendPage(res, 403, 'Refused', why);
    return true;
  }

  private upgradeRefused(req: http.IncomingMessage, socket: net.Socket, cluster?: string): boolean {
    const why = this.opts.hooks.refusal?.(req, cluster);
    if (!why) return false;
    if (this.opts.hooks.refuseUpgrade) this.opts.hooks.refuseUpgrade(socket, why);
    else refuse(socket, 403);
    return true;
  }

  private prepareUpstream(req: http.IncomingMessage, route: RouteEndpoint, p: ParsedUserPath): void {
    this.appPrefix.set(req, route.prefix);
    const h = req.headers;
    const remote = req.socket.remoteAddress ?? '';
    const trusted = this.trusted(req);
    const forwardedProto = trusted ? firstValue(h['x-forwarded-proto']) : undefined;
    const forwardedFor = trusted ? firstValue(h['x-forwarded-for']) : undefined;
    // Nothing the browser sends may pose as the gateway's own headers.
    for (const name of HOP_BY_HOP_SENSITIVE) delete h[name];
    if (h.cookie) {
      const kept = h.cookie
        .split(';')
        .filter((c) => !this.ownCookies.includes(c.trim().split('=')[0] ?? ''))
        .join(';');
      if (kept.trim()) h.cookie = kept;
      else delete h.cookie;
    }
    h['x-forwarded-for'] = forwardedFor ? `${forwardedFor}, ${remote}` : remote;
    h['x-forwarded-proto'] =
      forwardedProto ?? ((req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http');
    if (h.host) h['x-forwarded-host'] = h.host;
    for (const [k, v] of Object.entries(route.headers)) h[k.toLowerCase()] = v;
    if (route.stripPrefix) req.url = p.rest;
  }
}

/** The main app's route, or the extra app's the path names (undefined when the session has no such app). */
function endpointOf(route: Route | undefined, p: ParsedUserPath): RouteEndpoint | undefined {
  if (!route) return undefined;
  return p.app === undefined ? route : route.subRoutes?.get(p.app);
}

function targetOf(route: RouteEndpoint) {
  const t = route.target;
  return t.socketPath
    ? { host: 'localhost', port: 0, socketPath: t.socketPath }
    : { host: t.host, port: t.port };
}

function firstValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** Cross-site WebSocket hijacking guard: a browser always sends Origin on WebSocket handshakes. */
function sameOrigin(req: http.IncomingMessage, trustProxy: boolean): boolean {
  const origin = req.headers.origin;
  if (!origin) return true; // not a browser (scripts, tests); the cookie is still required
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return false;
  }
  const expected = (trustProxy ? firstValue(req.headers['x-forwarded-host']) : undefined) ?? req.headers.host;
  return host === expected;
}

/** A request without a sign-in for this address: to the sign-in page (pages) or 401; a signed-in other user: 404. */
function refuseWeb(user: ProxyUser | null, req: http.IncomingMessage, res: http.ServerResponse): void {
  if (user) return notFound(res);
  const wantsHtml = req.method === 'GET' && (req.headers.accept ?? '').includes('text/html');
  if (wantsHtml) {
    res.writeHead(302, {
      location: `/login?next=${encodeURIComponent(req.url ?? '/')}`,
      'cache-control': 'no-store',
    });
    res.end();
  } else {
    res.writeHead(401, { 'content-type': 'application/json' });
    res.end('{"error":"sign in first"}');
  }
}

/** Whether the request carries a cookie of this name (its value is the caller's to check). */
function hasCookie(req: http.IncomingMessage, name: string): boolean {
  return (req.headers.cookie ?? '').split(';').some((c) => c.trim().startsWith(`${name}=`));
}

function refuse(socket: net.Socket, code: number): void {
  if (socket.writable) {
    socket.end(
      `HTTP/1.1 ${code} ${http.STATUS_CODES[code] ?? ''}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`,
    );
  }
  socket.destroy();
}

function notFound(res: http.ServerResponse): void {
  sendPage(res, 404, 'Not found', 'There is no session of yours at this address.');
}

const esc = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** A small self-contained page (no scripts) used for proxy-level answers. */
/** "14:05 UTC": pages rendered by the gateway cannot know the reader's time zone. */
function clockUtc(ms: number): string {
  return `${new Date(ms).toISOString().slice(11, 16)} UTC`;
}

export function sendPage(
  res: http.ServerResponse,
  status: number,
  title: string,
  message: string,
  extra: {
    refreshSeconds?: number;
    bodyHtml?: string;
    /** One button that posts to this page's own address, with no fields (text/plain: a type the gateway parses). */
    postButton?: string;
  } = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)} · Atrium</title>${
    extra.refreshSeconds ? `<meta http-equiv="refresh" content="${extra.refreshSeconds}">` : ''
  }<meta name="viewport" content="width=device-width,initial-scale=1"><link rel="stylesheet" href="/static/page.css"></head><body><main class="page"><h1>${esc(title)}</h1><p>${esc(message)}</p>${extra.bodyHtml ?? ''}${
    extra.postButton
      ? `<form method="post" enctype="text/plain"><button type="submit">${esc(extra.postButton)}</button></form>`
      : ''
  }<p><a href="/">Back to Atrium</a></p></main></body></html>`;
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-security-policy': `default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action ${extra.postButton ? "'self'" : "'none'"}; frame-ancestors 'none'`,
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    // Under no-referrer a browser posts the form with `Origin: null`, which the gateway refuses.
    'referrer-policy': extra.postButton ? 'same-origin' : 'no-referrer',
  });
  res.end(body);
}

export { esc as escapeHtml };
