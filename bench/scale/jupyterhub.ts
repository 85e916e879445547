// The scale benchmark's reference (issue 20, point 2): Debian's JupyterHub 3.0 as bench:spawn starts it
// (bench/spawn/jupyterhub.ts), its users created through its REST API with the admin (service) token,
// a token and a signed-in cookie per user, then its users API and its home page under the same
// concurrency as our pages (one request in flight per user).
import fs from 'node:fs';
import { round } from '../proxy/lib.ts';
import { startHub, stopHub } from '../spawn/jupyterhub.ts';
import { hammer, pool, type StepStats } from './users.ts';

export interface HubSide {
  version: string;
  proxy: string;
  users: number;
  setup_s: number;
  signed_in: number;
  users_api: StepStats;
  home: StepStats;
}

const cookieOf = (r: Response) =>
  r.headers
    .getSetCookie()
    .map((c) => c.split(';')[0])
    .join('; ');

/** Signs `user` in through the login form (DummyAuthenticator: any password); its cookies. */
async function hubSignIn(url: string, user: string): Promise<string | null> {
  // The form's _xsrf, when this JupyterHub checks it on the login form (it is harmless otherwise).
  const page = await fetch(`${url}/hub/login`);
  const html = await page.text();
  const xsrf = /name="_xsrf" value="([^"]+)"/.exec(html)?.[1];
  const pre = cookieOf(page);
  const body = new URLSearchParams({ username: user, password: 'bench', ...(xsrf ? { _xsrf: xsrf } : {}) });
  const r = await fetch(`${url}/hub/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(pre ? { cookie: pre } : {}) },
    body,
  });
  await r.arrayBuffer();
  const got = cookieOf(r);
  if (r.status !== 302 || !got.includes('jupyterhub-session-id')) return null;
  return [pre, got].filter(Boolean).join('; ');
}

export async function hubSideBySide(users: string[], seconds: number): Promise<HubSide> {
  const t0 = Date.now();
  const hub = await startHub(users[0]!, ['tokens']);
  try {
    const admin = { authorization: `token ${hub.token}`, 'content-type': 'application/json' };
    const rest = users.slice(1);
    if (rest.length) {
      const r = await fetch(`${hub.url}/hub/api/users`, {
        method: 'POST',
        headers: admin,
        body: JSON.stringify({ usernames: rest }),
      });
      if (r.status !== 201) throw new Error(`JupyterHub: creating users: ${r.status} ${await r.text()}`);
    }
    const tokens = new Map<string, string>();
    const cookies = new Map<string, string>();
    const setupOne = async (u: string) => {
      const r = await fetch(`${hub.url}/hub/api/users/${u}/tokens`, {
        method: 'POST',
        headers: admin,
        body: JSON.stringify({ note: 'bench', expires_in: 3600 }),
      });
      const body = (await r.json()) as { token?: string };
      if (!body.token) throw new Error(`JupyterHub: a token for ${u}: ${r.status} ${JSON.stringify(body)}`);
      tokens.set(u, body.token);
      const c = await hubSignIn(hub.url, u);
      if (c) cookies.set(u, c);
    };
    await pool(
      users.map((u) => () => setupOne(u)),
      8,
    );
    const setupS = round((Date.now() - t0) / 1000, 1);
    const usersApi = await hammer(
      users.map((u) => ({
        url: `${hub.url}/hub/api/users/${u}`,
        headers: { authorization: `token ${tokens.get(u)}` },
      })),
      seconds,
    );
    const home = await hammer(
      [...cookies].map(([, cookie]) => ({ url: `${hub.url}/hub/home`, headers: { cookie } })),
      seconds,
    );
    return {
      version: hub.version,
      proxy: hub.proxy,
      users: users.length,
      setup_s: setupS,
      signed_in: cookies.size,
      users_api: usersApi,
      home,
    };
  } finally {
    await stopHub(hub);
    fs.rmSync(hub.dir, { recursive: true, force: true });
  }
}
