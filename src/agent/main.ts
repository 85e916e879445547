// The agent: the program a session's job runs, as the user, on the node. It starts the app on a free
// port, waits until it answers, tells the gateway where it is (with a one-time secret), then keeps a
// heartbeat. It stops the app's whole process group when the job is stopped.
// Node built-ins only: it is bundled into one file that runs wherever Node runs.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AgentAppSpec } from '../apps/types.ts';

interface AgentInput {
  hubUrl: string;
  sessionId: string;
  secret: string;
  app: AgentAppSpec;
  baseUrl: string;
  appToken: string;
  bindHost: string;
  advertiseHost?: string;
  heartbeatSeconds: number;
  deadline?: number;
  /** Atrium's share/ directory (helpers for apps, e.g. Jupyter's sign-in module). */
  shareDir: string;
}

function readInput(env: NodeJS.ProcessEnv): AgentInput {
  const need = (k: string): string => {
    const v = env[k];
    if (!v) throw new Error(`missing ${k} in the environment`);
    return v;
  };
  const input: AgentInput = {
    hubUrl: need('ATRIUM_HUB_URL').replace(/\/+$/, ''),
    sessionId: need('ATRIUM_SESSION_ID'),
    secret: need('ATRIUM_AGENT_SECRET'),
    app: JSON.parse(need('ATRIUM_APP')) as AgentAppSpec,
    baseUrl: need('ATRIUM_BASE_URL'),
    appToken: env.ATRIUM_APP_TOKEN ?? '',
    bindHost: env.ATRIUM_BIND_HOST || '127.0.0.1',
    advertiseHost: env.ATRIUM_ADVERTISE_HOST || undefined,
    heartbeatSeconds: Number(env.ATRIUM_HEARTBEAT_SECONDS || 15),
    deadline: env.ATRIUM_DEADLINE ? Number(env.ATRIUM_DEADLINE) : undefined,
    // The bundle lives in <root>/dist/agent/, the share dir in <root>/share/.
    shareDir:
      env.ATRIUM_SHARE_DIR || path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../share'),
  };
  // Secrets stay in this process only: the app and its children must not inherit them.
  for (const k of Object.keys(env)) if (k.startsWith('ATRIUM_')) delete env[k];
  return input;
}

let logStream: fs.WriteStream | null = null;
function log(msg: string): void {
  const line = `${new Date().toISOString()} atrium-agent: ${msg}\n`;
  if (logStream) logStream.write(line);
  else process.stderr.write(line);
}

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen({ host, port: 0 }, () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function fill(template: string, vars: Record<string, string>): string {
  return template.replace(/\{([a-z_]+)\}/g, (m, k: string) => (k in vars ? vars[k]! : m));
}

function httpStatus(opts: http.RequestOptions, timeoutMs = 2000): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request({ ...opts, method: 'GET', timeout: timeoutMs, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
    req.end();
  });
}

function rfbGreeting(opts: { host?: string; port?: number; path?: string }): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = opts.path ? net.connect(opts.path) : net.connect(opts.port!, opts.host!);
    let buf = '';
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(2000, () => done(false));
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      if (buf.length >= 12) done(buf.startsWith('RFB '));
    });
    sock.on('error', () => done(false));
  });
}

function tcpOpen(opts: { host?: string; port?: number; path?: string }): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = opts.path ? net.connect(opts.path) : net.connect(opts.port!, opts.host!);
    sock.setTimeout(2000, () => {
      sock.destroy();
      resolve(false);
    });
    sock.on('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.on('error', () => resolve(false));
  });
}

async function postJson(
  url: string,
  token: string,
  body: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  let json: Record<string, unknown> = {};
  try {
    json = (await res.json()) as Record<string, unknown>;
  } catch {
    // empty or non-JSON answer
  }
  return { status: res.status, json };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The node's address as the scheduler knows it (NodeAddr), so the gateway routes to the right node. */
async function nodeAddress(bindHost: string): Promise<string> {
  const node = process.env.SLURMD_NODENAME;
  if (node) {
    const out = await new Promise<string>((resolve) => {
      execFile('scontrol', ['show', 'node', '-o', node], { timeout: 10_000 }, (err, stdout) =>
        resolve(err ? '' : stdout),
      );
    });
    const m = /\bNodeAddr=(\S+)/.exec(out);
    if (m?.[1]) return m[1];
  }
  if (bindHost !== '0.0.0.0' && bindHost !== '::') return bindHost;
  return os.hostname();
}

async function main(): Promise<void> {
  const input = readInput(process.env);
  const home = process.env.HOME || os.homedir();
  const sessionDir = path.join(home, '.atrium', 'sessions', input.sessionId);
  fs.mkdirSync(sessionDir, { recursive: true, mode: 0o700 });
  fs.chmodSync(path.join(home, '.atrium'), 0o700);
  logStream = fs.createWriteStream(path.join(sessionDir, 'app.log'), { flags: 'a', mode: 0o600 });
  await new Promise((r) => logStream!.once('open', r));
  const logFd = (logStream as unknown as { fd: number }).fd;
  log(`session ${input.sessionId}: starting app ${input.app.id}`);

  const spec = input.app;
  const socketPath = spec.unixSocket ? path.join(sessionDir, 'app.sock') : '';
  const port = spec.unixSocket ? 0 : await freePort(input.bindHost);
  const vars: Record<string, string> = {
    port: String(port),
    bind_host: input.bindHost,
    base_url: input.baseUrl,
    home,
    session_dir: sessionDir,
    socket: socketPath,
    user: process.env.USER ?? os.userInfo().username,
    share: input.shareDir,
  };
  const argv = spec.command.map((a) => fill(a, vars));
  const appEnv: NodeJS.ProcessEnv = { ...process.env, TMPDIR: sessionDir };
  for (const [k, v] of Object.entries(spec.env)) appEnv[k] = fill(v, { ...vars, token: input.appToken });

  let app: ChildProcess | null = null;
  let stopping = false;
  let appExit: { code: number | null; signal: string | null } | null = null;
  const exited = new Promise<void>((resolve) => {
    app = spawn(argv[0]!, argv.slice(1), {
      cwd: home,
      env: appEnv,
      detached: true, // own process group: stopping it reaches every child
      stdio: ['ignore', logFd, logFd],
    });
    app.on('error', (e) => {
      log(`cannot start ${argv[0]}: ${e.message}`);
      appExit = { code: 127, signal: null };
      resolve();
    });
    app.on('exit', (code, signal) => {
      appExit = { code, signal };
      log(`app exited (code ${code}, signal ${signal})`);
      resolve();
    });
  });

  const stopApp = async (why: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log(`stopping app: ${why}`);
    const pid = (app as ChildProcess | null)?.pid;
    if (pid && !appExit) {
      try {
        process.kill(-pid, spec.stopSignal);
      } catch {
        // already gone
      }
      const grace = sleep(spec.graceSeconds * 1000).then(() => 'timeout');
      if ((await Promise.race([exited.then(() => 'exited'), grace])) === 'timeout') {
        log('app did not stop in time; killing its process group');
      }
    }
    // Whatever is left of the group (children that outlived the leader) goes too.
    if (pid) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // nothing left
      }
    }
  };

  const shutdown = (sig: string) => {
    void stopApp(`received ${sig}`).then(() => process.exit(0));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGHUP', () => shutdown('SIGHUP'));
  if (input.deadline) {
    const ms = input.deadline - Date.now();
    setTimeout(() => void stopApp('time limit reached').then(() => process.exit(0)), Math.max(0, ms)).unref();
  }

  // Wait until the app answers.
  const probeHost =
    input.bindHost === '0.0.0.0' ? '127.0.0.1' : input.bindHost === '::' ? '::1' : input.bindHost;
  const readyBy = Date.now() + spec.ready.timeoutSeconds * 1000;
  let ready = false;
  while (!ready && !appExit && Date.now() < readyBy) {
    const target = socketPath ? { path: socketPath } : { host: probeHost, port };
    if (spec.ready.http) {
      const p = fill(spec.ready.http, vars);
      const status = await httpStatus(
        socketPath ? { socketPath, path: p } : { host: probeHost, port, path: p },
      );
      ready = status >= 200 && status < 400;
    } else if (spec.ready.rfb) {
      ready = await rfbGreeting(target);
    } else {
      ready = await tcpOpen(target);
    }
    if (!ready) await sleep(200);
  }
  if (!ready) {
    const why = appExit
      ? 'the app exited before it was ready (see ~/.atrium/sessions/*/app.log)'
      : 'the app did not become ready in time';
    log(why);
    await stopApp(why);
    try {
      await postJson(`${input.hubUrl}/api/agent/failed`, input.secret, {
        sessionId: input.sessionId,
        reason: why,
      });
    } catch (e) {
      log(`could not report the failure: ${(e as Error).message}`);
    }
    process.exit(1);
  }

  const host = input.advertiseHost ?? (await nodeAddress(input.bindHost));
  log(`app ready on ${socketPath || `${host}:${port}`}; reporting to the gateway`);

  // Report once; retry while the gateway is unreachable (it may be restarting).
  let heartbeatToken = '';
  for (let attempt = 0; ; attempt++) {
    try {
      const r = await postJson(`${input.hubUrl}/api/agent/ready`, input.secret, {
        sessionId: input.sessionId,
        host,
        port,
        socket: socketPath || undefined,
      });
      if (r.status === 200 && typeof r.json.heartbeatToken === 'string') {
        heartbeatToken = r.json.heartbeatToken;
        break;
      }
      log(`the gateway refused the report (HTTP ${r.status}); stopping`);
      await stopApp('refused by the gateway');
      process.exit(1);
    } catch (e) {
      if (appExit || Date.now() > readyBy + 600_000) {
        await stopApp('gateway unreachable');
        process.exit(1);
      }
      log(`gateway unreachable (${(e as Error).message}); retrying`);
      await sleep(Math.min(10_000, 500 * 2 ** Math.min(attempt, 5)));
    }
  }

  // Heartbeats until the app exits or the gateway says the session is over.
  const beat = async () => {
    try {
      const r = await postJson(`${input.hubUrl}/api/agent/heartbeat`, heartbeatToken, {
        sessionId: input.sessionId,
      });
      if (r.status === 410 || r.status === 401) {
        await stopApp(`the gateway ended the session (HTTP ${r.status})`);
        process.exit(0);
      }
    } catch {
      // The gateway may be restarting: the session goes on.
    }
  };
  const timer = setInterval(() => void beat(), input.heartbeatSeconds * 1000);
  await exited;
  clearInterval(timer);
  if (!stopping) {
    try {
      await postJson(`${input.hubUrl}/api/agent/exit`, heartbeatToken, {
        sessionId: input.sessionId,
        code: (appExit as { code: number | null } | null)?.code ?? null,
      });
    } catch {
      // nothing more to do
    }
    await stopApp('app exited');
  }
  process.exit((appExit as { code: number | null } | null)?.code ?? 0);
}

main().catch((e: Error) => {
  log(`fatal: ${e.message}`);
  process.exit(2);
});
