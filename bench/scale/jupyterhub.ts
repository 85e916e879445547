// The scale benchmark's reference (issue 20, point 2): Debian's JupyterHub 3.0 as bench:spawn starts it
// (bench/spawn/jupyterhub.ts), its users created through its REST API with the admin (service) token,
// a token and a signed-in cookie per user: the targets of its users API and its home page, which
// run.ts loads under the same concurrency as our pages (one request in flight per user), in rounds
// interleaved with ours.
import fs from 'node:fs';
import { round } from '../proxy/lib.ts';
import { startHub, stopHub } from '../spawn/jupyterhub.ts';
import { pool, type Target } from './users.ts';

export interface HubSide {
  version: string;
  proxy: string;
  users: number;
  setup_s: number;
  /** Users signed in through its login form (DummyAuthenticator: no password check). */
  signed_in: number;
  /** Every user through the login form at the same moment: sign-ins per second. */
  sign_ins_per_s: number;
  /** Each user's own users API (`/hub/api/users/<name>`, with the user's token). */
  usersApi: Target[];
  /** Each signed-in user's home page (`/hub/home`, with the cookie). */
  home: Target[];
  stop(): Promise<void>;
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

/** JupyterHub with `users`, each with a token and a cookie; stop() stops it (by its PIDs). */
export async function startHubSide(users: string[]): Promise<HubSide> {
  const t0 = Date.now();
  const hub = await startHub(users[0]!, ['tokens']);
  const stop = async () => {
    await stopHub(hub);
    fs.rmSync(hub.dir, { recursive: true, force: true });
  };
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
    };
    await pool(
      users.map((u) => () => setupOne(u)),
      8,
    );
    // Every user signs in at the same moment, as in our sign-in burst.
    const tSign = performance.now();
    await Promise.all(
      users.map(async (u) => {
        const c = await hubSignIn(hub.url, u);
        if (c) cookies.set(u, c);
      }),
    );
    const signS = (performance.now() - tSign) / 1000;
    const setupS = round((Date.now() - t0) / 1000, 1);
    return {
      version: hub.version,
      proxy: hub.proxy,
      users: users.length,
      setup_s: setupS,
      signed_in: cookies.size,
      sign_ins_per_s: round(cookies.size / signS, 1),
      usersApi: users.map((u) => ({
        url: `${hub.url}/hub/api/users/${u}`,
        headers: { authorization: `token ${tokens.get(u)}` },
      })),
      home: [...cookies].map(([, cookie]) => ({ url: `${hub.url}/hub/home`, headers: { cookie } })),
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
