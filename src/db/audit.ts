import type { Logger } from 'pino';
import type { Db } from './index.ts';

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

  async record(e: AuditEntry): Promise<void> {
    const at = Date.now();
    this.log.info({ audit: true, ...e, at }, `audit ${e.action} ${e.ok ? 'ok' : 'refused'}`);
    await this.db
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

  async list(limit = 200, action?: string) {
    let q = this.db.selectFrom('audit_log').selectAll().orderBy('id', 'desc').limit(limit);
    if (action) q = q.where('action', '=', action);
    return q.execute();
  }
}
