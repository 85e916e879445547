// A proxied WebSocket whose app goes away must not leave the browser's socket open: http-proxy-3 ends
// our side but leaves the browser's side paused, so its FIN would never be read (found by
// bench/proxy/ws-churn.ts: a few sockets per 50,000 cycles stayed open for good).
import http from 'node:http';
import net from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { GatewayProxy } from '../../src/proxy/proxy.ts';
import { RouteTable, sessionPrefix } from '../../src/proxy/routes.ts';

let app: net.Server;
let server: http.Server;
let proxy: GatewayProxy;
let port = 0;

beforeAll(async () => {
  // The app: accepts the upgrade, then dies 50 ms later without a close frame.
  app = net.createServer((s) => {
    s.once('data', () => {
      s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
      setTimeout(() => s.destroy(), 50);
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const routes = new RouteTable();
  routes.set({
    sessionId: 'sess0001',
    userId: 1,
    username: 'alice',
    prefix: sessionPrefix('alice', 'sess0001'),
    target: { host: '127.0.0.1', port: (app.address() as net.AddressInfo).port },
    stripPrefix: false,
    headers: {},
    transport: 'http',
  });
  proxy = new GatewayProxy({
    routes,
    log: pino({ level: 'silent' }),
    trustProxy: false,
    ownCookies: [],
    hooks: { authenticate: () => ({ id: 1, username: 'alice' }), placeholder: async () => false },
  });
  server = http.createServer((req, res) => proxy.web(req, res));
  server.on('upgrade', (req, socket: net.Socket, head: Buffer) => proxy.upgrade(req, socket, head));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as net.AddressInfo).port;
});

afterAll(() => {
  server.closeAllConnections();
  server.close();
  app.close();
  proxy.close();
});

it('closes the browser side of a WebSocket once the app is gone, even with unread bytes', async () => {
  // A browser that reads the proxy's FIN but sends its own close only later (a half-open moment).
  const client = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  client.on('error', () => undefined);
  client.resume();
  await new Promise((r) => client.once('connect', r));
  client.write(
    'GET /user/alice/sess0001/ws HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
  );
  // The proxy ends our connection when the app dies; the browser then sends a late frame and its FIN.
  await new Promise((r) => client.once('end', r));
  await new Promise((r) => setTimeout(r, 200));
  expect(proxy.openWebSockets).toBe(1);
  client.end(Buffer.alloc(70, 1));
  await new Promise((r) => setTimeout(r, 3000));
  expect(proxy.openWebSockets).toBe(0);
}, 10_000);
