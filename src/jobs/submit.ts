// Submitting a batch job: what the form offers each user per cluster (its limits), the request checked
// against them with per-field messages, sbatch run as the user, the job recorded at once (the poll then
// follows it) and audited. Cancelling is here too: the same call as the user, taken back.
import type { BatchClusterView } from '../api/jobs.ts';
import { newShortId } from '../auth/secrets.ts';
import {
  BATCH_FIELD_LABELS,
  type BatchLimits,
  type BatchRequest,
  parseBatchRequest,
  validateBatchRequest,
} from '../core/batch-request.ts';
import { accessRefusal, accountUnderRule } from '../core/project-access.ts';
import type { FieldError } from '../core/request.ts';
import type { AuditLog } from '../db/audit.ts';
import type { Db } from '../db/index.ts';
import type { User } from '../db/users.ts';
import type { NotificationService } from '../notifications/service.ts';
import {
  type BatchSubmission,
  type ClusterInfo,
  FINISHED_JOB_STATES,
  type JobState,
  SchedulerError,
  type UnixIdentity,
} from '../scheduler/types.ts';
import type { Cluster } from '../sessions/clusters.ts';
import { RequestError } from '../sessions/errors.ts';
import { lookupUnixUser } from '../system/users.ts';
import { JobsHttpError } from './errors.ts';
import type { JobOwners } from './owners.ts';
import type { JobPublisher } from './publish.ts';
import type { JobRow, JobView } from './view.ts';
import { mailTypesFor } from './view.ts';

/** Submits under way per cluster and Unix user. */
export class SubmitsInFlight {
  private readonly counts = new Map<string, number>();

  begin(cluster: string, unixUser: string): void {
    const key = `${cluster}:${unixUser}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  end(cluster: string, unixUser: string): void {
    const key = `${cluster}:${unixUser}`;
    const n = (this.counts.get(key) ?? 1) - 1;
    if (n > 0) this.counts.set(key, n);
    else this.counts.delete(key);
  }

  has(cluster: string, unixUser: string): boolean {
    return this.counts.has(`${cluster}:${unixUser}`);
  }
}

export interface JobSubmitterDeps {
  db: Db;
  clusters: Map<string, Cluster>;
  audit: AuditLog;
  /** The user's notification preferences become Slurm's e-mail types. */
  notifications: NotificationService;
  owners: JobOwners;
  publisher: JobPublisher;
  /** The submitted job as its owner reads it. */
  findOwned: (user: User, cluster: string, jobId: string) => Promise<JobRow | undefined>;
  inFlight: SubmitsInFlight;
}

export class JobSubmitter {
  constructor(private readonly deps: JobSubmitterDeps) {}

  /** What the submit form offers this user, per cluster that runs batch jobs. */
  async batchClusters(user: User): Promise<BatchClusterView[]> {
    const out: BatchClusterView[] = [];
    for (const c of this.deps.clusters.values()) {
      if (!c.userMayUse(user) || typeof c.adapter.submitBatch !== 'function') continue;
      const info = await c.clusterInfo().catch(() => null);
      out.push({
        name: c.name,
        title: c.title,
        limits: this.batchLimits(c, user, info),
        defaultPartition: info?.partitions.find((p) => p.isDefault)?.name ?? null,
        mail: (c.cfg.slurm?.mail ?? false) && !!user.email,
        ...accessRefusal(await c.projectAccess(user)),
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
    const accounts = c.accountsFor(user, info);
    if (accounts) limits.accounts = accounts;
    if (nodes.length > 0) {
      limits.maxCores = Math.max(...nodes.map((n) => n.cpus));
      limits.maxMemoryGb = Math.floor(Math.max(...nodes.map((n) => n.memoryMb)) / 1024);
      limits.maxGpus = Math.max(...nodes.map((n) => n.gpus));
    }
    return limits;
  }

  async submit(user: User, body: unknown, ip?: string): Promise<JobView> {
    const { db, clusters, audit, owners, publisher, inFlight } = this.deps;
    const req: BatchRequest = parseBatchRequest(body);
    const c = clusters.get(req.cluster);
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
    const access = await c.projectAccess(user);
    if (access && !access.ok) {
      throw new RequestError(access.status, [{ field: access.field, message: access.message }]);
    }
    const account = accountUnderRule(c.cfg.projectAccess, access, req.account || undefined);
    if (account) req.account = account;
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
    inFlight.begin(c.name, identity.user);
    let jobId: string;
    try {
      jobId = (await adapter.submitBatch.call(adapter, sub)).jobId;
    } catch (e) {
      const msg =
        e instanceof SchedulerError ? e.message : `the scheduler refused the job: ${(e as Error).message}`;
      await audit.record({
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
      inFlight.end(c.name, identity.user);
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
    await db
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
    owners.note(user);
    await audit.record({
      actorUserId: user.id,
      actor: user.username,
      action: 'job.submit',
      target: `${c.name}/${jobId}`,
      ip,
      ok: true,
      details: { source: req.source, scriptPath: req.scriptPath, jobName: req.jobName },
    });
    c.poller.wake();
    const row = (await this.deps.findOwned(user, c.name, jobId))!;
    publisher.publish(row);
    return publisher.view(row);
  }

  /** The user takes a job back: scancel as the user, audited; the poll, woken at once, records the end. */
  async cancel(user: User, row: JobRow, ip?: string): Promise<JobView> {
    const { clusters, audit, publisher } = this.deps;
    const c = clusters.get(row.cluster);
    if (!c) throw new JobsHttpError(404, 'no such cluster');
    if (FINISHED_JOB_STATES.has(row.state as JobState) || row.state === 'unknown') return publisher.view(row);
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
    await audit.record({
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
    return publisher.view(row);
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
      const prefs = await this.deps.notifications.prefs(user.id);
      const types = prefs.email ? mailTypesFor(prefs) : [];
      if (types.length > 0) {
        sub.mailTypes = types;
        sub.mailUser = user.email;
      }
    }
    return sub;
  }
}

/** A scheduler error as a field error of the batch form (sbatch's own message, field as the form names it). */
function fieldErrorOf(field: string | undefined, message: string): FieldError {
  const map: Record<string, string> = { memory: 'memoryGb', mail: 'cluster' };
  const f = field ? (map[field] ?? field) : 'cluster';
  return { field: f, message: `${BATCH_FIELD_LABELS[f] ?? f}: ${message}` };
}
