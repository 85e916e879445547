// What a poll snapshot says about one session: its job, and the nodes it runs on.
import { jobById } from '../core/resources.ts';
import type { QueueInfo, SessionRow } from '../db/sessions.ts';
import { expandHostlist } from '../scheduler/slurm/parse.ts';
import type { JobInfo, PollSnapshot } from '../scheduler/types.ts';

/** The session's job: by id, else by its tag; users set comments too, so a tag match must be the owner's job. */
export function findJob(
  snap: PollSnapshot | null,
  row: SessionRow,
  ownerUnixUser: string,
): JobInfo | undefined {
  if (!snap) return undefined;
  if (row.job_id) {
    // Indexed once per poll: every active session looks its job up in a queue of thousands.
    const byId = jobById(snap.jobs, row.job_id);
    if (byId) return byId;
  }
  return snap.jobs.find((j) => j.comment === row.id && j.user === ownerUnixUser);
}

/** The nodes a session's job runs (or ran) on: the job's, else those recorded when it started. */
export function nodesOf(row: Pick<SessionRow, 'queue_info'>, job?: JobInfo): string[] {
  if (job?.nodes) return expandHostlist(job.nodes);
  const q = row.queue_info ? (JSON.parse(row.queue_info) as QueueInfo) : null;
  return q?.nodes ? expandHostlist(q.nodes) : [];
}
