// Job history with efficiency. `UsageReader` reads accounting in the background: at each poll of a
// cluster (only the lease holder polls, so once for every gateway), ONE sacct call as the operator for
// every ended session and job of every user that has no figures yet, stored in job_usage so pages never
// call sacct and the history survives restarts. `HistoryService` answers the history page, its CSV and
// the form's right-size hint from the database alone. The arithmetic is src/core/efficiency.ts's.
import { type RawBuilder, sql } from 'kysely';
import type { Logger } from 'pino';
import type { HistoryEntry, HistoryQuery, RightSizeReply } from '../api/history.ts';
import type { SessionRequest } from '../api/sessions.ts';
import type { AppDefinition } from '../apps/types.ts';
import {
  accountingOf,
  efficiencyOf,
  type JobUsage,
  rightSizeHint,
  toCsv,
  USAGE_GIVE_UP_MS,
  USAGE_LOOKBACK_MS,
  usageGivenUp,
} from '../core/efficiency.ts';
import type { Db } from '../db/index.ts';
import type { JobUsageTable } from '../db/schema.ts';
import type { User } from '../db/users.ts';
import { FINISHED_JOB_STATES } from '../scheduler/types.ts';
import type { Cluster } from '../sessions/clusters.ts';

const ENDED_SESSION_STATES = ['ended', 'failed'];
const ACTIVE_JOB_STATES = ['pending', 'running', 'completing', 'suspended'];
const JOB_ID_RE = /^\d+(?:_\d+)?$/;
/** How far back the reads after the first look: past the give-up, so each end is seen once given up. */
const RECENT_MS = 2 * USAGE_GIVE_UP_MS;
/** Jobs per sacct call; the rest wait for the next poll. */
const BATCH = 200;

export interface UsageReaderDeps {
  db: Db;
  log: Logger;
}

export class UsageReader {
  private readonly reading = new Set<string>();
  /**
   * Clusters whose ends of the whole USAGE_LOOKBACK_MS have been looked at. The others (the first read
   * after start, and the one after a failed read) look that far back; the rest only at recent ends.
   */
  private readonly caughtUp = new Set<string>();

  constructor(private readonly deps: UsageReaderDeps) {}

  /** Reads the cluster's accounting after each of its good polls from now on. */
  follow(c: Cluster): void {
    c.poller.onSnapshot((_name, snap) => {
      if (snap.ok) void this.read(c);
    });
  }

  /** The cluster's ended jobs that have no figures yet and ended since `since`, newest first, with their end. */
  private async waiting(cluster: string, since: number): Promise<Map<string, number>> {
    const { db } = this.deps;
    const [sessions, jobs] = await Promise.all([
      db
        .selectFrom('sessions as s')
        .leftJoin('job_usage as u', (j) =>
          j.onRef('u.cluster', '=', 's.cluster').onRef('u.job_id', '=', 's.job_id'),
        )
        .select(['s.job_id as jobId', 's.ended_at as endedAt'])
        .where('s.cluster', '=', cluster)
        .where('s.state', 'in', ENDED_SESSION_STATES)
        .where('s.job_id', 'is not', null)
        .where('s.ended_at', '>=', since)
        .where('u.job_id', 'is', null)
        .orderBy('s.ended_at', 'desc')
        .limit(BATCH)
        .execute(),
      db
        .selectFrom('jobs as j')
        .leftJoin('job_usage as u', (k) =>
          k.onRef('u.cluster', '=', 'j.cluster').onRef('u.job_id', '=', 'j.job_id'),
        )
        .select(['j.job_id as jobId', 'j.ended_at as endedAt'])
        .where('j.cluster', '=', cluster)
        .where('j.state', 'not in', ACTIVE_JOB_STATES)
        .where('j.ended_at', '>=', since)
        .where('u.job_id', 'is', null)
        .orderBy('j.ended_at', 'desc')
        .limit(BATCH)
        .execute(),
    ]);
    const out = new Map<string, number>();
    for (const r of [...sessions, ...jobs]) {
      if (out.size >= BATCH) break;
      if (r.jobId && !out.has(r.jobId)) out.set(r.jobId, r.endedAt ?? 0);
    }
    return out;
  }

  /** One read for the cluster (skipped while the previous one runs). */
  async read(c: Cluster): Promise<void> {
    if (this.reading.has(c.name)) return;
    this.reading.add(c.name);
    const wide = !this.caughtUp.has(c.name);
    try {
      const waiting = await this.waiting(c.name, Date.now() - (wide ? USAGE_LOOKBACK_MS : RECENT_MS));
      // Caught up once a look back that far found less than a full batch (and is concluded below).
      const drained = wide && waiting.size < BATCH;
      const ids = [...waiting.keys()];
      if (ids.length === 0) {
        if (drained) this.caughtUp.add(c.name);
        return;
      }
      const ask = ids.filter((id) => JOB_ID_RE.test(id));
      let usage: Map<string, JobUsage> | null = null;
      if (typeof c.adapter.jobUsage === 'function' && ask.length > 0) {
        try {
          usage = await c.adapter.jobUsage(ask);
        } catch (e) {
          // Accounting down for now: nothing is concluded, the next poll asks again.
          this.deps.log.warn(
            { cluster: c.name, err: (e as Error).message },
            'sacct (usage) failed; will retry',
          );
          // What ends while accounting is down may be older than the recent window when it is back.
          this.caughtUp.delete(c.name);
          return;
        }
      }
      const now = Date.now();
      for (const id of ids) {
        const u = usage?.get(id);
        if (u && FINISHED_JOB_STATES.has(u.state)) {
          await this.store(c.name, id, usageRow(u, now));
          continue;
        }
        // No accounting on the cluster (or the backend has none), or none for an hour after the end:
        // say so once, for good.
        if (usage === null || usageGivenUp(waiting.get(id) ?? null, now))
          await this.store(c.name, id, { source: 'none', read_at: now });
      }
      if (drained) this.caughtUp.add(c.name);
    } catch (e) {
      this.deps.log.error({ err: e, cluster: c.name }, 'job usage not read');
    } finally {
      this.reading.delete(c.name);
    }
  }

  private async store(cluster: string, jobId: string, row: Partial<JobUsageTable>): Promise<void> {
    await this.deps.db
      .insertInto('job_usage')
      .values({ cluster, job_id: jobId, source: 'none', read_at: Date.now(), ...row })
      .onConflict((oc) => oc.columns(['cluster', 'job_id']).doNothing())
      .execute();
  }
}

function usageRow(u: JobUsage, now: number): Partial<JobUsageTable> {
  return {
    source: 'sacct',
    state: u.state,
    cores: u.cores ?? null,
    elapsed_s: u.elapsedSeconds ?? null,
    total_cpu_ms: u.totalCpuMs ?? null,
    max_rss_kb: u.maxRssKb ?? null,
    req_mem_mb: u.reqMemMb ?? null,
    limit_min: u.limitMinutes ?? null,
    read_at: now,
  };
}

export class HistoryError extends Error {
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
  }
}

export interface HistoryFilter {
  cluster?: string;
  state?: string;
  kind?: 'session' | 'job';
  from?: number;
  to?: number;
  limit: number;
}

const DAY_RE = /^\d{4}-\d{2}-\d{2}$/;

/** A query's day (YYYY-MM-DD, UTC) or epoch ms; `end`: the last millisecond of that day. */
function timeParam(v: string | undefined, field: string, end: boolean): number | undefined {
  if (v === undefined || v === '') return undefined;
  if (/^\d{1,15}$/.test(v)) return Number(v);
  const t = DAY_RE.test(v) ? Date.parse(`${v}T00:00:00Z`) : Number.NaN;
  if (Number.isNaN(t))
    throw new HistoryError(`${field} must be a day (YYYY-MM-DD) or epoch milliseconds`, field);
  return end ? t + 24 * 3600_000 - 1 : t;
}

/** The query string as a filter; a HistoryError names the field it refuses. */
export function historyFilter(q: HistoryQuery): HistoryFilter {
  const f: HistoryFilter = { limit: 500 };
  if (q.cluster) f.cluster = q.cluster;
  if (q.state) {
    if (!/^[a-z_]{1,30}$/.test(q.state)) throw new HistoryError('state is not a state', 'state');
    f.state = q.state;
  }
  if (q.kind) {
    if (q.kind !== 'session' && q.kind !== 'job')
      throw new HistoryError('kind must be "session" or "job"', 'kind');
    f.kind = q.kind;
  }
  const from = timeParam(q.from, 'from', false);
  const to = timeParam(q.to, 'to', true);
  if (from !== undefined) f.from = from;
  if (to !== undefined) f.to = to;
  if (q.limit) {
    if (!/^\d{1,5}$/.test(q.limit) || Number(q.limit) < 1)
      throw new HistoryError('limit must be a whole number', 'limit');
    f.limit = Math.min(Number(q.limit), 5000);
  }
  return f;
}

export interface HistoryServiceDeps {
  db: Db;
  clusters: Map<string, Cluster>;
  catalogue: readonly AppDefinition[];
}

type UsageCols = {
  u_source: string | null;
  u_state: string | null;
  u_cores: number | null;
  u_elapsed: number | null;
  u_cpu: number | null;
  u_rss: number | null;
  u_mem: number | null;
  u_limit: number | null;
};

function figures(
  r: UsageCols & { ended_at: number | null },
  asked: { cores: number | null; memoryMb: number | null; minutes: number | null },
) {
  const accounting = accountingOf(r.u_source, r.ended_at, Date.now());
  const efficiency =
    accounting === 'sacct'
      ? efficiencyOf(
          {
            ...(r.u_cores !== null ? { cores: r.u_cores } : {}),
            ...(r.u_elapsed !== null ? { elapsedSeconds: r.u_elapsed } : {}),
            ...(r.u_cpu !== null ? { totalCpuMs: r.u_cpu } : {}),
            ...(r.u_rss !== null ? { maxRssKb: r.u_rss } : {}),
            ...(r.u_mem !== null ? { reqMemMb: r.u_mem } : {}),
            ...(r.u_limit !== null ? { limitMinutes: r.u_limit } : {}),
          },
          { cores: asked.cores, memoryMb: asked.memoryMb, limitMinutes: asked.minutes },
        )
      : { cpu: null, memory: null, time: null };
  return { accounting, efficiency, schedulerState: r.u_state };
}

function parseRequest(json: string): Partial<SessionRequest> {
  try {
    return JSON.parse(json) as Partial<SessionRequest>;
  } catch {
    return {};
  }
}

function jobInfo(json: string | null): { cpus?: number; memoryMb?: number } {
  if (!json) return {};
  try {
    return JSON.parse(json) as { cpus?: number; memoryMb?: number };
  } catch {
    return {};
  }
}

export const CSV_HEADER = [
  'kind',
  'id',
  'cluster',
  'job_id',
  'name',
  'state',
  'scheduler_state',
  'submitted',
  'started',
  'ended',
  'cores',
  'memory_mb',
  'time_limit_min',
  'accounting',
  'elapsed_s',
  'cpu_used_s',
  'cpu_available_s',
  'cpu_efficiency_pct',
  'max_rss_mb',
  'memory_efficiency_pct',
  'time_efficiency_pct',
] as const;

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const pct = (f: number | null | undefined) =>
  f === null || f === undefined ? null : Math.round(f * 1000) / 10;

/** The filters both lists share, on `t` (s: sessions, j: jobs) joined with job_usage as u. Values are bound. */
function filterConditions(t: 's' | 'j', f: HistoryFilter): RawBuilder<boolean>[] {
  const col = (c: string) => sql.ref(`${t}.${c}`);
  const out: RawBuilder<boolean>[] = [];
  if (f.cluster) out.push(sql<boolean>`${col('cluster')} = ${f.cluster}`);
  if (f.from !== undefined) out.push(sql<boolean>`${col('ended_at')} >= ${f.from}`);
  if (f.to !== undefined) out.push(sql<boolean>`${col('ended_at')} <= ${f.to}`);
  if (f.state) out.push(sql<boolean>`(${col('state')} = ${f.state} or u.state = ${f.state})`);
  return out;
}

export class HistoryService {
  constructor(private readonly deps: HistoryServiceDeps) {}

  private appName(id: string): string {
    return this.deps.catalogue.find((a) => a.id === id)?.name ?? id;
  }

  /** The user's ended sessions and jobs, newest end first. */
  async list(user: User, f: HistoryFilter): Promise<HistoryEntry[]> {
    const { db, clusters } = this.deps;
    const usageCols = [
      'u.source as u_source',
      'u.state as u_state',
      'u.cores as u_cores',
      'u.elapsed_s as u_elapsed',
      'u.total_cpu_ms as u_cpu',
      'u.max_rss_kb as u_rss',
      'u.req_mem_mb as u_mem',
      'u.limit_min as u_limit',
    ] as const;
    const out: HistoryEntry[] = [];
    if (f.kind !== 'job') {
      let q = db
        .selectFrom('sessions as s')
        .leftJoin('job_usage as u', (j) =>
          j.onRef('u.cluster', '=', 's.cluster').onRef('u.job_id', '=', 's.job_id'),
        )
        .select([
          's.id',
          's.cluster',
          's.job_id',
          's.app',
          's.label',
          's.state',
          's.request',
          's.time_limit_min',
          's.submitted_at',
          's.started_at',
          's.ended_at',
          ...usageCols,
        ])
        .where('s.user_id', '=', user.id)
        .where('s.state', 'in', ENDED_SESSION_STATES)
        .orderBy('s.ended_at', 'desc')
        .limit(f.limit);
      for (const c of filterConditions('s', f)) q = q.where(c);
      for (const r of await q.execute()) {
        const req = parseRequest(r.request);
        const requested = {
          cores: req.cores ?? null,
          memoryMb: req.memoryGb !== undefined ? Math.round(req.memoryGb * 1024) : null,
          minutes: r.time_limit_min,
        };
        out.push({
          kind: 'session',
          id: r.id,
          cluster: r.cluster,
          jobId: r.job_id,
          name: r.label ?? this.appName(r.app),
          app: r.app,
          state: r.state,
          submittedAt: r.submitted_at,
          startedAt: r.started_at,
          endedAt: r.ended_at,
          requested,
          ...figures(r, requested),
          ...(r.job_id === null ? { accounting: 'none' as const } : {}),
        });
      }
    }
    if (f.kind !== 'session') {
      let q = db
        .selectFrom('jobs as j')
        .leftJoin('job_usage as u', (k) =>
          k.onRef('u.cluster', '=', 'j.cluster').onRef('u.job_id', '=', 'j.job_id'),
        )
        .select([
          'j.cluster',
          'j.job_id',
          'j.name',
          'j.state',
          'j.info',
          'j.time_limit_min',
          'j.submitted_at',
          'j.started_at',
          'j.ended_at',
          ...usageCols,
        ])
        .where('j.unix_user', '=', user.unixUser)
        .where('j.state', 'not in', ACTIVE_JOB_STATES)
        .orderBy('j.ended_at', 'desc')
        .limit(f.limit);
      for (const c of filterConditions('j', f)) q = q.where(c);
      for (const r of await q.execute()) {
        if (!clusters.get(r.cluster)?.userMayUse(user)) continue;
        const info = jobInfo(r.info);
        const requested = {
          cores: info.cpus ?? null,
          memoryMb: info.memoryMb ?? null,
          minutes: r.time_limit_min,
        };
        out.push({
          kind: 'job',
          id: r.job_id,
          cluster: r.cluster,
          jobId: r.job_id,
          name: r.name,
          app: null,
          state: r.state,
          submittedAt: r.submitted_at,
          startedAt: r.started_at,
          endedAt: r.ended_at,
          requested,
          ...figures(r, requested),
        });
      }
    }
    out.sort((a, b) => (b.endedAt ?? 0) - (a.endedAt ?? 0));
    return out.slice(0, f.limit);
  }

  /** The same list as CSV (text/csv), one row per entry. */
  async csv(user: User, f: HistoryFilter): Promise<string> {
    const rows = (await this.list(user, f)).map((e) => {
      const { cpu, memory, time } = e.efficiency;
      return [
        e.kind,
        e.id,
        e.cluster,
        e.jobId,
        e.name,
        e.state,
        e.schedulerState,
        iso(e.submittedAt),
        iso(e.startedAt),
        iso(e.endedAt),
        e.requested.cores,
        memory?.requested ?? e.requested.memoryMb,
        e.requested.minutes,
        e.accounting,
        time?.used ?? null,
        cpu?.used ?? null,
        cpu?.requested ?? null,
        pct(cpu?.fraction),
        memory?.used ?? null,
        pct(memory?.fraction),
        pct(time?.fraction),
      ];
    });
    return toCsv(CSV_HEADER, rows);
  }

  /** The form's right-size hint: the user's newest ended sessions of the app on the cluster. */
  async rightSize(user: User, cluster: string, app: string): Promise<RightSizeReply> {
    const rows = await this.deps.db
      .selectFrom('sessions as s')
      .innerJoin('job_usage as u', (j) =>
        j.onRef('u.cluster', '=', 's.cluster').onRef('u.job_id', '=', 's.job_id'),
      )
      .select(['s.request', 'u.max_rss_kb', 'u.req_mem_mb'])
      .where('s.user_id', '=', user.id)
      .where('s.cluster', '=', cluster)
      .where('s.app', '=', app)
      .where('u.source', '=', 'sacct')
      .where('u.max_rss_kb', 'is not', null)
      .orderBy('s.ended_at', 'desc')
      .limit(5)
      .execute();
    const past = rows.map((r) => {
      const req = parseRequest(r.request);
      const asked = r.req_mem_mb ?? (req.memoryGb !== undefined ? Math.round(req.memoryGb * 1024) : 0);
      return { maxRssKb: r.max_rss_kb, requestedMb: asked };
    });
    return { hint: rightSizeHint(this.appName(app), past) };
  }
}
