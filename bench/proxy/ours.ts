// The real Atrium gateway, in its own process, for the proxy benchmark: startGateway with a temporary
// data dir, one user with a signed-in browser session, and one route per upstream under
// /user/bench/<session>/. Every proxied request and WebSocket goes through the same cookie check as a
// user's browser. The cookie is printed, and memory is reported over IPC (run with --expose-gc).
//   tsx bench/proxy/ours.ts --route <sessionid>=<port> [--route ...]
//     [--relay-route <sessionid>=<relay port>=<secret>] [--tunnel-route <sessionid>=<secret>]
// A relay route reaches the app through an agent's relay; a tunnel route through the dial-out tunnel
// an agent opens to this gateway (bench/proxy/agent-side.ts), on the gateway's own tunnel hub.
// Prints {"bench":"ready","port":N,"cookie":"atrium_session=...","pid":N}.
import fs from 'node:fs';
import type http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { WebSocketServer } from 'ws';
import { TUNNEL_PATH } from '../../src/apps/tunnel.ts';
import { parseConfig } from '../../src/config/load.ts';
import { MAX_FRAME } from '../../src/core/tunnel-frames.ts';
import { createUser } from '../../src/db/users.ts';
import { type RouteTarget, sessionPrefix } from '../../src/proxy/routes.ts';
import { SESSION_COOKIE } from '../../src/server/context.ts';
import { startGateway } from '../../src/server/gateway.ts';
import { benchGatewayConfig } from './lib.ts';
import { answerMemoryRequests, answerProfileRequests } from './mem-report.ts';

const routes: { id: string; port: number; relaySecret?: string; tunnelSecret?: string }[] = [];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--route') {
    const [id, port] = (argv[++i] ?? '').split('=');
    routes.push({ id: id!, port: Number(port) });
  } else if (argv[i] === '--relay-route') {
    const [id, port, secret] = (argv[++i] ?? '').split('=');
    routes.push({ id: id!, port: Number(port), relaySecret: secret });
  } else if (argv[i] === '--tunnel-route') {
    const [id, secret] = (argv[++i] ?? '').split('=');
    routes.push({ id: id!, port: 0, tunnelSecret: secret });
  }
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-bench-'));
const cfg = parseConfig(benchGatewayConfig(dir).join('\n'), '(bench)', dir);

const gw = await startGateway(cfg, {
  log: pino({ level: cfg.log.level }, pino.destination(2)),
  print: () => undefined,
  adminUnixUser: 'nobody',
});
const { ctx } = gw;
const user = await createUser(ctx.db, { username: 'bench', unixUser: 'nobody' });
const { token } = await ctx.webSessions.create(user.id);
const tunnelSecrets = new Map(routes.filter((r) => r.tunnelSecret).map((r) => [r.id, r.tunnelSecret!]));
if (tunnelSecrets.size > 0) {
  // The gateway's tunnel endpoint, as src/server/features/tunnel.ts wires it (the secret from here, not
  // from a session row).
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME, perMessageDeflate: false });
  (
    ctx.services.get('upgradeHandlers') as { prefix: string; handle: unknown; sourceNetworks?: boolean }[]
  ).push({
    prefix: TUNNEL_PATH,
    sourceNetworks: false,
    handle: (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      const id = (req.url ?? '').slice(TUNNEL_PATH.length);
      const secret = tunnelSecrets.get(id);
      if (!secret) return socket.destroy();
      wss.handleUpgrade(req, socket, head, (ws) =>
        ctx.routes.tunnels.accept(id, secret, ws, () => undefined),
      );
    },
  });
}
for (const r of routes) {
  const target: RouteTarget = { host: '127.0.0.1', port: r.port, relaySecret: r.relaySecret };
  if (r.tunnelSecret) target.tunnel = { hub: ctx.routes.tunnels, sessionId: r.id, app: 'bench' };
  ctx.routes.set({
    sessionId: r.id,
    userId: user.id,
    username: user.username,
    prefix: sessionPrefix(user.username, r.id),
    target,
    stripPrefix: false,
    // As for Jupyter: the app's token is added upstream by the proxy.
    headers: { authorization: `token bench-${r.id}` },
    transport: 'http',
  });
}

answerProfileRequests();
answerMemoryRequests(async () => {
  const agent = ctx.proxy.agent;
  const count = (m: NodeJS.ReadOnlyDict<unknown[]>) =>
    Object.values(m).reduce((n, l) => n + (l?.length ?? 0), 0);
  const serverConnections = await new Promise<number>((resolve) =>
    gw.server.getConnections((_e, n) => resolve(n)),
  );
  return {
    openWebSockets: ctx.proxy.openWebSockets,
    agentSockets: count(agent.sockets),
    agentFreeSockets: count(agent.freeSockets),
    serverConnections,
  };
});

process.stdout.write(
  `${JSON.stringify({ bench: 'ready', port: gw.port, cookie: `${SESSION_COOKIE}=${token}`, pid: process.pid })}\n`,
);

let closing = false;
const shutdown = () => {
  if (closing) return;
  closing = true;
  setTimeout(() => process.exit(0), 3000).unref();
  void gw
    .close()
    .catch(() => undefined)
    .finally(() => {
      fs.rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    });
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
process.on('disconnect', shutdown);
