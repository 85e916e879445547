// HAProxy (Debian's) in front of test gateways, on loopback, running the shipped configuration
// deploy/haproxy/haproxy.cfg with only its binds, servers, socket and process settings swapped for the
// test's. Started as a daemon (-D) with a pid file, stopped by that PID; its admin socket drains and
// readies servers.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort, ROOT } from './gateway.ts';
import { until } from './wait.ts';

export const SHIPPED_CONFIG = path.join(ROOT, 'deploy', 'haproxy', 'haproxy.cfg');

export interface TestHaproxy {
  url: string;
  port: number;
  dir: string;
  pid: number;
  /** A command on the admin socket (e.g. `set server atrium_gateways/gw2 state drain`); its answer. */
  admin(cmd: string): Promise<string>;
  /** `show stat` of the gateways' backend: server name -> status (UP, DOWN, ...). */
  status(): Promise<Record<string, string>>;
  stop(): void;
}

/** Why HAProxy tests cannot run here, or undefined. */
export function haproxyMissing(): string | undefined {
  return spawnSync('haproxy', ['-v']).status === 0
    ? undefined
    : 'haproxy is not installed (Debian package haproxy; scripts/deps.sh test installs it)';
}

/** The shipped file with the test's binds, servers and admin socket; fails when the file changed shape. */
export function testConfig(port: number, socket: string, gateways: { name: string; port: number }[]): string {
  let cfg = fs.readFileSync(SHIPPED_CONFIG, 'utf8');
  const swap = (re: RegExp, by: string) => {
    if (!re.test(cfg)) throw new Error(`${SHIPPED_CONFIG}: no line matches ${re}`);
    cfg = cfg.replace(re, by);
  };
  // No syslog here, and the test runs it in the foreground of its own pid file.
  swap(/^[ \t]*log \/dev\/log.*\n/m, '');
  swap(/^[ \t]*stats socket .*$/m, `    stats socket ${socket} mode 600 level admin`);
  swap(/^[ \t]*daemon\n/m, '');
  // Plain HTTP on loopback: the TLS frontend's bind and the redirecting one go.
  swap(/^frontend atrium_http\n(?:[ \t]+.*\n)+\n/m, '');
  swap(/^[ \t]*bind :443 .*$/m, `    bind 127.0.0.1:${port}`);
  const servers = gateways
    .map((g) => `    server ${g.name} 127.0.0.1:${g.port} check`)
    .concat(gateways.map((g) => `    server ${g.name}-when-none-ready 127.0.0.1:${g.port} backup`))
    .join('\n');
  swap(/(^[ \t]*server .*\n)+/m, `${servers}\n`);
  return cfg;
}

/** `port`: where it listens (default: a free one). */
export async function startHaproxy(
  gateways: { name: string; port: number }[],
  port?: number,
): Promise<TestHaproxy> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-haproxy-'));
  port ??= await freePort();
  const socket = path.join(dir, 'admin.sock');
  const file = path.join(dir, 'haproxy.cfg');
  const pidFile = path.join(dir, 'haproxy.pid');
  fs.writeFileSync(file, testConfig(port, socket, gateways));
  execFileSync('haproxy', ['-c', '-q', '-f', file]);
  execFileSync('haproxy', ['-f', file, '-D', '-p', pidFile]);
  const pid = Number(fs.readFileSync(pidFile, 'utf8').trim().split('\n')[0]);
  const admin = (cmd: string) =>
    new Promise<string>((resolve, reject) => {
      const s = net.connect(socket);
      let out = '';
      s.on('data', (d) => {
        out += d.toString();
      });
      s.on('end', () => resolve(out));
      s.on('error', reject);
      s.end(`${cmd}\n`);
    });
  const h: TestHaproxy = {
    url: `http://127.0.0.1:${port}`,
    port,
    dir,
    pid,
    admin,
    async status() {
      const csv = await admin('show stat');
      const out: Record<string, string> = {};
      for (const line of csv.split('\n')) {
        const f = line.split(',');
        if (f[0] === 'atrium_gateways' && f[1] && f[1] !== 'BACKEND') out[f[1]] = f[17] ?? '';
      }
      return out;
    },
    stop() {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // gone already
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  await until('haproxy to listen', () => fetch(`${h.url}/api/health`).then(() => true), 10_000, 100);
  return h;
}
