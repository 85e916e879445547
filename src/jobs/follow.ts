// Following every job of the gateway's users from the ONE shared poll per cluster (no scheduler call per
// viewer or per job): new jobs (also those submitted outside the gateway) are recorded, state changes
// saved, notified and published, restarts (requeue, node failure) told, array tasks adopted, and jobs that
// finished or left the queue handed to accounting for their end.
import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { Db } from '../db/index.ts';
import { FINISHED_JOB_STATES, type JobInfo, type JobState, type PollSnapshot } from '../scheduler/types.ts';
import type { Cluster } from '../sessions/clusters.ts';
import { type ExitResolver, SACCT_ID_RE } from './exits.ts';
import type { JobNotifier } from './notify.ts';
import type { JobOwners } from './owners.ts';
import type { JobPublisher } from './publish.ts';
import { ACTIVE_STATES, jobsOn } from './store.ts';
import { isSessionJob, type JobRow, parseInfo, restartCause, rowPatchFrom, signatureOf } from './view.ts';

/** A job submitted this recently may be missing from a poll that was already under way. */
const SUBMIT_GRACE_MS = 10_000;

export interface JobFollowerDeps {
  db: Db;
  log: Logger;
  owners: JobOwners;
  publisher: JobPublisher;
  notifier: JobNotifier;
  exits: ExitResolver;
  /** A submit under way records its new job itself: the poll leaves that user's new jobs to it. */
  submitsInFlight: { has(cluster: string, unixUser: string): boolean };
}

/**
 * Every active row of a cluster is read this often (and at the first poll after a start): a poll in
 * between reads only the rows of jobs that changed, left the queue, or were never seen by a poll.
 */
const FULL_READ_MS = 60_000;

/** What the follower keeps of a cluster between its polls. */
interface Followed {
  /** Job id -> signature of what the last poll applied (unchanged jobs cost no database work). */
  seen: Map<string, string>;
  /** When every active row was last read (0: not since this gateway started). */
  fullReadAt: number;
}

export class JobFollower {
  private readonly followed = new Map<string, Followed>();

  constructor(private readonly deps: JobFollowerDeps) {}

  /** Follows the cluster's batch jobs from every poll it makes from now on. */
  follow(c: Cluster): void {
    c.poller.onSnapshot((_name, snap) => this.reconcile(c, snap));
  }

  private async reconcile(c: Cluster, snap: PollSnapshot): Promise<void> {
    // Unknown is not gone: a failed poll changes nothing (pages show "unknown" while it lasts).
    if (!snap.ok) return;
    const { db, log, owners, exits } = this.deps;
    await owners.refresh();
    const now = Date.now();
    let f = this.followed.get(c.name);
    if (!f) {
      f = { seen: new Map(), fullReadAt: 0 };
      this.followed.set(c.name, f);
    }
    const { seen } = f;

    const inSnap = new Map<string, JobInfo>();
    const changed: JobInfo[] = [];
    for (const j of snap.jobs) {
      if (isSessionJob(j) || !owners.has(j.user)) continue;
      inSnap.set(j.jobId, j);
      if (seen.get(j.jobId) !== signatureOf(j)) changed.push(j);
    }
    const active = await this.activeRows(c.name, f, inSnap, now);
    const rows = new Map(active.map((r) => [r.job_id, r]));
    const missing = changed.map((j) => j.jobId).filter((id) => !rows.has(id));
    for (const chunk of chunks(missing)) {
      const found = (await jobsOn(db, c.name).where('job_id', 'in', chunk).execute()) as JobRow[];
      for (const r of found) rows.set(r.job_id, r);
    }
    for (const j of changed) {
      try {
        if (await this.applyJob(c, j, rows.get(j.jobId), now)) seen.set(j.jobId, signatureOf(j));
      } catch (e) {
        log.error({ err: e, cluster: c.name, job: j.jobId }, 'job reconcile failed');
      }
    }
    // Active jobs the poll no longer lists: their end comes from accounting (or stays unknown).
    for (const row of active) {
      if (inSnap.has(row.job_id) || exits.isExpected(c.name, row.job_id)) continue;
      if (now - row.submitted_at < SUBMIT_GRACE_MS && row.seen_at === null) continue;
      if (await this.adoptArrayTasks(c, row, snap)) continue;
      exits.expect(c.name, row.job_id, true);
    }
    for (const id of seen.keys()) if (!inSnap.has(id)) seen.delete(id);
    if (exits.hasPending(c.name)) void exits.resolve(c);
  }

  /**
   * The active rows this poll must look at for jobs that left the queue. All of them at the first poll
   * and every FULL_READ_MS (a row another gateway recorded, or one a failed reconcile left behind);
   * otherwise those of the jobs the last poll applied and this one no longer lists, and those no poll
   * has seen yet (a submit's own record). Rows of jobs still listed are not read: with thousands of
   * jobs in the queue, a poll in which nothing changed reads (next to) nothing.
   */
  private async activeRows(
    cluster: string,
    f: Followed,
    inSnap: ReadonlyMap<string, JobInfo>,
    now: number,
  ): Promise<JobRow[]> {
    const { db } = this.deps;
    const activeOn = () => jobsOn(db, cluster).where('state', 'in', ACTIVE_STATES);
    if (now - f.fullReadAt >= FULL_READ_MS) {
      const all = (await activeOn().execute()) as JobRow[];
      f.fullReadAt = now;
      return all;
    }
    const rows = new Map<string, JobRow>();
    for (const r of (await activeOn().where('seen_at', 'is', null).execute()) as JobRow[])
      rows.set(r.job_id, r);
    const gone = [...f.seen.keys()].filter((id) => !inSnap.has(id) && !rows.has(id));
    for (const chunk of chunks(gone))
      for (const r of (await activeOn().where('job_id', 'in', chunk).execute()) as JobRow[])
        rows.set(r.job_id, r);
    return [...rows.values()];
  }

  /** Returns false when the job should be looked at again at the next poll. */
  private async applyJob(c: Cluster, j: JobInfo, row: JobRow | undefined, now: number): Promise<boolean> {
    const { db, notifier, publisher, exits } = this.deps;
    const finished = FINISHED_JOB_STATES.has(j.state);
    const patch = rowPatchFrom(j, now);
    // The same job id again (the scheduler's ids restarted): a new job replaces the old record.
    if (
      row &&
      (FINISHED_JOB_STATES.has(row.state as JobState) || row.state === 'unknown') &&
      j.submitTime !== undefined &&
      Math.abs(j.submitTime * 1000 - row.submitted_at) > 3600_000
    ) {
      await db.deleteFrom('jobs').where('id', '=', row.id).execute();
      row = undefined;
    }
    if (!row) return this.recordNewJob(c, j, now, patch);
    const update: Partial<JobRow> = { ...patch };
    // A requeued job (Slurm's JobRequeue, a node failure): its page tells it restarted, and why.
    const restartedAfter = restartCause(j, parseInfo(row), row.nodes, c.poller.latestGood?.nodes ?? []);
    if (restartedAfter) update.info = JSON.stringify({ ...j, restartedAfter });
    if (row.exit_source === 'sacct') {
      delete update.exit_code;
      delete update.exit_source;
    }
    let updated = { ...row, ...update } as JobRow;
    const n = notifier.due(row, j.state);
    if (n) update.notified_state = j.state;
    await db.updateTable('jobs').set(update).where('id', '=', row.id).execute();
    updated = { ...updated, ...update } as JobRow;
    if (finished && !FINISHED_JOB_STATES.has(row.state as JobState) && SACCT_ID_RE.test(j.jobId))
      exits.expect(c.name, j.jobId, false);
    if (n) await notifier.send(c, updated, n);
    publisher.publish(updated);
    return true;
  }

  /**
   * Whether a job the gateway did not submit was submitted from one of the user's sessions: while one of
   * them ran on that cluster (Slurm records no parent job, so the time is what tells; a job another tool
   * of the same account submits meanwhile counts too, and is the user's all the same).
   */
  private async fromSession(
    cluster: string,
    userIds: readonly number[],
    submittedAt: number,
  ): Promise<boolean> {
    const hit = await this.deps.db
      .selectFrom('sessions')
      .select('id')
      .where('cluster', '=', cluster)
      .where('user_id', 'in', [...userIds])
      // squeue's submit time is in whole seconds.
      .where('started_at', '<=', submittedAt + 1000)
      .where((eb) => eb.or([eb('ended_at', 'is', null), eb('ended_at', '>=', submittedAt)]))
      .limit(1)
      .executeTakeFirst();
    return hit !== undefined;
  }

  /** A job the gateway has no record of: submitted outside it, or by a submit that has not recorded it. */
  private async recordNewJob(c: Cluster, j: JobInfo, now: number, patch: Partial<JobRow>): Promise<boolean> {
    const { db, owners, publisher, exits, submitsInFlight, notifier } = this.deps;
    if (submitsInFlight.has(c.name, j.user)) return false;
    const finished = FINISHED_JOB_STATES.has(j.state);
    // A job that ended without ever getting a node is no history worth keeping: a refused submit
    // (a FAILED record, BadConstraints) or one cancelled while pending (Slurm then sets a start time).
    if (finished && j.nodes === undefined) return true;
    const ids = owners.idsOf(j.user) ?? [];
    if (ids.length === 0) return true;
    const submittedAt = j.submitTime !== undefined ? j.submitTime * 1000 : now;
    const source = (await this.fromSession(c.name, ids, submittedAt)) ? 'session' : 'external';
    // A job from a session is notified like one from the page, from the state it is first seen in.
    const n = notifier.due({ source, notified_state: null }, j.state);
    const inserted = {
      user_id: ids[0]!,
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
      source,
      script_path: null,
      work_dir: null,
      stdout_path: null,
      stderr_path: null,
      submitted_at: submittedAt,
      started_at: null,
      ended_at: null,
      time_limit_min: null,
      nodes: null,
      info: null,
      // Other jobs submitted outside the gateway are listed, not notified (src/jobs/notify.ts).
      notified_state: source === 'session' ? (n ? j.state : null) : j.state,
      seen_at: now,
      updated_at: now,
      ...patch,
    };
    const r = await db
      .insertInto('jobs')
      .values(inserted)
      .onConflict((oc) => oc.columns(['cluster', 'job_id']).doNothing())
      .returning('id')
      .executeTakeFirst();
    if (!r) return false;
    if (finished) exits.expect(c.name, j.jobId, false);
    if (source === 'session' && n) await notifier.send(c, { ...inserted, id: r.id } as JobRow, n);
    publisher.publish({ ...inserted, id: r.id } as JobRow);
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
    const { db } = this.deps;
    await db.deleteFrom('jobs').where('id', '=', row.id).execute();
    await db
      .updateTable('jobs')
      .set({ source: row.source, script_path: row.script_path, user_id: row.user_id })
      .where('cluster', '=', c.name)
      // Not LIKE: its `_` is a wildcard ("123_%" would take job 1234 too).
      .where(sql<boolean>`substr(job_id, 1, ${prefix.length}) = ${prefix}`)
      .execute();
    return true;
  }
}

/** Job ids in slices a database takes in one IN list. */
function chunks(ids: readonly string[], size = 500): string[][] {
  const out: string[][] = [];
  for (let i = 0; i < ids.length; i += size) out.push(ids.slice(i, i + size));
  return out;
}
