// Sessions end to end: create (validate, record, submit), follow (one shared poll per cluster), route
// (agent callback), stop, and re-attach after a gateway restart. State lives in the database; this
// class keeps only the route table and caches.
import os from 'node:os';
import type { Logger } from 'pino';
import type { SessionView } from '../api/sessions.ts';
import { appTokenFor, relaySecretFor } from '../apps/secrets.ts';
import { type AppDefinition, agentSpecOf, extraAppBase, socketName } from '../apps/types.ts';
import { hashToken, newShortId, newToken, safeEqual } from '../auth/secrets.ts';
import type { LoadedConfig } from '../config/load.ts';
import { type FieldError, minutesOf, type SessionRequest, validateRequest } from '../core/request.ts';
import { failedNode, queuePosition } from '../core/resources.ts';
import {
  agentDiedReason,
  type HeartbeatPolicy,
  isActive,
  isTerminal,
  next,
  nodeFailedReason,
  notRespondingSince,
  REASONS,
  type SessionEvent,
  type SessionState,
} from '../core/session-machine.ts';
import { SETUP_FAILED } from '../core/telling-line.ts';
import type { AuditLog } from '../db/audit.ts';
import { type Db, isDatabaseUnavailable } from '../db/index.ts';
import {
  addSessionEvent,
  casState,
  getSession,
  insertSession,
  listActiveSessions,
  listSessionsOfUser,
  type QueueInfo,
  type SessionRow,
  updateSession,
} from '../db/sessions.ts';
import { findUserById, toUser, type User } from '../db/users.ts';
import type { EventBus } from '../events/bus.ts';
import type { RouteEndpoint, RouteTable, RouteTarget } from '../proxy/routes.ts';
import { sessionPrefix } from '../proxy/routes.ts';
import { dropIdleConnections } from '../proxy/upstream.ts';
import { expandHostlist } from '../scheduler/slurm/parse.ts';
import { ExecRunner } from '../scheduler/slurm/runner.ts';
import { FINISHED_JOB_STATES, type JobInfo, type PollSnapshot, SchedulerError } from '../scheduler/types.ts';
import { lookupUnixUser } from '../system/users.ts';
import type { Cluster } from './clusters.ts';
import {
  readSessionLog,
  type SessionLogPart,
  type SessionLogReader,
  tellingLineOfSession,
} from './session-log.ts';

export class RequestError extends Error {
  constructor(
    readonly status: number,
    readonly errors: FieldError[],
  ) {
    super(errors.map((e) => e.message).join('; '));
    this.name = 'RequestError';
  }
}

export class AgentRefused extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'AgentRefused';
  }
}

// A session as shown to its owner (no secrets, no tokens): a type of the API contract.
export type { SessionView };

export interface SessionServiceDeps {
  db: Db;
  cfg: LoadedConfig;
  clusters: Map<string, Cluster>;
  routes: RouteTable;
  bus: EventBus;
  log: Logger;
  audit: AuditLog;
  /** Base URL agents call back on. */
  hubUrl: () => string;
  agentArgv: string[];
  /**
   * The gateways sharing the database (PostgreSQL; src/db/gateways.ts): this one's id, recorded on the
   * sessions it takes, and which are gone. Absent with a single gateway (SQLite).
   */
  gateways?: { readonly id: string; goneBefore(id: string, t: number): boolean };
  /** Hooks for other modules (notifications, metrics). */
  onTransition?: (s: SessionRow, from: SessionState, to: SessionState) => void;
  onWarning?: (s: SessionRow, minutesLeft: number) => void;
}

const UNKNOWN_GRACE_MS = 5_000;

/** One extra app's endpoint as recorded in `sessions.apps` (`stopped` once its agent reported its exit). */
interface ExtraAppEndpoint {
  id: string;
  port: number;
  socket?: string;
  stopped?: boolean;
}

export class SessionService {
  private readonly usernames = new Map<number, string>();
  /** Owner's Unix user per user id: jobs are matched by tag only when they belong to the owner. */
  private readonly unixUsers = new Map<number, string>();

  constructor(private readonly d: SessionServiceDeps) {
    for (const c of d.clusters.values()) c.poller.onSnapshot((name, snap) => this.reconcile(name, snap));
  }

  private app(id: string): AppDefinition | undefined {
    return this.d.cfg.appCatalogue.find((a) => a.id === id);
  }

  private async unixUserOf(userId: number): Promise<string> {
    let n = this.unixUsers.get(userId);
    if (!n) {
      n = (await findUserById(this.d.db, userId))?.unix_user ?? '';
      this.unixUsers.set(userId, n);
    }
    return n;
  }

  private async usernameOf(userId: number): Promise<string> {
    let n = this.usernames.get(userId);
    if (!n) {
      n = (await findUserById(this.d.db, userId))?.username ?? '?';
      this.usernames.set(userId, n);
    }
    return n;
  }

  async view(row: SessionRow): Promise<SessionView> {
    const username = await this.usernameOf(row.user_id);
    const cluster = this.d.clusters.get(row.cluster);
    const state = row.state as SessionState;
    const unknown =
      isActive(state) && state !== 'requested' && cluster !== undefined && !cluster.poller.reachable;
    const prefix = sessionPrefix(username, row.id);
    const app = this.app(row.app);
    const request = JSON.parse(row.request) as SessionRequest;
    return {
      id: row.id,
      cluster: row.cluster,
      app: row.app,
      appName: app?.name ?? row.app,
      environment: row.environment,
      label: row.label,
      state,
      displayState: unknown ? 'unknown' : state,
      reason: row.reason,
      request,
      jobId: row.job_id,
      url: prefix,
      openUrl: prefix + (app?.openPath ?? ''),
      apps: (request.extraApps ?? []).map((id) => {
        const extra = this.app(id);
        const url = extraAppBase(prefix, id);
        return { id, name: extra?.name ?? id, url, openUrl: url + (extra?.openPath ?? '') };
      }),
      createdAt: row.created_at,
      startedAt: row.started_at,
      readyAt: row.ready_at,
      endedAt: row.ended_at,
      expiresAt: row.expires_at,
      timeLimitMinutes: row.time_limit_min,
      // Rows that ended before the end cleared it (older versions) show none either.
      queue: row.queue_info && !isTerminal(state) ? (JSON.parse(row.queue_info) as QueueInfo) : null,
      lastHeartbeatAt: row.last_heartbeat_at,
      notRespondingSince: this.silentSince(row),
    };
  }

  async listFor(user: User): Promise<SessionView[]> {
    const rows = await listSessionsOfUser(this.d.db, user.id);
    return Promise.all(rows.map((r) => this.view(r)));
  }

  /** The session if it is this user's; undefined otherwise (callers answer 404 either way). */
  async getOwned(user: User, id: string): Promise<SessionRow | undefined> {
    const row = await getSession(this.d.db, id);
    return row && row.user_id === user.id ? row : undefined;
  }

  private async publish(row: SessionRow): Promise<void> {
    this.d.bus.publish({ userId: row.user_id }, { type: 'session', data: await this.view(row) });
    this.d.bus.publish({ admins: true }, { type: 'admin.session', data: { id: row.id, state: row.state } });
  }

  /** Applies a state-machine event; persists with a compare-and-set so concurrent writers cannot clash. */
  private async apply(
    row: SessionRow,
    event: SessionEvent,
    patch: Partial<SessionRow> = {},
  ): Promise<SessionRow> {
    const from = row.state as SessionState;
    const t = next(from, event);
    if (!t) {
      if (Object.keys(patch).length > 0) {
        await updateSession(this.d.db, row.id, patch);
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
      this.d.routes.delete(row.id);
      this.silent.delete(row.id);
    }
    if (t.state === 'ending') this.d.routes.delete(row.id);
    const ok = await casState(this.d.db, row.id, from, full);
    if (!ok) {
      // Someone else moved it first; re-read and let the caller's next look decide.
      return (await getSession(this.d.db, row.id)) ?? row;
    }
    const updated = { ...row, ...full } as SessionRow;
    await addSessionEvent(this.d.db, row.id, t.state, t.reason ?? describeEvent(event));
    this.d.log.info({ session: row.id, from, to: t.state, reason: t.reason }, 'session state');
    this.d.onTransition?.(updated, from, t.state);
    await this.publish(updated);
    return updated;
  }

  async create(user: User, req: SessionRequest, ip?: string): Promise<SessionView> {
    const cluster = this.d.clusters.get(req.cluster);
    if (!cluster || !(await cluster.mayUse(user))) {
      throw new RequestError(400, [
        {
          field: 'cluster',
          message: `Cluster: "${String(req.cluster).slice(0, 40)}" is not available to you`,
        },
      ]);
    }
    if (cluster.drained) {
      throw new RequestError(409, [
        { field: 'cluster', message: `Cluster: ${cluster.title} is closed for new sessions at the moment` },
      ]);
    }
    // The last poll could not reach the scheduler: a submit now would only wait for the scheduler
    // commands' timeouts to fail. Nothing is recorded; the next poll (asked for now) may clear it.
    const last = cluster.poller.latest;
    if (last && !last.ok) {
      cluster.poller.wake();
      throw new RequestError(503, [
        {
          field: 'cluster',
          message: `Cluster: ${cluster.title} cannot be reached at the moment, nothing was submitted (${last.error ?? 'no answer'})`,
        },
      ]);
    }
    // Looked up while the request is checked (it runs getent): the submit path stays short.
    const identityLookup = lookupUnixUser(user.unixUser);
    const limits = await cluster.limitsFor(user, this.d.cfg.appCatalogue, this.d.cfg.environments);
    // The partition is the user's, or chosen by the cluster's rules: either way the request is checked
    // against that partition's limits (a rule's partition may have smaller nodes or a shorter MaxTime).
    const chosen = typeof req.partition === 'string' && req.partition !== '' ? req.partition : undefined;
    const partition = chosen ?? cluster.choosePartition(req);
    const errors = validateRequest({ ...req, partition }, limits);
    if (errors.length > 0) throw new RequestError(400, errors);
    const app = this.app(req.app)!;
    const extras = (req.extraApps ?? []).map((a) => this.app(a)!);
    // Nothing is submitted for an app that is not installed (checked where this host can tell).
    const notInstalled: FieldError[] = [];
    for (const [a, field] of [[app, 'app'], ...extras.map((x) => [x, 'extraApps'] as const)] as const) {
      const missing = cluster.missingFor(a);
      if (missing.length > 0) {
        notInstalled.push({
          field,
          message: `${field === 'app' ? 'User interface' : 'Extra apps'}: ${a.name} is not installed on ${cluster.title} (missing ${missing.join(', ')})`,
        });
      }
    }
    if (notInstalled.length > 0) throw new RequestError(400, notInstalled);
    const active = (await listSessionsOfUser(this.d.db, user.id, false)).length;
    if (active >= this.d.cfg.sessions.maxPerUser) {
      throw new RequestError(409, [
        {
          field: 'cluster',
          message: `Cluster: you already have ${active} sessions; stop one first (at most ${this.d.cfg.sessions.maxPerUser})`,
        },
      ]);
    }
    const identity = await identityLookup;
    if (!identity) {
      throw new RequestError(400, [
        {
          field: 'cluster',
          message: `Cluster: your account has no Unix user "${user.unixUser}" here; ask an administrator`,
        },
      ]);
    }
    const env = req.environment
      ? this.d.cfg.environments.find((e) => e.id === req.environment)
      : cluster.environmentsFor(this.d.cfg.environments)[0];
    const request: SessionRequest = {
      ...req,
      extraApps: extras.length > 0 ? extras.map((a) => a.id) : undefined,
      environment: env?.id,
      partition,
    };

    const id = newShortId(10);
    const secret = newToken();
    const appToken = newToken(24);
    const minutes = minutesOf(req);
    // The row, its first event and the audit entry are written together or not at all (the database may
    // fail in between: no session must be left behind that nobody asked the scheduler for).
    let row = await this.d.db.transaction().execute(async (trx) => {
      const inserted = await insertSession(trx, {
        id,
        userId: user.id,
        request,
        appToken,
        agentSecretHash: hashToken(secret),
        timeLimitMin: minutes,
        // The apps the gateway reaches on a socket or, on relay clusters, through the agent's relay
        // (there every app, TCP ones included, is behind it).
        socketApps: [app, ...extras]
          .filter((a) => a.unixSocket || cluster.appSockets === 'relay')
          .map((a) => a.id),
        gateway: this.d.gateways?.id,
      });
      await addSessionEvent(trx, id, 'requested', `requested ${app.name} on ${cluster.title}`);
      await this.d.audit.record(
        {
          actorUserId: user.id,
          actor: user.username,
          action: 'session.start',
          target: id,
          ip,
          ok: true,
          details: { cluster: req.cluster, app: req.app },
        },
        trx,
      );
      return inserted;
    });
    this.usernames.set(user.id, user.username);

    const agentEnv: Record<string, string> = {
      ATRIUM_HUB_URL: this.d.hubUrl(),
      ATRIUM_SESSION_ID: id,
      ATRIUM_AGENT_SECRET: secret,
      ATRIUM_APP: JSON.stringify(agentSpecOf(app)),
      ATRIUM_BASE_URL: sessionPrefix(user.username, id),
      ATRIUM_APP_TOKEN: appToken,
      ATRIUM_BIND_HOST: cluster.cfg.bindHost,
      ATRIUM_HEARTBEAT_SECONDS: String(this.d.cfg.sessions.heartbeatSeconds),
    };
    if (extras.length > 0) agentEnv.ATRIUM_EXTRA_APPS = JSON.stringify(extras.map(agentSpecOf));
    // Remote nodes: the agent serves every app through its relay (TCP, with a handshake on the app's secret).
    if (cluster.appSockets === 'relay') agentEnv.ATRIUM_RELAY = '1';
    if (env?.container) agentEnv.ATRIUM_CONTAINER = JSON.stringify(env.container);
    // The agent keeps a fresh copy of the user's identity-provider access token in the session dir.
    if (this.d.cfg.auth.oidc?.passTokensToSessions) agentEnv.ATRIUM_FETCH_ACCESS_TOKEN = '1';
    try {
      const result = await cluster.adapter.submitSession({
        sessionId: id,
        tag: id,
        identity,
        cores: req.cores,
        memoryMb: Math.round(req.memoryGb * 1024),
        gpus: req.gpus,
        minutes,
        partition,
        account: req.account || undefined,
        reservation: req.reservation || undefined,
        nodelist: cluster.cfg.slurm?.nodelist,
        agentArgv: this.d.agentArgv,
        agentEnv,
        setup: env?.setup,
      });
      row = await this.apply(
        row,
        { type: 'submitted', jobId: result.jobId },
        { job_id: result.jobId, submitted_at: Date.now() },
      );
      if (isTerminal(row.state as SessionState)) {
        // Settled meanwhile by another gateway's poll, which took this one for gone (it stalled longer
        // than its beats allow): the job must not run without its session.
        await cluster.adapter.cancel(identity, result.jobId).catch(() => undefined);
        throw new SchedulerError(`the submission took too long and was given up (${row.reason ?? 'failed'})`);
      }
    } catch (e) {
      const msg =
        e instanceof SchedulerError
          ? e.message
          : `the scheduler refused the session: ${(e as Error).message}`;
      await this.apply(row, { type: 'submit_failed', reason: msg });
      if (e instanceof SchedulerError && e.field) {
        throw new RequestError(400, [{ field: e.field, message: msg }]);
      }
      this.d.log.error({ err: e, session: id }, 'submit failed');
      throw new RequestError(502, [{ field: 'cluster', message: `Cluster: ${msg}` }]);
    }
    cluster.poller.wake();
    return this.view(row);
  }

  async stop(row: SessionRow, reason: string, actor?: { user: User; ip?: string }): Promise<SessionRow> {
    if (isTerminal(row.state as SessionState)) return row;
    const cluster = this.d.clusters.get(row.cluster);
    if (actor) {
      await this.d.audit.record({
        actorUserId: actor.user.id,
        actor: actor.user.username,
        action: actor.user.id === row.user_id ? 'session.stop' : 'admin.session.stop',
        target: row.id,
        ip: actor.ip,
        ok: true,
      });
    }
    if (!row.job_id) {
      const t = await this.apply(row, { type: 'stop_requested', reason });
      return this.apply(t, { type: 'job_finished', reason });
    }
    const updated = await this.apply(row, { type: 'stop_requested', reason });
    const owner = await findUserById(this.d.db, row.user_id);
    const identity = owner ? await lookupUnixUser(owner.unix_user) : null;
    if (cluster && identity) {
      try {
        await cluster.adapter.cancel(identity, row.job_id);
      } catch (e) {
        this.d.log.warn(
          { session: row.id, err: (e as Error).message },
          'cancel failed; will retry on the next poll',
        );
      }
      cluster.poller.wake();
    }
    return updated;
  }

  // ---- agent callbacks -------------------------------------------------------------------------

  async agentReady(
    sessionId: string,
    secret: string,
    report: {
      host: string;
      port: number;
      socket?: string;
      /** The session's extra apps: exactly those it was started with. */
      apps?: { id: string; port: number; socket?: string }[];
    },
    ip?: string,
  ): Promise<string> {
    const refuse = async (status: number, why: string): Promise<never> => {
      await this.d.audit.record({
        action: 'agent.callback',
        target: String(sessionId).slice(0, 40),
        ip,
        ok: false,
        details: { why },
      });
      throw new AgentRefused(status, why);
    };
    const row = typeof sessionId === 'string' ? await getSession(this.d.db, sessionId) : undefined;
    if (!row || !row.agent_secret_hash || !secret || !safeEqual(hashToken(secret), row.agent_secret_hash)) {
      return refuse(403, 'unknown session or wrong secret');
    }
    if (!['requested', 'queued', 'starting'].includes(row.state))
      return refuse(409, `session is ${row.state}`);
    if (!validHost(report.host) || !Number.isInteger(report.port) || report.port < 0 || report.port > 65535) {
      return refuse(400, 'invalid host or port');
    }
    if (report.socket !== undefined && !validSocketPath(report.socket, row.id))
      return refuse(400, 'invalid socket path');
    if (report.socket !== undefined && !(await socketOfOwner(this.d.db, report.socket, row.user_id)))
      return refuse(403, 'the socket is not owned by the session owner');
    if (!report.socket && report.port === 0) return refuse(400, 'invalid port');
    const wanted = (JSON.parse(row.request) as SessionRequest).extraApps ?? [];
    const extras = report.apps ?? [];
    if (
      extras.length !== wanted.length ||
      !wanted.every((id) => extras.filter((e) => e.id === id).length === 1)
    )
      return refuse(400, "the extra apps reported are not the session's");
    for (const e of extras) {
      if (e.socket !== undefined) {
        if (!validSocketPath(e.socket, row.id, e.id)) return refuse(400, `invalid socket path for ${e.id}`);
        if (!(await socketOfOwner(this.d.db, e.socket, row.user_id)))
          return refuse(403, `the socket of ${e.id} is not owned by the session owner`);
      } else if (!Number.isInteger(e.port) || e.port < 1 || e.port > 65535) {
        return refuse(400, `invalid port for ${e.id}`);
      }
    }
    // The app must be where the scheduler put the job: an agent cannot point the proxy anywhere else (SSRF).
    const cluster = this.d.clusters.get(row.cluster);
    let job: JobInfo | undefined;
    if (cluster) {
      const owner = await this.unixUserOf(row.user_id);
      job = findJob(cluster.poller.latestGood, row, owner);
      if (!job || job.state !== 'running' || !job.nodeAddress) {
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
    const r = await this.d.db
      .updateTable('sessions')
      .set({ agent_secret_hash: null, heartbeat_token_hash: hashToken(heartbeat), updated_at: Date.now() })
      .where('id', '=', row.id)
      .where('agent_secret_hash', '=', row.agent_secret_hash)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) return refuse(403, 'secret already used');
    const now = Date.now();
    const cur = (await getSession(this.d.db, row.id))!;
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
    await this.addRoute({ ...cur, ...patch }, await this.usernameOf(cur.user_id));
    const updated = await this.apply(cur, { type: 'agent_ready' }, patch);
    if (updated.state !== 'running') this.d.routes.delete(cur.id);
    await this.d.audit.record({
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
  async agentHeartbeat(
    sessionId: string,
    token: string,
    stoppedApps: string[] = [],
  ): Promise<'ok' | 'gone' | 'refused'> {
    const row = typeof sessionId === 'string' ? await getSession(this.d.db, sessionId) : undefined;
    if (!row || !row.heartbeat_token_hash)
      return row && isTerminal(row.state as SessionState) ? 'gone' : 'refused';
    if (!token || !safeEqual(hashToken(token), row.heartbeat_token_hash)) return 'refused';
    if (!isActive(row.state as SessionState) || row.state === 'ending') return 'gone';
    const patch: Partial<SessionRow> = { last_heartbeat_at: Date.now() };
    const extras = row.apps ? (JSON.parse(row.apps) as ExtraAppEndpoint[]) : [];
    const newlyStopped = extras.filter((e) => !e.stopped && stoppedApps.includes(e.id));
    if (newlyStopped.length > 0) {
      // An app that has exited may have let go of a port that someone else can bind: its route goes
      // now, not at the end of the session (and stays gone across a restart of the gateway).
      for (const e of newlyStopped) e.stopped = true;
      patch.apps = JSON.stringify(extras);
      const route = this.d.routes.get(row.id);
      if (route) {
        route.stoppedApps ??= new Set();
        for (const e of newlyStopped) {
          route.subRoutes?.delete(e.id);
          route.stoppedApps.add(e.id);
        }
      }
      this.d.log.info({ session: row.id, apps: newlyStopped.map((e) => e.id) }, 'extra apps stopped');
    }
    await updateSession(this.d.db, row.id, patch);
    if (row.state === 'running' && !this.d.routes.get(row.id))
      await this.addRoute({ ...row, ...patch }, await this.usernameOf(row.user_id));
    if (this.silent.delete(row.id)) {
      // Heard from again (a stopped agent continued, a network came back): plain running at once.
      const route = this.d.routes.get(row.id);
      if (route) route.notRespondingSince = undefined;
      this.d.log.info({ session: row.id }, 'agent responding again');
      await addSessionEvent(this.d.db, row.id, row.state, 'the agent is responding again');
      await this.publish({ ...row, ...patch });
    }
    return 'ok';
  }

  /**
   * The session an agent's heartbeat token belongs to, for agent services beyond the heartbeat (e.g. a
   * fresh access token): the row while the session is live, 'gone' once it is over, null when refused.
   */
  async agentSession(sessionId: string, token: string): Promise<SessionRow | 'gone' | null> {
    const row = typeof sessionId === 'string' ? await getSession(this.d.db, sessionId) : undefined;
    if (!row || !row.heartbeat_token_hash)
      return row && isTerminal(row.state as SessionState) ? 'gone' : null;
    if (!token || !safeEqual(hashToken(token), row.heartbeat_token_hash)) return null;
    if (!isActive(row.state as SessionState) || row.state === 'ending') return 'gone';
    return row;
  }

  async agentExit(sessionId: string, token: string, code: number | null): Promise<boolean> {
    const row = typeof sessionId === 'string' ? await getSession(this.d.db, sessionId) : undefined;
    if (!row || !row.heartbeat_token_hash || !token || !safeEqual(hashToken(token), row.heartbeat_token_hash))
      return false;
    this.d.log.info({ session: row.id, code }, 'agent reports the app exited');
    await this.apply(row, { type: 'job_finished', reason: REASONS.appExited });
    return true;
  }

  async agentFailed(sessionId: string, secret: string, reason: string): Promise<boolean> {
    const row = typeof sessionId === 'string' ? await getSession(this.d.db, sessionId) : undefined;
    if (!row || !row.agent_secret_hash || !secret || !safeEqual(hashToken(secret), row.agent_secret_hash))
      return false;
    await this.apply(row, { type: 'error', reason: String(reason).slice(0, 300) });
    return true;
  }

  private async addRoute(row: SessionRow, username: string): Promise<void> {
    const app = this.app(row.app);
    if (!app || !row.host || (!row.port && !row.socket_path)) return;
    const prefix = sessionPrefix(username, row.id);
    const host = row.host;
    const owner = await this.socketOwnerOf(row.user_id);
    const extraSockets = (row.apps ? (JSON.parse(row.apps) as { socket?: string }[]) : []).map(
      (e) => e.socket,
    );
    if (!owner && [row.socket_path, ...extraSockets].some(Boolean)) {
      // Never connect to a user's socket with the gateway's own rights.
      this.d.log.warn({ session: row.id }, 'the Unix user of the session is unknown; no route');
      return;
    }
    const socketApps = socketAppsOf(row, (id) => this.app(id));
    const endpoint = (a: AppDefinition, base: string, port: number, socket: string | null): RouteEndpoint => {
      const token = appTokenFor(row.app_token, a.id, a.id === row.app);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(a.upstreamHeaders ?? {}))
        headers[k] = v.replaceAll('{token}', token);
      const target: RouteTarget = { host, port, socketPath: socket ?? undefined };
      // A socket is reached with its owner's rights; an app recorded as such (on a socket, or any app
      // on a relay cluster) that reported a port is behind the agent's relay.
      if (socket) target.owner = owner ?? undefined;
      else if (socketApps.has(a.id)) target.relaySecret = relaySecretFor(row.app_token, a.id);
      return {
        prefix: base,
        target,
        stripPrefix: a.prefix === 'strip',
        headers,
        transport: a.transport ?? 'http',
      };
    };
    const subRoutes = new Map<string, RouteEndpoint>();
    const stoppedApps = new Set<string>();
    for (const e of row.apps ? (JSON.parse(row.apps) as ExtraAppEndpoint[]) : []) {
      const a = this.app(e.id);
      if (e.stopped) stoppedApps.add(e.id);
      else if (a) subRoutes.set(e.id, endpoint(a, extraAppBase(prefix, e.id), e.port, e.socket ?? null));
    }
    this.d.routes.set({
      sessionId: row.id,
      userId: row.user_id,
      username,
      ...endpoint(app, prefix, row.port ?? 0, row.socket_path),
      subRoutes: subRoutes.size > 0 ? subRoutes : undefined,
      stoppedApps: stoppedApps.size > 0 ? stoppedApps : undefined,
    });
  }

  // ---- the session's log ----------------------------------------------------------------------

  private readonly logRunner = new ExecRunner({ timeoutMs: 10_000 });

  /** How the gateway reads files as the owner on this session's cluster; null where it cannot (ssh). */
  private logReader(row: SessionRow): SessionLogReader | null {
    const c = this.d.clusters.get(row.cluster);
    if (!c) return null;
    if (c.cfg.backend === 'local')
      return { runner: this.logRunner, runAs: process.getuid?.() === 0 ? 'runuser' : 'none' };
    if (c.cfg.slurm) return { runner: this.logRunner, runAs: c.cfg.slurm.runAs };
    // Other backends' nodes are other hosts: their files are not here.
    return null;
  }

  /** The session's log files (job output, agent and app), read as its owner; null where they are out of reach. */
  async log(row: SessionRow): Promise<SessionLogPart[] | null> {
    const reader = this.logReader(row);
    const owner = await findUserById(this.d.db, row.user_id);
    const identity = owner ? await lookupUnixUser(owner.unix_user) : null;
    if (!reader || !identity) return null;
    return readSessionLog(reader, identity.user, identity.home, row.id);
  }

  /**
   * A session whose job ended before its app was ready: the reason gets the line of its log that says
   * why (a setup line that failed, Node.js that could not load the agent...), read as the owner.
   */
  private async explained(row: SessionRow, reason: string): Promise<string> {
    if (!['queued', 'starting'].includes(row.state)) return reason;
    if (reason !== ENDED_BEFORE_READY && reason !== REASONS.jobVanished) return reason;
    try {
      const reader = this.logReader(row);
      const owner = await findUserById(this.d.db, row.user_id);
      const identity = owner ? await lookupUnixUser(owner.unix_user) : null;
      if (!reader || !identity) return reason;
      const line = await tellingLineOfSession(reader, identity.user, identity.home, row.id);
      if (!line) return reason;
      // The job's own words about a failed setup line say it all.
      return line.startsWith(SETUP_FAILED.slice('atrium: '.length)) ? line : `${reason}: ${line}`;
    } catch (e) {
      this.d.log.warn({ session: row.id, err: (e as Error).message }, 'could not read the session log');
      return reason;
    }
  }

  private readonly owners = new Map<number, { uid: number; gid: number }>();

  /** The Unix identity the gateway connects to a user's sockets with. */
  private async socketOwnerOf(userId: number): Promise<{ uid: number; gid: number } | null> {
    const hit = this.owners.get(userId);
    if (hit) return hit;
    const user = await findUserById(this.d.db, userId);
    const id = user ? await lookupUnixUser(user.unix_user) : null;
    if (!id) return null;
    const owner = { uid: id.uid, gid: id.gid };
    this.owners.set(userId, owner);
    return owner;
  }

  // ---- reconciliation with the scheduler -----------------------------------------------------

  /**
   * The route of one session as the database has it now: another gateway sharing the database made it
   * running, moved an app, or ended it (src/server/shared.ts). Callers serialize calls per session.
   */
  async refreshRoute(id: string): Promise<void> {
    const row = await getSession(this.d.db, id);
    if (row?.state !== 'running') {
      this.d.routes.delete(id);
      return;
    }
    const before = this.d.routes.get(id);
    await this.addRoute(row, await this.usernameOf(row.user_id));
    const after = this.d.routes.get(id);
    if (after && before?.notRespondingSince !== undefined)
      after.notRespondingSince = before.notRespondingSince;
  }

  /** Every route rebuilt from the database (what other gateways changed meanwhile was not heard). */
  async resyncRoutes(): Promise<void> {
    const running = (await listActiveSessions(this.d.db)).filter((r) => r.state === 'running');
    const ids = new Set(running.map((r) => r.id));
    for (const r of [...this.d.routes.all()]) if (!ids.has(r.sessionId)) this.d.routes.delete(r.sessionId);
    for (const row of running) await this.refreshRoute(row.id);
  }

  /** After a restart: routes for every running session, from the database (the agents keep running). */
  async restore(): Promise<number> {
    let n = 0;
    for (const row of await listActiveSessions(this.d.db)) {
      if (row.state === 'running') {
        await this.addRoute(row, await this.usernameOf(row.user_id));
        n++;
      }
    }
    return n;
  }

  // ---- heartbeats -------------------------------------------------------------------------------

  /** Running sessions already announced as not responding (each silence is told once, live). */
  private readonly silent = new Set<string>();
  /** Heartbeats sent while this gateway was not running were lost: silence counts from its start. */
  private readonly startedAt = Date.now();
  private watch: NodeJS.Timeout | null = null;

  private get heartbeatPolicy(): HeartbeatPolicy {
    return {
      intervalMs: this.d.cfg.sessions.heartbeatSeconds * 1000,
      missed: this.d.cfg.sessions.heartbeatMissed,
    };
  }

  private silentSince(row: SessionRow, now = Date.now()): number | null {
    return notRespondingSince(
      { state: row.state as SessionState, lastHeartbeatAt: row.last_heartbeat_at },
      now,
      this.heartbeatPolicy,
      this.startedAt,
    );
  }

  /**
   * Starts reading heartbeats: a running session whose agent misses `heartbeatMissed` of them is shown
   * as not responding (live, and on the proxy's error page) as soon as the next check sees it, which is
   * within half a heartbeat interval, not at the next poll.
   */
  start(): void {
    if (this.watch) return;
    const every = Math.max(250, Math.min(5_000, this.heartbeatPolicy.intervalMs / 2));
    this.watch = setInterval(() => {
      this.checkHeartbeats().catch((e) =>
        // The database restarting is said once (database link lost), not at every check.
        isDatabaseUnavailable(e)
          ? this.d.log.debug({ err: (e as Error).message }, 'heartbeat check failed')
          : this.d.log.error({ err: e }, 'heartbeat check failed'),
      );
    }, every);
    this.watch.unref();
  }

  close(): void {
    if (this.watch) clearInterval(this.watch);
    this.watch = null;
  }

  async checkHeartbeats(now = Date.now()): Promise<void> {
    const active = await listActiveSessions(this.d.db);
    for (const row of active) {
      const since = this.silentSince(row, now);
      // Every gateway marks its own routes; the one that polls the cluster records and tells it, once.
      const tells = this.d.clusters.get(row.cluster)?.poller.leading ?? true;
      if (since === null && this.silent.delete(row.id)) {
        // The heartbeat reached another gateway sharing the database: running again here too.
        const route = this.d.routes.get(row.id);
        if (route) route.notRespondingSince = undefined;
        if (tells) await this.publish(row);
        continue;
      }
      if (since === null || this.silent.has(row.id)) continue;
      this.silent.add(row.id);
      const route = this.d.routes.get(row.id);
      if (route) {
        route.notRespondingSince = since;
        dropIdleConnections(route.target);
        for (const sub of route.subRoutes?.values() ?? []) dropIdleConnections(sub.target);
      }
      if (!tells) continue;
      this.d.log.warn(
        { session: row.id, lastHeartbeatAt: new Date(since).toISOString() },
        'agent not responding',
      );
      await addSessionEvent(
        this.d.db,
        row.id,
        row.state,
        `not responding: no heartbeat since ${new Date(since).toISOString().slice(11, 16)} UTC`,
      );
      await this.publish(row);
    }
    // Sessions that ended or stopped while silent are forgotten (they are not running any more).
    const running = new Set(active.filter((r) => r.state === 'running').map((r) => r.id));
    for (const id of this.silent) if (!running.has(id)) this.silent.delete(id);
  }

  /** Clusters whose last poll failed: their sessions are shown as unknown. */
  private readonly unreachable = new Set<string>();

  private async reconcile(cluster: string, snap: PollSnapshot): Promise<void> {
    const rows = (await listActiveSessions(this.d.db)).filter((r) => r.cluster === cluster);
    if (!snap.ok) {
      // Unknown is not gone: keep every route and state; pages show "unknown" (told once, not per poll).
      if (!this.unreachable.has(cluster)) {
        this.unreachable.add(cluster);
        for (const r of rows) if (r.state !== 'requested') await this.publish(r);
      }
      return;
    }
    const wasUnreachable = this.unreachable.delete(cluster);
    const now = Date.now();
    for (const row of rows) {
      try {
        await this.reconcileOne(row, snap, now);
      } catch (e) {
        this.d.log.error({ err: e, session: row.id }, 'reconcile failed');
      }
    }
    if (wasUnreachable) {
      // Back from unknown: pages get every session's real state again, changed or not.
      for (const r of await listActiveSessions(this.d.db))
        if (r.cluster === cluster && r.state !== 'requested') await this.publish(r);
    }
  }

  private async reconcileOne(row: SessionRow, snap: PollSnapshot, now: number): Promise<void> {
    const job = findJob(snap, row, await this.unixUserOf(row.user_id));
    if (row.state === 'requested') {
      if (job && !row.job_id) {
        // A submit that was interrupted (gateway stopped, sbatch timed out) but did create a job: adopt it.
        await this.apply(
          row,
          { type: 'submitted', jobId: job.jobId },
          { job_id: job.jobId, submitted_at: now },
        );
      } else if (!job && now - row.created_at > 120_000) {
        await this.apply(row, {
          type: 'error',
          reason: 'the submission was interrupted and no job was created',
        });
      } else if (
        !job &&
        row.gateway &&
        this.d.gateways?.goneBefore(
          row.gateway,
          Date.now() - (this.d.clusters.get(row.cluster)?.poller.ageMs ?? 0),
        )
      ) {
        // Its gateway died before submitting (the poll would show a job it created): nothing runs.
        await this.apply(row, {
          type: 'error',
          reason: 'the gateway that took the request stopped before submitting it; no job was created',
        });
      }
      return;
    }
    if (!job) {
      // Freshly submitted jobs may miss the poll that was already under way.
      // `now` (ms), not snap.at: backends report the poll's time in their own unit (Slurm and ssh in seconds).
      if (row.submitted_at && now - row.submitted_at < UNKNOWN_GRACE_MS) return;
      // Sites with a short MinJobAge forget finished jobs fast: one gone after its end time timed out.
      const timedOut = row.state === 'running' && row.expires_at !== null && now >= row.expires_at - 5_000;
      const down = failedNode(nodesOf(row), snap.nodes);
      await this.apply(row, {
        type: 'job_finished',
        reason: await this.explained(
          row,
          row.state === 'ending'
            ? (row.reason ?? REASONS.stoppedByUser)
            : timedOut
              ? REASONS.timeLimit
              : down
                ? nodeFailedReason(down)
                : REASONS.jobVanished,
        ),
      });
      return;
    }
    // The node the job runs on is DOWN: whatever the job's state says yet, the session's app is lost.
    const down = failedNode(nodesOf(row, job), snap.nodes);
    if (FINISHED_JOB_STATES.has(job.state)) {
      const reason =
        down && !(row.state === 'ending' && row.reason) ? nodeFailedReason(down) : finishedReason(job, row);
      await this.apply(row, { type: 'job_finished', reason: await this.explained(row, reason) });
      return;
    }
    if (row.state === 'ending') {
      // Still there after a stop: ask again (the cancel may have failed while the scheduler was down).
      if (now - row.updated_at > 15_000) {
        const owner = await findUserById(this.d.db, row.user_id);
        const identity = owner ? await lookupUnixUser(owner.unix_user) : null;
        const c = this.d.clusters.get(row.cluster);
        if (c && identity) await c.adapter.cancel(identity, job.jobId).catch(() => undefined);
        await updateSession(this.d.db, row.id, {});
      }
      return;
    }
    if (down && (row.state === 'starting' || row.state === 'running')) {
      // Ends now rather than when the scheduler gets to it (Slurm needs SlurmdTimeout, then kills the
      // job): the route goes at once, and the cancel makes sure the job does not linger.
      await this.stop(row, nodeFailedReason(down));
      return;
    }
    if (job.state === 'pending') {
      if (row.state === 'starting' || row.state === 'running') {
        // The scheduler requeued the job (an admin's `scontrol requeue`, or a site that requeues despite
        // --no-requeue): its processes were killed, and a restarted agent could not report with a used
        // secret. The session ends, naming the node when the poll shows it failed.
        const lost = failedNode(nodesOf(row), snap.nodes);
        await this.stop(row, lost ? nodeFailedReason(lost) : REASONS.requeued);
        return;
      }
      const pos = queuePosition(job, snap.jobs);
      const info: QueueInfo = {
        reason: job.reason,
        position: pos?.position,
        pendingInPartition: pos?.pendingInPartition,
        expectedStart: job.startTime,
        partition: job.partition,
      };
      const json = JSON.stringify(info);
      if (json !== row.queue_info) await this.apply(row, { type: 'job_pending' }, { queue_info: json });
      return;
    }
    if (job.state === 'running' || job.state === 'completing') {
      if (row.state === 'queued') {
        const startedAt = job.startTime ? job.startTime * 1000 : now;
        await this.apply(
          row,
          { type: 'job_running' },
          {
            started_at: startedAt,
            expires_at: startedAt + (job.timeLimitMinutes ?? row.time_limit_min) * 60_000,
            queue_info: JSON.stringify({ nodes: job.nodes, partition: job.partition } satisfies QueueInfo),
          },
        );
        return;
      }
      if (
        row.state === 'starting' &&
        row.started_at &&
        now - row.started_at > this.d.cfg.sessions.startTimeoutSeconds * 1000
      ) {
        await this.stop(row, REASONS.startTimeout);
        return;
      }
      if (row.state === 'running') await this.checkTimeLimit(row, now);
    }
  }

  private async checkTimeLimit(row: SessionRow, now: number): Promise<void> {
    if (!row.expires_at) return;
    const left = row.expires_at - now;
    const warnMs = this.d.cfg.sessions.warnMinutesBeforeEnd * 60_000;
    if (!row.warned_at && left <= warnMs && left > 0) {
      await updateSession(this.d.db, row.id, { warned_at: now });
      this.d.onWarning?.(row, Math.max(1, Math.round(left / 60_000)));
      this.d.bus.publish(
        { userId: row.user_id },
        { type: 'session.warning', data: { id: row.id, minutesLeft: Math.round(left / 60_000) } },
      );
    }
    // At the limit the session ends, without waiting for the scheduler's own enforcement (Slurm checks
    // time limits about every 30 s, then signals the job): the route goes now, the job is cancelled,
    // and the reason stays "time limit reached" whatever state word the job ends with.
    if (left <= 0) await this.stop(row, REASONS.timeLimit);
  }
}

/**
 * The apps of a session that were started on a Unix socket, as recorded when it was created. Sessions
 * created before that record existed (migration 005) follow the catalogue, except Jupyter: the
 * built-in Jupyter listened on a TCP port then, so its port is Jupyter's own, not a relay.
 */
export function socketAppsOf(
  row: Pick<SessionRow, 'app' | 'request' | 'socket_apps'>,
  appOf: (id: string) => AppDefinition | undefined,
): Set<string> {
  if (row.socket_apps !== null) return new Set(JSON.parse(row.socket_apps) as string[]);
  const ids = [row.app, ...((JSON.parse(row.request) as SessionRequest).extraApps ?? [])];
  return new Set(ids.filter((id) => id !== 'jupyter' && appOf(id)?.unixSocket));
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

/** The session's job: by id, else by its tag; users set comments too, so a tag match must be the owner's job. */
function findJob(snap: PollSnapshot | null, row: SessionRow, ownerUnixUser: string): JobInfo | undefined {
  if (!snap) return undefined;
  if (row.job_id) {
    const byId = snap.jobs.find((j) => j.jobId === row.job_id);
    if (byId) return byId;
  }
  return snap.jobs.find((j) => j.comment === row.id && j.user === ownerUnixUser);
}

/** The nodes a session's job runs (or ran) on: the job's, else those recorded when it started. */
function nodesOf(row: Pick<SessionRow, 'queue_info'>, job?: JobInfo): string[] {
  if (job?.nodes) return expandHostlist(job.nodes);
  const q = row.queue_info ? (JSON.parse(row.queue_info) as QueueInfo) : null;
  return q?.nodes ? expandHostlist(q.nodes) : [];
}

/** The signal a job's exit code tells (128+N, as shells and the schedulers' adapters report it). */
function signalOf(exitCode: number | undefined): string | undefined {
  if (exitCode === undefined || exitCode <= 128 || exitCode > 128 + 64) return undefined;
  const n = exitCode - 128;
  return Object.entries(os.constants.signals).find(([, v]) => v === n)?.[0] ?? `signal ${n}`;
}

const ENDED_BEFORE_READY = 'the job ended before the app was ready';

function finishedReason(job: JobInfo, row: SessionRow): string {
  if (row.state === 'ending' && row.reason) return row.reason;
  switch (job.state) {
    case 'timeout':
      return REASONS.timeLimit;
    case 'cancelled':
      return REASONS.cancelledOutside;
    case 'node_fail':
      return nodeFailedReason(nodesOf(row, job)[0]);
    case 'out_of_memory':
      return REASONS.outOfMemory;
    case 'preempted':
      return REASONS.preempted;
    default:
      // A job that ends after its time limit was stopped by it, whatever state word the scheduler used.
      if (row.expires_at && Date.now() >= row.expires_at - 5_000) return REASONS.timeLimit;
      // An agent reports its app's exit before it ends itself (that report ends the session first) and
      // never exits with a signal's status: a job killed by a signal without a report lost its agent.
      if (row.state === 'running' || row.state === 'starting') {
        const signal = signalOf(job.exitCode);
        if (signal) return agentDiedReason(signal);
      }
      return row.state === 'running' ? REASONS.appExited : ENDED_BEFORE_READY;
  }
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
async function socketOfOwner(db: Db, socketPath: string, userId: number): Promise<boolean> {
  const fs = await import('node:fs/promises');
  const owner = await findUserById(db, userId);
  const identity = owner ? await lookupUnixUser(owner.unix_user) : null;
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

export { toUser };
