// Two Slurm clusters behind one gateway: the CI cluster ($ATRIUM_TEST_CLUSTER_BASE) and a second one
// this file starts and stops itself (own ClusterName, ports, state, WITH_DBD=0, loopback only).
// A session on each; each cluster's free table follows only its own jobs; a cluster limited to a
// group is neither offered to nor usable by someone outside it, nor is its live table pushed to them.
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, type SessionView, waitForState } from '../helpers/client.ts';
import { CLUSTER_SCRIPT, readCluster, testCluster } from '../helpers/cluster.ts';
import { readEvents } from '../helpers/events.ts';
import { createTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { kernelRoundTrip } from '../helpers/jupyter.ts';

const one = testCluster('multi-cluster');

// The second cluster: ports well away from the first (clusters need >= 10 apart).
const two = {
  name: process.env.ATRIUM_TEST_CLUSTER2_NAME ?? 'atrium2',
  base: process.env.ATRIUM_TEST_CLUSTER2_BASE ?? '/tmp/atrium-slurm-atrium2',
  port: Number(process.env.ATRIUM_TEST_CLUSTER2_PORT ?? (one?.port ?? 6817) + 30),
};
const twoEnv = {
  ...process.env,
  CLUSTER_NAME: two.name,
  CLUSTER_BASE: two.base,
  CLUSTER_PORT: String(two.port),
  NODE_PREFIX: 'cn',
  WITH_DBD: '0',
};

let gw: TestGateway;
let alice: Client;
let carol: Client;
let upSeconds = 0;

interface FreeRowJ {
  freeGpus: number;
  nodes: number;
  freeCores: number;
}
interface ClusterJ {
  name: string;
  free: { rows: FreeRowJ[]; at: number };
}

const freeGpus = (c: ClusterJ) => c.free.rows.reduce((s, r) => s + r.freeGpus * r.nodes, 0);
const freeCores = (c: ClusterJ) => c.free.rows.reduce((s, r) => s + r.freeCores, 0);

async function clusters(c: Client): Promise<ClusterJ[]> {
  const r = await c.get('/api/clusters');
  expect(r.status).toBe(200);
  return (r.body as { clusters: ClusterJ[] }).clusters;
}

/** The tables once both clusters were polled after `since` (epoch seconds). */
async function tablesAfter(since: number): Promise<Record<string, ClusterJ>> {
  const end = Date.now() + 20_000;
  for (;;) {
    const list = await clusters(alice);
    if (list.length === 2 && list.every((c) => c.free.at > since))
      return Object.fromEntries(list.map((c) => [c.name, c]));
    if (Date.now() > end) throw new Error(`no fresh poll: ${JSON.stringify(list.map((c) => c.free.at))}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

describe.skipIf(!one)('two Slurm clusters behind one gateway', () => {
  beforeAll(async () => {
    const t0 = Date.now();
    execFileSync('bash', [CLUSTER_SCRIPT, 'up'], { env: twoEnv, stdio: 'inherit', timeout: 240_000 });
    upSeconds = (Date.now() - t0) / 1000;
    const conf2 = readCluster(two.base).slurmConf;
    const slurm = (name: string, title: string, conf: string, extra: string[] = []) => [
      `  - name: ${name}`,
      '    backend: slurm',
      `    title: ${title}`,
      ...extra,
      '    slurm:',
      `      conf: ${conf}`,
      '      runAs: runuser',
      '      partition: interactive',
      '      pollSeconds: 1',
    ];
    gw = await createTestGateway({
      name: 'multi',
      users: [{ name: 'alice' }, { name: 'carol' }],
      yaml: [
        'clusters:',
        ...slurm('hpc1', 'First cluster', one!.slurmConf),
        // Only the group hpcusers (alice, bob; not carol) may use the second one.
        ...slurm('hpc2', 'Second cluster', conf2, ['    allowGroups: [hpcusers]']),
      ].join('\n'),
    });
    await gw.start();
    alice = new Client(gw.url);
    carol = new Client(gw.url);
    expect((await alice.login('alice', gw.passwords.alice!)).status).toBe(200);
    expect((await carol.login('carol', gw.passwords.carol!)).status).toBe(200);
  }, 300_000);

  afterAll(async () => {
    if (alice) {
      const list = ((await alice.get('/api/sessions')).body as { sessions?: SessionView[] }).sessions ?? [];
      for (const s of list)
        if (s.state !== 'ended' && s.state !== 'failed') await alice.del(`/api/sessions/${s.id}`);
      await new Promise((r) => setTimeout(r, 2000));
    }
    await gw?.stop();
    spawnSync('bash', [CLUSTER_SCRIPT, 'down'], { env: twoEnv, stdio: 'inherit', timeout: 120_000 });
  }, 180_000);

  it('offers each user only the clusters they may use; outsiders get a cluster error', async () => {
    console.info(`[multi-cluster e2e] second cluster ${two.name} up in ${upSeconds.toFixed(1)} s`);
    expect((await clusters(alice)).map((c) => c.name)).toEqual(['hpc1', 'hpc2']);
    expect((await clusters(carol)).map((c) => c.name)).toEqual(['hpc1']);
    const r = await carol.post('/api/sessions', {
      cluster: 'hpc2',
      app: 'jupyter',
      cores: 1,
      memoryGb: 1,
      hours: 1,
    });
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
    expect((r.body as { field: string }).field).toBe('cluster');
    expect((await carol.get('/api/clusters/hpc2/free')).status).toBe(404);
  });

  it("pushes each cluster's live free table only to the users of that cluster", async () => {
    const seen = async (c: Client) => {
      const names = new Set<string>();
      const stop = new AbortController();
      const done = readEvents(`${gw.url}/api/events`, { cookie: c.cookie }, stop.signal, (type, data) => {
        if (type === 'resources') names.add((JSON.parse(data) as { cluster: string }).cluster);
      }).catch(() => undefined);
      // Both clusters are polled every second.
      await new Promise((r) => setTimeout(r, 4000));
      stop.abort();
      await done;
      return [...names].sort();
    };
    const [forAlice, forCarol] = await Promise.all([seen(alice), seen(carol)]);
    expect(forAlice).toEqual(['hpc1', 'hpc2']);
    expect(forCarol).toEqual(['hpc1']);
  });

  it('runs a session on each cluster; each free table counts only its own jobs', async () => {
    const before = await tablesAfter(Math.floor(Date.now() / 1000));
    const r1 = await alice.post('/api/sessions', {
      cluster: 'hpc1',
      app: 'jupyter',
      cores: 2,
      memoryGb: 1,
      hours: 1,
    });
    expect(r1.status, JSON.stringify(r1.body)).toBe(201);
    const r2 = await alice.post('/api/sessions', {
      cluster: 'hpc2',
      app: 'jupyter',
      cores: 3,
      memoryGb: 1,
      gpus: 1,
      hours: 1,
    });
    expect(r2.status, JSON.stringify(r2.body)).toBe(201);
    const s1 = await waitForState(
      alice,
      (r1.body as { session: SessionView }).session.id,
      ['running'],
      120_000,
    );
    const s2 = await waitForState(
      alice,
      (r2.body as { session: SessionView }).session.id,
      ['running'],
      120_000,
    );
    // Each session's job is on its own cluster.
    const env2 = { ...process.env, SLURM_CONF: path.join(two.base, 'etc', 'slurm.conf') };
    const env1 = { ...process.env, SLURM_CONF: one!.slurmConf };
    const ids = (env: NodeJS.ProcessEnv) =>
      execFileSync('squeue', ['-h', '-a', '-u', 'alice', '-t', 'R', '-o', '%i'], {
        env,
        encoding: 'utf8',
      }).split(/\s+/);
    expect(ids(env1)).toContain(s1.jobId);
    expect(ids(env2)).toContain(s2.jobId);
    for (const s of [s1, s2])
      expect((await kernelRoundTrip(gw.url + s.url, alice.cookie)).stdout.trim()).toBe('42');

    const after = await tablesAfter(Math.floor(Date.now() / 1000));
    // The GPU session is on hpc2 only: one free GPU fewer there, none fewer on hpc1.
    expect(freeGpus(after.hpc2!)).toBe(freeGpus(before.hpc2!) - 1);
    expect(freeGpus(after.hpc1!)).toBe(freeGpus(before.hpc1!));
    expect(freeCores(after.hpc1!)).toBe(freeCores(before.hpc1!) - 2);
    expect(freeCores(after.hpc2!)).toBe(freeCores(before.hpc2!) - 3);

    for (const s of [s1, s2]) await alice.del(`/api/sessions/${s.id}`);
    for (const s of [s1, s2])
      expect((await waitForState(alice, s.id, ['ended'], 60_000)).reason).toBe('stopped by you');
  });
});
