// The shipped apps end to end, on the local backend, everything through the gateway only: VS Code
// (code-server), the remote desktop (Xvnc + noVNC + the gateway's bridge), the web terminal, R Shiny,
// RStudio's "not installed", an admin environment, `atrium kernel add`, Jupyter plus a terminal in one
// session, and the agent relay used for remote nodes. Browser checks run in Debian's Chromium. The same
// apps in Slurm jobs, through the relay: test/e2e/apps-slurm.test.ts.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { launchBrowser, shareSession, type TestBrowser } from '../helpers/browser.ts';
import { Client, type SessionView, waitForState } from '../helpers/client.ts';
import { createTestGateway, ROOT, type TestGateway } from '../helpers/gateway.ts';
import { createKernel, runInKernel, wsStatus } from '../helpers/jupyter.ts';

const SHOTS = path.join(os.tmpdir(), 'atrium-apps-screenshots');

let gw: TestGateway;
let alice: Client;
let bob: Client;
let browser: TestBrowser;
let work: string;
const started: string[] = [];

type View = SessionView & { apps: { id: string; url: string; openUrl: string }[] };
const base = { cluster: 'local', cores: 1, memoryGb: 1, hours: 1 };

async function start(c: Client, body: Record<string, unknown>): Promise<View> {
  const r = await c.post('/api/sessions', { ...base, ...body });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  const s = (r.body as { session: View }).session;
  started.push(s.id);
  return (await waitForState(c, s.id, ['running'], 120_000)) as View;
}

async function stop(id: string): Promise<void> {
  await alice.del(`/api/sessions/${id}`);
  await waitForState(alice, id, ['ended'], 30_000);
}

async function browserPage(c: Client): Promise<Page> {
  await shareSession(browser.context, gw.url, c.cookie);
  return browser.context.newPage();
}

/** The session's processes (cmdline or environment names it). */
function pidsOfSession(id: string): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'latin1');
      const env = fs.readFileSync(`/proc/${d}/environ`, 'latin1');
      if (cmd.includes(`/sessions/${id}/`) || cmd.includes(`/${id}/`) || env.includes(`/sessions/${id}/`))
        out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
}

/**
 * The `atrium` command line as alice, as her sessions have it: the checkout's, or the gateway's copy in
 * runtimeDir when users cannot read the checkout (e.g. a clone under /root).
 */
function atriumAsAlice(...args: string[]) {
  const placed = gw
    .log()
    .split('\n')
    .map((l) => {
      try {
        return JSON.parse(l) as { msg?: string; dir?: string };
      } catch {
        return null;
      }
    })
    .find((j) => j?.msg === "sessions use a copy of Atrium's files in runtimeDir");
  const atrium = placed?.dir ? path.join(placed.dir, 'bin', 'atrium') : `${ROOT}/bin/atrium`;
  return spawnSync('runuser', ['-u', 'alice', '--', atrium, ...args], { encoding: 'utf8' });
}

function sessionDir(id: string): string {
  return `/home/alice/.atrium/sessions/${id}`;
}

/**
 * Jupyter listens on the session's socket (mode 600, alice's) and on no TCP port; even straight to the
 * socket (as root), nothing gets in without the gateway's header.
 */
async function expectJupyterOnItsSocketOnly(s: View, program: string): Promise<void> {
  const sock = `${sessionDir(s.id)}/app.sock`;
  const st = fs.statSync(sock);
  expect(st.isSocket()).toBe(true);
  expect(st.mode & 0o777).toBe(0o600);
  expect(st.uid).toBe(Number(execFileSync('id', ['-u', 'alice'], { encoding: 'utf8' })));
  const jupyter = pidsOfSession(s.id).filter((p) =>
    fs.readFileSync(`/proc/${p}/cmdline`, 'latin1').includes(program),
  );
  expect(jupyter.length).toBe(1);
  const listening = execFileSync('ss', ['-ltnpH'], { encoding: 'utf8' });
  expect(listening).not.toContain(`pid=${jupyter[0]},`);
  const direct = spawnSync(
    'curl',
    ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--unix-socket', sock, `http://x${s.url}api/status`],
    { encoding: 'utf8' },
  );
  expect(direct.stdout).toBe('403');
}

beforeAll(async () => {
  // code-server is not in Debian: installed once per machine (about a minute), then found in place.
  execFileSync(
    'bash',
    [path.join(ROOT, 'scripts', 'apps.sh'), 'install', 'code-server', 'desktop', 'shiny'],
    {
      stdio: 'inherit',
    },
  );
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-apps-'));
  fs.chmodSync(work, 0o755);
  // An environment an admin would define: a venv with a marker module, and a variable the setup exports.
  execFileSync('/usr/bin/python3', ['-m', 'venv', '--system-site-packages', `${work}/venv`]);
  const site = execFileSync(
    `${work}/venv/bin/python`,
    ['-c', 'import site; print(site.getsitepackages()[0])'],
    {
      encoding: 'utf8',
    },
  ).trim();
  fs.writeFileSync(path.join(site, 'atrium_marker.py'), 'VALUE = "from-the-venv"\n');
  execFileSync('chmod', ['-R', 'a+rX', work]);
  // A site catalogue file: a built-in changed in place, and a new app with no code (Jupyter on
  // Jupyter Server with the classic UI: the code path JupyterLab takes where it is installed).
  fs.writeFileSync(
    `${work}/apps.yaml`,
    [
      '- id: shiny',
      '  description: Shiny, as this site describes it',
      '- id: jupyter-classic',
      '  name: Jupyter (classic UI on Jupyter Server)',
      "  command: ['{share}/jupyter/atrium-jupyter', '--sock={socket}', '--base-url={base_url}', '--root-dir={home}']",
      "  env: {ATRIUM_JUPYTER_TOKEN: '{token}', ATRIUM_JUPYTER_UI: nbclassic}",
      '  prefix: keep',
      '  unixSocket: true',
      "  ready: {http: '{base_url}api'}",
      "  upstreamHeaders: {Authorization: 'token {token}'}",
      '  requires: [jupyter-nbclassic]',
    ].join('\n'),
  );
  gw = await createTestGateway({
    name: 'apps',
    users: [{ name: 'alice' }, { name: 'bob' }],
    yaml: [
      `appsFile: ${work}/apps.yaml`,
      'clusters:',
      '  - name: local',
      '    backend: local',
      '    title: This machine',
      // The same machine, reached the way remote nodes are: through the agent's relay over TCP.
      '  - name: relay',
      '    backend: local',
      '    title: Relay test',
      '    appSockets: relay',
      'environments:',
      '  - id: system',
      '    name: System software',
      '  - id: testvenv',
      '    name: Test venv',
      '    description: A Python venv with a marker module',
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
  fs.mkdirSync(SHOTS, { recursive: true });
  browser = await launchBrowser({ name: 'apps', timeout: 30_000 });
}, 240_000);

afterAll(async () => {
  await browser?.close();
  for (const id of started) {
    const r = await alice.get(`/api/sessions/${id}`).catch(() => null);
    const state = (r?.body as { session?: SessionView } | undefined)?.session?.state;
    if (state && state !== 'ended' && state !== 'failed') await alice.del(`/api/sessions/${id}`);
  }
  const deadline = Date.now() + 20_000;
  while (started.some((id) => pidsOfSession(id).length > 0) && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 250));
  for (const id of started) {
    for (const pid of pidsOfSession(id)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
  atriumAsAlice('kernel', 'remove', 'atrium-test-venv');
  await gw?.stop();
  for (const d of [work, gw?.dir]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

describe('the catalogue on the form', () => {
  it('lists every app with whether it is installed here', async () => {
    const r = await alice.get('/api/clusters');
    const local = (r.body as { clusters: { name: string; apps: Record<string, unknown>[] }[] }).clusters.find(
      (c) => c.name === 'local',
    )!;
    const byId = Object.fromEntries(local.apps.map((a) => [a.id, a]));
    for (const id of ['jupyter', 'vscode', 'desktop', 'terminal', 'shiny'])
      expect(byId[id], id).toMatchObject({ available: true, missing: [] });
    expect(byId.shiny?.description).toBe('Shiny, as this site describes it');
    expect(byId['jupyter-classic']).toMatchObject({
      available: true,
      name: 'Jupyter (classic UI on Jupyter Server)',
    });
    expect(byId.rstudio).toMatchObject({
      available: false,
      missing: ['/usr/lib/rstudio-server/bin/rserver'],
    });
  });

  it('refuses RStudio where it is not installed, and submits nothing', async () => {
    const before = ((await alice.get('/api/sessions')).body as { sessions: unknown[] }).sessions.length;
    const r = await alice.post('/api/sessions', { ...base, app: 'rstudio' });
    expect(r.status).toBe(400);
    const e = (r.body as { errors: { field: string; message: string }[] }).errors[0]!;
    expect(e.field).toBe('app');
    expect(e.message).toMatch(/^User interface: RStudio is not installed on This machine/);
    expect(((await alice.get('/api/sessions')).body as { sessions: unknown[] }).sessions.length).toBe(before);
    const extra = await alice.post('/api/sessions', { ...base, app: 'jupyter', extraApps: ['rstudio'] });
    expect(extra.status).toBe(400);
  });
});

describe('web terminal', () => {
  let s: View;
  it('runs a shell as the user in Chromium, through the gateway', async () => {
    s = await start(alice, { app: 'terminal' });
    const sock = fs.statSync(`${sessionDir(s.id)}/app.sock`);
    expect(sock.mode & 0o777).toBe(0o600);
    expect(sock.uid).toBe(Number(execFileSync('id', ['-u', 'alice'], { encoding: 'utf8' })));
    const page = await browserPage(alice);
    await page.goto(gw.url + s.openUrl);
    await page.waitForSelector('body[data-state=open]');
    await page.locator('#terminal').click();
    await page.keyboard.type('id -un; echo $((6*7))\n');
    await expect
      .poll(
        () =>
          page.evaluate(() => (window as unknown as { atriumTerminalText(): string }).atriumTerminalText()),
        {
          timeout: 15_000,
        },
      )
      .toMatch(/\nalice\s*\n42\s*(\n|$)/);
    await page.screenshot({ path: path.join(SHOTS, 'terminal.png') });
    await page.close();
  });

  it('gives nothing to another user or to a direct connection without the token', async () => {
    expect((await bob.req('GET', s.url)).status).toBe(404);
    const ws = `${gw.url.replace('http', 'ws')}${s.url}pty`;
    expect(await wsStatus(ws, { cookie: bob.cookie })).toBe(404);
    expect(await wsStatus(ws, { cookie: alice.cookie, origin: 'http://evil.example' })).toBe(403);
    // As root, straight to the socket but without the gateway's token: refused by the server itself.
    const r = spawnSync(
      'curl',
      [
        '-s',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '--unix-socket',
        `${sessionDir(s.id)}/app.sock`,
        'http://x/',
      ],
      {
        encoding: 'utf8',
      },
    );
    expect(r.stdout).toBe('403');
    await stop(s.id);
  });

  it("connects to a session's socket with the user's rights: a planted symlink reaches nothing of root's", async () => {
    // A socket only root may open, answering like an app would.
    const rootSock = path.join(work, 'root-only.sock');
    let reached = 0;
    const root = net
      .createServer((c) => {
        reached++;
        c.end('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nROOT');
      })
      .listen(rootSock);
    await new Promise((r) => root.once('listening', r));
    fs.chmodSync(rootSock, 0o600);
    const s = await start(alice, { app: 'terminal' });
    // Alice swaps her app's socket for a symlink to root's before the gateway's first request.
    execFileSync('runuser', ['-u', 'alice', '--', 'ln', '-sfn', rootSock, `${sessionDir(s.id)}/app.sock`]);
    const r = await alice.req('GET', s.url, undefined, { accept: 'text/html' });
    const body = await r.text();
    expect(r.status).toBe(502);
    expect(body).not.toContain('ROOT');
    expect(reached).toBe(0);
    root.close();
    await stop(s.id);
  });
});

describe('VS Code (code-server)', () => {
  it('loads the workbench through the gateway, on a private socket', async () => {
    const s = await start(alice, { app: 'vscode' });
    expect(fs.statSync(`${sessionDir(s.id)}/app.sock`).mode & 0o777).toBe(0o600);
    const page = await browserPage(alice);
    const sockets: string[] = [];
    page.on('websocket', (w) => sockets.push(w.url()));
    await page.goto(gw.url + s.openUrl);
    await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
    // The workbench talks to its server over a WebSocket under the session's address.
    await expect.poll(() => sockets.some((u) => u.includes(s.url)), { timeout: 30_000 }).toBe(true);
    await page.waitForSelector('.part.editor, .part.sidebar', { timeout: 30_000 });
    await page.screenshot({ path: path.join(SHOTS, 'vscode.png') });
    await page.close();
    expect((await bob.req('GET', s.url)).status).toBe(404);
    await stop(s.id);
  });
});

describe('remote desktop', () => {
  it('shows the desktop in noVNC through the gateway bridge; no TCP port, no open display', async () => {
    const s = await start(alice, { app: 'desktop' });
    const dir = sessionDir(s.id);
    expect(fs.statSync(`${dir}/app.sock`).mode & 0o777).toBe(0o600);
    const xvnc = pidsOfSession(s.id).filter((p) => {
      try {
        return fs.readFileSync(`/proc/${p}/cmdline`, 'latin1').startsWith('Xvnc');
      } catch {
        return false; // a helper of the desktop's start that has exited since it was listed
      }
    });
    expect(xvnc.length).toBe(1);
    const listening = execFileSync('ss', ['-ltnpH'], { encoding: 'utf8' });
    expect(listening).not.toContain(`pid=${xvnc[0]},`);
    // Without the cookie in the X authority file, a client is refused.
    const display = fs.readFileSync(`${dir}/display`, 'utf8').trim();
    const r = spawnSync(
      'runuser',
      ['-u', 'bob', '--', 'env', 'XAUTHORITY=/dev/null', 'xdpyinfo', '-display', `:${display}`],
      {
        encoding: 'utf8',
      },
    );
    expect(r.status).not.toBe(0);
    const page = await browserPage(alice);
    await page.goto(gw.url + s.openUrl);
    await page.waitForSelector('body[data-state=connected]', { timeout: 20_000 });
    await page.waitForTimeout(1500); // let the first frames paint
    const shot = path.join(SHOTS, 'desktop.png');
    await page.screenshot({ path: shot });
    // The desktop's canvas has the X root colour and an xterm on it: more than a blank screen.
    const colours = await page.evaluate(() => {
      const c = document.querySelector('#screen canvas') as HTMLCanvasElement;
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      const seen = new Set<number>();
      for (let i = 0; i < d.length; i += 4 * 97) seen.add((d[i]! << 16) | (d[i + 1]! << 8) | d[i + 2]!);
      return { w: c.width, h: c.height, n: seen.size, hasRoot: seen.has(0x2f4f6f) };
    });
    expect(colours.w).toBe(1280);
    expect(colours.hasRoot).toBe(true);
    expect(colours.n).toBeGreaterThan(2);
    await page.close();
    expect(await wsStatus(`${gw.url.replace('http', 'ws')}${s.url}websockify`, { cookie: bob.cookie })).toBe(
      404,
    );
    await stop(s.id);
    expect(pidsOfSession(s.id)).toEqual([]);
  });
});

describe('R Shiny', () => {
  it('serves the example app; its server-side output arrives over the WebSocket', async () => {
    const s = await start(alice, { app: 'shiny' });
    expect(fs.statSync(`${sessionDir(s.id)}/app.sock`).mode & 0o777).toBe(0o600);
    const page = await browserPage(alice);
    await page.goto(gw.url + s.openUrl);
    await expect.poll(() => page.locator('#product').textContent(), { timeout: 30_000 }).toBe('n * 7 = 42');
    await page.screenshot({ path: path.join(SHOTS, 'shiny.png') });
    await page.close();
    await stop(s.id);
  });
});

describe('Jupyter on Jupyter Server (the path JupyterLab takes)', () => {
  it('signs in with the gateway header only, and runs a kernel', async () => {
    const s = await start(alice, { app: 'jupyter-classic' });
    const url = gw.url + s.url;
    const cmd = pidsOfSession(s.id)
      .map((p) => fs.readFileSync(`/proc/${p}/cmdline`, 'latin1'))
      .find((c) => c.includes('jupyter-nbclassic'));
    expect(cmd).toContain('--ServerApp.login_handler_class=atrium_jupyter_auth.ServerLoginHandler');
    expect(cmd).toContain(`--ServerApp.sock=${sessionDir(s.id)}/app.sock`);
    const k = await createKernel(url, alice.cookie);
    expect((await runInKernel(url, alice.cookie, k, 'print(6*7)')).trim()).toBe('42');
    await expectJupyterOnItsSocketOnly(s, 'jupyter-nbclassic');
    await stop(s.id);
  });
});

describe('environments and user kernels', () => {
  it("runs the environment's setup before the app: the kernel sees it", async () => {
    const s = await start(alice, { app: 'jupyter', environment: 'testvenv' });
    const url = gw.url + s.url;
    const k = await createKernel(url, alice.cookie);
    const out = await runInKernel(
      url,
      alice.cookie,
      k,
      'import os; print(os.environ.get("SITE_MARKER"), os.environ.get("VIRTUAL_ENV"))',
    );
    expect(out.trim()).toBe(`set-by-setup ${work}/venv`);
    // The built-in Jupyter (Notebook 6 here) is on the session's socket, like the other apps.
    await expectJupyterOnItsSocketOnly(s, 'jupyter-notebook');
    await stop(s.id);
  });

  it('`atrium kernel add` (as the user) gives a kernel the next session lists and runs', async () => {
    const add = atriumAsAlice('kernel', 'add', '--name', 'atrium-test-venv', '--venv', `${work}/venv`);
    expect(add.status, add.stderr).toBe(0);
    const spec = '/home/alice/.local/share/jupyter/kernels/atrium-test-venv/kernel.json';
    expect(fs.statSync(spec).uid).toBe(Number(execFileSync('id', ['-u', 'alice'], { encoding: 'utf8' })));
    // Without ipykernel, it says how to install it.
    fs.mkdirSync(`${work}/bare`);
    execFileSync('/usr/bin/python3', ['-m', 'venv', '--without-pip', `${work}/bare`]);
    const bare = atriumAsAlice('kernel', 'add', '--name', 'bare', '--venv', `${work}/bare`);
    expect(bare.status).toBe(2);
    expect(bare.stderr).toContain(
      `ipykernel is not installed there; install it with: ${work}/bare/bin/python -m pip install ipykernel`,
    );

    const s = await start(alice, { app: 'jupyter' });
    const url = gw.url + s.url;
    const specs = (await (
      await fetch(`${url}api/kernelspecs`, { headers: { cookie: alice.cookie } })
    ).json()) as {
      kernelspecs: Record<string, { spec: { display_name: string } }>;
    };
    expect(specs.kernelspecs['atrium-test-venv']?.spec.display_name).toBe('Python (atrium-test-venv)');
    const r = await fetch(`${url}api/kernels`, {
      method: 'POST',
      headers: { cookie: alice.cookie, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'atrium-test-venv' }),
    });
    expect(r.status).toBe(201);
    const kid = ((await r.json()) as { id: string }).id;
    const out = await runInKernel(
      url,
      alice.cookie,
      kid,
      'import atrium_marker, sys; print(atrium_marker.VALUE, sys.prefix)',
    );
    expect(out.trim()).toBe(`from-the-venv ${work}/venv`);
    await stop(s.id);
  });
});

describe('several apps in one session', () => {
  it('serves Jupyter and a terminal of one allocation, each at its own address, for the owner only', async () => {
    const s = await start(alice, { app: 'jupyter', extraApps: ['terminal'] });
    expect(s.apps).toEqual([
      {
        id: 'terminal',
        name: 'Terminal',
        url: `/user/alice/${s.id}.terminal/`,
        openUrl: `/user/alice/${s.id}.terminal/`,
      },
    ]);
    const jupyter = await alice.req('GET', `${s.url}api/status`);
    expect(jupyter.status).toBe(200);
    const term = await alice.req('GET', s.apps[0]!.url, undefined, { accept: 'text/html' });
    expect(term.status).toBe(200);
    expect(await term.text()).toContain('client.js');
    // The terminal's shell works over the gateway (same check as the page does, without a browser).
    const out = await new Promise<string>((resolve, reject) => {
      const ws = new WebSocket(`${gw.url.replace('http', 'ws')}${s.apps[0]!.url}pty?cols=80&rows=24`, {
        headers: { cookie: alice.cookie },
      });
      let text = '';
      const t = setTimeout(() => reject(new Error(`no answer: ${JSON.stringify(text)}`)), 15_000);
      ws.on('open', () => setTimeout(() => ws.send(JSON.stringify({ t: 'i', d: 'echo $((6*7))\r' })), 300));
      ws.on('message', (d) => {
        text += String(d);
        if (/[\r\n]42\r?\n/.test(text)) {
          clearTimeout(t);
          ws.close();
          resolve(text);
        }
      });
      ws.on('error', reject);
    });
    expect(out).toContain('42');
    // Bob gets nothing from either, over HTTP or WebSocket; unknown app names are not found.
    for (const p of [`${s.url}api/status`, s.apps[0]!.url, `/user/bob/${s.id}.terminal/`])
      expect((await bob.req('GET', p)).status, p).toBe(404);
    const wsBase = gw.url.replace('http', 'ws');
    expect(await wsStatus(`${wsBase}${s.apps[0]!.url}pty`, { cookie: bob.cookie })).toBe(404);
    expect(await wsStatus(`${wsBase}${s.url}api/kernels/x/channels`, { cookie: bob.cookie })).toBe(404);
    expect(await wsStatus(`${wsBase}${s.apps[0]!.url}pty`, {})).toBe(401);
    expect((await alice.req('GET', `/user/alice/${s.id}.vscode/`)).status).toBe(404);
    // A gateway restart keeps both addresses (they are in the database; the apps keep running).
    await gw.restart();
    expect((await alice.req('GET', `${s.url}api/status`)).status).toBe(200);
    const again = await alice.req('GET', s.apps[0]!.url, undefined, { accept: 'text/html' });
    expect(again.status).toBe(200);
    await again.text();
    // Each app is its own process group; stopping the session stops both.
    expect(fs.existsSync(`${sessionDir(s.id)}/app-terminal.sock`)).toBe(true);
    await stop(s.id);
    expect(pidsOfSession(s.id)).toEqual([]);
  });

  it('refuses extra apps that are unknown, repeated or the main app', async () => {
    for (const extraApps of [['nope'], ['jupyter'], ['terminal', 'terminal']]) {
      const r = await alice.post('/api/sessions', { ...base, app: 'jupyter', extraApps });
      expect(r.status, JSON.stringify(extraApps)).toBe(400);
      expect((r.body as { field: string }).field).toBe('extraApps');
    }
  });
});

describe('the agent callback of a session with extra apps', () => {
  it('takes exactly the extra apps the session was started with, at valid places', async () => {
    // The "agent" is `sleep`: the job gets the real secret, and the test plays a lying agent with it.
    const gw3 = await createTestGateway({
      name: 'apps-cb',
      users: [{ name: 'alice' }],
      yaml: 'agent:\n  node: /bin/sleep\n  script: "300"\n',
    });
    await gw3.start();
    try {
      const c = new Client(gw3.url);
      await c.login('alice', gw3.passwords.alice!);
      const r = await c.post('/api/sessions', { ...base, app: 'jupyter', extraApps: ['terminal'] });
      const s = (r.body as { session: SessionView }).session;
      await waitForState(c, s.id, ['starting']);
      const env = fs.readFileSync(`/proc/${s.jobId}/environ`, 'latin1');
      const secret = /ATRIUM_AGENT_SECRET=([^\0]+)/.exec(env)![1]!;
      expect(env).toContain('ATRIUM_EXTRA_APPS=');
      const callback = async (apps: unknown) => {
        const res = await fetch(`${gw3.url}/api/agent/ready`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}` },
          body: JSON.stringify({ sessionId: s.id, host: '127.0.0.1', port: 45678, apps }),
        });
        await res.text();
        return res.status;
      };
      const dir = `/home/alice/.atrium/sessions/${s.id}`;
      expect(await callback(undefined)).toBe(400); // the terminal is missing
      expect(await callback([{ id: 'vscode', port: 45679 }])).toBe(400); // not this session's
      expect(
        await callback([
          { id: 'terminal', port: 45679 },
          { id: 'terminal', port: 45680 },
        ]),
      ).toBe(400);
      expect(await callback([{ id: 'terminal', port: 0 }])).toBe(400);
      expect(await callback([{ id: 'terminal', socket: '/run/docker.sock' }])).toBe(400);
      expect(await callback([{ id: 'terminal', socket: `${dir}/app.sock` }])).toBe(400); // the main app's name
      expect(await callback([{ id: 'terminal', socket: `${dir}/app-terminal.sock` }])).toBe(403); // no such socket
      expect(await callback([{ id: 'terminal', port: 45679 }])).toBe(200);
      const v = (await waitForState(c, s.id, ['running'])) as View;
      expect(v.apps.map((a) => a.url)).toEqual([`/user/alice/${s.id}.terminal/`]);
      await c.del(`/api/sessions/${s.id}`);
      await waitForState(c, s.id, ['ended'], 30_000);
    } finally {
      await gw3.stop();
      fs.rmSync(gw3.dir, { recursive: true, force: true });
    }
  });
});

describe('remote-node mode: the agent relay', () => {
  it('reaches a socket app over TCP with the session secret; without it, nothing', async () => {
    const s = await start(alice, { cluster: 'relay', app: 'terminal' });
    const page = await alice.req('GET', s.url, undefined, { accept: 'text/html' });
    expect(page.status).toBe(200);
    await page.text();
    // The relay's port, as the agent reported it: a direct connection gets closed without a byte.
    const agentLog = fs.readFileSync(`${sessionDir(s.id)}/app.log`, 'utf8');
    const port = Number(/terminal on 127\.0\.0\.1:(\d+)/.exec(agentLog)?.[1]);
    expect(port).toBeGreaterThan(0);
    const got = await new Promise<string>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () =>
        c.write('GET / HTTP/1.1\r\nHost: x\r\nX-Atrium-Token: guess\r\n\r\n'),
      );
      let data = '';
      c.on('data', (d) => {
        data += d;
      });
      c.on('close', () => resolve(data));
      c.on('error', () => resolve(data));
    });
    expect(got).toBe('');
    await stop(s.id);
  });
});
