// A throwaway OpenSSH server on 127.0.0.1 for the ssh backend's tests: its own port, host key and
// config under a temp dir; the gateway's public key is trusted for every allowed user through one
// AuthorizedKeysFile (the BSC setup: the host trusts the gateway for its users). Started and stopped
// by its PID; nothing outside the temp dir is changed except /run/sshd (sshd's privilege-separation dir).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './gateway.ts';

export const SSHD = '/usr/sbin/sshd';

export interface TestSshd {
  dir: string;
  port: number;
  /** The gateway's private key (root-only). */
  keyFile: string;
  knownHostsFile: string;
  logFile: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

/** Why the test cannot run here, or null. */
export function sshdMissing(): string | null {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'must run as root';
  if (!fs.existsSync(SSHD)) return `${SSHD} is missing (apt-get install openssh-server)`;
  if (!fs.existsSync('/usr/bin/ssh')) return '/usr/bin/ssh is missing (apt-get install openssh-client)';
  return null;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

export async function startSshd(users: string[]): Promise<TestSshd> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-sshd-'));
  fs.chmodSync(dir, 0o755);
  const keygen = (file: string, comment: string) =>
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
  const hostKey = path.join(dir, 'ssh_host_ed25519_key');
  const keyFile = path.join(dir, 'gateway_key');
  keygen(hostKey, 'atrium-test-host');
  keygen(keyFile, 'atrium-gateway');
  const port = await freePort();
  const authorized = path.join(dir, 'authorized_keys');
  // `restrict`: no pty, no forwarding; the gateway only runs commands.
  fs.writeFileSync(authorized, `restrict ${fs.readFileSync(`${keyFile}.pub`, 'utf8')}`, { mode: 0o644 });
  const knownHostsFile = path.join(dir, 'known_hosts');
  const hostPub = fs.readFileSync(`${hostKey}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
  fs.writeFileSync(knownHostsFile, `[127.0.0.1]:${port} ${hostPub}\n`);
  const config = path.join(dir, 'sshd_config');
  fs.writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${authorized}`,
      'AuthenticationMethods publickey',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin no',
      `AllowUsers ${users.join(' ')}`,
      // PAM: the test users have no password ("!" in shadow), which sshd without PAM takes as locked.
      'UsePAM yes',
      // The key file lives under /tmp (world-writable): only this test server accepts that.
      'StrictModes no',
      'PrintMotd no',
      'X11Forwarding no',
      'AllowTcpForwarding no',
      'LogLevel VERBOSE',
      '',
    ].join('\n'),
  );
  fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const logFile = path.join(dir, 'sshd.log');
  const proc = spawn(SSHD, ['-D', '-f', config, '-E', logFile], { stdio: 'ignore' });
  const deadline = Date.now() + 15_000;
  while (!(await portOpen(port))) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      const log = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '';
      throw new Error(`sshd did not start (exit ${proc.exitCode}): ${log.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    dir,
    port,
    keyFile,
    knownHostsFile,
    logFile,
    proc,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}
