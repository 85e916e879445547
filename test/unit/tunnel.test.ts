// The dial-out tunnel: its frames (src/core/tunnel-frames.ts), the multiplexer both ends share
// (src/apps/tunnel.ts), the gateway's hub (src/proxy/tunnel.ts) and the agent's dialler
// (src/agent/tunnel.ts), wired as in a gateway: apps reached through the proxy over HTTP and WebSockets
// with no listening TCP socket on the agent's side; bulk transfers both ways under flow control; a
// wrong secret, another session's id, malformed, oversized and unexpected frames close that tunnel only
// (and are reported); the agent dials again after its tunnel is cut.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { type AgentTunnel, startTunnel } from '../../src/agent/tunnel.ts';
import { TUNNEL_PATH, TunnelMux, TunnelProtocolError, tunnelMac } from '../../src/apps/tunnel.ts';
import { ConfigError, parseConfig } from '../../src/config/load.ts';
import {
  decodeFrame,
  encodeFrame,
  FRAME,
  HEADER_LEN,
  MAX_DATA,
  MAX_FRAME,
  openPayload,
  parseOpen,
} from '../../src/core/tunnel-frames.ts';
import { GatewayProxy } from '../../src/proxy/proxy.ts';
import { RouteTable, sessionPrefix } from '../../src/proxy/routes.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const until = async (f: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error('timed out');
    await sleep(20);
  }
};

describe('the connection mode', () => {
  const yaml = (mode?: string) =>
    `clusters:\n  - name: hpc\n    backend: local\n${mode ? `    connection: ${mode}\n` : ''}`;
  it('is inbound by default, dial-out when asked, and an unknown mode names the key', () => {
    expect(parseConfig(yaml()).clusters[0]!.connection).toBe('inbound');
    expect(parseConfig(yaml('dial-out')).clusters[0]!.connection).toBe('dial-out');
    try {
      parseConfig(yaml('dial-in'));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).problems.map((p) => [p.key, p.line])).toEqual([
        ['clusters[0].connection', 4],
      ]);
    }
  });
});

describe('tunnel frames', () => {
  it('round-trip every kind and refuse anything else', () => {
    const data = crypto.randomBytes(MAX_DATA);
    const d = decodeFrame(encodeFrame(FRAME.DATA, 7, data));
    expect(d.ok && d.frame.type === FRAME.DATA && d.frame.stream === 7).toBe(true);
    expect(d.ok && Buffer.from(d.frame.payload).equals(data)).toBe(true);
    const open = decodeFrame(encodeFrame(FRAME.OPEN, 1, openPayload('abcd1234', 'jupyter')));
    expect(open.ok && parseOpen(open.frame.payload)).toEqual({ sessionId: 'abcd1234', app: 'jupyter' });
    const bad: [Buffer, RegExp][] = [
      [Buffer.alloc(3), /shorter than its header/],
      [Buffer.alloc(MAX_FRAME + 1, 5), /over/],
      [encodeFrame(99 as never, 1), /unknown frame type/],
      [encodeFrame(FRAME.DATA, 0, Buffer.from('x')), /on stream 0/],
      [encodeFrame(FRAME.HELLO, 3, Buffer.alloc(32)), /on stream 3/],
      [encodeFrame(FRAME.HELLO, 0, Buffer.alloc(31)), /want 32/],
      [encodeFrame(FRAME.CREDIT, 1, Buffer.alloc(3)), /want 4/],
      [encodeFrame(FRAME.END, 1, Buffer.alloc(1)), /want 0/],
      [encodeFrame(FRAME.DATA, 1), /empty data/],
      [encodeFrame(FRAME.RESET, 1, Buffer.alloc(201)), /too long/],
      [encodeFrame(FRAME.OPEN, 1, Buffer.from('abcd1234')), /malformed open/],
      [encodeFrame(FRAME.OPEN, 1, Buffer.from('ABCD jupyter')), /malformed open/],
      [encodeFrame(FRAME.OPEN, 1, Buffer.from('abcd1234 ../x')), /malformed open/],
    ];
    for (const [msg, why] of bad) {
      const r = decodeFrame(msg);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.why).toMatch(why);
    }
    expect(HEADER_LEN).toBe(5);
  });

  it('a stream for another session, one never opened, or past its window breaks the tunnel', () => {
    const cases: [Buffer[], RegExp][] = [
      [[encodeFrame(FRAME.OPEN, 1, openPayload('othersess', 'app'))], /another session/],
      [[encodeFrame(FRAME.DATA, 5, Buffer.from('x'))], /never opened/],
      [[encodeFrame(FRAME.OPEN, 2, openPayload('mysess01', 'app'))], /out of order/],
      [[encodeFrame(FRAME.HELLO, 0, Buffer.alloc(32))], /after the handshake/],
      [
        [
          encodeFrame(FRAME.OPEN, 1, openPayload('mysess01', 'app')),
          ...Array.from({ length: 9 }, () => encodeFrame(FRAME.DATA, 1, Buffer.alloc(MAX_DATA))),
        ],
        /past its window/,
      ],
    ];
    for (const [frames, why] of cases) {
      const failed: string[] = [];
      const mux = new TunnelMux({
        send: () => undefined,
        fail: (w) => failed.push(w),
        onOpen: (s, sessionId) => {
          if (sessionId !== 'mysess01') throw new TunnelProtocolError('a stream for another session');
          // Nobody reads: the window fills.
          s.pause();
        },
      });
      for (const f of frames) mux.receive(f);
      expect(failed.join()).toMatch(why);
    }
  });
});

describe('tunnel through the gateway', () => {
  const SESSION = 'tun00001';
  const OTHER = 'tun00002';
  const SECRET = 'tunnel-secret-of-alice';
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-tunnel-unit-'));
  let httpApp: http.Server;
  let gateway: http.Server;
  let proxy: GatewayProxy;
  let routes: RouteTable;
  let gatewayPort = 0;
  let agent: AgentTunnel;
  const refusals: string[] = [];
  const warnings: string[] = [];
  const agentLog: string[] = [];

  beforeAll(async () => {
    httpApp = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (d: Buffer) => chunks.push(d));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        if (req.url?.startsWith('/big')) {
          // Echoes a large body back, hashed and whole.
          res.setHeader('x-sha', crypto.createHash('sha256').update(body).digest('hex'));
          res.end(body);
          return;
        }
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ token: req.headers['x-atrium-token'], url: req.url }));
      });
    });
    const appWss = new WebSocketServer({ server: httpApp });
    appWss.on('connection', (ws) => ws.on('message', (m) => ws.send(`echo:${String(m)}`)));
    await new Promise<void>((r) => httpApp.listen(path.join(tmp, 'app.sock'), r));

    routes = new RouteTable({ info: () => undefined, warn: (o) => warnings.push(JSON.stringify(o)) });
    routes.tunnels.waitMs = 300;
    for (const id of [SESSION, OTHER]) {
      routes.set({
        sessionId: id,
        userId: 1,
        username: 'alice',
        prefix: sessionPrefix('alice', id),
        target: { host: 'node1', port: 0, tunnel: { hub: routes.tunnels, sessionId: id, app: 'web' } },
        stripPrefix: true,
        headers: { 'X-Atrium-Token': 'TOKEN' },
        transport: 'http',
      });
    }
    proxy = new GatewayProxy({
      routes,
      log: pino({ level: 'silent' }),
      trustProxy: false,
      ownCookies: ['atrium_session'],
      hooks: { authenticate: () => ({ id: 1, username: 'alice' }), placeholder: async () => false },
    });
    const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME, perMessageDeflate: false });
    gateway = http.createServer((req, res) => proxy.web(req, res));
    gateway.on('upgrade', (req, socket: net.Socket, head: Buffer) => {
      if (!req.url?.startsWith(TUNNEL_PATH)) return proxy.upgrade(req, socket, head);
      const id = req.url.slice(TUNNEL_PATH.length);
      wss.handleUpgrade(req, socket, head, (ws) =>
        routes.tunnels.accept(id, `${SECRET}:${id}`, ws, (why) => refusals.push(`${id}: ${why}`)),
      );
    });
    await new Promise<void>((r) => gateway.listen(0, '127.0.0.1', r));
    gatewayPort = (gateway.address() as net.AddressInfo).port;
    agent = startTunnel({
      hubUrl: `http://127.0.0.1:${gatewayPort}`,
      sessionId: SESSION,
      secret: `${SECRET}:${SESSION}`,
      targets: new Map([['web', { socketPath: path.join(tmp, 'app.sock') }]]),
      log: (m) => agentLog.push(m),
    });
    await agent.up;
  });

  afterAll(() => {
    agent.close();
    routes.tunnels.closeAll();
    gateway.closeAllConnections();
    gateway.close();
    proxy.close();
    httpApp.closeAllConnections();
    httpApp.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const request = (id: string, p: string, body?: Buffer) =>
    new Promise<{ status: number; body: Buffer; headers: http.IncomingHttpHeaders }>((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port: gatewayPort, method: body ? 'PUT' : 'GET', path: `/user/alice/${id}${p}` },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (d: Buffer) => chunks.push(d));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });

  it('carries HTTP requests, keep-alive and concurrent, with the gateway-added header', async () => {
    const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => request(SESSION, `/x/${i}`)));
    for (const [i, r] of rs.entries()) {
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body.toString())).toEqual({ token: 'TOKEN', url: `/x/${i}` });
    }
  });

  it('carries bulk bodies both ways under flow control', async () => {
    const body = crypto.randomBytes(5 * 1024 * 1024 + 17);
    const r = await request(SESSION, '/big', body);
    expect(r.status).toBe(200);
    expect(r.headers['x-sha']).toBe(crypto.createHash('sha256').update(body).digest('hex'));
    expect(r.body.equals(body)).toBe(true);
  });

  it('carries WebSockets', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${gatewayPort}/user/alice/${SESSION}/ws`);
    const got = await new Promise<string>((resolve, reject) => {
      ws.on('open', () => ws.send('hello'));
      ws.on('message', (m) => resolve(String(m)));
      ws.on('error', reject);
    });
    expect(got).toBe('echo:hello');
    ws.close();
  });

  it('a session without a tunnel gets the reconnecting page', async () => {
    const r = await request(OTHER, '/');
    expect(r.status).toBe(502);
    expect(r.body.toString()).toContain('reconnecting');
  });

  /** Dials the gateway as a fake agent and runs the handshake with `secret` for `id`. */
  async function fakeAgent(id: string, secret: string): Promise<{ ws: WebSocket; welcomed: boolean }> {
    const ws = new WebSocket(`ws://127.0.0.1:${gatewayPort}${TUNNEL_PATH}${id}`);
    return new Promise((resolve) => {
      const nonceA = crypto.randomBytes(32);
      ws.on('message', (m: Buffer) => {
        const d = decodeFrame(m);
        if (d.ok && d.frame.type === FRAME.HELLO) {
          const mac = tunnelMac(secret, 'agent', id, d.frame.payload, nonceA);
          ws.send(encodeFrame(FRAME.AUTH, 0, Buffer.concat([nonceA, mac])));
        } else resolve({ ws, welcomed: d.ok && d.frame.type === FRAME.WELCOME });
      });
      ws.on('close', () => resolve({ ws, welcomed: false }));
      ws.on('error', () => undefined);
    });
  }

  it('a forged tunnel (wrong secret, another session id) carries nothing and is reported', async () => {
    const wrong = await fakeAgent(OTHER, 'not-the-secret');
    expect(wrong.welcomed).toBe(false);
    // Alice's agent's secret, used for Bob's... here the OTHER session's id.
    const replay = await fakeAgent(OTHER, `${SECRET}:${SESSION}`);
    expect(replay.welcomed).toBe(false);
    expect(refusals.filter((r) => r.startsWith(OTHER)).length).toBe(2);
    expect(refusals.join()).toMatch(/does not know the session secret/);
    expect(routes.tunnels.isUp(OTHER)).toBe(false);
    expect((await request(OTHER, '/')).status).toBe(502);
    // The real one is untouched.
    expect((await request(SESSION, '/ok')).status).toBe(200);
  });

  it('malformed and oversized frames close that tunnel only, and are logged', async () => {
    for (const bad of [Buffer.from([42, 0, 0, 0, 1]), Buffer.alloc(MAX_FRAME + 10, 5)]) {
      const t = await fakeAgent(OTHER, `${SECRET}:${OTHER}`);
      expect(t.welcomed).toBe(true);
      expect(routes.tunnels.isUp(OTHER)).toBe(true);
      const closed = new Promise((r) => t.ws.on('close', r));
      t.ws.send(bad);
      await closed;
      await until(() => !routes.tunnels.isUp(OTHER));
      expect(routes.tunnels.isUp(SESSION)).toBe(true);
      expect((await request(SESSION, '/still')).status).toBe(200);
    }
    expect(warnings.join()).toMatch(/unknown frame type 42/);
    expect(warnings.join()).toMatch(/Max payload size exceeded/);
  });

  it('the agent dials again when its tunnel is cut', async () => {
    routes.tunnels.closeAll();
    expect(routes.tunnels.isUp(SESSION)).toBe(false);
    await until(() => routes.tunnels.isUp(SESSION));
    expect((await request(SESSION, '/again')).status).toBe(200);
    expect(agentLog.join('\n')).toMatch(/tunnel: down/);
  });
});
