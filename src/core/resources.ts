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

/**
 * Position of a pending job among the pending jobs of its partition, in the order the scheduler will
 * consider them: higher priority first, then earlier submission, then lower job id.
 */
export function queuePosition(job: JobInfo, all: JobInfo[]): QueuePosition | null {
  if (job.state !== 'pending') return null;
  const pending = all.filter((j) => j.state === 'pending' && j.partition === job.partition);
  pending.sort(
    (a, b) =>
      (b.priority ?? 0) - (a.priority ?? 0) ||
      (a.submitTime ?? 0) - (b.submitTime ?? 0) ||
      Number(a.jobId) - Number(b.jobId),
  );
  const idx = pending.findIndex((j) => j.jobId === job.jobId);
  return idx === -1 ? null : { position: idx + 1, pendingInPartition: pending.length };
}
