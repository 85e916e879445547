// Pure parts of the operations work: /metrics access, the ssh backend's argv, launch script and poll
// parser, the admin route enumeration, the CLI's --until.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { parseUntil } from '../../src/cli/admin.ts';
import { parseConfig } from '../../src/config/load.ts';
import {
  buildLaunchScript,
  parsePollOutput,
  type SshAdapterConfig,
  sshArgv,
} from '../../src/scheduler/ssh.ts';
import type { SessionSubmission } from '../../src/scheduler/types.ts';
import { routesFromTree } from '../../src/server/features/admin.ts';
import { metricsAllowed } from '../../src/server/metrics.ts';

describe('metricsAllowed', () => {
  const open = { allowFrom: ['127.0.0.1', '::1', '10.1.0.0/16'] };
  it('lets listed addresses and networks in, and IPv4-mapped IPv6 forms of them', () => {
    expect(metricsAllowed(open, '127.0.0.1', undefined)).toBe(true);
    expect(metricsAllowed(open, '::ffff:127.0.0.1', undefined)).toBe(true);
    expect(metricsAllowed(open, '::1', undefined)).toBe(true);
    expect(metricsAllowed(open, '10.1.200.3', undefined)).toBe(true);
    expect(metricsAllowed(open, '10.2.0.1', undefined)).toBe(false);
    expect(metricsAllowed(open, '192.0.2.7', undefined)).toBe(false);
  });
  it('accepts the bearer token from anywhere, and only the exact token', () => {
    const cfg = { allowFrom: [], token: 'a-long-metrics-token-123' };
    expect(metricsAllowed(cfg, '192.0.2.7', 'Bearer a-long-metrics-token-123')).toBe(true);
    expect(metricsAllowed(cfg, '192.0.2.7', 'Bearer a-long-metrics-token-124')).toBe(false);
    expect(metricsAllowed(cfg, '127.0.0.1', undefined)).toBe(false);
  });
  it('is loopback-only by default', () => {
    const cfg = parseConfig('{}').metrics;
    expect(cfg.allowFrom).toEqual(['127.0.0.1', '::1']);
    expect(metricsAllowed(cfg, '192.0.2.7', undefined)).toBe(false);
  });
});

const sshCfg: SshAdapterConfig = {
  name: 'login',
  host: 'login1.example.org',
  port: 2222,
  keyFile: '/var/lib/atrium/ssh/{user}',
  knownHostsFile: '/etc/atrium/known_hosts',
  sshCommand: '/usr/bin/ssh',
  pollUser: 'atrium',
  commandTimeoutMs: 30_000,
};

const hostile = `a'b"c $(touch /tmp/pwned) \`id\` ; rm -rf / \n next`;

function submission(): SessionSubmission {
  return {
    sessionId: 'abc123',
    tag: 'abc123',
    identity: { user: 'alice', uid: 1001, gid: 1001, home: '/home/alice', shell: '/bin/bash' },
    cores: 2,
    memoryMb: 4096,
    gpus: 0,
    minutes: 60,
    agentArgv: ['/usr/bin/node', '/opt/atrium/dist/agent/atrium-agent.mjs'],
    agentEnv: { ATRIUM_AGENT_SECRET: 'sekrit-value', ATRIUM_APP: hostile },
    setup: ['export SITE=1'],
  };
}

describe('ssh backend', () => {
  it('builds ssh argv with every remote word quoted, and the per-user key', () => {
    const argv = sshArgv(sshCfg, 'alice', ['kill', '-TERM', '123']);
    expect(argv.slice(-4)).toEqual(['alice', '--', 'login1.example.org', "'kill' '-TERM' '123'"]);
    expect(argv).toContain('/var/lib/atrium/ssh/alice');
    expect(argv).toContain('BatchMode=yes');
    expect(argv).toContain('StrictHostKeyChecking=yes');
    expect(argv).toContain('UserKnownHostsFile=/etc/atrium/known_hosts');
    expect(() => sshArgv(sshCfg, '-oProxyCommand=x', ['true'])).toThrow(/invalid user/);
    expect(() => sshArgv({ ...sshCfg, host: '-oProxyCommand=x' }, 'alice', ['true'])).toThrow(
      /invalid ssh host/,
    );
  });

  it('keeps secrets out of argv; the launch script survives hostile values (run by bash)', () => {
    const sub = submission();
    const argv = sshArgv(sshCfg, 'alice', ['/bin/bash', '-s']);
    expect(argv.join(' ')).not.toContain('sekrit');
    const script = buildLaunchScript(sub, { deadlineMs: 1_900_000_000_000, address: '10.0.0.5' });
    expect(script).toContain("export ATRIUM_AGENT_SECRET='sekrit-value'");
    expect(script).toContain(
      "'--atrium-session=abc123' '--atrium-deadline=1900000000' '--atrium-resources=2,4096,0'",
    );
    // bash parses it; the hostile value comes out byte for byte.
    const probe = script.replace(/\(\n[\s\S]*$/, 'printf %s "$ATRIUM_APP"\n');
    const r = spawnSync('/bin/bash', ['-n'], { input: script });
    expect(r.status).toBe(0);
    const out = spawnSync(
      '/bin/bash',
      ['-c', probe.replace(/^mkdir[^\n]*\n/m, '').replace(/^cd "\$HOME"[^\n]*\n/m, '')],
      {
        encoding: 'utf8',
        env: { PATH: '/usr/bin:/bin' },
      },
    );
    expect(out.stdout).toBe(hostile);
  });

  it('reads agents from ps output by their marker only (never root, never a look-alike)', () => {
    const out = [
      '  4242 alice          75 /usr/bin/node /opt/a.mjs --atrium-session=abc123 --atrium-deadline=1900000000 --atrium-resources=2,4096,1',
      '  4243 root           10 /usr/bin/node /opt/a.mjs --atrium-session=zzz --atrium-deadline=1900000000 --atrium-resources=2,4096,0',
      '  4244 bob            10 vim --atrium-session=abc123',
      '     1 root         9999 /sbin/init',
      '@@atrium-host@@',
      '16',
      '65536000',
      '',
    ].join('\n');
    const { agents, host } = parsePollOutput(out, 1_800_000_000);
    expect(agents).toHaveLength(1);
    expect(agents[0]!.job).toMatchObject({
      jobId: '4242',
      user: 'alice',
      comment: 'abc123',
      cpus: 2,
      memoryMb: 4096,
      gpus: 1,
      startTime: 1_800_000_000 - 75,
    });
    expect(agents[0]!.deadline).toBe(1_900_000_000);
    expect(host).toEqual({ cpus: 16, memoryMb: 64000 });
  });
});

describe('admin tools', () => {
  it('enumerates routes from fastify route tree', () => {
    const tree = [
      '├── /api/admin/audit (GET, HEAD)',
      '├── /api/admin/announcements (GET, HEAD, POST)',
      '│   └── /:id/expire (POST)',
      '├── /api/admin/sessions (GET, HEAD)',
      '│   └── /:id/stop (POST)',
      '└── /api/sessions/:id (GET, HEAD)',
    ].join('\n');
    expect(routesFromTree(tree)).toEqual([
      { method: 'GET', path: '/api/admin/audit' },
      { method: 'GET', path: '/api/admin/announcements' },
      { method: 'POST', path: '/api/admin/announcements' },
      { method: 'POST', path: '/api/admin/announcements/:id/expire' },
      { method: 'GET', path: '/api/admin/sessions' },
      { method: 'POST', path: '/api/admin/sessions/:id/stop' },
      { method: 'GET', path: '/api/sessions/:id' },
    ]);
  });

  it('parses --until as a duration or a time', () => {
    const now = Date.UTC(2026, 0, 1);
    expect(parseUntil('2h', now)).toBe(now + 7_200_000);
    expect(parseUntil('30m', now)).toBe(now + 1_800_000);
    expect(parseUntil('2026-01-02T00:00:00Z', now)).toBe(Date.UTC(2026, 0, 2));
    expect(parseUntil('soon', now)).toBeNull();
  });
});
