// Dial-out tunnels (clusters with `connection: dial-out`): the WebSocket endpoint the agents of those
// sessions dial, on the gateway's own port (GET /api/agent/tunnel/<session id>). The callers are agents,
// not the site's users: they prove the session's tunnel secret instead of a sign-in (src/proxy/tunnel.ts),
// and every refused attempt (an unknown session, a wrong secret, another session's id) is in the audit log.
import type http from 'node:http';
import type net from 'node:net';
import type { FastifyInstance } from 'fastify';
import { WebSocketServer } from 'ws';
import { tunnelSecretFor } from '../../apps/secrets.ts';
import { TUNNEL_PATH } from '../../apps/tunnel.ts';
import { isActive, type SessionState } from '../../core/session-machine.ts';
import { MAX_FRAME } from '../../core/tunnel-frames.ts';
import { getSession, type SessionRow } from '../../db/sessions.ts';
import type { AppContext } from '../context.ts';
import type { Feature } from '../feature.ts';

type UpgradeHandler = {
  prefix: string;
  handle: (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => void;
  sourceNetworks?: boolean;
};

const SESSION_ID = /^[a-z0-9]{4,32}$/;

export const tunnelFeature: Feature = {
  name: 'tunnel',
  register(_app: FastifyInstance, ctx: AppContext) {
    const dialOut = ctx.cfg.clusters.filter((c) => c.connection === 'dial-out').map((c) => c.name);
    if (dialOut.length === 0) return;
    const hub = ctx.routes.tunnels;
    // A tunnel frame is at most MAX_FRAME bytes: a bigger message closes that tunnel unread.
    const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME, perMessageDeflate: false });
    const refused = (req: http.IncomingMessage, target: string, why: string) => {
      void ctx.audit
        .record({
          action: 'tunnel.refused',
          target: target.slice(0, 40),
          ip: req.socket.remoteAddress,
          ok: false,
          details: { why },
        })
        .catch(() => undefined);
    };
    const reject = (socket: net.Socket, code: number) => {
      socket.end(
        `HTTP/1.1 ${code} ${code === 404 ? 'Not Found' : 'Gone'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`,
      );
      socket.destroy();
    };
    const handle = (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      socket.on('error', () => socket.destroy());
      const id = (req.url ?? '').slice(TUNNEL_PATH.length).split('?')[0] ?? '';
      const lookup: Promise<SessionRow | undefined> = SESSION_ID.test(id)
        ? getSession(ctx.db, id)
        : Promise.resolve(undefined);
      lookup.then(
        (row) => {
          if (!row || !dialOut.includes(row.cluster)) {
            refused(req, id, 'no such session on a dial-out cluster');
            return reject(socket, 404);
          }
          if (!isActive(row.state as SessionState)) {
            refused(req, id, `the session is ${row.state}`);
            return reject(socket, 410);
          }
          const secret = tunnelSecretFor(row.app_token, row.id);
          wss.handleUpgrade(req, socket, head, (ws) => {
            hub.accept(row.id, secret, ws, (why) => refused(req, row.id, why), req.socket.remoteAddress);
          });
        },
        () => reject(socket, 404),
      );
    };
    (ctx.services.get('upgradeHandlers') as UpgradeHandler[]).push({
      prefix: TUNNEL_PATH,
      handle,
      sourceNetworks: false,
    });
    // A session that ended takes its tunnel with it (its agent stops at its next heartbeat).
    (ctx.services.get('session.onTransition') as ((s: SessionRow, to: string) => void)[]).push((s, to) => {
      if (!isActive(to as SessionState)) hub.close(s.id);
    });
    // The session's card shows "reconnecting" while its tunnel is down, live.
    hub.onChange = (id) => {
      void (async () => {
        const row = await getSession(ctx.db, id);
        if (row)
          ctx.bus.publish({ userId: row.user_id }, { type: 'session', data: await ctx.sessions.view(row) });
      })().catch(() => undefined);
    };
    ctx.services.set('tunnel.wss', wss);
  },
  stop(ctx: AppContext) {
    ctx.routes.tunnels.closeAll();
    (ctx.services.get('tunnel.wss') as WebSocketServer | undefined)?.close();
  },
};
