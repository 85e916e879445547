// SlurmAdapter against the real test cluster of scripts/cluster.sh (start it first:
// `bash scripts/cluster.sh up`; another base: ATRIUM_TEST_CLUSTER_BASE=/tmp/... ). Runs as root:
// sbatch/scancel go through runuser as alice/bob/carol.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fetchExitCodes, SlurmAdapter, type SlurmAdapterConfig } from '../../src/scheduler/slurm/adapter.ts';
import {
  type CommandRunner,
  ExecRunner,
  type RunOptions,
  type RunResult,
} from '../../src/scheduler/slurm/runner.ts';
import {
  type JobInfo,
  type PollSnapshot,
  SchedulerError,
  type SessionSubmission,
  type UnixIdentity,
} from '../../src/scheduler/types.ts';
import { type ClusterJson, cancelAll, clusterScript, slurm, testCluster } from '../helpers/cluster.ts';
import { until } from '../helpers/wait.ts';

const cluster = testCluster('slurm-adapter');

const sh = (cmd: string, args: string[]): string => slurm(cluster!, cmd, args);

function identityOf(user: string): UnixIdentity {
  const line = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${user}:`));
  if (!line) throw new Error(`no user ${user}`);
  const [, , uid, gid, , home, shell] = line.split(':');
  return { user, uid: Number(uid), gid: Number(gid), home: home ?? '', shell: shell ?? '/bin/bash' };
}

const waitFor = <T>(what: string, fn: () => Promise<T | undefined | false>) => until(what, fn, 30_000);

const suffix = () => randomBytes(4).toString('hex');

describe.skipIf(!cluster)('SlurmAdapter on the real test cluster', () => {
  const c = cluster as ClusterJson;
  let runner: ExecRunner;
  let adapter: SlurmAdapter;
  let alice: UnixIdentity;
  let bob: UnixIdentity;
  let carol: UnixIdentity;
  const cfg = (): SlurmAdapterConfig => ({
    name: c.name,
    slurmConf: c.slurmConf,
    runAs: 'runuser',
    commandTimeoutMs: 15_000,
  });
  const gpuNode = () => c.nodes.find((n) => n.gpus > 0 && n.cpus === 16)!;
  const bigNodeNoGpuUse = () => c.nodes.filter((n) => n.cpus === 16)[1] ?? gpuNode();

  const sub = (identity: UnixIdentity, over: Partial<SessionSubmission> = {}): SessionSubmission => {
    const id = `e2e-${suffix()}`;
    return {
      sessionId: id,
      tag: `atrium-test:${id}`,
      identity,
      cores: 1,
      memoryMb: 256,
      gpus: 0,
      minutes: 10,
      agentArgv: ['/bin/sleep', '600'],
      agentEnv: {},
      ...over,
    };
  };

  const jobOf = (snap: PollSnapshot, jobId: string): JobInfo | undefined =>
    snap.jobs.find((j) => j.jobId === jobId);
  const waitState = (jobId: string, state: JobInfo['state'], a: SlurmAdapter = adapter) =>
    waitFor(`job ${jobId} ${state}`, async () => {
      const snap = await a.poll();
      const j = snap.ok ? jobOf(snap, jobId) : undefined;
      return j?.state === state ? j : undefined;
    });

  beforeAll(async () => {
    alice = identityOf('alice');
    bob = identityOf('bob');
    carol = identityOf('carol');
    runner = new ExecRunner({ timeoutMs: 15_000 });
    adapter = new SlurmAdapter(cfg(), runner);
    await cancelAll(c);
  });

  afterEach(async () => {
    await cancelAll(c);
  });

  afterAll(() => {
    for (const id of [alice, bob, carol]) {
      fs.rmSync(path.join(id.home, 'atrium-e2e'), { recursive: true, force: true });
      // Session logs of this file's sessions (ids e2e-<hex>).
      const logs = path.join(id.home, '.atrium', 'logs');
      if (!fs.existsSync(logs)) continue;
      for (const f of fs.readdirSync(logs)) {
        if (/^session-e2e-[0-9a-f]{8}\.log$/.test(f)) fs.rmSync(path.join(logs, f), { force: true });
      }
    }
  });

  it('runs a session as alice; poll sees it RUNNING on 127.0.0.1; the secret is in no command line nor squeue output', async () => {
    const secret = `s3cr3t-${suffix()}-${suffix()}`;
    const s = sub(alice, {
      agentEnv: { ATRIUM_SECRET: secret, ATRIUM_OTHER: 'it\'s "odd" $HOME `x`\nline2' },
    });
    const t0 = performance.now();
    const { jobId, adopted } = await adapter.submitSession(s);
    const submitMs = performance.now() - t0;
    expect(adopted).toBeUndefined();
    const job = await waitState(jobId, 'running');
    const runningMs = performance.now() - t0;
    console.info(
      `[slurm e2e] sbatch ${submitMs.toFixed(0)} ms, RUNNING seen after ${runningMs.toFixed(0)} ms`,
    );
    expect(job).toMatchObject({
      user: 'alice',
      comment: s.tag,
      name: `atrium-${s.sessionId}`,
      nodeAddress: '127.0.0.1',
      cpus: 1,
      memoryMb: 256,
      partition: 'interactive',
      timeLimitMinutes: 10,
      workDir: alice.home,
    });

    // The agent process: owned by alice, has the secret in its environment, not on its command line.
    const pid = await waitFor('the agent process', async () => {
      for (const p of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
        try {
          const env = fs.readFileSync(`/proc/${p}/environ`, 'utf8').split('\0');
          const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
          if (env.includes(`SLURM_JOB_ID=${jobId}`) && cmd === '/bin/sleep\x00600\x00') return Number(p);
        } catch {
          /* process gone or kernel thread */
        }
      }
      return undefined;
    });
    expect(fs.statSync(`/proc/${pid}`).uid).toBe(alice.uid);
    const env = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    expect(env).toContain(`ATRIUM_SECRET=${secret}`);
    expect(env).toContain('ATRIUM_OTHER=it\'s "odd" $HOME `x`\nline2');
    expect(env).toContain(`HOME=${alice.home}`);
    expect(env).toContain('USER=alice');

    expect(sh('ps', ['-ef'])).not.toContain(secret);
    expect(sh('ps', ['-eww', '-o', 'args'])).not.toContain(secret);
    expect(sh('squeue', ['-a', '-t', 'all', '-o', '%all'])).not.toContain(secret);
    expect(sh('scontrol', ['show', 'job', '-d', jobId])).not.toContain(secret);

    // Output went to ~/.atrium/logs, made by the job with mode 700.
    const log = path.join(alice.home, '.atrium', 'logs', `session-${s.sessionId}.log`);
    await waitFor('the session log', async () => fs.existsSync(log));
    expect(fs.statSync(path.dirname(log)).mode & 0o777).toBe(0o700);
    expect(fs.statSync(log).uid).toBe(alice.uid);
    expect(fs.readFileSync(log, 'utf8')).toContain(`atrium: job ${jobId} on`);
    fs.rmSync(log, { force: true });
  });

  it('gives a GPU session its devices (CUDA_VISIBLE_DEVICES) on a GPU node', async () => {
    const dir = path.join(alice.home, 'atrium-e2e');
    const s = sub(alice, {
      gpus: 2,
      cores: 2,
      memoryMb: 1024,
      // The agent writes its environment where the test (root) can read it, then idles.
      agentArgv: [
        '/bin/sh',
        '-c',
        'mkdir -p "$HOME/atrium-e2e" && env > "$HOME/atrium-e2e/gpu-$SLURM_JOB_ID.env" && exec sleep 600',
      ],
      setup: ['export FROM_SETUP=1'],
    });
    const { jobId } = await adapter.submitSession(s);
    const job = await waitState(jobId, 'running');
    expect(job.gpus).toBe(2);
    expect(c.nodes.find((n) => n.name === job.nodes)?.gpus).toBe(2);
    const file = path.join(dir, `gpu-${jobId}.env`);
    const text = await waitFor('the env file', async () =>
      fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined,
    );
    const env = Object.fromEntries(
      text.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(env.CUDA_VISIBLE_DEVICES).toBe('0,1');
    expect(env.SLURM_JOB_ID).toBe(jobId);
    expect(env.FROM_SETUP).toBe('1');
    expect(env.USER).toBe('alice');
    expect(fs.statSync(file).uid).toBe(alice.uid);
    const snap = await adapter.poll();
    const node = snap.nodes.find((n) => n.name === job.nodes);
    expect(node?.allocGpus).toBe(2);
  });

  it('oversubscribes FORCE:5: five whole-node jobs RUN on one node, the sixth PENDS with a reason', async () => {
    const node = bigNodeNoGpuUse();
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const { jobId } = await adapter.submitSession(
        sub(carol, { cores: node.cpus, memoryMb: 1024, nodelist: node.name }),
      );
      ids.push(jobId);
    }
    const snap = await waitFor('5 running + 1 pending with a reason and an expected start', async () => {
      const s = await adapter.poll();
      const mine = ids.map((id) => s.jobs.find((j) => j.jobId === id));
      const running = mine.filter((j) => j?.state === 'running').length;
      const pending = mine.filter((j) => j?.state === 'pending' && j.reason && j.startTime);
      return running === 5 && pending.length === 1 ? s : undefined;
    });
    const pend = ids.map((id) => jobOf(snap, id)).find((j) => j?.state === 'pending');
    console.info(
      `[slurm e2e] 6th job pending: reason=${pend?.reason} expected start in ${(pend?.startTime ?? 0) - snap.at} s`,
    );
    // The main scheduler says Resources, the backfill pass may say Priority for a moment.
    expect(pend?.reason).toMatch(/^(Resources|Priority)$/);
    expect(pend?.nodes).toBeUndefined();
    expect(snap.nodes.find((n) => n.name === node.name)).toMatchObject({ allocCpus: node.cpus });
  });

  it('poll makes the same number of calls (one squeue, one sinfo) with 1 and with 50 jobs', async () => {
    await adapter.submitSession(sub(bob));
    let before = runner.calls;
    const one = await adapter.poll();
    expect(one.ok).toBe(true);
    expect(one.calls).toBe(2);
    expect(runner.calls - before).toBe(2);
    const t0 = performance.now();
    for (let i = 0; i < 49; i++) await adapter.submitSession(sub(i % 2 ? bob : carol, { memoryMb: 64 }));
    const submitMs = (performance.now() - t0) / 49;
    before = runner.calls;
    const squeueBefore = runner.callsOf('squeue');
    const t1 = performance.now();
    const fifty = await adapter.poll();
    const pollMs = performance.now() - t1;
    expect(fifty.ok).toBe(true);
    expect(
      fifty.jobs.filter((j) => (j.user === 'bob' || j.user === 'carol') && j.state !== 'cancelled').length,
    ).toBeGreaterThanOrEqual(50);
    expect(fifty.calls).toBe(2);
    expect(runner.calls - before).toBe(2);
    expect(runner.callsOf('squeue') - squeueBefore).toBe(1);
    console.info(
      `[slurm e2e] submit ${submitMs.toFixed(0)} ms/job (with the adopt check); poll with ${fifty.jobs.length} jobs: ${pollMs.toFixed(0)} ms`,
    );
  });

  it('adopts the job of a submit whose sbatch "timed out" instead of submitting twice', async () => {
    /** Runs sbatch for real the first time, then reports a timeout as if the answer had been lost. */
    class LosesFirstAnswer implements CommandRunner {
      private lost = false;
      constructor(private readonly inner: ExecRunner) {}
      get calls() {
        return this.inner.calls;
      }
      callsOf(label: string) {
        return this.inner.callsOf(label);
      }
      async run(argv: readonly string[], opts?: RunOptions): Promise<RunResult> {
        const r = await this.inner.run(argv, opts);
        if (opts?.label === 'sbatch' && !this.lost) {
          this.lost = true;
          return { ...r, code: null, signal: 'SIGTERM', stdout: '', timedOut: true };
        }
        return r;
      }
    }
    const inner = new ExecRunner({ timeoutMs: 15_000 });
    const flaky = new SlurmAdapter(cfg(), new LosesFirstAnswer(inner));
    const s = sub(alice);
    const first = await flaky.submitSession(s);
    expect(first.adopted).toBe(true);
    const second = await flaky.submitSession(s);
    expect(second).toEqual({ jobId: first.jobId, adopted: true });
    expect(inner.callsOf('sbatch')).toBe(1);
    const withTag = (await adapter.poll()).jobs.filter((j) => j.comment === s.tag);
    expect(withTag.map((j) => j.jobId)).toEqual([first.jobId]);
    await waitState(first.jobId, 'running');
  });

  it('maps refused submissions to form fields', async () => {
    const fieldOf = async (s: SessionSubmission) => {
      const e = await adapter.submitSession(s).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(SchedulerError);
      return (e as SchedulerError).field;
    };
    await adapter.poll(); // gives the adapter the node list it uses to tell cores from GPUs
    if (c.withDbd) expect(await fieldOf(sub(alice, { account: 'physics' }))).toBe('account');
    expect(await fieldOf(sub(bob, { reservation: 'alice_res' }))).toBe('reservation');
    expect(await fieldOf(sub(alice, { reservation: 'no_such_res' }))).toBe('reservation');
    expect(await fieldOf(sub(alice, { partition: 'no_such_partition' }))).toBe('partition');
    expect(await fieldOf(sub(alice, { cores: 64 }))).toBe('cores');
    expect(await fieldOf(sub(alice, { gpus: 3 }))).toBe('gpus');
    expect(await fieldOf(sub(alice, { memoryMb: 200_000 }))).toBe('memory');
    expect(await fieldOf(sub(alice, { minutes: 8 * 24 * 60 }))).toBe('hours');
  });

  it('cancel: bob cannot cancel alice’s job, alice can', async () => {
    const { jobId } = await adapter.submitSession(sub(alice));
    await waitState(jobId, 'running');
    const e = await adapter.cancel(bob, jobId).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SchedulerError);
    expect(String((e as Error).message)).toMatch(/not allowed/);
    expect(jobOf(await adapter.poll(), jobId)?.state).toBe('running');
    await adapter.cancel(alice, jobId);
    await waitState(jobId, 'cancelled');
    await adapter.cancel(alice, jobId); // again: already ended, no error
  });

  it('reservations: alice runs in alice_res; the reserved node stays usable by others', async () => {
    const res = c.reservations.find((r) => r.name === 'alice_res')!;
    const node = c.nodes.find((n) => n.name === res.nodes[0])!;
    const { jobId } = await adapter.submitSession(sub(alice, { reservation: 'alice_res' }));
    const j = await waitState(jobId, 'running');
    expect(j).toMatchObject({ reservation: 'alice_res', nodes: node.name });
    // carol, without the reservation, gets the other 6 of the node's 8 cores.
    const other = await adapter.submitSession(sub(carol, { cores: node.cpus - 2, nodelist: node.name }));
    await waitState(other.jobId, 'running');
    const info = await adapter.clusterInfo();
    expect(info.reservations.find((r) => r.name === 'alice_res')).toMatchObject({
      users: ['alice'],
      nodes: [node.name],
    });
    expect(info.partitions.find((p) => p.isDefault)?.name).toBe('interactive');
    expect(info.hasAccounting).toBe(c.withDbd);
    if (c.withDbd) {
      expect(info.accountsByUser).toMatchObject({
        alice: ['research'],
        carol: ['research'],
        bob: ['physics'],
      });
    }
  });

  it.runIf(c?.withDbd)('sacct gives exit codes of finished jobs in one call', async () => {
    const ok = await adapter.submitSession(sub(bob, { agentArgv: ['/bin/true'] }));
    const three = await adapter.submitSession(sub(bob, { agentArgv: ['/bin/sh', '-c', 'exit 3'] }));
    await waitState(three.jobId, 'failed');
    await waitState(ok.jobId, 'completed');
    const before = runner.callsOf('sacct');
    const recs = await waitFor('sacct records', async () => {
      const m = await adapter.jobRecords([ok.jobId, three.jobId]);
      return m.get(three.jobId)?.endTime && m.get(ok.jobId)?.endTime ? m : undefined;
    });
    expect(runner.callsOf('sacct') - before).toBeGreaterThanOrEqual(1);
    expect(recs.get(three.jobId)).toMatchObject({ user: 'bob', state: 'failed', exitCode: 3 });
    expect(recs.get(ok.jobId)).toMatchObject({ state: 'completed', exitCode: 0 });
    const codes = await fetchExitCodes(runner, cfg(), [ok.jobId, three.jobId]);
    expect(codes).toEqual(
      new Map([
        [ok.jobId, 0],
        [three.jobId, 3],
      ]),
    );
  });

  it('slurmctld down: poll says ok:false (not "no jobs"); after a restart ok:true with the job still running', async () => {
    const { jobId } = await adapter.submitSession(sub(alice));
    await waitState(jobId, 'running');
    const pidFile = path.join(c.base, 'run', 'slurmctld.pid');
    const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
    process.kill(pid, 'SIGTERM');
    await waitFor('slurmctld to exit', async () => {
      try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        return stat.split(') ')[1]?.startsWith('Z') ? true : undefined;
      } catch {
        return true;
      }
    });
    try {
      const quick = new SlurmAdapter({ ...cfg(), commandTimeoutMs: 4000 }, new ExecRunner());
      const down = await quick.poll();
      expect(down.ok).toBe(false);
      expect(down.jobs).toEqual([]);
      expect(down.error).toMatch(/timed out|Unable to contact slurm controller/);
      console.info(`[slurm e2e] poll with slurmctld down: ${down.error}`);
    } finally {
      clusterScript(c, 'start-ctld');
    }
    const up = await adapter.poll();
    expect(up.ok).toBe(true);
    expect(jobOf(up, jobId)).toMatchObject({ state: 'running', user: 'alice', nodeAddress: '127.0.0.1' });
  });
});
