// Prometheus metrics. One registry per gateway (tests start several in one process).
import { timingSafeEqual } from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { JobInfo } from '../core/cluster-state.ts';
import { isSessionJob } from '../jobs/view.ts';

/** How often the event loop's delay is sampled (a timer's lateness; 20 samples a second cost nothing). */
const LOOP_SAMPLE_MS = 50;

export class Metrics {
  readonly registry = new Registry();
  /** A counter in this registry (declared after `registry`: fields initialise in order). */
  private counter<L extends string = 'cluster'>(
    name: string,
    help: string,
    labelNames: readonly L[] = ['cluster'] as unknown as L[],
  ): Counter<L> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }
  /** Counts active sessions by state and cluster at each scrape (set by the admin feature, from the database). */
  sessionCounts: (() => Promise<{ state: string; cluster: string; count: number }[]>) | null = null;
  readonly sessions: Gauge<'state' | 'cluster'> = new Gauge({
    name: 'atrium_sessions',
    help: 'Active sessions by state and cluster',
    labelNames: ['state', 'cluster'] as const,
    registers: [this.registry],
    collect: async () => {
      if (!this.sessionCounts) return;
      const counts = await this.sessionCounts();
      this.sessions.reset();
      for (const c of counts) this.sessions.set({ state: c.state, cluster: c.cluster }, c.count);
    },
  });
  readonly sessionTransitions = this.counter('atrium_session_transitions_total', 'Session state changes', [
    'to',
    'cluster',
  ]);
  readonly spawnDuration = new Histogram({
    name: 'atrium_spawn_duration_seconds',
    help: 'From request to app ready',
    labelNames: ['cluster', 'app'] as const,
    buckets: [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800],
    registers: [this.registry],
  });
  /** The jobs of each cluster's latest good poll (set by the gateway; no scheduler call or query per scrape). */
  polledJobs: () => Iterable<{ cluster: string; jobs: readonly JobInfo[] }> = () => [];
  readonly jobs: Gauge<'cluster' | 'state' | 'kind'> = new Gauge({
    name: 'atrium_jobs',
    help: "Jobs the latest poll saw, every user's, by cluster, state and kind (session: Atrium's sessions; batch: the rest)",
    labelNames: ['cluster', 'state', 'kind'] as const,
    registers: [this.registry],
    collect: () => {
      this.jobs.reset();
      for (const { cluster, jobs } of this.polledJobs()) {
        const counts = new Map<string, number>();
        for (const j of jobs) {
          const key = `${j.state}\t${isSessionJob(j) ? 'session' : 'batch'}`;
          counts.set(key, (counts.get(key) ?? 0) + 1);
        }
        for (const [key, n] of counts) {
          const [state = '', kind = ''] = key.split('\t');
          this.jobs.set({ cluster, state, kind }, n);
        }
      }
    },
  });
  /** Open live-event streams (set by the gateway: the event bus's subscribers). */
  sseClientCount: () => number = () => 0;
  readonly sseClients: Gauge = new Gauge({
    name: 'atrium_sse_clients',
    help: 'Live-event streams (server-sent events, /api/events) open',
    registers: [this.registry],
    collect: () => this.sseClients.set(this.sseClientCount()),
  });
  readonly proxyRequests = this.counter('atrium_proxy_requests_total', 'HTTP requests under /user/', []);
  readonly openWebSockets = new Gauge({
    name: 'atrium_proxy_open_websockets',
    help: 'WebSockets open through the proxy',
    registers: [this.registry],
  });
  readonly pollDuration = new Histogram({
    name: 'atrium_scheduler_poll_duration_seconds',
    help: 'Duration of one scheduler poll (the scheduler commands and their parsing)',
    labelNames: ['cluster'] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
    registers: [this.registry],
  });
  readonly pollApplyDuration = new Histogram({
    name: 'atrium_scheduler_poll_apply_duration_seconds',
    help: "What the gateway does with one poll: sessions' and jobs' state changes, database writes, live events",
    labelNames: ['cluster'] as const,
    buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
    registers: [this.registry],
  });
  readonly pollFailures = this.counter(
    'atrium_scheduler_poll_failures_total',
    'Polls that could not reach the scheduler',
  );
  readonly schedulerPolls = this.counter(
    'atrium_scheduler_polls_total',
    'Polls of the scheduler (one per interval per cluster, shared by every session and page)',
  );
  readonly schedulerCalls = this.counter(
    'atrium_scheduler_calls_total',
    'Scheduler commands or API calls made by polls',
  );
  readonly signIns = this.counter('atrium_signins_total', 'Sign-in attempts', ['method', 'result']);

  /**
   * A timer's lateness, sampled all the time: a cumulative histogram that several scrapers can read and
   * rate() can window (prom-client's `atrium_process_nodejs_eventloop_lag_p99_seconds` is reset at
   * every scrape and includes its 10 ms resolution).
   */
  readonly eventLoopDelay = new Histogram({
    name: 'atrium_event_loop_delay_seconds',
    help: `How late the event loop ran a timer (sampled every ${LOOP_SAMPLE_MS} ms)`,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  private readonly loopTimer: NodeJS.Timeout;

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'atrium_process_' });
    let last = performance.now();
    this.loopTimer = setInterval(() => {
      const now = performance.now();
      this.eventLoopDelay.observe(Math.max(0, now - last - LOOP_SAMPLE_MS) / 1000);
      last = now;
    }, LOOP_SAMPLE_MS);
    this.loopTimer.unref();
  }

  close(): void {
    clearInterval(this.loopTimer);
  }
}

/** Who may read /metrics: a client address in `allowFrom` (addresses or CIDR networks), or the bearer token. */
export function metricsAllowed(
  cfg: { allowFrom: string[]; token?: string },
  ip: string,
  authorization: string | undefined,
): boolean {
  if (cfg.token && authorization) {
    const sent = Buffer.from(authorization.replace(/^Bearer\s+/i, ''));
    const want = Buffer.from(cfg.token);
    if (sent.length === want.length && timingSafeEqual(sent, want)) return true;
  }
  const list = new BlockList();
  for (const entry of cfg.allowFrom) {
    const [addr, bits] = entry.split('/');
    const type = isIP(addr ?? '') === 6 ? 'ipv6' : 'ipv4';
    if (!addr || !isIP(addr)) continue;
    if (bits !== undefined) list.addSubnet(addr, Number(bits), type);
    else list.addAddress(addr, type);
  }
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(ip)?.[1];
  const v = mapped ?? ip;
  const kind = isIP(v);
  return kind !== 0 && list.check(v, kind === 6 ? 'ipv6' : 'ipv4');
}
