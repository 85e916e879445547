// Batch jobs end to end, as one service for the routes: a thin facade over the parts along the data path,
// each with its named dependencies. submit.ts: submit (by path or text) and cancel, as the user.
// follow.ts: every job of the gateway's users from the ONE shared poll per cluster, with exits.ts for the
// history's exit codes (one sacct call per poll batch, only when something finished). notify.ts: state
// changes as notifications. publish.ts: live events. output-reader.ts: output read as the user. read.ts:
// the lists, a job with its links (links.ts), the queue and cluster status views.
import type { Logger } from 'pino';
import type { BatchClusterView, JobDetail, JobLinks, JobOutputPage } from '../api/jobs.ts';
import type { LoadedConfig } from '../config/load.ts';
import type { AuditLog } from '../db/audit.ts';
import type { Db } from '../db/index.ts';
import type { User } from '../db/users.ts';
import type { EventBus } from '../events/bus.ts';
import type { NotificationService } from '../notifications/service.ts';
import { ExecRunner } from '../scheduler/slurm/runner.ts';
import type { Cluster } from '../sessions/clusters.ts';
import type { SessionService } from '../sessions/service.ts';
import { ExitResolver } from './exits.ts';
import { JobFollower } from './follow.ts';
import { JobLinker } from './links.ts';
import { JobNotifier } from './notify.ts';
import { JobOutputReader } from './output-reader.ts';
import { JobOwners } from './owners.ts';
import { JobPublisher } from './publish.ts';
import type { ClusterStatus, QueueFilters, QueueView, StateFilter } from './queue.ts';
import { JobReader } from './read.ts';
import { JobSubmitter, SubmitsInFlight } from './submit.ts';
import type { JobRow, JobView } from './view.ts';

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

export { JobsHttpError } from './errors.ts';
// What the jobs pages get: types of the API contract.
export type { BatchClusterView, JobDetail, JobLinks };

export class JobsService {
  /** File reads (output viewer) run as the user through their own runner: not scheduler calls. */
  readonly fileRunner = new ExecRunner({ timeoutMs: 10_000 });
  private readonly publisher: JobPublisher;
  private readonly reader: JobReader;
  private readonly submitter: JobSubmitter;
  private readonly outputReader: JobOutputReader;
  private readonly db: Db;

  constructor(deps: JobsServiceDeps) {
    const { db, cfg, clusters, bus, log, audit, notifications, sessions } = deps;
    this.db = db;
    const owners = new JobOwners({ db });
    const publisher = new JobPublisher({ clusters, bus, owners });
    const notifier = new JobNotifier({ notifications, log });
    const links = new JobLinker({ cfg, sessions });
    const reader = new JobReader({ db, clusters, publisher, links });
    const inFlight = new SubmitsInFlight();
    this.publisher = publisher;
    this.reader = reader;
    this.submitter = new JobSubmitter({
      db,
      clusters,
      audit,
      notifications,
      owners,
      publisher,
      findOwned: (user, cluster, jobId) => reader.getOwned(user, cluster, jobId),
      inFlight,
    });
    this.outputReader = new JobOutputReader({ clusters, fileRunner: this.fileRunner });
    const exits = new ExitResolver({ db, log, publisher, notifier });
    const follower = new JobFollower({
      db,
      log,
      owners,
      publisher,
      notifier,
      exits,
      submitsInFlight: inFlight,
    });
    // Only backends that run batch jobs have any; sessions are the sessions service's.
    for (const c of clusters.values()) {
      if (typeof c.adapter.submitBatch === 'function') follower.follow(c);
    }
  }

  view(row: JobRow): JobView {
    return this.publisher.view(row);
  }

  /** The user's jobs (their Unix account's), newest first, with live queue details. */
  listFor(user: User, f?: { cluster?: string; state?: StateFilter; limit?: number }): Promise<JobView[]> {
    return this.reader.listFor(user, f);
  }

  /** The job if it belongs to this user's Unix account; undefined otherwise (callers answer 404). */
  getOwned(user: User, cluster: string, jobId: string): Promise<JobRow | undefined> {
    return this.reader.getOwned(user, cluster, jobId);
  }

  detail(user: User, row: JobRow): Promise<JobDetail> {
    return this.reader.detail(user, row);
  }

  /** What the submit form offers this user, per cluster that runs batch jobs. */
  batchClusters(user: User): Promise<BatchClusterView[]> {
    return this.submitter.batchClusters(user);
  }

  submit(user: User, body: unknown, ip?: string): Promise<JobView> {
    return this.submitter.submit(user, body, ip);
  }

  cancel(user: User, row: JobRow, ip?: string): Promise<JobView> {
    return this.submitter.cancel(user, row, ip);
  }

  /** The job was given more time (walltime extension): shown at once; the next poll says the same. */
  async timeExtended(row: JobRow, totalMinutes: number): Promise<JobView> {
    const patch = { time_limit_min: totalMinutes, updated_at: Date.now() };
    await this.db.updateTable('jobs').set(patch).where('id', '=', row.id).execute();
    const updated = { ...row, ...patch };
    this.publisher.publish(updated);
    return this.view(updated);
  }

  /** A page of the job's stdout or stderr, read as the job's owner. */
  output(
    user: User,
    row: JobRow,
    stream: 'stdout' | 'stderr',
    req: { offset: number; limit: number; fromEnd: boolean },
  ): Promise<JobOutputPage> {
    return this.outputReader.output(user, row, stream, req);
  }

  queue(user: User, clusterName: string, f: QueueFilters): Promise<QueueView> {
    return this.reader.queue(user, clusterName, f);
  }

  status(user: User, clusterName: string): Promise<ClusterStatus> {
    return this.reader.status(user, clusterName);
  }
}
