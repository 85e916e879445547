// Turning a job's state changes into notifications: which change is worth one (each state once, nothing
// after the end, nothing for jobs submitted outside both the gateway and the user's sessions) and what
// it says.

import type { Logger } from 'pino';
import type { NotificationService } from '../notifications/service.ts';
import { FINISHED_JOB_STATES, type JobState } from '../scheduler/types.ts';
import type { Cluster } from '../sessions/clusters.ts';
import { type JobRow, notificationFor } from './view.ts';

export type JobNotice = NonNullable<ReturnType<typeof notificationFor>>;

export interface JobNotifierDeps {
  notifications: NotificationService;
  log: Logger;
}

export class JobNotifier {
  constructor(private readonly deps: JobNotifierDeps) {}

  /** The notice a change to `state` is worth; the caller records `state` as notified when there is one. */
  due(row: Pick<JobRow, 'source' | 'notified_state'>, state: JobState): JobNotice | null {
    // Jobs from the page (`path`, `text`) and from the user's sessions (`session`) are notified; others
    // of the same Unix account (a workflow tool on a login node, cron) are listed only: they may be
    // thousands, and the user did not ask Atrium to follow them.
    return row.source !== 'external' ? notificationFor(state, row.notified_state) : null;
  }

  /** Sends it; a failure is logged, never fails the state change that caused it. */
  async send(c: Cluster, row: JobRow, n: JobNotice): Promise<void> {
    const finished = FINISHED_JOB_STATES.has(row.state as JobState);
    // A cancelled job's "exit code" is the signal that stopped it: not worth saying.
    const exit =
      finished && row.exit_code !== null && row.state !== 'cancelled' ? ` (exit code ${row.exit_code})` : '';
    const body = `Job ${row.job_id} "${row.name}" on ${c.title} ${n.verb}${exit}.`;
    await this.deps.notifications
      .notify(
        row.user_id,
        n.kind,
        n.title,
        body,
        `/jobs/${encodeURIComponent(c.name)}/${encodeURIComponent(row.job_id)}`,
      )
      .catch((e) => this.deps.log.error({ err: e }, 'job notification failed'));
  }
}
