// Shared plumbing for the proxy benchmark: starting pinned child processes, waiting for them, stopping
// them by PID, reading their memory, and parsing wrk's report.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { PackageNeed } from '../../src/system/packages.ts';

export const ROOT = path.resolve(import.meta.dirname, '../..');
// A free TCP port on 127.0.0.1, as the tests find one.
export { freePort } from '../../test/helpers/gateway.ts';
export const BENCH_DIR = path.join(ROOT, 'bench', 'proxy');

/** CPU layout: the proxy under test gets CPU1 alone; wrk, the load generators and upstreams share CPU0. */
export const CPU_PROXY = process.env.BENCH_CPU_PROXY ?? '1';
export const CPU_LOAD = process.env.BENCH_CPU_LOAD ?? '0';
const PIN = process.env.BENCH_NO_PIN !== '1' && fs.existsSync('/usr/bin/taskset');

export interface Child {
  name: string;
  proc: ChildProcess;
  pid: number;
  /** Lines printed on stdout so far. */
  lines: string[];
  stderr: string[];
  exited: Promise<number | null>;
}

const running = new Set<Child>();

/** Starts a process (pinned to `cpu` with taskset when available). taskset execs, so the PID is the program's. */
export function start(
  name: string,
  argv: string[],
  opts: { cpu?: string; env?: NodeJS.ProcessEnv; ipc?: boolean } = {},
): Child {
  const [cmd, ...args] = opts.cpu && PIN ? ['/usr/bin/taskset', '-c', opts.cpu, ...argv] : argv;
  const proc = spawn(cmd!, args, {
    cwd: ROOT,
    env: { ...process.env, ...opts.env },
    stdio: opts.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
  });
  if (proc.pid === undefined) throw new Error(`${name}: could not start ${argv.join(' ')}`);
  const lines: string[] = [];
  const stderr: string[] = [];
  let buf = '';
  proc.stdout?.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let i = buf.indexOf('\n');
    while (i !== -1) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
      i = buf.indexOf('\n');
    }
  });
  proc.stderr?.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < 200) stderr.push(d);
  });
  const child: Child = {
    name,
    proc,
    pid: proc.pid,
    lines,
    stderr,
    exited: new Promise((resolve) => proc.once('exit', (code) => resolve(code))),
  };
  running.add(child);
  void child.exited.then(() => running.delete(child));
  return child;
}

/** A Node program run with tsx (TypeScript), optionally with --expose-gc. */
export function nodeArgv(script: string, args: string[] = [], flags: string[] = []): string[] {
  return [process.execPath, ...flags, '--import', 'tsx', path.join(BENCH_DIR, script), ...args];
}

/** Waits for the first stdout line that parses as JSON with the given key. */
export async function waitForJson<T>(child: Child, key: string, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  let seen = 0;
  for (;;) {
    for (; seen < child.lines.length; seen++) {
      const l = child.lines[seen]!;
      if (!l.startsWith('{')) continue;
      try {
        const o = JSON.parse(l) as Record<string, unknown>;
        if (key in o) return o as T;
      } catch {
        // not ours
      }
    }
    if (child.proc.exitCode !== null || child.proc.signalCode !== null) {
      throw new Error(`${child.name} exited early: ${child.stderr.join('').slice(-2000)}`);
    }
    if (Date.now() > until) throw new Error(`${child.name}: no "${key}" line within ${timeoutMs} ms`);
    await sleep(20);
  }
}

export async function waitForPort(port: number, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`port ${port} did not open`);
    await sleep(50);
  }
}

/** Stops one child by its PID: SIGTERM, then SIGKILL after a grace period. */
export async function stop(child: Child, graceMs = 3000, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return;
  try {
    process.kill(child.pid, signal);
  } catch {
    return;
  }
  const t = setTimeout(() => {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }, graceMs);
  await child.exited;
  clearTimeout(t);
}

/** Stops everything this process started that is still running (each by PID). */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((c) => stop(c, 2000)));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resident set size of a process, from /proc (kB → bytes). */
export function rssOf(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Open file descriptors of a process (sockets included). */
export function fdCount(pid: number): number | null {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}

/** Memory and socket figures a child reports over IPC (see mem-probe.mjs and ours.ts). */
export interface ProbeReport {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  handles: number;
  /** Live libuv handles by type, and a description of the open sockets among them. */
  handleTypes?: Record<string, number>;
  openSockets?: string[];
  gc: boolean;
  /** Only the gateway knows these. */
  openWebSockets?: number;
  agentSockets?: number;
  agentFreeSockets?: number;
  serverConnections?: number;
}

/** Asks a child (spawned with ipc) to collect garbage, settle and report its memory. */
export async function probe(child: Child, timeoutMs = 15_000): Promise<ProbeReport> {
  return (await ask<{ report: ProbeReport }>(child, { type: 'mem' }, timeoutMs)).report;
}

/** CPU time (user + system) a process has used so far, in microseconds (from /proc/<pid>/stat). */
export function cpuMicros(pid: number): number | null {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    // utime and stime are fields 14 and 15 of stat(5), in clock ticks (100 per second on Linux).
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  } catch {
    return null;
  }
}

export interface WrkResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  non2xx: number;
  socketErrors: number;
}

function toMs(v: string, unit: string): number {
  const n = Number(v);
  if (unit === 'us') return n / 1000;
  if (unit === 's') return n * 1000;
  if (unit === 'm') return n * 60_000;
  return n;
}

export function parseWrk(out: string): WrkResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  if (!rps) throw new Error(`cannot read wrk output:\n${out}`);
  const pct = (p: string) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(out);
    return m ? toMs(m[1]!, m[2]!) : Number.NaN;
  };
  const req = /(\d+) requests in/.exec(out);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    rps: Number(rps[1]),
    p50Ms: pct('50'),
    p99Ms: pct('99'),
    requests: req ? Number(req[1]) : 0,
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    socketErrors: sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
  };
}

/**
 * The config lines of a benchmark's gateway with its data in `dir`: loopback, any free port, no
 * package installs, and a named agent script (never run: no session starts) so no bundle is built.
 */
export function benchGatewayConfig(dir: string): string[] {
  const agentStub = path.join(dir, 'agent.mjs');
  fs.writeFileSync(agentStub, '');
  return [
    'server:',
    '  host: 127.0.0.1',
    '  port: 0',
    `dataDir: ${JSON.stringify(path.join(dir, 'data'))}`,
    'installPackages: false',
    'log:',
    `  level: ${process.env.BENCH_GATEWAY_LOG ?? 'warn'}`,
    'agent:',
    `  script: ${JSON.stringify(agentStub)}`,
  ];
}

/** The HTTP load generator: Debian's wrk (installed by the benchmark when it runs as root). */
export const WRK_NEED: PackageNeed = {
  packages: ['wrk'],
  why: 'the HTTP cells of the proxy benchmark (wrk)',
  present: () => fs.existsSync('/usr/bin/wrk'),
};

/** Runs wrk pinned to the load CPU and returns its parsed report. */
export async function wrk(url: string, connections: number, seconds: number, headers: string[]) {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '--timeout', '10s'];
  for (const h of headers) args.push('-H', h);
  const c = start('wrk', ['/usr/bin/wrk', ...args, url], { cpu: CPU_LOAD });
  const code = await c.exited;
  const out = c.lines.join('\n');
  if (code !== 0) throw new Error(`wrk failed (${code}): ${c.stderr.join('')}`);
  return parseWrk(out);
}

/** A number from the environment, or the default when unset or empty. */
export const envNumber = (v: string | undefined, d: number) => (v === undefined || v === '' ? d : Number(v));

/** The median of the finite values (NaN when there are none). */
export const median = (xs: number[]) => {
  const s = [...xs].filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export const round = (n: number, digits = 2) => {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
};

/** Sends a request over IPC and waits for the reply of the same type and id. */
export function ask<T>(child: Child, msg: Record<string, unknown>, timeoutMs = 15_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const id = Math.random().toString(36).slice(2);
    const t = setTimeout(() => {
      child.proc.off('message', onMsg);
      reject(new Error(`${child.name}: no answer to ${String(msg.type)}`));
    }, timeoutMs);
    const onMsg = (m: unknown) => {
      const r = m as { type?: string; id?: string };
      if (r.type === msg.type && r.id === id) {
        clearTimeout(t);
        child.proc.off('message', onMsg);
        resolve(r as T);
      }
    };
    child.proc.on('message', onMsg);
    child.proc.send({ ...msg, id });
  });
}
