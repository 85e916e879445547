// The one way a session changes state: an event of the state machine (src/core/session-machine.ts),
// written with a compare-and-set on the state it was in, recorded, and told to its owner's pages. Also
// how a session is shown (`SessionView`, a type of the API contract).
import type { SessionView } from '../api/sessions.ts';
import { extraAppBase } from '../apps/types.ts';
import { extensionOffer } from '../core/extension.ts';
import type { SessionRequest } from '../core/request.ts';
import { isActive, isTerminal, next, type SessionEvent, type SessionState } from '../core/session-machine.ts';
import {
  addSessionEvent,
  casState,
  getSession,
  type QueueInfo,
  type SessionRow,
  updateSession,
} from '../db/sessions.ts';
import { sessionPrefix } from '../proxy/routes.ts';
import type { SessionServiceDeps } from './deps.ts';
import type { Heartbeats } from './heartbeats.ts';
import type { SessionOwners } from './owners.ts';
import { appOf } from './routing.ts';

export interface SessionStatesDeps
  extends Pick<SessionServiceDeps, 'db' | 'cfg' | 'clusters' | 'routes' | 'bus' | 'log' | 'onTransition'> {
  owners: SessionOwners;
  heartbeats: Pick<Heartbeats, 'silentSince' | 'forget'>;
}

export class SessionStates {
  constructor(private readonly deps: SessionStatesDeps) {}

  async view(row: SessionRow): Promise<SessionView> {
    const username = await this.deps.owners.username(row.user_id);
    const cluster = this.deps.clusters.get(row.cluster);
    const state = row.state as SessionState;
    const unknown =
      isActive(state) && state !== 'requested' && cluster !== undefined && !cluster.poller.reachable;
    const prefix = sessionPrefix(username, row.id);
    const app = appOf(this.deps.cfg, row.app);
    const request = JSON.parse(row.request) as SessionRequest;
    return {
      id: row.id,
      cluster: row.cluster,
      app: row.app,
      appName: app?.name ?? row.app,
      environment: row.environment,
      label: row.label,
      state,
      displayState: unknown ? 'unknown' : this.reconnecting(row) ? 'reconnecting' : state,
      reason: row.reason,
      request,
      jobId: row.job_id,
      url: prefix,
      openUrl: prefix + (app?.openPath ?? ''),
      apps: (request.extraApps ?? []).map((id) => {
        const extra = appOf(this.deps.cfg, id);
        const url = extraAppBase(prefix, id);
        return { id, name: extra?.name ?? id, url, openUrl: url + (extra?.openPath ?? '') };
      }),
      createdAt: row.created_at,
      startedAt: row.started_at,
      readyAt: row.ready_at,
      endedAt: row.ended_at,
      expiresAt: row.expires_at,
      timeLimitMinutes: row.time_limit_min,
      addTimeMinutes:
        cluster?.adapter.setTimeLimit !== undefined
          ? extensionOffer(cluster.cfg.extension, {
              running: state === 'running',
              partition: sessionPartition(row, request),
              timeLimitMinutes: row.time_limit_min,
            })
          : null,
      // Rows that ended before the end cleared it (older versions) show none either.
      queue: row.queue_info && !isTerminal(state) ? (JSON.parse(row.queue_info) as QueueInfo) : null,
      lastHeartbeatAt: row.last_heartbeat_at,
      notRespondingSince: this.deps.heartbeats.silentSince(row),
    };
  }

  /** A running session whose apps are behind its agent's tunnel, while that tunnel is down. */
  private reconnecting(row: SessionRow): boolean {
    return (
      row.state === 'running' &&
      this.deps.clusters.get(row.cluster)?.connection === 'dial-out' &&
      !this.deps.routes.tunnels.isUp(row.id)
    );
  }

  async publish(row: SessionRow): Promise<void> {
    this.deps.bus.publish({ userId: row.user_id }, { type: 'session', data: await this.view(row) });
    this.deps.bus.publish(
      { admins: true },
      { type: 'admin.session', data: { id: row.id, state: row.state } },
    );
  }

  /** Applies a state-machine event; persists with a compare-and-set so concurrent writers cannot clash. */
  async apply(row: SessionRow, event: SessionEvent, patch: Partial<SessionRow> = {}): Promise<SessionRow> {
    const from = row.state as SessionState;
    const t = next(from, event);
    if (!t) {
      if (Object.keys(patch).length > 0) {
        await updateSession(this.deps.db, row.id, patch);
        const updated = { ...row, ...patch };
        await this.publish(updated);
        return updated;
      }
      return row;
    }
    const now = Date.now();
    const full: Partial<SessionRow> & { state: SessionState } = { ...patch, state: t.state };
    if (t.reason !== undefined) full.reason = t.reason;
    if (isTerminal(t.state)) {
      full.ended_at = now;
      full.agent_secret_hash = null;
      full.heartbeat_token_hash = null;
      // A pending reason, place or expected start is about a job that no longer waits for anything.
      full.queue_info = null;
      this.deps.routes.delete(row.id);
      this.deps.heartbeats.forget(row.id);
    }
    if (t.state === 'ending') this.deps.routes.delete(row.id);
    const ok = await casState(this.deps.db, row.id, from, full);
    if (!ok) {
      // Someone else moved it first; re-read and let the caller's next look decide.
      return (await getSession(this.deps.db, row.id)) ?? row;
    }
    const updated = { ...row, ...full } as SessionRow;
    await addSessionEvent(this.deps.db, row.id, t.state, t.reason ?? describeEvent(event));
    this.deps.log.info({ session: row.id, from, to: t.state, reason: t.reason }, 'session state');
    this.deps.onTransition?.(updated, from, t.state);
    await this.publish(updated);
    return updated;
  }
}

/** The partition the session's job runs in: as the poll saw it when it started, else as asked. */
export function sessionPartition(
  row: Pick<SessionRow, 'queue_info'>,
  request: SessionRequest,
): string | undefined {
  const q = row.queue_info ? (JSON.parse(row.queue_info) as QueueInfo) : null;
  return q?.partition ?? request.partition ?? undefined;
}

function describeEvent(e: SessionEvent): string {
  switch (e.type) {
    case 'submitted':
      return `submitted as job ${e.jobId}`;
    case 'job_running':
      return 'the job started; starting the app';
    case 'agent_ready':
      return 'the app is ready';
    case 'job_pending':
      return 'waiting in the queue';
    case 'stop_requested':
    case 'job_finished':
    case 'submit_failed':
    case 'error':
      return e.reason;
  }
}
