// Prometheus metrics. One registry per gateway (tests start several in one process).
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
  readonly sessions = new Gauge({
    name: 'atrium_sessions',
    help: 'Sessions by state and cluster',
    labelNames: ['state', 'cluster'] as const,
    registers: [this.registry],
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
