import type { FastifyInstance } from 'fastify';
import { NotJson } from '../../api/common.ts';
import { requireUser } from '../auth.ts';
import type { AppContext } from '../context.ts';
import { onSignOut } from './auth.ts';

/** Server-sent events: session and job changes, notifications, the free-resources table. */
export function registerEventRoutes(app: FastifyInstance, ctx: AppContext): void {
  const events = {
    schema: {
      summary: 'Live updates (server-sent events): sessions, jobs, notifications, free resources',
      reply: {
        200: NotJson(
          'text/event-stream',
          'One event per change, `event: <type>` and `data: <JSON>`: `session` (a SessionView), `job` (a JobView), `notification` (a Notification and `browser`), `resources` (a FreeTable), `announcement` ({ announcements }), `cluster` ({ name, drained }), `session.idle` (an IdleStatus); administrators also get `admin.session` ({ id, state }). The stream ends when the browser signs out.',
        ),
      },
    },
  };
  app.get('/api/events', events, async (req, reply) => {
    const user = requireUser(req, 'read');
    // Fixed for the stream's life: a change of groups takes effect when the page reconnects.
    const clusters = new Set<string>();
    for (const c of ctx.clusters.values()) if (await c.mayUse(user)) clusters.add(c.name);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    const send = (ev: { type: string; data: unknown }) => {
      res.write(`event: ${ev.type}\ndata: ${JSON.stringify(ev.data)}\n\n`);
    };
    const unsubscribe = ctx.bus.subscribe({ userId: user.id, isAdmin: user.isAdmin, clusters, send });
    const ping = setInterval(() => res.write(': ping\n\n'), 25_000);
    // A signed-out browser's stream ends with its sign-in (no events to a tab that is signed out).
    const webSessionId = req.webSession?.id;
    const unlisten = webSessionId
      ? onSignOut(ctx, (userId, sessionId) => {
          if (userId === user.id && (sessionId === undefined || sessionId === webSessionId)) res.end();
        })
      : () => undefined;
    const close = () => {
      clearInterval(ping);
      unsubscribe();
      unlisten();
    };
    res.on('close', close);
    res.on('error', close);
  });
}
