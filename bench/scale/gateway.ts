// The Atrium gateway of the scale benchmark, in its own process (so its RSS and CPU are its own): a Slurm
// cluster whose commands go through a counting binDir, the benchmark's users in the database before the
// first poll (so that poll already follows every user's jobs), a signed-in browser session for the user
// with many jobs, and one route to the benchmark's running app (an echo server) under that user.
//   tsx bench/scale/gateway.ts <options JSON>
// Prints {"ready":true,"port":N,"pid":N,"cookie":"atrium_session=...","csrf":"...","username":"...","session":"..."}.
// Started with an IPC channel (and --expose-gc), it answers memory probes after full GCs (mem-report.ts).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { hashPassword } from '../../src/auth/passwords.ts';
import { databaseUrl, parseConfig } from '../../src/config/load.ts';
import { openDb } from '../../src/db/index.ts';
import { createUser, findUserByName } from '../../src/db/users.ts';
import { sessionPrefix } from '../../src/proxy/routes.ts';
import { SESSION_COOKIE } from '../../src/server/context.ts';
import { startGateway } from '../../src/server/gateway.ts';
import { benchGatewayConfig } from '../proxy/lib.ts';
import { answerMemoryRequests, answerProfileRequests } from '../proxy/mem-report.ts';

export interface ScaleGatewayOptions {
  slurmConf: string;
  binDir: string;
  pollSeconds: number;
  /** Unix users, each with a gateway account of the same name; the first one signs in. */
  users: string[];
  /** The running app the WebSockets go to. */
  appPort: number;
  /** Every account's password (the simulated users sign in with it). */
  password?: string;
  /** PostgreSQL (several gateways share it); SQLite in the gateway's temp directory when absent. */
  databaseUrl?: string;
  /** Behind a load balancer: the URL users and agents reach (HAProxy's), whose X-Forwarded-For is trusted. */
  publicUrl?: string;
}

const opts = JSON.parse(process.argv[2] ?? '{}') as ScaleGatewayOptions;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-bench-scale-gw-'));
const behind = opts.publicUrl
  ? [
      `  publicUrl: ${JSON.stringify(opts.publicUrl)}`,
      `  agentUrl: ${JSON.stringify(opts.publicUrl)}`,
      '  trustProxy: true',
    ]
  : [];
const base = benchGatewayConfig(dir);
base.splice(base.indexOf('server:') + 1, 0, ...behind);
const cfg = parseConfig(
  [
    ...base,
    ...(opts.databaseUrl ? ['database:', `  url: ${JSON.stringify(opts.databaseUrl)}`] : []),
    // One browser here does what hundreds of users do: the per-user API limit (1,200/min) would answer 429.
    'auth:',
    '  apiRequestsPerMinute: 100000000',
    // Hundreds of users sign in from one address within a minute.
    '  loginAttemptsPerMinute: 100000000',
    'clusters:',
    '  - name: hpc',
    '    backend: slurm',
    '    slurm:',
    `      conf: ${JSON.stringify(opts.slurmConf)}`,
    `      binDir: ${JSON.stringify(opts.binDir)}`,
    '      runAs: runuser',
    '      partition: batch',
    `      pollSeconds: ${opts.pollSeconds}`,
  ].join('\n'),
  '(bench)',
  dir,
);

// The accounts exist before the gateway starts, so its first poll already follows their jobs.
const db = await openDb(databaseUrl(cfg));
// One hash for all: scrypt costs ~100 ms each, and the sign-ins still verify it one by one.
const passwordHash = opts.password ? await hashPassword(opts.password) : undefined;
for (const name of opts.users) {
  if (!(await findUserByName(db, name)))
    await createUser(db, { username: name, unixUser: name, passwordHash });
}
await db.destroy();

const gw = await startGateway(cfg, {
  log: pino({ level: cfg.log.level }, pino.destination(2)),
  print: () => undefined,
  adminUnixUser: 'nobody',
});
const { ctx } = gw;
const user = await findUserByName(ctx.db, opts.users[0]!);
if (!user) throw new Error('the first user is missing');
const { token, session: web } = await ctx.webSessions.create(user.id);
const sessionId = 'benchapp01';
ctx.routes.set({
  sessionId,
  userId: user.id,
  username: user.username,
  prefix: sessionPrefix(user.username, sessionId),
  target: { host: '127.0.0.1', port: opts.appPort },
  stripPrefix: false,
  headers: { authorization: `token bench-${sessionId}` },
  transport: 'http',
});

if (process.send) {
  answerMemoryRequests(() => ({ openWebSockets: ctx.proxy.openWebSockets }));
  answerProfileRequests();
}

const stopGateway = async () => {
  await gw.close();
  fs.rmSync(dir, { recursive: true, force: true });
  process.exit(0);
};
process.once('SIGTERM', () => void stopGateway());
process.once('SIGINT', () => void stopGateway());

process.stdout.write(
  `${JSON.stringify({
    ready: true,
    port: gw.port,
    pid: process.pid,
    cookie: `${SESSION_COOKIE}=${token}`,
    csrf: web.csrfToken,
    username: user.username,
    session: sessionId,
  })}\n`,
);
