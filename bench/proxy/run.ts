// npm run bench:proxy — one trivial app behind nothing, the Atrium gateway (straight to the app, through
// an agent's relay, and through a dial-out tunnel; the agent's side in its own process beside the app)
// and configurable-http-proxy 5.3 (as JupyterHub runs it, and with its keep-alive option), in one run:
//   HTTP: wrk -t1 -c{10,50,200} --latency: requests/s, p99, and the proxy's CPU time per request.
//   WebSocket: 64-byte echo round trips/s and p99 (bench/proxy/ws-load.ts) at 10, 50 and 200 connections.
//   Memory: 50,000 WebSocket open/close cycles, some to an app that dies (bench/proxy/ws-churn.ts).
//
// Method: every target runs at once, each proxy alone on CPU1 (taskset; an idle proxy costs nothing),
// wrk, the load generator and the app on CPU0. Cells are measured in rounds, and inside a round the
// targets take turns in a rotating order, so a burst of other work on the machine hits all of them
// alike; each figure is the median over the rounds (min–max kept in the JSON). Every process is
// started and stopped by PID.
//
// Env: BENCH_SECONDS (measured seconds per cell, 10: wrk opens its connections over up to ~1.5 s on
//      this machine and the first requests on late ones wait in the accept queue; in a 4 s cell that
//      start-up alone set the c=200 p99 of every proxy), BENCH_WARMUP (seconds before each cell, 1),
//      BENCH_ROUNDS (HTTP rounds, 3), BENCH_WS_ROUNDS (2), BENCH_HTTP_CONNS (10,50,200),
//      BENCH_WS_CONNS (10,50,200), BENCH_TARGETS (direct,ours,ours_relay,ours_tunnel,chp,chp_keepalive),
//      BENCH_CYCLES (50000), BENCH_CHURN (ours,chp; "none" to skip), BENCH_NO_PIN=1, BENCH_NO_SAVE=1,
//      BENCH_PROFILE=1 (CPU profile of the gateway during its first c=50 HTTP cell, in the temp dir).
// Quick smoke run: BENCH_SECONDS=1 BENCH_WARMUP=0 BENCH_ROUNDS=1 BENCH_WS_ROUNDS=1 BENCH_CYCLES=2000
// Needs Debian's wrk (/usr/bin/wrk): installed with apt-get when run as root, else the exact apt-get
// command is printed and the run stops. Everything else comes from node_modules.
// Output: tables, bench/results/proxy-<date>.json and proxy-latest.json, and as the last line a JSON
// summary with the ratios and the goals.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensurePackages } from '../../src/system/packages.ts';
import {
  ask,
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
  WRK_NEED,
  type WrkResult,
  waitForJson,
  wrk,
} from './lib.ts';
import {
  checkTarget,
  LABELS,
  routePath,
  startTarget,
  startUpstream,
  TARGET_KINDS,
  type Target,
  type TargetKind,
} from './targets.ts';
import { type ChurnResult, describeChurn, runChurn } from './ws-churn.ts';

const SECONDS = envNumber(process.env.BENCH_SECONDS, 10);
const WARMUP = envNumber(process.env.BENCH_WARMUP, 1);
const ROUNDS = envNumber(process.env.BENCH_ROUNDS, 3);
const WS_ROUNDS = envNumber(process.env.BENCH_WS_ROUNDS, 2);
const list = (v: string | undefined, d: string) =>
  (v ?? d)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
const HTTP_CONNS = list(process.env.BENCH_HTTP_CONNS, '10,50,200').map(Number);
const WS_CONNS = list(process.env.BENCH_WS_CONNS, '10,50,200').map(Number);
const KINDS = list(process.env.BENCH_TARGETS, TARGET_KINDS.join(',')) as TargetKind[];
const CHURN = list(process.env.BENCH_CHURN, 'ours,chp').filter((k) => k !== 'none') as Exclude<
  TargetKind,
  'direct'
>[];
const SESSION = 'bench0001';
/** BENCH_PROFILE=1: a CPU profile of the gateway during its first c=50 HTTP cell (written to the temp dir). */
const PROFILE = process.env.BENCH_PROFILE === '1';

const log = (s: string) => process.stdout.write(`${s}\n`);

interface HttpSample extends WrkResult {
  /** CPU time of the proxy process per request, µs (null for direct). */
  cpuUsPerReq: number | null;
  load1: number;
}
interface WsSample {
  rate: number;
  p50Ms: number;
  p99Ms: number;
  opened: number;
  errors: number;
  messages: number;
  cpuUsPerMsg: number | null;
  load1: number;
}

async function wsEcho(t: Target, connections: number, seconds: number, warmup: number): Promise<WsSample> {
  const args = [
    'echo',
    '--url',
    `${t.base.replace(/^http/, 'ws')}${routePath(SESSION)}ws`,
    '--connections',
    String(connections),
    '--seconds',
    String(seconds),
    '--warmup',
    String(warmup),
  ];
  for (const [k, v] of Object.entries(t.headers)) args.push('--header', `${k}: ${v}`);
  const c = start('ws-load', nodeArgv('ws-load.ts', args), { cpu: CPU_LOAD });
  // The proxy's CPU is read around the whole load process; the warm-up share is taken off pro rata.
  const cpu0 = t.child ? cpuMicros(t.child.pid) : null;
  const { result } = await waitForJson<{ result: Omit<WsSample, 'cpuUsPerMsg' | 'load1'> }>(
    c,
    'result',
    (seconds + warmup + 60) * 1000,
  );
  const cpu1 = t.child ? cpuMicros(t.child.pid) : null;
  await c.exited;
  if (result.opened !== connections) throw new Error(`${t.kind}: only ${result.opened} WebSockets opened`);
  const total = result.messages * ((seconds + warmup) / seconds);
  return {
    ...result,
    cpuUsPerMsg: cpu0 !== null && cpu1 !== null ? round((cpu1 - cpu0) / total, 1) : null,
    load1: round(os.loadavg()[0]!, 2),
  };
}

async function httpCell(t: Target, c: number, profileTo?: string): Promise<HttpSample> {
  const url = t.base + routePath(SESSION);
  const headers = Object.entries(t.headers).map(([k, v]) => `${k}: ${v}`);
  if (WARMUP > 0) await wrk(url, c, WARMUP, headers);
  if (profileTo && t.child) await ask(t.child, { type: 'profile-start' });
  const cpu0 = t.child ? cpuMicros(t.child.pid) : null;
  const r = await wrk(url, c, SECONDS, headers);
  const cpu1 = t.child ? cpuMicros(t.child.pid) : null;
  if (profileTo && t.child) {
    await ask(t.child, { type: 'profile-stop', file: profileTo });
    log(`  CPU profile of ${t.kind} at c=${c} (${r.requests} requests): ${profileTo}`);
  }
  if (r.non2xx || r.socketErrors)
    log(`  warning: ${t.kind} c=${c}: ${r.non2xx} non-2xx, ${r.socketErrors} socket errors`);
  return {
    ...r,
    cpuUsPerReq: cpu0 !== null && cpu1 !== null && r.requests ? round((cpu1 - cpu0) / r.requests, 1) : null,
    load1: round(os.loadavg()[0]!, 2),
  };
}

interface Agg {
  rate: number;
  min: number;
  max: number;
  p99: number;
  cpu: number | null;
  n: number;
}
function aggregate<T>(
  samples: T[],
  rate: (s: T) => number,
  p99: (s: T) => number,
  cpu: (s: T) => number | null,
): Agg {
  const rates = samples.map(rate);
  const cpus = samples.map(cpu).filter((x): x is number => x !== null);
  return {
    rate: round(median(rates), 0),
    min: round(Math.min(...rates), 0),
    max: round(Math.max(...rates), 0),
    p99: round(median(samples.map(p99)), 2),
    cpu: cpus.length ? round(median(cpus), 1) : null,
    n: samples.length,
  };
}

const fmtK = (n: number | undefined) =>
  n === undefined || !Number.isFinite(n) ? '—' : `${(n / 1000).toFixed(1)}k`;
const fmtMs = (n: number | undefined) =>
  n === undefined || !Number.isFinite(n) ? '—' : `${n < 10 ? n.toFixed(2) : n.toFixed(1)} ms`;
const ratio = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined || !b || !Number.isFinite(a) || !Number.isFinite(b)
    ? null
    : round(a / b, 2);

type Table = Partial<Record<TargetKind, Record<string, Agg>>>;

function printTable(title: string, unit: string, conns: number[], t: Table, cpuUnit: string): void {
  const head = [
    'target',
    ...conns.flatMap((c) => [`c=${c} ${unit} (min–max)`, `c=${c} p99`, `c=${c} ${cpuUnit}`]),
  ];
  const rows = KINDS.filter((k) => t[k]).map((k) => [
    LABELS[k],
    ...conns.flatMap((c) => {
      const a = t[k]?.[`c${c}`];
      return a
        ? [`${fmtK(a.rate)} (${fmtK(a.min)}–${fmtK(a.max)})`, fmtMs(a.p99), a.cpu === null ? '—' : `${a.cpu}`]
        : ['—', '—', '—'];
    }),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r.map((s, i) => (i === 0 ? s.padEnd(widths[i]!) : s.padStart(widths[i]!))).join('  ');
  log(`\n${title}`);
  log(line(head));
  log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) log(line(r));
}

function push<T>(m: Record<string, T[]>, key: string, v: T): void {
  const l = m[key];
  if (l) l.push(v);
  else m[key] = [v];
}

/** The targets in a different order each round, so none always runs first or last. */
const rotate = <T>(xs: T[], by: number) => xs.map((_, i) => xs[(i + by) % xs.length]!);

async function main(): Promise<void> {
  // wrk is a Debian package, not an npm one: installed here as root, else named with its apt-get line.
  if (ROUNDS > 0 && HTTP_CONNS.length > 0 && KINDS.length > 0 && !ensurePackages([WRK_NEED], log)) {
    process.exitCode = 1;
    return;
  }
  const startedAt = new Date();
  const loadBefore = os.loadavg();
  const httpCells = ROUNDS * HTTP_CONNS.length * KINDS.length * (SECONDS + WARMUP + 0.2);
  const wsCells = WS_ROUNDS * WS_CONNS.length * KINDS.length * (SECONDS + WARMUP + 0.8);
  log(
    `proxy benchmark: ${ROUNDS} HTTP and ${WS_ROUNDS} WebSocket rounds of ${WARMUP}s warm-up + ${SECONDS}s per cell; ` +
      `proxies on CPU${CPU_PROXY}, load and app on CPU${CPU_LOAD}; about ${Math.round((httpCells + wsCells) / 60 + CHURN.length * 0.8 + 0.5)} min`,
  );
  log(`load average before: ${loadBefore.map((x) => x.toFixed(2)).join(' ')}`);
  const upstream = await startUpstream();
  const targets = new Map<TargetKind, Target>();
  const http: Partial<Record<TargetKind, Record<string, HttpSample[]>>> = {};
  const ws: Partial<Record<TargetKind, Record<string, WsSample[]>>> = {};
  try {
    for (const kind of KINDS) {
      const t = await startTarget(kind, [{ id: SESSION, port: upstream.port }]);
      targets.set(kind, t);
      await checkTarget(t, SESSION);
      http[kind] = {};
      ws[kind] = {};
    }
    // First contact: JIT, connection pools, the gateway's session cache.
    for (const t of targets.values()) {
      await wrk(t.base + routePath(SESSION), 50, Math.max(WARMUP, 1) * 2, [`Cookie: ${t.headers.Cookie}`]);
    }
    for (let r = 0; r < ROUNDS; r++) {
      for (const c of HTTP_CONNS) {
        for (const kind of rotate(KINDS, r + c)) {
          const profile =
            PROFILE && kind === 'ours' && c === 50 && r === 0
              ? path.join(os.tmpdir(), `atrium-proxy-${Date.now()}.cpuprofile`)
              : undefined;
          const s = await httpCell(targets.get(kind)!, c, profile);
          push(http[kind]!, `c${c}`, s);
          log(
            `  round ${r + 1} http ${kind.padEnd(13)} c=${String(c).padEnd(3)} ${fmtK(s.rps).padStart(6)} req/s  p99 ${fmtMs(s.p99Ms).padStart(9)}` +
              `${s.cpuUsPerReq === null ? '' : `  ${s.cpuUsPerReq} µs CPU/req`}  (load ${s.load1})`,
          );
        }
      }
    }
    for (let r = 0; r < WS_ROUNDS; r++) {
      for (const c of WS_CONNS) {
        for (const kind of rotate(KINDS, r + c)) {
          const s = await wsEcho(targets.get(kind)!, c, SECONDS, WARMUP);
          push(ws[kind]!, `c${c}`, s);
          log(
            `  round ${r + 1} ws   ${kind.padEnd(13)} c=${String(c).padEnd(3)} ${fmtK(s.rate).padStart(6)} msg/s  p99 ${fmtMs(s.p99Ms).padStart(9)}` +
              `${s.cpuUsPerMsg === null ? '' : `  ${s.cpuUsPerMsg} µs CPU/msg`}  (load ${s.load1})`,
          );
        }
      }
    }
  } finally {
    for (const t of targets.values()) await t.close();
    await stop(upstream.child);
  }

  const churn: Partial<Record<TargetKind, ChurnResult>> = {};
  for (const kind of CHURN) {
    log(`\nmemory after WebSocket churn: ${kind}`);
    churn[kind] = await runChurn(kind, { log });
    log(describeChurn(churn[kind]!));
  }
  const loadAfter = os.loadavg();

  const httpAgg: Table = {};
  const wsAgg: Table = {};
  for (const k of KINDS) {
    httpAgg[k] = {};
    wsAgg[k] = {};
    for (const c of HTTP_CONNS) {
      const xs = http[k]?.[`c${c}`] ?? [];
      if (xs.length)
        httpAgg[k][`c${c}`] = aggregate(
          xs,
          (s) => s.rps,
          (s) => s.p99Ms,
          (s) => s.cpuUsPerReq,
        );
    }
    for (const c of WS_CONNS) {
      const xs = ws[k]?.[`c${c}`] ?? [];
      if (xs.length)
        wsAgg[k][`c${c}`] = aggregate(
          xs,
          (s) => s.rate,
          (s) => s.p99Ms,
          (s) => s.cpuUsPerMsg,
        );
    }
  }
  printTable(
    `HTTP through each target: median of ${ROUNDS} rounds (wrk -t1, ${SECONDS}s each)`,
    'req/s',
    HTTP_CONNS,
    httpAgg,
    'µs CPU/req',
  );
  printTable(
    `WebSocket echo, 64-byte round trips: median of ${WS_ROUNDS} rounds (${SECONDS}s each)`,
    'msg/s',
    WS_CONNS,
    wsAgg,
    'µs CPU/msg',
  );

  // Summary with ratios (medians).
  const g = (t: Table, k: TargetKind, c: number) => t[k]?.[`c${c}`];
  const p99s = (t: Table, c: number) => Object.fromEntries(KINDS.map((k) => [k, g(t, k, c)?.p99 ?? null]));
  const httpSummary: Record<string, Record<string, unknown>> = {};
  for (const c of HTTP_CONNS) {
    httpSummary[`c${c}`] = {
      ours_rps: g(httpAgg, 'ours', c)?.rate ?? null,
      chp_rps: g(httpAgg, 'chp', c)?.rate ?? null,
      chp_keepalive_rps: g(httpAgg, 'chp_keepalive', c)?.rate ?? null,
      direct_rps: g(httpAgg, 'direct', c)?.rate ?? null,
      ours_over_chp: ratio(g(httpAgg, 'ours', c)?.rate, g(httpAgg, 'chp', c)?.rate),
      ours_over_chp_keepalive: ratio(g(httpAgg, 'ours', c)?.rate, g(httpAgg, 'chp_keepalive', c)?.rate),
      ours_over_direct: ratio(g(httpAgg, 'ours', c)?.rate, g(httpAgg, 'direct', c)?.rate),
      relay_rps: g(httpAgg, 'ours_relay', c)?.rate ?? null,
      tunnel_rps: g(httpAgg, 'ours_tunnel', c)?.rate ?? null,
      tunnel_over_relay: ratio(g(httpAgg, 'ours_tunnel', c)?.rate, g(httpAgg, 'ours_relay', c)?.rate),
      p99_ms: p99s(httpAgg, c),
      cpu_us_per_req: { ours: g(httpAgg, 'ours', c)?.cpu ?? null, chp: g(httpAgg, 'chp', c)?.cpu ?? null },
    };
  }
  const wsSummary: Record<string, Record<string, unknown>> = {};
  for (const c of WS_CONNS) {
    wsSummary[`c${c}`] = {
      ours_mps: g(wsAgg, 'ours', c)?.rate ?? null,
      chp_mps: g(wsAgg, 'chp', c)?.rate ?? null,
      chp_keepalive_mps: g(wsAgg, 'chp_keepalive', c)?.rate ?? null,
      direct_mps: g(wsAgg, 'direct', c)?.rate ?? null,
      ours_over_chp: ratio(g(wsAgg, 'ours', c)?.rate, g(wsAgg, 'chp', c)?.rate),
      ours_over_direct: ratio(g(wsAgg, 'ours', c)?.rate, g(wsAgg, 'direct', c)?.rate),
      relay_mps: g(wsAgg, 'ours_relay', c)?.rate ?? null,
      tunnel_mps: g(wsAgg, 'ours_tunnel', c)?.rate ?? null,
      tunnel_over_relay: ratio(g(wsAgg, 'ours_tunnel', c)?.rate, g(wsAgg, 'ours_relay', c)?.rate),
      p99_ms: p99s(wsAgg, c),
    };
  }
  const memSummary: Record<string, unknown> = {};
  for (const [k, r] of Object.entries(churn)) {
    memSummary[k] = {
      cycles: r.cycles,
      rss_start_mb: round(r.start.rss / 1048576, 1),
      rss_end_mb: round(r.end.rss / 1048576, 1),
      rss_ratio: r.rssRatio,
      heap_start_mb: round(r.start.heapUsed / 1048576, 1),
      heap_end_mb: round(r.end.heapUsed / 1048576, 1),
      heap_ratio: r.heapRatio,
      handles_before: r.start.handles,
      handles_after: r.end.handles,
      ...(r.end.openWebSockets !== undefined
        ? {
            open_ws_before: r.start.openWebSockets,
            open_ws_after: r.end.openWebSockets,
            client_conns_after: r.end.serverConnections,
            agent_sockets_after: (r.end.agentSockets ?? 0) + (r.end.agentFreeSockets ?? 0),
          }
        : {}),
      stuck: r.load.stuck,
    };
  }
  const cellsMeet = (s: Record<string, Record<string, unknown>>, key: string, min: number) =>
    Object.values(s).every((x) => typeof x[key] === 'number' && (x[key] as number) >= min);
  const goals: Record<string, boolean | null> = {
    http_ours_over_chp_ge_1_5:
      httpAgg.ours && httpAgg.chp ? cellsMeet(httpSummary, 'ours_over_chp', 1.5) : null,
    http_ours_p99_below_chp:
      httpAgg.ours && httpAgg.chp
        ? HTTP_CONNS.every((c) => (g(httpAgg, 'ours', c)?.p99 ?? Infinity) < (g(httpAgg, 'chp', c)?.p99 ?? 0))
        : null,
    ws_ours_over_chp_ge_1_1: wsAgg.ours && wsAgg.chp ? cellsMeet(wsSummary, 'ours_over_chp', 1.1) : null,
    // Issue 17: the dial-out tunnel carries at least 0.7x the relay's throughput, HTTP and WebSocket.
    tunnel_over_relay_ge_0_7:
      httpAgg.ours_tunnel && httpAgg.ours_relay
        ? cellsMeet(httpSummary, 'tunnel_over_relay', 0.7) && cellsMeet(wsSummary, 'tunnel_over_relay', 0.7)
        : null,
    memory_ours_within_10pct: churn.ours
      ? churn.ours.rssRatio <= 1.1 && churn.ours.heapRatio <= 1.1 && Number(churn.ours.load.stuck) === 0
      : null,
  };
  const summary = { http: httpSummary, ws: wsSummary, memory: memSummary, goals };

  const full = {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      memGb: round(os.totalmem() / 2 ** 30, 1),
      node: process.version,
      kernel: os.release(),
      loadAverageBefore: loadBefore.map((x) => round(x, 2)),
      loadAverageAfter: loadAfter.map((x) => round(x, 2)),
    },
    method: {
      measuredSeconds: SECONDS,
      warmupSeconds: WARMUP,
      httpRounds: ROUNDS,
      wsRounds: WS_ROUNDS,
      aggregation: 'median over rounds; targets interleaved in a rotating order within each round',
      pinning: process.env.BENCH_NO_PIN === '1' ? 'none' : { proxy: CPU_PROXY, loadAndApp: CPU_LOAD },
      http: 'wrk 4.1 -t1 -c<n> --latency, the same Cookie header (the gateway session, a look-alike elsewhere)',
      ws: '64-byte echo ping-pong per connection (bench/proxy/ws-load.ts)',
      churn: 'bench/proxy/ws-churn.ts: 2,000 warm-up cycles, then the measured cycles, 10% to a flaky app',
      chp: 'configurable-http-proxy 5.3.0 --ip --port --api-ip --api-port --error-target, CONFIGPROXY_AUTH_TOKEN; route via POST /api/routes',
    },
    samples: { http, ws },
    http: httpAgg,
    ws: wsAgg,
    churn,
    summary,
  };
  if (process.env.BENCH_NO_SAVE !== '1') {
    const dir = path.join(ROOT, 'bench', 'results');
    fs.mkdirSync(dir, { recursive: true });
    const stamp = startedAt.toISOString().replace(/[:]/g, '-').replace(/\..*$/, '');
    const text = `${JSON.stringify(full, null, 2)}\n`;
    fs.writeFileSync(path.join(dir, `proxy-${stamp}.json`), text);
    fs.writeFileSync(path.join(dir, 'proxy-latest.json'), text);
    log(`\nresults: bench/results/proxy-${stamp}.json (and proxy-latest.json)`);
  }
  log(`load average after: ${loadAfter.map((x) => x.toFixed(2)).join(' ')}`);
  log(
    `goals: ${Object.entries(goals)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
  );
  log(JSON.stringify(summary));
}

process.on('SIGINT', () => void stopAll().then(() => process.exit(130)));
process.on('SIGTERM', () => void stopAll().then(() => process.exit(143)));
try {
  await main();
} finally {
  await stopAll();
}
