// Prometheus metrics. One registry per gateway (tests start several in one process).
import { timingSafeEqual } from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
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
  readonly sessionTransitions = new Counter({
    name: 'atrium_session_transitions_total',
    help: 'Session state changes',
    labelNames: ['to', 'cluster'] as const,
    registers: [this.registry],
  });
  readonly spawnDuration = new Histogram({
    name: 'atrium_spawn_duration_seconds',
    help: 'From request to app ready',
    labelNames: ['cluster', 'app'] as const,
    buckets: [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800],
    registers: [this.registry],
  });
  readonly proxyRequests = new Counter({
    name: 'atrium_proxy_requests_total',
    help: 'HTTP requests under /user/',
    registers: [this.registry],
  });
  readonly openWebSockets = new Gauge({
    name: 'atrium_proxy_open_websockets',
    help: 'WebSockets open through the proxy',
    registers: [this.registry],
  });
  readonly pollDuration = new Histogram({
    name: 'atrium_scheduler_poll_duration_seconds',
    help: 'Duration of one scheduler poll',
    labelNames: ['cluster'] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
    registers: [this.registry],
  });
  readonly pollFailures = new Counter({
    name: 'atrium_scheduler_poll_failures_total',
    help: 'Polls that could not reach the scheduler',
    labelNames: ['cluster'] as const,
    registers: [this.registry],
  });
  readonly schedulerPolls = new Counter({
    name: 'atrium_scheduler_polls_total',
    help: 'Polls of the scheduler (one per interval per cluster, shared by every session and page)',
    labelNames: ['cluster'] as const,
    registers: [this.registry],
  });
  readonly schedulerCalls = new Counter({
    name: 'atrium_scheduler_calls_total',
    help: 'Scheduler commands or API calls made by polls',
    labelNames: ['cluster'] as const,
    registers: [this.registry],
  });
  readonly signIns = new Counter({
    name: 'atrium_signins_total',
    help: 'Sign-in attempts',
    labelNames: ['method', 'result'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'atrium_process_' });
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
