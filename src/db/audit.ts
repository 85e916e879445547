import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { Db } from './index.ts';

export interface AuditQuery {
  /** Exact action, or a prefix ending in "*" (e.g. "session.*"). */
  action?: string;
  actor?: string;
  target?: string;
  ok?: boolean;
  /** Epoch ms bounds on the time. */
  since?: number;
  until?: number;
  /** Only entries older than this id (paging: pass the last id of the previous page). */
  before?: number;
  limit?: number;
}

export interface AuditEntry {
  actorUserId?: number | null;
  actor?: string | null;
  action: string;
  target?: string | null;
  ip?: string | null;
  ok: boolean;
  details?: Record<string, unknown>;
}

/** Writes an audit entry to the database and as a structured log line (both, so neither is the only copy). */
export class AuditLog {
  constructor(
    private readonly db: Db,
    private readonly log: Logger,
  ) {}

  /** `db`: a transaction the entry belongs to (written with it or not at all). */
  async record(e: AuditEntry, db: Db = this.db): Promise<void> {
    const at = Date.now();
    this.log.info({ audit: true, ...e, at }, `audit ${e.action} ${e.ok ? 'ok' : 'refused'}`);
    await db
      .insertInto('audit_log')
      .values({
        at,
        actor_user_id: e.actorUserId ?? null,
        actor: e.actor ?? null,
        action: e.action,
        target: e.target ?? null,
        ip: e.ip ?? null,
        ok: e.ok ? 1 : 0,
        details: JSON.stringify(e.details ?? {}),
      })
      .execute();
  }

  /** Newest first, filtered; at most 1000 per call. */
  async query(f: AuditQuery) {
    let q = this.db
      .selectFrom('audit_log')
      .selectAll()
      .orderBy('id', 'desc')
      .limit(Math.min(Math.max(1, f.limit ?? 200), 1000));
    if (f.action?.endsWith('*')) {
      // A prefix compare, not LIKE: LIKE ignores case on SQLite and not on PostgreSQL.
      const prefix = f.action.slice(0, -1);
      q = q.where(sql<boolean>`substr(action, 1, ${prefix.length}) = ${prefix}`);
    } else if (f.action) q = q.where('action', '=', f.action);
    if (f.actor) q = q.where('actor', '=', f.actor);
    if (f.target) q = q.where('target', '=', f.target);
    if (f.ok !== undefined) q = q.where('ok', '=', f.ok ? 1 : 0);
    if (f.since !== undefined) q = q.where('at', '>=', f.since);
    if (f.until !== undefined) q = q.where('at', '<=', f.until);
    if (f.before !== undefined) q = q.where('id', '<', f.before);
    const rows = await q.execute();
    return rows.map((r) => ({
      ...r,
      ok: r.ok === 1,
      details: JSON.parse(r.details) as Record<string, unknown>,
    }));
  }

  async list(limit = 200, action?: string) {
    let q = this.db.selectFrom('audit_log').selectAll().orderBy('id', 'desc').limit(limit);
    if (action) q = q.where('action', '=', action);
    return q.execute();
  }
}
