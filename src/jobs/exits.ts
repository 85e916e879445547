// How a job ended, from accounting: exit codes of jobs that just finished, and the end of jobs that left
// the queue unseen. ONE sacct call for all of a cluster's, per poll, only when there are any and the
// cluster keeps accounting. Without accounting, squeue's last-seen exit code stays, and vanished jobs end
// as "unknown".
import type { Logger } from 'pino';
import type { Db } from '../db/index.ts';
import type { SacctRecord } from '../scheduler/slurm/parse.ts';
import { FINISHED_JOB_STATES, type JobState } from '../scheduler/types.ts';
import type { Cluster } from '../sessions/clusters.ts';
import type { JobNotifier } from './notify.ts';
import type { JobPublisher } from './publish.ts';
import { ACTIVE_STATES, findJob } from './store.ts';
import type { JobRow } from './view.ts';

/** Job ids sacct answers for (an array's pending rest, 123_[5-9], it does not). */
export const SACCT_ID_RE = /^\d+(?:_\d+)?$/;
const EXIT_ATTEMPTS = 6;

interface PendingExit {
  attempts: number;
  /** Gone from squeue while active: the final state must come from sacct. */
  vanished: boolean;
}

export interface ExitResolverDeps {
  db: Db;
  log: Logger;
  publisher: JobPublisher;
  notifier: JobNotifier;
}

export class ExitResolver {
  /** Per cluster: jobs whose exit code sacct should confirm (or whose end must be learned). */
  private readonly pendingExit = new Map<string, Map<string, PendingExit>>();
  private readonly resolving = new Set<string>();

  constructor(private readonly deps: ExitResolverDeps) {}

  /** Asks accounting about the job at the next resolve (`vanished`: its end too, not only its exit code). */
  expect(cluster: string, jobId: string, vanished: boolean): void {
    const pend = this.pendingExit.get(cluster) ?? new Map<string, PendingExit>();
    this.pendingExit.set(cluster, pend);
    pend.set(jobId, { attempts: 0, vanished });
  }

  isExpected(cluster: string, jobId: string): boolean {
    return this.pendingExit.get(cluster)?.has(jobId) ?? false;
  }

  hasPending(cluster: string): boolean {
    return (this.pendingExit.get(cluster)?.size ?? 0) > 0;
  }

  /** One sacct call for the cluster's pending jobs (skipped while the previous one runs). */
  async resolve(c: Cluster): Promise<void> {
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
          this.deps.log.warn({ cluster: c.name, err: (e as Error).message }, 'sacct failed; will retry');
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
      this.deps.log.error({ err: e, cluster: c.name }, 'exit codes not resolved');
    } finally {
      this.resolving.delete(c.name);
    }
  }

  private async applyRecord(c: Cluster, jobId: string, rec: SacctRecord, vanished: boolean): Promise<void> {
    const { db, notifier, publisher } = this.deps;
    const row = await findJob(db, c.name, jobId);
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
    const n = notifier.due(row, state);
    if (n) update.notified_state = state;
    await db.updateTable('jobs').set(update).where('id', '=', row.id).execute();
    const updated = { ...row, ...update } as JobRow;
    if (n) await notifier.send(c, updated, n);
    publisher.publish(updated);
  }

  private async markVanished(c: Cluster, jobId: string): Promise<void> {
    const row = await findJob(this.deps.db, c.name, jobId);
    if (!row || !ACTIVE_STATES.includes(row.state)) return;
    const update: Partial<JobRow> = {
      state: 'unknown',
      reason: 'left the queue unseen; its end is not known (no accounting)',
      ended_at: Date.now(),
      updated_at: Date.now(),
    };
    await this.deps.db.updateTable('jobs').set(update).where('id', '=', row.id).execute();
    this.deps.publisher.publish({ ...row, ...update } as JobRow);
  }
}
