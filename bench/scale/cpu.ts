// Where the machine's CPU went over a measured stretch (the click-through): every process's CPU time
// from /proc, grouped into the parts of the setup (each gateway, PostgreSQL, HAProxy, Slurm's daemons,
// the load generator), and the rest of the machine's busy time as "other" (short-lived processes:
// sbatch, scancel, runuser, the jobs themselves). Linux only; on a 2-core machine these parts share
// the cores, so a slow step is read against this table.
import fs from 'node:fs';

/** Clock ticks per second of /proc's times (USER_HZ; 100 on every Linux the bench runs on). */
const HZ = 100;

interface Proc {
  comm: string;
  ticks: number;
  /** Of the children it has waited for (with theirs). */
  childTicks: number;
  ppid: number;
}

export interface CpuSample {
  /** Busy ticks of the whole machine (all CPUs). */
  busy: number;
  /** Idle ticks of the whole machine. */
  idle: number;
  procs: Map<number, Proc>;
}

export function sampleCpu(): CpuSample {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  // cpu user nice system idle iowait irq softirq steal ...
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  const busy = f.slice(0, 8).reduce((a, b) => a + b, 0) - idle;
  const procs = new Map<number, Proc>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const rest = stat.slice(close + 2).split(' ');
      // utime, stime: fields 14 and 15 of stat(5) (rest[0] is field 3).
      // cutime, cstime: fields 16 and 17.
      procs.set(Number(name), {
        comm,
        ticks: Number(rest[11]) + Number(rest[12]),
        childTicks: Number(rest[13]) + Number(rest[14]),
        ppid: Number(rest[1]),
      });
    } catch {
      // gone meanwhile
    }
  }
  return { busy, idle, procs };
}

/**
 * CPU seconds between two samples, each process (with the children it has waited for) counted under
 * its nearest ancestor that is named by PID (`named`: a gateway and its command helper with sbatch,
 * runuser...) or whose command is in `groups` (PostgreSQL's backends, Slurm's daemons; what runs under
 * a slurmstepd is `slurm_jobs`: the sessions' agents and apps, the batch jobs); `other` is the machine's
 * busy time none of them accounts for (processes that came and went under nothing named), with
 * `busy` and `capacity` (all CPUs' seconds) for scale.
 */
export function cpuBetween(
  a: CpuSample,
  b: CpuSample,
  named: Record<string, number>,
  groups: Record<string, string>,
): Record<string, number> {
  const byPid = new Map(Object.entries(named).map(([k, pid]) => [pid, k]));
  const keyOf = (pid: number): string | undefined => {
    let self = true;
    for (let p = pid, hops = 0; p > 1 && hops < 64; hops++) {
      const named = byPid.get(p);
      if (named) return named;
      const proc = b.procs.get(p);
      if (!proc) return undefined;
      const g = groups[proc.comm];
      if (g) return !self && proc.comm === 'slurmstepd' ? 'slurm_jobs' : g;
      p = proc.ppid;
      self = false;
    }
    return undefined;
  };
  const out: Record<string, number> = {};
  let accounted = 0;
  for (const [pid, p] of b.procs) {
    const before = a.procs.get(pid);
    const same = before?.comm === p.comm;
    const delta = p.ticks - (same ? before!.ticks : 0) + p.childTicks - (same ? before!.childTicks : 0);
    const key = pid === 1 ? 'orphans' : keyOf(pid);
    if (!key || delta <= 0) continue;
    out[key] = (out[key] ?? 0) + delta;
    accounted += delta;
  }
  const busy = b.busy - a.busy;
  const result: Record<string, number> = {};
  for (const [k, v] of Object.entries(out)) result[k] = round(v / HZ);
  result.other = round(Math.max(0, busy - accounted) / HZ);
  result.busy = round(busy / HZ);
  result.capacity = round((busy + b.idle - a.idle) / HZ);
  return result;
}

/** The command names of the setup's shared parts. */
export const CPU_GROUPS: Record<string, string> = {
  postgres: 'postgresql',
  haproxy: 'haproxy',
  slurmctld: 'slurmctld',
  slurmd: 'slurmd',
  slurmstepd: 'slurmstepd',
  slurmdbd: 'slurmdbd',
};

function round(n: number): number {
  return Math.round(n * 10) / 10;
}
