// An app never outlives its agent. Three layers, because each one alone has a hole:
//
// 1. The agent stops each app's process group (apps.ts), then every other process of the session: apps
//    start their own children in new sessions (Jupyter's kernels, VS Code's and the terminal's shells),
//    out of reach of the group. Those are found by a mark in their environment (ATRIUM_SESSION=<id>),
//    which every process started from an app inherits, on any backend, with any Slurm process tracking
//    (proctrack/linuxproc loses processes whose parent died; only cgroups would hold them).
// 2. The agent can be killed with SIGKILL and do none of that. Each app is started through
//    `setpriv --pdeathsig KILL`, so the kernel kills it the moment the agent dies. That reaches the
//    app's first process only (the signal is per process, and a child's is cleared at fork), and there
//    is a window between fork and the prctl where it is not set yet.
// 3. So a guard process watches the agent from outside: a copy of the agent bundle in guard mode, in
//    its own process group (a signal to the agent's group does not take it along), holding one end of a
//    pipe whose other end only the agent holds (libuv opens it close-on-exec: apps do not inherit it).
//    However the agent ends, even by SIGKILL or the OOM killer, the pipe reads end-of-file and the guard
//    stops the apps' groups and every marked process, then exits. It ignores the signals that reach the
//    job as a whole (scancel, hangups): while the agent lives, stopping apps is the agent's work.
// A pipe rather than a parent-death signal for the guard itself: the end-of-file comes however the
// agent dies, even when the process that dies is not the guard's direct parent (a container runtime or
// a setup shell in between), and the guard learns the apps' groups on the same channel.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';

/** Environment variable every process of a session carries (apps and all they start): its session id. */
export const SESSION_MARK = 'ATRIUM_SESSION';

/** argv[1..] that starts the agent bundle in guard mode. */
export const GUARD_FLAG = '--atrium-guard';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Processes of `uid` whose environment carries the session's mark, except `exclude`. Processes of
 * other users cannot be read (or signalled) anyway; zombies have no environment left and are skipped.
 */
export function markedProcesses(
  sessionId: string,
  opts: { uid?: number; exclude?: ReadonlySet<number>; procDir?: string } = {},
): number[] {
  const proc = opts.procDir ?? '/proc';
  const needle = `${SESSION_MARK}=${sessionId}`;
  const out: number[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(proc);
  } catch {
    return out; // no /proc (not Linux): the groups and the parent-death signal still hold
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (opts.exclude?.has(pid)) continue;
    try {
      if (opts.uid !== undefined && fs.statSync(path.join(proc, name)).uid !== opts.uid) continue;
      const env = fs.readFileSync(path.join(proc, name, 'environ'), 'latin1');
      if (env.split('\0').includes(needle)) out.push(pid);
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return out;
}

function signal(target: number, sig: NodeJS.Signals | 0): boolean {
  try {
    process.kill(target, sig);
    return true;
  } catch {
    return false;
  }
}

/**
 * Stops what is left of a session: the given process groups and every marked process, with SIGTERM,
 * then SIGKILL for whatever still lives after `graceMs`. Returns how many targets it signalled.
 */
export async function stopSessionProcesses(
  sessionId: string,
  groups: Iterable<number>,
  opts: { graceMs: number; uid?: number; exclude?: ReadonlySet<number> },
): Promise<number> {
  const pgids = [...groups].filter((g) => g > 1);
  const scan = () => markedProcesses(sessionId, opts);
  const live = () => pgids.filter((g) => signal(-g, 0)).length + scan().length;
  let n = 0;
  for (const g of pgids) if (signal(-g, 'SIGTERM')) n++;
  for (const pid of scan()) if (signal(pid, 'SIGTERM')) n++;
  if (n === 0) return 0;
  const end = Date.now() + opts.graceMs;
  while (Date.now() < end && live() > 0) await sleep(100);
  // Rescanned a few times: a process may fork while the signals are on their way.
  for (let i = 0; i < 10; i++) {
    for (const g of pgids) signal(-g, 'SIGKILL');
    const left = scan();
    if (left.length === 0 && !pgids.some((g) => signal(-g, 0))) break;
    for (const pid of left) signal(pid, 'SIGKILL');
    await sleep(100);
  }
  return n;
}

/**
 * The argv prefix that makes an app die with the agent (`setpriv --pdeathsig KILL --`), or [] where
 * setpriv is missing or too old (util-linux < 2.33): the guard alone then catches a killed agent's apps.
 */
export function deathSignalPrefix(pathEnv: string | undefined): string[] {
  const dirs = [...(pathEnv ?? '').split(':'), '/usr/bin', '/bin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (!dir.startsWith('/')) continue;
    const exe = path.join(dir, 'setpriv');
    try {
      fs.accessSync(exe, fs.constants.X_OK);
    } catch {
      continue;
    }
    try {
      const help = execFileSync(exe, ['--help'], {
        encoding: 'utf8',
        timeout: 5_000,
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      return help.includes('--pdeathsig') ? [exe, '--pdeathsig', 'KILL', '--'] : [];
    } catch {
      return [];
    }
  }
  return [];
}

export interface Guard {
  readonly pid: number;
  /** Tells the guard an app's process group (the pid of the app, which leads its group). */
  watch(pgid: number): void;
}

/**
 * Starts the guard: this same program (`argv` is how this process was started: node, its options and
 * the script) in guard mode, in a process group of its own, with no secret in its environment.
 */
export function startGuard(opts: {
  sessionId: string;
  argv: string[];
  env: NodeJS.ProcessEnv;
  stderrFd: number;
  log(msg: string): void;
}): Guard {
  const [exe, ...args] = opts.argv;
  const child: ChildProcess = spawn(exe!, [...args, GUARD_FLAG, opts.sessionId], {
    env: opts.env,
    detached: true,
    stdio: ['pipe', 'ignore', opts.stderrFd],
  });
  child.on('error', (e) => opts.log(`the guard did not start: ${e.message}`));
  // The agent's end of the pipe must not keep the agent alive, nor the guard hold the agent's exit.
  child.unref();
  const pipe = child.stdin;
  (pipe as unknown as { unref?: () => void } | null)?.unref?.();
  pipe?.on('error', () => undefined);
  return {
    pid: child.pid ?? 0,
    watch(pgid: number) {
      pipe?.write(`group ${pgid}\n`);
    },
  };
}

/**
 * Guard mode: remembers the process groups the agent tells it about until the agent's end of `input`
 * closes (the agent is gone, however it ended), then stops the groups and every marked process.
 */
export async function runGuard(
  sessionId: string,
  input: Readable,
  log: (msg: string) => void,
): Promise<void> {
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => undefined);
  const groups = new Set<number>();
  let buf = '';
  input.setEncoding('utf8');
  input.on('data', (d: string) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const m = /^group (\d+)$/.exec(buf.slice(0, i));
      if (m) groups.add(Number(m[1]));
      buf = buf.slice(i + 1);
    }
  });
  await new Promise<void>((resolve) => {
    input.once('end', resolve);
    input.once('close', resolve);
    input.once('error', () => resolve());
  });
  const n = await stopSessionProcesses(sessionId, groups, {
    graceMs: 2_000,
    uid: process.getuid?.(),
    exclude: new Set([process.pid]),
  });
  if (n > 0)
    log(`the agent is gone; the guard stopped ${n} process(es) or group(s) of the session left behind`);
}
