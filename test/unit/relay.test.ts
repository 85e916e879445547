// The relay handshake (src/apps/relay-protocol.ts) between the gateway (src/proxy/upstream.ts) and an
// agent's relay (src/agent/relay.ts): apps reached through it over HTTP, keep-alive and WebSockets;
// a listener without the secret on the relay's port (another user's, after the agent died) gets the
// opening line and nothing else, whatever it answers; a client without the secret gets nothing from
// the relay; wrong, reflected and replayed proofs are refused both ways; timeouts; fragmented messages.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { type Relay, startRelay } from '../../src/agent/relay.ts';
import {
  CHALLENGE_LEN,
  HELLO_LEN,
  newNonce,
  PROOF_LEN,
  RELAY_HELLO,
  relayMac,
} from '../../src/apps/relay-protocol.ts';
import { GatewayProxy } from '../../src/proxy/proxy.ts';
import { type Route, RouteTable, sessionPrefix } from '../../src/proxy/routes.ts';
import { connectTarget, RelayRefused, relayHandshake } from '../../src/proxy/upstream.ts';

const SECRET = 'relay-secret-of-alice';
const TOKEN = 'app-token-of-alice';
const HELLO_RE = /^ATRIUM-RELAY1 [A-Za-z0-9_-]{43}\n$/;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-relay-unit-'));
let echoApp: net.Server;
let httpApp: http.Server;
let echoConnections = 0;
let httpConnections = 0;
let echoRelay: Relay;
let httpRelay: Relay;
const relayLogs: string[] = [];
let gateway: http.Server;
let proxy: GatewayProxy;
let routes: RouteTable;
let gatewayPort = 0;
let route: Route;
// The browser's side keeps its connection too (a request with `Connection: close` closes upstream's).
const browser = new http.Agent({ keepAlive: true, maxSockets: 1 });

const listen = (s: net.Server, where: string | number) =>
  new Promise<void>((r) =>
    typeof where === 'string' ? s.listen(where, r) : s.listen(where, '127.0.0.1', r),
  );
const portOf = (s: net.Server) => (s.address() as net.AddressInfo).port;

beforeAll(async () => {
  echoApp = net.createServer((c) => {
    echoConnections++;
    c.on('error', () => undefined);
    c.pipe(c);
  });
  await listen(echoApp, path.join(tmp, 'echo.sock'));
  // The app: says what it got (its token header, method, path, body), and echoes on a WebSocket.
  httpApp = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => {
      body += d;
    });
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({ token: req.headers['x-atrium-token'], method: req.method, url: req.url, body }),
      );
    });
  });
  httpApp.on('connection', () => httpConnections++);
  const wss = new WebSocketServer({ server: httpApp });
  wss.on('connection', (ws, req) => {
    ws.on('message', (m) => ws.send(`${req.headers['x-atrium-token']}:${String(m)}`));
  });
  await listen(httpApp, path.join(tmp, 'http.sock'));
  const relayOpts = { host: '127.0.0.1', secret: SECRET, log: (m: string) => relayLogs.push(m) };
  echoRelay = await startRelay({
    ...relayOpts,
    target: { socketPath: path.join(tmp, 'echo.sock') },
    handshakeTimeoutMs: 300,
  });
  httpRelay = await startRelay({ ...relayOpts, target: { socketPath: path.join(tmp, 'http.sock') } });
  routes = new RouteTable();
  route = {
    sessionId: 'relay001',
    userId: 1,
    username: 'alice',
    prefix: sessionPrefix('alice', 'relay001'),
    target: { host: '127.0.0.1', port: httpRelay.port, relaySecret: SECRET },
    stripPrefix: true,
    headers: { 'X-Atrium-Token': TOKEN },
    transport: 'http',
  };
  routes.set(route);
  proxy = new GatewayProxy({
    routes,
    log: pino({ level: 'silent' }),
    trustProxy: false,
    ownCookies: ['atrium_session'],
    hooks: { authenticate: () => ({ id: 1, username: 'alice' }), placeholder: async () => false },
  });
  gateway = http.createServer((req, res) => proxy.web(req, res));
  gateway.on('upgrade', (req, socket: net.Socket, head: Buffer) => proxy.upgrade(req, socket, head));
  await listen(gateway, 0);
  gatewayPort = portOf(gateway);
});

afterAll(() => {
  browser.destroy();
  gateway.closeAllConnections();
  gateway.close();
  proxy.close();
  echoRelay.close();
  httpRelay.close();
  httpApp.closeAllConnections();
  httpApp.close();
  echoApp.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** A request through the gateway, as alice's browser sends it (with her cookie and a marker body). */
function request(method: string, p: string, body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port: gatewayPort,
        method,
        path: `/user/alice/relay001${p}`,
        agent: browser,
        headers: { cookie: 'atrium_session=COOKIE-OF-ALICE; other=COOKIE-MARKER' },
      },
      (res) => {
        let text = '';
        res.on('data', (d) => {
          text += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A WebSocket through the gateway: the first message echoed, or the HTTP status it was refused with. */
function wsRoundTrip(msg: string): Promise<string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${gatewayPort}/user/alice/relay001/ws`, {
      headers: { cookie: 'other=COOKIE-MARKER' },
    });
    ws.on('open', () => ws.send(msg));
    ws.on('message', (m) => {
      resolve(String(m));
      ws.close();
    });
    ws.on('unexpected-response', (_req, res) => {
      resolve(`HTTP ${res.statusCode}`);
      ws.terminate();
    });
    ws.on('error', (e) => resolve(`error ${e.message}`));
  });
}

/** A raw connection: what it receives, and a promise of its close. */
function rawClient(port: number) {
  const c = net.connect(port, '127.0.0.1');
  let got = Buffer.alloc(0);
  const waiters: { n: number; resolve: () => void }[] = [];
  c.on('data', (d: Buffer) => {
    got = Buffer.concat([got, d]);
    for (const w of waiters.splice(0)) {
      if (got.length >= w.n) w.resolve();
      else waiters.push(w);
    }
  });
  c.on('error', () => undefined);
  const closed = new Promise<void>((r) => c.once('close', () => r()));
  return {
    c,
    closed,
    got: () => got,
    /** Waits until n bytes have arrived. */
    bytes: (n: number) =>
      new Promise<void>((resolve) => {
        if (got.length >= n) resolve();
        else waiters.push({ n, resolve });
      }),
  };
}

/** The gateway's side, written by hand: opening, the relay's answer checked, proof (all optionally split). */
async function handshakeByHand(port: number, opts: { split?: boolean; secret?: string } = {}) {
  const k = rawClient(port);
  const nonceG = newNonce();
  const send = async (s: string) => {
    if (!opts.split) return void k.c.write(s);
    for (const ch of s) {
      k.c.write(ch);
      await sleep(1);
    }
  };
  await send(`${RELAY_HELLO}${nonceG}\n`);
  await k.bytes(CHALLENGE_LEN);
  const answer = k.got().toString('latin1');
  const [nonceR, macR] = answer.slice(0, -1).split(' ') as [string, string];
  const proof = `${relayMac(opts.secret ?? SECRET, 'gateway', nonceR, nonceG)}\n`;
  return { k, nonceG, nonceR, macR, answer, proof, send };
}

/** Sends `text` on a new connectTarget connection to the relay on `port`; returns the first answer. */
async function echoViaRelay(port: number, text: string): Promise<string> {
  const s = await new Promise<net.Socket>((resolve, reject) =>
    connectTarget({ host: '127.0.0.1', port, relaySecret: SECRET }, (err, s) =>
      err ? reject(err) : resolve(s!),
    ),
  );
  const echoed = new Promise<string>((r) => s.once('data', (d) => r(String(d))));
  s.write(text);
  try {
    return await echoed;
  } finally {
    s.destroy();
  }
}

describe('through the relay, after the handshake', () => {
  it('carries requests with their token header, on pooled connections', async () => {
    const before = httpConnections;
    for (let i = 0; i < 5; i++) {
      const r = await request('GET', `/page${i}?q=1`);
      expect(r.status).toBe(200);
      expect(JSON.parse(r.text)).toMatchObject({ token: TOKEN, method: 'GET', url: `/page${i}?q=1` });
    }
    const post = await request('POST', '/form', 'USER-BODY');
    expect(JSON.parse(post.text)).toMatchObject({ token: TOKEN, method: 'POST', body: 'USER-BODY' });
    // Sequential requests reuse one connection: one handshake, not one per request.
    expect(httpConnections - before).toBe(1);
  });

  it('carries WebSockets', async () => {
    expect(await wsRoundTrip('hello')).toBe(`${TOKEN}:hello`);
  });

  it('carries raw bytes, the first ones sent with the proof, and fragmented handshakes', async () => {
    for (const split of [false, true]) {
      const h = await handshakeByHand(echoRelay.port, { split });
      expect(h.answer).toHaveLength(CHALLENGE_LEN);
      expect(h.macR).toBe(relayMac(SECRET, 'relay', h.nonceG, h.nonceR));
      await h.send(`${h.proof}ping`);
      await h.k.bytes(CHALLENGE_LEN + 4);
      expect(h.k.got().subarray(CHALLENGE_LEN).toString()).toBe('ping');
      h.k.c.destroy();
    }
  });

  it('fronts an app that listens on a loopback TCP port as it fronts a socket', async () => {
    const tcpApp = net.createServer((c) => c.pipe(c));
    await new Promise<void>((r) => tcpApp.listen(0, '127.0.0.1', () => r()));
    const tcpRelay = await startRelay({
      host: '127.0.0.1',
      secret: SECRET,
      log: () => undefined,
      target: { host: '127.0.0.1', port: portOf(tcpApp) },
    });
    try {
      expect(await echoViaRelay(tcpRelay.port, 'over tcp')).toBe('over tcp');
      // Without the secret: nothing reaches the app.
      const h = await handshakeByHand(tcpRelay.port, { secret: 'not-the-secret' });
      await h.send(`${h.proof}GET / HTTP/1.1\r\n\r\n`);
      await new Promise<void>((r) => h.k.c.once('close', () => r()));
      expect(h.k.got().length).toBe(CHALLENGE_LEN);
    } finally {
      tcpRelay.close();
      tcpApp.close();
    }
  });

  it("connectTarget's socket carries bytes once the relay has proved itself", async () => {
    expect(await echoViaRelay(echoRelay.port, 'pong')).toBe('pong');
  });

  it('costs one round trip per new connection, with no Nagle delay on the proof and the first bytes', async () => {
    // With Nagle, the first bytes after the proof wait for its delayed ACK: 40 ms per connection.
    const t0 = Date.now();
    for (let i = 0; i < 10; i++) {
      await echoViaRelay(echoRelay.port, 'x');
    }
    expect(Date.now() - t0).toBeLessThan(250);
  });
});

/** A listener on the relay's port that does not know the secret: records each connection's bytes. */
async function squatter(answer: (c: net.Socket, first: Buffer) => void, onConnect?: (c: net.Socket) => void) {
  const received: Buffer[] = [];
  const closed: Promise<void>[] = [];
  const server = net.createServer((c) => {
    const i = received.push(Buffer.alloc(0)) - 1;
    closed.push(new Promise((r) => c.once('close', () => r())));
    c.on('error', () => undefined);
    onConnect?.(c);
    let answered = false;
    c.on('data', (d: Buffer) => {
      received[i] = Buffer.concat([received[i]!, d]);
      if (!answered) {
        answered = true;
        answer(c, d);
      }
    });
  });
  await listen(server, 0);
  return { server, port: portOf(server), received, closed };
}

/** Points alice's route at a port (a fresh target: fresh pooled connections). */
function routeTo(port: number): void {
  routes.set({ ...route, target: { host: '127.0.0.1', port, relaySecret: SECRET } });
}

describe('a listener without the secret on the relay port', () => {
  // What the gateway's opening reveals is the protocol's name and a random nonce.
  const challenge = (mac: (nonceG: string, nonceR: string) => string) => (c: net.Socket, first: Buffer) => {
    const nonceG = first.toString('latin1', RELAY_HELLO.length, HELLO_LEN - 1);
    const nonceR = newNonce();
    c.write(`${nonceR} ${mac(nonceG, nonceR)}\n`);
  };
  const cases: [string, (c: net.Socket, first: Buffer) => void, ((c: net.Socket) => void)?][] = [
    [
      'answers like an app at once',
      () => undefined,
      (c) => c.write('HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n<script>alert("evil")</script>'),
    ],
    [
      'answers an app page to the opening',
      (c) => c.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil'),
    ],
    ['closes', (c) => c.destroy()],
    ['answers a random MAC', challenge(() => crypto.randomBytes(32).toString('base64url'))],
    ['answers with another secret', challenge((g, r) => relayMac('a guess', 'relay', g, r))],
    ["answers with the gateway's label", challenge((g, r) => relayMac(SECRET, 'gateway', r, g))],
    ['answers with a MAC of lowercase letters of the right length', challenge(() => 'a'.repeat(43))],
  ];
  for (const [name, answer, onConnect] of cases) {
    it(`${name}: gets the opening line only; the request fails cleanly`, async () => {
      const sq = await squatter(answer, onConnect);
      routeTo(sq.port);
      try {
        const get = await request('GET', '/secret-page?x=QUERY-MARKER');
        expect(get.status).toBe(502);
        expect(get.text).not.toContain('evil');
        const post = await request('POST', '/form', 'USER-BODY');
        expect(post.status).toBe(502);
        expect(await wsRoundTrip('WS-MARKER')).toMatch(/^(HTTP 502|error )/);
        await Promise.all(sq.closed);
        expect(sq.received.length).toBeGreaterThan(0);
        for (const bytes of sq.received) {
          const text = bytes.toString('latin1');
          // Nothing of the user's, no secret, no proof: the opening line, at most.
          if (text !== '') expect(text).toMatch(HELLO_RE);
          for (const marker of [SECRET, TOKEN, 'COOKIE', 'MARKER', 'USER-BODY', 'GET', 'POST'])
            expect(text).not.toContain(marker);
        }
      } finally {
        routes.set(route);
        sq.server.close();
      }
    });
  }

  it("replays the relay's recorded answer to another opening: refused", async () => {
    // An answer the real relay gave to someone's opening, replayed to the gateway's new one.
    const h = await handshakeByHand(echoRelay.port);
    h.k.c.destroy();
    const sq = await squatter((c) => c.write(h.answer));
    try {
      const err = await new Promise<Error | null>((resolve) =>
        connectTarget({ host: '127.0.0.1', port: sq.port, relaySecret: SECRET }, (e) => resolve(e)),
      );
      expect(err).toBeInstanceOf(RelayRefused);
      expect(err?.message).toMatch(/does not know the secret/);
      await Promise.all(sq.closed);
      expect(sq.received.map((b) => b.toString('latin1'))).toEqual([expect.stringMatching(HELLO_RE)]);
    } finally {
      sq.server.close();
    }
  });

  it('stays silent: the gateway gives up after its timeout, having sent the opening only', async () => {
    const sq = await squatter(() => undefined);
    try {
      const s = net.connect(sq.port, '127.0.0.1');
      const t0 = Date.now();
      const err = await new Promise<Error | null>((resolve) => relayHandshake(s, SECRET, resolve, 200));
      expect(err?.message).toMatch(/no answer in time/);
      expect(Date.now() - t0).toBeLessThan(2000);
      expect(s.destroyed).toBe(true);
      await Promise.all(sq.closed);
      expect(sq.received.map((b) => b.toString('latin1'))).toEqual([expect.stringMatching(HELLO_RE)]);
    } finally {
      sq.server.close();
    }
  });
});

describe('the gateway side with a relay that knows the secret', () => {
  /** A relay written by hand: answers the opening with `write`, then checks the proof and echoes. */
  async function handRelay(write: (c: net.Socket, answer: string) => Promise<void>) {
    const proofs: boolean[] = [];
    const server = net.createServer((c) => {
      c.on('error', () => undefined);
      let buf = '';
      let nonceG = '';
      let nonceR = '';
      let proven = false;
      c.on('data', async (d) => {
        if (proven) return void c.write(d);
        buf += d.toString('latin1');
        if (!nonceR && buf.length >= HELLO_LEN) {
          nonceG = buf.slice(RELAY_HELLO.length, HELLO_LEN - 1);
          nonceR = newNonce();
          buf = '';
          await write(c, `${nonceR} ${relayMac(SECRET, 'relay', nonceG, nonceR)}\n`);
        } else if (nonceR && buf.length >= PROOF_LEN) {
          proven = buf.slice(0, PROOF_LEN) === `${relayMac(SECRET, 'gateway', nonceR, nonceG)}\n`;
          proofs.push(proven);
          if (proven) c.write(buf.slice(PROOF_LEN));
          else c.destroy();
        }
      });
    });
    await listen(server, 0);
    return { server, port: portOf(server), proofs };
  }

  const connect = (port: number) =>
    new Promise<{ err: Error | null; s?: net.Socket }>((resolve) =>
      connectTarget({ host: '127.0.0.1', port, relaySecret: SECRET }, (err, s) => resolve({ err, s })),
    );

  it('accepts an answer that arrives byte by byte, and proves itself', async () => {
    const r = await handRelay(async (c, answer) => {
      for (const ch of answer) {
        c.write(ch);
        await sleep(1);
      }
    });
    try {
      const { err, s } = await connect(r.port);
      expect(err).toBeNull();
      const echoed = new Promise<string>((resolve) => s!.once('data', (d) => resolve(String(d))));
      s!.write('bytes');
      expect(await echoed).toBe('bytes');
      expect(r.proofs).toEqual([true]);
      s!.destroy();
    } finally {
      r.server.close();
    }
  });

  it('refuses a relay that sends more than its answer before the proof', async () => {
    const r = await handRelay(async (c, answer) => void c.write(`${answer}HTTP/1.1 200 OK\r\n\r\n`));
    try {
      const { err } = await connect(r.port);
      expect(err).toBeInstanceOf(RelayRefused);
      expect(r.proofs).toEqual([]);
    } finally {
      r.server.close();
    }
  });
});

describe('the relay side with a client without the secret', () => {
  /** The relay's answer to one client, and whether the app saw a connection. */
  async function attempt(run: (k: ReturnType<typeof rawClient>) => Promise<void> | void) {
    const before = echoConnections;
    const k = rawClient(echoRelay.port);
    await run(k);
    await k.closed;
    await sleep(20);
    return { got: k.got().toString('latin1'), app: echoConnections - before };
  }

  it('closes at once, without a byte, on anything but the protocol', async () => {
    for (const first of [
      'GET / HTTP/1.1\r\nHost: x\r\n\r\n',
      `ATRIUM-RELAY ${SECRET}\nping`, // the protocol before this one
      `${RELAY_HELLO}${'!'.repeat(43)}\n`,
      `${RELAY_HELLO}${newNonce()}\nGET / HTTP/1.1\r\n\r\n`, // more than the opening
      `${RELAY_HELLO}${newNonce()} \n`,
    ]) {
      expect(await attempt((k) => void k.c.write(first)), first).toEqual({ got: '', app: 0 });
    }
  });

  it('refuses a wrong, reflected or replayed proof after its answer; the app sees nothing', async () => {
    const ok = await handshakeByHand(echoRelay.port);
    ok.k.c.destroy();
    const proofs: [string, (h: Awaited<ReturnType<typeof handshakeByHand>>) => string][] = [
      ['random', () => `${crypto.randomBytes(32).toString('base64url')}\n`],
      ['another secret', (h) => `${relayMac('a guess', 'gateway', h.nonceR, h.nonceG)}\n`],
      ["the relay's own MAC", (h) => `${h.macR}\n`],
      ['the relay label', (h) => `${relayMac(SECRET, 'relay', h.nonceR, h.nonceG)}\n`],
      ['an earlier connection\u2019s proof', () => ok.proof],
      ['truncated then silent', (h) => h.proof.slice(0, 20)],
    ];
    for (const [name, proof] of proofs) {
      const before = echoConnections;
      const h = await handshakeByHand(echoRelay.port);
      h.k.c.write(`${proof(h)}ping`);
      await h.k.closed;
      expect(h.k.got().toString('latin1'), name).toBe(h.answer);
      expect(echoConnections - before, name).toBe(0);
    }
  });

  it('closes a connection that does not finish its handshake in time', async () => {
    const t0 = Date.now();
    expect(await attempt(() => undefined)).toEqual({ got: '', app: 0 });
    expect(await attempt((k) => void k.c.write(RELAY_HELLO.slice(0, 5)))).toEqual({ got: '', app: 0 });
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('logs refusals now and then', () => {
    expect(relayLogs.some((l) => l.includes('refused'))).toBe(true);
  });
});
