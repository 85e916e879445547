// Sessions end to end, as the rest of the gateway sees them. This class only wires the parts of the
// data path together, each a module of its own with its named dependencies:
//   launch.ts     create: check the request, record it, submit the agent; adopt an interrupted submit
//   callbacks.ts  the agent's callbacks: ready (then the route), heartbeat, exit, failure
//   reconcile.ts  each poll snapshot against the active sessions: states, reasons, time limits
//   stop.ts       stop as the owner, an admin or the gateway; cancel again while the job lingers
//   routing.ts    the route table's entries, from the database (after a callback, a restart, another gateway)
//   states.ts     the one way a state changes (compare-and-set), and the session as shown
//   heartbeats.ts not responding since..., and responding again
// State lives in the database; these keep only the route table and caches.
import type { SessionView } from '../api/sessions.ts';
import type { SessionRequest } from '../core/request.ts';
import type { Db } from '../db/index.ts';
import {
  addSessionEvent,
  getSession,
  listSessionsOfUser,
  type SessionRow,
  updateSession,
} from '../db/sessions.ts';
import { toUser, type User } from '../db/users.ts';
import { AgentCallbacks, type AgentReport } from './callbacks.ts';
import type { SessionServiceDeps } from './deps.ts';
import { Heartbeats } from './heartbeats.ts';
import { SessionLauncher } from './launch.ts';
import { SessionOwners } from './owners.ts';
import { Reconciler } from './reconcile.ts';
import { SessionRouting } from './routing.ts';
import { type SessionLogPart, SessionLogs } from './session-log.ts';
import { SessionStates } from './states.ts';
import { SessionStopper } from './stop.ts';

export type { SessionServiceDeps } from './deps.ts';
export { AgentRefused, RequestError } from './errors.ts';
export { socketAppsOf } from './routing.ts';

// A session as shown to its owner (no secrets, no tokens): a type of the API contract.
export type { SessionView };

export class SessionService {
  private readonly db: Db;
  private readonly states: SessionStates;
  private readonly heartbeats: Heartbeats;
  private readonly routing: SessionRouting;
  private readonly launcher: SessionLauncher;
  private readonly stopper: SessionStopper;
  private readonly callbacks: AgentCallbacks;
  private readonly logs: SessionLogs;

  constructor(deps: SessionServiceDeps) {
    // Each part takes the gateway's pieces it names (a Pick of SessionServiceDeps) and the parts it calls.
    this.db = deps.db;
    const owners = new SessionOwners(deps.db);
    // The heartbeat watch tells its changes through the states, which show its silences.
    this.heartbeats = new Heartbeats({ ...deps, publish: (row) => this.states.publish(row) });
    const states = new SessionStates({ ...deps, owners, heartbeats: this.heartbeats });
    this.states = states;
    this.routing = new SessionRouting({ ...deps, owners });
    this.launcher = new SessionLauncher({ ...deps, owners, states });
    this.stopper = new SessionStopper({ ...deps, owners, states });
    this.callbacks = new AgentCallbacks({
      ...deps,
      owners,
      states,
      routing: this.routing,
      heartbeats: this.heartbeats,
    });
    this.logs = new SessionLogs({ ...deps, owners });
    const reconciler = new Reconciler({
      ...deps,
      owners,
      states,
      launcher: this.launcher,
      stopper: this.stopper,
      logs: this.logs,
    });
    for (const c of deps.clusters.values())
      c.poller.onSnapshot((name, snap) => reconciler.onSnapshot(name, snap));
  }

  view(row: SessionRow): Promise<SessionView> {
    return this.states.view(row);
  }

  async listFor(user: User): Promise<SessionView[]> {
    const rows = await listSessionsOfUser(this.db, user.id);
    return Promise.all(rows.map((r) => this.view(r)));
  }

  /** The session if it is this user's; undefined otherwise (callers answer 404 either way). */
  async getOwned(user: User, id: string): Promise<SessionRow | undefined> {
    const row = await getSession(this.db, id);
    return row && row.user_id === user.id ? row : undefined;
  }

  create(user: User, req: SessionRequest, ip?: string): Promise<SessionView> {
    return this.launcher.create(user, req, ip);
  }

  stop(row: SessionRow, reason: string, actor?: { user: User; ip?: string }): Promise<SessionRow> {
    return this.stopper.stop(row, reason, actor);
  }

  /**
   * The session's job was given more time (src/server/features/extension.ts): the new limit and end are
   * shown at once, and the time-left warning (reconcile.ts) falls due again before the new end.
   */
  async timeExtended(
    row: SessionRow,
    totalMinutes: number,
    expiresAt: number,
    note: string,
  ): Promise<SessionView> {
    const patch = { time_limit_min: totalMinutes, expires_at: expiresAt, warned_at: null };
    await updateSession(this.db, row.id, patch);
    await addSessionEvent(this.db, row.id, row.state, note);
    const updated = { ...row, ...patch };
    await this.states.publish(updated);
    return this.view(updated);
  }

  // ---- agent callbacks (callbacks.ts) -----------------------------------------------------------

  agentStarting(sessionId: string, secret: string): Promise<boolean> {
    return this.callbacks.starting(sessionId, secret);
  }

  agentReady(sessionId: string, secret: string, report: AgentReport, ip?: string): Promise<string> {
    return this.callbacks.ready(sessionId, secret, report, ip);
  }

  /**
   * Returns 'gone' when the session is over (the agent then stops its app). `stoppedApps`: the extra apps
   * that have exited (the agent lists them on every beat); their addresses stop reaching anything.
   */
  agentHeartbeat(
    sessionId: string,
    token: string,
    stoppedApps: string[] = [],
  ): Promise<'ok' | 'gone' | 'refused'> {
    return this.callbacks.heartbeat(sessionId, token, stoppedApps);
  }

  /**
   * The session an agent's heartbeat token belongs to, for agent services beyond the heartbeat (e.g. a
   * fresh access token): the row while the session is live, 'gone' once it is over, null when refused.
   */
  agentSession(sessionId: string, token: string): Promise<SessionRow | 'gone' | null> {
    return this.callbacks.session(sessionId, token);
  }

  agentExit(sessionId: string, token: string, code: number | null): Promise<boolean> {
    return this.callbacks.exit(sessionId, token, code);
  }

  agentFailed(sessionId: string, secret: string, reason: string): Promise<boolean> {
    return this.callbacks.failed(sessionId, secret, reason);
  }

  /** The session's log files (job output, agent and app), read as its owner; null where they are out of reach. */
  log(row: SessionRow): Promise<SessionLogPart[] | null> {
    return this.logs.read(row);
  }

  // ---- routes (routing.ts) ----------------------------------------------------------------------

  /**
   * The route of one session as the database has it now: another gateway sharing the database made it
   * running, moved an app, or ended it (src/server/shared.ts). Callers serialize calls per session.
   */
  refreshRoute(id: string): Promise<void> {
    return this.routing.refresh(id);
  }

  /** Every route rebuilt from the database (what other gateways changed meanwhile was not heard). */
  resyncRoutes(): Promise<void> {
    return this.routing.resync();
  }

  /** After a restart: routes for every running session, from the database (the agents keep running). */
  restore(): Promise<number> {
    return this.routing.restore();
  }

  // ---- heartbeats (heartbeats.ts) ---------------------------------------------------------------

  /** Starts reading heartbeats (a silent agent is told within half a heartbeat interval). */
  start(): void {
    this.heartbeats.start();
  }

  close(): void {
    this.heartbeats.close();
  }

  checkHeartbeats(now = Date.now()): Promise<void> {
    return this.heartbeats.check(now);
  }
}

export { toUser };
