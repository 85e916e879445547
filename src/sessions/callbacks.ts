// The agent's callbacks: `ready` (once, with the one-time secret: where the app listens), then with the
// heartbeat token it got back: heartbeats, the app's exit, a failure before the app was ready, and the
// session an agent service asks about. Each is checked against the session's row and the scheduler's
// view of its job, never taken on the agent's word (an agent runs as the user).
import { socketName } from '../apps/types.ts';
import { hashToken, newToken, safeEqual } from '../auth/secrets.ts';
import type { SessionRequest } from '../core/request.ts';
import { isActive, isTerminal, REASONS, type SessionState } from '../core/session-machine.ts';
import { getSession, type QueueInfo, type SessionRow, updateSession } from '../db/sessions.ts';
import type { JobInfo } from '../scheduler/types.ts';
import type { SessionServiceDeps } from './deps.ts';
import { AgentRefused } from './errors.ts';
import type { Heartbeats } from './heartbeats.ts';
import type { SessionOwners } from './owners.ts';
import type { ExtraAppEndpoint, SessionRouting } from './routing.ts';
import { findJob } from './snapshot.ts';
import type { SessionStates } from './states.ts';

/** Where the agent's apps listen, as its ready callback reports it. */
export interface AgentReport {
  host: string;
  port: number;
  socket?: string;
  /** The session's extra apps: exactly those it was started with. */
  apps?: { id: string; port: number; socket?: string }[];
}

export interface AgentCallbackDeps
  extends Pick<SessionServiceDeps, 'db' | 'clusters' | 'routes' | 'audit' | 'log'> {
  owners: SessionOwners;
  states: SessionStates;
  routing: SessionRouting;
  heartbeats: Heartbeats;
}

/** The states in which a session waits for its agent's reports. */
function awaitsAgent(state: string): boolean {
  return state === 'requested' || state === 'queued' || state === 'starting';
}

/** The scheduler shows the job running on a known node. */
function placed(job: JobInfo | undefined): boolean {
  return !!job && job.state === 'running' && !!job.nodeAddress;
}

export class AgentCallbacks {
  /**
   * Sessions whose starting report has asked for a poll: one each, so that code run as the user
   * repeating the report cannot keep the scheduler polling (bounded: cleared at 10,000).
   */
  private readonly startingAsked = new Set<string>();

  constructor(private readonly deps: AgentCallbackDeps) {}

  async ready(sessionId: string, secret: string, report: AgentReport, ip?: string): Promise<string> {
    const refuse = async (status: number, why: string): Promise<never> => {
      await this.deps.audit.record({
        action: 'agent.callback',
        target: String(sessionId).slice(0, 40),
        ip,
        ok: false,
        details: { why },
      });
      throw new AgentRefused(status, why);
    };
    const row = await this.rowOf(sessionId);
    if (!row || !row.agent_secret_hash || !matches(row.agent_secret_hash, secret)) {
      return refuse(403, 'unknown session or wrong secret');
    }
    if (!awaitsAgent(row.state)) return refuse(409, `session is ${row.state}`);
    const problem = await this.problemOf(row, report);
    if (problem) return refuse(...problem);
    const extras = report.apps ?? [];
    // The app must be where the scheduler put the job: an agent cannot point the proxy anywhere else (SSRF).
    const cluster = this.deps.clusters.get(row.cluster);
    let job: JobInfo | undefined;
    if (cluster) {
      const owner = await this.deps.owners.unixUser(row.user_id);
      job = findJob(cluster.poller.latestGood, row, owner);
      // A poll under way (the agent's starting report asked for one) may be the one that sees it.
      const current = placed(job) ? null : cluster.poller.current;
      if (current) job = findJob(await current, row, owner);
      if (!placed(job)) {
        const snap = await cluster.poller.pollNow();
        // Not knowing where the job runs is not a reason to trust the agent: it asks again (503).
        if (!snap.ok) return refuse(503, 'the scheduler cannot be reached; report again later');
        job = findJob(snap, row, owner);
      }
      if (!job?.nodeAddress) return refuse(503, 'the job is not listed as running yet; report again later');
      if (job.nodeAddress !== report.host && !(isLoopback(job.nodeAddress) && isLoopback(report.host))) {
        return refuse(403, `host ${report.host} is not the job's node (${job.nodeAddress})`);
      }
    }
    const heartbeat = newToken();
    // Single use: the secret is cleared in the same conditional update that marks the session running.
    const r = await this.deps.db
      .updateTable('sessions')
      .set({ agent_secret_hash: null, heartbeat_token_hash: hashToken(heartbeat), updated_at: Date.now() })
      .where('id', '=', row.id)
      .where('agent_secret_hash', '=', row.agent_secret_hash)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) return refuse(403, 'secret already used');
    const now = Date.now();
    const cur = (await getSession(this.deps.db, row.id))!;
    const patch: Partial<SessionRow> = {
      host: report.host,
      port: report.port,
      socket_path: report.socket ?? null,
      apps:
        extras.length > 0
          ? JSON.stringify(extras.map((e) => ({ id: e.id, port: e.socket ? 0 : e.port, socket: e.socket })))
          : null,
      ready_at: now,
      last_heartbeat_at: now,
      // Where the job runs, and nothing about waiting: a node that fails later is named by it.
      queue_info: job?.nodes
        ? JSON.stringify({ nodes: job.nodes, partition: job.partition } satisfies QueueInfo)
        : null,
    };
    if (!cur.started_at) {
      patch.started_at = now;
      patch.expires_at = now + cur.time_limit_min * 60_000;
    }
    // The route is in place before anyone hears "running": a page that opens the session at once finds it.
    await this.deps.routing.add({ ...cur, ...patch });
    let updated = await this.deps.states.apply(cur, { type: 'agent_ready' }, patch);
    // A poll may move the session (queued to starting) between our read and our write: the secret is
    // spent by then, so the report is applied again to the state the poll left, or the session would
    // stay "starting" with no agent able to report. A session that ended meanwhile stays ended.
    for (let i = 0; i < 3 && awaitsAgent(updated.state); i++)
      updated = await this.deps.states.apply(updated, { type: 'agent_ready' }, patch);
    if (updated.state !== 'running') this.deps.routes.delete(cur.id);
    await this.deps.audit.record({
      action: 'agent.callback',
      target: row.id,
      ip,
      ok: true,
      details: { host: report.host, port: report.port },
    });
    return heartbeat;
  }

  /**
   * Returns 'gone' when the session is over (the agent then stops its app). `stoppedApps`: the extra apps
   * that have exited (the agent lists them on every beat); their addresses stop reaching anything.
   */
  async heartbeat(
    sessionId: string,
    token: string,
    stoppedApps: string[] = [],
  ): Promise<'ok' | 'gone' | 'refused'> {
    const row = await this.session(sessionId, token);
    if (row === null) return 'refused';
    if (row === 'gone') return 'gone';
    const patch: Partial<SessionRow> = { last_heartbeat_at: Date.now() };
    const extras = row.apps ? (JSON.parse(row.apps) as ExtraAppEndpoint[]) : [];
    const newlyStopped = extras.filter((e) => !e.stopped && stoppedApps.includes(e.id));
    if (newlyStopped.length > 0) {
      // An app that has exited may have let go of a port that someone else can bind: its route goes
      // now, not at the end of the session (and stays gone across a restart of the gateway).
      for (const e of newlyStopped) e.stopped = true;
      patch.apps = JSON.stringify(extras);
      const route = this.deps.routes.get(row.id);
      if (route) {
        route.stoppedApps ??= new Set();
        for (const e of newlyStopped) {
          route.subRoutes?.delete(e.id);
          route.stoppedApps.add(e.id);
        }
      }
      this.deps.log.info({ session: row.id, apps: newlyStopped.map((e) => e.id) }, 'extra apps stopped');
    }
    await updateSession(this.deps.db, row.id, patch);
    if (row.state === 'running' && !this.deps.routes.get(row.id))
      await this.deps.routing.add({ ...row, ...patch });
    await this.deps.heartbeats.heard({ ...row, ...patch });
    return 'ok';
  }

  /**
   * The session an agent's heartbeat token belongs to, for agent services beyond the heartbeat (e.g. a
   * fresh access token): the row while the session is live, 'gone' once it is over, null when refused.
   */
  async session(sessionId: string, token: string): Promise<SessionRow | 'gone' | null> {
    const row = await this.rowOf(sessionId);
    if (!row || !row.heartbeat_token_hash)
      return row && isTerminal(row.state as SessionState) ? 'gone' : null;
    if (!matches(row.heartbeat_token_hash, token)) return null;
    if (!isActive(row.state as SessionState) || row.state === 'ending') return 'gone';
    return row;
  }

  async exit(sessionId: string, token: string, code: number | null): Promise<boolean> {
    const row = await this.rowOf(sessionId);
    if (!row || !matches(row.heartbeat_token_hash, token)) return false;
    this.deps.log.info({ session: row.id, code }, 'agent reports the app exited');
    await this.deps.states.apply(row, { type: 'job_finished', reason: REASONS.appExited });
    return true;
  }

  /**
   * The agent has started in its job, before its apps (with the one-time secret, which stays unspent):
   * when the latest poll does not show the job running yet, one is asked for now, while the app starts,
   * so that `ready` finds the job's node confirmed instead of waiting for a poll. Changes nothing else;
   * false when refused.
   */
  async starting(sessionId: string, secret: string): Promise<boolean> {
    const row = await this.rowOf(sessionId);
    if (!row || !matches(row.agent_secret_hash, secret)) return false;
    const cluster = this.deps.clusters.get(row.cluster);
    if (!cluster || !awaitsAgent(row.state)) return true;
    if (this.startingAsked.has(row.id)) return true;
    if (this.startingAsked.size >= 10_000) this.startingAsked.clear();
    this.startingAsked.add(row.id);
    const owner = await this.deps.owners.unixUser(row.user_id);
    if (!placed(findJob(cluster.poller.latestGood, row, owner))) {
      // Not awaited: the agent goes on starting its app; `ready` polls again if this one failed.
      cluster.poller.pollNow().catch(() => undefined);
    }
    return true;
  }

  async failed(sessionId: string, secret: string, reason: string): Promise<boolean> {
    const row = await this.rowOf(sessionId);
    if (!row || !matches(row.agent_secret_hash, secret)) return false;
    await this.deps.states.apply(row, { type: 'error', reason: String(reason).slice(0, 300) });
    return true;
  }

  /** What is wrong with an agent's report of where its apps listen: [status, why], or nothing. */
  private async problemOf(row: SessionRow, report: AgentReport): Promise<[number, string] | undefined> {
    if (this.deps.clusters.get(row.cluster)?.connection === 'dial-out') {
      // Every app is behind the agent's tunnel: the report names the node only, never an address to dial.
      if (!validHost(report.host)) return [400, 'invalid host'];
      if (
        report.port !== 0 ||
        report.socket !== undefined ||
        (report.apps ?? []).some((e) => e.port !== 0 || e.socket)
      )
        return [400, 'a dial-out session reports no port or socket'];
      return extrasMatch(row, report) ? undefined : [400, "the extra apps reported are not the session's"];
    }
    if (!validHost(report.host) || !Number.isInteger(report.port) || report.port < 0 || report.port > 65535) {
      return [400, 'invalid host or port'];
    }
    if (report.socket !== undefined && !validSocketPath(report.socket, row.id))
      return [400, 'invalid socket path'];
    if (report.socket !== undefined && !(await socketOfOwner(this.deps.owners, report.socket, row.user_id)))
      return [403, 'the socket is not owned by the session owner'];
    if (!report.socket && report.port === 0) return [400, 'invalid port'];
    const extras = report.apps ?? [];
    if (!extrasMatch(row, report)) return [400, "the extra apps reported are not the session's"];
    for (const e of extras) {
      if (e.socket !== undefined) {
        if (!validSocketPath(e.socket, row.id, e.id)) return [400, `invalid socket path for ${e.id}`];
        if (!(await socketOfOwner(this.deps.owners, e.socket, row.user_id)))
          return [403, `the socket of ${e.id} is not owned by the session owner`];
      } else if (!Number.isInteger(e.port) || e.port < 1 || e.port > 65535) {
        return [400, `invalid port for ${e.id}`];
      }
    }
    return undefined;
  }

  /** The session a callback names (the id comes from the agent's body: anything may be in it). */
  private async rowOf(sessionId: unknown): Promise<SessionRow | undefined> {
    return typeof sessionId === 'string' ? await getSession(this.deps.db, sessionId) : undefined;
  }
}

/** The report names exactly the extra apps the session was started with. */
function extrasMatch(row: SessionRow, report: AgentReport): boolean {
  const wanted = (JSON.parse(row.request) as SessionRequest).extraApps ?? [];
  const extras = report.apps ?? [];
  return (
    extras.length === wanted.length && wanted.every((id) => extras.filter((e) => e.id === id).length === 1)
  );
}

/** The secret or token an agent sent is the one whose hash the session holds. */
function matches(hash: string | null, secret: string): boolean {
  return !!hash && !!secret && safeEqual(hashToken(secret), hash);
}

const HOST_RE =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*|\d{1,3}(?:\.\d{1,3}){3}|\[?[0-9a-fA-F:]+\]?)$/;

function validHost(h: unknown): h is string {
  return typeof h === 'string' && h.length <= 253 && HOST_RE.test(h);
}

function isLoopback(h: string): boolean {
  return h === '127.0.0.1' || h === '::1' || h === 'localhost';
}

function validSocketPath(p: unknown, sessionId: string, extraApp?: string): boolean {
  return (
    typeof p === 'string' &&
    p.startsWith('/') &&
    !p.includes('..') &&
    p.endsWith(`/.atrium/sessions/${sessionId}/${socketName(extraApp ?? '', extraApp === undefined)}`)
  );
}

/**
 * The gateway connects to a session's Unix socket with its own rights (often root), so the path must
 * be a real socket of the session's owner: no symlink anywhere on the way (realpath is itself), owned
 * by the owner's uid, inside the owner's home. Otherwise an agent could point the proxy at any socket
 * on the host (SSRF to local daemons). Sockets on other nodes are out of reach anyway.
 */
async function socketOfOwner(owners: SessionOwners, socketPath: string, userId: number): Promise<boolean> {
  const fs = await import('node:fs/promises');
  const identity = await owners.identity(userId);
  if (!identity || identity.uid === 0) return false;
  try {
    if ((await fs.realpath(socketPath)) !== socketPath) return false;
    const st = await fs.lstat(socketPath);
    const home = await fs.realpath(identity.home);
    return st.isSocket() && st.uid === identity.uid && socketPath.startsWith(`${home}/`);
  } catch {
    return false;
  }
}
