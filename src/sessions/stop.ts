// Stopping a session: by its owner, an admin, the idle culler or the gateway itself (time limit, start
// timeout, a failed node). The route goes at once (state `ending`); the session ends when the poll sees
// its job gone, so a cancel that fails is asked again rather than believed.
import { isTerminal, type SessionState } from '../core/session-machine.ts';
import { type SessionRow, updateSession } from '../db/sessions.ts';
import type { User } from '../db/users.ts';
import type { SessionServiceDeps } from './deps.ts';
import type { SessionOwners } from './owners.ts';
import type { SessionStates } from './states.ts';

export interface StopDeps extends Pick<SessionServiceDeps, 'db' | 'clusters' | 'audit' | 'log'> {
  owners: SessionOwners;
  states: SessionStates;
}

export class SessionStopper {
  constructor(private readonly deps: StopDeps) {}

  async stop(row: SessionRow, reason: string, actor?: { user: User; ip?: string }): Promise<SessionRow> {
    if (isTerminal(row.state as SessionState)) return row;
    const { states } = this.deps;
    const cluster = this.deps.clusters.get(row.cluster);
    if (actor) {
      await this.deps.audit.record({
        actorUserId: actor.user.id,
        actor: actor.user.username,
        action: actor.user.id === row.user_id ? 'session.stop' : 'admin.session.stop',
        target: row.id,
        ip: actor.ip,
        ok: true,
      });
    }
    if (!row.job_id) {
      const t = await states.apply(row, { type: 'stop_requested', reason });
      return states.apply(t, { type: 'job_finished', reason });
    }
    const updated = await states.apply(row, { type: 'stop_requested', reason });
    const identity = await this.deps.owners.identity(row.user_id);
    if (cluster && identity) {
      try {
        await cluster.adapter.cancel(identity, row.job_id);
      } catch (e) {
        this.deps.log.warn(
          { session: row.id, err: (e as Error).message },
          'cancel failed; will retry on the next poll',
        );
      }
      cluster.poller.wake();
    }
    return updated;
  }

  /** A job still there after its stop (the cancel may have failed while the scheduler was down): asked again. */
  async cancelAgain(row: SessionRow, jobId: string): Promise<void> {
    const identity = await this.deps.owners.identity(row.user_id);
    const cluster = this.deps.clusters.get(row.cluster);
    if (cluster && identity) await cluster.adapter.cancel(identity, jobId).catch(() => undefined);
    // Touched, so the next ask waits as long again.
    await updateSession(this.deps.db, row.id, {});
  }
}
