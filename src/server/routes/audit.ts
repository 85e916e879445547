// The audit log for administrators: sign-ins and their failures, sessions started and stopped, agent
// callbacks, API tokens, admin actions. Newest first, with filters and paging.
import type { FastifyInstance } from 'fastify';
import { AuditQuery as AuditQuerySchema, AuditReply } from '../../api/admin.ts';
import type { AuditQuery } from '../../db/audit.ts';
import { HttpError, requireAdmin } from '../auth.ts';
import type { AppContext } from '../context.ts';
import { spec } from '../route-spec.ts';

function int(v: unknown, field: string): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new HttpError(400, `${field}: a whole number`, field);
  return n;
}

function text(v: unknown, field: string): string | undefined {
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string' || v.length > 200)
    throw new HttpError(400, `${field}: at most 200 characters`, field);
  return v;
}

export function parseAuditQuery(q: Record<string, unknown>): AuditQuery {
  let ok: boolean | undefined;
  if (q.ok === 'true' || q.ok === '1') ok = true;
  else if (q.ok === 'false' || q.ok === '0') ok = false;
  else if (q.ok !== undefined && q.ok !== '') throw new HttpError(400, 'ok: true or false', 'ok');
  return {
    action: text(q.action, 'action'),
    actor: text(q.actor, 'actor'),
    target: text(q.target, 'target'),
    ok,
    since: int(q.since, 'since'),
    until: int(q.until, 'until'),
    before: int(q.before, 'before'),
    limit: int(q.limit, 'limit'),
  };
}

export function registerAuditRoutes(app: FastifyInstance, ctx: AppContext): void {
  app.get(
    '/api/admin/audit',
    spec('The audit log, newest first, filtered and paged', AuditReply, { querystring: AuditQuerySchema }),
    async (req): Promise<AuditReply> => {
      requireAdmin(req);
      const f = parseAuditQuery((req.query ?? {}) as Record<string, unknown>);
      const entries = await ctx.audit.query(f);
      const limit = Math.min(Math.max(1, f.limit ?? 200), 1000);
      return {
        entries: entries.map((e) => ({
          id: e.id,
          at: e.at,
          actorUserId: e.actor_user_id,
          actor: e.actor,
          action: e.action,
          target: e.target,
          ip: e.ip,
          ok: e.ok,
          details: e.details,
        })),
        // Pass as `before` for the next page.
        next: entries.length === limit ? (entries[entries.length - 1]?.id ?? null) : null,
      };
    },
  );
}
