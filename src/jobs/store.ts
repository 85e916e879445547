// The few reads of the jobs table that several parts share (a job by its scheduler id, a cluster's jobs).
import type { Db } from '../db/index.ts';
import type { JobRow } from './view.ts';

/** States in which a job is still the scheduler's: the poll (or accounting) has the last word. */
export const ACTIVE_STATES = ['pending', 'running', 'completing', 'suspended'];

/** The jobs of one cluster, to narrow further. */
export function jobsOn(db: Db, cluster: string) {
  return db.selectFrom('jobs').selectAll().where('cluster', '=', cluster);
}

export async function findJob(db: Db, cluster: string, jobId: string): Promise<JobRow | undefined> {
  return (await jobsOn(db, cluster).where('job_id', '=', jobId).executeTakeFirst()) as JobRow | undefined;
}
