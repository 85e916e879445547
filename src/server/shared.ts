// Several gateways on one PostgreSQL, any of them serving any request (docs/deploy.md): this gateway's
// link to the others. Live events fan out (src/db/fanout.ts); one gateway polls each cluster and shares
// the snapshot (src/db/poll-share.ts); the gateways' liveness settles sessions whose gateway died
// before submitting (src/db/gateways.ts); and triggers in the database tell every gateway when a
// session's route changed, a browser session ended or a user changed, so that each keeps its route
// table and sign-in cache true. After a lost connection all of it is read again from the tables.
import os from 'node:os';
import type { Logger } from 'pino';
import { Gauge } from 'prom-client';
import { newShortId } from '../auth/secrets.ts';
import { PgFanout } from '../db/fanout.ts';
import { GatewayRegistry } from '../db/gateways.ts';
import type { Db } from '../db/index.ts';
import { PgLink } from '../db/link.ts';
import { PollLeases } from '../db/poll-share.ts';
import type { Audience, LiveEvent } from '../events/bus.ts';
import type { ActivityBoard, ActivityKind } from '../sessions/idle.ts';
import type { AppContext } from './context.ts';
import { signedOutElsewhere } from './routes/auth.ts';
import { notificationService } from './routes/notifications.ts';

/** How often a gateway tells the others what it saw of the sessions' apps (idle culling). */
const ACTIVITY_EVERY_MS = 5000;
/** Entries per notification: well within PostgreSQL's 8000 bytes. */
const ACTIVITY_PER_NOTIFY = 100;

export class SharedDatabase {
  readonly id = `${os.hostname()}-${process.pid}-${newShortId(6)}`;
  readonly link: PgLink;
  readonly fanout: PgFanout<Audience, LiveEvent>;
  readonly leases: PollLeases;
  readonly gateways: GatewayRegistry;
  /** Route refreshes in order per session (a later change must not be undone by an earlier read). */
  private readonly refreshing = new Map<string, Promise<void>>();
  private activityTimer: NodeJS.Timeout | null = null;
  private ctx: AppContext | undefined;

  constructor(
    db: Db,
    url: string,
    private readonly log: Logger,
    publicUrl: () => string,
  ) {
    this.link = new PgLink(url, log, 'atrium-gateway');
    this.fanout = new PgFanout(db, this.link, this.id, log);
    this.leases = new PollLeases(db, this.link, this.id, log);
    this.gateways = new GatewayRegistry(db, this.id, publicUrl, log);
  }

  /** Follows what the other gateways change; `ctx` is complete (sessions, sign-in cache, proxy). */
  attach(ctx: AppContext): void {
    ctx.services.set('shared', this);
    this.ctx = ctx;
    const registers = [ctx.metrics.registry];
    const { gateways, leases } = this;
    new Gauge({
      name: 'atrium_gateways_alive',
      help: 'Gateways sharing the database that were heard from in the last 2 s (this one included)',
      registers,
      collect() {
        this.set(gateways.alive().length);
      },
    });
    new Gauge({
      name: 'atrium_scheduler_poll_leader',
      help: "1 while this gateway holds the cluster's poll lease (it polls; the others take its snapshots)",
      labelNames: ['cluster'] as const,
      registers,
      collect() {
        for (const [cluster, s] of Object.entries(leases.status())) this.set({ cluster }, s.polls ? 1 : 0);
      },
    });
    this.link.listen('atrium_session', (id) => this.refreshRoute(ctx, id));
    this.link.listen('atrium_web_session', (payload) => {
      let m: { id?: string; user?: number; ended?: boolean };
      try {
        m = JSON.parse(payload) as typeof m;
      } catch {
        return;
      }
      if (typeof m.id !== 'string') return;
      ctx.webSessions.forget(m.id);
      if (m.ended && typeof m.user === 'number') signedOutElsewhere(ctx, m.user, m.id);
    });
    this.link.listen('atrium_user', (id) => ctx.webSessions.invalidateUser(Number(id)));
    this.link.listen('atrium_prefs', (id) => notificationService(ctx).forgetPrefs(Number(id)));
    const board = ctx.services.get('activity') as ActivityBoard | undefined;
    if (board) this.shareActivity(board);
    this.link.onReconnect(() => {
      ctx.webSessions.forgetAll();
      ctx.sessions
        .resyncRoutes()
        .catch((e: Error) =>
          this.log.warn({ err: e.message }, 'routes not rebuilt after the database link came back'),
        );
    });
  }

  /**
   * What users do with their sessions' apps through this gateway reaches the others every few seconds
   * (as ages, so the hosts' clocks do not matter): idle culling judges all of it (src/sessions/idle.ts).
   */
  private shareActivity(board: ActivityBoard): void {
    this.link.listen('atrium_activity', (payload) => {
      let m: { o?: string; e?: [string, string | null, ActivityKind, number][] };
      try {
        m = JSON.parse(payload) as typeof m;
      } catch {
        return;
      }
      if (m.o === this.id || !Array.isArray(m.e)) return;
      const now = Date.now();
      for (const [session, app, kind, age] of m.e)
        board.touch(session, app ?? undefined, kind, now - age, false);
    });
    this.activityTimer = setInterval(() => {
      const now = Date.now();
      const seen = board.takeFresh();
      for (let i = 0; i < seen.length; i += ACTIVITY_PER_NOTIFY) {
        const e = seen.slice(i, i + ACTIVITY_PER_NOTIFY).map(([s, a, k, at]) => [s, a ?? null, k, now - at]);
        void this.link.notify('atrium_activity', JSON.stringify({ o: this.id, e }));
      }
    }, ACTIVITY_EVERY_MS);
    this.activityTimer.unref();
  }

  /**
   * The session's route read from the database now, after any refresh already under way: the proxy asks
   * when a request comes for a session this gateway has no route for (a user may reach this gateway
   * before the other one's notice that the session is running).
   */
  loadRoute(id: string): Promise<void> {
    return this.ctx ? this.refreshRoute(this.ctx, id) : Promise.resolve();
  }

  private refreshRoute(ctx: AppContext, id: string): Promise<void> {
    const prev = this.refreshing.get(id) ?? Promise.resolve();
    const next = prev
      .then(() => ctx.sessions.refreshRoute(id))
      .catch((e: Error) => this.log.warn({ session: id, err: e.message }, 'route not refreshed'))
      .finally(() => {
        if (this.refreshing.get(id) === next) this.refreshing.delete(id);
      });
    this.refreshing.set(id, next);
    return next;
  }

  /** Connects the link (briefly waited for: events of the first seconds are not lost) and joins. */
  async start(): Promise<void> {
    this.link.start();
    if (!(await this.link.ready(5000)))
      this.log.warn(
        'database link not connected yet: live events and route changes of other gateways wait for it',
      );
    await this.gateways.start();
    this.leases.start();
    this.log.info({ gateway: this.id }, 'sharing the database with any other gateways');
  }

  async stop(): Promise<void> {
    if (this.activityTimer) clearInterval(this.activityTimer);
    await this.leases.stop();
    await this.gateways.stop();
    await Promise.allSettled([...this.refreshing.values()]);
    await this.link.close();
  }
}
