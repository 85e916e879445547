// What the jobs pages read: the user's jobs (their Unix account's) with live queue details, one job with
// its links, the cluster's queue and its status. Nothing here calls the scheduler beyond its cached
// static facts: the queue details are the shared poll's.
import type { JobDetail } from '../api/jobs.ts';
import type { Db } from '../db/index.ts';
import type { User } from '../db/users.ts';
import type { Cluster } from '../sessions/clusters.ts';
import { JobsHttpError } from './errors.ts';
import type { JobLinker } from './links.ts';
import type { JobPublisher } from './publish.ts';
import {
  type ClusterStatus,
  clusterStatus,
  matchesState,
  type QueueFilters,
  type QueueView,
  queueView,
  type StateFilter,
} from './queue.ts';
import { findJob } from './store.ts';
import type { JobRow, JobView } from './view.ts';

/** A job id as squeue prints it: 123, an array task 123_4, or an array's pending rest 123_[5-9%2]. */
const JOB_ID_RE = /^\d+(?:_\d+|_\[[0-9,%-]{1,200}\])?$/;

export interface JobReaderDeps {
  db: Db;
  clusters: Map<string, Cluster>;
  publisher: JobPublisher;
  links: JobLinker;
}

export class JobReader {
  constructor(private readonly deps: JobReaderDeps) {}

  /** The user's jobs (their Unix account's), newest first, with live queue details. */
  async listFor(
    user: User,
    f: { cluster?: string; state?: StateFilter; limit?: number } = {},
  ): Promise<JobView[]> {
    const { db, clusters, publisher } = this.deps;
    let q = db
      .selectFrom('jobs')
      .selectAll()
      .where('unix_user', '=', user.unixUser)
      .orderBy('submitted_at', 'desc')
      .orderBy('id', 'desc')
      .limit(Math.max(1, Math.min(f.limit ?? 200, 1000)));
    if (f.cluster) q = q.where('cluster', '=', f.cluster);
    const rows = (await q.execute()) as JobRow[];
    return rows
      .filter((r) => clusters.get(r.cluster)?.userMayUse(user))
      .map((r) => publisher.view(r))
      .filter((v) => matchesState(v.state, f.state));
  }

  /** The job if it belongs to this user's Unix account; undefined otherwise (callers answer 404). */
  async getOwned(user: User, cluster: string, jobId: string): Promise<JobRow | undefined> {
    if (!JOB_ID_RE.test(jobId) || !this.deps.clusters.get(cluster)?.userMayUse(user)) return undefined;
    const row = await findJob(this.deps.db, cluster, jobId);
    return row && row.unix_user === user.unixUser ? row : undefined;
  }

  async detail(user: User, row: JobRow): Promise<JobDetail> {
    return { ...this.deps.publisher.view(row), links: await this.deps.links.linksFor(user, row) };
  }

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

  private clusterFor(user: User, name: string): Cluster {
    const c = this.deps.clusters.get(name);
    if (!c || !c.userMayUse(user)) throw new JobsHttpError(404, 'no such cluster');
    return c;
  }
}
