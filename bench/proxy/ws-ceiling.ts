// npm run bench:ws-ceiling — where the WebSocket echo figure of bench:proxy comes from. The same
// 64-byte ping-pong through: nothing (direct), a bare TCP forwarder with no HTTP at all (the floor
// under any proxy, bare-forwarder.ts), the Atrium gateway and configurable-http-proxy 5.3, each
// with two harnesses: the standard one of bench:proxy (ws-load.ts + upstream.ts, on the ws library)
// and a lean one (lean-ws-load.ts + lean-echo.ts, raw sockets, less CPU per message), so
// the proxy's core has more of a chance to be the bottleneck. For each cell: round trips/s, the
// proxy's CPU µs per message, and how busy each core was.
//
// Pinned as bench:proxy: the forwarder or proxy alone on CPU1; load and app on CPU0.
// Env: BENCH_SECONDS (8), BENCH_WARMUP (1), BENCH_ROUNDS (2), BENCH_WS_CONNS (50),
//      BENCH_NO_SAVE=1. Output: a table, bench/results/ws-ceiling-<date>.json (and -latest), and a
//      JSON summary as the last line.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  type Child,
  CPU_LOAD,
  CPU_PROXY,
  cpuMicros,
  envNumber,
  median,
  nodeArgv,
  ROOT,
  round,
  start,
  stop,
  stopAll,
  waitForJson,
} from './lib.ts';
import { routePath, startTarget, type Target } from './targets.ts';

const SECONDS = envNumber(process.env.BENCH_SECONDS, 8);
const WARMUP = envNumber(process.env.BENCH_WARMUP, 1);
const ROUNDS = envNumber(process.env.BENCH_ROUNDS, 2);
const CONNS = (process.env.BENCH_WS_CONNS ?? '50').split(',').map(Number);
const SESSION = 'bench0001';

type Kind = 'direct' | 'bare' | 'ours' | 'chp';
const KINDS: Kind[] = ['direct', 'bare', 'ours', 'chp'];
const LABEL: Record<Kind, string> = {
  direct: 'direct (no proxy)',
  bare: 'bare TCP forwarder (no HTTP)',
  ours: 'Atrium gateway',
  chp: 'CHP 5.3 (as JupyterHub runs it)',
};
const HARNESSES = {
  standard: { load: 'ws-load.ts', loadArgs: ['echo'], app: 'upstream.ts' },
  lean: { load: 'lean-ws-load.ts', loadArgs: [], app: 'lean-echo.ts' },
} as const;
type Harness = keyof typeof HARNESSES;

interface Cell {
  rate: number;
  p99Ms: number;
  cpuUsPerMsg: number | null;
  busyLoadCpu: number;
  busyProxyCpu: number;
}

/** Busy share (0-100) of each CPU between two readings of /proc/stat. */
function cpuTimes(): Map<string, { busy: number; total: number }> {
  const m = new Map<string, { busy: number; total: number }>();
  for (const line of fs.readFileSync('/proc/stat', 'utf8').split('\n')) {
    const f = line.split(/\s+/);
    if (!/^cpu\d+$/.test(f[0] ?? '')) continue;
    const v = f.slice(1).map(Number);
    const total = v.reduce((a, b) => a + b, 0);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    m.set(f[0]!.slice(3), { busy: total - idle, total });
  }
  return m;
}
const busyBetween = (a: ReturnType<typeof cpuTimes>, b: ReturnType<typeof cpuTimes>, cpu: string) => {
  const x = a.get(cpu);
  const y = b.get(cpu);
  if (!x || !y || y.total === x.total) return Number.NaN;
  return round((100 * (y.busy - x.busy)) / (y.total - x.total), 0);
};

interface Running {
  url: string;
  headers: Record<string, string>;
  measured?: Child;
  close(): Promise<void>;
}

async function startKind(kind: Kind, appPort: number): Promise<Running> {
  if (kind === 'direct') return { url: `ws://127.0.0.1:${appPort}/`, headers: {}, close: async () => {} };
  if (kind === 'bare') {
    const child = start('bare-forwarder', nodeArgv('bare-forwarder.ts', ['--to', String(appPort)]), {
      cpu: CPU_PROXY,
    });
    const { port } = await waitForJson<{ port: number }>(child, 'port');
    return { url: `ws://127.0.0.1:${port}/`, headers: {}, measured: child, close: () => stop(child) };
  }
  const t: Target = await startTarget(kind, [{ id: SESSION, port: appPort }]);
  return {
    url: `${t.base.replace(/^http/, 'ws')}${routePath(SESSION)}`,
    headers: t.headers,
    measured: t.child,
    close: () => t.close(),
  };
}

async function cell(h: Harness, r: Running, connections: number): Promise<Cell> {
  const args = [
    ...HARNESSES[h].loadArgs,
    '--url',
    r.url,
    '--connections',
    String(connections),
    '--seconds',
    String(SECONDS),
    '--warmup',
    String(WARMUP),
  ];
  for (const [k, v] of Object.entries(r.headers)) args.push('--header', `${k}: ${v}`);
  const c = start('load', nodeArgv(HARNESSES[h].load, args), { cpu: CPU_LOAD });
  // Readings around the measured part only: the load process starts, warms up, then measures.
  await new Promise((res) => setTimeout(res, (WARMUP + 0.8) * 1000));
  const cpu0 = r.measured ? cpuMicros(r.measured.pid) : null;
  const t0 = cpuTimes();
  const { result } = await waitForJson<{
    result: { rate: number; p99Ms: number; messages: number; opened: number; seconds: number };
  }>(c, 'result', (SECONDS + WARMUP + 60) * 1000);
  const t1 = cpuTimes();
  const cpu1 = r.measured ? cpuMicros(r.measured.pid) : null;
  await c.exited;
  if (result.opened !== connections) throw new Error(`only ${result.opened} WebSockets opened`);
  // The readings span ~(SECONDS - 0.8) s of the measured part; scale the message count to it.
  const spanMessages = result.messages * ((SECONDS - 0.8) / result.seconds);
  return {
    rate: Math.round(result.rate),
    p99Ms: round(result.p99Ms),
    cpuUsPerMsg: cpu0 !== null && cpu1 !== null ? round((cpu1 - cpu0) / spanMessages, 1) : null,
    busyLoadCpu: busyBetween(t0, t1, CPU_LOAD),
    busyProxyCpu: busyBetween(t0, t1, CPU_PROXY),
  };
}

async function main() {
  console.log(
    `WebSocket ceiling: ${ROUNDS} rounds of ${WARMUP}s + ${SECONDS}s per cell, c=${CONNS.join(',')}; proxies on CPU${CPU_PROXY}, load and app on CPU${CPU_LOAD}`,
  );
  const samples: Record<string, Cell[]> = {};
  for (const h of Object.keys(HARNESSES) as Harness[]) {
    const app = start(`app-${h}`, nodeArgv(HARNESSES[h].app, []), { cpu: CPU_LOAD });
    const { port } = await waitForJson<{ port: number }>(app, 'port');
    const running = new Map<Kind, Running>();
    for (const k of KINDS) running.set(k, await startKind(k, port));
    for (let round_ = 0; round_ < ROUNDS; round_++) {
      for (const c of CONNS) {
        // Rotate the order each round so drifts on the machine hit every target alike.
        const order = KINDS.map((_, i) => KINDS[(i + round_) % KINDS.length]!);
        for (const k of order) {
          const s = await cell(h, running.get(k)!, c);
          const key = `${h}/${k}/c${c}`;
          samples[key] = [...(samples[key] ?? []), s];
          console.log(
            `  ${h.padEnd(8)} ${k.padEnd(6)} c=${String(c).padEnd(4)} ${(s.rate / 1000).toFixed(1)}k msg/s  p99 ${s.p99Ms} ms  ${s.cpuUsPerMsg ?? '—'} µs CPU/msg  CPU${CPU_LOAD} ${s.busyLoadCpu}%  CPU${CPU_PROXY} ${s.busyProxyCpu}%`,
          );
        }
      }
    }
    for (const r of running.values()) await r.close();
    await stop(app);
  }

  const summary: Record<string, Record<string, unknown>> = {};
  console.log('\nmedians (round trips/s, proxy µs CPU/msg, busy % of the load core / of the proxy core):');
  for (const h of Object.keys(HARNESSES) as Harness[]) {
    for (const c of CONNS) {
      const row: Record<string, unknown> = {};
      for (const k of KINDS) {
        const xs = samples[`${h}/${k}/c${c}`] ?? [];
        const cpu = xs.map((x) => x.cpuUsPerMsg).filter((x): x is number => x !== null);
        row[k] = {
          rate: Math.round(median(xs.map((x) => x.rate))),
          cpuUsPerMsg: cpu.length ? round(median(cpu), 1) : null,
          busyLoadCpu: median(xs.map((x) => x.busyLoadCpu)),
          busyProxyCpu: median(xs.map((x) => x.busyProxyCpu)),
        };
        const m = row[k] as {
          rate: number;
          cpuUsPerMsg: number | null;
          busyLoadCpu: number;
          busyProxyCpu: number;
        };
        console.log(
          `  ${h.padEnd(8)} c=${String(c).padEnd(4)} ${LABEL[k].padEnd(32)} ${(m.rate / 1000).toFixed(1).padStart(6)}k  ${String(m.cpuUsPerMsg ?? '—').padStart(5)} µs  ${m.busyLoadCpu}% / ${m.busyProxyCpu}%`,
        );
      }
      const rate = (k: Kind) => (row[k] as { rate: number }).rate;
      row.ours_over_chp = round(rate('ours') / rate('chp'));
      row.ours_over_bare = round(rate('ours') / rate('bare'));
      row.chp_over_bare = round(rate('chp') / rate('bare'));
      summary[`${h}_c${c}`] = row;
    }
  }
  const out = {
    bench: 'ws-ceiling',
    startedAt: new Date().toISOString(),
    machine: { cpus: os.cpus().length, node: process.version, kernel: os.release() },
    method: {
      seconds: SECONDS,
      warmup: WARMUP,
      rounds: ROUNDS,
      pinning: { proxy: CPU_PROXY, loadAndApp: CPU_LOAD },
    },
    samples,
    summary,
  };
  if (process.env.BENCH_NO_SAVE !== '1') {
    const dir = path.join(ROOT, 'bench', 'results');
    fs.mkdirSync(dir, { recursive: true });
    const stamp = out.startedAt.replace(/:/g, '-').replace(/\..*$/, '');
    const body = `${JSON.stringify(out, null, 1)}\n`;
    fs.writeFileSync(path.join(dir, `ws-ceiling-${stamp}.json`), body);
    fs.writeFileSync(path.join(dir, 'ws-ceiling-latest.json'), body);
    console.log(`results: bench/results/ws-ceiling-${stamp}.json (and ws-ceiling-latest.json)`);
  }
  console.log(JSON.stringify(summary));
}

process.on('SIGINT', () => void stopAll().then(() => process.exit(130)));
process.on('SIGTERM', () => void stopAll().then(() => process.exit(143)));
try {
  await main();
} finally {
  await stopAll();
}
