// Idle culling wired into the gateway: the culler (src/sessions/idle.ts) reads the activity board the
// proxy and the desktop bridge fill (created in src/server/gateway.ts), warns owners through the
// notifications, stops sessions through the session service, counts the stops for /metrics, and shows
// each session's idle time to its owner and to administrators.
import type { FastifyInstance } from 'fastify';
import { Counter } from 'prom-client';
import { IdleReply } from '../../api/sessions.ts';
import { listActiveSessions, type SessionRow } from '../../db/sessions.ts';
import { findUserById } from '../../db/users.ts';
import { sessionPrefix } from '../../proxy/routes.ts';
import {
  ActivityBoard,
  describeMinutes,
  IdleCuller,
  type IdleStatus,
  probeApp,
} from '../../sessions/idle.ts';
import { requireUser } from '../auth.ts';
import type { AppContext } from '../context.ts';
import type { Feature } from '../feature.ts';
import { spec } from '../route-spec.ts';
import { notificationService } from '../routes/notifications.ts';

export function idleCuller(ctx: AppContext): IdleCuller | undefined {
  return ctx.services.get('idle') as IdleCuller | undefined;
}

function culledCounter(ctx: AppContext): Counter<'cluster' | 'app'> {
  const reg = ctx.metrics.registry;
  const existing = reg.getSingleMetric('atrium_sessions_culled_total');
  if (existing) return existing as Counter<'cluster' | 'app'>;
  return new Counter({
    name: 'atrium_sessions_culled_total',
    help: 'Sessions stopped for being idle (idle culling), by cluster and app',
    labelNames: ['cluster', 'app'] as const,
    registers: [reg],
  });
}

export const idleFeature: Feature = {
  name: 'idle',
  register(app: FastifyInstance, ctx: AppContext) {
    const board = (ctx.services.get('activity') as ActivityBoard | undefined) ?? new ActivityBoard();
    const log = ctx.log.child({ part: 'idle' });
    const culled = culledCounter(ctx);
    const notifications = notificationService(ctx);
    const what = (s: SessionRow) => {
      const a = ctx.cfg.appCatalogue.find((x) => x.id === s.app)?.name ?? s.app;
      const cluster = ctx.clusters.get(s.cluster)?.title ?? s.cluster;
      return `${s.label ? `"${s.label}" (${a})` : a} on ${cluster}`;
    };
    const link = async (s: SessionRow) =>
      sessionPrefix((await findUserById(ctx.db, s.user_id))?.username ?? '', s.id);
    // With several gateways every one keeps each session's clock (activity is shared between them), and
    // the one that polls the session's cluster warns and stops: once.
    const acts = (s: SessionRow) => ctx.clusters.get(s.cluster)?.poller.leading ?? true;
    const publish = (s: SessionRow, status: IdleStatus) =>
      ctx.bus.publish({ userId: s.user_id }, { type: 'session.idle', data: status });

    const culler = new IdleCuller({
      cfg: ctx.cfg.idle,
      app: (id) => ctx.cfg.appCatalogue.find((a) => a.id === id),
      defaultPartition: (name) => ctx.clusters.get(name)?.cfg.slurm?.partition ?? null,
      running: () => listActiveSessions(ctx.db),
      route: (id) => ctx.routes.get(id),
      board,
      probe: (ep, signal) => probeApp(ep, signal),
      log,
      async warn(s, status) {
        if (!acts(s)) return;
        publish(s, status);
        const left = Math.max(0, (status.stopsAt ?? Date.now()) - Date.now()) / 60_000;
        await notifications.notify(
          s.user_id,
          'session.idle',
          'Idle session will be stopped',
          `Your session ${what(s)} has been idle for ${describeMinutes(Math.round(status.idleSeconds) / 60)}: it will be stopped in about ${describeMinutes(Math.max(1, Math.round(left * 60)) / 60)} unless you use it.`,
          await link(s),
        );
      },
      changed: (s, status) => {
        if (acts(s)) publish(s, status);
      },
      async stop(s, reason, status) {
        if (!acts(s)) return;
        publish(s, status);
        culled.inc({ cluster: s.cluster, app: s.app });
        await ctx.audit
          .record({
            actor: 'atrium',
            action: 'session.idle_stop',
            target: s.id,
            ok: true,
            details: { idleSeconds: status.idleSeconds, minutes: status.minutes },
          })
          .catch(() => undefined);
        await ctx.sessions.stop(s, reason);
      },
    });
    ctx.services.set('idle', culler);

    /** The caller's running sessions' idle state (the Sessions page). */
    app.get(
      '/api/sessions/idle',
      spec('Idle state of your running sessions (idle culling)', IdleReply),
      async (req): Promise<IdleReply> => {
        const user = requireUser(req, 'read');
        const mine = new Set(
          (await listActiveSessions(ctx.db)).filter((s) => s.user_id === user.id).map((s) => s.id),
        );
        return { enabled: culler.enabled, sessions: culler.all().filter((s) => mine.has(s.id)) };
      },
    );

    /** Every running session's idle state (the admin page). */
    app.get(
      '/api/admin/idle',
      spec('Idle state of every running session', IdleReply),
      async (): Promise<IdleReply> => ({ enabled: culler.enabled, sessions: culler.all() }),
    );
  },
  start(ctx: AppContext) {
    idleCuller(ctx)?.start();
  },
  stop(ctx: AppContext) {
    idleCuller(ctx)?.stop();
  },
};
