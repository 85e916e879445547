// The agent: the program a session's job runs, as the user, on the node. It starts the session's app
// (and its extra apps) on free ports or private sockets, waits until they answer, tells the gateway
// where they are (with a one-time secret), then keeps a heartbeat. It stops every app's whole process
// group, and every process its apps started, when the job is stopped; a guard process stops them when
// the agent itself dies (guard.ts).
// Node built-ins only: it is bundled into one file that runs wherever Node runs.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { relaySecretFor, tunnelSecretFor } from '../apps/secrets.ts';
import { type AgentAppSpec, type ContainerSpec, extraAppBase } from '../apps/types.ts';
import { tellingLine } from '../core/telling-line.ts';
import { AppProcess } from './apps.ts';
import {
  deathSignalPrefix,
  GUARD_FLAG,
  runGuard,
  SESSION_MARK,
  startGuard,
  stopSessionProcesses,
} from './guard.ts';
import { type Relay, startRelay } from './relay.ts';
import { type AgentTunnel, startTunnel, type TunnelTarget } from './tunnel.ts';

interface AgentInput {
  hubUrl: string;
  sessionId: string;
  secret: string;
  app: AgentAppSpec;
  /** More apps on the same allocation, each at <base>.<id>/. */
  extraApps: AgentAppSpec[];
  baseUrl: string;
  appToken: string;
  bindHost: string;
  advertiseHost?: string;
  heartbeatSeconds: number;
  deadline?: number;
  /** Atrium's share/ directory (helpers for apps, e.g. Jupyter's sign-in module). */
  shareDir: string;
  /** Atrium's dist/ directory (built programs, e.g. the terminal server). */
  distDir: string;
  /**
   * Serve every app through the relay (the gateway cannot reach sockets on this node, and a TCP app's
   * port, once the app dies, is anyone's to bind: the relay's handshake tells the gateway it is ours).
   */
  relay: boolean;
  /** Dial the gateway instead (the node accepts no inbound connection): every app goes through the tunnel. */
  tunnel: boolean;
  /** The environment's container: every app runs in it. */
  container?: ContainerSpec;
  /** Keep the user's identity-provider access token in <session dir>/access_token. */
  fetchAccessToken: boolean;
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
    extraApps: env.ATRIUM_EXTRA_APPS ? (JSON.parse(env.ATRIUM_EXTRA_APPS) as AgentAppSpec[]) : [],
    baseUrl: need('ATRIUM_BASE_URL'),
    appToken: env.ATRIUM_APP_TOKEN ?? '',
    bindHost: env.ATRIUM_BIND_HOST || '127.0.0.1',
    advertiseHost: env.ATRIUM_ADVERTISE_HOST || undefined,
    heartbeatSeconds: Number(env.ATRIUM_HEARTBEAT_SECONDS || 15),
    deadline: env.ATRIUM_DEADLINE ? Number(env.ATRIUM_DEADLINE) : undefined,
    // The bundle lives in <root>/dist/agent/, the share dir in <root>/share/.
    shareDir:
      env.ATRIUM_SHARE_DIR || path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../share'),
    distDir: env.ATRIUM_DIST_DIR || path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist'),
    relay: env.ATRIUM_RELAY === '1',
    tunnel: env.ATRIUM_TUNNEL === '1',
    container: env.ATRIUM_CONTAINER ? (JSON.parse(env.ATRIUM_CONTAINER) as ContainerSpec) : undefined,
    fetchAccessToken: env.ATRIUM_FETCH_ACCESS_TOKEN === '1',
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

/**
 * node:http(s) rather than fetch: fetch's first call loads undici (~70 ms of CPU), and the first call
 * is the ready report, between the app's first answer and the user's first page.
 */
function postJson(
  url: string,
  token: string,
  body: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const target = new URL(url);
  const data = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = (target.protocol === 'https:' ? https : http).request(
      target,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': data.length,
          authorization: `Bearer ${token}`,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e) => {
          clearTimeout(timer);
          reject(e);
        });
        res.on('end', () => {
          clearTimeout(timer);
          let json: Record<string, unknown> = {};
          try {
            json = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
          } catch {
            // empty or non-JSON answer
          }
          resolve({ status: res.statusCode ?? 0, json });
        });
      },
    );
    const timer = setTimeout(() => req.destroy(new Error('no answer in 10 s')), 10_000);
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.end(data);
  });
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

/** The last `bytes` of a file ('' when it cannot be read). */
function tail(file: string, bytes: number): string {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const buf = Buffer.alloc(Math.min(bytes, size));
      fs.readSync(fd, buf, 0, buf.length, size - buf.length);
      return buf.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '';
  }
}

/** Replaces a file atomically, readable by the user only: readers see the old token or the new one. */
function writePrivateFile(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.rmSync(tmp, { force: true });
  fs.writeFileSync(tmp, text, { mode: 0o600, flag: 'wx' });
  fs.renameSync(tmp, file);
}

/**
 * Keeps <session dir>/access_token fresh: asks the gateway (with the heartbeat token) for the user's
 * current access token whenever the gateway says the next one is due. The file goes away when the user
 * has signed out (the gateway then has no token to give).
 */
function keepAccessToken(input: AgentInput, heartbeatToken: string, file: string): { stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let current = '';
  const fetchToken = async () => {
    let nextSeconds = input.heartbeatSeconds;
    try {
      const r = await postJson(`${input.hubUrl}/api/agent/token`, heartbeatToken, {
        sessionId: input.sessionId,
      });
      if (r.status === 200 && typeof r.json.accessToken === 'string') {
        if (r.json.accessToken !== current) {
          writePrivateFile(file, r.json.accessToken);
          current = r.json.accessToken;
          log('access token written');
        }
        const due = Number(r.json.refreshInSeconds);
        nextSeconds = Number.isFinite(due) ? Math.min(3600, Math.max(2, due)) : 60;
      } else if (r.status === 404) {
        if (current) log('no access token any more (signed out); removing it');
        fs.rmSync(file, { force: true });
        current = '';
        nextSeconds = Math.max(input.heartbeatSeconds, 30);
      } else if (r.status === 410) {
        return;
      }
    } catch {
      // The gateway may be restarting: try again soon.
    }
    if (!stopped) timer = setTimeout(() => void fetchToken(), nextSeconds * 1000);
  };
  void fetchToken();
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      fs.rmSync(file, { force: true });
    },
  };
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
  const user = process.env.USER ?? os.userInfo().username;
  const tokenFile = path.join(sessionDir, 'access_token');
  const baseEnv: NodeJS.ProcessEnv = { ...process.env };
  // Not a secret: the mark by which every process of the session is found and stopped (guard.ts).
  baseEnv[SESSION_MARK] = input.sessionId;
  if (input.fetchAccessToken) baseEnv.ATRIUM_ACCESS_TOKEN_FILE = tokenFile;
  // The session listens on no TCP port: Jupyter's kernels neither (share/jupyter/atrium-jupyter).
  if (input.tunnel) baseEnv.ATRIUM_JUPYTER_KERNELS = 'ipc';
  // The `atrium` command (e.g. `atrium kernel add`) is at hand in sessions, after everything else.
  const atriumBin = path.resolve(input.distDir, '..', 'bin');
  if (fs.existsSync(path.join(atriumBin, 'atrium')))
    baseEnv.PATH = `${baseEnv.PATH ?? '/usr/bin:/bin'}:${atriumBin}`;
  const ctx = {
    home,
    user,
    sessionDir,
    // Behind the relay, TCP apps listen on loopback only: other nodes cannot reach them at all.
    bindHost: input.relay || input.tunnel ? '127.0.0.1' : input.bindHost,
    appToken: input.appToken,
    shareDir: input.shareDir,
    distDir: input.distDir,
    container: input.container,
    baseEnv,
    deathSignal: deathSignalPrefix(baseEnv.PATH),
    log,
  };
  if (ctx.deathSignal.length === 0)
    log('setpriv --pdeathsig is not available here: the guard alone watches the apps');
  // Started before any app, so no app exists that it does not watch.
  const guard = startGuard({
    sessionId: input.sessionId,
    argv: [process.execPath, ...process.execArgv, process.argv[1]!],
    env: { PATH: baseEnv.PATH, HOME: home, LANG: baseEnv.LANG },
    stderrFd: logFd,
    log,
  });
  const mainApp = new AppProcess(input.app, true, input.baseUrl, ctx);
  const apps = [
    mainApp,
    ...input.extraApps.map((s) => new AppProcess(s, false, extraAppBase(input.baseUrl, s.id), ctx)),
  ];
  log(`session ${input.sessionId}: starting ${apps.map((a) => a.spec.id).join(', ')}`);
  // The gateway confirms where the job runs while the apps start (its ready answer then need not wait
  // for a poll). Nothing depends on this call's answer: the ready report is the one that counts.
  postJson(`${input.hubUrl}/api/agent/starting`, input.secret, { sessionId: input.sessionId }).catch(
    () => undefined,
  );

  const relays: Relay[] = [];
  let tunnel: AgentTunnel | undefined;
  let stopping = false;
  const stopApp = async (why: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log(`stopping: ${why}`);
    // The token must not outlive the session.
    if (input.fetchAccessToken) fs.rmSync(tokenFile, { force: true });
    for (const r of relays) r.close();
    tunnel?.close();
    await Promise.all(apps.map((a) => a.stop()));
    // What the apps started in sessions of their own (kernels, terminals' shells) is not in their groups.
    const left = await stopSessionProcesses(input.sessionId, [], {
      graceMs: 2_000,
      uid: process.getuid?.(),
      exclude: new Set([process.pid, guard.pid]),
    });
    if (left > 0) log(`stopped ${left} process(es) the apps left behind`);
  };

  const fail = async (why: string): Promise<never> => {
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

  // An app that is not installed here says so (the gateway may not have been able to tell).
  for (const a of apps) {
    const missing = a.missing(baseEnv.PATH);
    if (missing.length > 0 && !input.container)
      await fail(`${a.spec.id} is not installed on this node (missing ${missing.join(', ')})`);
  }

  for (const a of apps) {
    let fd = logFd;
    if (!a.main) fd = fs.openSync(a.logFile, 'a', 0o600);
    await a.start(fd);
    if (a.pid) guard.watch(a.pid);
    if (!a.main) fs.closeSync(fd);
  }
  // Wait until every app answers.
  const ready = await Promise.all(apps.map((a) => a.waitReady()));
  const notReady = apps.find((_, i) => !ready[i]);
  if (notReady) {
    const where = `see ~/.atrium/sessions/${input.sessionId}/${path.basename(notReady.logFile)}`;
    // The line of the app's output that says why, so the card and the notification tell it.
    const said = tellingLine(tail(notReady.logFile, 16 * 1024));
    await fail(
      `${notReady.label} ${notReady.exit ? 'exited before it was ready' : 'did not become ready in time'}${said ? `: ${said}` : ''} (${where})`,
    );
  }
  // Remote nodes: the gateway reaches every app through a relay that wants the app's secret.
  if (input.relay) {
    for (const a of apps) {
      const secret = relaySecretFor(input.appToken, a.spec.id);
      const target = a.socketPath ? { socketPath: a.socketPath } : { host: '127.0.0.1', port: a.port };
      const r = await startRelay({ target, host: input.bindHost, secret, log });
      relays.push(r);
      a.relayPort = r.port;
    }
  }
  // Nodes that accept no inbound connection: the agent dials the gateway, which reaches every app through it.
  if (input.tunnel) {
    const targets = new Map<string, TunnelTarget>();
    for (const a of apps)
      targets.set(
        a.spec.id,
        a.socketPath ? { socketPath: a.socketPath } : { host: '127.0.0.1', port: a.port },
      );
    const t = startTunnel({
      hubUrl: input.hubUrl,
      sessionId: input.sessionId,
      secret: tunnelSecretFor(input.appToken, input.sessionId),
      targets,
      log,
    });
    tunnel = t;
    const up = await Promise.race([t.up.then(() => true), sleep(600_000).then(() => false)]);
    if (!up) await fail('the tunnel to the gateway could not be opened in 10 minutes');
  }
  const where = (a: AppProcess) =>
    input.tunnel
      ? { port: 0, socket: undefined }
      : a.relayPort
        ? { port: a.relayPort, socket: undefined }
        : { port: a.port, socket: a.socketPath || undefined };

  const host = input.advertiseHost ?? (await nodeAddress(input.bindHost));
  log(
    `ready: ${apps.map((a) => `${a.spec.id} on ${a.socketPath && !a.relayPort ? a.socketPath : `${host}:${a.relayPort || a.port}`}`).join(', ')}${input.tunnel ? ', through the tunnel' : ''}; reporting to the gateway`,
  );
  // Extra apps that have exited: listed on every heartbeat (the first one at once), and the gateway
  // drops their routes, since a port an app let go of is anyone's to bind.
  const stoppedApps = new Set<string>();
  let beat: () => Promise<void> = async () => undefined;
  for (const a of apps.slice(1)) {
    void a.exited.then(() => {
      if (stopping) return;
      log(`${a.label} stopped; the session goes on with the others`);
      stoppedApps.add(a.spec.id);
      void beat();
    });
  }

  // Report once; retry while the gateway is unreachable (it may be restarting).
  const readyAt = Date.now();
  let heartbeatToken = '';
  for (let attempt = 0; ; attempt++) {
    try {
      const r = await postJson(`${input.hubUrl}/api/agent/ready`, input.secret, {
        sessionId: input.sessionId,
        host,
        ...where(mainApp),
        apps: apps.slice(1).map((a) => ({ id: a.spec.id, ...where(a) })),
      });
      if (r.status === 200 && typeof r.json.heartbeatToken === 'string') {
        heartbeatToken = r.json.heartbeatToken;
        break;
      }
      if (r.status >= 500) throw new Error(`the gateway asks to report again (HTTP ${r.status})`);
      log(`the gateway refused the report (HTTP ${r.status}); stopping`);
      await stopApp('refused by the gateway');
      process.exit(1);
    } catch (e) {
      if (mainApp.exit || Date.now() > readyAt + 600_000) {
        await stopApp('gateway unreachable');
        process.exit(1);
      }
      log(`gateway unreachable (${(e as Error).message}); retrying`);
      await sleep(Math.min(10_000, 500 * 2 ** Math.min(attempt, 5)));
    }
  }

  // Heartbeats until the app exits or the gateway says the session is over.
  beat = async () => {
    try {
      const r = await postJson(`${input.hubUrl}/api/agent/heartbeat`, heartbeatToken, {
        sessionId: input.sessionId,
        ...(stoppedApps.size > 0 ? { stoppedApps: [...stoppedApps] } : {}),
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
  if (stoppedApps.size > 0) void beat();
  const tokens = input.fetchAccessToken
    ? keepAccessToken(input, heartbeatToken, tokenFile)
    : { stop: () => undefined };
  await mainApp.exited;
  clearInterval(timer);
  tokens.stop();
  if (!stopping) {
    try {
      await postJson(`${input.hubUrl}/api/agent/exit`, heartbeatToken, {
        sessionId: input.sessionId,
        code: mainApp.exit?.code ?? null,
      });
    } catch {
      // nothing more to do
    }
    await stopApp('app exited');
  }
  // Never a signal's status (128+N): the gateway reads one on the job as "the agent was killed".
  const code = mainApp.exit?.code ?? 0;
  process.exit(code >= 128 ? 1 : code);
}

if (process.argv.includes(GUARD_FLAG)) {
  const id = process.argv[process.argv.indexOf(GUARD_FLAG) + 1] ?? '';
  runGuard(id, process.stdin, (msg) => log(`guard: ${msg}`)).then(
    () => process.exit(0),
    (e: Error) => {
      log(`guard: ${e.message}`);
      process.exit(1);
    },
  );
} else {
  main().catch((e: Error) => {
    log(`fatal: ${e.message}`);
    process.exit(2);
  });
}
