// The trivial app behind the proxies: a node:http server with a 12-byte body, and a WebSocket echo
// server (ws) on the same port. With --flaky it is an app that dies under its users: every WebSocket
// is destroyed without a close frame right after its first echo (the driver also SIGKILLs the whole
// process now and then and starts it again on the same port).
//   tsx bench/proxy/upstream.ts [--port N] [--flaky]
// Prints {"port":N} once listening.
import http from 'node:http';
import type net from 'node:net';
import { WebSocketServer } from 'ws';

const args = process.argv.slice(2);
const portArg = args.indexOf('--port');
const port = portArg === -1 ? 0 : Number(args[portArg + 1]);
const flaky = args.includes('--flaky');

const BODY = Buffer.from('hello world\n');

const server = http.createServer((req, res) => {
  if (req.url?.endsWith('/hub/error') || req.url?.includes('/hub/error/')) {
    // CHP's --error-target: JupyterHub serves an error page here.
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<p>proxy error</p>');
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length });
  res.end(BODY);
});
server.keepAliveTimeout = 65_000;

const wss = new WebSocketServer({ server, perMessageDeflate: false });
wss.on('connection', (ws, req) => {
  const raw = req.socket as net.Socket;
  ws.on('error', () => undefined);
  ws.on('message', (data, isBinary) => {
    ws.send(data, { binary: isBinary });
    if (flaky) setImmediate(() => raw.destroy());
  });
});

server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as net.AddressInfo).port })}\n`);
});

const shutdown = () => {
  for (const c of wss.clients) c.terminate();
  server.closeAllConnections();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
// If the benchmark itself dies, do not outlive it.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) shutdown();
}, 2000).unref();
