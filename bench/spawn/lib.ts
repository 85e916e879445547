// Small helpers of the spawn benchmark: child processes stopped by PID, ports, statistics, and the
// live events. Ports, waiting, the event-stream reader and the Jupyter kernel round trip are the
// tests' own (test/helpers/).
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import { readEvents } from '../../test/helpers/events.ts';
import { until as pollUntil, sleep } from '../../test/helpers/wait.ts';

export { freePort, ROOT } from '../../test/helpers/gateway.ts';
export { sleep };

export function log(s: string): void {
  process.stdout.write(`${s}\n`);
}

export interface Child {
  name: string;
  proc: ChildProcess;
  pid: number;
  logFile: string;
}

const children = new Set<Child>();

/** Starts a process in its own process group, output to a log file. */
export function start(
  name: string,
  argv: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; logFile: string },
): Child {
  const out = fs.openSync(opts.logFile, 'a');
  const proc = spawn(argv[0]!, argv.slice(1), {
    stdio: ['ignore', out, out],
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    detached: true,
  });
  fs.closeSync(out);
  if (!proc.pid) throw new Error(`${name}: could not start ${argv[0]}`);
  const c: Child = { name, proc, pid: proc.pid, logFile: opts.logFile };
  children.add(c);
  return c;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** SIGTERM to the PID, SIGKILL after `graceMs`; waits until it is gone. */
export async function stopPid(pid: number, graceMs = 10_000): Promise<void> {
  if (!alive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const end = Date.now() + graceMs;
  while (alive(pid) && Date.now() < end) await sleep(50);
  if (alive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
    while (alive(pid)) await sleep(50);
  }
}

/** PIDs of the processes `uid` owns. */
export function processesOf(uid: number): Set<number> {
  const out = new Set<number>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (fs.statSync(`/proc/${name}`).uid === uid) out.add(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * Waits until every process of `uid` that is not in `before` has gone (at most `timeoutMs`), and returns
 * how long that took: a sample's shutdown (its server's, its kernel's) must not share the CPUs with the
 * next sample, whichever target that is.
 */
export async function settle(uid: number, before: ReadonlySet<number>, timeoutMs = 15_000): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if (![...processesOf(uid)].some((p) => !before.has(p) && alive(p))) break;
    await sleep(50);
  }
  return Date.now() - t0;
}

export async function stop(c: Child, graceMs = 10_000): Promise<void> {
  children.delete(c);
  if (c.proc.exitCode !== null || c.proc.signalCode !== null) return;
  const exited = new Promise((r) => c.proc.once('exit', r));
  await stopPid(c.pid, graceMs);
  await Promise.race([exited, sleep(1000)]);
}

export async function stopAll(): Promise<void> {
  for (const c of [...children]) await stop(c);
}

/** Polls every 100 ms by default: the benchmark measures when things happen. */
export const until = <T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs: number,
  everyMs = 100,
): Promise<T> => pollUntil(what, fn, timeoutMs, everyMs);

export function median(xs: number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export interface Stat {
  median: number;
  min: number;
  max: number;
}

export function stat(xs: number[]): Stat {
  return {
    median: Math.round(median(xs)),
    min: Math.round(Math.min(...xs)),
    max: Math.round(Math.max(...xs)),
  };
}

// ---- server-sent events ------------------------------------------------------------------------------

export interface LiveEvent {
  type: string;
  data: Record<string, unknown>;
  at: number;
}

/** Reads an event stream in the background, as the web UI does; `next` waits for a matching event. */
export class EventStream {
  private readonly events: LiveEvent[] = [];
  private readonly waiters: { pred: (e: LiveEvent) => boolean; resolve: (e: LiveEvent) => void }[] = [];
  private readonly ac = new AbortController();
  readonly opened: Promise<void>;

  constructor(url: string, headers: Record<string, string>) {
    let opened: () => void = () => undefined;
    let failed: (e: Error) => void = () => undefined;
    this.opened = new Promise<void>((res, rej) => {
      opened = res;
      failed = rej;
    });
    readEvents(
      url,
      headers,
      this.ac.signal,
      (type, data) => this.push({ type, data: JSON.parse(data), at: Date.now() }),
      opened,
    ).catch((e: Error) => failed(e));
  }

  private push(e: LiveEvent): void {
    this.events.push(e);
    if (this.events.length > 1000) this.events.splice(0, 500);
    for (const w of [...this.waiters]) {
      if (w.pred(e)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(e);
      }
    }
  }

  /** The first event from now on (or already received at or after `since`) that matches. */
  next(pred: (e: LiveEvent) => boolean, timeoutMs: number, since = Date.now()): Promise<LiveEvent> {
    const seen = this.events.find((e) => e.at >= since && pred(e));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w = {
        pred,
        resolve: (e: LiveEvent) => {
          clearTimeout(t);
          resolve(e);
        },
      };
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`no matching event in ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  close(): void {
    this.ac.abort();
  }
}
