// Starts the whole gateway: database, clusters and their pollers, sessions, proxy and web server.
// Stopping it leaves every session running: state is in the database and the jobs are the scheduler's.
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import helmet from '@fastify/helmet';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyInstance } from 'fastify';
import pino, { type Logger } from 'pino';
import { ensureAgent } from '../agent/bundle.ts';
import { generatePassword, hashPassword } from '../auth/passwords.ts';
import { LocalPasswordProvider, type PasswordProvider } from '../auth/providers.ts';
import { RateLimiter } from '../auth/rate-limit.ts';
import { WebSessionStore } from '../auth/web-sessions.ts';
import { databaseUrl, type LoadedConfig, publicUrl } from '../config/load.ts';
import { AuditLog } from '../db/audit.ts';
import { type Db, openDb } from '../db/index.ts';
import { countUsers, createUser } from '../db/users.ts';
import { GatewayProxy } from '../proxy/proxy.ts';
import { rfbHooks } from '../proxy/rfb-bridge.ts';
import { RouteTable } from '../proxy/routes.ts';
import '../scheduler/backends.ts';
import { Cluster } from '../sessions/clusters.ts';
import { SessionService } from '../sessions/service.ts';
import { lookupUnixUser } from '../system/users.ts';
import { cookieOf, HttpError, registerAuth } from './auth.ts';
import { type AppContext, SESSION_COOKIE } from './context.ts';
import { EventBus } from './events.ts';
import { FEATURES, type Feature } from './features.ts';
import { Metrics, metricsAllowed } from './metrics.ts';
import { placeholderHandler } from './placeholder.ts';
import { registerAgentRoutes } from './routes/agent.ts';
import { registerAuthRoutes } from './routes/auth.ts';
import { registerClusterRoutes } from './routes/clusters.ts';
import { registerEventRoutes } from './routes/events.ts';
import { registerSessionRoutes } from './routes/sessions.ts';

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
  await createUser(db, {
    username: 'admin',
    unixUser: unix,
    passwordHash: await hashPassword(password),
    isAdmin: true,
  });
  const pwFile = path.join(cfg.dataDir, 'initial-admin-password');
  fs.writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
  print('');
  print('atrium: created the first administrator account.');
  print(`atrium:   open ${url}/login and sign in as "admin" with the password: ${password}`);
  print(`atrium:   (also saved in ${pwFile}; sessions of "admin" run as Unix user "${unix}")`);
  print('atrium:   add users with: atrium user add <name> [--unix-user <unix name>]');
  print('');
}

export async function startGateway(cfg: LoadedConfig, opts: GatewayOptions = {}): Promise<Gateway> {
  const log = opts.log ?? pino({ level: cfg.log.level, base: { svc: 'atrium' } });
  const print = opts.print ?? ((l: string) => process.stdout.write(`${l}\n`));
  fs.mkdirSync(cfg.dataDir, { recursive: true, mode: 0o700 });
  const db = await openDb(databaseUrl(cfg));
  const agentScript = cfg.agent.script ?? (await ensureAgent());
  const agentArgv = [cfg.agent.node ?? process.execPath, agentScript];

  const routes = new RouteTable();
  const bus = new EventBus();
  const metrics = new Metrics();
  const audit = new AuditLog(db, log);
  const webSessions = new WebSessionStore(db, cfg.auth.sessionHours * 3600_000);
  const clusters = new Map<string, Cluster>();
  for (const c of cfg.clusters) clusters.set(c.name, new Cluster(c, cfg.dataDir, log));

  let boundPort = cfg.server.port;
  const pub = () => publicUrl(cfg, boundPort);
  const hubUrl = () => (cfg.server.agentUrl ?? pub()).replace(/\/+$/, '');

  // The context is filled in below; the proxy hooks read it lazily.
  const ctxRef: { ctx?: AppContext } = {};
  const proxy = new GatewayProxy({
    routes,
    log,
    trustProxy: cfg.server.trustProxy,
    ownCookies: [SESSION_COOKIE],
    hooks: {
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
      ...rfbHooks({ log }),
      onRequest: () => metrics.proxyRequests.inc(),
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

  const passwordProviders: PasswordProvider[] = [];
  if (cfg.auth.local.enabled) passwordProviders.push(new LocalPasswordProvider(db));

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
    passwordProviders,
    publicUrl: pub,
    secureCookies: secure,
    services: new Map<string, unknown>([
      ['session.onTransition', transitionListeners],
      ['session.onWarning', warningListeners],
    ]),
  };
  ctxRef.ctx = ctx;

  // Raw WebSocket endpoints of feature modules (terminal, desktop bridge) register here by path prefix.
  const upgradeHandlers: {
    prefix: string;
    handle: (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => void;
  }[] = [];
  ctx.services.set('upgradeHandlers', upgradeHandlers);

  const app = Fastify({
    loggerInstance: log.child({ part: 'http' }),
    disableRequestLogging: true,
    trustProxy: cfg.server.trustProxy,
    bodyLimit: 1024 * 1024,
    serverFactory: (handler) => {
      const server = http.createServer((req, res) => {
        if (req.url?.startsWith('/user/')) proxy.web(req, res);
        else handler(req, res);
      });
      server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
        if (req.url?.startsWith('/user/')) return proxy.upgrade(req, socket, head);
        const h = upgradeHandlers.find((u) => req.url?.startsWith(u.prefix));
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
  registerAuth(app, ctx);
  app.setErrorHandler((err: Error, req, reply) => {
    if (err instanceof HttpError) {
      return reply.code(err.status).send({ error: err.message, ...(err.field ? { field: err.field } : {}) });
    }
    const status = (err as { statusCode?: number }).statusCode ?? 500;
    if (status >= 500) log.error({ err, url: req.url }, 'request failed');
    return reply.code(status).send({ error: status >= 500 ? 'internal error' : err.message });
  });

  registerAuthRoutes(app, ctx);
  registerSessionRoutes(app, ctx);
  registerClusterRoutes(app, ctx);
  registerEventRoutes(app, ctx);
  registerAgentRoutes(app, ctx);
  app.get('/api/health', async () => ({ ok: true }));
  app.get('/metrics', async (req, reply) => {
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
  const restored = await sessions.restore();
  await app.listen({ host: cfg.server.host, port: cfg.server.port });
  const server = app.server;
  boundPort = (server.address() as net.AddressInfo).port;
  const url = pub();
  log.info({ url, restored }, 'gateway listening');
  await bootstrapAdmin(db, cfg, print, url, opts.adminUnixUser);

  // Polls start after listening, so agents of running sessions can reach us as soon as we poll.
  for (const c of clusters.values()) {
    c.poller.onSnapshot((name, snap) => {
      metrics.schedulerPolls.inc({ cluster: name });
      metrics.schedulerCalls.inc({ cluster: name }, snap.calls);
      metrics.pollDuration.observe({ cluster: name }, c.poller.lastDurationMs / 1000);
      if (!snap.ok) metrics.pollFailures.inc({ cluster: name });
      bus.publish({ cluster: name }, { type: 'resources', data: c.freeTable() });
    });
    c.poller.start();
  }
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
      for (const c of clusters.values()) c.poller.stop();
      for (const f of features) await f.stop?.(ctx);
      server.closeAllConnections?.();
      await app.close();
      proxy.close();
      for (const c of clusters.values()) await c.adapter.close?.();
      await db.destroy();
    },
  };
}
