// The batch-job tests on the Slurm test cluster (test/helpers/cluster.ts): a gateway configured for it,
// shell helpers as root, and the events a user's browser would get.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { ClusterJson } from './cluster.ts';
import { readEvents } from './events.ts';

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

export interface SseEvent {
  type: string;
  data: unknown;
}

/** Reads /api/events with a cookie, collecting every event until close(). */
export function openEvents(base: string, cookie: string): { events: SseEvent[]; close(): void } {
  const events: SseEvent[] = [];
  const ac = new AbortController();
  readEvents(`${base}/api/events`, { cookie }, ac.signal, (type, data) => {
    try {
      events.push({ type, data: JSON.parse(data) });
    } catch {
      events.push({ type, data });
    }
  }).catch(() => undefined); // aborted, or refused: no events
  return { events, close: () => ac.abort() };
}
