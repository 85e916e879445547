// Sessions on the real Slurm test cluster of scripts/cluster.sh, end to end: a real gateway process
// (runs as root, sbatch/scancel through runuser as the user), real Jupyter inside real Slurm jobs,
// everything reached through the gateway's proxy only. The cluster is found through
// $ATRIUM_TEST_CLUSTER_BASE/cluster.json (default /tmp/atrium-slurm-atrium); without it the file skips.
//
// The one-minute session is started first and checked late, so its wait overlaps the other tests.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, type SessionView, waitForState } from '../helpers/client.ts';
import {
  type ClusterJson,
  clusterScript,
  scancelTestUsers,
  slurm as slurmAsRoot,
  TEST_USERS,
  testCluster,
} from '../helpers/cluster.ts';
import { readEvents } from '../helpers/events.ts';
import { createTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { createKernel, runInKernel } from '../helpers/jupyter.ts';
import { sleep, until } from '../helpers/wait.ts';

const cluster = testCluster('slurm-sessions', { dbd: true });

const slurm = (cmd: string, args: string[]): string => slurmAsRoot(cluster!, cmd, args);

interface SqueueJob {
  id: string;
  state: string;
  user: string;
  nodes: string;
  partition: string;
  reason: string;
}

/** Every job of these users that Slurm knows (all states), as root. */
function squeue(users: string[]): SqueueJob[] {
  const out = slurm('squeue', ['-h', '-a', '-t', 'all', '-u', users.join(','), '-o', '%i|%T|%u|%N|%P|%r']);
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [id, state, user, nodes, partition, reason] = l.split('|');
      return { id: id!, state: state!, user: user!, nodes: nodes!, partition: partition!, reason: reason! };
    });
}

function nodeCpus(node: string): { alloc: number; total: number } {
  // CPUsState: allocated/idle/other/total
  const [alloc, , , total] = slurm('sinfo', ['-h', '-N', '-n', node, '-o', '%C'])
    .trim()
    .split('\n')[0]!
    .split('/');
  return { alloc: Number(alloc), total: Number(total) };
}

// ---- server-sent events, read like the web UI does (reconnects after a gateway restart) ----------

interface LiveEvent {
  type: string;
  data: Record<string, unknown>;
  at: number;
}

class EventStream {
  readonly events: LiveEvent[] = [];
  private closed = false;
  private ac = new AbortController();
  connects = 0;

  constructor(
    private readonly url: string,
    private readonly cookie: string,
  ) {
    void this.loop();
  }

  private async loop(): Promise<void> {
    while (!this.closed) {
      await readEvents(
        this.url,
        { cookie: this.cookie },
        this.ac.signal,
        (type, data) => this.events.push({ type, data: JSON.parse(data), at: Date.now() }),
        () => this.connects++,
      ).catch(() => undefined); // gateway restarting or stream closed
      if (!this.closed) await sleep(300);
    }
  }

  /** The first event (from `since` on) that matches. */
  wait(what: string, pred: (e: LiveEvent) => boolean, ms = 30_000, since = 0): Promise<LiveEvent> {
    return until(what, () => this.events.find((e) => e.at >= since && pred(e)), ms);
  }

  close(): void {
    this.closed = true;
    this.ac.abort();
  }
}

// ---- the gateway ----------------------------------------------------------------------------------

let gw: TestGateway;
let alice: Client;
let live: EventStream;
/** The one-minute session, started in beforeAll. */
let shortSession: SessionView;
let shortCreatedAt = 0;
let sessionA: SessionView;
let kernelA = '';
let sessionB: SessionView;
let sessionC: SessionView;

const PIN_NODE = () => cluster!.nodes[1]!; // 16 cores, 2 GPUs
const jupyter = (extra: Record<string, unknown> = {}) => ({
  cluster: 'hpc',
  app: 'jupyter',
  cores: 1,
  memoryGb: 1,
  hours: 2,
  ...extra,
});

function gatewayYaml(c: ClusterJson): string {
  const slurmCfg = (extra = '') =>
    `{ conf: ${c.slurmConf}, runAs: runuser, pollSeconds: 2, commandTimeoutSeconds: 8, partition: interactive${extra} }`;
  return [
    'sessions:',
    '  heartbeatSeconds: 5',
    '  warnMinutesBeforeEnd: 5',
    'clusters:',
    '  - name: hpc',
    '    backend: slurm',
    '    maxHours: 36',
    // GPU sessions go to `batch` by rule (as CSCS picks partitions from the request), others to the default.
    `    slurm: ${slurmCfg(', partitionRules: [{ partition: batch, minGpus: 1 }]')}`,
    // The same Slurm cluster seen through one node only (admin config), for the sharing test.
    '  - name: pinned',
    '    title: One node',
    '    backend: slurm',
    `    slurm: ${slurmCfg(`, nodelist: ${PIN_NODE().name}`)}`,
    '',
  ].join('\n');
}

async function sessionOf(c: Client, id: string): Promise<SessionView> {
  return ((await c.get(`/api/sessions/${id}`)).body as { session: SessionView }).session;
}

async function create(c: Client, body: Record<string, unknown>): Promise<SessionView> {
  const r = await c.post('/api/sessions', body);
  if (r.status !== 201) throw new Error(`create: HTTP ${r.status} ${JSON.stringify(r.body)}`);
  return (r.body as { session: SessionView }).session;
}

async function stopAndWait(c: Client, ids: string[]): Promise<void> {
  await Promise.all(ids.map((id) => c.del(`/api/sessions/${id}`)));
  for (const id of ids) await waitForState(c, id, ['ended', 'failed'], 60_000);
}

function metric(text: string, name: string, cluster: string): number {
  const re = new RegExp(`^${name}\\{cluster="${cluster}"\\} (\\S+)$`, 'm');
  const m = re.exec(text);
  return m ? Number(m[1]) : 0;
}

describe.skipIf(!cluster)('sessions on the real Slurm test cluster', () => {
  beforeAll(async () => {
    // Nothing of an earlier run (or file) may hold the node the sharing test uses.
    scancelTestUsers(cluster!);
    await until(
      'no job of the test users',
      () => squeue(TEST_USERS).every((j) => !/RUNNING|PENDING|COMPLETING/.test(j.state)),
      60_000,
    );
    gw = await createTestGateway({
      name: 'slurm-sessions',
      users: [{ name: 'alice' }],
      yaml: gatewayYaml(cluster!),
    });
    await gw.start();
    alice = new Client(gw.url);
    expect((await alice.login('alice', gw.passwords.alice!)).status).toBe(200);
    live = new EventStream(`${gw.url}/api/events`, alice.cookie);
    await until('the event stream', () => live.connects > 0, 10_000);
    // One minute, in alice's reservation (its own node, so it never shares the pinned node).
    shortCreatedAt = Date.now();
    shortSession = await create(alice, jupyter({ hours: 1 / 60, reservation: 'alice_res' }));
  });

  afterAll(async () => {
    if (!gw) return;
    // A failed outage test must not leave slurmctld down.
    try {
      clusterScript(cluster!, 'start-ctld');
    } catch {
      // reported by the test itself
    }
    live?.close();
    const list = ((await alice.get('/api/sessions')).body as { sessions?: SessionView[] }).sessions ?? [];
    await Promise.all(
      list
        .filter((s) => s.state !== 'ended' && s.state !== 'failed')
        .map((s) => alice.del(`/api/sessions/${s.id}`)),
    );
    await sleep(1500);
    await gw.stop();
    scancelTestUsers(cluster!);
  });

  it('five whole-node sessions share every core of one node; a sixth pends with its reason, place and start, live', async () => {
    const node = PIN_NODE();
    const busy = () => slurm('squeue', ['-h', '-a', '-w', node.name, '-o', '%i %u %T']).trim();
    await until(`${node.name} to be free`, () => nodeCpus(node.name).alloc === 0, 30_000).catch(() => {
      throw new Error(`${node.name} is not free for the sharing test: ${busy()}`);
    });
    const whole = { cluster: 'pinned', app: 'jupyter', cores: node.cpus, memoryGb: 4, hours: 1 };
    const started: SessionView[] = [];
    for (let i = 0; i < 5; i++) started.push(await create(alice, { ...whole, label: `share ${i + 1}` }));
    for (const s of started) await waitForState(alice, s.id, ['running'], 90_000);
    const sixth = await create(alice, { ...whole, label: 'share 6' });
    const jobs = squeue(['alice']);
    for (const s of started) {
      const j = jobs.find((x) => x.id === s.jobId);
      expect(j).toMatchObject({ state: 'RUNNING', user: 'alice', nodes: node.name });
    }
    expect(nodeCpus(node.name)).toEqual({ alloc: node.cpus, total: node.cpus });
    // The sixth pends: the page shows why, where it stands and when Slurm expects it to start.
    const pending = await until(
      'queue info of the sixth session',
      async () => {
        const v = await sessionOf(alice, sixth.id);
        return v.state === 'queued' && v.queue?.reason && v.queue.position && v.queue.expectedStart
          ? v
          : undefined;
      },
      30_000,
    );
    expect(['Resources', 'Priority']).toContain(pending.queue!.reason);
    expect(pending.queue!.position).toBe(1);
    expect(pending.queue!.expectedStart! * 1000).toBeGreaterThan(Date.now());
    expect(squeue(['alice']).find((j) => j.id === sixth.jobId)?.state).toBe('PENDING');
    // ... and the same arrived live, over the event stream.
    await live.wait(
      'a live session event with the pending reason',
      (e) =>
        e.type === 'session' &&
        e.data.id === sixth.id &&
        typeof (e.data.queue as { reason?: string } | null)?.reason === 'string',
    );
    // One ends: the sixth starts in its place, and the page hears it.
    const t = Date.now();
    await stopAndWait(alice, [started[0]!.id]);
    await waitForState(alice, sixth.id, ['running'], 90_000);
    await live.wait(
      'the sixth session running, live',
      (e) => e.type === 'session' && e.data.id === sixth.id && e.data.state === 'running',
      5_000,
      t,
    );
    await stopAndWait(alice, [...started.slice(1).map((s) => s.id), sixth.id]);
  });

  it('alice starts Jupyter on interactive: squeue shows her job, the agent reported the node, print(6*7) through the proxy', async () => {
    sessionA = await create(alice, jupyter({ hours: 36, label: 'first' }));
    expect(sessionA.jobId).toMatch(/^\d+$/);
    sessionA = await waitForState(alice, sessionA.id, ['running'], 60_000);
    const job = squeue(['alice']).find((j) => j.id === sessionA.jobId)!;
    expect(job).toMatchObject({ state: 'RUNNING', user: 'alice', partition: 'interactive' });
    // The agent reported the job's node (its NodeAddr) and a port that a process of alice listens on:
    // its relay (Jupyter itself is on a private socket, as every app on a remote node).
    const [row = { host: '', port: 0 }] = await gw.query<{ host: string; port: number }>(
      'select host, port from sessions where id = ?',
      [sessionA.id],
    );
    const nodeAddr = cluster!.nodes.find((n) => n.name === job.nodes)!.address;
    expect(row.host).toBe(nodeAddr);
    const ss = execFileSync('ss', ['-Hltnp', `sport = :${row.port}`], { encoding: 'utf8' });
    const pid = /pid=(\d+)/.exec(ss)?.[1];
    expect(pid).toBeTruthy();
    expect(execFileSync('ps', ['-o', 'user=', '-p', pid!], { encoding: 'utf8' }).trim()).toBe('alice');
    expect(fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1')).not.toContain('jupyter');
    kernelA = await createKernel(gw.url + sessionA.url, alice.cookie);
    expect((await runInKernel(gw.url + sessionA.url, alice.cookie, kernelA, 'print(6*7)')).trim()).toBe('42');
    const whoami = await runInKernel(
      gw.url + sessionA.url,
      alice.cookie,
      kernelA,
      'import os, getpass; print(getpass.getuser(), os.environ["SLURM_JOB_ID"])',
    );
    expect(whoami.trim()).toBe(`alice ${sessionA.jobId}`);
  });

  it('a GPU session sees CUDA_VISIBLE_DEVICES, and the live free table shows one free GPU fewer', async () => {
    const freeGpus = (t: { rows: { freeGpus: number; nodes: number }[] }) =>
      t.rows.reduce((n, r) => n + r.freeGpus * r.nodes, 0);
    const before = (await alice.get('/api/clusters/hpc/free')).body as {
      rows: { freeGpus: number; nodes: number; label: string }[];
    };
    const t = Date.now();
    sessionB = await create(alice, jupyter({ gpus: 1, label: 'gpu' }));
    sessionB = await waitForState(alice, sessionB.id, ['running'], 60_000);
    // No partition asked: the cluster's rule sent the GPU request to `batch`.
    expect((sessionB as SessionView & { request: { partition: string } }).request.partition).toBe('batch');
    expect(squeue(['alice']).find((j) => j.id === sessionB.jobId)?.partition).toBe('batch');
    const k = await createKernel(gw.url + sessionB.url, alice.cookie);
    const cvd = (
      await runInKernel(
        gw.url + sessionB.url,
        alice.cookie,
        k,
        'import os; print(os.environ.get("CUDA_VISIBLE_DEVICES"))',
      )
    ).trim();
    expect(cvd).toMatch(/^\d+$/);
    // The table is pushed to every open form after each poll (no sinfo per page view).
    const ev = await live.wait(
      'a resources event with one GPU fewer',
      (e) =>
        e.type === 'resources' &&
        e.data.cluster === 'hpc' &&
        freeGpus(e.data as never) === freeGpus(before) - 1,
      15_000,
      t,
    );
    const rows = (
      ev.data as { rows: { label: string; nodes: number; freeCores: number; freeMemoryMb: number }[] }
    ).rows;
    expect(rows.map((r) => r.label)).toContain('1 free GPU');
    for (const r of rows) {
      expect(r.nodes).toBeGreaterThan(0);
      expect(r.freeCores).toBeGreaterThanOrEqual(0);
      expect(r.freeMemoryMb).toBeGreaterThanOrEqual(0);
    }
    const form = (await alice.get('/api/clusters')).body as {
      clusters: { name: string; free: unknown; limits: { maxGpus: number } }[];
    };
    const hpc = form.clusters.find((c) => c.name === 'hpc')!;
    expect(freeGpus(hpc.free as never)).toBe(freeGpus(before) - 1);
    expect(hpc.limits.maxGpus).toBe(2);
  });

  it('refuses invalid values with a 4xx naming the field, and submits nothing', async () => {
    const jobsBefore = squeue(['alice'])
      .map((j) => j.id)
      .sort();
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [jupyter({ cores: 17 }), 'cores', /^Cores: at most 16 per node/],
      [jupyter({ gpus: 3 }), 'gpus', /^GPUs: at most 2 per node on this cluster/],
      [jupyter({ memoryGb: 65 }), 'memoryGb', /^Memory: at most 64 GB/],
      [
        jupyter({ account: 'physics' }),
        'account',
        /^Account: "physics" is not one of your accounts \(research\)/,
      ],
      [jupyter({ account: 'nosuchaccount' }), 'account', /^Account: /],
      [
        jupyter({ reservation: 'bob_res' }),
        'reservation',
        /^Reservation: "bob_res" is not a reservation you may use/,
      ],
      [jupyter({ partition: 'nosuchpartition' }), 'partition', /^Partition: /],
      [jupyter({ hours: 0 }), 'hours', /^Hours: /],
      [jupyter({ hours: 37 }), 'hours', /^Hours: at most 36/],
      [jupyter({ cluster: 'pinned', hours: 9 }), 'hours', /^Hours: at most 8/],
      // Shell metacharacters in every text field.
      [jupyter({ partition: 'interactive;id' }), 'partition', /^Partition: /],
      [jupyter({ account: 'research$(id)' }), 'account', /^Account: /],
      [jupyter({ reservation: 'alice_res`id`' }), 'reservation', /^Reservation: /],
      [jupyter({ label: 'x; rm -rf ~ && $(id)' }), 'label', /^Name: /],
      [jupyter({ environment: 'system|id' }), 'environment', /^Environment: /],
      [jupyter({ app: 'jupyter&&id' }), 'app', /^User interface: /],
      [jupyter({ cluster: 'hpc;id' }), 'cluster', /^Cluster: /],
    ];
    for (const [body, field, message] of cases) {
      const r = await alice.post('/api/sessions', body);
      expect(r.status, JSON.stringify(body)).toBeGreaterThanOrEqual(400);
      expect(r.status, JSON.stringify(body)).toBeLessThan(500);
      const b = r.body as { field: string; error: string };
      expect(b.field, JSON.stringify(body)).toBe(field);
      expect(b.error, JSON.stringify(body)).toMatch(message);
    }
    expect(
      squeue(['alice'])
        .map((j) => j.id)
        .sort(),
    ).toEqual(jobsBefore);
    // The limits the form shows are the same ones the server checks.
    const hpc = (
      (await alice.get('/api/clusters')).body as {
        clusters: { name: string; limits: Record<string, unknown> }[];
      }
    ).clusters.find((c) => c.name === 'hpc')!;
    expect(hpc.limits).toMatchObject({
      maxCores: 16,
      maxMemoryGb: 64,
      maxGpus: 2,
      maxHours: 36,
      accounts: ['research'],
      reservations: ['alice_res'],
    });
  });

  it('the gateway restarts with three running sessions: all three answer, none is cancelled', async () => {
    sessionC = await create(alice, jupyter({ label: 'third' }));
    sessionC = await waitForState(alice, sessionC.id, ['running'], 60_000);
    const three = [sessionA, sessionB, sessionC];
    const ids = three.map((s) => s.jobId).sort();
    // A fourth one is still starting: its agent reports while the gateway is away, and retries.
    const fourth = await create(alice, jupyter({ label: 'fourth' }));
    await gw.restart();
    for (const s of three) expect((await sessionOf(alice, s.id)).state).toBe('running');
    // The same kernel of A (the same Jupyter process), new kernels in B and C.
    expect((await runInKernel(gw.url + sessionA.url, alice.cookie, kernelA, 'print(6*7)')).trim()).toBe('42');
    for (const s of [sessionB, sessionC]) {
      const k = await createKernel(gw.url + s.url, alice.cookie);
      expect((await runInKernel(gw.url + s.url, alice.cookie, k, 'print(6*7)')).trim()).toBe('42');
    }
    const d = await waitForState(alice, fourth.id, ['running'], 60_000);
    const k4 = await createKernel(gw.url + d.url, alice.cookie);
    expect((await runInKernel(gw.url + d.url, alice.cookie, k4, 'print(6*7)')).trim()).toBe('42');
    await stopAndWait(alice, [fourth.id]);
    await sleep(4500); // two polls after the restart
    const jobs = squeue(['alice']);
    for (const id of ids) expect(jobs.find((j) => j.id === id)?.state).toBe('RUNNING');
    for (const s of three) expect((await sessionOf(alice, s.id)).state).toBe('running');
    const moved = gw
      .log()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { session?: string; to?: string })
      .filter(
        (l) => three.some((s) => s.id === l.session) && ['ending', 'ended', 'failed'].includes(l.to ?? ''),
      );
    expect(moved).toEqual([]);
  });

  it('scheduler calls per poll do not grow with the number of tracked sessions (1 and 50)', async () => {
    // A second gateway whose "agent" is `sleep`: jobs run but never call back (they stay starting).
    const gw2 = await createTestGateway({
      name: 'slurm-polls',
      users: [{ name: 'carol' }],
      yaml: [
        'agent:',
        '  node: /bin/sleep',
        '  script: "600"',
        'sessions:',
        '  maxPerUser: 60',
        'clusters:',
        '  - name: hpc',
        '    backend: slurm',
        `    slurm: { conf: ${cluster!.slurmConf}, runAs: runuser, pollSeconds: 1, partition: interactive }`,
        '',
      ].join('\n'),
    });
    await gw2.start();
    try {
      const carol = new Client(gw2.url);
      expect((await carol.login('carol', gw2.passwords.carol!)).status).toBe(200);
      const cheap = { cluster: 'hpc', app: 'jupyter', cores: 1, memoryGb: 0.1, hours: 1 };
      const window = async () => {
        const m0 = await (await fetch(`${gw2.url}/metrics`)).text();
        await sleep(6000);
        const m1 = await (await fetch(`${gw2.url}/metrics`)).text();
        const polls =
          metric(m1, 'atrium_scheduler_polls_total', 'hpc') -
          metric(m0, 'atrium_scheduler_polls_total', 'hpc');
        const calls =
          metric(m1, 'atrium_scheduler_calls_total', 'hpc') -
          metric(m0, 'atrium_scheduler_calls_total', 'hpc');
        return { polls, calls, perPoll: calls / polls };
      };
      const tracked = async (n: number) =>
        until(
          `${n} sessions starting`,
          async () => {
            const l = ((await carol.get('/api/sessions')).body as { sessions: SessionView[] }).sessions;
            return l.filter((s) => s.state === 'starting').length === n;
          },
          60_000,
        );
      await create(carol, cheap);
      await tracked(1);
      const one = await window();
      for (let i = 0; i < 49; i++) await create(carol, cheap);
      await tracked(50);
      const fifty = await window();
      console.log(
        `[slurm-sessions] scheduler calls per poll: 1 session ${JSON.stringify(one)}, 50 sessions ${JSON.stringify(fifty)}`,
      );
      expect(one.polls).toBeGreaterThanOrEqual(3);
      expect(fifty.polls).toBeGreaterThanOrEqual(3);
      // One poll per interval (not one per session), and the same calls in each poll.
      expect(fifty.polls).toBeLessThanOrEqual(8);
      expect(one.perPoll).toBe(2);
      expect(fifty.perPoll).toBe(one.perPoll);
      expect(squeue(['carol']).filter((j) => j.state === 'RUNNING').length).toBe(50);
      const list = ((await carol.get('/api/sessions')).body as { sessions: SessionView[] }).sessions;
      await Promise.all(list.map((s) => carol.del(`/api/sessions/${s.id}`)));
      await until(
        "carol's jobs to end",
        () => squeue(['carol']).every((j) => !/RUNNING|PENDING|COMPLETING/.test(j.state)),
        60_000,
      );
    } finally {
      await gw2.stop();
    }
  });

  it('a session with a one-minute limit is warned, then ends at the limit with "time limit reached"', async () => {
    const warned = await live.wait(
      'the time-limit warning',
      (e) => e.type === 'session.warning' && e.data.id === shortSession.id,
      120_000,
    );
    expect(warned.data.minutesLeft).toBeLessThanOrEqual(1);
    const ended = await waitForState(alice, shortSession.id, ['ended'], 150_000);
    expect(ended.reason).toBe('time limit reached');
    expect(ended.expiresAt).toBeTruthy();
    const v = (await alice.get(`/api/sessions/${shortSession.id}`)).body as {
      session: SessionView & { endedAt: number; startedAt: number };
    };
    // It ran in alice's reservation, for one minute, and ended at the limit (not long after it).
    expect(v.session.endedAt).toBeGreaterThanOrEqual(ended.expiresAt! - 1000);
    expect(v.session.endedAt - ended.expiresAt!).toBeLessThan(30_000);
    expect(v.session.endedAt - shortCreatedAt).toBeGreaterThan(55_000);
    const job = squeue(['alice']).find((j) => j.id === shortSession.jobId)!;
    expect(['CANCELLED', 'TIMEOUT', 'COMPLETED']).toContain(job.state);
    expect(job.nodes).toBe(cluster!.nodes[2]!.name); // alice_res's node
    const n = (await alice.get('/api/notifications')).body as {
      notifications: { kind: string; body: string }[];
    };
    expect(n.notifications.map((x) => x.kind)).toContain('session.ending_soon');
    // Other sessions of this file may end after it on a slow machine: look for this end, not the newest.
    const endings = n.notifications.filter((x) => x.kind === 'session.ended').map((x) => x.body);
    expect(endings.some((b) => b.includes('time limit reached'))).toBe(true);
  });

  it('slurmctld stopped (at least 12 s): sessions stay reachable and are shown as unknown, then running again', async () => {
    const three = [sessionA, sessionB, sessionC];
    const ids = three.map((s) => s.jobId).sort();
    const t = Date.now();
    clusterScript(cluster!, 'stop-ctld');
    try {
      // The next poll fails: states become unknown (live and in the API); routes stay.
      for (const s of three) {
        await live.wait(
          `${s.id} unknown, live`,
          (e) => e.type === 'session' && e.data.id === s.id && e.data.displayState === 'unknown',
          25_000,
          t,
        );
        const v = await sessionOf(alice, s.id);
        expect(v).toMatchObject({ state: 'running', displayState: 'unknown' });
      }
      const free = (await alice.get('/api/clusters/hpc/free')).body as { fresh: boolean };
      expect(free.fresh).toBe(false);
      expect((await runInKernel(gw.url + sessionA.url, alice.cookie, kernelA, 'print(6*7)')).trim()).toBe(
        '42',
      );
      for (const s of [sessionB, sessionC]) {
        const r = await alice.req('GET', `${s.url}api/status`);
        expect(r.status).toBe(200);
      }
      // Down for several polls, whatever the checks above took.
      await sleep(Math.max(0, t + 12_000 - Date.now()));
    } finally {
      clusterScript(cluster!, 'start-ctld');
    }
    const back = Date.now();
    for (const s of three) {
      await live.wait(
        `${s.id} running again, live`,
        (e) => e.type === 'session' && e.data.id === s.id && e.data.displayState === 'running',
        45_000,
        back,
      );
      expect(await sessionOf(alice, s.id)).toMatchObject({ state: 'running', displayState: 'running' });
    }
    const jobs = squeue(['alice']);
    for (const id of ids) expect(jobs.find((j) => j.id === id)?.state).toBe('RUNNING');
    expect((await runInKernel(gw.url + sessionA.url, alice.cookie, kernelA, 'print(6*7)')).trim()).toBe('42');
  });
});
