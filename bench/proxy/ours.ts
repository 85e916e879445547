// The real Atrium gateway, in its own process, for the proxy benchmark: startGateway with a temporary
// data dir, one user with a signed-in browser session, and one route per upstream under
// /user/bench/<session>/. Every proxied request and WebSocket goes through the same cookie check as a
// user's browser. The cookie is printed, and memory is reported over IPC (run with --expose-gc).
//   tsx bench/proxy/ours.ts --route <sessionid>=<port> [--route ...]
// Prints {"bench":"ready","port":N,"cookie":"atrium_session=...","pid":N}.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { parseConfig } from '../../src/config/load.ts';
import { createUser } from '../../src/db/users.ts';
import { sessionPrefix } from '../../src/proxy/routes.ts';
import { SESSION_COOKIE } from '../../src/server/context.ts';
import { startGateway } from '../../src/server/gateway.ts';
import { benchGatewayConfig } from './lib.ts';
import { answerMemoryRequests, answerProfileRequests } from './mem-report.ts';

const routes: { id: string; port: number }[] = [];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--route') {
    const [id, port] = (argv[++i] ?? '').split('=');
    routes.push({ id: id!, port: Number(port) });
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
for (const r of routes) {
  ctx.routes.set({
    sessionId: r.id,
    userId: user.id,
    username: user.username,
    prefix: sessionPrefix(user.username, r.id),
    target: { host: '127.0.0.1', port: r.port },
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
