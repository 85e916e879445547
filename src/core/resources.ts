// The free-resources table shown beside the form, and queue positions: pure functions of one poll.
import type { FreeRow, FreeTable } from '../api/clusters.ts';
import type { JobInfo, NodeInfo } from './cluster-state.ts';

// The table is sent to the form as it is: a type of the API contract.
export type { FreeRow, FreeTable };

const UNUSABLE = /down|drain|fail|maint|inval|not_responding|unknown|future|power/i;

/**
 * Whether the scheduler has declared a node failed: DOWN or FAIL (sinfo's long state, e.g. "down*",
 * "down+drain", "fail"). Not "not responding" alone (idle*, mixed*: it may come back within
 * SlurmdTimeout), and not FAILING (still running its jobs).
 */
export function nodeIsDown(state: string): boolean {
  const word = state
    .trim()
    .toLowerCase()
    .split('+')[0]!
    .replace(/[^a-z_]+$/, '');
  return word === 'down' || word === 'fail';
}

/** The first of `nodes` (a session's node names) that the poll shows as failed. */
export function failedNode(nodes: readonly string[], all: readonly NodeInfo[]): string | undefined {
  return nodes.find((name) => all.some((n) => n.name === name && nodeIsDown(n.state)));
}

export function gpuLabel(n: number): string {
  return n === 0 ? 'no free GPU' : n === 1 ? '1 free GPU' : `${n} free GPUs`;
}

/** Groups usable nodes by how many GPUs they have free, summing free cores and memory. */
export function freeResources(nodes: NodeInfo[], partition?: string): FreeRow[] {
  const rows = new Map<number, FreeRow>();
  for (const n of nodes) {
    if (UNUSABLE.test(n.state)) continue;
    if (partition && n.partitions.length > 0 && !n.partitions.includes(partition)) continue;
    const freeGpus = Math.max(0, n.gpus - n.allocGpus);
    const row = rows.get(freeGpus) ?? {
      freeGpus,
      label: gpuLabel(freeGpus),
      nodes: 0,
      freeCores: 0,
      freeMemoryMb: 0,
    };
    row.nodes++;
    row.freeCores += Math.max(0, n.cpus - n.allocCpus);
    row.freeMemoryMb += Math.max(0, n.memoryMb - n.allocMemoryMb);
    rows.set(freeGpus, row);
  }
  return [...rows.values()].sort((a, b) => a.freeGpus - b.freeGpus);
}

export interface QueuePosition {
  position: number;
  pendingInPartition: number;
}

/** Per job list (one poll's): every pending job's place, keyed by partition and job id. */
const positionsOf = new WeakMap<readonly JobInfo[], Map<string, QueuePosition>>();

/**
 * Position of a pending job among the pending jobs of its partition, in the order the scheduler will
 * consider them: higher priority first, then earlier submission, then lower job id. The order of the
 * whole list is worked out once per list (a poll's jobs are never changed in place): a page lists
 * hundreds of one user's jobs against a queue of thousands.
 */
export function queuePosition(job: JobInfo, all: readonly JobInfo[]): QueuePosition | null {
  if (job.state !== 'pending') return null;
  let positions = positionsOf.get(all);
  if (!positions) {
    positions = pendingPositions(all);
    positionsOf.set(all, positions);
  }
  return positions.get(`${job.partition}\0${job.jobId}`) ?? null;
}

function pendingPositions(all: readonly JobInfo[]): Map<string, QueuePosition> {
  const byPartition = new Map<string | undefined, JobInfo[]>();
  for (const j of all) {
    if (j.state !== 'pending') continue;
    const list = byPartition.get(j.partition);
    if (list) list.push(j);
    else byPartition.set(j.partition, [j]);
  }
  const positions = new Map<string, QueuePosition>();
  for (const [partition, pending] of byPartition) {
    pending.sort(
      (a, b) =>
        (b.priority ?? 0) - (a.priority ?? 0) ||
        (a.submitTime ?? 0) - (b.submitTime ?? 0) ||
        Number(a.jobId) - Number(b.jobId),
    );
    pending.forEach((j, i) => {
      const key = `${partition}\0${j.jobId}`;
      // The first in the order wins, as a search from the front would find it.
      if (!positions.has(key)) positions.set(key, { position: i + 1, pendingInPartition: pending.length });
    });
  }
  return positions;
}

/** Per job list (one poll's): its jobs by id, the first of an id as a search from the front finds it. */
const byIdOf = new WeakMap<readonly JobInfo[], Map<string, JobInfo>>();

export function jobById(all: readonly JobInfo[], jobId: string): JobInfo | undefined {
  let byId = byIdOf.get(all);
  if (!byId) {
    byId = new Map();
    for (const j of all) if (!byId.has(j.jobId)) byId.set(j.jobId, j);
    byIdOf.set(all, byId);
  }
  return byId.get(jobId);
}
