// A job as the pages show it (its row with the live queue details of the latest good poll), and the live
// event that carries it to every gateway user of the job's Unix account.
import type { EventBus } from '../events/bus.ts';
import type { Cluster } from '../sessions/clusters.ts';
import type { JobOwners } from './owners.ts';
import { type JobRow, type JobView, toJobView } from './view.ts';

export interface JobPublisherDeps {
  clusters: Map<string, Cluster>;
  bus: EventBus;
  owners: JobOwners;
}

export class JobPublisher {
  constructor(private readonly deps: JobPublisherDeps) {}

  view(row: JobRow): JobView {
    const c = this.deps.clusters.get(row.cluster);
    return toJobView(row, {
      snap: c?.poller.latestGood ?? null,
      reachable: c?.poller.reachable ?? false,
      extension: c?.adapter.setTimeLimit !== undefined ? c.cfg.extension : undefined,
    });
  }

  publish(row: JobRow): void {
    const ids = row.unix_user ? (this.deps.owners.idsOf(row.unix_user) ?? [row.user_id]) : [row.user_id];
    const data = this.view(row);
    for (const userId of ids) this.deps.bus.publish({ userId }, { type: 'job', data });
  }
}
