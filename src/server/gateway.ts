// Starts the whole gateway: database, clusters and their pollers, sessions, proxy and web server.
// Stopping it leaves every session running: state is in the database and the jobs are the scheduler's.
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import helmet from '@fastify/helmet';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyInstance, LogController } from 'fastify';
import pino, { type Logger } from 'pino';
import { ensureAgent } from '../agent/bundle.ts';
import { HealthReply, OpenApiReply } from '../api/gateway.ts';
import { ensureAppAssets } from '../apps/assets.ts';
import { generatePassword, hashPassword } from '../auth/passwords.ts';
import { RateLimiter } from '../auth/rate-limit.ts';
import { createSignInMethods } from '../auth/registry.ts';
import { WebSessionStore } from '../auth/web-sessions.ts';
import { databaseUrl, type LoadedConfig, publicUrl } from '../config/load.ts';
import { AuditLog } from '../db/audit.ts';
import { type Db, engineOf, isDatabaseUnavailable, openDb, unavailableReply } from '../db/index.ts';
import { countUsers, createUser } from '../db/users.ts';
import { EventBus } from '../events/bus.ts';
import { ensureFilesHelper } from '../files/bundle.ts';
import { GatewayProxy } from '../proxy/proxy.ts';
import { rfbHooks } from '../proxy/rfb-bridge.ts';
import { RouteTable } from '../proxy/routes.ts';
import { Cluster } from '../sessions/clusters.ts';
import { ActivityBoard } from '../sessions/idle.ts';
import { SessionService } from '../sessions/service.ts';
import {
  prepareSessionRuntime,
  RuntimeDirError,
  type SessionRuntime,
  whyOthersCannot,
} from '../system/runtime-dir.ts';
import { forkThroughHelper } from '../system/spawn.ts';
import { lookupUnixUser } from '../system/users.ts';
import { cookieOf, errorBody, HttpError, registerAuth } from './auth.ts';
import { type AppContext, SESSION_COOKIE } from './context.ts';
import type { Feature } from './feature.ts';
import { FEATURES } from './features/index.ts';
import { healthCheck } from './health.ts';
import { Metrics, metricsAllowed } from './metrics.ts';
import { refuseUpgrade, SourceNetworks, sendRefusal } from './networks.ts';
import { atriumVersion, collectRoutes, openApiDocument } from './openapi.ts';
import { canonicalTarget } from './paths.ts';
import { placeholderHandler } from './placeholder.ts';
import { spec } from './route-spec.ts';
import { registerAgentRoutes } from './routes/agent.ts';
import { registerAuthRoutes } from './routes/auth.ts';
import { registerClusterRoutes } from './routes/clusters.ts';
import { registerEventRoutes } from './routes/events.ts';
import { registerSessionRoutes } from './routes/sessions.ts';
import { SharedDatabase } from './shared.ts';
import { registerValidation } from './validation.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const WEB_DIR = path.join(ROOT, 'dist', 'web');

export interface GatewayOptions {
  log?: Logger;
  /** Printed messages for the operator (first admin's password...). */
  print?: (line: string) => void;
  /** Extra feature modules (tests); the built-in FEATURES are always loaded. */
  features?: Feature[];
  /** Unix user for the first admin account when none exists. */
  adminUnixUser?: string;
}

export interface Gateway {
  ctx: AppContext;
  app: FastifyInstance;
  server: http.Server;
  url: string;
  port: number;
  close(): Promise<void>;
}

/** A path refused before any handler or the proxy saw it (JSON, like every API error). */
function refusePath(res: http.ServerResponse, why: string): void {
  const body = JSON.stringify({ error: `path: refused, ${why}`, field: 'path' });
  res.writeHead(400, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
  });
  res.end(body);
}

/** The first start creates an admin account with a random password and says how to sign in. */
async function bootstrapAdmin(
  db: Db,
  cfg: LoadedConfig,
  print: (l: string) => void,
  url: string,
  unixUser?: string,
): Promise<void> {
  if ((await countUsers(db)) > 0 || !cfg.auth.local.enabled) return;
  let unix =
    unixUser ??
    process.env.ATRIUM_ADMIN_UNIX_USER ??
    (process.env.SUDO_USER && process.env.SUDO_USER !== 'root' ? process.env.SUDO_USER : undefined);
  if (!unix && process.getuid?.() !== 0) unix = (await import('node:os')).userInfo().username;
  if (!unix) {
    // Running as root with nobody named: sessions never run as root, so use a dedicated account.
    unix = 'atrium';
    if (!(await lookupUnixUser(unix))) {
      const { spawnSync } = await import('node:child_process');
      const r = spawnSync('useradd', ['-m', '-s', '/bin/bash', '-c', 'Atrium administrator sessions', unix], {
        stdio: 'ignore',
      });
      if (r.status === 0) print(`atrium: created the Unix user "${unix}" for the admin account's sessions`);
    }
  }
  const password = generatePassword();
  try {
    await createUser(db, {
      username: 'admin',
      unixUser: unix,
      passwordHash: await hashPassword(password),
      isAdmin: true,
    });
  } catch (e) {
    // Gateways that start together on one PostgreSQL race for the first account: one creates it.
    if ((await countUsers(db)) > 0) return;
    throw e;
  }
  const pwFile = path.join(cfg.dataDir, 'initial-admin-password');
  fs.writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
  print('');
  print('atrium: created the first administrator account.');
  print(`atrium:   open ${url}/login and sign in as "admin" with the password: ${password}`);
  print(`atrium:   (also saved in ${pwFile}; sessions of "admin" run as Unix user "${unix}")`);
  print('atrium:   add users with: atrium user add <name> [--unix-user <unix name>]');
  print('');
}

/**
 * The files sessions run as their users, where every user can read them (placed in runtimeDir when
 * the checkout is private), or a RuntimeDirError naming the path in the way. Null when the site
 * names its own agent (agent.script, e.g. on a shared file system: `atrium config check` looks at it).
 */
async function sessionRuntime(cfg: LoadedConfig): Promise<SessionRuntime | null> {
  // A non-root gateway with the local backend only runs every session as itself.
  const othersMustRead = process.getuid?.() === 0 || cfg.clusters.some((c) => c.backend !== 'local');
  if (!cfg.agent.node && othersMustRead) {
    const why = whyOthersCannot(process.execPath, true);
    if (why) {
      throw new RuntimeDirError(
        `sessions run Node.js ${process.execPath} as their users, who cannot run it (${why}): set agent.node ` +
          'to a Node.js every user can run (e.g. /usr/bin/node), or install Node.js where they can',
      );
    }
  }
  if (cfg.agent.script) return null;
  await ensureAgent();
  await ensureFilesHelper();
  // The apps feature builds these too and reports a failure; the copy must hold them when they build.
  await ensureAppAssets().catch(() => undefined);
  return prepareSessionRuntime({
    root: ROOT,
    runtimeDir: cfg.runtimeDir,
    node: cfg.agent.node ?? process.execPath,
    keepHours: Math.max(...cfg.clusters.map((c) => c.maxHours)) + 1,
    othersMustRead,
  });
}

export async function startGateway(cfg: LoadedConfig, opts: GatewayOptions = {}): Promise<Gateway> {
  const log = opts.log ?? pino({ level: cfg.log.level, base: { svc: 'atrium' } });
  const print = opts.print ?? ((l: string) => process.stdout.write(`${l}\n`));
  // Commands are forked by a small helper process, not by the gateway's event loop (spawn.ts).
  forkThroughHelper();
  const runtime = await sessionRuntime(cfg);
  if (runtime?.placed)
    log.info({ dir: runtime.root, why: runtime.why }, "sessions use a copy of Atrium's files in runtimeDir");
  const agentArgv = [cfg.agent.node ?? process.execPath, cfg.agent.script ?? runtime!.agentScript];
  fs.mkdirSync(cfg.dataDir, { recursive: true, mode: 0o700 });
  const db = await openDb(databaseUrl(cfg), {
    poolSize: cfg.database.poolSize,
    onError: (e) => log.warn({ err: e.message }, 'database: an idle connection failed'),
  });

  let boundPort = cfg.server.port;
  const pub = () => publicUrl(cfg, boundPort);
  // On PostgreSQL other gateways may share the database: live events, polls and routes are shared.
  const shared =
    engineOf(db) === 'postgres' ? new SharedDatabase(db, databaseUrl(cfg), log, () => pub()) : null;
  const routes = new RouteTable(log.child({ part: 'tunnel' }));
  const bus = new EventBus(shared?.fanout);
  const metrics = new Metrics();
  metrics.sseClientCount = () => bus.size;
  metrics.polledJobs = () =>
    [...clusters.values()].map((c) => ({ cluster: c.name, jobs: c.poller.latestGood?.jobs ?? [] }));
  const audit = new AuditLog(db, log);
  const webSessions = new WebSessionStore(db, cfg.auth.sessionHours * 3600_000);
  const clusters = new Map<string, Cluster>();
  for (const c of cfg.clusters) clusters.set(c.name, new Cluster(c, cfg.dataDir, log));
  for (const c of clusters.values()) shared?.leases.add(c.poller);
  const hubUrl = () => (cfg.server.agentUrl ?? pub()).replace(/\/+$/, '');

  // The context is filled in below; the proxy hooks read it lazily.
  const ctxRef: { ctx?: AppContext } = {};
  const networks = new SourceNetworks(cfg);
  // What browsers do with each session's apps, for idle culling (src/sessions/idle-feature.ts).
  const activity = new ActivityBoard();
  const proxy = new GatewayProxy({
    routes,
    log,
    trustProxy: networks.fastifyTrust,
    ownCookies: [SESSION_COOKIE],
    hooks: {
      refusal: (req, cluster) => {
        const address = networks.clientOf(req);
        if (cluster === undefined) return networks.refusal(address);
        return networks.clusterRefusal(cluster, address, clusters.get(cluster)?.title);
      },
      refuse: sendRefusal,
      refuseUpgrade,
      authenticate: (req) => {
        const token = cookieOf(req.headers.cookie, SESSION_COOKIE);
        if (!token) return null;
        const asProxyUser = (s: import('../auth/web-sessions.ts').WebSession | null) =>
          s ? { id: s.user.id, username: s.user.username, sessionKey: s.id } : null;
        const hit = webSessions.peek(token);
        if (hit !== undefined) return asProxyUser(hit);
        return webSessions.lookup(token).then(asProxyUser);
      },
      placeholder: placeholderHandler(() => ctxRef.ctx!),
      ...(shared ? { loadRoute: (id: string) => shared.loadRoute(id) } : {}),
      ...rfbHooks({ log, onInput: (route) => activity.touchPrefix(route.prefix, 'input') }),
      onRequest: () => metrics.proxyRequests.inc(),
      onTraffic: (sessionId, app, kind) => activity.touch(sessionId, app, kind),
      onWsOpen: () => metrics.openWebSockets.inc(),
      onWsClose: () => metrics.openWebSockets.dec(),
    },
  });

  const sessions = new SessionService({
    db,
    cfg,
    clusters,
    routes,
    bus,
    log,
    audit,
    hubUrl,
    agentArgv,
    gateways: shared?.gateways,
    onTransition: (s, _from, to) => {
      metrics.sessionTransitions.inc({ to, cluster: s.cluster });
      if (to === 'running' && s.created_at) {
        metrics.spawnDuration.observe({ cluster: s.cluster, app: s.app }, (Date.now() - s.created_at) / 1000);
      }
      for (const f of transitionListeners) f(s, to);
    },
    onWarning: (s, minutes) => {
      for (const f of warningListeners) f(s, minutes);
    },
  });
  const transitionListeners: ((s: import('../db/sessions.ts').SessionRow, to: string) => void)[] = [];
  const warningListeners: ((s: import('../db/sessions.ts').SessionRow, minutes: number) => void)[] = [];

  const secure = pub().startsWith('https://');
  const ctx: AppContext = {
    cfg,
    db,
    log,
    bus,
    routes,
    proxy,
    clusters,
    sessions,
    webSessions,
    audit,
    metrics,
    loginLimiter: new RateLimiter(cfg.auth.loginAttemptsPerMinute, 60_000),
    signInMethods: createSignInMethods(cfg.auth, { db, log, publicUrl: pub }),
    publicUrl: pub,
    secureCookies: secure,
    networks,
    services: new Map<string, unknown>([
      ['session.onTransition', transitionListeners],
      ['session.onWarning', warningListeners],
      // Where sessions and the file helper find Atrium's files (a runtimeDir copy or the checkout).
      ['runtime.root', runtime?.root ?? ROOT],
      ['activity', activity],
    ]),
  };
  ctxRef.ctx = ctx;

  // Raw WebSocket endpoints of feature modules (terminal, desktop bridge) register here by path prefix.
  const upgradeHandlers: {
    prefix: string;
    handle: (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => void;
    /** false: callers are not the site's users (agents dialling out) and prove themselves otherwise. */
    sourceNetworks?: boolean;
  }[] = [];
  ctx.services.set('upgradeHandlers', upgradeHandlers);

  const app = Fastify({
    loggerInstance: log.child({ part: 'http' }),
    // Requests are not logged one by one (the proxy's hot path has its own metrics).
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: networks.fastifyTrust,
    bodyLimit: 1024 * 1024,
    serverFactory: (handler) => {
      // Every request is first put in its one spelling (src/server/paths.ts): the proxy, the router
      // and every check after this see the same path, and odd ones end here.
      const server = http.createServer((req, res) => {
        const target = canonicalTarget(req.url ?? '');
        if (!target.ok) return refusePath(res, target.why);
        req.url = target.url;
        if (target.proxied) proxy.web(req, res);
        else handler(req, res);
      });
      server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
        const target = canonicalTarget(req.url ?? '');
        if (!target.ok) {
          socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
          socket.destroy();
          return;
        }
        req.url = target.url;
        if (target.proxied) return proxy.upgrade(req, socket, head);
        const h = upgradeHandlers.find((u) => req.url?.startsWith(u.prefix));
        // The gateway's own WebSockets (terminal, desktop bridge) meet the site's rule like its routes,
        // except those whose callers are not users and prove themselves (`sourceNetworks: false`).
        const why = h?.sourceNetworks === false ? null : networks.refusal(networks.clientOf(req));
        if (why) return refuseUpgrade(socket, why);
        if (h) return h.handle(req, socket, head);
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
        socket.destroy();
      });
      server.keepAliveTimeout = 65_000;
      return server;
    },
  }) as unknown as FastifyInstance;

  await app.register(helmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        fontSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
    crossOriginEmbedderPolicy: false,
    hsts: secure ? { maxAge: 15552000 } : false,
  });
  registerValidation(app);
  registerAuth(app, ctx);
  // Every route as registered (after the policy defaults are filled in), for /api/openapi.json.
  const apiRoutes = collectRoutes(app);
  ctx.services.set('api.routes', apiRoutes);
  app.setErrorHandler((err: Error, req, reply) => {
    if (err instanceof HttpError) return reply.code(err.status).send(errorBody(err));
    // The database is down or restarting: a clear 503 (logged once per outage by the link, not per request).
    if (isDatabaseUnavailable(err))
      return reply
        .code(503)
        .header('retry-after', '5')
        .send({ error: unavailableReply(err) });
    const status = (err as { statusCode?: number }).statusCode ?? 500;
    if (status >= 500) log.error({ err, url: req.url }, 'request failed');
    return reply.code(status).send({ error: status >= 500 ? 'internal error' : err.message });
  });

  registerAuthRoutes(app, ctx);
  registerSessionRoutes(app, ctx);
  registerClusterRoutes(app, ctx);
  registerEventRoutes(app, ctx);
  registerAgentRoutes(app, ctx);
  const health = healthCheck(ctx);
  const healthRoute = {
    config: { rateLimit: false, sourceNetworks: false },
    schema: {
      summary: 'Whether this gateway can serve (for load balancers)',
      reply: { 200: HealthReply, 503: HealthReply },
    },
  };
  app.get('/api/health', healthRoute, async (_req, reply): Promise<HealthReply> => {
    const h = await health();
    if (!h.ok) reply.code(503).header('retry-after', '5');
    return h;
  });
  // The API's description is not secret: readable without signing in (rate-limited like the API).
  let openApi: Record<string, unknown> | null = null;
  app.get('/api/openapi.json', spec('This description of the API (OpenAPI 3.1)', OpenApiReply), async () => {
    openApi ??= openApiDocument(apiRoutes, { version: atriumVersion() });
    return openApi;
  });
  app.get('/metrics', { config: { sourceNetworks: false } }, async (req, reply) => {
    if (!metricsAllowed(cfg.metrics, req.ip, req.headers.authorization)) {
      return reply.code(403).send({ error: 'metrics are not open to this address (see metrics.allowFrom)' });
    }
    reply.header('content-type', ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });

  const features = [...FEATURES, ...(opts.features ?? [])];
  for (const f of features) await f.register(app, ctx);

  // The web UI: a single-page app; unknown non-API paths get its index page.
  if (fs.existsSync(path.join(WEB_DIR, 'index.html'))) {
    await app.register(fastifyStatic, {
      root: WEB_DIR,
      prefix: '/',
      index: false,
      wildcard: false,
      maxAge: '1h',
    });
    const index = fs.readFileSync(path.join(WEB_DIR, 'index.html'), 'utf8');
    app.setNotFoundHandler((req, reply) => {
      if (req.method === 'GET' && !req.url.startsWith('/api/') && !req.url.startsWith('/static/')) {
        return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(index);
      }
      return reply.code(404).send({ error: 'not found' });
    });
  } else {
    log.warn({ dir: WEB_DIR }, 'web UI not built (npm run build); only the API is served');
  }

  await app.ready();
  shared?.attach(ctx);
  const restored = await sessions.restore();
  sessions.start();
  await app.listen({ host: cfg.server.host, port: cfg.server.port });
  const server = app.server;
  boundPort = (server.address() as net.AddressInfo).port;
  const url = pub();
  log.info({ url, restored }, 'gateway listening');
  await bootstrapAdmin(db, cfg, print, url, opts.adminUnixUser);

  // Polls start after listening, so agents of running sessions can reach us as soon as we poll.
  for (const c of clusters.values()) {
    c.poller.onSnapshot((name) => {
      bus.publish({ cluster: name }, { type: 'resources', data: c.freeTable() });
    });
    c.poller.onPolled((name, snap) => {
      metrics.schedulerPolls.inc({ cluster: name });
      metrics.schedulerCalls.inc({ cluster: name }, snap.calls);
      metrics.pollDuration.observe({ cluster: name }, c.poller.lastDurationMs / 1000);
      metrics.pollApplyDuration.observe({ cluster: name }, c.poller.lastApplyMs / 1000);
      if (!snap.ok) metrics.pollFailures.inc({ cluster: name });
    });
    c.poller.start();
  }
  // Sharing a database, a poller polls once this gateway holds its cluster's lease.
  await shared?.start();
  for (const f of features) await f.start?.(ctx);
  const sweeper = setInterval(() => void webSessions.sweepExpired().catch(() => undefined), 3600_000);
  sweeper.unref();

  return {
    ctx,
    app,
    server,
    url,
    port: boundPort,
    async close() {
      clearInterval(sweeper);
      sessions.close();
      runtime?.close();
      for (const c of clusters.values()) {
        c.poller.stop();
        c.close();
      }
      for (const f of features) await f.stop?.(ctx);
      server.closeAllConnections?.();
      await app.close();
      proxy.close();
      metrics.close();
      for (const c of clusters.values()) await c.adapter.close?.();
      await shared?.stop();
      await db.destroy();
    },
  };
}
