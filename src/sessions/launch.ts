// Launching a session: the request checked against the cluster's live limits (every error names its
// field), the row recorded with a one-time agent secret, then the agent submitted as the job's program,
// as the user, tagged with the session id. A submit that was interrupted but did create a job is adopted
// by that tag at the next poll instead of being submitted again (Open OnDemand issue 3198).
import type { SessionView } from '../api/sessions.ts';
import { type AppDefinition, agentSpecOf } from '../apps/types.ts';
import { hashToken, newShortId, newToken } from '../auth/secrets.ts';
import type { EnvironmentConfig } from '../config/schema.ts';
import { accountUnderRule } from '../core/project-access.ts';
import { type FieldError, minutesOf, type SessionRequest, validateRequest } from '../core/request.ts';
import { isTerminal, type SessionState } from '../core/session-machine.ts';
import { addSessionEvent, insertSession, listSessionsOfUser, type SessionRow } from '../db/sessions.ts';
import type { User } from '../db/users.ts';
import { sessionPrefix } from '../proxy/routes.ts';
import { type JobInfo, SchedulerError, type UnixIdentity } from '../scheduler/types.ts';
import { lookupUnixUser } from '../system/users.ts';
import type { Cluster } from './clusters.ts';
import type { SessionServiceDeps } from './deps.ts';
import { RequestError } from './errors.ts';
import type { SessionOwners } from './owners.ts';
import { appOf } from './routing.ts';
import type { SessionStates } from './states.ts';

export interface LaunchDeps
  extends Pick<
    SessionServiceDeps,
    'db' | 'cfg' | 'clusters' | 'audit' | 'log' | 'hubUrl' | 'agentArgv' | 'gateways'
  > {
  owners: SessionOwners;
  states: SessionStates;
}

/** A request that passed every check, with what it resolved to. */
interface CheckedRequest {
  cluster: Cluster;
  identity: UnixIdentity;
  app: AppDefinition;
  extras: AppDefinition[];
  env: EnvironmentConfig | undefined;
  partition: string | undefined;
  /** As recorded: the extra apps, environment and partition it resolved to. */
  request: SessionRequest;
}

export class SessionLauncher {
  constructor(private readonly deps: LaunchDeps) {}

  async create(user: User, req: SessionRequest, ip?: string): Promise<SessionView> {
    const { cluster, identity, app, extras, env, partition, request } = await this.check(user, req);
    const id = newShortId(10);
    const secret = newToken();
    const appToken = newToken(24);
    const minutes = minutesOf(req);
    // The row, its first event and the audit entry are written together or not at all (the database may
    // fail in between: no session must be left behind that nobody asked the scheduler for).
    let row = await this.deps.db.transaction().execute(async (trx) => {
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
          .filter((a) => a.unixSocket || cluster.appSockets === 'relay' || cluster.connection === 'dial-out')
          .map((a) => a.id),
        gateway: this.deps.gateways?.id,
      });
      await addSessionEvent(trx, id, 'requested', `requested ${app.name} on ${cluster.title}`);
      await this.deps.audit.record(
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
    this.deps.owners.remember(user);

    const agentEnv: Record<string, string> = {
      ATRIUM_HUB_URL: this.deps.hubUrl(),
      ATRIUM_SESSION_ID: id,
      ATRIUM_AGENT_SECRET: secret,
      ATRIUM_APP: JSON.stringify(agentSpecOf(app)),
      ATRIUM_BASE_URL: sessionPrefix(user.username, id),
      ATRIUM_APP_TOKEN: appToken,
      ATRIUM_BIND_HOST: cluster.cfg.bindHost,
      ATRIUM_HEARTBEAT_SECONDS: String(this.deps.cfg.sessions.heartbeatSeconds),
    };
    if (extras.length > 0) agentEnv.ATRIUM_EXTRA_APPS = JSON.stringify(extras.map(agentSpecOf));
    // Remote nodes: the agent serves every app through its relay (TCP, with a handshake on the app's secret).
    // Nodes that accept no inbound connection: the agent dials the gateway instead, and nothing listens on TCP.
    if (cluster.connection === 'dial-out') agentEnv.ATRIUM_TUNNEL = '1';
    else if (cluster.appSockets === 'relay') agentEnv.ATRIUM_RELAY = '1';
    if (env?.container) agentEnv.ATRIUM_CONTAINER = JSON.stringify(env.container);
    // The agent keeps a fresh copy of the user's identity-provider access token in the session dir.
    if (this.deps.cfg.auth.oidc?.passTokensToSessions) agentEnv.ATRIUM_FETCH_ACCESS_TOKEN = '1';
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
        account: request.account || undefined,
        reservation: req.reservation || undefined,
        nodelist: cluster.cfg.slurm?.nodelist,
        agentArgv: this.deps.agentArgv,
        agentEnv,
        setup: env?.setup,
      });
      row = await this.deps.states.apply(
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
      await this.deps.states.apply(row, { type: 'submit_failed', reason: msg });
      if (e instanceof SchedulerError && e.field) {
        throw new RequestError(400, [{ field: e.field, message: msg }]);
      }
      this.deps.log.error({ err: e, session: id }, 'submit failed');
      throw new RequestError(502, [{ field: 'cluster', message: `Cluster: ${msg}` }]);
    }
    cluster.poller.wake();
    cluster.poller.wake();
    return this.deps.states.view(row);
  }

  /** Every check of a request, in the order that answers fastest; nothing is recorded or submitted. */
  private async check(user: User, req: SessionRequest): Promise<CheckedRequest> {
    const cluster = this.deps.clusters.get(req.cluster);
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
    // Members of an active project only (from the cached associations: no sacctmgr call here).
    const access = await cluster.projectAccess(user);
    if (access && !access.ok) {
      throw new RequestError(access.status, [{ field: access.field, message: access.message }]);
    }
    // Looked up while the request is checked (it runs getent): the submit path stays short.
    const identityLookup = lookupUnixUser(user.unixUser);
    const limits = await cluster.limitsFor(user, this.deps.cfg.appCatalogue, this.deps.cfg.environments);
    // The partition is the user's, or chosen by the cluster's rules: either way the request is checked
    // against that partition's limits (a rule's partition may have smaller nodes or a shorter MaxTime).
    const chosen = typeof req.partition === 'string' && req.partition !== '' ? req.partition : undefined;
    const partition = chosen ?? cluster.choosePartition(req);
    const account = accountUnderRule(cluster.cfg.projectAccess, access, req.account || undefined);
    const errors = validateRequest({ ...req, partition, account }, limits);
    if (errors.length > 0) throw new RequestError(400, errors);
    const app = appOf(this.deps.cfg, req.app)!;
    const extras = (req.extraApps ?? []).map((a) => appOf(this.deps.cfg, a)!);
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
    const active = (await listSessionsOfUser(this.deps.db, user.id, false)).length;
    if (active >= this.deps.cfg.sessions.maxPerUser) {
      throw new RequestError(409, [
        {
          field: 'cluster',
          message: `Cluster: you already have ${active} sessions; stop one first (at most ${this.deps.cfg.sessions.maxPerUser})`,
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
      ? this.deps.cfg.environments.find((e) => e.id === req.environment)
      : cluster.environmentsFor(this.deps.cfg.environments)[0];
    const request: SessionRequest = {
      ...req,
      extraApps: extras.length > 0 ? extras.map((a) => a.id) : undefined,
      environment: env?.id,
      partition,
      account,
    };

    return { cluster, identity, app, extras, env, partition, request };
  }

  /**
   * A session still `requested` at a poll: its submit was interrupted (gateway stopped, sbatch timed
   * out). A job it did create (found by its tag) is adopted; otherwise the session fails once no job
   * can come any more.
   */
  async settleRequested(row: SessionRow, job: JobInfo | undefined, now: number): Promise<void> {
    const { states } = this.deps;
    if (job && !row.job_id) {
      await states.apply(
        row,
        { type: 'submitted', jobId: job.jobId },
        { job_id: job.jobId, submitted_at: now },
      );
    } else if (!job && now - row.created_at > 120_000) {
      await states.apply(row, {
        type: 'error',
        reason: 'the submission was interrupted and no job was created',
      });
    } else if (
      !job &&
      row.gateway &&
      this.deps.gateways?.goneBefore(
        row.gateway,
        Date.now() - (this.deps.clusters.get(row.cluster)?.poller.ageMs ?? 0),
      )
    ) {
      // Its gateway died before submitting (the poll would show a job it created): nothing runs.
      await states.apply(row, {
        type: 'error',
        reason: 'the gateway that took the request stopped before submitting it; no job was created',
      });
    }
  }
}
