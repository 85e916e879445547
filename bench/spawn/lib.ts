// Small helpers of the spawn benchmark: child processes stopped by PID, ports, statistics, a Jupyter
// kernel round trip (REST + WebSocket) with any auth header, and a server-sent-events reader.
import { type ChildProcess, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import WebSocket from 'ws';

export const ROOT = path.resolve(import.meta.dirname, '../..');

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function log(s: string): void {
  process.stdout.write(`${s}\n`);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
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

export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs: number,
  everyMs = 100,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(everyMs);
  }
}

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

// ---- Jupyter: create a kernel and run print(6*7) through a proxy ------------------------------------

export async function kernelRoundTrip(
  serverUrl: string,
  headers: Record<string, string>,
  code = 'print(6*7)',
  timeoutMs = 60_000,
): Promise<string> {
  const r = await fetch(`${serverUrl}api/kernels`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'python3' }),
  });
  if (r.status !== 201) throw new Error(`kernel create: HTTP ${r.status} ${(await r.text()).slice(0, 300)}`);
  const kernelId = ((await r.json()) as { id: string }).id;
  const wsUrl = `${serverUrl.replace(/^http/, 'ws')}api/kernels/${kernelId}/channels?session_id=${crypto.randomUUID()}`;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl, { headers });
    const msgId = crypto.randomUUID();
    let out = '';
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`kernel did not answer in ${timeoutMs} ms`));
    }, timeoutMs);
    ws.on('unexpected-response', (req, res) => {
      clearTimeout(timer);
      req.destroy();
      reject(new Error(`kernel websocket refused: HTTP ${res.statusCode}`));
    });
    ws.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    ws.on('open', () => {
      ws.send(
        JSON.stringify({
          header: {
            msg_id: msgId,
            username: 'bench',
            session: crypto.randomUUID(),
            msg_type: 'execute_request',
            version: '5.3',
            date: new Date().toISOString(),
          },
          parent_header: {},
          metadata: {},
          content: { code, silent: false, store_history: false, user_expressions: {}, allow_stdin: false },
          channel: 'shell',
          buffers: [],
        }),
      );
    });
    ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as {
        msg_type: string;
        parent_header: { msg_id?: string };
        content: Record<string, unknown>;
      };
      if (m.parent_header?.msg_id !== msgId) return;
      if (m.msg_type === 'stream') out += String(m.content.text ?? '');
      if (m.msg_type === 'status' && m.content.execution_state === 'idle') {
        clearTimeout(timer);
        ws.close();
        resolve(out);
      }
    });
  });
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
    void (async () => {
      try {
        const r = await fetch(url, { headers, signal: this.ac.signal });
        if (!r.ok || !r.body) throw new Error(`event stream: HTTP ${r.status}`);
        opened();
        const reader = r.body.getReader();
        const dec = new TextDecoder();
        let buf = '';
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true });
          for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let type = 'message';
            let data = '';
            for (const line of block.split('\n')) {
              if (line.startsWith('event: ')) type = line.slice(7);
              else if (line.startsWith('data: ')) data += line.slice(6);
            }
            if (data) this.push({ type, data: JSON.parse(data), at: Date.now() });
          }
        }
      } catch (e) {
        failed(e as Error);
      }
    })();
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
