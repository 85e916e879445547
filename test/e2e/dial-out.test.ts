// A cluster whose nodes accept no inbound connection (`connection: dial-out`), on the real Slurm test
// cluster: the session's agent dials the gateway's own port and the gateway carries Jupyter's HTTP and
// kernel WebSocket, an extra app's (a terminal's) WebSocket and a desktop's RFB stream through that
// tunnel. Nothing of the jobs listens on TCP, the gateway opens no connection to the node, the agent
// dials again after a gateway restart (the session shows "reconnecting" meanwhile) and the same kernel
// answers, and a forged tunnel carries nothing and is in the audit log.

import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { tunnelSecretFor } from '../../src/apps/secrets.ts';
import { TUNNEL_PATH, tunnelMac } from '../../src/apps/tunnel.ts';
import { decodeFrame, encodeFrame, FRAME } from '../../src/core/tunnel-frames.ts';
import { launchBrowser, shareSession } from '../helpers/browser.ts';
import { Client, type SessionView, waitForState } from '../helpers/client.ts';
import { testCluster } from '../helpers/cluster.ts';
import { createTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { createKernel, runInKernel } from '../helpers/jupyter.ts';

const cluster = testCluster('dial-out');

/** The processes of a session's job: the agent (its environment names the session) and what it started. */
function pidsOfSession(id: string): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const env = fs.readFileSync(`/proc/${d}/environ`, 'latin1').split('\0');
      if (env.includes(`ATRIUM_SESSION=${id}`) || env.includes(`ATRIUM_SESSION_ID=${id}`))
        out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
}

/** The TCP connections of a process (`ss -tnpH`): local and peer address of each. */
function tcpOf(pid: number): { local: string; peer: string }[] {
  return execFileSync('ss', ['-tnpH'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes(`pid=${pid},`))
    .map((l) => {
      const f = l.trim().split(/\s+/);
      return { local: f[3]!, peer: f[4]! };
    });
}

/** Types `echo $((6*7)) $SLURM_JOB_ID` in a terminal at `url` and resolves with what it printed. */
function shellAnswer(url: string, cookie: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}pty?cols=80&rows=24`, { headers: { cookie } });
    let text = '';
    const t = setTimeout(() => reject(new Error(`no answer: ${JSON.stringify(text)}`)), 15_000);
    ws.on('open', () => ws.send(JSON.stringify({ t: 'i', d: 'echo $((6*7)) $SLURM_JOB_ID\r' })));
    ws.on('message', (d) => {
      text += String(d);
      if (/[\r\n]42 \d+\r?\n/.test(text)) {
        clearTimeout(t);
        ws.close();
        resolve(text);
      }
    });
    ws.on('error', reject);
  });
}

/** Dials the tunnel endpoint as a forger: answers the gateway's nonce with a MAC under `secret`. */
function forge(gwUrl: string, id: string, secret: string): Promise<{ welcomed: boolean; status?: number }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${gwUrl.replace(/^http/, 'ws')}${TUNNEL_PATH}${id}`);
    const nonceA = crypto.randomBytes(32);
    ws.on('unexpected-response', (req, res) => {
      req.destroy();
      resolve({ welcomed: false, status: res.statusCode });
    });
    ws.on('message', (m: Buffer) => {
      const d = decodeFrame(m);
      if (d.ok && d.frame.type === FRAME.HELLO) {
        ws.send(
          encodeFrame(
            FRAME.AUTH,
            0,
            Buffer.concat([nonceA, tunnelMac(secret, 'agent', id, d.frame.payload, nonceA)]),
          ),
        );
        // Then asks for a stream, as only the gateway may: it must carry nothing.
        ws.send(encodeFrame(FRAME.DATA, 1, Buffer.from('GET / HTTP/1.1\r\n\r\n')));
      } else {
        resolve({ welcomed: d.ok && d.frame.type === FRAME.WELCOME });
        ws.terminate();
      }
    });
    ws.on('close', () => resolve({ welcomed: false }));
    ws.on('error', () => undefined);
  });
}

describe.skipIf(!cluster)('dial-out tunnel (nodes that accept no inbound connection)', () => {
  let gw: TestGateway;
  let alice: Client;
  let s: SessionView;
  let desktop: SessionView;
  let code: SessionView & { apps: { url: string; openUrl: string }[] };
  let kernel = '';

  beforeAll(async () => {
    // Installed once per machine, then found in place (the test command installs them first).
    execFileSync(
      'bash',
      [path.join(import.meta.dirname, '..', '..', 'scripts', 'apps.sh'), 'install', 'code-server', 'shiny'],
      { stdio: 'inherit' },
    );
    gw = await createTestGateway({
      name: 'dial-out',
      users: [{ name: 'alice' }],
      yaml: [
        'sessions:',
        '  heartbeatSeconds: 5',
        'clusters:',
        '  - name: hpc',
        '    backend: slurm',
        '    connection: dial-out',
        `    slurm: { conf: ${cluster!.slurmConf}, runAs: runuser, pollSeconds: 2, partition: interactive }`,
        '',
      ].join('\n'),
    });
    await gw.start();
    alice = new Client(gw.url);
    expect((await alice.login('alice', gw.passwords.alice!)).status).toBe(200);
    // Both jobs start at once.
    const start = async (app: string, extraApps: string[] = []) => {
      const r = await alice.post('/api/sessions', {
        cluster: 'hpc',
        app,
        extraApps,
        cores: 1,
        memoryGb: 1,
        hours: 1,
      });
      expect(r.status).toBe(201);
      return waitForState(alice, (r.body as { session: SessionView }).session.id, ['running'], 90_000);
    };
    let vscode: SessionView;
    [s, desktop, vscode] = await Promise.all([
      start('jupyter', ['terminal']),
      start('desktop'),
      start('vscode', ['shiny']),
    ]);
    code = vscode as typeof code;
  }, 120_000);

  afterAll(async () => {
    if (!gw) return;
    for (const x of [s, desktop, code])
      if (x) await alice.post(`/api/sessions/${x.id}/stop`, {}).catch(() => undefined);
    await gw.stop();
  });

  it("Jupyter's kernel answers through the tunnel; nothing of the job listens on TCP; no connection to the node", async () => {
    kernel = await createKernel(gw.url + s.url, alice.cookie);
    expect((await runInKernel(gw.url + s.url, alice.cookie, kernel, 'print(6*7)')).trim()).toBe('42');
    // A forked child's output still reaches the notebook (through that pipe, now a Unix socket).
    const fork = [
      'import os',
      'pid = os.fork()',
      "print('child' if pid == 0 else 'parent', flush=True)",
      'os._exit(0) if pid == 0 else os.waitpid(pid, 0)',
    ].join('\n');
    expect(await runInKernel(gw.url + s.url, alice.cookie, kernel, fork)).toContain('child');
    // Its extra app (a terminal, its own stream of the same tunnel) answers over its WebSocket.
    const terminal = (s as SessionView & { apps: { url: string }[] }).apps[0]!.url;
    expect(await shellAnswer(gw.url + terminal, alice.cookie)).toContain(`42 ${s.jobId}`);
    // The session's routing has no address to dial: the agent reported the node and no port or socket.
    const [row] = await gw.query<{ host: string; port: number; socket_path: string | null }>(
      'select host, port, socket_path from sessions where id = ?',
      [s.id],
    );
    expect(row).toMatchObject({ port: 0, socket_path: null });
    const pids = pidsOfSession(s.id);
    expect(pids.length).toBeGreaterThanOrEqual(2);
    const listening = execFileSync('ss', ['-ltnpH'], { encoding: 'utf8' });
    const ours = listening.split('\n').filter((l) => pids.some((p) => l.includes(`pid=${p},`)));
    // Jupyter, the agent, the kernels' channels and ipykernel's pipe for forked subprocesses'
    // output (share/jupyter/atrium_ipc_kernel.py) are all on Unix sockets.
    expect(ours).toEqual([]);
    // Every TCP connection of the gateway is one made to it (its own port): none to the node's apps.
    const conns = tcpOf(gw.proc!.pid!);
    expect(conns.length).toBeGreaterThan(0);
    for (const c of conns) expect(c.local.endsWith(`:${gw.port}`)).toBe(true);
  });

  it("the desktop's RFB stream comes through the bridge and the tunnel; Xvnc listens on no TCP port", async () => {
    const ws = new WebSocket(`${gw.url.replace(/^http/, 'ws')}${desktop.url}websockify`, 'binary', {
      headers: { cookie: alice.cookie },
    });
    const greeting = await new Promise<string>((resolve, reject) => {
      ws.once('message', (m: Buffer) => resolve(m.toString('latin1')));
      ws.once('error', reject);
    });
    ws.close();
    expect(greeting).toMatch(/^RFB 003\.00\d\n/);
    const pids = pidsOfSession(desktop.id);
    const listening = execFileSync('ss', ['-ltnpH'], { encoding: 'utf8' });
    expect(listening.split('\n').filter((l) => pids.some((p) => l.includes(`pid=${p},`)))).toEqual([]);
  });

  it('VS Code (its workbench and WebSocket) and R Shiny (server-side output) work through the tunnel', async () => {
    const browser = await launchBrowser({ name: 'dial-out', timeout: 30_000 });
    try {
      await shareSession(browser.context, gw.url, alice.cookie);
      const page = browser.page;
      const frames: string[] = [];
      page.on('websocket', (w) => w.on('framereceived', () => frames.push(w.url())));
      await page.goto(gw.url + code.openUrl);
      await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
      await expect.poll(() => frames.some((u) => u.includes(code.url)), { timeout: 30_000 }).toBe(true);
      const shiny = code.apps[0]!;
      await page.goto(gw.url + shiny.openUrl);
      await expect.poll(() => page.locator('#product').textContent(), { timeout: 30_000 }).toBe('n * 7 = 42');
      expect(frames.some((u) => u.includes(shiny.url))).toBe(true);
    } finally {
      await browser.close();
    }
    const listening = execFileSync('ss', ['-ltnpH'], { encoding: 'utf8' });
    const pids = pidsOfSession(code.id);
    expect(listening.split('\n').filter((l) => pids.some((p) => l.includes(`pid=${p},`)))).toEqual([]);
  });

  it('a forged tunnel (wrong secret, another session id) carries nothing and is in the audit log', async () => {
    expect(await forge(gw.url, s.id, 'not-the-secret')).toEqual({ welcomed: false });
    expect(await forge(gw.url, 'nosuchsession1', 'not-the-secret')).toMatchObject({
      welcomed: false,
      status: 404,
    });
    // The Jupyter session's own agent secret, offered for the desktop session's id.
    const [{ app_token }] = (await gw.query<{ app_token: string }>(
      'select app_token from sessions where id = ?',
      [s.id],
    )) as [{ app_token: string }];
    expect(await forge(gw.url, desktop.id, tunnelSecretFor(app_token, s.id))).toEqual({ welcomed: false });
    const refusals = () =>
      gw.query<{ target: string; details: string }>(
        "select target, details from audit_log where action = 'tunnel.refused' order by id",
      );
    // Written as the refusal happens, which the forger may hear of first.
    await expect
      .poll(async () => (await refusals()).map((a) => a.target))
      .toEqual([s.id, 'nosuchsession1', desktop.id]);
    const audit = await refusals();
    expect(audit[0]!.details).toContain('does not know the session secret');
    expect(audit[2]!.details).toContain('does not know the session secret');
    expect(gw.log()).toContain('audit tunnel.refused');
    // The real tunnel is untouched.
    expect((await runInKernel(gw.url + s.url, alice.cookie, kernel, 'print(7*6)')).trim()).toBe('42');
  });

  it('after a gateway restart the agent dials again and the same kernel answers', async () => {
    // The agent is held (SIGSTOP) across the restart, so the gateway is seen without its tunnel: the
    // session shows "reconnecting" (not ended), and its address says so.
    const agent = pidsOfSession(s.id).find((p) => {
      const argv = fs.readFileSync(`/proc/${p}/cmdline`, 'latin1');
      return argv.includes('atrium-agent') && !argv.includes('--atrium-guard');
    });
    expect(agent).toBeDefined();
    process.kill(agent!, 'SIGSTOP');
    try {
      await gw.restart();
      const held = ((await alice.get(`/api/sessions/${s.id}`)).body as { session: SessionView }).session;
      expect(held).toMatchObject({ state: 'running', displayState: 'reconnecting' });
      const page = await alice.req('GET', s.url);
      expect(page.status).toBe(502);
      expect(await page.text()).toContain('The session is reconnecting');
    } finally {
      process.kill(agent!, 'SIGCONT');
    }
    await expect
      .poll(
        async () =>
          ((await alice.get(`/api/sessions/${s.id}`)).body as { session: SessionView }).session.displayState,
        { timeout: 20_000, interval: 250 },
      )
      .toBe('running');
    expect((await runInKernel(gw.url + s.url, alice.cookie, kernel, 'print(6*7)')).trim()).toBe('42');
    const log = fs.readFileSync(`/home/alice/.atrium/sessions/${s.id}/app.log`, 'utf8');
    expect(log).toMatch(/tunnel: down/);
    expect(log.match(/tunnel: up/g)?.length).toBeGreaterThanOrEqual(2);
  });
});
