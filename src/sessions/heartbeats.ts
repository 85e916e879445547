// Heartbeats of running sessions' agents: a session whose agent misses `heartbeatMissed` of them is
// flagged "not responding since HH:MM" (a field of the session, not a state: the app may still answer),
// and plain running again at the next beat.
import { type HeartbeatPolicy, notRespondingSince, type SessionState } from '../core/session-machine.ts';
import { isDatabaseUnavailable } from '../db/index.ts';
import { addSessionEvent, listActiveSessions, type SessionRow } from '../db/sessions.ts';
import { dropIdleConnections } from '../proxy/upstream.ts';
import type { SessionServiceDeps } from './deps.ts';

export interface HeartbeatDeps
  extends Pick<SessionServiceDeps, 'db' | 'cfg' | 'clusters' | 'routes' | 'log'> {
  /** Tells the owner's pages (and admins) the session as it is now. */
  publish: (row: SessionRow) => Promise<void>;
}

export class Heartbeats {
  /** Running sessions already announced as not responding (each silence is told once, live). */
  private readonly silent = new Set<string>();
  /** Heartbeats sent while this gateway was not running were lost: silence counts from its start. */
  private readonly startedAt = Date.now();
  private watch: NodeJS.Timeout | null = null;

  constructor(private readonly deps: HeartbeatDeps) {}

  private get policy(): HeartbeatPolicy {
    return {
      intervalMs: this.deps.cfg.sessions.heartbeatSeconds * 1000,
      missed: this.deps.cfg.sessions.heartbeatMissed,
    };
  }

  silentSince(row: SessionRow, now = Date.now()): number | null {
    return notRespondingSince(
      { state: row.state as SessionState, lastHeartbeatAt: row.last_heartbeat_at },
      now,
      this.policy,
      this.startedAt,
    );
  }

  /** A session that ended is silent no more. */
  forget(sessionId: string): void {
    this.silent.delete(sessionId);
  }

  /** A beat arrived (`row` as it is with it): a session that was silent is plain running again at once. */
  async heard(row: SessionRow): Promise<void> {
    if (!this.silent.delete(row.id)) return;
    // Heard from again (a stopped agent continued, a network came back).
    const route = this.deps.routes.get(row.id);
    if (route) route.notRespondingSince = undefined;
    this.deps.log.info({ session: row.id }, 'agent responding again');
    await addSessionEvent(this.deps.db, row.id, row.state, 'the agent is responding again');
    await this.deps.publish(row);
  }

  /**
   * Starts reading heartbeats: a running session whose agent misses `heartbeatMissed` of them is shown
   * as not responding (live, and on the proxy's error page) as soon as the next check sees it, which is
   * within half a heartbeat interval, not at the next poll.
   */
  start(): void {
    if (this.watch) return;
    const every = Math.max(250, Math.min(5_000, this.policy.intervalMs / 2));
    this.watch = setInterval(() => {
      this.check().catch((e) =>
        // The database restarting is said once (database link lost), not at every check.
        isDatabaseUnavailable(e)
          ? this.deps.log.debug({ err: (e as Error).message }, 'heartbeat check failed')
          : this.deps.log.error({ err: e }, 'heartbeat check failed'),
      );
    }, every);
    this.watch.unref();
  }

  close(): void {
    if (this.watch) clearInterval(this.watch);
    this.watch = null;
  }

  async check(now = Date.now()): Promise<void> {
    const active = await listActiveSessions(this.deps.db);
    for (const row of active) {
      const since = this.silentSince(row, now);
      // Every gateway marks its own routes; the one that polls the cluster records and tells it, once.
      const tells = this.deps.clusters.get(row.cluster)?.poller.leading ?? true;
      if (since === null && this.silent.delete(row.id)) {
        // The heartbeat reached another gateway sharing the database: running again here too.
        const route = this.deps.routes.get(row.id);
        if (route) route.notRespondingSince = undefined;
        if (tells) await this.deps.publish(row);
        continue;
      }
      if (since === null || this.silent.has(row.id)) continue;
      this.silent.add(row.id);
      const route = this.deps.routes.get(row.id);
      if (route) {
        route.notRespondingSince = since;
        dropIdleConnections(route.target);
        for (const sub of route.subRoutes?.values() ?? []) dropIdleConnections(sub.target);
      }
      if (!tells) continue;
      this.deps.log.warn(
        { session: row.id, lastHeartbeatAt: new Date(since).toISOString() },
        'agent not responding',
      );
      await addSessionEvent(
        this.deps.db,
        row.id,
        row.state,
        `not responding: no heartbeat since ${new Date(since).toISOString().slice(11, 16)} UTC`,
      );
      await this.deps.publish(row);
    }
    // Sessions that ended or stopped while silent are forgotten (they are not running any more).
    const running = new Set(active.filter((r) => r.state === 'running').map((r) => r.id));
    for (const id of this.silent) if (!running.has(id)) this.silent.delete(id);
  }
}
