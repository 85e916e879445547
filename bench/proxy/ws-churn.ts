// Memory after WebSocket churn: does a proxy give back what 50,000 WebSocket open/close cycles took,
// when some of the apps die mid-stream?
//
// One proxy process (pinned to the proxy CPU, --expose-gc, memory reported over IPC) in front of two
// apps: a steady one and a flaky one that drops every connection right after its first echo and is
// SIGKILLed and restarted on the same port every 1.5 s. A separate load process runs the cycles (10%
// to the flaky app). Readings (each after full GCs and a settle): right after start; after a warm-up
// of 2,000 cycles (the baseline: lazily compiled code and first-use caches are in it); after the
// 50,000 cycles. Open sockets and handles are read at the same points.
//   tsx bench/proxy/ws-churn.ts [ours|chp ...]     (env BENCH_CYCLES, BENCH_CHURN_CONCURRENCY)
import {
  type Child,
  CPU_LOAD,
  nodeArgv,
  type ProbeReport,
  probe,
  round,
  rssOf,
  sleep,
  start,
  stop,
  stopAll,
  waitForJson,
} from './lib.ts';
import { routePath, startTarget, startUpstream, type TargetKind, type Upstream } from './targets.ts';

export interface ChurnResult {
  kind: TargetKind;
  cycles: number;
  concurrency: number;
  load: Record<string, number | string>;
  flakyRestarts: number;
  fresh: ProbeReport & { procRss: number | null };
  start: ProbeReport & { procRss: number | null };
  end: ProbeReport & { procRss: number | null };
  /** A second reading 5 s later, taken only when sockets were still open at `end`. */
  late?: ProbeReport & { procRss: number | null };
  rssRatio: number;
  heapRatio: number;
}

const STEADY = 'steady01';
const FLAKY = 'flaky001';

async function reading(child: Child) {
  await sleep(1000);
  const r = await probe(child);
  return { ...r, procRss: rssOf(child.pid) };
}

async function runLoad(
  base: string,
  headers: Record<string, string>,
  cycles: number,
  concurrency: number,
): Promise<Record<string, number | string>> {
  const ws = base.replace(/^http/, 'ws');
  const args = [
    'churn',
    '--url',
    `${ws}${routePath(STEADY)}ws`,
    '--flaky-url',
    `${ws}${routePath(FLAKY)}ws`,
    '--cycles',
    String(cycles),
    '--concurrency',
    String(concurrency),
    '--flaky-share',
    '0.1',
  ];
  for (const [k, v] of Object.entries(headers)) args.push('--header', `${k}: ${v}`);
  const c = start('ws-churn-load', nodeArgv('ws-load.ts', args), { cpu: CPU_LOAD });
  const { result } = await waitForJson<{ result: Record<string, number | string> }>(c, 'result', 600_000);
  await c.exited;
  return result;
}

export async function runChurn(
  kind: Exclude<TargetKind, 'direct'>,
  opts: { cycles?: number; concurrency?: number; log?: (s: string) => void } = {},
): Promise<ChurnResult> {
  const cycles = opts.cycles ?? Number(process.env.BENCH_CYCLES ?? 50_000);
  const concurrency = opts.concurrency ?? Number(process.env.BENCH_CHURN_CONCURRENCY ?? 50);
  const log = opts.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const steady = await startUpstream();
  let flaky: Upstream = await startUpstream({ flaky: true });
  const flakyPort = flaky.port;
  const target = await startTarget(kind, [
    { id: STEADY, port: steady.port },
    { id: FLAKY, port: flakyPort },
  ]);
  const child = target.child!;
  let restarts = 0;
  let killing = true;
  // The flaky app is SIGKILLed (its open connections are closed by the kernel, mid-stream) and started
  // again on the same port, over and over, while the cycles run.
  const killer = (async () => {
    while (killing) {
      await sleep(1500);
      if (!killing) break;
      await stop(flaky.child, 1000, 'SIGKILL');
      await sleep(200);
      flaky = await startUpstream({ port: flakyPort, flaky: true });
      restarts++;
    }
  })();
  try {
    const fresh = await reading(child);
    log(`  ${kind}: warm-up 2,000 cycles`);
    await runLoad(target.base, target.headers, Math.min(2000, cycles), concurrency);
    const before = await reading(child);
    log(`  ${kind}: ${cycles.toLocaleString('en')} open/close cycles, concurrency ${concurrency}`);
    const load = await runLoad(target.base, target.headers, cycles, concurrency);
    killing = false;
    await killer;
    await sleep(1000);
    const after = await reading(child);
    const stillOpen = (p: ProbeReport) => (p.openWebSockets ?? 0) > 0 || p.handles > before.handles;
    let late: ChurnResult['late'];
    if (stillOpen(after)) {
      await sleep(4000);
      late = await reading(child);
    }
    return {
      kind,
      cycles,
      concurrency,
      load,
      flakyRestarts: restarts,
      fresh,
      start: before,
      end: after,
      ...(late ? { late } : {}),
      rssRatio: round(after.rss / before.rss, 3),
      heapRatio: round(after.heapUsed / before.heapUsed, 3),
    };
  } finally {
    killing = false;
    await killer.catch(() => undefined);
    await target.close();
    await stop(flaky.child);
    await stop(steady.child);
  }
}

const mb = (n: number) => `${(n / 1048576).toFixed(1)} MB`;

export function describeChurn(r: ChurnResult): string {
  const types = (p: ProbeReport) =>
    p.handleTypes
      ? ` (${Object.entries(p.handleTypes)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')})`
      : '';
  const extra = (p: ProbeReport) =>
    p.openWebSockets === undefined
      ? `handles ${p.handles}${types(p)}`
      : `handles ${p.handles}${types(p)}, open WS ${p.openWebSockets}, client conns ${p.serverConnections}, agent active ${p.agentSockets} free ${p.agentFreeSockets}`;
  return [
    `${r.kind}: ${r.cycles} cycles in ${Number(r.load.seconds).toFixed(1)} s (ok ${r.load.ok}, flaky dropped ${r.load.flakyDropped}, refused ${r.load.refused}, errors ${r.load.errors}, stuck ${r.load.stuck}; flaky app restarted ${r.flakyRestarts}×)`,
    `  fresh:  RSS ${mb(r.fresh.rss)}, heap ${mb(r.fresh.heapUsed)}; ${extra(r.fresh)}`,
    `  start:  RSS ${mb(r.start.rss)}, heap ${mb(r.start.heapUsed)}; ${extra(r.start)}`,
    `  end:    RSS ${mb(r.end.rss)}, heap ${mb(r.end.heapUsed)}; ${extra(r.end)}`,
    ...(r.late ? [`  5 s later: RSS ${mb(r.late.rss)}, heap ${mb(r.late.heapUsed)}; ${extra(r.late)}`] : []),
    `  end/start: RSS ×${r.rssRatio}, heap ×${r.heapRatio}`,
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const kinds = (process.argv.slice(2).length ? process.argv.slice(2) : ['ours']) as Exclude<
    TargetKind,
    'direct'
  >[];
  process.on('SIGINT', () => void stopAll().then(() => process.exit(130)));
  try {
    for (const k of kinds) {
      const r = await runChurn(k);
      process.stdout.write(`${describeChurn(r)}\n`);
      process.stdout.write(`${JSON.stringify(r)}\n`);
    }
  } finally {
    await stopAll();
  }
}
