// The desktop's bridge (WebSocket from noVNC <-> the desktop's RFB stream) must not leave the browser's
// socket open when the VNC side goes away, whatever the browser does: keep reading without closing,
// send late frames and only half-close, or stop reading altogether while frames are still coming.
// The same leak proxy-ws-close.test.ts covers for proxied WebSockets.
import http from 'node:http';
import net from 'node:net';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { GatewayProxy } from '../../src/proxy/proxy.ts';
import { rfbHooks } from '../../src/proxy/rfb-bridge.ts';
import { RouteTable, sessionPrefix } from '../../src/proxy/routes.ts';

/** What the fake VNC server does with each connection after its greeting. */
let behaviour: (s: net.Socket) => void = () => undefined;
let vnc: net.Server;
let server: http.Server;
let proxy: GatewayProxy;
let port = 0;
const clients: net.Socket[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  vnc = net.createServer((s) => {
    s.on('error', () => undefined);
    s.write('RFB 003.008\n');
    behaviour(s);
  });
  await new Promise<void>((r) => vnc.listen(0, '127.0.0.1', r));
  const routes = new RouteTable();
  routes.set({
    sessionId: 'desk0001',
    userId: 1,
    username: 'alice',
    prefix: sessionPrefix('alice', 'desk0001'),
    target: { host: '127.0.0.1', port: (vnc.address() as net.AddressInfo).port },
    stripPrefix: true,
    headers: {},
    transport: 'rfb',
  });
  proxy = new GatewayProxy({
    routes,
    log: pino({ level: 'silent' }),
    trustProxy: false,
    ownCookies: [],
    hooks: {
      authenticate: () => ({ id: 1, username: 'alice' }),
      placeholder: async () => false,
      ...rfbHooks({ log: pino({ level: 'silent' }) }),
    },
  });
  server = http.createServer((req, res) => proxy.web(req, res));
  server.on('upgrade', (req, socket: net.Socket, head: Buffer) => proxy.upgrade(req, socket, head));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as net.AddressInfo).port;
});

afterEach(() => {
  for (const c of clients.splice(0)) c.destroy();
});

afterAll(() => {
  server.closeAllConnections();
  server.close();
  vnc.close();
  proxy.close();
});

/** A masked binary frame, as a browser sends them. */
function frame(payload: Buffer): Buffer {
  const mask = Buffer.from([1, 2, 3, 4]);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  const len = payload.length;
  const head =
    len < 126
      ? Buffer.from([0x82, 0x80 | len])
      : Buffer.from([0x82, 0x80 | 126, (len >> 8) & 0xff, len & 0xff]);
  return Buffer.concat([head, mask, masked]);
}

/** Opens noVNC's WebSocket through the gateway; resolves once the 101 and the RFB greeting arrived. */
async function openBrowserSocket(opts: { read: boolean }): Promise<net.Socket> {
  const c = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  clients.push(c);
  c.on('error', () => undefined);
  await new Promise((r) => c.once('connect', r));
  c.write(
    'GET /user/alice/desk0001/websockify HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: binary\r\n\r\n',
  );
  let got = '';
  await new Promise<void>((resolve) => {
    const onData = (d: Buffer) => {
      got += d.toString('latin1');
      if (got.includes('RFB 003.008')) {
        c.off('data', onData);
        resolve();
      }
    };
    c.on('data', onData);
  });
  expect(got).toMatch(/^HTTP\/1\.1 101 /);
  if (opts.read) c.resume();
  else c.pause();
  return c;
}

async function expectNoOpenWebSocket(ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (proxy.openWebSockets !== 0 && Date.now() < deadline) await sleep(50);
  expect(proxy.openWebSockets).toBe(0);
}

it('closes the browser side when the VNC side dies, though the browser sends late frames and only half-closes', async () => {
  behaviour = (s) => setTimeout(() => s.destroy(), 50);
  const c = await openBrowserSocket({ read: true });
  expect(proxy.openWebSockets).toBe(1);
  const closed = new Promise((r) => c.once('close', r));
  // The browser never answers a close: it sends a late frame and its FIN once it sees ours.
  await Promise.race([new Promise((r) => c.once('end', r)), sleep(1000)]);
  c.end(frame(Buffer.alloc(70, 1)));
  await expectNoOpenWebSocket(3000);
  await closed;
}, 10_000);

it('closes the browser side when the VNC side dies while the browser reads nothing and keeps sending', async () => {
  // The desktop floods the browser (a big screen update), the browser's tab is stuck, and it keeps
  // sending input events the desktop does not read; then the desktop dies.
  behaviour = (s) => {
    s.pause();
    const big = Buffer.alloc(64 * 1024, 7);
    const t = setInterval(() => s.write(big), 5);
    setTimeout(() => {
      clearInterval(t);
      s.destroy();
    }, 500);
  };
  const c = await openBrowserSocket({ read: false });
  const input = frame(Buffer.alloc(1000, 2));
  const t = setInterval(() => c.write(input), 2);
  const gone = new Promise((r) => {
    c.once('end', r);
    c.once('close', r);
  });
  try {
    await expectNoOpenWebSocket(4000);
  } finally {
    clearInterval(t);
  }
  // The gateway destroyed its side: once the browser reads again, it finds an end or a reset.
  c.resume();
  await gone;
}, 15_000);

it('closes the browser side when the VNC side ends cleanly (FIN) and the browser never answers the close', async () => {
  behaviour = (s) => setTimeout(() => s.end(), 50);
  const c = await openBrowserSocket({ read: true });
  await expectNoOpenWebSocket(3000);
  c.destroy();
}, 10_000);

it('closes the browser side when the desktop cannot be reached at all', async () => {
  const dead = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const routes = (proxy as unknown as { opts: { routes: RouteTable } }).opts.routes;
  const route = routes.get('desk0001')!;
  routes.set({ ...route, target: { host: '127.0.0.1', port: dead } });
  try {
    const c = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    clients.push(c);
    c.on('error', () => undefined);
    let got = '';
    c.on('data', (d) => {
      got += d.toString('latin1');
    });
    const ended = new Promise((r) => c.once('end', r));
    await new Promise((r) => c.once('connect', r));
    c.write(
      'GET /user/alice/desk0001/websockify HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    // The upgrade is accepted, then closed as soon as the desktop's connection fails.
    await ended;
    expect(got).toMatch(/^HTTP\/1\.1 101 /);
    await expectNoOpenWebSocket(3000);
  } finally {
    routes.set(route);
  }
}, 10_000);

it('closes the browser side when the browser sends its close frame but never its FIN', async () => {
  behaviour = (s) => s.resume();
  const c = await openBrowserSocket({ read: true });
  // A masked close frame (code 1000); then the browser goes quiet with its side open.
  const mask = [9, 8, 7, 6];
  const body = [0x03, 0xe8].map((b, i) => b ^ mask[i]!);
  c.write(Buffer.from([0x88, 0x82, ...mask, ...body]));
  await new Promise((r) => c.once('end', r)); // the gateway answered the close and sent its FIN
  // ws alone would wait 30 s for the browser's FIN, holding the desktop's connection meanwhile.
  await expectNoOpenWebSocket(4000);
}, 10_000);
