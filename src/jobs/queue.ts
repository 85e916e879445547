// The queue page and the cluster status, as pure functions of one shared poll: no scheduler call per
// viewer. PrivateData is honoured: with "jobs" private a user gets their own rows plus counts per
// partition; with "nodes" private no per-node list.
import type { ClusterStatus, NodeRow, PartitionLoad } from '../api/clusters.ts';
import {
  ACTIVE_JOB_STATES,
  ENDED_JOB_STATES,
  type PartitionCount,
  type QueueRow,
  type QueueView,
} from '../api/jobs.ts';
import { orNull } from '../core/nullable.ts';
import { queuePosition } from '../core/resources.ts';
import {
  FINISHED_JOB_STATES,
  type JobInfo,
  type JobState,
  type NodeInfo,
  type PartitionInfo,
  type PollSnapshot,
} from '../scheduler/types.ts';

export type StateFilter = 'active' | 'finished' | 'all' | JobState;

export const STATE_FILTERS: readonly string[] = [
  'active',
  'finished',
  'all',
  ...ACTIVE_JOB_STATES,
  ...ENDED_JOB_STATES,
];

/** What a queue row copies from the poll as it is (null where the scheduler said nothing). */
const QUEUE_FIELDS = [
  'reason',
  'partition',
  'account',
  'nodes',
  'cpus',
  'gpus',
  'memoryMb',
  'submitTime',
  'startTime',
  'timeLimitMinutes',
  'priority',
] as const satisfies readonly (keyof JobInfo)[];

export function matchesState(state: JobState | 'unknown', f: StateFilter | undefined): boolean {
  if (!f || f === 'all') return true;
  const finished = FINISHED_JOB_STATES.has(state as JobState) || state === 'unknown';
  if (f === 'active') return !finished;
  if (f === 'finished') return finished;
  return state === f;
}

// What the queue page and the status page get: types of the API contract.
export type { ClusterStatus, NodeRow, PartitionCount, PartitionLoad, QueueRow, QueueView };

export interface QueueFilters {
  partition?: string;
  state?: StateFilter;
  /** Unix user name; with private jobs only the caller's own. */
  user?: string;
  /** Only the caller's jobs. */
  mine?: boolean;
  limit?: number;
}

function partitionsOf(j: JobInfo): string[] {
  return (j.partition ?? '').split(',').filter(Boolean);
}

export function queueView(
  cluster: string,
  snap: PollSnapshot | null,
  fresh: boolean,
  me: string,
  privateJobs: boolean,
  f: QueueFilters = {},
): QueueView {
  const jobs = snap?.jobs ?? [];
  const counts = new Map<string, PartitionCount>();
  for (const j of jobs) {
    if (FINISHED_JOB_STATES.has(j.state)) continue;
    for (const p of partitionsOf(j)) {
      const c = counts.get(p) ?? { partition: p, running: 0, pending: 0, other: 0 };
      if (j.state === 'running') c.running++;
      else if (j.state === 'pending') c.pending++;
      else c.other++;
      counts.set(p, c);
    }
  }
  const limit = Math.max(1, Math.min(f.limit ?? 500, 5000));
  const state = f.state ?? 'active';
  const visible = jobs.filter((j) => {
    const mine = j.user === me;
    if (privateJobs && !mine) return false;
    if (f.mine && !mine) return false;
    if (f.user && j.user !== f.user) return false;
    if (f.partition && !partitionsOf(j).includes(f.partition)) return false;
    return matchesState(j.state, state);
  });
  // Running first, then pending in the scheduler's order, then the rest; newest last within a group.
  const rank = (j: JobInfo) => (j.state === 'running' ? 0 : j.state === 'pending' ? 1 : 2);
  visible.sort(
    (a, b) =>
      rank(a) - rank(b) ||
      (a.state === 'pending' ? (b.priority ?? 0) - (a.priority ?? 0) : 0) ||
      (a.submitTime ?? 0) - (b.submitTime ?? 0) ||
      Number.parseInt(a.jobId, 10) - Number.parseInt(b.jobId, 10),
  );
  const rows = visible.slice(0, limit).map((j): QueueRow => {
    const pos = j.state === 'pending' ? queuePosition(j, jobs) : null;
    return {
      jobId: j.jobId,
      name: j.name,
      user: j.user,
      mine: j.user === me,
      state: j.state,
      ...orNull(j, QUEUE_FIELDS),
      position: pos?.position ?? null,
      pendingInPartition: pos?.pendingInPartition ?? null,
    };
  });
  return {
    cluster,
    at: snap?.at ?? 0,
    fresh,
    privateJobs,
    jobs: rows,
    matched: visible.length,
    truncated: visible.length > rows.length,
    partitions: [...counts.values()].sort((a, b) => a.partition.localeCompare(b.partition)),
  };
}

/** "down*" → "down", "mixed-" → "mixed", "idle+drain" stays as is. */
export function nodeStateWord(s: string): string {
  return s.toLowerCase().replace(/[*~#!%$@^+-]+$/, '') || 'unknown';
}

export function clusterStatus(
  cluster: string,
  snap: PollSnapshot | null,
  fresh: boolean,
  partitions: PartitionInfo[],
  privateNodes: boolean,
): ClusterStatus {
  const nodes: NodeInfo[] = snap?.nodes ?? [];
  const jobs = snap?.jobs ?? [];
  const nodesByState: Record<string, number> = {};
  for (const n of nodes) {
    const w = nodeStateWord(n.state);
    nodesByState[w] = (nodesByState[w] ?? 0) + 1;
  }
  const names = new Set<string>(partitions.map((p) => p.name));
  for (const n of nodes) for (const p of n.partitions) names.add(p);
  const loads: PartitionLoad[] = [...names].map((name) => {
    const info = partitions.find((p) => p.name === name);
    const pn = nodes.filter((n) => n.partitions.includes(name));
    const sum = (f: (n: NodeInfo) => number) => pn.reduce((a, n) => a + f(n), 0);
    const pj = jobs.filter((j) => partitionsOf(j).includes(name));
    return {
      name,
      isDefault: info?.isDefault ?? false,
      state: info?.state ?? null,
      maxTimeMinutes: info?.maxTimeMinutes ?? null,
      nodes: pn.length,
      cpus: sum((n) => n.cpus),
      allocCpus: sum((n) => n.allocCpus),
      memoryMb: sum((n) => n.memoryMb),
      allocMemoryMb: sum((n) => n.allocMemoryMb),
      gpus: sum((n) => n.gpus),
      allocGpus: sum((n) => n.allocGpus),
      running: pj.filter((j) => j.state === 'running').length,
      pending: pj.filter((j) => j.state === 'pending').length,
    };
  });
  loads.sort((a, b) => Number(b.isDefault) - Number(a.isDefault) || a.name.localeCompare(b.name));
  const sum = (f: (n: NodeInfo) => number) => nodes.reduce((a, n) => a + f(n), 0);
  return {
    cluster,
    at: snap?.at ?? 0,
    fresh,
    nodesByState,
    partitions: loads,
    totals: {
      nodes: nodes.length,
      cpus: sum((n) => n.cpus),
      allocCpus: sum((n) => n.allocCpus),
      gpus: sum((n) => n.gpus),
      allocGpus: sum((n) => n.allocGpus),
    },
    nodes: privateNodes
      ? null
      : nodes
          .map((n) => ({
            name: n.name,
            state: n.state,
            partitions: n.partitions,
            cpus: n.cpus,
            allocCpus: n.allocCpus,
            memoryMb: n.memoryMb,
            allocMemoryMb: n.allocMemoryMb,
            gpus: n.gpus,
            allocGpus: n.allocGpus,
            gpuType: n.gpuType ?? null,
          }))
          .sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true })),
  };
}
