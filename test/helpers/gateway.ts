// Starts a real gateway as a child process (so tests can stop and restart it like an operator would).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const ATRIUM = path.join(ROOT, 'bin', 'atrium');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

export interface TestUser {
  name: string;
  unixUser?: string;
  admin?: boolean;
  password?: string;
}

export interface TestGateway {
  url: string;
  port: number;
  dir: string;
  configFile: string;
  logFile: string;
  passwords: Record<string, string>;
  proc: ChildProcess | null;
  start(): Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<void>;
  restart(): Promise<void>;
  log(): string;
  /** Runs the atrium CLI with this gateway's config. */
  cli(args: string[], input?: string): string;
}

/**
 * A gateway with its own data dir and config. `yaml` is appended to a base config that sets the port
 * and data dir. Users are created with the CLI before the first start.
 */
export async function createTestGateway(
  opts: { yaml?: string; users?: TestUser[]; name?: string } = {},
): Promise<TestGateway> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `atrium-${opts.name ?? 'gw'}-`));
  fs.chmodSync(dir, 0o755);
  const port = await freePort();
  const configFile = path.join(dir, 'atrium.yaml');
  fs.writeFileSync(
    configFile,
    `server:\n  host: 127.0.0.1\n  port: ${port}\ndataDir: ${dir}/data\ninstallPackages: false\nlog:\n  level: ${process.env.ATRIUM_TEST_LOG ?? 'info'}\n${opts.yaml ?? ''}`,
  );
  const logFile = path.join(dir, 'gateway.log');
  const passwords: Record<string, string> = {};
  const cli = (args: string[], input?: string) =>
    execFileSync(ATRIUM, [...args, '-c', configFile], {
      input,
      encoding: 'utf8',
      env: { ...process.env, ATRIUM_ADMIN_UNIX_USER: 'nobody' },
    });
  for (const u of opts.users ?? []) {
    const pw = u.password ?? `pw-${u.name}-${Math.random().toString(36).slice(2, 10)}`;
    passwords[u.name] = pw;
    cli(
      [
        'user',
        'add',
        u.name,
        '--unix-user',
        u.unixUser ?? u.name,
        '--password-stdin',
        ...(u.admin ? ['--admin'] : []),
      ],
      pw,
    );
  }
  const gw: TestGateway = {
    url: `http://127.0.0.1:${port}`,
    port,
    dir,
    configFile,
    logFile,
    passwords,
    proc: null,
    cli,
    log: () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : ''),
    async start() {
      const out = fs.openSync(logFile, 'a');
      const proc = spawn(ATRIUM, ['serve', '-c', configFile], {
        stdio: ['ignore', out, out],
        env: { ...process.env, ATRIUM_ADMIN_UNIX_USER: 'nobody' },
      });
      fs.closeSync(out);
      gw.proc = proc;
      const deadline = Date.now() + 30_000;
      for (;;) {
        if (proc.exitCode !== null)
          throw new Error(`gateway exited (${proc.exitCode}):\n${gw.log().slice(-3000)}`);
        try {
          const r = await fetch(`${gw.url}/api/health`);
          if (r.ok) break;
        } catch {
          // not yet
        }
        if (Date.now() > deadline) throw new Error(`gateway did not start:\n${gw.log().slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop(signal = 'SIGTERM') {
      const p = gw.proc;
      if (!p || p.exitCode !== null) return;
      const exited = new Promise((r) => p.once('exit', r));
      p.kill(signal);
      const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
      gw.proc = null;
    },
    async restart() {
      await gw.stop();
      await gw.start();
    },
  };
  return gw;
}
