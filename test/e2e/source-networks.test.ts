// Source-network rules (issue 17, point 3), on a real gateway and the local backend: clients bound to
// different loopback addresses (127.0.0.2 allowed, 127.0.0.3 not) get in or get the 403 that names
// their address and the site's words, on the API, the pages, the proxy path and WebSocket upgrades, in
// any spelling of the path; X-Forwarded-For counts only from the trusted proxy (127.0.0.4); a cluster's
// own rule refuses starts there and its sessions through the proxy, while the other cluster works.
import fs from 'node:fs';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoApps } from '../helpers/echo-app.ts';
import { createTestGateway, type TestGateway } from '../helpers/gateway.ts';

const SITE = 'Ask the help desk for VPN access.';
const LAB = 'Only from the lab network.';
const echo = echoApps();
let gw: TestGateway;

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A client that connects from one loopback address, with its own sign-in. */
class From {
  cookie = '';
  csrf = '';
  constructor(readonly address: string) {}

  request(
    method: string,
    path: string,
    opts: { headers?: Record<string, string>; body?: unknown } = {},
  ): Promise<Answer> {
    const headers: Record<string, string> = { connection: 'close', ...opts.headers };
    if (this.cookie) headers.cookie = this.cookie;
    if (this.csrf && method !== 'GET') headers['x-csrf-token'] = this.csrf;
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    if (body !== undefined) headers['content-type'] = 'application/json';
    return new Promise((resolve, reject) => {
      const r = http.request(
        { host: '127.0.0.1', port: gw.port, localAddress: this.address, method, path, headers, agent: false },
        (res) => {
          let data = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            data += c;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data }));
        },
      );
      r.on('error', reject);
      r.end(body);
    });
  }

  /** A WebSocket handshake: its status (101 when let through) and the body of a refusal. */
  upgrade(path: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const r = http.request({
        host: '127.0.0.1',
        port: gw.port,
        localAddress: this.address,
        path,
        agent: false,
        headers: {
          connection: 'Upgrade',
          upgrade: 'websocket',
          'sec-websocket-version': '13',
          'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
          ...(this.cookie ? { cookie: this.cookie } : {}),
        },
      });
      r.on('upgrade', (_res, socket) => {
        socket.destroy();
        resolve({ status: 101, body: '' });
      });
      r.on('response', (res) => {
        let data = '';
        res.on('data', (c: Buffer) => {
          data += c.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
        res.on('error', () => resolve({ status: res.statusCode ?? 0, body: data }));
      });
      r.on('error', reject);
      r.end();
    });
  }

  async login(user: string): Promise<Answer> {
    const r = await this.request('POST', '/api/login', {
      body: { username: user, password: gw.passwords[user] },
    });
    if (r.status === 200) {
      this.cookie = String(r.headers['set-cookie']?.[0] ?? '').split(';')[0]!;
      this.csrf = (JSON.parse(r.body) as { csrfToken: string }).csrfToken;
    }
    return r;
  }

  async start(cluster: string): Promise<Answer> {
    return this.request('POST', '/api/sessions', {
      body: { cluster, app: 'echo', cores: 1, memoryGb: 1, hours: 1 },
    });
  }
}

const allowed = new From('127.0.0.2');
const outsider = new From('127.0.0.3');
const proxy = new From('127.0.0.4');
const lab = new From('127.0.0.5');

/** A 403 that names the address seen and the site's words. */
function expectRefused(r: { status: number; body: string }, address: string, words = SITE): void {
  expect(r.status, r.body).toBe(403);
  expect(r.body).toContain(address);
  expect(r.body).toContain(words);
}

beforeAll(async () => {
  gw = await createTestGateway({ name: 'networks', users: [{ name: 'alice' }] });
  const cfg = fs
    .readFileSync(gw.configFile, 'utf8')
    .replace('server:\n', 'server:\n  trustProxy: ["127.0.0.4"]\n');
  fs.writeFileSync(
    gw.configFile,
    `${cfg}sourceNetworks:
  allow: ["127.0.0.2/32", "127.0.0.5", "::1/128"]
  message: ${SITE}
clusters:
  - name: open
    backend: local
  - name: lab
    backend: local
    sourceNetworks:
      allow: ["127.0.0.5/32"]
      message: ${LAB}
${echo.yaml}`,
  );
  await gw.start();
  expect((await allowed.login('alice')).status).toBe(200);
  expect((await lab.login('alice')).status).toBe(200);
});

afterAll(async () => {
  await gw?.stop();
  fs.rmSync(echo.dir, { recursive: true, force: true });
});

describe('the site rule', () => {
  it('lets an allowed address in and refuses another, naming it, on the API and the pages', async () => {
    expect((await allowed.request('GET', '/api/auth/methods')).status).toBe(200);
    expect((await allowed.request('GET', '/api/sessions')).status).toBe(200);
    expectRefused(await outsider.request('GET', '/api/auth/methods'), '127.0.0.3');
    const login = await outsider.login('alice');
    expectRefused(login, '127.0.0.3');
    const page = await outsider.request('GET', '/login', { headers: { accept: 'text/html' } });
    expectRefused(page, '127.0.0.3');
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expectRefused(
      await outsider.request('GET', '/no/such/page', { headers: { accept: 'text/html' } }),
      '127.0.0.3',
    );
    // A sign-in made from an allowed address does not carry over to a refused one.
    const stolen = new From('127.0.0.3');
    stolen.cookie = allowed.cookie;
    expectRefused(await stolen.request('GET', '/api/sessions'), '127.0.0.3');
  });

  it('refuses the proxy path and WebSocket upgrades, in any spelling of the path', async () => {
    const stolen = new From('127.0.0.3');
    stolen.cookie = allowed.cookie;
    for (const p of [
      '/user/alice/abcd1234/',
      '/us%65r/alice/abcd1234/lab',
      '/%61pi/sessions',
      '/api/%73essions',
    ]) {
      expectRefused(await stolen.request('GET', p), '127.0.0.3');
    }
    expectRefused(await stolen.upgrade('/user/alice/abcd1234/api/kernels/x/channels'), '127.0.0.3');
    expectRefused(await stolen.upgrade('/%75ser/alice/abcd1234/terminals/websocket/1'), '127.0.0.3');
    expectRefused(await stolen.upgrade('/api/events'), '127.0.0.3');
    // An odd spelling is refused too, either way (400 for the path, or 403 for the address): never served.
    const odd = await stolen.request('GET', '/api/./sessions');
    expect([400, 403]).toContain(odd.status);
  });

  it('leaves agents, the health check and /metrics to their own rules', async () => {
    expect((await outsider.request('GET', '/api/health')).status).toBe(200);
    // An agent with no valid secret is refused by the agent route itself, not for its address.
    const agent = await outsider.request('POST', '/api/agent/ready', { body: { sessionId: 'abcd1234' } });
    expect(agent.body).not.toContain('127.0.0.3');
    // /metrics keeps metrics.allowFrom (127.0.0.1 and ::1 by default): refused for its own reason.
    expect((await outsider.request('GET', '/metrics')).body).toMatch(/metrics\.allowFrom/);
  });

  it('reads X-Forwarded-For only from the trusted proxy', async () => {
    // From an untrusted peer, the header is ignored: the peer's own address is judged.
    expectRefused(
      await outsider.request('GET', '/api/auth/methods', { headers: { 'x-forwarded-for': '127.0.0.2' } }),
      '127.0.0.3',
    );
    // From the trusted proxy, the address it forwards is judged.
    const through = await proxy.request('GET', '/api/auth/methods', {
      headers: { 'x-forwarded-for': '127.0.0.2' },
    });
    expect(through.status, through.body).toBe(200);
    expectRefused(
      await proxy.request('GET', '/api/auth/methods', {
        headers: { 'x-forwarded-for': '127.0.0.2, 127.0.0.9' },
      }),
      '127.0.0.9',
    );
    // A client's own X-Forwarded-For ahead of the proxy's hop does not help it.
    expectRefused(
      await proxy.request('GET', '/api/auth/methods', {
        headers: { 'x-forwarded-for': '127.0.0.2, 127.0.0.3' },
      }),
      '127.0.0.3',
    );
    // The proxy itself is no allowed client.
    expectRefused(await proxy.request('GET', '/api/auth/methods'), '127.0.0.4');
  });
});

describe('a cluster rule', () => {
  it('refuses starts on that cluster, and its sessions through the proxy, while the other cluster works', async () => {
    const refused = await allowed.start('lab');
    expectRefused(refused, '127.0.0.2', LAB);
    expect(JSON.parse(refused.body)).toMatchObject({ field: 'cluster' });
    const job = await allowed.request('POST', '/api/jobs', {
      body: { cluster: 'lab', source: 'text', script: '#!/bin/sh\necho hi\n' },
    });
    expectRefused(job, '127.0.0.2', LAB);

    const open = await allowed.start('open');
    expect(open.status, open.body).toBe(201);
    const fromLab = await lab.start('lab');
    expect(fromLab.status, fromLab.body).toBe(201);
    const id = (JSON.parse(fromLab.body) as { session: { id: string } }).session.id;
    const openId = (JSON.parse(open.body) as { session: { id: string } }).session.id;
    for (;;) {
      const s = JSON.parse((await lab.request('GET', `/api/sessions/${id}`)).body) as {
        session: { state: string };
      };
      if (s.session.state === 'running') break;
      expect(['requested', 'queued', 'starting']).toContain(s.session.state);
      await new Promise((r) => setTimeout(r, 200));
    }
    const path = `/user/alice/${id}/`;
    const inLab = await lab.request('GET', path);
    expect(inLab.status, inLab.body).toBe(200);
    expect(inLab.body).toContain('"app": "echo"');
    expect((await lab.upgrade(`${path}ws`)).status).toBe(101);
    // The same user from an address the site allows but the lab cluster does not.
    expectRefused(await allowed.request('GET', path), '127.0.0.2', LAB);
    expectRefused(await allowed.upgrade(`${path}ws`), '127.0.0.2', LAB);

    for (const [c, s] of [
      [lab, id],
      [allowed, openId],
    ] as const) {
      expect((await c.request('DELETE', `/api/sessions/${s}`)).status).toBeLessThan(300);
    }
  });
});
