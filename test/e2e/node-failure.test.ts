// Issue 14 on the real Slurm test cluster: what the gateway shows and does when the node side fails.
// A real gateway (sbatch as the user through runuser), real Jupyter with a real kernel in real jobs, and
// real faults: the agent stopped (SIGSTOP) and continued, the agent killed (SIGKILL), a node's slurmd
// killed (kill -9, as a node that dies would look to slurmctld), slurmctld stopped during a submit.
// Nothing here is timed: every wait is "until, with a generous bound".
//
// The cluster is found through $ATRIUM_TEST_CLUSTER_BASE/cluster.json; without it the file skips.
import { execFileSync, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, type SessionView, waitForState } from '../helpers/client.ts';
import {
  type ClusterJson,
  clusterScript,
  scancelTestUsers,
  slurm,
  TEST_USERS,
  testCluster,
} from '../helpers/cluster.ts';
import { readEvents } from '../helpers/events.ts';
import { createTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { createKernel, runInKernel } from '../helpers/jupyter.ts';
import { agentPid, isAlive, sessionProcesses } from '../helpers/session-procs.ts';
import { sleep, until } from '../helpers/wait.ts';

const cluster = testCluster('node-failure', { dbd: true });

const HEARTBEAT_SECONDS = 1;
const HEARTBEAT_MISSED = 3;

let gw: TestGateway;
let alice: Client;
const events: { at: number; data: SessionView & { notRespondingSince: number | null } }[] = [];
const ac = new AbortController();

function gatewayYaml(c: ClusterJson): string {
  return [
    'sessions:',
    `  heartbeatSeconds: ${HEARTBEAT_SECONDS}`,
    `  heartbeatMissed: ${HEARTBEAT_MISSED}`,
    'clusters:',
    '  - name: hpc',
    '    backend: slurm',
    `    slurm: { conf: ${c.slurmConf}, runAs: runuser, pollSeconds: 2, commandTimeoutSeconds: 8, partition: interactive }`,
    '',
  ].join('\n');
}

/** Session events as the page gets them (server-sent events), kept from the start of the file. */
async function follow(): Promise<void> {
  while (!ac.signal.aborted) {
    await readEvents(`${gw.url}/api/events`, { cookie: alice.cookie }, ac.signal, (type, data) => {
      if (type === 'session') events.push({ at: Date.now(), data: JSON.parse(data) });
    }).catch(() => undefined);
    if (!ac.signal.aborted) await sleep(300);
  }
}

const eventsOf = (id: string, since = 0) => events.filter((e) => e.data.id === id && e.at >= since);

async function sessionOf(id: string): Promise<SessionView & { notRespondingSince: number | null }> {
  return (
    (await alice.get(`/api/sessions/${id}`)).body as {
      session: SessionView & { notRespondingSince: number | null };
    }
  ).session;
}

async function startJupyter(): Promise<{ s: SessionView; kernel: string }> {
  const r = await alice.post('/api/sessions', {
    cluster: 'hpc',
    app: 'jupyter',
    cores: 1,
    memoryGb: 1,
    hours: 1,
  });
  if (r.status !== 201) throw new Error(`create: HTTP ${r.status} ${JSON.stringify(r.body)}`);
  const id = (r.body as { session: SessionView }).session.id;
  const s = await waitForState(alice, id, ['running'], 120_000);
  const kernel = await createKernel(gw.url + s.url, alice.cookie);
  expect((await runInKernel(gw.url + s.url, alice.cookie, kernel, 'print(6*7)')).trim()).toBe('42');
  return { s, kernel };
}

/** The node Slurm runs a job on (as root: the gateway's view). */
function nodeOf(jobId: string): string {
  return slurm(cluster!, 'squeue', ['-h', '-j', jobId, '-o', '%N']).trim();
}

function metric(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

const metrics = async () => (await fetch(`${gw.url}/metrics`)).text();

describe.skipIf(!cluster)('node and agent failures on the Slurm test cluster', () => {
  beforeAll(async () => {
    scancelTestUsers(cluster!);
    await until(
      'no job of the test users',
      () =>
        slurm(cluster!, 'squeue', ['-h', '-u', TEST_USERS.join(','), '-t', 'PD,R,CG', '-o', '%i']).trim() ===
        '',
      60_000,
    );
    gw = await createTestGateway({
      name: 'node-failure',
      users: [{ name: 'alice' }],
      yaml: gatewayYaml(cluster!),
    });
    await gw.start();
    alice = new Client(gw.url);
    expect((await alice.login('alice', gw.passwords.alice!)).status).toBe(200);
    void follow();
  });

  afterAll(async () => {
    ac.abort();
    if (!gw) return;
    try {
      clusterScript(cluster!, 'start-ctld');
    } catch {
      // best effort: a failed test must not leave the controller down
    }
    for (const s of ((await alice.get('/api/sessions')).body as { sessions?: SessionView[] }).sessions ?? [])
      if (s.state !== 'ended' && s.state !== 'failed') await alice.del(`/api/sessions/${s.id}`);
    await sleep(1500);
    await gw.stop();
    scancelTestUsers(cluster!);
  });

  it('an agent that stops heartbeating shows "not responding" (live and on the error page); a heartbeat brings it back', async () => {
    const { s, kernel } = await startJupyter();
    const agent = agentPid('alice', s.id);
    expect(agent).toBeDefined();
    const stoppedAt = Date.now();
    process.kill(agent!, 'SIGSTOP');
    try {
      // Within N heartbeats (and the half-interval check): the card hears it live, still running.
      const flagged = await until(
        'a live "not responding" event',
        () => eventsOf(s.id, stoppedAt).find((e) => e.data.notRespondingSince !== null),
        30_000,
      );
      expect(flagged.data.state).toBe('running');
      expect(flagged.data.notRespondingSince).toBeLessThanOrEqual(stoppedAt);
      const view = await sessionOf(s.id);
      expect(view).toMatchObject({ state: 'running', displayState: 'running' });
      expect(view.notRespondingSince).toBe(flagged.data.notRespondingSince);
      // The app is behind the stopped agent's relay here: the proxy's error page says what is known.
      const page = await until(
        'the error page naming the silence',
        async () => {
          const r = await alice.req('GET', `${s.url}api/status`, undefined, { accept: 'text/html' });
          const text = await r.text();
          return r.status === 502 && text.includes('Not responding since') ? text : undefined;
        },
        60_000,
      );
      expect(page).toContain('The session is not responding');
    } finally {
      process.kill(agent!, 'SIGCONT');
    }
    const contAt = Date.now();
    await until(
      'a live "responding again" event',
      () =>
        eventsOf(s.id, contAt).find((e) => e.data.notRespondingSince === null && e.data.state === 'running'),
      30_000,
    );
    expect((await sessionOf(s.id)).notRespondingSince).toBeNull();
    expect((await runInKernel(gw.url + s.url, alice.cookie, kernel, 'print(7*6)')).trim()).toBe('42');
    await alice.del(`/api/sessions/${s.id}`);
    await waitForState(alice, s.id, ['ended'], 60_000);
  });

  it('an agent killed with SIGKILL leaves no process of its session on the node, and the reason names the agent', async () => {
    const { s, kernel } = await startJupyter();
    const kernelPid = Number(
      (await runInKernel(gw.url + s.url, alice.cookie, kernel, 'import os; print(os.getpid())')).trim(),
    );
    expect(sessionProcesses('alice', s.id).map((p) => p.pid)).toContain(kernelPid);
    const agent = agentPid('alice', s.id);
    expect(agent).toBeDefined();
    process.kill(agent!, 'SIGKILL');
    await until(
      'no process of the session (ps -u alice)',
      () => sessionProcesses('alice', s.id).length === 0 && !isAlive(kernelPid),
      30_000,
    );
    const ended = await waitForState(alice, s.id, ['ended', 'failed'], 60_000);
    expect(ended.reason).toBe('the agent died (killed by SIGKILL)');
    expect(ended.queue).toBeNull();
    expect(eventsOf(s.id).some((e) => e.data.reason === 'the app exited')).toBe(false);
  });

  it('slurmd of a running session\'s node killed: the session ends naming the node, never as "the app exited"; a batch job there restarts', async () => {
    const { s } = await startJupyter();
    const node = nodeOf(s.jobId!);
    expect(node).toMatch(new RegExp(`^${cluster!.nodePrefix}\\d$`));
    // A batch job of alice's on the same node (sbatch outside the gateway: listed as hers all the same),
    // in the session's partition (a job of `batch`, which does not oversubscribe, would not share the
    // node with it). Batch jobs keep Slurm's requeue policy (JobRequeue=1 here): the failure restarts it.
    const batchId = execFileSync(
      'runuser',
      [
        '-u',
        'alice',
        '--',
        'sbatch',
        '--parsable',
        '-p',
        'interactive',
        '-w',
        node,
        '-t',
        '10',
        '-o',
        '/dev/null',
      ],
      {
        input: '#!/bin/bash\nexec sleep 600\n',
        cwd: '/tmp',
        encoding: 'utf8',
        env: { ...process.env, SLURM_CONF: cluster!.slurmConf },
      },
    ).trim();
    const jobOf = async () => {
      const r = await alice.get(`/api/jobs/hpc/${batchId}`);
      const job = (r.body as { job?: { state: string; restarts: number; restartedAfter: string | null } })
        .job;
      if (!job) throw new Error(`job ${batchId}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
      return job;
    };
    await until('the batch job seen running', async () => (await jobOf()).state === 'running', 60_000);
    const killedAt = Date.now();
    clusterScript(cluster!, 'kill-slurmd', node);
    try {
      // Slurm marks the node DOWN after SlurmdTimeout; the poll after that ends the session.
      const ended = await waitForState(alice, s.id, ['ended', 'failed'], 240_000);
      expect(ended.reason).toBe(`node ${node} failed`);
      expect(ended.queue).toBeNull();
      const seen = eventsOf(s.id, killedAt);
      expect(seen.some((e) => e.data.reason === 'the app exited')).toBe(false);
      // Never "running" again once the gateway has said the node failed.
      const told = seen.findIndex((e) => e.data.reason === `node ${node} failed`);
      expect(told).toBeGreaterThanOrEqual(0);
      expect(seen.slice(told).every((e) => e.data.state !== 'running')).toBe(true);
      // The agent (still alive on a node whose slurmd died) hears the session is over and stops its apps.
      await until('no process of the session', () => sessionProcesses('alice', s.id).length === 0, 60_000);
      // The batch job's page tells it restarted, and why.
      const job = await until(
        'the batch job restarted',
        async () => {
          const j = await jobOf();
          return j && j.restarts >= 1 ? j : undefined;
        },
        60_000,
      );
      expect(job.restartedAfter).toBe(`node ${node} failed`);
    } finally {
      spawnSync('scancel', [batchId], { env: { ...process.env, SLURM_CONF: cluster!.slurmConf } });
      // Later tests (and files) need all four nodes.
      clusterScript(cluster!, 'start-slurmd', node);
    }
  });

  it("a submit while slurmctld is stopped is refused at once with the scheduler's message, and leaves nothing behind", async () => {
    const before = ((await alice.get('/api/sessions')).body as { sessions: SessionView[] }).sessions.length;
    const m0 = await metrics();
    const failures0 = metric(m0, 'atrium_scheduler_poll_failures_total', 'cluster="hpc"');
    clusterScript(cluster!, 'stop-ctld');
    try {
      await until(
        'a poll that could not reach slurmctld',
        async () =>
          metric(await metrics(), 'atrium_scheduler_poll_failures_total', 'cluster="hpc"') > failures0,
        60_000,
      );
      const sbatch0 = metric(await metrics(), 'atrium_scheduler_commands_total', 'command="sbatch"');
      const r = await alice.post('/api/sessions', {
        cluster: 'hpc',
        app: 'jupyter',
        cores: 1,
        memoryGb: 1,
        hours: 1,
      });
      expect(r.status).toBe(503);
      const body = r.body as { error: string; errors: { field: string; message: string }[] };
      expect(body.errors[0]?.field).toBe('cluster');
      expect(body.error).toMatch(/cannot be reached at the moment, nothing was submitted/);
      // What the poll's scheduler command said (its error, or that it timed out) is in the message.
      expect(body.error).toMatch(/\((squeue|sinfo)\b.+\)$/);
      // Refused from the last poll, not after sbatch's timeout: sbatch never ran.
      expect(metric(await metrics(), 'atrium_scheduler_commands_total', 'command="sbatch"')).toBe(sbatch0);
      const after = ((await alice.get('/api/sessions')).body as { sessions: SessionView[] }).sessions;
      expect(after.length).toBe(before);
    } finally {
      clusterScript(cluster!, 'start-ctld');
    }
    // Back: the next good poll clears it, and a submit goes through again.
    const s = await until(
      'a submit accepted again',
      async () => {
        const r = await alice.post('/api/sessions', {
          cluster: 'hpc',
          app: 'jupyter',
          cores: 1,
          memoryGb: 1,
          hours: 1,
        });
        return r.status === 201 ? (r.body as { session: SessionView }).session : undefined;
      },
      90_000,
      1_000,
    );
    await alice.del(`/api/sessions/${s.id}`);
    await waitForState(alice, s.id, ['ended', 'failed'], 60_000);
  });
});
