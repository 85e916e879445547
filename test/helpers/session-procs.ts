// The processes of one session on this host (the local backend, and the Slurm test cluster, whose nodes
// all run here), found the way an operator would: `ps -u <user>`, then each process's command line and
// environment. A process belongs to the session when either names its id: the agent (its environment
// has ATRIUM_SESSION_ID), the guard and the apps (their command lines hold the session's path), and
// whatever the apps started (they inherit the agent's mark, ATRIUM_SESSION).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

export interface Proc {
  pid: number;
  args: string;
}

function environ(pid: number): string[] {
  try {
    return fs.readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0');
  } catch {
    return [];
  }
}

function stateOf(pid: number): string {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return '';
  }
}

/** Live processes (zombies excluded) of `user` that belong to the session `id`. */
export function sessionProcesses(user: string, id: string): Proc[] {
  let out = '';
  try {
    out = execFileSync('ps', ['-u', user, '-o', 'pid=,args='], { encoding: 'utf8' });
  } catch {
    return []; // ps exits 1 when the user has no process at all
  }
  const procs: Proc[] = [];
  for (const line of out.split('\n')) {
    const m = /^\s*(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const pid = Number(m[1]);
    const args = m[2]!;
    const env = environ(pid);
    const mine =
      args.includes(id) || env.includes(`ATRIUM_SESSION=${id}`) || env.includes(`ATRIUM_SESSION_ID=${id}`);
    if (mine && stateOf(pid) !== 'Z') procs.push({ pid, args });
  }
  return procs;
}

/** The session's agent (not its guard): the process that was started with the session's id. */
export function agentPid(user: string, id: string): number | undefined {
  return sessionProcesses(user, id).find(
    (p) =>
      p.args.includes('atrium-agent') &&
      !p.args.includes('--atrium-guard') &&
      environ(p.pid).includes(`ATRIUM_SESSION_ID=${id}`),
  )?.pid;
}

export function isAlive(pid: number): boolean {
  const s = stateOf(pid);
  return s !== '' && s !== 'Z';
}
