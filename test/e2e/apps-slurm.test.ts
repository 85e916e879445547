// The shipped apps in real Slurm jobs on the test cluster of scripts/cluster.sh, reached through the
// gateway only, the way remote nodes are: the cluster keeps the default `appSockets: relay`, so every
// app listens on its private socket on the node and the gateway goes through the agent's relay (TCP,
// one secret per app). VS Code's workbench and its WebSocket, the desktop in noVNC, Shiny's server
// output over its WebSocket (all in Chromium), Jupyter plus a terminal in one job with an environment,
// another user refused everywhere, and RStudio refused without an sbatch. The same Slurm cluster is also
// configured with `appSockets: unix` (right for single-host clusters): Jupyter and a terminal there are
// reached on their sockets directly. One gateway; the sessions start in parallel. The cluster is found through $ATRIUM_TEST_CLUSTER_BASE/cluster.json; without it
// (or without a node of partition interactive up) the file skips with a message.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { launchBrowser, shareSession, type TestBrowser } from '../helpers/browser.ts';
import { Client, type SessionView, waitForState } from '../helpers/client.ts';
import { testCluster } from '../helpers/cluster.ts';
import { echoApps } from '../helpers/echo-app.ts';
import { createTestGateway, ROOT, type TestGateway } from '../helpers/gateway.ts';
import { createKernel, runInKernel, wsStatus } from '../helpers/jupyter.ts';

const cluster = testCluster('apps-slurm', { up: 'nodes', partition: 'interactive' });
const conf = cluster?.slurmConf ?? '';
const slurmEnv = () => ({ ...process.env, SLURM_CONF: conf });
const SHOTS = path.join(os.tmpdir(), 'atrium-apps-screenshots');
const echo = echoApps();

type View = SessionView & { apps: { id: string; url: string; openUrl: string }[] };
const base = { cluster: 'slurm', cores: 1, memoryGb: 1, hours: 1 };

let gw: TestGateway;
let alice: Client;
let bob: Client;
let browser: TestBrowser;
let work: string;
const started: string[] = [];
const PROFILE = '/home/alice/.profile';
let profileBefore: string | undefined;
const sessions: Record<'vscode' | 'desktop' | 'shiny' | 'jupyter' | 'unix', View> = {} as never;

/** A cluster entry on the test cluster; its nodes are this host, so the gateway may check what is installed. */
function slurmCluster(name: string, title: string, pollSeconds: number, extra: string[] = []): string[] {
  return [
    `  - name: ${name}`,
    '    backend: slurm',
    `    title: ${title}`,
    ...extra,
    '    checkInstalled: true',
    '    slurm:',
    `      conf: ${conf}`,
    '      runAs: runuser',
    '      partition: interactive',
    `      pollSeconds: ${pollSeconds}`,
  ];
}

async function startSession(body: Record<string, unknown>): Promise<View> {
  const r = await alice.post('/api/sessions', { ...base, ...body });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  const s = (r.body as { session: View }).session;
  started.push(s.id);
  return (await waitForState(alice, s.id, ['running'], 120_000)) as View;
}

async function stop(id: string): Promise<void> {
  await alice.del(`/api/sessions/${id}`);
  await waitForState(alice, id, ['ended'], 30_000);
}

async function browserPage(): Promise<Page> {
  await shareSession(browser.context, gw.url, alice.cookie);
  return browser.context.newPage();
}

function sessionDir(id: string): string {
  return `/home/alice/.atrium/sessions/${id}`;
}

/** The processes of a session (its directory on the command line or in the environment). */
function pidsOfSession(id: string): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'latin1');
      const env = fs.readFileSync(`/proc/${d}/environ`, 'latin1');
      if (cmd.includes(`/sessions/${id}/`) || env.includes(`/sessions/${id}/`)) out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
}

/** The relay port the agent reported for an app (its log: "ready: <app> on <host>:<port>, ..."). */
function relayPort(id: string, app: string): number {
  const log = fs.readFileSync(`${sessionDir(id)}/app.log`, 'utf8');
  return Number(new RegExp(`\\b${app} on 127\\.0\\.0\\.1:(\\d+)`).exec(log)?.[1] ?? 0);
}

/** What a relay port answers to a connection without the secret: nothing, it just closes. */
function directAnswer(port: number, first: string): Promise<string> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1', () => c.write(first));
    let data = '';
    c.on('data', (d) => {
      data += d;
    });
    c.on('close', () => resolve(data));
    c.on('error', () => resolve(data));
  });
}

/**
 * A client that speaks the relay's protocol (src/apps/relay-protocol.ts) without the secret: its opening
 * gets the relay's nonce and proof; its guessed proof, and the request after it, get nothing more.
 */
function guessedHandshake(port: number): Promise<string> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1', () => c.write(`ATRIUM-RELAY1 ${'n'.repeat(43)}\n`));
    let data = '';
    c.on('data', (d) => {
      const first = data === '';
      data += d;
      if (first) c.write(`${'m'.repeat(43)}\nGET / HTTP/1.1\r\nHost: x\r\n\r\n`);
    });
    c.on('close', () => resolve(data));
    c.on('error', () => resolve(data));
  });
}

/** The session's app is reached through the relay, not a socket, and the relay is closed to others. */
async function expectBehindRelay(s: View, app: string): Promise<void> {
  const port = relayPort(s.id, app);
  expect(port, `relay port of ${app}`).toBeGreaterThan(0);
  expect(await directAnswer(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n')).toBe('');
  expect(await directAnswer(port, 'ATRIUM-RELAY guess\nGET / HTTP/1.1\r\nHost: x\r\n\r\n')).toBe('');
  expect(await guessedHandshake(port)).toMatch(/^[\w-]{43} [\w-]{43}\n$/);
}

/**
 * bob's listener on a port (retried until the port is free): answers each connection's first bytes as a
 * relay would, with a made-up proof, and says at the end everything each connection sent it.
 */
function squatAsBob(port: number) {
  const script = `
    const crypto = require('node:crypto');
    const got = [];
    const server = require('node:net').createServer((c) => {
      const i = got.push('') - 1;
      c.on('error', () => {});
      c.on('data', (d) => {
        if (got[i] === '') c.write(crypto.randomBytes(32).toString('base64url') + ' ' + crypto.randomBytes(32).toString('base64url') + '\\n');
        got[i] += d.toString('latin1');
      });
    });
    server.on('error', () => setTimeout(() => server.listen(${port}, '127.0.0.1'), 100));
    server.on('listening', () => console.log('listening'));
    server.listen(${port}, '127.0.0.1');
    process.stdin.on('end', () => { console.log(JSON.stringify(got)); process.exit(0); });
    process.stdin.resume();`;
  const p = spawn('runuser', ['-u', 'bob', '--', process.execPath, '-e', script], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  p.stdout.on('data', (d) => {
    out += d;
  });
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  return {
    pid: p.pid!,
    listening: async () => {
      const deadline = Date.now() + 15_000;
      while (!out.includes('listening') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(out).toContain('listening');
    },
    /** Stops the listener; what each connection sent it. */
    received: async (): Promise<string[]> => {
      p.stdin.end();
      const t = setTimeout(() => p.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(t);
      return JSON.parse(out.split('\n').find((l) => l.startsWith('[')) ?? 'null') as string[];
    },
  };
}

/** Types `echo $((6*7)) $SLURM_JOB_ID` in the session's terminal (its extra app) and returns the output. */
function shellAnswer(s: View): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const ws = new WebSocket(`${gw.url.replace('http', 'ws')}${s.apps[0]!.url}pty?cols=80&rows=24`, {
      headers: { cookie: alice.cookie },
    });
    let text = '';
    const t = setTimeout(() => reject(new Error(`no answer: ${JSON.stringify(text)}`)), 15_000);
    ws.on('open', () =>
      setTimeout(() => ws.send(JSON.stringify({ t: 'i', d: 'echo $((6*7)) $SLURM_JOB_ID\r' })), 300),
    );
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

describe.skipIf(!cluster)('the apps in Slurm jobs, through the relay', () => {
  beforeAll(async () => {
    // Installed once per machine (code-server about a minute), then found in place.
    execFileSync(
      'bash',
      [path.join(ROOT, 'scripts', 'apps.sh'), 'install', 'code-server', 'desktop', 'shiny'],
      { stdio: 'inherit' },
    );
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-apps-slurm-'));
    fs.chmodSync(work, 0o755);
    execFileSync('/usr/bin/python3', ['-m', 'venv', '--system-site-packages', `${work}/venv`]);
    execFileSync('chmod', ['-R', 'a+rX', work]);
    gw = await createTestGateway({
      name: 'apps-slurm',
      users: [{ name: 'alice' }, { name: 'bob' }],
      yaml: [
        'clusters:',
        // No appSockets: a Slurm cluster gets the relay, as its nodes are other hosts.
        ...slurmCluster('slurm', 'Test cluster', 1),
        // The same again, polled rarely: a dead agent's route outlives it long enough to squat its port.
        ...slurmCluster('slurm-slow', 'Test cluster (slow poll)', 600),
        // The same nodes seen as a single-host cluster: the gateway reaches the apps' sockets itself.
        ...slurmCluster('slurm-unix', 'Test cluster (sockets)', 1, ['    appSockets: unix']),
        ...echo.yaml.trimEnd().split('\n'),
        'environments:',
        '  - id: system',
        '    name: System software',
        '  - id: testvenv',
        '    name: Test venv',
        '    setup:',
        `      - source ${work}/venv/bin/activate`,
        '      - export SITE_MARKER=set-by-setup',
      ].join('\n'),
    });
    // The session starts from alice's login environment: a line of her ~/.profile (restored after).
    profileBefore = fs.existsSync(PROFILE) ? fs.readFileSync(PROFILE, 'utf8') : undefined;
    fs.appendFileSync(PROFILE, '\nexport SITE_LOGIN_MARKER=from-profile\n');
    if (profileBefore === undefined) execFileSync('chown', ['alice:', PROFILE]);
    await gw.start();
    alice = new Client(gw.url);
    bob = new Client(gw.url);
    expect((await alice.login('alice', gw.passwords.alice!)).status).toBe(200);
    expect((await bob.login('bob', gw.passwords.bob!)).status).toBe(200);
    fs.mkdirSync(SHOTS, { recursive: true });
    // The five sessions start at once (five jobs); Chromium starts meanwhile.
    const [vscode, desktop, shiny, jupyter, unix, b] = await Promise.all([
      startSession({ app: 'vscode' }),
      startSession({ app: 'desktop' }),
      startSession({ app: 'shiny' }),
      startSession({ app: 'jupyter', extraApps: ['terminal'], environment: 'testvenv' }),
      startSession({ cluster: 'slurm-unix', app: 'jupyter', extraApps: ['terminal'] }),
      launchBrowser({ name: 'apps-slurm', timeout: 30_000 }),
    ]);
    Object.assign(sessions, { vscode, desktop, shiny, jupyter, unix });
    browser = b;
  }, 240_000);

  afterAll(async () => {
    if (profileBefore === undefined) fs.rmSync(PROFILE, { force: true });
    else fs.writeFileSync(PROFILE, profileBefore);
    await browser?.close();
    if (alice) {
      await Promise.all(
        started.map(async (id) => {
          const r = await alice.get(`/api/sessions/${id}`).catch(() => null);
          const state = (r?.body as { session?: SessionView } | undefined)?.session?.state;
          if (state && state !== 'ended' && state !== 'failed') await alice.del(`/api/sessions/${id}`);
        }),
      );
    }
    const deadline = Date.now() + 20_000;
    while (started.some((id) => pidsOfSession(id).length > 0) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 250));
    await gw?.stop();
    for (const d of [work, gw?.dir, echo.dir]) if (d) fs.rmSync(d, { recursive: true, force: true });
  });

  it('runs each session as a Slurm job of alice', () => {
    const jobs = spawnSync('squeue', ['-h', '-u', 'alice', '-o', '%i %T'], {
      env: slurmEnv(),
      encoding: 'utf8',
    }).stdout;
    for (const s of Object.values(sessions)) {
      expect(s.jobId).toMatch(/^\d+$/);
      expect(jobs).toContain(`${s.jobId} RUNNING`);
    }
  });

  it('VS Code: the workbench loads and its WebSocket connects, through the relay', async () => {
    const s = sessions.vscode;
    expect(fs.statSync(`${sessionDir(s.id)}/app.sock`).mode & 0o777).toBe(0o600);
    await expectBehindRelay(s, 'vscode');
    const page = await browserPage();
    const sockets: string[] = [];
    const frames: string[] = [];
    page.on('websocket', (w) => {
      sockets.push(w.url());
      w.on('framereceived', () => frames.push(w.url()));
    });
    await page.goto(gw.url + s.openUrl);
    await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
    // The workbench talks to its server over a WebSocket under the session's address, and gets answers.
    await expect.poll(() => frames.some((u) => u.includes(s.url)), { timeout: 30_000 }).toBe(true);
    await page.waitForSelector('.part.editor, .part.sidebar', { timeout: 30_000 });
    await page.screenshot({ path: path.join(SHOTS, 'slurm-vscode.png') });
    await page.close();
    expect((await bob.req('GET', s.url)).status).toBe(404);
    const ws = sockets.find((u) => u.includes(s.url))!;
    expect(await wsStatus(ws, { cookie: bob.cookie })).toBe(404);
  });

  it('remote desktop: noVNC shows the desktop through the bridge and the relay; no TCP port of Xvnc', async () => {
    const s = sessions.desktop;
    const dir = sessionDir(s.id);
    expect(fs.statSync(`${dir}/app.sock`).mode & 0o777).toBe(0o600);
    await expectBehindRelay(s, 'desktop');
    const xvnc = pidsOfSession(s.id).filter((p) =>
      fs.readFileSync(`/proc/${p}/cmdline`, 'latin1').startsWith('Xvnc'),
    );
    expect(xvnc.length).toBe(1);
    expect(execFileSync('ss', ['-ltnpH'], { encoding: 'utf8' })).not.toContain(`pid=${xvnc[0]},`);
    const page = await browserPage();
    await page.goto(gw.url + s.openUrl);
    await page.waitForSelector('body[data-state=connected]', { timeout: 20_000 });
    await page.waitForTimeout(1500); // let the first frames paint
    await page.screenshot({ path: path.join(SHOTS, 'slurm-desktop.png') });
    const colours = await page.evaluate(() => {
      const c = document.querySelector('#screen canvas') as HTMLCanvasElement;
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      const seen = new Set<number>();
      for (let i = 0; i < d.length; i += 4 * 97) seen.add((d[i]! << 16) | (d[i + 1]! << 8) | d[i + 2]!);
      return { w: c.width, n: seen.size, hasRoot: seen.has(0x2f4f6f) };
    });
    expect(colours.w).toBe(1280);
    expect(colours.hasRoot).toBe(true);
    expect(colours.n).toBeGreaterThan(2);
    await page.close();
    expect((await bob.req('GET', s.url, undefined, { accept: 'text/html' })).status).toBe(404);
    expect(await wsStatus(`${gw.url.replace('http', 'ws')}${s.url}websockify`, { cookie: bob.cookie })).toBe(
      404,
    );
  });

  it("R Shiny: the example's server-side output arrives over its WebSocket, through the relay", async () => {
    const s = sessions.shiny;
    expect(fs.statSync(`${sessionDir(s.id)}/app.sock`).mode & 0o777).toBe(0o600);
    await expectBehindRelay(s, 'shiny');
    const page = await browserPage();
    const sockets: string[] = [];
    page.on('websocket', (w) => sockets.push(w.url()));
    await page.goto(gw.url + s.openUrl);
    await expect.poll(() => page.locator('#product').textContent(), { timeout: 30_000 }).toBe('n * 7 = 42');
    expect(sockets.some((u) => u.startsWith(`${gw.url.replace('http', 'ws')}${s.url}`))).toBe(true);
    await page.screenshot({ path: path.join(SHOTS, 'slurm-shiny.png') });
    await page.close();
    expect((await bob.req('GET', s.url)).status).toBe(404);
    expect(await wsStatus(`${gw.url.replace('http', 'ws')}${s.url}websocket/`, { cookie: bob.cookie })).toBe(
      404,
    );
  });

  it('Jupyter and a terminal in one job, in the chosen environment, for the owner only', async () => {
    const s = sessions.jupyter;
    const url = gw.url + s.url;
    // Jupyter too listens on its private socket, reached through its relay.
    expect(fs.statSync(`${sessionDir(s.id)}/app.sock`).mode & 0o777).toBe(0o600);
    await expectBehindRelay(s, 'jupyter');
    const k = await createKernel(url, alice.cookie);
    const out = await runInKernel(
      url,
      alice.cookie,
      k,
      'import os; print(os.environ.get("SITE_MARKER"), os.environ.get("SLURM_JOB_ID"), os.environ.get("SITE_LOGIN_MARKER"), os.environ.get("SLURM_TIME_FORMAT"), os.environ.get("TZ"), os.environ.get("SETUPTOOLS_USE_DISTUTILS"))',
    );
    // The environment's setup, the job, alice's login profile; none of the gateway's own variables,
    // nor the distutils choice of Jupyter's own start (share/jupyter/atrium-jupyter).
    expect(out.trim()).toBe(`set-by-setup ${s.jobId} from-profile None None None`);
    // The terminal's shell answers over its WebSocket, through its own relay.
    await expectBehindRelay(s, 'terminal');
    expect(await shellAnswer(s)).toContain(`42 ${s.jobId}`);
    for (const p of [`${s.url}api/status`, s.apps[0]!.url])
      expect((await bob.req('GET', p)).status, p).toBe(404);
    const wsBase = gw.url.replace('http', 'ws');
    expect(await wsStatus(`${wsBase}${s.apps[0]!.url}pty`, { cookie: bob.cookie })).toBe(404);
    expect(await wsStatus(`${wsBase}${s.url}api/kernels/${k}/channels`, { cookie: bob.cookie })).toBe(404);
  });

  it('with appSockets: unix, Jupyter and a terminal of a job are reached on their sockets, with no relay', async () => {
    const s = sessions.unix;
    expect(s.jobId).toMatch(/^\d+$/);
    const log = fs.readFileSync(`${sessionDir(s.id)}/app.log`, 'utf8');
    expect(log).toContain(`jupyter on ${sessionDir(s.id)}/app.sock`);
    expect(log).toContain(`terminal on ${sessionDir(s.id)}/app-terminal.sock`);
    expect(relayPort(s.id, 'jupyter')).toBe(0);
    const url = gw.url + s.url;
    const k = await createKernel(url, alice.cookie);
    expect(
      (await runInKernel(url, alice.cookie, k, 'import os; print(os.environ["SLURM_JOB_ID"])')).trim(),
    ).toBe(s.jobId);
    expect(await shellAnswer(s)).toContain(`42 ${s.jobId}`);
    expect((await bob.req('GET', `${s.url}api/status`)).status).toBe(404);
  });

  it("an extra app that exits loses its route at once; the session's main app goes on", async () => {
    const s = sessions.jupyter;
    const servers = pidsOfSession(s.id).filter((p) =>
      fs.readFileSync(`/proc/${p}/cmdline`, 'latin1').includes('apps/terminal/server.mjs'),
    );
    expect(servers.length).toBe(1);
    process.kill(servers[0]!, 'SIGKILL');
    // The agent reports the exit on its heartbeat channel at once; the gateway drops the route.
    await expect
      .poll(
        async () => {
          const r = await alice.req('GET', s.apps[0]!.url, undefined, { accept: 'text/html' });
          return `${r.status} ${await r.text()}`;
        },
        { timeout: 15_000 },
      )
      .toMatch(/^502 [\s\S]*The app has stopped/);
    const wsBase = gw.url.replace('http', 'ws');
    expect(await wsStatus(`${wsBase}${s.apps[0]!.url}pty`, { cookie: alice.cookie })).toBe(502);
    expect((await bob.req('GET', s.apps[0]!.url)).status).toBe(404);
    expect((await alice.req('GET', `${s.url}api/status`)).status).toBe(200);
  });

  /**
   * Kills the agent of session `s` (out of memory, say): its relay's port for `app` is free, and the
   * route is still there until the next poll (600 s on slurm-slow). bob binds that port; `tryIt`
   * makes alice's requests meanwhile. Returns what bob's listener received.
   */
  async function squatDeadAgent(s: View, app: string, tryIt: () => Promise<void>): Promise<string[]> {
    const port = relayPort(s.id, app);
    const ss = execFileSync('ss', ['-Hltnp', `sport = :${port}`], { encoding: 'utf8' });
    const agent = Number(/pid=(\d+)/.exec(ss)?.[1]);
    expect(fs.readFileSync(`/proc/${agent}/cmdline`, 'latin1')).toContain('atrium-agent');
    process.kill(agent, 'SIGKILL');
    const bobs = squatAsBob(port);
    let received: string[] = [];
    try {
      await bobs.listening();
      await tryIt();
    } finally {
      received = await bobs.received();
    }
    await stop(s.id);
    // The app outlived its agent (its own process group; a cluster's cgroups would end it with the job).
    for (const p of pidsOfSession(s.id)) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    return received;
  }

  it("a dead agent's relay port bound by another user gets the handshake's opening only; the request fails", async () => {
    const s = await startSession({ cluster: 'slurm-slow', app: 'terminal' });
    const page = await alice.req('GET', s.url, undefined, { accept: 'text/html' });
    expect(page.status).toBe(200);
    await page.text();
    const received = await squatDeadAgent(s, 'terminal', async () => {
      const r = await alice.req('GET', `${s.url}?q=QUERY-MARKER`, undefined, { accept: 'text/html' });
      expect(r.status).toBe(502);
      expect(await r.text()).toContain('The app is not answering');
      expect(await wsStatus(`${gw.url.replace('http', 'ws')}${s.url}pty`, { cookie: alice.cookie })).not.toBe(
        101,
      );
    });
    // bob's listener was asked, and got the opening line of the handshake: no secret, no token, no request.
    expect(received.length).toBeGreaterThan(0);
    for (const got of received) expect(got).toMatch(/^ATRIUM-RELAY1 [\w-]{43}\n$/);
  });

  it("a site's TCP app is behind the relay too: its port wants the handshake, and a squatter gets the opening only", async () => {
    const s = await startSession({ cluster: 'slurm-slow', app: 'echo' });
    const r = await alice.req('GET', `${s.url}hello`, undefined, { accept: 'application/json' });
    expect(r.status).toBe(200);
    expect(JSON.parse(await r.text())).toMatchObject({ app: 'echo', tokenOk: true });
    // The port the agent reported is the relay's: spoken to directly it answers no HTTP at all.
    expect(await directAnswer(relayPort(s.id, 'echo'), 'GET / HTTP/1.1\r\nHost: x\r\n\r\n')).toBe('');
    const received = await squatDeadAgent(s, 'echo', async () => {
      const again = await alice.req('GET', `${s.url}?q=QUERY-MARKER`, undefined, { accept: 'text/html' });
      expect(again.status).toBe(502);
      await again.text();
    });
    expect(received.length).toBeGreaterThan(0);
    for (const got of received) expect(got).toMatch(/^ATRIUM-RELAY1 [\w-]{43}\n$/);
  });

  it('stops every session: the jobs end and nothing of the apps is left', async () => {
    const all = Object.values(sessions);
    await Promise.all(all.map((s) => stop(s.id)));
    const deadline = Date.now() + 20_000;
    while (all.some((s) => pidsOfSession(s.id).length > 0) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 250));
    for (const s of all) expect(pidsOfSession(s.id), s.id).toEqual([]);
  });

  it('says RStudio is not installed and submits no job', async () => {
    const jobs = () =>
      spawnSync('squeue', ['-h', '-a', '-u', 'alice', '-o', '%i'], { env: slurmEnv(), encoding: 'utf8' })
        .stdout;
    const before = jobs();
    const r = await alice.post('/api/sessions', { ...base, app: 'rstudio' });
    expect(r.status).toBe(400);
    expect((r.body as { errors: { message: string }[] }).errors[0]!.message).toMatch(
      /RStudio is not installed on Test cluster/,
    );
    const listed = (await alice.get('/api/clusters')).body as {
      clusters: { name: string; apps: { id: string; available: boolean }[] }[];
    };
    const apps = listed.clusters.find((c) => c.name === 'slurm')!.apps;
    expect(apps.find((a) => a.id === 'rstudio')?.available).toBe(false);
    for (const id of ['jupyter', 'vscode', 'desktop', 'terminal', 'shiny'])
      expect(apps.find((a) => a.id === id)?.available, id).toBe(true);
    expect(jobs()).toBe(before);
  });
});
