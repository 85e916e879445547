// The reference of the spawn benchmark: Debian 12's JupyterHub 3.0 (package jupyterhub) with its
// LocalProcessSpawner and configurable-http-proxy, started as root from a config written to a temp dir.
// One sample = POST /hub/api/users/<name>/server (the spawn button) -> server ready -> kernel created
// and print(6*7) answered through JupyterHub's proxy, with an API token that may access the server.
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { PackageNeed } from '../../src/system/packages.ts';
import { kernelRoundTrip } from '../../test/helpers/jupyter.ts';
import { alive, type Child, freePort, ROOT, sleep, start, stop, stopPid, until } from './lib.ts';

export interface Hub {
  url: string;
  dir: string;
  child: Child;
  token: string;
  user: string;
  version: string;
  proxy: string;
}

export interface HubSample {
  total: number;
  /** Spawn request until JupyterHub reports the server ready (its POST answers when ready). */
  spawn: number;
  kernel: number;
}

/** The reference: Debian's JupyterHub (installed by the benchmark when it runs as root; CI does not need it). */
export const JUPYTERHUB_NEED: PackageNeed = {
  packages: ['jupyterhub'],
  why: 'the JupyterHub reference of the spawn benchmark',
  present: () => fs.existsSync('/usr/bin/jupyterhub') && fs.existsSync('/usr/bin/jupyterhub-singleuser'),
};

/**
 * Debian's configurable-http-proxy when it runs with this machine's Node (its modules live in
 * /usr/share/nodejs, which NodeSource's node does not search: NODE_PATH fixes that), else the npm
 * configurable-http-proxy 5.3.0 from node_modules.
 */
function chpCommand(): { argv: string[]; env: Record<string, string>; label: string } {
  const env = { NODE_PATH: '/usr/share/nodejs' };
  const r = spawnSync('/usr/bin/configurable-http-proxy', ['--version'], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  if (r.status === 0)
    return {
      argv: ['/usr/bin/configurable-http-proxy'],
      env,
      label: `Debian configurable-http-proxy ${r.stdout.trim()}`,
    };
  const npm = path.join(ROOT, 'node_modules', '.bin', 'configurable-http-proxy');
  return { argv: [process.execPath, npm], env: {}, label: 'npm configurable-http-proxy 5.3.0' };
}

const py = (s: string) => JSON.stringify(s);

/** `extraScopes`: more scopes for the benchmark's service token (the scale benchmark makes users' tokens). */
export async function startHub(user: string, extraScopes: string[] = []): Promise<Hub> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-bench-jupyterhub-'));
  const [port, hubPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  const token = crypto.randomBytes(24).toString('hex');
  const chp = chpCommand();
  const config = `# Written by bench/spawn/jupyterhub.ts
c = get_config()
c.JupyterHub.bind_url = ${py(`http://127.0.0.1:${port}`)}
c.JupyterHub.hub_bind_url = ${py(`http://127.0.0.1:${hubPort}`)}
c.ConfigurableHTTPProxy.api_url = ${py(`http://127.0.0.1:${apiPort}`)}
c.ConfigurableHTTPProxy.command = ${JSON.stringify(chp.argv)}
c.ConfigurableHTTPProxy.pid_file = ${py(path.join(dir, 'proxy.pid'))}
c.JupyterHub.db_url = ${py(`sqlite:///${path.join(dir, 'jupyterhub.sqlite')}`)}
c.JupyterHub.cookie_secret_file = ${py(path.join(dir, 'cookie_secret'))}
c.JupyterHub.pid_file = ${py(path.join(dir, 'jupyterhub.pid'))}
c.JupyterHub.authenticator_class = 'jupyterhub.auth.DummyAuthenticator'
c.Authenticator.allowed_users = {${py(user)}}
c.JupyterHub.spawner_class = 'jupyterhub.spawner.LocalProcessSpawner'
# The same Jupyter server as Atrium starts here (Notebook 6, its own server), not Jupyter Server.
c.Spawner.environment = {'JUPYTERHUB_SINGLEUSER_APP': 'notebook.notebookapp.NotebookApp'}
c.JupyterHub.services = [{'name': 'bench', 'api_token': ${py(token)}}]
c.JupyterHub.load_roles = [{'name': 'bench', 'scopes': ${JSON.stringify(['admin:users', 'admin:servers', 'access:servers', 'read:users', ...extraScopes])}, 'services': ['bench']}]
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True
`;
  fs.writeFileSync(path.join(dir, 'jupyterhub_config.py'), config);
  const version = execFileSync('/usr/bin/jupyterhub', ['--version'], { encoding: 'utf8' }).trim();
  const child = start('jupyterhub', ['/usr/bin/jupyterhub', '-f', path.join(dir, 'jupyterhub_config.py')], {
    cwd: dir,
    env: { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8', HOME: '/root', ...chp.env },
    logFile: path.join(dir, 'jupyterhub.log'),
  });
  const url = `http://127.0.0.1:${port}`;
  await until(
    'JupyterHub',
    async () => {
      if (child.proc.exitCode !== null)
        throw new Error(`jupyterhub exited: ${fs.readFileSync(child.logFile, 'utf8').slice(-2000)}`);
      const r = await fetch(`${url}/hub/api/users/${user}`, { headers: { authorization: `token ${token}` } });
      return r.ok;
    },
    60_000,
    200,
  );
  return { url, dir, child, token, user, version, proxy: chp.label };
}

async function hubApi(
  h: Hub,
  method: string,
  p: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${h.url}/hub/api${p}`, { method, headers: { authorization: `token ${h.token}` } });
  const text = await r.text();
  let body: Record<string, unknown> = {};
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    body = { text };
  }
  return { status: r.status, body };
}

function serverOf(body: Record<string, unknown>): { ready?: boolean; url?: string } | undefined {
  return (body.servers as Record<string, { ready?: boolean; url?: string }> | undefined)?.[''];
}

export async function hubSample(h: Hub): Promise<HubSample> {
  const t0 = Date.now();
  const r = await hubApi(h, 'POST', `/users/${h.user}/server`);
  if (r.status !== 201 && r.status !== 202)
    throw new Error(`spawn: HTTP ${r.status} ${JSON.stringify(r.body)}`);
  try {
    // 201: ready already (the hub waits up to slow_spawn_timeout before answering); 202: pending.
    let url = '';
    if (r.status === 202) {
      url = await until(
        'the server to be ready',
        async () => {
          const s = serverOf((await hubApi(h, 'GET', `/users/${h.user}`)).body);
          return s?.ready ? (s.url ?? '') : undefined;
        },
        120_000,
        25,
      );
    }
    const tReady = Date.now();
    if (!url) url = serverOf((await hubApi(h, 'GET', `/users/${h.user}`)).body)?.url ?? `/user/${h.user}/`;
    const out = (await kernelRoundTrip(h.url + url, { authorization: `token ${h.token}` })).stdout;
    const tReply = Date.now();
    if (out.trim() !== '42') throw new Error(`kernel printed ${JSON.stringify(out)}`);
    return { total: tReply - t0, spawn: tReady - t0, kernel: tReply - tReady };
  } finally {
    await hubApi(h, 'DELETE', `/users/${h.user}/server`);
    await until(
      'the server to stop',
      async () => {
        const b = (await hubApi(h, 'GET', `/users/${h.user}`)).body;
        return !serverOf(b) && !b.pending;
      },
      60_000,
      100,
    );
  }
}

export async function stopHub(h: Hub): Promise<void> {
  const proxyPidFile = path.join(h.dir, 'proxy.pid');
  const proxyPid = fs.existsSync(proxyPidFile) ? Number(fs.readFileSync(proxyPidFile, 'utf8').trim()) : 0;
  await stop(h.child, 15_000);
  // JupyterHub stops the proxy it started; make sure (by its recorded PID, only if it is the proxy).
  if (proxyPid && alive(proxyPid)) {
    const cmd = fs.readFileSync(`/proc/${proxyPid}/cmdline`, 'utf8');
    if (cmd.includes('configurable-http-proxy')) await stopPid(proxyPid);
  }
  await sleep(100);
}
