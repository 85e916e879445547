// The Slurm test cluster for the batch-job tests (scripts/cluster.sh; CI sets ATRIUM_TEST_CLUSTER_BASE),
// a gateway configured for it, shell helpers as root, and a server-sent-events reader.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface ClusterJson {
  name: string;
  base: string;
  slurmConf: string;
  withDbd: boolean;
  nodes: Array<{ name: string; cpus: number; gpus: number }>;
}

export const CLUSTER_BASE = process.env.ATRIUM_TEST_CLUSTER_BASE ?? '/tmp/atrium-slurm-atrium';

/** The cluster when it is up (slurmctld answers, nodes usable), else why not. */
export function loadCluster(): { cluster?: ClusterJson; why?: string } {
  if (typeof process.getuid === 'function' && process.getuid() !== 0)
    return { why: 'must run as root (runuser)' };
  const file = path.join(CLUSTER_BASE, 'cluster.json');
  if (!fs.existsSync(file)) return { why: `no ${file}` };
  const cluster = JSON.parse(fs.readFileSync(file, 'utf8')) as ClusterJson;
  const sinfo = spawnSync('sinfo', ['-h', '-o', '%t'], {
    env: { ...process.env, SLURM_CONF: cluster.slurmConf },
    encoding: 'utf8',
    timeout: 15_000,
  });
  if (sinfo.status !== 0) return { why: `sinfo failed: ${sinfo.stderr.trim()}` };
  if (!/^(idle|mix|alloc)/m.test(sinfo.stdout)) return { why: 'no node is up' };
  return { cluster };
}

export function gatewayYaml(c: ClusterJson, extra = ''): string {
  return [
    'clusters:',
    '  - name: hpc',
    '    backend: slurm',
    '    title: Test cluster',
    '    slurm:',
    `      conf: ${c.slurmConf}`,
    '      runAs: runuser',
    '      partition: interactive',
    '      pollSeconds: 1',
    extra,
  ].join('\n');
}

/** A Slurm command as root (sees every job: the gateway's poll view). */
export function slurm(c: ClusterJson, cmd: string, args: string[]): string {
  return execFileSync(cmd, args, {
    env: { ...process.env, SLURM_CONF: c.slurmConf, SLURM_TIME_FORMAT: '%s' },
    encoding: 'utf8',
    timeout: 30_000,
  });
}

/** sbatch as a user, outside the gateway; returns the job id. */
export function sbatchAs(c: ClusterJson, user: string, args: string[], script?: string): string {
  const out = execFileSync('runuser', ['-u', user, '--', 'sbatch', '--parsable', ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', SLURM_CONF: c.slurmConf },
    input: script,
    cwd: '/tmp',
    encoding: 'utf8',
    timeout: 30_000,
  });
  return out.trim().split(';')[0]!;
}

export function homeOf(user: string): string {
  const line = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${user}:`));
  return line?.split(':')[5] ?? `/home/${user}`;
}

/** Writes a file owned by `user` (mode as given), creating its directory (0700) as that user. */
export function writeAs(user: string, file: string, text: string, mode = 0o600): void {
  const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
  const dir = path.dirname(file);
  if (!fs.existsSync(dir)) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.chownSync(dir, uid, gid);
  }
  fs.writeFileSync(file, text, { mode });
  fs.chmodSync(file, mode);
  fs.chownSync(file, uid, gid);
}

export const TEST_USERS = ['alice', 'bob', 'carol'];

/** Cancels every job of the test users (held ones too) and waits until none is left active. */
export async function cancelAll(c: ClusterJson): Promise<void> {
  for (const u of TEST_USERS)
    spawnSync('scancel', [`--user=${u}`], { env: { ...process.env, SLURM_CONF: c.slurmConf } });
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

export interface SseEvent {
  type: string;
  data: unknown;
}

/** Reads /api/events with a cookie, collecting every event until close(). */
export function openEvents(base: string, cookie: string): { events: SseEvent[]; close(): void } {
  const events: SseEvent[] = [];
  const ac = new AbortController();
  void (async () => {
    try {
      const r = await fetch(`${base}/api/events`, { headers: { cookie }, signal: ac.signal });
      if (!r.body) return;
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i = buf.indexOf('\n\n');
        while (i >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const type = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (type && data !== undefined) {
            try {
              events.push({ type, data: JSON.parse(data) });
            } catch {
              events.push({ type, data });
            }
          }
          i = buf.indexOf('\n\n');
        }
      }
    } catch {
      // aborted
    }
  })();
  return { events, close: () => ac.abort() };
}

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false | null>,
  timeoutMs = 60_000,
  everyMs = 250,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false && v !== null) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}
