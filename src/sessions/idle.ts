// Idle culling: a running session nobody uses is stopped after the site's idle minutes, judged by what
// each of its apps really does, not by whether a tab is open (JupyterHub's culler judges by proxy
// traffic, so it stops running work and keeps idle sessions whose tab polls: jupyterhub issue 1498,
// idle-culler issue 10). The signals, per app (idle.appSignals):
//   jupyter   its kernels through Jupyter's API: a busy kernel is never idle, else the latest
//             last_activity of its kernels and terminals; saves and other writes through the gateway
//   terminal  keystrokes in Atrium's terminal (its /activity answer)
//   vnc       key, pointer and clipboard events through the gateway's desktop bridge (rfb-input.ts)
//   traffic   requests and WebSocket messages from the browser through the proxy (VS Code, Shiny...)
// A session is as active as its most active app. Warned `idle.warnMinutes` before, stopped cleanly
// with the reason "stopped after N minutes idle". The clock lives in memory: after a gateway restart
// every session's clock starts again (never a stop for idleness the gateway did not see).
import http from 'node:http';
import type { Logger } from 'pino';
import type { IdleStatus } from '../api/sessions.ts';
import type { AppDefinition } from '../apps/types.ts';
import type { IdleConfig, IdleSignalName } from '../config/schema.ts';
import type { SessionRequest } from '../core/request.ts';
import type { QueueInfo, SessionRow } from '../db/sessions.ts';
import { parseUserPath, type Route, type RouteEndpoint } from '../proxy/routes.ts';
import { agentFor } from '../proxy/upstream.ts';

// ---- what the proxy and the desktop bridge saw ------------------------------------------------------

export type ActivityKind = 'read' | 'write' | 'ws' | 'input';

/** The last time (ms) the browser did each kind of thing with each app of each session. */
export class ActivityBoard {
  private readonly last = new Map<string, Partial<Record<ActivityKind, number>>>();
  /** Keys touched here since the last takeFresh(): what the other gateways have not heard of yet. */
  private readonly fresh = new Set<string>();

  private key(sessionId: string, app: string | undefined): string {
    return `${sessionId}/${app ?? ''}`;
  }

  /** `local: false` for what another gateway saw: it is not passed on again. */
  touch(
    sessionId: string,
    app: string | undefined,
    kind: ActivityKind,
    now = Date.now(),
    local = true,
  ): void {
    const k = this.key(sessionId, app);
    if (local) this.fresh.add(k);
    let e = this.last.get(k);
    if (!e) {
      e = {};
      this.last.set(k, e);
    }
    // The latest wins: what other gateways saw arrives late (src/server/shared.ts).
    if ((e[kind] ?? 0) < now) e[kind] = now;
  }

  /**
   * What was touched here since the last call, for the other gateways sharing the database:
   * [session, app, kind, at]. By when it was recorded, not by `at`: an activity reported with an
   * earlier time (a late event) is passed on too.
   */
  takeFresh(): [string, string | undefined, ActivityKind, number][] {
    const out: [string, string | undefined, ActivityKind, number][] = [];
    for (const k of this.fresh) {
      const e = this.last.get(k);
      if (!e) continue;
      const slash = k.indexOf('/');
      const app = k.slice(slash + 1) || undefined;
      for (const [kind, at] of Object.entries(e) as [ActivityKind, number][])
        out.push([k.slice(0, slash), app, kind, at]);
    }
    this.fresh.clear();
    return out;
  }

  /** For hooks that know an app by its address (/user/<name>/<session>[.<app>]/). */
  touchPrefix(prefix: string, kind: ActivityKind, now = Date.now()): void {
    const p = parseUserPath(prefix);
    if (p) this.touch(p.sessionId, p.app, kind, now);
  }

  /** The latest of `kinds` for one app of a session; null when none was seen. */
  get(sessionId: string, app: string | undefined, kinds: readonly ActivityKind[]): number | null {
    const e = this.last.get(this.key(sessionId, app));
    let out: number | null = null;
    for (const k of kinds) {
      const v = e?.[k];
      if (v !== undefined && (out === null || v > out)) out = v;
    }
    return out;
  }

  forget(sessionId: string): void {
    for (const k of this.last.keys()) if (k.startsWith(`${sessionId}/`)) this.last.delete(k);
    for (const k of this.fresh) if (k.startsWith(`${sessionId}/`)) this.fresh.delete(k);
  }
}

// ---- the policy (pure) ----------------------------------------------------------------------------

/** The idle minutes for a session: the first rule that matches, else `idle.minutes` (0: never). */
export function idleMinutesFor(
  cfg: IdleConfig,
  s: { cluster: string; partition: string | null; app: string },
): number {
  for (const r of cfg.rules) {
    if (r.cluster !== undefined && r.cluster !== s.cluster) continue;
    if (r.partition !== undefined && r.partition !== s.partition) continue;
    if (r.app !== undefined && r.app !== s.app) continue;
    return r.minutes;
  }
  return cfg.minutes;
}

const BUILTIN_SIGNALS: Record<string, IdleSignalName> = { jupyter: 'jupyter', terminal: 'terminal' };

/** How an app's activity is judged: the site's choice, the built-in one, vnc for desktops, else traffic. */
export function signalOf(cfg: IdleConfig, id: string, app: AppDefinition | undefined): IdleSignalName {
  return cfg.appSignals[id] ?? BUILTIN_SIGNALS[id] ?? (app?.transport === 'rfb' ? 'vnc' : 'traffic');
}

/** "1 minute", "30 minutes", "24 seconds" (fractions of a minute, for tests). */
export function describeMinutes(minutes: number): string {
  if (Number.isInteger(minutes)) return `${minutes} minute${minutes === 1 ? '' : 's'}`;
  if (minutes < 2) {
    const s = Math.round(minutes * 60);
    return `${s} second${s === 1 ? '' : 's'}`;
  }
  return `${Math.round(minutes * 10) / 10} minutes`;
}

export function idleReason(minutes: number): string {
  return `stopped after ${describeMinutes(minutes)} idle`;
}

/** The partition a session runs in, as far as the gateway knows it. */
export function partitionOf(row: SessionRow, defaultPartition: string | null): string | null {
  const req = JSON.parse(row.request) as SessionRequest;
  if (req.partition) return req.partition;
  const q = row.queue_info ? (JSON.parse(row.queue_info) as QueueInfo) : null;
  return q?.partition ?? defaultPartition;
}

// ---- asking the apps --------------------------------------------------------------------------------

export interface ProbeResult {
  /** A Jupyter kernel is executing (or starting): the session is in use whatever the clock says. */
  busy: boolean;
  /** The app's own latest activity, on the gateway's clock; null when it has none yet. */
  last: number | null;
}

const probeAgent = new http.Agent({ keepAlive: true, maxSockets: 4, timeout: 30_000 });

/** GET of an app's own path through its route (token headers and all), bypassing the proxy: JSON or null on 404. */
function getJson(
  ep: RouteEndpoint,
  path: string,
  timeoutMs: number,
): Promise<{ body: unknown; date: number | null }> {
  const full = ep.stripPrefix ? path : `${ep.prefix.replace(/\/$/, '')}${path}`;
  const t = ep.target;
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        ...(t.socketPath ? { socketPath: t.socketPath } : { host: t.host, port: t.port }),
        agent: agentFor(t) ?? probeAgent,
        path: full,
        method: 'GET',
        headers: { ...ep.headers, accept: 'application/json', host: 'localhost' },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const date = res.headers.date ? Date.parse(res.headers.date) : Number.NaN;
          if (res.statusCode === 404) return resolve({ body: null, date: null });
          if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode} from ${path}`));
          try {
            resolve({
              body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
              date: Number.isNaN(date) ? null : date,
            });
          } catch {
            reject(new Error(`not JSON from ${path}`));
          }
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${path}`)));
    req.on('error', reject);
    req.end();
  });
}

/** A timestamp of the app's clock on the gateway's, using its Date header (node clocks may differ). */
function onOurClock(iso: unknown, appNow: number | null, ourNow: number): number | null {
  if (typeof iso !== 'string') return null;
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return null;
  // The Date header has whole seconds: only a skew larger than that is corrected.
  const skew = appNow === null || Math.abs(ourNow - appNow) < 2000 ? 0 : ourNow - appNow;
  return Math.min(ourNow, t + skew);
}

/** Asks Jupyter (its kernels and terminals) or Atrium's terminal how active it is. */
export async function probeApp(
  ep: RouteEndpoint,
  signal: 'jupyter' | 'terminal',
  timeoutMs = 10_000,
): Promise<ProbeResult> {
  const now = Date.now();
  if (signal === 'terminal') {
    const { body } = await getJson(ep, '/activity', timeoutMs);
    const idle = (body as { idleSeconds?: unknown } | null)?.idleSeconds;
    return { busy: false, last: typeof idle === 'number' ? now - idle * 1000 : null };
  }
  // no_track_activity: asking must not count as activity for Jupyter's own culling either.
  const kernels = await getJson(ep, '/api/kernels?no_track_activity=1', timeoutMs);
  const terminals = await getJson(ep, '/api/terminals?no_track_activity=1', timeoutMs).catch(() => ({
    body: null,
    date: null,
  }));
  let busy = false;
  let last: number | null = null;
  const seen = (iso: unknown, date: number | null) => {
    const t = onOurClock(iso, date, now);
    if (t !== null && (last === null || t > last)) last = t;
  };
  for (const k of Array.isArray(kernels.body) ? kernels.body : []) {
    const kernel = k as { execution_state?: unknown; last_activity?: unknown };
    // A kernel that runs code, or is (re)starting (slow on a loaded node), is not idle.
    if (['busy', 'starting', 'restarting'].includes(String(kernel.execution_state))) busy = true;
    seen(kernel.last_activity, kernels.date);
  }
  for (const t of Array.isArray(terminals.body) ? terminals.body : [])
    seen((t as { last_activity?: unknown }).last_activity, terminals.date);
  return { busy, last };
}

// ---- the culler -----------------------------------------------------------------------------------

// What the gateway knows of a running session's idleness (the admin page and the owner see it): a
// type of the API contract.
export type { IdleStatus };

export interface IdleCullerDeps {
  cfg: IdleConfig;
  app(id: string): AppDefinition | undefined;
  /** The cluster's default partition (rules may name partitions). */
  defaultPartition(cluster: string): string | null;
  running(): Promise<SessionRow[]>;
  route(id: string): Route | undefined;
  board: ActivityBoard;
  probe(ep: RouteEndpoint, signal: 'jupyter' | 'terminal'): Promise<ProbeResult>;
  /** Tell the owner (page and browser) that the session stops in `minutesLeft` unless used. */
  warn(row: SessionRow, status: IdleStatus): Promise<void>;
  /** Activity after a warning: the owner's page drops it. */
  changed(row: SessionRow, status: IdleStatus): void;
  stop(row: SessionRow, reason: string, status: IdleStatus): Promise<void>;
  log: Logger;
  now?(): number;
}

interface Clock {
  since: number;
  warnedAt: number | null;
}

export class IdleCuller {
  private readonly clocks = new Map<string, Clock>();
  private readonly statuses = new Map<string, IdleStatus>();
  private readonly startedAt: number;
  private timer: NodeJS.Timeout | null = null;
  private running = false;

  constructor(private readonly d: IdleCullerDeps) {
    this.startedAt = this.now();
  }

  private now(): number {
    return this.d.now?.() ?? Date.now();
  }

  /** Whether any session can be stopped for idleness (a policy or a rule above 0). */
  get enabled(): boolean {
    return this.d.cfg.minutes > 0 || this.d.cfg.rules.some((r) => r.minutes > 0);
  }

  status(id: string): IdleStatus | undefined {
    return this.statuses.get(id);
  }

  all(): IdleStatus[] {
    return [...this.statuses.values()];
  }

  /** Looks every `idle.checkSeconds`, with or without a policy (the admin page shows idle time either way). */
  start(): void {
    if (this.timer) return;
    // A failed look (the database restarting) must not end the process: the next one tries again.
    this.timer = setInterval(
      () => void this.check().catch((e: Error) => this.d.log.warn({ err: e.message }, 'idle check failed')),
      this.d.cfg.checkSeconds * 1000,
    );
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** The latest activity of one app of a session (and whether it is busy). */
  private async appActivity(
    row: SessionRow,
    id: string,
    key: string | undefined,
    ep: RouteEndpoint | undefined,
  ): Promise<ProbeResult> {
    const signal = signalOf(this.d.cfg, id, this.d.app(id));
    const board = (kinds: ActivityKind[]) => this.d.board.get(row.id, key, kinds);
    switch (signal) {
      case 'vnc':
        return { busy: false, last: board(['input']) };
      case 'traffic':
        return { busy: false, last: board(['read', 'write', 'ws']) };
      case 'none':
        return { busy: false, last: null };
      case 'jupyter':
      case 'terminal': {
        let probed: ProbeResult = { busy: false, last: null };
        if (ep) {
          try {
            probed = await this.d.probe(ep, signal);
          } catch (e) {
            // Not answering is not activity; the heartbeat watch tells a dead agent apart.
            this.d.log.debug(
              { session: row.id, app: id, err: (e as Error).message },
              'idle: app did not answer',
            );
          }
        }
        const writes = signal === 'jupyter' ? board(['write']) : null;
        const last = Math.max(probed.last ?? 0, writes ?? 0);
        return { busy: probed.busy, last: last > 0 ? last : null };
      }
    }
  }

  /** One look at every running session: warn, stop, or note activity. */
  async check(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      const rows = (await this.d.running()).filter((r) => r.state === 'running');
      const seen = new Set<string>();
      for (const row of rows) {
        seen.add(row.id);
        await this.checkOne(row).catch((e) =>
          this.d.log.error({ session: row.id, err: (e as Error).message }, 'idle check failed'),
        );
      }
      for (const id of this.clocks.keys()) {
        if (seen.has(id)) continue;
        this.clocks.delete(id);
        this.statuses.delete(id);
        this.d.board.forget(id);
      }
    } finally {
      this.running = false;
    }
  }

  private async checkOne(row: SessionRow): Promise<void> {
    const minutes = idleMinutesFor(this.d.cfg, {
      cluster: row.cluster,
      partition: partitionOf(row, this.d.defaultPartition(row.cluster)),
      app: row.app,
    });
    let clock = this.clocks.get(row.id);
    if (!clock) {
      clock = {
        since: Math.max(row.ready_at ?? row.started_at ?? this.startedAt, this.startedAt),
        warnedAt: null,
      };
      this.clocks.set(row.id, clock);
    }
    const route = this.d.route(row.id);
    const req = JSON.parse(row.request) as SessionRequest;
    const apps: [string, string | undefined, RouteEndpoint | undefined][] = [
      [row.app, undefined, route],
      ...(req.extraApps ?? []).map((id): [string, string, RouteEndpoint | undefined] => [
        id,
        id,
        route?.subRoutes?.get(id),
      ]),
    ];
    let busy = false;
    const perApp: Record<string, number | null> = {};
    // Probes only when a policy applies: without one, the board's signals are enough to show.
    for (const [id, key, ep] of apps) {
      const a =
        minutes > 0
          ? await this.appActivity(row, id, key, ep)
          : { busy: false, last: this.d.board.get(row.id, key, ['read', 'write', 'ws', 'input']) };
      perApp[id] = a.last;
      busy ||= a.busy;
      if (a.last !== null && a.last > clock.since) clock.since = a.last;
    }
    const now = this.now();
    if (busy) clock.since = now;
    const policyMs = minutes * 60_000;
    const warnMs = Math.min(this.d.cfg.warnMinutes, minutes) * 60_000;
    const status: IdleStatus = {
      id: row.id,
      minutes,
      lastActivityAt: clock.since,
      idleSeconds: Math.max(0, Math.round((now - clock.since) / 1000)),
      busy,
      warnedAt: clock.warnedAt,
      stopsAt: minutes > 0 ? clock.since + policyMs : null,
      checkedAt: now,
      apps: perApp,
    };
    if (clock.warnedAt !== null && clock.since > clock.warnedAt) {
      clock.warnedAt = null;
      status.warnedAt = null;
      this.d.log.info({ session: row.id }, 'idle: activity after the warning; the clock starts again');
      this.d.changed(row, status);
    }
    if (minutes > 0 && now - clock.since >= policyMs) {
      this.d.log.info(
        { session: row.id, idleSeconds: status.idleSeconds, minutes },
        'idle: stopping the session',
      );
      this.statuses.set(row.id, status);
      await this.d.stop(row, idleReason(minutes), status);
      return;
    }
    if (minutes > 0 && clock.warnedAt === null && now - clock.since >= policyMs - warnMs) {
      clock.warnedAt = now;
      status.warnedAt = now;
      this.statuses.set(row.id, status);
      await this.d.warn(row, status);
      return;
    }
    this.statuses.set(row.id, status);
  }
}
