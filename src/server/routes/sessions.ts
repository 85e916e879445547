import type { FastifyInstance } from 'fastify';
import type { SessionRequest } from '../../core/request.ts';
import { REASONS } from '../../core/session-machine.ts';
import { sessionEvents } from '../../db/sessions.ts';
import { RequestError } from '../../sessions/service.ts';
import { clientIp, HttpError, requireUser } from '../auth.ts';
import type { AppContext } from '../context.ts';

const ID_RE = /^[a-z0-9]{4,32}$/;

function num(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v))) return Number(v);
  return Number.NaN;
}

function str(v: unknown): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  return typeof v === 'string' ? v : String(v);
}

/** Turns a posted form (strings or numbers) into a request; validation proper happens in the service. */
export function parseSessionRequest(body: unknown): SessionRequest {
  const b = (body ?? {}) as Record<string, unknown>;
  return {
    cluster: str(b.cluster) ?? '',
    app: str(b.app) ?? '',
    // A list, or a comma-separated string from a plain form; anything else is left for validation.
    extraApps:
      b.extraApps === undefined || b.extraApps === '' || b.extraApps === null
        ? undefined
        : typeof b.extraApps === 'string'
          ? b.extraApps
              .split(',')
              .map((a) => a.trim())
              .filter(Boolean)
          : (b.extraApps as string[]),
    environment: str(b.environment),
    cores: num(b.cores),
    memoryGb: num(b.memoryGb),
    gpus: b.gpus === undefined || b.gpus === '' ? 0 : num(b.gpus),
    hours: num(b.hours),
    partition: str(b.partition),
    account: str(b.account),
    reservation: str(b.reservation),
    label: str(b.label),
  };
}

export function registerSessionRoutes(app: FastifyInstance, ctx: AppContext): void {
  app.get('/api/sessions', async (req) => {
    const user = requireUser(req, 'sessions');
    return { sessions: await ctx.sessions.listFor(user) };
  });

  app.post('/api/sessions', async (req, reply) => {
    const user = requireUser(req, 'sessions');
    try {
      const view = await ctx.sessions.create(user, parseSessionRequest(req.body), clientIp(req));
      return reply.code(201).send({ session: view });
    } catch (e) {
      if (e instanceof RequestError) {
        return reply.code(e.status).send({ error: e.message, errors: e.errors, field: e.errors[0]?.field });
      }
      throw e;
    }
  });

  app.get('/api/sessions/:id', async (req) => {
    const user = requireUser(req, 'sessions');
    const { id } = req.params as { id: string };
    const row = ID_RE.test(id) ? await ctx.sessions.getOwned(user, id) : undefined;
    if (!row) throw new HttpError(404, 'no such session');
    const events = await sessionEvents(ctx.db, id);
    return {
      session: await ctx.sessions.view(row),
      events: events.map((e) => ({ at: e.at, state: e.state, message: e.message })),
    };
  });

  const stop = async (req: import('fastify').FastifyRequest) => {
    const user = requireUser(req, 'sessions');
    const { id } = req.params as { id: string };
    const row = ID_RE.test(id) ? await ctx.sessions.getOwned(user, id) : undefined;
    if (!row) throw new HttpError(404, 'no such session');
    const updated = await ctx.sessions.stop(row, REASONS.stoppedByUser, { user, ip: clientIp(req) });
    return { session: await ctx.sessions.view(updated) };
  };
  app.delete('/api/sessions/:id', stop);
  app.post('/api/sessions/:id/stop', stop);
}
