// Batch jobs end to end: submit as the user (by path or text), follow every job of the gateway's users
// from the ONE shared poll per cluster (no scheduler call per viewer or per job), keep the history with
// exit codes (one sacct call per poll batch, only when something finished), notify state changes,
// cancel, read output as the user, and the queue and cluster status views.
import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { BatchClusterView, JobDetail, JobLinks, JobOutputPage } from '../api/jobs.ts';
import { newShortId } from '../auth/secrets.ts';
import type { LoadedConfig } from '../config/load.ts';
import {
  BATCH_FIELD_LABELS,
  type BatchLimits,
  type BatchRequest,
  parseBatchRequest,
  validateBatchRequest,
} from '../core/batch-request.ts';
import type { FieldError } from '../core/request.ts';
import type { AuditLog } from '../db/audit.ts';
import type { Db } from '../db/index.ts';
import { listUsers, type User } from '../db/users.ts';
import type { EventBus } from '../events/bus.ts';
import type { NotificationService } from '../notifications/service.ts';
import type { SacctRecord } from '../scheduler/slurm/parse.ts';
import { ExecRunner } from '../scheduler/slurm/runner.ts';
import {
  type BatchSubmission,
  type ClusterInfo,
  FINISHED_JOB_STATES,
  type JobInfo,
  type JobState,
  type PollSnapshot,
  SchedulerError,
  type UnixIdentity,
} from '../scheduler/types.ts';
import type { Cluster } from '../sessions/clusters.ts';
import { RequestError, type SessionService } from '../sessions/service.ts';
import { FileReadError, readPageAsUser } from '../system/as-user-files.ts';
import { lookupUnixUser } from '../system/users.ts';
import {
  type ClusterStatus,
  clusterStatus,
  matchesState,
  type QueueFilters,
  type QueueView,
  queueView,
  type StateFilter,
} from './queue.ts';
import {
  browseLink,
  isSessionJob,
  type JobRow,
  type JobView,
  mailTypesFor,
  notificationFor,
  parseInfo,
  restartCause,
  rowPatchFrom,
  signatureOf,
  toJobView,
} from './view.ts';

export interface JobsServiceDeps {
  db: Db;
  cfg: LoadedConfig;
  clusters: Map<string, Cluster>;
  bus: EventBus;
  log: Logger;
  audit: AuditLog;
  notifications: NotificationService;
  sessions: SessionService;
}

// What the jobs pages get: types of the API contract.
export type { BatchClusterView, JobDetail, JobLinks };

export class JobsHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'JobsHttpError';
  }
}

const ACTIVE_STATES = ['pending', 'running', 'completing', 'suspended'];
/** A job id as squeue prints it: 123, an array task 123_4, or an array's pending rest 123_[5-9%2]. */
const JOB_ID_RE = /^\d+(?:_\d+|_\[[0-9,%-]{1,200}\])?$/;
const SACCT_ID_RE = /^\d+(?:_\d+)?$/;
/** A job submitted this recently may be missing from a poll that was already under way. */
const SUBMIT_GRACE_MS = 10_000;
const USERS_TTL_MS = 30_000;
const EXIT_ATTEMPTS = 6;

interface PendingExit {
  attempts: number;
  /** Gone from squeue while active: the final state must come from sacct. */
  vanished: boolean;
}

export class JobsService {
  /** Unix user -> gateway user ids (usually one). */
  private byUnix = new Map<string, number[]>();
  private usersAt = 0;
  /** Per cluster: job id -> signature of what the last poll saw (skip unchanged jobs). */
  private readonly seen = new Map<string, Map<string, string>>();
  /** Per cluster: jobs whose exit code sacct should confirm (or whose end must be learned). */
  private readonly pendingExit = new Map<string, Map<string, PendingExit>>();
  private readonly resolving = new Set<string>();
  /** Submits under way per cluster:unix user (the poll leaves their new jobs to the submit). */
  private readonly inflight = new Map<string, number>();
  private readonly homes = new Map<string, { home: string; at: number }>();
  /** File reads (output viewer) run as the user through their own runner: not scheduler calls. */
  readonly fileRunner = new ExecRunner({ timeoutMs: 10_000 });

  constructor(private readonly d: JobsServiceDeps) {
    // Only backends that run batch jobs have any; sessions are the sessions service's.
    for (const c of d.clusters.values()) {
      if (typeof c.adapter.submitBatch === 'function')
        c.poller.onSnapshot((_name, snap) => this.reconcile(c, snap));
    }
  }

  // ---- users ----------------------------------------------------------------------------------

  private async refreshUsers(force = false): Promise<void> {
    if (!force && Date.now() - this.usersAt < USERS_TTL_MS) return;
    const map = new Map<string, number[]>();
    for (const u of await listUsers(this.d.db)) {
      if (u.disabled) continue;
      const ids = map.get(u.unix_user) ?? [];
      ids.push(u.id);
      map.set(u.unix_user, ids);
    }
    this.byUnix = map;
    this.usersAt = Date.now();
  }

  private noteUser(user: User): void {
    const ids = this.byUnix.get(user.unixUser) ?? [];
    if (!ids.includes(user.id))
      this.byUnix.set(
        user.unixUser,
        [...ids, user.id].sort((a, b) => a - b),
      );
  }

  private async homeOf(unixUser: string): Promise<string | null> {
    const hit = this.homes.get(unixUser);
    if (hit && Date.now() - hit.at < 300_000) return hit.home;
    const id = await lookupUnixUser(unixUser);
    if (!id) return null;
    this.homes.set(unixUser, { home: id.home, at: Date.now() });
    return id.home;
  }

  // ---- views ----------------------------------------------------------------------------------

  private live(cluster: string): { snap: PollSnapshot | null; reachable: boolean } {
    const c = this.d.clusters.get(cluster);
    return { snap: c?.poller.latestGood ?? null, reachable: c?.poller.reachable ?? false };
  }

  view(row: JobRow): JobView {
    return toJobView(row, this.live(row.cluster));
  }

  private publish(row: JobRow): void {
    const ids = row.unix_user ? (this.byUnix.get(row.unix_user) ?? [row.user_id]) : [row.user_id];
    const data = this.view(row);
    for (const userId of ids) this.d.bus.publish({ userId }, { type: 'job', data });
  }

  private clusterFor(user: User, name: string): Cluster {
    const c = this.d.clusters.get(name);
    if (!c || !c.userMayUse(user)) throw new JobsHttpError(404, 'no such cluster');
    return c;
  }

  /** The user's jobs (their Unix account's), newest first, with live queue details. */
  async listFor(
    user: User,
    f: { cluster?: string; state?: StateFilter; limit?: number } = {},
  ): Promise<JobView[]> {
    let q = this.d.db
      .selectFrom('jobs')
      .selectAll()
      .where('unix_user', '=', user.unixUser)
      .orderBy('submitted_at', 'desc')
      .orderBy('id', 'desc')
      .limit(Math.max(1, Math.min(f.limit ?? 200, 1000)));
    if (f.cluster) q = q.where('cluster', '=', f.cluster);
    const rows = (await q.execute()) as JobRow[];
    return rows
      .filter((r) => this.d.clusters.get(r.cluster)?.userMayUse(user))
      .map((r) => this.view(r))
      .filter((v) => matchesState(v.state, f.state));
  }

  /** The job if it belongs to this user's Unix account; undefined otherwise (callers answer 404). */
  async getOwned(user: User, cluster: string, jobId: string): Promise<JobRow | undefined> {
    if (!JOB_ID_RE.test(jobId) || !this.d.clusters.get(cluster)?.userMayUse(user)) return undefined;
    const row = (await this.d.db
      .selectFrom('jobs')
      .selectAll()
      .where('cluster', '=', cluster)
      .where('job_id', '=', jobId)
      .executeTakeFirst()) as JobRow | undefined;
    return row && row.unix_user === user.unixUser ? row : undefined;
  }

  async detail(user: User, row: JobRow): Promise<JobDetail> {
    return { ...this.view(row), links: await this.linksFor(user, row) };
  }

  private async linksFor(user: User, row: JobRow): Promise<JobLinks> {
    const newSession = `/?cluster=${encodeURIComponent(row.cluster)}&app=jupyter`;
    if (!row.work_dir) return { browse: null, newSession, why: 'the working directory is not known yet' };
    const home = await this.homeOf(user.unixUser);
    if (!home) return { browse: null, newSession, why: 'your home directory is not known here' };
    const sessions = await this.d.sessions.listFor(user);
    for (const s of sessions) {
      if (s.state !== 'running' || s.cluster !== row.cluster) continue;
      const candidates = [{ id: s.app, url: s.url }, ...s.apps.map((a) => ({ id: a.id, url: a.url }))];
      for (const a of candidates) {
        const def = this.d.cfg.appCatalogue.find((x) => x.id === a.id) as
          | { id: string; browsePath?: string }
          | undefined;
        const template = def?.browsePath ?? (a.id === 'jupyter' ? 'tree/{path}' : undefined);
        if (!template) continue;
        const url = browseLink(a.url, home, row.work_dir, template);
        if (!url) {
          return {
            browse: null,
            newSession,
            why: `the working directory is outside your home (${home}), which is what Jupyter shows`,
          };
        }
        return { browse: { url, sessionId: s.id, sessionName: s.label || s.appName }, newSession, why: null };
      }
    }
    return { browse: null, newSession, why: 'you have no running Jupyter session on this cluster' };
  }

  // ---- submit -----------------------------------------------------------------------------------

  /** What the submit form offers this user, per cluster that runs batch jobs. */
  async batchClusters(user: User): Promise<BatchClusterView[]> {
    const out: BatchClusterView[] = [];
    for (const c of this.d.clusters.values()) {
      if (!c.userMayUse(user) || typeof c.adapter.submitBatch !== 'function') continue;
      const info = await c.clusterInfo().catch(() => null);
      out.push({
        name: c.name,
        title: c.title,
        limits: this.batchLimits(c, user, info),
        defaultPartition: info?.partitions.find((p) => p.isDefault)?.name ?? null,
        mail: (c.cfg.slurm?.mail ?? false) && !!user.email,
      });
    }
    return out;
  }

  private batchLimits(c: Cluster, user: User, info: ClusterInfo | null): BatchLimits {
    const offered = c.cfg.slurm?.batchPartitions;
    const nodes = c.poller.latestGood?.nodes ?? [];
    const partitions = info
      ? info.partitions.map((p) => p.name).filter((p) => !offered || offered.includes(p))
      : offered;
    const perPartition: NonNullable<BatchLimits['perPartition']> = {};
    for (const p of partitions ?? []) {
      const pn = nodes.filter((n) => n.partitions.includes(p));
      if (pn.length === 0) continue;
      perPartition[p] = {
        maxCores: Math.max(...pn.map((n) => n.cpus)),
        maxMemoryGb: Math.floor(Math.max(...pn.map((n) => n.memoryMb)) / 1024),
        maxGpus: Math.max(...pn.map((n) => n.gpus)),
      };
    }
    const limits: BatchLimits = { perPartition };
    if (partitions) limits.partitions = partitions;
    const accounts = info?.hasAccounting
      ? (info.accountsByUser?.[user.unixUser] ?? [])
      : c.cfg.slurm?.accounts;
    if (accounts) limits.accounts = accounts;
    if (nodes.length > 0) {
      limits.maxCores = Math.max(...nodes.map((n) => n.cpus));
      limits.maxMemoryGb = Math.floor(Math.max(...nodes.map((n) => n.memoryMb)) / 1024);
      limits.maxGpus = Math.max(...nodes.map((n) => n.gpus));
    }
    return limits;
  }

  async submit(user: User, body: unknown, ip?: string): Promise<JobView> {
    const req: BatchRequest = parseBatchRequest(body);
    const c = this.d.clusters.get(req.cluster);
    if (!c || !c.userMayUse(user)) {
      throw new RequestError(400, [
        {
          field: 'cluster',
          message: `Cluster: "${String(req.cluster).slice(0, 40)}" is not available to you`,
        },
      ]);
    }
    const adapter = c.adapter;
    if (typeof adapter.submitBatch !== 'function') {
      throw new RequestError(400, [
        { field: 'cluster', message: `Cluster: ${c.title} does not run batch jobs` },
      ]);
    }
    const info = await c.clusterInfo().catch(() => null);
    const errors = validateBatchRequest(req, this.batchLimits(c, user, info));
    if (errors.length > 0) throw new RequestError(400, errors);
    const identity = await lookupUnixUser(user.unixUser);
    if (!identity || identity.uid === 0) {
      throw new RequestError(400, [
        { field: 'cluster', message: `Cluster: your account has no Unix user "${user.unixUser}" here` },
      ]);
    }
    const sub = await this.submissionOf(c, user, identity, req);
    const key = `${c.name}:${identity.user}`;
    this.inflight.set(key, (this.inflight.get(key) ?? 0) + 1);
    let jobId: string;
    try {
      jobId = (await adapter.submitBatch.call(adapter, sub)).jobId;
    } catch (e) {
      const msg =
        e instanceof SchedulerError ? e.message : `the scheduler refused the job: ${(e as Error).message}`;
      await this.d.audit.record({
        actorUserId: user.id,
        actor: user.username,
        action: 'job.submit',
        target: c.name,
        ip,
        ok: false,
        details: { source: req.source, scriptPath: req.scriptPath, error: msg.slice(0, 300) },
      });
      throw new RequestError(e instanceof SchedulerError && e.field ? 400 : 502, [
        fieldErrorOf(e instanceof SchedulerError ? e.field : undefined, msg),
      ]);
    } finally {
      const n = (this.inflight.get(key) ?? 1) - 1;
      if (n > 0) this.inflight.set(key, n);
      else this.inflight.delete(key);
    }
    const now = Date.now();
    const values = {
      user_id: user.id,
      unix_user: identity.user,
      cluster: c.name,
      job_id: jobId,
      name: sub.jobName ?? (sub.scriptPath ? (sub.scriptPath.split('/').pop() ?? 'sbatch') : 'sbatch'),
      partition: sub.partition ?? null,
      account: sub.account ?? null,
      state: 'pending',
      reason: null,
      exit_code: null,
      exit_source: null,
      source: req.source,
      script_path: sub.scriptPath ?? null,
      work_dir: sub.workDir ?? sub.defaultDir ?? null,
      stdout_path: null,
      stderr_path: null,
      submitted_at: now,
      started_at: null,
      ended_at: null,
      time_limit_min: sub.minutes ?? null,
      nodes: null,
      info: null,
      notified_state: null,
      seen_at: null,
      updated_at: now,
    };
    // The poll may have recorded it already (as seen outside): the submit's facts win.
    await this.d.db
      .insertInto('jobs')
      .values(values)
      .onConflict((oc) =>
        oc.columns(['cluster', 'job_id']).doUpdateSet({
          user_id: user.id,
          unix_user: identity.user,
          source: req.source,
          script_path: sub.scriptPath ?? null,
          updated_at: now,
        }),
      )
      .execute();
    this.noteUser(user);
    await this.d.audit.record({
      actorUserId: user.id,
      actor: user.username,
      action: 'job.submit',
      target: `${c.name}/${jobId}`,
      ip,
      ok: true,
      details: { source: req.source, scriptPath: req.scriptPath, jobName: req.jobName },
    });
    c.poller.wake();
    const row = (await this.getOwned(user, c.name, jobId))!;
    this.publish(row);
    return this.view(row);
  }

  private async submissionOf(
    c: Cluster,
    user: User,
    identity: UnixIdentity,
    req: BatchRequest,
  ): Promise<BatchSubmission> {
    const sub: BatchSubmission = { identity, tag: `atrium-job-${newShortId(12)}` };
    if (req.source === 'path') sub.scriptPath = req.scriptPath!;
    else {
      sub.script = req.script!;
      sub.defaultDir = identity.home;
    }
    if (req.workDir) sub.workDir = req.workDir;
    if (req.jobName) sub.jobName = req.jobName;
    if (req.partition) sub.partition = req.partition;
    if (req.account) sub.account = req.account;
    if (req.cores !== undefined) sub.cores = req.cores;
    if (req.memoryGb !== undefined) sub.memoryMb = Math.max(1, Math.round(req.memoryGb * 1024));
    if (req.gpus !== undefined) sub.gpus = req.gpus;
    if (req.hours !== undefined) sub.minutes = Math.max(1, Math.round(req.hours * 60));
    // E-mail through Slurm: only where the site delivers it, the user asked for it and has an address.
    if (c.cfg.slurm?.mail && user.email) {
      const prefs = await this.d.notifications.prefs(user.id);
      const types = prefs.email ? mailTypesFor(prefs) : [];
      if (types.length > 0) {
        sub.mailTypes = types;
        sub.mailUser = user.email;
      }
    }
    return sub;
  }

  // ---- cancel -----------------------------------------------------------------------------------

  async cancel(user: User, row: JobRow, ip?: string): Promise<JobView> {
    const c = this.d.clusters.get(row.cluster);
    if (!c) throw new JobsHttpError(404, 'no such cluster');
    if (FINISHED_JOB_STATES.has(row.state as JobState) || row.state === 'unknown') return this.view(row);
    const identity = await lookupUnixUser(user.unixUser);
    if (!identity) throw new JobsHttpError(400, `your account has no Unix user "${user.unixUser}" here`);
    let ok = true;
    let error: string | undefined;
    try {
      await c.adapter.cancel(identity, row.job_id);
    } catch (e) {
      ok = false;
      error = (e as Error).message;
    }
    await this.d.audit.record({
      actorUserId: user.id,
      actor: user.username,
      action: 'job.cancel',
      target: `${row.cluster}/${row.job_id}`,
      ip,
      ok,
      ...(error ? { details: { error: error.slice(0, 300) } } : {}),
    });
    if (!ok) throw new JobsHttpError(502, `the job could not be cancelled: ${error}`);
    c.poller.wake();
    return this.view(row);
  }

  // ---- output -----------------------------------------------------------------------------------

  /** A page of the job's stdout or stderr, read as the job's owner. */
  async output(
    user: User,
    row: JobRow,
    stream: 'stdout' | 'stderr',
    req: { offset: number; limit: number; fromEnd: boolean },
  ): Promise<JobOutputPage> {
    const c = this.d.clusters.get(row.cluster);
    const p = stream === 'stderr' ? row.stderr_path : row.stdout_path;
    const empty = (message: string, exists = false) => ({
      data: '',
      offset: 0,
      nextOffset: 0,
      size: 0,
      eof: true,
      path: p,
      exists,
      message,
    });
    if (!c) throw new JobsHttpError(404, 'no such cluster');
    if (!p) {
      return empty(
        row.state === 'pending'
          ? 'the output file is known once the scheduler has the job'
          : 'the output path is not known (a pattern like %N or an array task id that cannot be resolved)',
      );
    }
    if (p === '/dev/null') return empty('the output goes to /dev/null', true);
    try {
      const page = await readPageAsUser(
        { runner: this.fileRunner, runAs: c.cfg.slurm?.runAs ?? 'none', timeoutMs: 10_000 },
        user.unixUser,
        p,
        req,
      );
      return { ...page, path: p, exists: true };
    } catch (e) {
      if (e instanceof FileReadError) {
        if (e.problem === 'missing')
          return empty(
            row.state === 'pending' ? 'the job has not started yet' : 'the file does not exist (yet)',
          );
        if (e.problem === 'denied') throw new JobsHttpError(403, `${p}: you may not read this file`);
        if (e.problem === 'not_a_file') throw new JobsHttpError(409, `${p} is not a regular file`);
        if (e.problem === 'invalid') throw new JobsHttpError(409, `${p}: ${e.message}`);
      }
      throw new JobsHttpError(502, `the output could not be read: ${(e as Error).message}`);
    }
  }

  // ---- queue and status -------------------------------------------------------------------------

  async queue(user: User, clusterName: string, f: QueueFilters): Promise<QueueView> {
    const c = this.clusterFor(user, clusterName);
    const info = await c.clusterInfo().catch(() => null);
    // Unknown PrivateData, or a backend without it: private (the safe reading).
    // Jobs are private unless the scheduler says otherwise (only Slurm reports its PrivateData).
    const privateJobs = (info?.privateData ?? ['jobs']).includes('jobs');
    const snap = c.poller.latestGood;
    return queueView(c.name, snap, c.poller.latest?.ok ?? false, user.unixUser, privateJobs, f);
  }

  async status(user: User, clusterName: string): Promise<ClusterStatus> {
    const c = this.clusterFor(user, clusterName);
    const info = await c.clusterInfo().catch(() => null);
    const privateNodes = (info?.privateData ?? []).includes('nodes');
    return clusterStatus(
      c.name,
      c.poller.latestGood,
      c.poller.latest?.ok ?? false,
      info?.partitions ?? [],
      privateNodes,
    );
  }

  // ---- reconciliation with the shared poll ------------------------------------------------------

  private async reconcile(c: Cluster, snap: PollSnapshot): Promise<void> {
    // Unknown is not gone: a failed poll changes nothing (pages show "unknown" while it lasts).
    if (!snap.ok) return;
    await this.refreshUsers();
    const now = Date.now();
    const seen = this.seen.get(c.name) ?? new Map<string, string>();
    this.seen.set(c.name, seen);
    const pend = this.pendingExit.get(c.name) ?? new Map<string, PendingExit>();
    this.pendingExit.set(c.name, pend);

    const inSnap = new Map<string, JobInfo>();
    const changed: JobInfo[] = [];
    for (const j of snap.jobs) {
      if (isSessionJob(j) || !this.byUnix.has(j.user)) continue;
      inSnap.set(j.jobId, j);
      if (seen.get(j.jobId) !== signatureOf(j)) changed.push(j);
    }
    const active = (await this.d.db
      .selectFrom('jobs')
      .selectAll()
      .where('cluster', '=', c.name)
      .where('state', 'in', ACTIVE_STATES)
      .execute()) as JobRow[];
    const rows = new Map(active.map((r) => [r.job_id, r]));
    const missing = changed.map((j) => j.jobId).filter((id) => !rows.has(id));
    for (let i = 0; i < missing.length; i += 500) {
      const chunk = missing.slice(i, i + 500);
      const found = (await this.d.db
        .selectFrom('jobs')
        .selectAll()
        .where('cluster', '=', c.name)
        .where('job_id', 'in', chunk)
        .execute()) as JobRow[];
      for (const r of found) rows.set(r.job_id, r);
    }
    for (const j of changed) {
      try {
        if (await this.applyJob(c, j, rows.get(j.jobId), now, pend)) seen.set(j.jobId, signatureOf(j));
      } catch (e) {
        this.d.log.error({ err: e, cluster: c.name, job: j.jobId }, 'job reconcile failed');
      }
    }
    // Active jobs the poll no longer lists: their end comes from accounting (or stays unknown).
    for (const row of active) {
      if (inSnap.has(row.job_id) || pend.has(row.job_id)) continue;
      if (now - row.submitted_at < SUBMIT_GRACE_MS && row.seen_at === null) continue;
      if (await this.adoptArrayTasks(c, row, snap)) continue;
      pend.set(row.job_id, { attempts: 0, vanished: true });
    }
    for (const id of seen.keys()) if (!inSnap.has(id)) seen.delete(id);
    if (pend.size > 0) void this.resolveExits(c);
  }

  /** Returns false when the job should be looked at again at the next poll. */
  private async applyJob(
    c: Cluster,
    j: JobInfo,
    row: JobRow | undefined,
    now: number,
    pend: Map<string, PendingExit>,
  ): Promise<boolean> {
    const finished = FINISHED_JOB_STATES.has(j.state);
    const patch = rowPatchFrom(j, now);
    // The same job id again (the scheduler's ids restarted): a new job replaces the old record.
    if (
      row &&
      (FINISHED_JOB_STATES.has(row.state as JobState) || row.state === 'unknown') &&
      j.submitTime !== undefined &&
      Math.abs(j.submitTime * 1000 - row.submitted_at) > 3600_000
    ) {
      await this.d.db.deleteFrom('jobs').where('id', '=', row.id).execute();
      row = undefined;
    }
    if (!row) {
      if (this.inflight.has(`${c.name}:${j.user}`)) return false;
      // A job that ended without ever getting a node is no history worth keeping: a refused submit
      // (a FAILED record, BadConstraints) or one cancelled while pending (Slurm then sets a start time).
      if (finished && j.nodes === undefined) return true;
      const owners = this.byUnix.get(j.user) ?? [];
      if (owners.length === 0) return true;
      const inserted = {
        user_id: owners[0]!,
        unix_user: j.user,
        cluster: c.name,
        job_id: j.jobId,
        name: j.name,
        partition: null,
        account: null,
        state: j.state,
        reason: null,
        exit_code: null,
        exit_source: null,
        source: 'external',
        script_path: null,
        work_dir: null,
        stdout_path: null,
        stderr_path: null,
        submitted_at: j.submitTime !== undefined ? j.submitTime * 1000 : now,
        started_at: null,
        ended_at: null,
        time_limit_min: null,
        nodes: null,
        info: null,
        // Jobs submitted outside the gateway are listed, not notified.
        notified_state: j.state,
        seen_at: now,
        updated_at: now,
        ...patch,
      };
      const r = await this.d.db
        .insertInto('jobs')
        .values(inserted)
        .onConflict((oc) => oc.columns(['cluster', 'job_id']).doNothing())
        .returning('id')
        .executeTakeFirst();
      if (!r) return false;
      if (finished) pend.set(j.jobId, { attempts: 0, vanished: false });
      this.publish({ ...inserted, id: r.id } as JobRow);
      return true;
    }
    const update: Partial<JobRow> = { ...patch };
    // A requeued job (Slurm's JobRequeue, a node failure): its page tells it restarted, and why.
    const restartedAfter = restartCause(j, parseInfo(row), row.nodes, c.poller.latestGood?.nodes ?? []);
    if (restartedAfter) update.info = JSON.stringify({ ...j, restartedAfter });
    if (row.exit_source === 'sacct') {
      delete update.exit_code;
      delete update.exit_source;
    }
    let updated = { ...row, ...update } as JobRow;
    const n = row.source !== 'external' ? notificationFor(j.state, row.notified_state) : null;
    if (n) update.notified_state = j.state;
    await this.d.db.updateTable('jobs').set(update).where('id', '=', row.id).execute();
    updated = { ...updated, ...update } as JobRow;
    if (finished && !FINISHED_JOB_STATES.has(row.state as JobState) && SACCT_ID_RE.test(j.jobId))
      pend.set(j.jobId, { attempts: 0, vanished: false });
    if (n) await this.notify(c, updated, n);
    this.publish(updated);
    return true;
  }

  /**
   * A job submitted as an array (sbatch printed "123") shows up as its tasks ("123_1", "123_[2-9]"): the
   * tasks are listed as jobs of their own (taking the submit's source and script), the parent row goes.
   */
  private async adoptArrayTasks(c: Cluster, row: JobRow, snap: PollSnapshot): Promise<boolean> {
    if (!/^\d+$/.test(row.job_id)) return false;
    const prefix = `${row.job_id}_`;
    const tasks = snap.jobs.filter((j) => j.jobId.startsWith(prefix));
    if (tasks.length === 0) return false;
    await this.d.db.deleteFrom('jobs').where('id', '=', row.id).execute();
    await this.d.db
      .updateTable('jobs')
      .set({ source: row.source, script_path: row.script_path, user_id: row.user_id })
      .where('cluster', '=', c.name)
      // Not LIKE: its `_` is a wildcard ("123_%" would take job 1234 too).
      .where(sql<boolean>`substr(job_id, 1, ${prefix.length}) = ${prefix}`)
      .execute();
    return true;
  }

  private async notify(
    c: Cluster,
    row: JobRow,
    n: { kind: Parameters<NotificationService['notify']>[1]; title: string; verb: string },
  ): Promise<void> {
    const finished = FINISHED_JOB_STATES.has(row.state as JobState);
    // A cancelled job's "exit code" is the signal that stopped it: not worth saying.
    const exit =
      finished && row.exit_code !== null && row.state !== 'cancelled' ? ` (exit code ${row.exit_code})` : '';
    const body = `Job ${row.job_id} "${row.name}" on ${c.title} ${n.verb}${exit}.`;
    await this.d.notifications
      .notify(
        row.user_id,
        n.kind,
        n.title,
        body,
        `/jobs/${encodeURIComponent(c.name)}/${encodeURIComponent(row.job_id)}`,
      )
      .catch((e) => this.d.log.error({ err: e }, 'job notification failed'));
  }

  /**
   * Exit codes of jobs that just finished (and the end of jobs that left the queue unseen): ONE sacct
   * call for all of them, per poll, only when there are any and the cluster keeps accounting.
   * Without accounting, squeue's last-seen exit code stays, and vanished jobs end as "unknown".
   */
  private async resolveExits(c: Cluster): Promise<void> {
    if (this.resolving.has(c.name)) return;
    this.resolving.add(c.name);
    try {
      const pend = this.pendingExit.get(c.name);
      if (!pend || pend.size === 0) return;
      const info = await c.clusterInfo().catch(() => null);
      const adapter = c.adapter as {
        jobRecords?: (ids: readonly string[]) => Promise<Map<string, SacctRecord>>;
      };
      let records: Map<string, SacctRecord> | null = null;
      if (info?.hasAccounting && typeof adapter.jobRecords === 'function') {
        const ids = [...pend.keys()].filter((id) => SACCT_ID_RE.test(id));
        try {
          records = ids.length > 0 ? await adapter.jobRecords.call(c.adapter, ids) : new Map();
        } catch (e) {
          this.d.log.warn({ cluster: c.name, err: (e as Error).message }, 'sacct failed; will retry');
          records = null;
        }
      }
      for (const [id, p] of [...pend]) {
        const rec = records?.get(id);
        if (rec && FINISHED_JOB_STATES.has(rec.state)) {
          await this.applyRecord(c, id, rec, p.vanished);
          pend.delete(id);
          continue;
        }
        p.attempts++;
        const giveUp = !info?.hasAccounting || !SACCT_ID_RE.test(id) || p.attempts >= EXIT_ATTEMPTS;
        if (giveUp) {
          if (p.vanished) await this.markVanished(c, id);
          pend.delete(id);
        }
      }
    } catch (e) {
      this.d.log.error({ err: e, cluster: c.name }, 'exit codes not resolved');
    } finally {
      this.resolving.delete(c.name);
    }
  }

  private async rowOf(c: Cluster, jobId: string): Promise<JobRow | undefined> {
    return (await this.d.db
      .selectFrom('jobs')
      .selectAll()
      .where('cluster', '=', c.name)
      .where('job_id', '=', jobId)
      .executeTakeFirst()) as JobRow | undefined;
  }

  private async applyRecord(c: Cluster, jobId: string, rec: SacctRecord, vanished: boolean): Promise<void> {
    const row = await this.rowOf(c, jobId);
    if (!row) return;
    const update: Partial<JobRow> = {
      exit_code: rec.exitCode ?? row.exit_code,
      exit_source: rec.exitCode !== undefined ? 'sacct' : row.exit_source,
      updated_at: Date.now(),
    };
    if (vanished || ACTIVE_STATES.includes(row.state)) {
      update.state = rec.state;
      update.reason = null;
      update.ended_at = rec.endTime !== undefined ? rec.endTime * 1000 : Date.now();
      if (rec.startTime !== undefined) update.started_at = rec.startTime * 1000;
      if (rec.nodes) update.nodes = rec.nodes;
    }
    const state = (update.state ?? row.state) as JobState;
    const n = row.source !== 'external' ? notificationFor(state, row.notified_state) : null;
    if (n) update.notified_state = state;
    await this.d.db.updateTable('jobs').set(update).where('id', '=', row.id).execute();
    const updated = { ...row, ...update } as JobRow;
    if (n) await this.notify(c, updated, n);
    this.publish(updated);
  }

  private async markVanished(c: Cluster, jobId: string): Promise<void> {
    const row = await this.rowOf(c, jobId);
    if (!row || !ACTIVE_STATES.includes(row.state)) return;
    const update: Partial<JobRow> = {
      state: 'unknown',
      reason: 'left the queue unseen; its end is not known (no accounting)',
      ended_at: Date.now(),
      updated_at: Date.now(),
    };
    await this.d.db.updateTable('jobs').set(update).where('id', '=', row.id).execute();
    this.publish({ ...row, ...update } as JobRow);
  }
}

/** A scheduler error as a field error of the batch form (sbatch's own message, field as the form names it). */
function fieldErrorOf(field: string | undefined, message: string): FieldError {
  const map: Record<string, string> = { memory: 'memoryGb', mail: 'cluster' };
  const f = field ? (map[field] ?? field) : 'cluster';
  return { field: f, message: `${BATCH_FIELD_LABELS[f] ?? f}: ${message}` };
}
