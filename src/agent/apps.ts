// One app of a session, as the agent runs it: placeholders filled, started in its own process group,
// probed until ready, stopped with its group. A session runs one main app and maybe extra apps on the
// same allocation, each with its own port or socket, log and TMPDIR. Node built-ins only (bundled).
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { missingRequirements } from '../apps/requires.ts';
import { appTokenFor } from '../apps/secrets.ts';
import { type AgentAppSpec, type ContainerSpec, containerArgv, socketName } from '../apps/types.ts';

export interface AppRunContext {
  home: string;
  user: string;
  sessionDir: string;
  bindHost: string;
  appToken: string;
  /** Atrium's share/ and dist/ directories on this node. */
  shareDir: string;
  distDir: string;
  container?: ContainerSpec;
  /** The environment apps start from (the agent's, without its secrets, with the session's mark). */
  baseEnv: NodeJS.ProcessEnv;
  /** argv prefix that kills an app when the agent dies (`setpriv --pdeathsig KILL --`; see guard.ts). */
  deathSignal: string[];
  log(msg: string): void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function fill(template: string, vars: Record<string, string>): string {
  return template.replace(/\{([a-z_]+)\}/g, (m, k: string) => (k in vars ? vars[k]! : m));
}

export function freePort(host: string): Promise<number> {
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

export class AppProcess {
  readonly socketPath: string;
  port = 0;
  /** Where the gateway reaches it, when not the app itself (the relay's port on remote nodes). */
  relayPort = 0;
  exit: { code: number | null; signal: string | null } | null = null;
  private child: ChildProcess | null = null;
  private exitedPromise: Promise<void> = Promise.resolve();
  private vars: Record<string, string> = {};
  private tmpDir = '';
  private stopped = false;

  constructor(
    readonly spec: AgentAppSpec,
    /** The session's main app (its exit ends the session); else an extra app. */
    readonly main: boolean,
    readonly baseUrl: string,
    private readonly ctx: AppRunContext,
  ) {
    this.socketPath = spec.unixSocket ? path.join(ctx.sessionDir, socketName(spec.id, main)) : '';
  }

  get label(): string {
    return this.main ? 'the app' : `the ${this.spec.id} app`;
  }

  get logFile(): string {
    return path.join(this.ctx.sessionDir, this.main ? 'app.log' : `app-${this.spec.id}.log`);
  }

  get exited(): Promise<void> {
    return this.exitedPromise;
  }

  /** The app's first process, which leads its process group; 0 before it started. */
  get pid(): number {
    return this.child?.pid ?? 0;
  }

  /** What `requires` lacks on this node ([] when everything is there). */
  missing(pathEnv: string | undefined): string[] {
    return missingRequirements(this.spec.requires, pathEnv || undefined);
  }

  /** Starts the app; its output goes to `logFd` (the main app shares the agent's log). */
  async start(logFd: number): Promise<void> {
    const c = this.ctx;
    if (this.socketPath) fs.rmSync(this.socketPath, { force: true });
    else this.port = await freePort(c.bindHost);
    const tmp = path.join(c.sessionDir, `tmp-${this.spec.id}`);
    fs.mkdirSync(tmp, { recursive: true, mode: 0o700 });
    this.tmpDir = tmp;
    this.vars = {
      port: String(this.port),
      bind_host: c.bindHost,
      base_url: this.baseUrl,
      home: c.home,
      session_dir: c.sessionDir,
      socket: this.socketPath,
      user: c.user,
      share: c.shareDir,
      dist: c.distDir,
      node: process.execPath,
      tmp,
    };
    const container = c.container
      ? { ...c.container, args: c.container.args.map((a) => fill(a, this.vars)) }
      : undefined;
    const argv = [
      ...c.deathSignal,
      ...containerArgv(
        container,
        this.spec.command.map((a) => fill(a, this.vars)),
      ),
    ];
    const env: NodeJS.ProcessEnv = { ...c.baseEnv, TMPDIR: tmp };
    const token = appTokenFor(c.appToken, this.spec.id, this.main);
    for (const [k, v] of Object.entries(this.spec.env)) env[k] = fill(v, { ...this.vars, token });
    this.exitedPromise = new Promise<void>((resolve) => {
      const child = spawn(argv[0]!, argv.slice(1), {
        cwd: c.home,
        env,
        detached: true, // own process group: stopping it reaches every child
        stdio: ['ignore', logFd, logFd],
      });
      this.child = child;
      child.on('error', (e) => {
        c.log(`cannot start ${argv[0]}: ${e.message}`);
        this.exit = { code: 127, signal: null };
        resolve();
      });
      child.on('exit', (code, signal) => {
        this.exit = { code, signal };
        c.log(`${this.label} exited (code ${code}, signal ${signal})`);
        resolve();
      });
    });
  }

  /** Probes until the app answers, it exits, or its timeout passes. */
  async waitReady(): Promise<boolean> {
    const spec = this.spec;
    const b = this.ctx.bindHost;
    const host = b === '0.0.0.0' ? '127.0.0.1' : b === '::' ? '::1' : b;
    const readyBy = Date.now() + spec.ready.timeoutSeconds * 1000;
    const target = this.socketPath ? { path: this.socketPath } : { host, port: this.port };
    while (!this.exit && Date.now() < readyBy) {
      let ready: boolean;
      if (spec.ready.http) {
        const p = fill(spec.ready.http, this.vars);
        const status = await httpStatus(
          this.socketPath ? { socketPath: this.socketPath, path: p } : { host, port: this.port, path: p },
        );
        ready = status >= 200 && status < 400;
      } else if (spec.ready.rfb) {
        ready = await rfbGreeting(target);
      } else {
        ready = await tcpOpen(target);
      }
      if (ready) return true;
      // Often: the user waits on this answer (half a period on average), and a probe of an app not
      // yet listening is one failed connect.
      await sleep(20);
    }
    return false;
  }

  /** Stops the app's process group: its stop signal, a grace period, then SIGKILL for what is left. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const pid = this.child?.pid;
    if (pid && !this.exit) {
      try {
        process.kill(-pid, this.spec.stopSignal);
      } catch {
        // already gone
      }
      const grace = sleep(this.spec.graceSeconds * 1000).then(() => 'timeout');
      if ((await Promise.race([this.exited.then(() => 'exited'), grace])) === 'timeout') {
        this.ctx.log(`${this.label} did not stop in time; killing its process group`);
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
    if (this.socketPath) fs.rmSync(this.socketPath, { force: true });
    // Its TMPDIR goes with it (sockets and caches of a process that is gone); logs stay.
    if (this.tmpDir) fs.rmSync(this.tmpDir, { recursive: true, force: true });
  }
}
