// Issue 14, the pure parts: silence of an agent (not responding), reasons that name the node or the
// agent, which node states count as failed, Slurm's restart count of a job and why a batch job restarted,
// and how the pages word them.
import { describe, expect, it } from 'vitest';
import { failedNode, nodeIsDown } from '../../src/core/resources.ts';
import {
  agentDiedReason,
  nodeFailedReason,
  notRespondingSince,
  REASONS,
} from '../../src/core/session-machine.ts';
import { type JobRow, restartCause, signatureOf, toJobView } from '../../src/jobs/view.ts';
import { parseSqueue, SQUEUE_FIELDS, separatorsFor } from '../../src/scheduler/slurm/parse.ts';
import type { JobInfo, NodeInfo } from '../../src/scheduler/types.ts';
import { notRespondingText } from '../../src/web/format.ts';
import { restartText } from '../../src/web/jobs-format.ts';

const policy = { intervalMs: 15_000, missed: 3 };

describe('not responding', () => {
  const running = { state: 'running' as const, lastHeartbeatAt: 1_000_000 };
  it('is flagged once N heartbeats are missed, with the time the agent was last heard from', () => {
    expect(notRespondingSince(running, 1_000_000 + 45_000, policy)).toBeNull();
    expect(notRespondingSince(running, 1_000_000 + 45_001, policy)).toBe(1_000_000);
  });
  it('counts from the gateway start at the earliest (heartbeats sent while it was down were lost)', () => {
    const started = 1_000_000 + 60_000;
    expect(notRespondingSince(running, started + 10_000, policy, started)).toBeNull();
    expect(notRespondingSince(running, started + 45_001, policy, started)).toBe(1_000_000);
  });
  it('is a flag of running sessions only (no agent reports before, none after)', () => {
    for (const state of ['requested', 'queued', 'starting', 'ending', 'ended', 'failed'] as const)
      expect(notRespondingSince({ state, lastHeartbeatAt: 1 }, 10_000_000, policy)).toBeNull();
    expect(notRespondingSince({ state: 'running', lastHeartbeatAt: null }, 10_000_000, policy)).toBeNull();
  });
  it('reads "not responding since HH:MM" on the card, only while the scheduler is reachable', () => {
    const at = new Date(2024, 5, 3, 14, 5).getTime();
    expect(notRespondingText({ state: 'running', displayState: 'running', notRespondingSince: at })).toBe(
      'not responding since 14:05',
    );
    expect(
      notRespondingText({ state: 'running', displayState: 'running', notRespondingSince: null }),
    ).toBeNull();
    expect(
      notRespondingText({ state: 'running', displayState: 'unknown', notRespondingSince: at }),
    ).toBeNull();
    expect(notRespondingText({ state: 'ending', displayState: 'ending', notRespondingSince: at })).toBeNull();
  });
});

describe('reasons', () => {
  it('name the node that failed, the agent that died, and are not "the app exited"', () => {
    expect(nodeFailedReason('n12')).toBe('node n12 failed');
    expect(nodeFailedReason(undefined)).toBe(REASONS.nodeFailure);
    expect(agentDiedReason('SIGKILL')).toBe('the agent died (killed by SIGKILL)');
    expect(agentDiedReason(undefined)).toBe('the agent died');
    for (const r of [nodeFailedReason('n1'), agentDiedReason('SIGKILL'), REASONS.requeued])
      expect(r).not.toBe(REASONS.appExited);
  });
});

const node = (name: string, state: string): NodeInfo => ({
  name,
  address: '127.0.0.1',
  state,
  partitions: ['batch'],
  cpus: 8,
  allocCpus: 0,
  memoryMb: 1024,
  allocMemoryMb: 0,
  gpus: 0,
  allocGpus: 0,
});

describe('failed nodes', () => {
  it('are DOWN or FAIL, whatever flags follow; not merely not responding, draining or failing', () => {
    for (const s of ['down', 'down*', 'DOWN', 'down+drain', 'down~', 'fail', 'fail*'])
      expect(nodeIsDown(s)).toBe(true);
    for (const s of ['idle', 'idle*', 'mixed*', 'allocated*', 'drained', 'draining', 'failing', 'reserved'])
      expect(nodeIsDown(s)).toBe(false);
  });
  it('are looked up among the nodes a job ran on', () => {
    const nodes = [node('n1', 'allocated'), node('n2', 'down*'), node('n2', 'down*')];
    expect(failedNode(['n1', 'n2'], nodes)).toBe('n2');
    expect(failedNode(['n1'], nodes)).toBeUndefined();
    expect(failedNode([], nodes)).toBeUndefined();
  });
});

describe("Slurm's restart count", () => {
  const sep = separatorsFor('restartnonce0000');
  const record = (id: string, state: string, restarts: string) => {
    const f: string[] = SQUEUE_FIELDS.map(() => 'N/A');
    f[SQUEUE_FIELDS.indexOf('JobID')] = id;
    f[SQUEUE_FIELDS.indexOf('UserName')] = 'alice';
    f[SQUEUE_FIELDS.indexOf('State')] = state;
    f[SQUEUE_FIELDS.indexOf('RestartCnt')] = restarts;
    f[SQUEUE_FIELDS.indexOf('Name')] = 'train';
    return `${f.join(sep.field)}${sep.record}\n`;
  };
  it('is read from squeue (RestartCnt), and left out while it is 0', () => {
    const { jobs, bad } = parseSqueue(record('7', 'PENDING', '1') + record('8', 'RUNNING', '0'), sep);
    expect(bad).toBe(0);
    expect(jobs[0]).toMatchObject({ jobId: '7', state: 'pending', restarts: 1 });
    expect(jobs[1]?.restarts).toBeUndefined();
  });
  it('is part of what makes a job worth a new look', () => {
    const j: JobInfo = { jobId: '7', name: 't', user: 'alice', state: 'pending', rawState: 'PENDING' };
    expect(signatureOf({ ...j, restarts: 1 })).not.toBe(signatureOf(j));
  });
});

describe('why a batch job restarted', () => {
  const job = (restarts?: number): JobInfo => ({
    jobId: '7',
    name: 't',
    user: 'alice',
    state: 'pending',
    rawState: 'PENDING',
    ...(restarts ? { restarts } : {}),
  });
  const nodes = [node('n1', 'idle'), node('n4', 'down*')];
  it('names the node it last ran on when the poll shows that node failed', () => {
    expect(restartCause(job(1), job(), 'n4', nodes)).toBe('node n4 failed');
    expect(restartCause(job(1), job(), 'n1', nodes)).toBeUndefined(); // requeued for another cause
    expect(restartCause(job(1), null, null, nodes)).toBeUndefined(); // first seen already restarted
  });
  it('keeps the cause while the count stays, and forgets it with the next restart', () => {
    const before = { ...job(1), restartedAfter: 'node n4 failed' };
    expect(restartCause(job(1), before, null, nodes)).toBe('node n4 failed');
    expect(restartCause(job(2), before, 'n1', nodes)).toBeUndefined();
  });
  it('shows on the job page', () => {
    const row = {
      id: 1,
      cluster: 'hpc',
      job_id: '7',
      name: 't',
      state: 'pending',
      source: 'text',
      submitted_at: 0,
      info: JSON.stringify({ ...job(1), restartedAfter: 'node n4 failed' }),
    } as unknown as JobRow;
    const v = toJobView(row, { snap: null, reachable: true });
    expect(v).toMatchObject({ restarts: 1, restartedAfter: 'node n4 failed' });
    expect(restartText(v)).toBe('restarted after node n4 failed');
    expect(restartText({ restarts: 0, restartedAfter: null })).toBeNull();
    expect(restartText({ restarts: 1, restartedAfter: null })).toBe('restarted once');
    expect(restartText({ restarts: 3, restartedAfter: 'node n4 failed' })).toBe(
      'restarted 3 times (last after node n4 failed)',
    );
  });
});
