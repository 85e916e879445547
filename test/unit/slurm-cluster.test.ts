// What a Slurm cluster offers on the form (from one poll + cluster info), the cached free table, the
// partition rules, and the poller's one-poll-at-a-time rule; with a fake adapter, no Slurm.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import type { ClusterConfig } from '../../src/config/schema.ts';
import { validateRequest } from '../../src/core/request.ts';
import type { User } from '../../src/db/users.ts';
import type { ClusterInfo, NodeInfo, PollSnapshot, SchedulerAdapter } from '../../src/scheduler/types.ts';
import { Cluster } from '../../src/sessions/clusters.ts';

const node = (name: string, p: Partial<NodeInfo> = {}): NodeInfo => ({
  name,
  address: '10.0.0.1',
  state: 'idle',
  partitions: ['interactive', 'batch'],
  cpus: 16,
  allocCpus: 0,
  memoryMb: 65536,
  allocMemoryMb: 0,
  gpus: 0,
  allocGpus: 0,
  ...p,
});

const NODES = [
  node('n1', { gpus: 4, allocGpus: 1, allocCpus: 4 }),
  node('n2', { gpus: 2 }),
  node('n3', { cpus: 8, memoryMb: 32768, partitions: ['interactive'] }),
];

const INFO: ClusterInfo = {
  name: 'hpc',
  partitions: [
    { name: 'interactive', isDefault: true, nodes: ['n1', 'n2', 'n3'], maxTimeMinutes: 12 * 60, state: 'UP' },
    { name: 'batch', isDefault: false, nodes: ['n1', 'n2'], state: 'UP' },
    { name: 'debug', isDefault: false, nodes: [], state: 'UP' },
  ],
  reservations: [
    { name: 'mine', users: ['alice'], accounts: [], nodes: ['n3'], state: 'ACTIVE' },
    { name: 'ours', users: [], accounts: ['research'], nodes: ['n3'], state: 'ACTIVE' },
    { name: 'theirs', users: ['bob'], accounts: ['physics'], nodes: ['n3'], state: 'ACTIVE' },
  ],
  hasAccounting: true,
  accountsByUser: { alice: ['research'], bob: ['physics'] },
};

class FakeAdapter implements SchedulerAdapter {
  readonly kind = 'slurm' as const;
  readonly cluster = 'hpc';
  polls = 0;
  delayMs = 0;
  constructor(
    private nodes: NodeInfo[],
    private info: ClusterInfo,
  ) {}
  async submitSession(): Promise<{ jobId: string }> {
    return { jobId: '1' };
  }
  async cancel(): Promise<void> {}
  async poll(): Promise<PollSnapshot> {
    this.polls++;
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    return { ok: true, at: Math.floor(Date.now() / 1000), jobs: [], nodes: this.nodes, calls: 2 };
  }
  async clusterInfo(): Promise<ClusterInfo> {
    return this.info;
  }
}

/** A cluster entry as the config loader makes it (schema defaults applied). */
function clusterCfg(slurm: Record<string, unknown> = {}): ClusterConfig {
  const cfg = parseConfig(
    JSON.stringify({
      clusters: [
        {
          name: 'hpc',
          backend: 'slurm',
          maxHours: 36,
          slurm: { runAs: 'runuser', partition: 'interactive', ...slurm },
        },
      ],
    }),
  );
  return cfg.clusters[0]!;
}

const alice = { id: 1, username: 'alice', unixUser: 'alice', groups: [], isAdmin: false } as unknown as User;
const log = pino({ level: 'silent' });

async function cluster(cfg: ClusterConfig, nodes = NODES, info = INFO) {
  const adapter = new FakeAdapter(nodes, info);
  const c = new Cluster(cfg, '/tmp', log, adapter);
  return { c, adapter };
}

describe('form limits of a Slurm cluster', () => {
  it('come from the live nodes and the cluster info: partitions, GPUs from GRES, accounts, own reservations', async () => {
    const { c } = await cluster(clusterCfg());
    await c.poller.pollNow();
    const l = await c.limitsFor(alice, [], []);
    expect(l).toMatchObject({
      maxCores: 16,
      maxMemoryGb: 64,
      maxGpus: 4,
      maxHours: 36,
      partitions: ['interactive', 'batch', 'debug'],
      accounts: ['research'],
      reservations: ['mine', 'ours'],
    });
    // A partition without nodes is not offered limits; MaxTime caps the hours of its partition.
    expect(l.perPartition).toEqual({
      interactive: { maxCores: 16, maxMemoryGb: 64, maxGpus: 4, maxHours: 12 },
      batch: { maxCores: 16, maxMemoryGb: 64, maxGpus: 4, maxHours: undefined },
    });
    const req = { cluster: 'hpc', app: 'jupyter', cores: 1, memoryGb: 1, gpus: 0, hours: 13 };
    const lim = { ...l, apps: ['jupyter'] };
    expect(validateRequest({ ...req, partition: 'interactive' }, lim)).toEqual([
      { field: 'hours', message: 'Hours: at most 12 on this cluster' },
    ]);
    expect(validateRequest({ ...req, partition: 'batch' }, lim)).toEqual([]);
    expect(validateRequest({ ...req, hours: 37, partition: 'batch' }, lim)[0]?.field).toBe('hours');
    expect(validateRequest({ ...req, gpus: 5 }, lim)).toEqual([
      { field: 'gpus', message: 'GPUs: at most 4 per node on this cluster' },
    ]);
  });

  it('take accounts from the config where the cluster has no accounting', async () => {
    const noAcct: ClusterInfo = { ...INFO, hasAccounting: false, accountsByUser: undefined };
    const { c } = await cluster(clusterCfg({ accounts: ['proj1', 'proj2'] }), NODES, noAcct);
    await c.poller.pollNow();
    expect((await c.limitsFor(alice, [], [])).accounts).toEqual(['proj1', 'proj2']);
  });

  it('count only the nodes of slurm.nodelist, in the limits and in the free table', async () => {
    const { c } = await cluster(clusterCfg({ nodelist: 'n[2-3]' }));
    await c.poller.pollNow();
    const l = await c.limitsFor(alice, [], []);
    expect(l.maxGpus).toBe(2);
    expect(c.freeTable().rows.map((r) => [r.label, r.nodes])).toEqual([
      ['no free GPU', 1],
      ['2 free GPUs', 1],
    ]);
  });

  it('wait for the first poll after a start instead of offering nothing', async () => {
    const { c, adapter } = await cluster(clusterCfg());
    adapter.delayMs = 50;
    c.poller.start();
    try {
      expect((await c.limitsFor(alice, [], [])).maxCores).toBe(16);
    } finally {
      c.poller.stop();
    }
  });
});

describe('free table', () => {
  it('is built once per poll, whatever the number of readers', async () => {
    const { c } = await cluster(clusterCfg());
    expect(c.freeTable()).toMatchObject({ rows: [], fresh: false });
    await c.poller.pollNow();
    const t = c.freeTable();
    expect(c.freeTable()).toBe(t);
    expect(t.rows).toEqual([
      { freeGpus: 0, label: 'no free GPU', nodes: 1, freeCores: 8, freeMemoryMb: 32768 },
      { freeGpus: 2, label: '2 free GPUs', nodes: 1, freeCores: 16, freeMemoryMb: 65536 },
      { freeGpus: 3, label: '3 free GPUs', nodes: 1, freeCores: 12, freeMemoryMb: 65536 },
    ]);
    await c.poller.pollNow();
    expect(c.freeTable()).not.toBe(t);
  });
});

describe('partition rules', () => {
  it('pick the first matching rule, else the default; a chosen partition wins', async () => {
    const { c } = await cluster(
      clusterCfg({
        partitionRules: [
          { partition: 'gpu', minGpus: 1 },
          { partition: 'short', maxCores: 4, maxHours: 1 },
        ],
      }),
    );
    expect(c.choosePartition({ gpus: 1, cores: 32, hours: 24 })).toBe('gpu');
    expect(c.choosePartition({ gpus: 0, cores: 4, hours: 1 })).toBe('short');
    expect(c.choosePartition({ gpus: 0, cores: 5, hours: 1 })).toBe('interactive');
    expect(c.choosePartition({ gpus: 0, cores: 2, hours: 2 })).toBe('interactive');
    expect(c.choosePartition({ gpus: 1, cores: 1, hours: 1, partition: 'batch' })).toBe('batch');
  });
});

describe('poller', () => {
  it('never overlaps polls: a burst of callers shares one poll after the one under way', async () => {
    const { c, adapter } = await cluster(clusterCfg());
    adapter.delayMs = 30;
    const first = c.poller.pollNow();
    const burst = Array.from({ length: 20 }, () => c.poller.pollNow());
    await Promise.all([first, ...burst]);
    expect(adapter.polls).toBe(2);
    const [a, b] = await Promise.all([burst[0], burst[19]]);
    expect(a).toBe(b);
  });
});
