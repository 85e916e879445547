// The ssh backend end to end: Debian's sshd on 127.0.0.1 (own port, host key and config, started and
// stopped by PID), a gateway whose only cluster is that host, a Jupyter session started over ssh as
// alice and reached through the gateway (print(6*7) -> 42), one ssh call per poll, stop as the user.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SshAdapter } from '../../src/scheduler/ssh.ts';
import { Client, type SessionView, waitForState } from '../helpers/client.ts';
import { createTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { kernelRoundTrip } from '../helpers/jupyter.ts';
import { sshdMissing, startSshd, type TestSshd } from '../helpers/sshd.ts';

const why = sshdMissing();
if (why) console.warn(`[ssh e2e] SKIPPED: ${why}`);

let sshd: TestSshd;
let gw: TestGateway;
let alice: Client;
const jupyter = { cluster: 'login', app: 'jupyter', cores: 1, memoryGb: 1, hours: 1 };

function procUser(pid: number): string | null {
  try {
    const uid = /^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    const line = fs
      .readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.split(':')[2] === uid);
    return line?.split(':')[0] ?? null;
  } catch {
    return null;
  }
}

function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

function allCmdlines(): string[] {
  return fs
    .readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map((d) => cmdline(Number(d)));
}

describe.skipIf(why !== null)('ssh backend: Jupyter on a host reached over ssh', () => {
  beforeAll(async () => {
    sshd = await startSshd(['alice', 'bob', 'carol']);
    gw = await createTestGateway({
      name: 'ssh',
      users: [{ name: 'alice' }],
      yaml: [
        'clusters:',
        '  - name: login',
        '    backend: ssh',
        '    title: Login node (ssh)',
        '    ssh:',
        '      host: 127.0.0.1',
        `      port: ${sshd.port}`,
        `      keyFile: ${sshd.keyFile}`,
        `      knownHostsFile: ${sshd.knownHostsFile}`,
        '      pollUser: carol',
        '      pollSeconds: 2',
      ].join('\n'),
    });
    await gw.start();
    alice = new Client(gw.url);
    expect((await alice.login('alice', gw.passwords.alice!)).status).toBe(200);
  });

  afterAll(async () => {
    if (alice) {
      const list = ((await alice.get('/api/sessions')).body as { sessions?: SessionView[] }).sessions ?? [];
      for (const s of list)
        if (s.state !== 'ended' && s.state !== 'failed') await alice.del(`/api/sessions/${s.id}`);
      await new Promise((r) => setTimeout(r, 2500));
    }
    await gw?.stop();
    await sshd?.stop();
    if (sshd) fs.rmSync(sshd.dir, { recursive: true, force: true });
  });

  it('offers the host on the form, with its cores and memory from one poll', async () => {
    const r = await alice.get('/api/clusters');
    const clusters = (r.body as { clusters: { name: string; backend: string; free: { rows: unknown[] } }[] })
      .clusters;
    expect(clusters.map((c) => c.name)).toEqual(['login']);
    expect(clusters[0]!.backend).toBe('ssh');
  });

  it('starts Jupyter over ssh as alice and reaches its kernel through the gateway', async () => {
    const t0 = Date.now();
    const r = await alice.post('/api/sessions', jupyter);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    let s = (r.body as { session: SessionView }).session;
    s = await waitForState(alice, s.id, ['running'], 120_000);
    const startMs = Date.now() - t0;
    const pid = Number(s.jobId);
    expect(pid).toBeGreaterThan(1);
    // The job is the agent, as alice, carrying its session tag; no secret is on any command line.
    expect(procUser(pid)).toBe('alice');
    expect(cmdline(pid)).toContain(`--atrium-session=${s.id}`);
    for (const c of allCmdlines()) expect(c).not.toMatch(/ATRIUM_AGENT_SECRET|ATRIUM_APP_TOKEN/);
    const rt = await kernelRoundTrip(gw.url + s.url, alice.cookie);
    expect(rt.stdout.trim()).toBe('42');
    console.info(`[ssh e2e] session running ${startMs} ms after the request; kernel answered 42`);
    // The agent's log is where the launch script put it, in alice's home.
    expect(fs.existsSync(`/home/alice/.atrium/logs/session-${s.id}.log`)).toBe(true);

    // One ssh call per poll, whatever the number of sessions.
    const adapter = new SshAdapter({
      name: 'login',
      host: '127.0.0.1',
      port: sshd.port,
      keyFile: sshd.keyFile,
      knownHostsFile: sshd.knownHostsFile,
      sshCommand: '/usr/bin/ssh',
      pollUser: 'carol',
      commandTimeoutMs: 20_000,
    });
    const snap = await adapter.poll();
    expect(snap.ok, snap.error).toBe(true);
    expect(snap.calls).toBe(1);
    expect(adapter.runner.calls).toBe(1);
    const job = snap.jobs.find((j) => j.jobId === String(pid));
    expect(job).toMatchObject({ user: 'alice', comment: s.id, state: 'running', nodeAddress: '127.0.0.1' });
    expect(snap.nodes[0]!.cpus).toBeGreaterThan(0);

    // Stop: kill -TERM as alice over ssh; the poll sees the agent gone.
    expect((await alice.del(`/api/sessions/${s.id}`)).status).toBe(200);
    const ended = await waitForState(alice, s.id, ['ended'], 60_000);
    expect(ended.reason).toBe('stopped by you');
    const deadline = Date.now() + 20_000;
    while (procUser(pid) !== null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(procUser(pid)).toBeNull();
  });

  it('a poll that cannot log in reports the host unreachable (ok: false), not that sessions ended', async () => {
    const adapter = new SshAdapter({
      name: 'login',
      host: '127.0.0.1',
      port: sshd.port,
      keyFile: sshd.keyFile,
      knownHostsFile: sshd.knownHostsFile,
      sshCommand: '/usr/bin/ssh',
      pollUser: 'nobody',
      commandTimeoutMs: 20_000,
    });
    // `nobody` is not among the server's AllowUsers: the poll says the host is unreachable (ok: false).
    const snap = await adapter.poll();
    expect(snap.ok).toBe(false);
    expect(snap.error).toMatch(/ssh-poll failed/);
  });
});
