import { describe, expect, it } from 'vitest';
import { freeResources, jobById, queuePosition } from '../../src/core/resources.ts';
import type { JobInfo, NodeInfo } from '../../src/scheduler/types.ts';

const node = (name: string, p: Partial<NodeInfo>): NodeInfo => ({
  name,
  address: '127.0.0.1',
  state: 'idle',
  partitions: ['interactive'],
  cpus: 16,
  allocCpus: 0,
  memoryMb: 65536,
  allocMemoryMb: 0,
  gpus: 0,
  allocGpus: 0,
  ...p,
});

describe('free-resources table', () => {
  it('groups nodes by free GPUs and sums free cores and memory', () => {
    const rows = freeResources([
      node('n1', { gpus: 2, allocGpus: 1, allocCpus: 4, allocMemoryMb: 1024, state: 'mixed' }),
      node('n2', { gpus: 2 }),
      node('n3', { cpus: 8, memoryMb: 32768 }),
      node('n4', { cpus: 8, memoryMb: 32768, state: 'down*' }),
      node('n5', { cpus: 8, state: 'drained' }),
    ]);
    expect(rows).toEqual([
      { freeGpus: 0, label: 'no free GPU', nodes: 1, freeCores: 8, freeMemoryMb: 32768 },
      { freeGpus: 1, label: '1 free GPU', nodes: 1, freeCores: 12, freeMemoryMb: 64512 },
      { freeGpus: 2, label: '2 free GPUs', nodes: 1, freeCores: 16, freeMemoryMb: 65536 },
    ]);
  });

  it('filters by partition', () => {
    const rows = freeResources([node('a', {}), node('b', { partitions: ['batch'] })], 'batch');
    expect(rows).toHaveLength(1);
    expect(rows[0]!.nodes).toBe(1);
  });
});

describe('queue position', () => {
  const j = (id: string, p: Partial<JobInfo>): JobInfo => ({
    jobId: id,
    name: id,
    user: 'u',
    state: 'pending',
    rawState: 'PENDING',
    partition: 'interactive',
    ...p,
  });
  it('orders by priority, then submit time, within the partition', () => {
    const jobs = [
      j('10', { priority: 100, submitTime: 5 }),
      j('11', { priority: 200, submitTime: 9 }),
      j('12', { priority: 100, submitTime: 1 }),
      j('13', { partition: 'batch', priority: 999 }),
      j('14', { state: 'running' }),
    ];
    expect(queuePosition(jobs[0]!, jobs)).toEqual({ position: 3, pendingInPartition: 3 });
    expect(queuePosition(jobs[1]!, jobs)).toEqual({ position: 1, pendingInPartition: 3 });
    expect(queuePosition(jobs[3]!, jobs)).toEqual({ position: 1, pendingInPartition: 1 });
    expect(queuePosition(jobs[4]!, jobs)).toBeNull();
  });

  it('answers from a job of the list or a copy with its partition, not for another partition', () => {
    const jobs = [j('20', { priority: 5 }), j('21', { priority: 9 }), j('22', { partition: 'batch' })];
    expect(queuePosition({ ...jobs[0]! }, jobs)).toEqual({ position: 2, pendingInPartition: 2 });
    expect(queuePosition({ ...jobs[0]!, partition: 'batch' }, jobs)).toBeNull();
    expect(queuePosition(j('99', {}), jobs)).toBeNull();
    // Another list (the next poll's) is ordered anew.
    const next = [j('20', { priority: 50 }), jobs[1]!];
    expect(queuePosition(next[0]!, next)).toEqual({ position: 1, pendingInPartition: 2 });
    expect(jobById(next, '20')?.priority).toBe(50);
    expect(jobById(jobs, '20')?.priority).toBe(5);
    expect(jobById(jobs, '23')).toBeUndefined();
  });
});
