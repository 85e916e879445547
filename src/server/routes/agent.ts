import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TSchema } from 'typebox';
import {
  AgentExitBody,
  AgentFailedBody,
  AgentHeartbeatBody,
  AgentReadyBody,
  AgentReadyReply,
  AgentStartingBody,
} from '../../api/agent.ts';
import { OkReply } from '../../api/common.ts';
import { AgentRefused } from '../../sessions/service.ts';
import { clientIp } from '../auth.ts';
import type { AppContext } from '../context.ts';
import { AGENT_ROUTE } from '../route-policy.ts';

function bearer(req: FastifyRequest): string {
  const h = req.headers.authorization ?? '';
  return h.startsWith('Bearer ') ? h.slice(7).trim() : '';
}

/**
 * Callbacks from agents inside sessions. Each is bound to one session by a secret: the one-time
 * secret for "ready", then a heartbeat token. The body is read field by field; nothing else is taken.
 */
export function registerAgentRoutes(app: FastifyInstance, ctx: AppContext): void {
  const bodyLimit = 4096;
  // The agent's secret is its credential: no CSRF token, API token or shared rate limit applies.
  const route = (summary: string, body: TSchema, reply: TSchema = OkReply) => ({
    bodyLimit,
    config: AGENT_ROUTE,
    schema: { summary, body, reply: { 200: reply } },
  });

  /** A refused exit or failure report: logged and audited as a refused "ready" is (forged calls show). */
  const refused = async (req: FastifyRequest, callback: string, why: string) => {
    const session = String(((req.body ?? {}) as Record<string, unknown>).sessionId ?? '').slice(0, 40);
    await ctx.audit.record({
      action: 'agent.callback',
      target: session,
      ip: clientIp(req),
      ok: false,
      details: { callback, why },
    });
    ctx.log.warn({ session, ip: clientIp(req), callback, why }, 'agent callback refused');
  };

  const ready = route(
    "The session's app listens: where (the session's one-time secret as Bearer)",
    AgentReadyBody,
    AgentReadyReply,
  );
  app.post('/api/agent/ready', ready, async (req, reply) => {
    const b = (req.body ?? {}) as Record<string, unknown>;
    try {
      const heartbeatToken = await ctx.sessions.agentReady(
        String(b.sessionId ?? ''),
        bearer(req),
        {
          host: typeof b.host === 'string' ? b.host : '',
          port: typeof b.port === 'number' ? b.port : -1,
          socket: typeof b.socket === 'string' ? b.socket : undefined,
          apps: Array.isArray(b.apps)
            ? (b.apps as unknown[]).slice(0, 16).map((x) => {
                const a = (x ?? {}) as Record<string, unknown>;
                return {
                  id: typeof a.id === 'string' ? a.id : '',
                  port: typeof a.port === 'number' ? a.port : -1,
                  socket: typeof a.socket === 'string' ? a.socket : undefined,
                };
              })
            : undefined,
        },
        clientIp(req),
      );
      return {
        heartbeatToken,
        heartbeatSeconds: ctx.cfg.sessions.heartbeatSeconds,
      } satisfies AgentReadyReply;
    } catch (e) {
      if (e instanceof AgentRefused) {
        ctx.log.warn(
          { session: String(b.sessionId ?? '').slice(0, 40), ip: clientIp(req), why: e.message },
          'agent callback refused',
        );
        return reply.code(e.status).send({ error: 'refused' });
      }
      throw e;
    }
  });

  const heartbeat = route(
    'The agent is alive (its heartbeat token as Bearer); 410 once the session is over',
    AgentHeartbeatBody,
  );
  app.post('/api/agent/heartbeat', heartbeat, async (req, reply) => {
    const b = (req.body ?? {}) as Record<string, unknown>;
    const stopped = Array.isArray(b.stoppedApps)
      ? (b.stoppedApps as unknown[]).slice(0, 16).filter((x): x is string => typeof x === 'string')
      : [];
    const r = await ctx.sessions.agentHeartbeat(String(b.sessionId ?? ''), bearer(req), stopped);
    if (r === 'ok') return { ok: true };
    if (r === 'gone') return reply.code(410).send({ error: 'session over' });
    ctx.log.warn({ session: String(b.sessionId ?? '').slice(0, 40), ip: clientIp(req) }, 'heartbeat refused');
    return reply.code(403).send({ error: 'refused' });
  });

  app.post('/api/agent/exit', route("The session's main app exited", AgentExitBody), async (req, reply) => {
    const b = (req.body ?? {}) as Record<string, unknown>;
    const ok = await ctx.sessions.agentExit(
      String(b.sessionId ?? ''),
      bearer(req),
      typeof b.code === 'number' ? b.code : null,
    );
    if (ok) return { ok: true };
    await refused(req, 'exit', 'unknown session or wrong heartbeat token');
    return reply.code(403).send({ error: 'refused' });
  });

  app.post(
    '/api/agent/starting',
    route(
      "The agent has started in the session's job (the one-time secret as Bearer, not spent): the gateway confirms where the job runs while the app starts, so that the ready report finds it confirmed",
      AgentStartingBody,
    ),
    async (req, reply) => {
      const b = (req.body ?? {}) as Record<string, unknown>;
      if (await ctx.sessions.agentStarting(String(b.sessionId ?? ''), bearer(req))) return { ok: true };
      await refused(req, 'starting', 'unknown session or wrong secret');
      return reply.code(403).send({ error: 'refused' });
    },
  );

  app.post(
    '/api/agent/failed',
    route("The session's app could not be started", AgentFailedBody),
    async (req, reply) => {
      const b = (req.body ?? {}) as Record<string, unknown>;
      const ok = await ctx.sessions.agentFailed(
        String(b.sessionId ?? ''),
        bearer(req),
        String(b.reason ?? 'the app failed to start'),
      );
      if (ok) return { ok: true };
      await refused(req, 'failed', 'unknown session or wrong secret');
      return reply.code(403).send({ error: 'refused' });
    },
  );
}
