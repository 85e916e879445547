import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { NotJson } from '../../api/common.ts';
import {
  NewSessionBody,
  SessionDetailReply,
  SessionParams,
  SessionReply,
  SessionsReply,
} from '../../api/sessions.ts';
import type { SessionRequest } from '../../core/request.ts';
import { REASONS } from '../../core/session-machine.ts';
import { sessionEvents } from '../../db/sessions.ts';
import { RequestError } from '../../sessions/service.ts';
import { sessionLogText } from '../../sessions/session-log.ts';
import { clientIp, HttpError, requireUser } from '../auth.ts';
import type { AppContext } from '../context.ts';
import { spec } from '../route-spec.ts';

const ID_RE = /^[a-z0-9]{4,32}$/;

function num(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v))) return Number(v);
  return Number.NaN;
}

function str(v: string | null | undefined): string | undefined {
  return v === undefined || v === null || v === '' ? undefined : v;
}

/**
 * Turns a posted form (strings or numbers, types checked by the route's schema) into a request;
 * validation proper happens in the service.
 */
export function parseSessionRequest(body: NewSessionBody | null): SessionRequest {
  const b = body ?? {};
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
          : b.extraApps,
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

export function registerSessionRoutes(fastify: FastifyInstance, ctx: AppContext): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  app.get(
    '/api/sessions',
    spec('Your sessions, newest first', SessionsReply),
    async (req): Promise<SessionsReply> => {
      const user = requireUser(req, 'sessions');
      return { sessions: await ctx.sessions.listFor(user) };
    },
  );

  app.post(
    '/api/sessions',
    spec(
      "Start a session: submitted to the cluster's scheduler, it runs once the job starts",
      SessionReply,
      { body: NewSessionBody },
      201,
    ),
    async (req, reply) => {
      const user = requireUser(req, 'sessions');
      const request = parseSessionRequest(req.body);
      const refused = ctx.networks.clusterRefusal(
        request.cluster,
        clientIp(req),
        ctx.clusters.get(request.cluster)?.title,
      );
      if (refused) throw new HttpError(403, refused, 'cluster');
      try {
        const view = await ctx.sessions.create(user, request, clientIp(req));
        return reply.code(201).send({ session: view } satisfies SessionReply);
      } catch (e) {
        if (e instanceof RequestError) {
          return reply.code(e.status).send({ error: e.message, errors: e.errors, field: e.errors[0]?.field });
        }
        throw e;
      }
    },
  );

  app.get(
    '/api/sessions/:id',
    spec('One of your sessions, with its history', SessionDetailReply, { params: SessionParams }),
    async (req): Promise<SessionDetailReply> => {
      const user = requireUser(req, 'sessions');
      const { id } = req.params;
      const row = ID_RE.test(id) ? await ctx.sessions.getOwned(user, id) : undefined;
      if (!row) throw new HttpError(404, 'no such session');
      const events = await sessionEvents(ctx.db, id);
      return {
        session: await ctx.sessions.view(row),
        events: events.map((e) => ({ at: e.at, state: e.state, message: e.message })),
      };
    },
  );

  // The whole log of a session (job output, agent and app), for its owner only; as plain text, so the
  // card's link opens it in a tab. Others get the same 404 as for a session that does not exist.
  const log = {
    schema: {
      summary: "The session's whole log (job output, agent and app)",
      params: SessionParams,
      reply: { 200: NotJson('text/plain', 'The log as text.') },
    },
  };
  app.get('/api/sessions/:id/log', log, async (req, reply) => {
    const user = requireUser(req, 'sessions');
    const { id } = req.params;
    const row = ID_RE.test(id) ? await ctx.sessions.getOwned(user, id) : undefined;
    if (!row) throw new HttpError(404, 'no such session');
    const parts = await ctx.sessions.log(row);
    if (!parts)
      throw new HttpError(404, "this session's log is on its node, where the gateway cannot read it");
    return reply
      .type('text/plain; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(sessionLogText(parts));
  });

  const stop = async (req: FastifyRequest<{ Params: SessionParams }>): Promise<SessionReply> => {
    const user = requireUser(req, 'sessions');
    const { id } = req.params;
    const row = ID_RE.test(id) ? await ctx.sessions.getOwned(user, id) : undefined;
    if (!row) throw new HttpError(404, 'no such session');
    const updated = await ctx.sessions.stop(row, REASONS.stoppedByUser, { user, ip: clientIp(req) });
    return { session: await ctx.sessions.view(updated) };
  };
  const stopping = (summary: string) => spec(summary, SessionReply, { params: SessionParams });
  app.delete('/api/sessions/:id', stopping('Stop one of your sessions (its job is cancelled)'), stop);
  app.post(
    '/api/sessions/:id/stop',
    stopping('Stop one of your sessions (the same as DELETE, for plain forms)'),
    stop,
  );
}
