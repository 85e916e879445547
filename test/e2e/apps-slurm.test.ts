// The shipped apps in real Slurm jobs on the test cluster of scripts/cluster.sh, reached through the
// gateway only, the way remote nodes are: the cluster keeps the default `appSockets: relay`, so every
// app listens on its private socket on the node and the gateway goes through the agent's relay (TCP,
// one secret per app). VS Code's workbench and its WebSocket, the desktop in noVNC, Shiny's server
// output over its WebSocket (all in Chromium), Jupyter plus a terminal in one job with an environment,
// another user refused everywhere, and RStudio refused without an sbatch. The same Slurm cluster is also
// configured with `appSockets: unix` (right for single-host clusters): Jupyter and a terminal there are
// reached on their sockets directly. One gateway; the sessions start in parallel. The cluster is found through $ATRIUM_TEST_CLUSTER_BASE/cluster.json; without it
// (or without a node of partition interactive up) the file skips with a message.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Client, type SessionView, waitForState } from '../helpers/client.ts';
import { createTestGateway, ROOT, type TestGateway } from '../helpers/gateway.ts';
import { createKernel, runInKernel, wsStatus } from '../helpers/jupyter.ts';

const CHROMIUM = '/usr/bin/chromium';
const SLURM_BASE = process.env.ATRIUM_TEST_CLUSTER_BASE ?? '/tmp/atrium-slurm-atrium';

function slurmCluster(): { conf: string } | { why: string } {
  if (process.getuid?.() !== 0) return { why: 'must run as root (runuser)' };
  const file = path.join(SLURM_BASE, 'cluster.json');
  if (!fs.existsSync(file)) return { why: `no ${file}` };
  const conf = (JSON.parse(fs.readFileSync(file, 'utf8')) as { slurmConf: string }).slurmConf;
  const sinfo = spawnSync('sinfo', ['-h', '-p', 'interactive', '-o', '%t'], {
    env: { ...process.env, SLURM_CONF: conf },
    encoding: 'utf8',
    timeout: 15_000,
  });
  if (sinfo.status !== 0) return { why: `sinfo failed: ${sinfo.stderr.trim()}` };
  if (!/^(idle|mix|alloc)/m.test(sinfo.stdout)) return { why: 'no node of partition interactive is up' };
  return { conf };
}
const slurm = slurmCluster();
if ('why' in slurm)
  console.warn(`[apps-slurm e2e] SKIPPED: ${slurm.why} (start it: bash scripts/cluster.sh up)`);
const conf = 'conf' in slurm ? slurm.conf : '';
const slurmEnv = () => ({ ...process.env, SLURM_CONF: conf });
const SHOTS = path.join(os.tmpdir(), 'atrium-apps-screenshots');

type View = SessionView & { apps: { id: string; url: string; openUrl: string }[] };
const base = { cluster: 'slurm', cores: 1, memoryGb: 1, hours: 1 };

let gw: TestGateway;
let alice: Client;
let bob: Client;
let context: BrowserContext;
let work: string;
let browserTmp: string;
const started: string[] = [];
const sessions: Record<'vscode' | 'desktop' | 'shiny' | 'jupyter' | 'unix', View> = {} as never;

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
  const [name, value] = alice.cookie.split('=') as [string, string];
  await context.addCookies([{ name, value, url: gw.url }]);
  return context.newPage();
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

/** The session's app is reached through the relay, not a socket, and the relay is closed to others. */
async function expectBehindRelay(s: View, app: string): Promise<void> {
  const port = relayPort(s.id, app);
  expect(port, `relay port of ${app}`).toBeGreaterThan(0);
  expect(await directAnswer(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n')).toBe('');
  expect(await directAnswer(port, 'ATRIUM-RELAY guess\nGET / HTTP/1.1\r\nHost: x\r\n\r\n')).toBe('');
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

describe.skipIf(!('conf' in slurm))('the apps in Slurm jobs, through the relay', () => {
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
        '  - name: slurm',
        '    backend: slurm',
        '    title: Test cluster',
        // Its nodes are this host: the gateway may check what is installed.
        '    checkInstalled: true',
        '    slurm:',
        `      conf: ${conf}`,
        '      runAs: runuser',
        '      partition: interactive',
        '      pollSeconds: 1',
        // The same nodes seen as a single-host cluster: the gateway reaches the apps' sockets itself.
        '  - name: slurm-unix',
        '    backend: slurm',
        '    title: Test cluster (sockets)',
        '    appSockets: unix',
        '    checkInstalled: true',
        '    slurm:',
        `      conf: ${conf}`,
        '      runAs: runuser',
        '      partition: interactive',
        '      pollSeconds: 1',
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
    await gw.start();
    alice = new Client(gw.url);
    bob = new Client(gw.url);
    expect((await alice.login('alice', gw.passwords.alice!)).status).toBe(200);
    expect((await bob.login('bob', gw.passwords.bob!)).status).toBe(200);
    browserTmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-apps-slurm-chromium-'));
    fs.mkdirSync(SHOTS, { recursive: true });
    // The five sessions start at once (five jobs); Chromium starts meanwhile.
    const [vscode, desktop, shiny, jupyter, unix, ctx] = await Promise.all([
      startSession({ app: 'vscode' }),
      startSession({ app: 'desktop' }),
      startSession({ app: 'shiny' }),
      startSession({ app: 'jupyter', extraApps: ['terminal'], environment: 'testvenv' }),
      startSession({ cluster: 'slurm-unix', app: 'jupyter', extraApps: ['terminal'] }),
      chromium.launchPersistentContext(path.join(browserTmp, 'profile'), {
        executablePath: CHROMIUM,
        headless: true,
        args: [
          '--headless=new',
          '--no-sandbox',
          '--disable-gpu',
          '--no-first-run',
          '--disable-background-networking',
        ],
        env: { ...process.env, TMPDIR: browserTmp },
        viewport: { width: 1280, height: 800 },
      }),
    ]);
    Object.assign(sessions, { vscode, desktop, shiny, jupyter, unix });
    context = ctx;
    context.setDefaultTimeout(30_000);
  }, 240_000);

  afterAll(async () => {
    await context?.close().catch(() => undefined);
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
    for (const d of [browserTmp, work, gw?.dir]) if (d) fs.rmSync(d, { recursive: true, force: true });
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
      'import os; print(os.environ.get("SITE_MARKER"), os.environ.get("SLURM_JOB_ID"))',
    );
    expect(out.trim()).toBe(`set-by-setup ${s.jobId}`);
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
