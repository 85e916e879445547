// The Slurm test cluster of scripts/cluster.sh, as its cluster.json describes it (found through
// $ATRIUM_TEST_CLUSTER_BASE, default /tmp/atrium-slurm-atrium; CI sets it), whether a test file can use
// it (else the file skips, saying why), Slurm commands as root, and the cluster script itself.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './gateway.ts';

/** cluster.json, as scripts/cluster.sh writes it (the fields the tests use). */
export interface ClusterJson {
  name: string;
  base: string;
  slurmConf: string;
  port: number;
  nodePrefix: string;
  withDbd: boolean;
  nodes: Array<{ name: string; address: string; cpus: number; memoryMb: number; gpus: number }>;
  reservations: Array<{ name: string; users: string[]; nodes: string[] }>;
}

export const CLUSTER_BASE = process.env.ATRIUM_TEST_CLUSTER_BASE ?? '/tmp/atrium-slurm-atrium';
export const CLUSTER_SCRIPT = path.join(ROOT, 'scripts', 'cluster.sh');

export interface ClusterNeeds {
  /**
   * 'ctld' (default): slurmctld answers `scontrol ping`. 'nodes': a node is up (idle, mix or alloc), in
   * `partition` when one is named.
   */
  up?: 'ctld' | 'nodes';
  partition?: string;
  /** slurmdbd runs (accounts, sacct). */
  dbd?: boolean;
}

/** How long loadCluster waits for a node to be up before the file is skipped. */
const NODES_UP_WAIT_MS = 60_000;

export function readCluster(base = CLUSTER_BASE): ClusterJson {
  return JSON.parse(fs.readFileSync(path.join(base, 'cluster.json'), 'utf8')) as ClusterJson;
}

/** The cluster when the tests can use it (as root, up, with what they need), else why not. */
export function loadCluster(needs: ClusterNeeds = {}): { cluster?: ClusterJson; why?: string } {
  if (typeof process.getuid === 'function' && process.getuid() !== 0)
    return { why: 'must run as root (runuser)' };
  const file = path.join(CLUSTER_BASE, 'cluster.json');
  if (!fs.existsSync(file)) return { why: `no ${file}` };
  const cluster = readCluster();
  const env = { ...process.env, SLURM_CONF: cluster.slurmConf };
  if (needs.up === 'nodes') {
    const partition = needs.partition ? ['-p', needs.partition] : [];
    // The test before may leave every node completing its jobs or re-registering a restarted slurmd
    // for a few seconds: waited for (a CI run once skipped a whole file at such a moment).
    const end = Date.now() + NODES_UP_WAIT_MS;
    for (;;) {
      const sinfo = spawnSync('sinfo', ['-h', ...partition, '-o', '%t'], {
        env,
        encoding: 'utf8',
        timeout: 15_000,
      });
      if (sinfo.status !== 0) return { why: `sinfo failed: ${sinfo.stderr.trim()}` };
      if (/^(idle|mix|alloc)/m.test(sinfo.stdout)) break;
      if (Date.now() > end) {
        const states = [...new Set(sinfo.stdout.split('\n').filter(Boolean))].join(', ');
        const which = needs.partition ? `no node of partition ${needs.partition} is up` : 'no node is up';
        return { why: `${which} after ${NODES_UP_WAIT_MS / 1000} s (states: ${states || 'none'})` };
      }
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
    }
  } else {
    const ping = spawnSync('scontrol', ['ping'], { env, encoding: 'utf8', timeout: 15_000 });
    if (!/is UP/.test(ping.stdout)) return { why: `slurmctld of ${cluster.name} does not answer` };
  }
  if (needs.dbd && !cluster.withDbd)
    return { why: 'the cluster runs without slurmdbd (accounts are needed)' };
  return { cluster };
}

/** loadCluster for a test file: when the cluster cannot be used, warns that `tag` skips, and why. */
export function testCluster(tag: string, needs?: ClusterNeeds): ClusterJson | undefined {
  const { cluster, why } = loadCluster(needs);
  if (!cluster)
    console.warn(`[${tag} e2e] SKIPPED: ${why}. Start the test cluster: bash scripts/cluster.sh up`);
  return cluster;
}

/** A Slurm command as root (sees every job: the gateway's poll view), times as epoch seconds. */
export function slurm(c: ClusterJson, cmd: string, args: string[]): string {
  return execFileSync(cmd, args, {
    env: { ...process.env, SLURM_CONF: c.slurmConf, SLURM_TIME_FORMAT: '%s' },
    encoding: 'utf8',
    timeout: 30_000,
  });
}

/** scripts/cluster.sh `sub` (stop-ctld, start-ctld, kill-slurmd <node>, ...) for this cluster. */
export function clusterScript(c: ClusterJson, sub: string, ...args: string[]): string {
  return execFileSync('bash', [CLUSTER_SCRIPT, sub, ...args], {
    env: {
      ...process.env,
      CLUSTER_NAME: c.name,
      CLUSTER_BASE: c.base,
      CLUSTER_PORT: String(c.port),
      NODE_PREFIX: c.nodePrefix,
      WITH_DBD: c.withDbd ? '1' : '0',
    },
    encoding: 'utf8',
    timeout: 120_000,
  });
}

export const TEST_USERS = ['alice', 'bob', 'carol'];

/** Asks Slurm to cancel every job of the test users (held ones too); does not wait. */
export function scancelTestUsers(c: ClusterJson): void {
  for (const u of TEST_USERS)
    spawnSync('scancel', [`--user=${u}`], { env: { ...process.env, SLURM_CONF: c.slurmConf } });
}

/** Cancels every job of the test users and waits until none is left active. */
export async function cancelAll(c: ClusterJson): Promise<void> {
  scancelTestUsers(c);
  const end = Date.now() + 60_000;
  while (Date.now() < end) {
    const left = slurm(c, 'squeue', [
      '-h',
      '-a',
      '-t',
      'PD,R,CG,S',
      '-u',
      TEST_USERS.join(','),
      '-o',
      '%i',
    ]).trim();
    if (left === '') return;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error('jobs of the test users did not end');
}
