// A newcomer's set-up: Atrium copied under /root (mode 700, root's), started from there. Sessions run
// as their users, who cannot enter /root: the gateway places the files they run in runtimeDir and a
// local Jupyter session answers print(6*7). A session whose environment's setup line fails says which
// line and why, on its card and in the notification, and its owner (only) can read its whole log; on
// the Slurm test cluster too. The CLI takes --data-dir like `serve` and says which database it writes,
// forged agent reports are logged, and `config check` names an agent path users cannot read.
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, type SessionView, waitForState } from '../helpers/client.ts';
import { scancelTestUsers, testCluster } from '../helpers/cluster.ts';
import { createTestGateway, freePort, ROOT, type TestGateway } from '../helpers/gateway.ts';
import { gatewayYaml, homeOf } from '../helpers/jobs-cluster.ts';
import { kernelRoundTrip } from '../helpers/jupyter.ts';
import { until } from '../helpers/wait.ts';

const why =
  process.getuid?.() !== 0
    ? 'must run as root (a copy under /root, sessions as other users)'
    : !fs.existsSync('/root') || (fs.statSync('/root').mode & 0o777) !== 0o700
      ? '/root is not a mode-700 directory here'
      : !fs.existsSync(path.join(ROOT, 'dist', 'agent', 'atrium-agent.mjs'))
        ? 'not built (npm run build)'
        : null;
if (why) console.warn(`[private-checkout e2e] SKIPPED: ${why}`);

const BROKEN_ENV = [
  '  - id: system',
  '    name: System software',
  '  - id: broken',
  '    name: Broken environment',
  '    setup:',
  '      - export BEFORE_THE_BREAK=1',
  '      - source /nonexistent/atrium-env/activate',
  '      - export NEVER_REACHED=1',
].join('\n');
const SETUP_LINE = 'the environment setup failed (exit 1): source /nonexistent/atrium-env/activate';
const SETUP_ERROR = '/nonexistent/atrium-env/activate: No such file or directory';

/** Where the failed session's reason must appear: the card, the notification, the log. */
async function expectExplainedFailure(c: Client, other: Client, s: SessionView): Promise<void> {
  expect(s.state).toBe('failed');
  expect(s.reason).toContain(SETUP_LINE);
  expect(s.reason).toContain(SETUP_ERROR);
  const notes = (await c.get('/api/notifications')).body as {
    notifications: { kind: string; body: string }[];
  };
  const note = notes.notifications.find((n) => n.kind === 'session.failed' && n.body.includes(SETUP_LINE));
  expect(note, JSON.stringify(notes)).toBeTruthy();
  const log = await c.req('GET', `/api/sessions/${s.id}/log`);
  expect(log.status).toBe(200);
  expect(log.headers.get('content-type')).toMatch(/^text\/plain/);
  const text = await log.text();
  expect(text).toContain(`==> ~/.atrium/logs/session-${s.id}.log <==`);
  expect(text).toContain(SETUP_ERROR);
  expect(text).toContain(`${SETUP_LINE.replace('the environment', 'atrium: the environment')}`);
  // The file is the owner's, private, written by the job as them.
  const file = path.join(homeOf('alice'), '.atrium', 'logs', `session-${s.id}.log`);
  const st = fs.statSync(file);
  expect(st.uid).toBe(Number(execFileSync('id', ['-u', 'alice'], { encoding: 'utf8' }).trim()));
  expect(st.mode & 0o777).toBe(0o600);
  // Another user cannot tell the session exists; nobody signed out can read anything.
  expect((await other.req('GET', `/api/sessions/${s.id}/log`)).status).toBe(404);
  expect((await new Client(c.base).req('GET', `/api/sessions/${s.id}/log`)).status).toBe(401);
}

describe.skipIf(why !== null)('Atrium under /root (mode 700): a local backend set-up', () => {
  let parent: string;
  let copy: string;
  let runtimeDir: string;
  let dataDir: string;
  let configFile: string;
  let logFile: string;
  let proc: ChildProcess | null = null;
  let url: string;
  const passwords: Record<string, string> = {};
  let alice: Client;
  let bob: Client;
  const atrium = (args: string[], opts: { input?: string; cwd?: string } = {}) =>
    spawnSync(path.join(copy, 'bin', 'atrium'), args, {
      input: opts.input,
      cwd: opts.cwd ?? copy,
      encoding: 'utf8',
      env: { ...process.env, ATRIUM_ADMIN_UNIX_USER: 'nobody' },
    });

  beforeAll(async () => {
    parent = fs.mkdtempSync('/root/atrium-private-');
    fs.chmodSync(parent, 0o700);
    copy = path.join(parent, 'atrium');
    fs.mkdirSync(copy, { mode: 0o700 });
    // What a checkout holds after the README's run command: sources, the build, the npm modules.
    execFileSync('cp', [
      '-a',
      ...['bin', 'dist', 'share', 'src', 'package.json'].map((f) => path.join(ROOT, f)),
      copy,
    ]);
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(copy, 'node_modules'));
    runtimeDir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-private-rt-')), 'runtime');
    fs.chmodSync(path.dirname(runtimeDir), 0o755);
    dataDir = path.join(parent, 'data');
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    configFile = path.join(parent, 'atrium.yaml');
    fs.writeFileSync(
      configFile,
      `server:\n  host: 127.0.0.1\n  port: ${port}\ninstallPackages: false\nruntimeDir: ${runtimeDir}\nenvironments:\n${BROKEN_ENV}\n`,
    );
    // The accounts go into the data dir `serve` is given, and the command says so.
    for (const [i, name] of ['alice', 'bob'].entries()) {
      passwords[name] = `pw-${name}-${Math.random().toString(36).slice(2, 10)}`;
      const r = atrium(['user', 'add', name, '-c', configFile, '--data-dir', dataDir, '--password-stdin'], {
        input: passwords[name],
      });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toContain(`users database: ${dataDir}/atrium.db${i === 0 ? ' (new)' : '\n'}`);
    }
    logFile = path.join(parent, 'gateway.log');
    const out = fs.openSync(logFile, 'a');
    proc = spawn(path.join(copy, 'bin', 'atrium'), ['serve', '-c', configFile, '--data-dir', dataDir], {
      cwd: copy,
      stdio: ['ignore', out, out],
      env: { ...process.env, ATRIUM_ADMIN_UNIX_USER: 'nobody' },
    });
    fs.closeSync(out);
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`gateway exited (${proc.exitCode}):\n${gatewayLog()}`);
      if (Date.now() > deadline) throw new Error(`gateway did not start:\n${gatewayLog()}`);
      if (
        await fetch(`${url}/api/health`).then(
          (r) => r.ok,
          () => false,
        )
      )
        break;
      await new Promise((r) => setTimeout(r, 200));
    }
    alice = new Client(url);
    bob = new Client(url);
    expect((await alice.login('alice', passwords.alice!)).status).toBe(200);
    expect((await bob.login('bob', passwords.bob!)).status).toBe(200);
  });

  const gatewayLog = () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '');

  afterAll(async () => {
    if (alice) {
      const list = ((await alice.get('/api/sessions')).body as { sessions?: SessionView[] }).sessions ?? [];
      for (const s of list)
        if (s.state !== 'ended' && s.state !== 'failed') await alice.del(`/api/sessions/${s.id}`);
      await new Promise((r) => setTimeout(r, 1500));
    }
    if (proc && proc.exitCode === null) {
      const exited = new Promise((r) => proc!.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    }
    if (parent) fs.rmSync(parent, { recursive: true, force: true });
    if (runtimeDir) fs.rmSync(path.dirname(runtimeDir), { recursive: true, force: true });
  });

  it('places what sessions run where every user can read it, and Jupyter answers print(6*7)', async () => {
    const r = await alice.post('/api/sessions', {
      cluster: 'local',
      app: 'jupyter',
      cores: 1,
      memoryGb: 1,
      hours: 1,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const s = await waitForState(alice, (r.body as { session: SessionView }).session.id, ['running']);
    const rt = await kernelRoundTrip(url + s.url, alice.cookie);
    expect(rt.stdout.trim()).toBe('42');
    // The agent (the job's process) runs from the copy in runtimeDir, not from under /root.
    const argv = fs.readFileSync(`/proc/${s.jobId}/cmdline`, 'utf8').split('\0');
    const script = argv.find((a) => a.endsWith('atrium-agent.mjs'))!;
    expect(path.dirname(path.dirname(path.dirname(path.dirname(script))))).toBe(runtimeDir);
    expect(gatewayLog()).toContain("sessions use a copy of Atrium's files in runtimeDir");
    const placed = path.dirname(path.dirname(path.dirname(script)));
    for (const f of ['dist/agent/atrium-agent.mjs', 'share/jupyter/atrium_jupyter_auth.py']) {
      const st = fs.statSync(path.join(placed, f));
      expect([st.uid, st.mode & 0o777]).toEqual([0, 0o644]);
    }
    expect(fs.statSync(path.join(placed, 'share/jupyter/atrium-jupyter')).mode & 0o777).toBe(0o755);
    // The `atrium` command of sessions runs for the user from there too.
    const kl = spawnSync(
      'runuser',
      ['-u', 'alice', '--', path.join(placed, 'bin', 'atrium'), 'kernel', 'list'],
      {
        cwd: '/tmp',
        encoding: 'utf8',
      },
    );
    expect(kl.status, kl.stderr).toBe(0);
    await alice.del(`/api/sessions/${s.id}`);
    await waitForState(alice, s.id, ['ended'], 30_000);
  });

  it('the web terminal (its server and node-pty) runs from the copy too', async () => {
    const r = await alice.post('/api/sessions', {
      cluster: 'local',
      app: 'terminal',
      cores: 1,
      memoryGb: 1,
      hours: 1,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const s = await waitForState(alice, (r.body as { session: SessionView }).session.id, ['running']);
    const page = await alice.req('GET', s.url);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('xterm');
    await alice.del(`/api/sessions/${s.id}`);
    await waitForState(alice, s.id, ['ended'], 30_000);
  });

  it("a failed setup line is the session's reason, in the notification and in the log only its owner reads", async () => {
    const r = await alice.post('/api/sessions', {
      cluster: 'local',
      app: 'jupyter',
      environment: 'broken',
      cores: 1,
      memoryGb: 1,
      hours: 1,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const s = await waitForState(alice, (r.body as { session: SessionView }).session.id, ['failed']);
    await expectExplainedFailure(alice, bob, s);
  });

  it('logs forged exit and failure reports like forged ready calls', async () => {
    for (const callback of ['exit', 'failed']) {
      const res = await fetch(`${url}/api/agent/${callback}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer forged-0123456789' },
        body: JSON.stringify({ sessionId: 'nosuchsession', reason: 'x', code: 0 }),
      });
      expect(res.status).toBe(403);
    }
    // The log is written as the requests are answered; its file may lag a little behind.
    for (const callback of ['exit', 'failed'])
      await until(`the refused ${callback} report in the gateway's log`, () =>
        gatewayLog()
          .split('\n')
          .some(
            (l) =>
              l.includes('agent callback refused') &&
              l.includes('nosuchsession') &&
              l.includes(`"callback":"${callback}"`),
          ),
      );
  });

  it('`config check` names an agent path the users cannot read, for each cluster', () => {
    const agent = path.join(copy, 'dist', 'agent', 'atrium-agent.mjs');
    const file = path.join(parent, 'check.yaml');
    fs.writeFileSync(
      file,
      [
        `agent:\n  script: ${agent}`,
        'clusters:',
        '  - name: here',
        '    backend: local',
        '  - name: hpc',
        '    backend: slurm',
        '    slurm:',
        '      conf: /etc/slurm/slurm.conf',
        '',
      ].join('\n'),
    );
    const r = atrium(['config', 'check', file]);
    expect(r.status).toBe(2);
    for (const c of ['here', 'hpc'])
      expect(r.stdout).toContain(
        `error: cluster "${c}": agent.script ${agent} cannot be read by the users: /root is mode 700`,
      );
    // Without agent.script: the gateway places its own copy, which config check says.
    const ok = atrium(['config', 'check', configFile]);
    expect(ok.status, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`places a copy in runtimeDir ${runtimeDir}`);
  });

  it('`user add -c /dev/null` writes ./data of the working directory, never /dev/data', () => {
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-cwd-'));
    try {
      const r = atrium(
        ['user', 'add', 'carol', '-c', '/dev/null', '--unix-user', 'alice', '--password-stdin'],
        {
          input: 'a-long-password',
          cwd,
        },
      );
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toContain(`users database: ${cwd}/data/atrium.db (new)`);
      expect(fs.existsSync(path.join(cwd, 'data', 'atrium.db'))).toBe(true);
      expect(fs.existsSync('/dev/data')).toBe(false);
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true });
    }
  });
});

const cluster = why ? undefined : testCluster('private-checkout', { up: 'nodes', partition: 'interactive' });

describe.skipIf(!cluster)('a failed setup line on Slurm, from the job output file', () => {
  let gw: TestGateway;
  let alice: Client;
  let bob: Client;

  beforeAll(async () => {
    gw = await createTestGateway({
      name: 'setup-slurm',
      users: [{ name: 'alice' }, { name: 'bob' }],
      yaml: `${gatewayYaml(cluster!)}\nenvironments:\n${BROKEN_ENV}\n`,
    });
    await gw.start();
    alice = new Client(gw.url);
    bob = new Client(gw.url);
    expect((await alice.login('alice', gw.passwords.alice!)).status).toBe(200);
    expect((await bob.login('bob', gw.passwords.bob!)).status).toBe(200);
  });

  afterAll(async () => {
    if (cluster) scancelTestUsers(cluster);
    await gw?.stop();
  });

  it('fails with the setup line and its error, in the notification and the owner-only log', async () => {
    const r = await alice.post('/api/sessions', {
      cluster: 'hpc',
      app: 'jupyter',
      environment: 'broken',
      cores: 1,
      memoryGb: 1,
      hours: 1,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const s = await waitForState(alice, (r.body as { session: SessionView }).session.id, ['failed']);
    await expectExplainedFailure(alice, bob, s);
  });
});
