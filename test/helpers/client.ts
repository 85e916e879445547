// A small API client with a cookie jar and the CSRF header, like the web UI.
export class Client {
  cookie = '';
  csrf = '';

  constructor(readonly base: string) {}

  async login(username: string, password: string): Promise<Response> {
    const r = await fetch(`${this.base}/api/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password }),
    });
    const set = r.headers.get('set-cookie');
    if (set) this.cookie = set.split(';')[0]!;
    if (r.ok) {
      const j = (await r.clone().json()) as { csrfToken: string };
      this.csrf = j.csrfToken;
    }
    return r;
  }

  async req(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Response> {
    const h: Record<string, string> = { ...headers };
    if (this.cookie) h.cookie = this.cookie;
    if (this.csrf && method !== 'GET') h['x-csrf-token'] = this.csrf;
    if (body !== undefined) h['content-type'] = 'application/json';
    return fetch(`${this.base}${path}`, {
      method,
      headers: h,
      body: body === undefined ? undefined : JSON.stringify(body),
      redirect: 'manual',
    });
  }

  async json<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: T }> {
    const r = await this.req(method, path, body);
    const text = await r.text();
    let parsed: unknown = {};
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      parsed = { text };
    }
    return { status: r.status, body: parsed as T };
  }

  get = (p: string) => this.json('GET', p);
  post = (p: string, b?: unknown) => this.json('POST', p, b ?? {});
  del = (p: string) => this.json('DELETE', p);
}

export interface SessionView {
  id: string;
  state: string;
  displayState: string;
  reason: string | null;
  url: string;
  openUrl: string;
  jobId: string | null;
  queue: { reason?: string; position?: number; expectedStart?: number } | null;
  expiresAt: number | null;
}

/** Polls the API until the session reaches one of `states` (or fails). */
export async function waitForState(
  c: Client,
  id: string,
  states: string[],
  timeoutMs = 90_000,
): Promise<SessionView> {
  const deadline = Date.now() + timeoutMs;
  let last: SessionView | undefined;
  while (Date.now() < deadline) {
    const r = await c.get(`/api/sessions/${id}`);
    last = (r.body as { session: SessionView }).session;
    if (last && states.includes(last.state)) return last;
    if (last && (last.state === 'failed' || last.state === 'ended') && !states.includes(last.state)) {
      throw new Error(`session ${id} is ${last.state}: ${last.reason}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`session ${id} did not reach ${states.join('/')} (last: ${JSON.stringify(last)})`);
}
