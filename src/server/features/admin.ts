// Administration as one feature module: every session and job, stopping a session, draining a cluster
// from new sessions, announcements on every user's dashboard, the session gauge of /metrics.
// Everything an admin changes is in the database (src/admin/store.ts); a short sync loop applies
// what the CLI (`atrium admin ...`, which works on the database) changed while the gateway runs.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  type Announcement,
  type AnnouncementLevel,
  allAnnouncements,
  allJobs,
  checkAnnouncement,
  createAnnouncement,
  currentAnnouncements,
  drainFlags,
  expireAnnouncement,
  sessionCounts,
  setDrained,
  takeStopRequests,
} from '../../admin/store.ts';
import {
  AdminClusterReply,
  AdminClustersReply,
  type AdminClusterView,
  AdminJobsReply,
  AdminRoutesReply,
  AdminSessionsQuery,
  AdminSessionsReply,
  AnnouncementParams,
  AnnouncementReply,
  AnnouncementsReply,
  NewAnnouncementBody,
} from '../../api/admin.ts';
import { ClusterParams } from '../../api/clusters.ts';
import { OkReply } from '../../api/common.ts';
import { SessionParams, SessionReply } from '../../api/sessions.ts';
import { orNull } from '../../core/nullable.ts';
import { isActive, REASONS, type SessionState } from '../../core/session-machine.ts';
import { getSession, listAllSessions } from '../../db/sessions.ts';
import { FINISHED_JOB_STATES } from '../../scheduler/types.ts';
import { clientIp, HttpError, requireAdmin, requireUser } from '../auth.ts';
import type { AppContext } from '../context.ts';
import type { Feature } from '../feature.ts';
import { spec } from '../route-spec.ts';

/** How often the gateway applies changes made through the CLI (drain flags, announcements, stops). */
export const ADMIN_SYNC_MS = 3000;

const ID_RE = /^[a-z0-9]{4,32}$/;

class AdminRuntime {
  private timer: NodeJS.Timeout | null = null;
  private announcementsKey = '';
  private syncing: Promise<void> | null = null;

  constructor(private readonly ctx: AppContext) {}

  start(): void {
    void this.sync();
    this.timer = setInterval(() => void this.sync(), ADMIN_SYNC_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Applies the database's drain flags, announcements and stop requests (coalesced). */
  sync(): Promise<void> {
    this.syncing ??= this.syncOnce()
      .catch((e: Error) => this.ctx.log.warn({ err: e.message }, 'admin sync failed'))
      .finally(() => {
        this.syncing = null;
      });
    return this.syncing;
  }

  private async syncOnce(): Promise<void> {
    const { ctx } = this;
    const flags = await drainFlags(ctx.db);
    for (const c of ctx.clusters.values()) {
      const v = flags.get(c.name) ?? null;
      if (v !== c.drainedOverride) {
        c.drainedOverride = v;
        ctx.bus.publish({ all: true }, { type: 'cluster', data: { name: c.name, drained: c.drained } });
      }
    }
    const list = await currentAnnouncements(ctx.db);
    const key = JSON.stringify(list.map((a) => [a.id, a.expiresAt]));
    if (key !== this.announcementsKey) {
      this.announcementsKey = key;
      ctx.bus.publish({ all: true }, { type: 'announcement', data: { announcements: list } });
    }
    for (const r of await takeStopRequests(ctx.db)) {
      const row = await getSession(ctx.db, r.sessionId);
      if (!row || !isActive(row.state as SessionState)) continue;
      await ctx.audit.record({
        actor: r.actor,
        action: 'admin.session.stop',
        target: row.id,
        ok: true,
        details: { via: 'cli' },
      });
      await ctx.sessions.stop(row, REASONS.stoppedByAdmin);
    }
  }
}

function clusterView(ctx: AppContext, name: string): AdminClusterView {
  const c = ctx.clusters.get(name)!;
  const snap = c.poller.latestGood;
  const jobs = (snap?.jobs ?? []).filter((j) => !FINISHED_JOB_STATES.has(j.state));
  return {
    name: c.name,
    title: c.title,
    backend: c.cfg.backend,
    drained: c.drained,
    drainedByConfig: c.cfg.drained,
    reachable: c.poller.reachable,
    lastPollAt: c.poller.latest?.at ?? null,
    error: c.poller.latest?.ok === false ? (c.poller.latest.error ?? null) : null,
    allowGroups: c.cfg.allowGroups,
    free: c.freeTable(),
    jobs: jobs.map((j) => ({
      jobId: j.jobId,
      name: j.name,
      user: j.user,
      state: j.state,
      ...orNull(j, ['reason', 'partition', 'nodes', 'cpus', 'memoryMb', 'gpus', 'startTime']),
      session: j.name.startsWith('atrium-') ? (j.comment ?? null) : null,
    })),
  };
}

function clusterOf(ctx: AppContext, req: FastifyRequest<{ Params: ClusterParams }>): string {
  const { name } = req.params;
  if (!ctx.clusters.has(name)) throw new HttpError(404, 'no such cluster', 'cluster');
  return name;
}

function parseExpiry(body: NewAnnouncementBody): number | null | 'bad' {
  if (body.expiresAt !== undefined && body.expiresAt !== null && body.expiresAt !== '') {
    const v = typeof body.expiresAt === 'string' ? Date.parse(body.expiresAt) : Number(body.expiresAt);
    return Number.isFinite(v) ? v : 'bad';
  }
  if (body.hours !== undefined && body.hours !== null && body.hours !== '') {
    const h = Number(body.hours);
    return Number.isFinite(h) && h > 0 && h <= 24 * 366 ? Date.now() + h * 3600_000 : 'bad';
  }
  return null;
}

// Every route under /api/admin/ is for administrators (its route policy, checked before the handler);
// each handler asks again for the admin it acts as.
function registerAdminRoutes(fastify: FastifyInstance, ctx: AppContext, rt: AdminRuntime): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const sessionsSpec = spec("Every user's sessions, newest first", AdminSessionsReply, {
    querystring: AdminSessionsQuery,
  });
  app.get('/api/admin/sessions', sessionsSpec, async (req): Promise<AdminSessionsReply> => {
    requireAdmin(req);
    const q = req.query;
    const limit = Math.min(Math.max(q.limit ?? 500, 1), 5000);
    let rows = await listAllSessions(ctx.db, limit);
    if (q.state === 'active') rows = rows.filter((r) => isActive(r.state as SessionState));
    const sessions = await Promise.all(
      rows.map(async (r) => ({ ...(await ctx.sessions.view(r)), user: r.username, userId: r.user_id })),
    );
    return { sessions };
  });

  const stop = spec("Stop any user's session", SessionReply, { params: SessionParams });
  app.post('/api/admin/sessions/:id/stop', stop, async (req): Promise<SessionReply> => {
    const admin = requireAdmin(req);
    const { id } = req.params;
    const row = ID_RE.test(id) ? await getSession(ctx.db, id) : undefined;
    if (!row) throw new HttpError(404, 'no such session');
    const updated = await ctx.sessions.stop(row, REASONS.stoppedByAdmin, { user: admin, ip: clientIp(req) });
    return { session: await ctx.sessions.view(updated) };
  });

  const jobsSpec = spec('Batch jobs of every user submitted through Atrium, newest first', AdminJobsReply);
  app.get('/api/admin/jobs', jobsSpec, async (req): Promise<AdminJobsReply> => {
    requireAdmin(req);
    const jobs = await allJobs(ctx.db);
    return {
      jobs: jobs.map((j) => ({
        id: j.id,
        cluster: j.cluster,
        jobId: j.job_id,
        name: j.name,
        user: j.username,
        partition: j.partition,
        state: j.state,
        reason: j.reason,
        exitCode: j.exit_code,
        submittedAt: j.submitted_at,
        startedAt: j.started_at,
        endedAt: j.ended_at,
      })),
    };
  });

  app.get(
    '/api/admin/clusters',
    spec(
      "Every cluster: drain state, the scheduler's health, free resources and the queue",
      AdminClustersReply,
    ),
    async (req): Promise<AdminClustersReply> => {
      requireAdmin(req);
      return { clusters: [...ctx.clusters.keys()].map((n) => clusterView(ctx, n)) };
    },
  );

  const drain =
    (drained: boolean) =>
    async (req: FastifyRequest<{ Params: ClusterParams }>): Promise<AdminClusterReply> => {
      const admin = requireAdmin(req);
      const name = clusterOf(ctx, req);
      await setDrained(ctx.db, name, drained);
      await ctx.audit.record({
        actorUserId: admin.id,
        actor: admin.username,
        action: drained ? 'admin.cluster.drain' : 'admin.cluster.undrain',
        target: name,
        ip: clientIp(req),
        ok: true,
      });
      await rt.sync();
      return { cluster: clusterView(ctx, name) };
    };
  const draining = (summary: string) => spec(summary, AdminClusterReply, { params: ClusterParams });
  app.post(
    '/api/admin/clusters/:name/drain',
    draining('Close a cluster for new sessions (running ones go on)'),
    drain(true),
  );
  app.post(
    '/api/admin/clusters/:name/undrain',
    draining('Open a drained cluster for new sessions again'),
    drain(false),
  );

  app.get(
    '/api/admin/announcements',
    spec('Every announcement, newest first (taken down and expired ones too)', AnnouncementsReply),
    async (req): Promise<AnnouncementsReply> => {
      requireAdmin(req);
      return { announcements: await allAnnouncements(ctx.db) };
    },
  );

  app.post(
    '/api/admin/announcements',
    spec('Post an announcement on every dashboard', AnnouncementReply, { body: NewAnnouncementBody }, 201),
    async (req, reply) => {
      const admin = requireAdmin(req);
      const body = req.body;
      const level = body.level === undefined || body.level === '' ? 'info' : body.level;
      const expiresAt = parseExpiry(body);
      if (expiresAt === 'bad') throw new HttpError(400, 'expiresAt: a time in the future', 'expiresAt');
      const problem = checkAnnouncement(body.message, level, expiresAt);
      if (problem) throw new HttpError(400, problem, problem.split(':')[0]);
      const id = await createAnnouncement(ctx.db, {
        message: String(body.message),
        level: level as AnnouncementLevel,
        expiresAt,
        authorUserId: admin.id,
      });
      await ctx.audit.record({
        actorUserId: admin.id,
        actor: admin.username,
        action: 'admin.announcement.create',
        target: String(id),
        ip: clientIp(req),
        ok: true,
        details: { level, expiresAt },
      });
      await rt.sync();
      const a = (await allAnnouncements(ctx.db)).find((x) => x.id === id) as Announcement;
      return reply.code(201).send({ announcement: a } satisfies AnnouncementReply);
    },
  );

  app.post(
    '/api/admin/announcements/:id/expire',
    spec('Take an announcement down', OkReply, { params: AnnouncementParams }),
    async (req): Promise<OkReply> => {
      const admin = requireAdmin(req);
      const id = Number(req.params.id);
      if (!Number.isSafeInteger(id) || !(await expireAnnouncement(ctx.db, id)))
        throw new HttpError(404, 'no such announcement');
      await ctx.audit.record({
        actorUserId: admin.id,
        actor: admin.username,
        action: 'admin.announcement.expire',
        target: String(id),
        ip: clientIp(req),
        ok: true,
      });
      await rt.sync();
      return { ok: true };
    },
  );

  /**
   * The admin routes this gateway serves (method and path), read from the router once it is ready,
   * so tools and tests can check every one of them (e.g. that non-admins get 403 everywhere).
   */
  let adminRoutes: { method: string; path: string }[] = [];
  app.addHook('onReady', async () => {
    adminRoutes = routesFromTree(app.printRoutes({ commonPrefix: false })).filter((r) =>
      r.path.startsWith('/api/admin/'),
    );
  });
  app.get(
    '/api/admin/routes',
    spec('The admin routes this gateway serves (method and path)', AdminRoutesReply),
    async (req): Promise<AdminRoutesReply> => {
      requireAdmin(req);
      return { routes: adminRoutes };
    },
  );

  // Every signed-in user: what to show on the dashboard.
  app.get(
    '/api/announcements',
    spec('The announcements on the dashboard now', AnnouncementsReply),
    async (req): Promise<AnnouncementsReply> => {
      requireUser(req, 'read');
      return { announcements: await currentAnnouncements(ctx.db) };
    },
  );
}

/** Method and full path of each route in fastify's printRoutes({ commonPrefix: false }) tree. */
export function routesFromTree(tree: string): { method: string; path: string }[] {
  const out: { method: string; path: string }[] = [];
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const m = /^([│ ]*)[├└]── (\S+)(?: \(([^)]*)\))?/.exec(line);
    if (!m) continue;
    const depth = Math.floor((m[1] ?? '').length / 4);
    stack.length = depth;
    const full = (stack[depth - 1] ?? '') + m[2];
    stack[depth] = full;
    for (const method of (m[3] ?? '').split(',').map((s) => s.trim())) {
      if (method && method !== 'HEAD' && method !== 'OPTIONS') out.push({ method, path: full });
    }
  }
  return out;
}

export const adminFeature: Feature = {
  name: 'admin',
  async register(app, ctx) {
    const rt = new AdminRuntime(ctx);
    ctx.services.set('admin', rt);
    ctx.metrics.sessionCounts = () => sessionCounts(ctx.db);
    registerAdminRoutes(app, ctx, rt);
    // Drain flags apply before the first request.
    await rt.sync();
  },
  start(ctx) {
    (ctx.services.get('admin') as AdminRuntime).start();
  },
  stop(ctx) {
    (ctx.services.get('admin') as AdminRuntime | undefined)?.stop();
  },
};
