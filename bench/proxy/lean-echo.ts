// A lean app for the WebSocket ceiling measurement (ws-ceiling.ts): the same answers as upstream.ts
// (a 12-byte HTTP body, a WebSocket echo) with a minimal RFC 6455 echo on the raw socket instead of
// the ws library, so that the core it shares with the load generator has more room for the proxy.
//   tsx bench/proxy/lean-echo.ts [--port N]      Prints {"port":N} once listening.
import crypto from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';

const args = process.argv.slice(2);
const portArg = args.indexOf('--port');
const port = portArg === -1 ? 0 : Number(args[portArg + 1]);
const BODY = Buffer.from('hello world\n');
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

const server = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length });
  res.end(BODY);
});
server.keepAliveTimeout = 65_000;

server.on('upgrade', (req, socket: net.Socket, head: Buffer) => {
  const key = req.headers['sec-websocket-key'];
  if (typeof key !== 'string') return socket.destroy();
  const accept = crypto
    .createHash('sha1')
    .update(key + GUID)
    .digest('base64');
  socket.setNoDelay(true);
  socket.on('error', () => socket.destroy());
  socket.write(
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
  );
  let buf: Buffer = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    const out: Buffer[] = [];
    for (;;) {
      if (buf.length < 2) break;
      const opcode = buf[0]! & 0x0f;
      let len = buf[1]! & 0x7f;
      let off = 2;
      if (len === 126) {
        if (buf.length < 4) break;
        len = buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (buf.length < 10) break;
        len = Number(buf.readBigUInt64BE(2));
        off = 10;
      }
      const masked = (buf[1]! & 0x80) !== 0;
      const mask = masked ? buf.subarray(off, off + 4) : null;
      if (masked) off += 4;
      if (buf.length < off + len) break;
      const payload = Buffer.from(buf.subarray(off, off + len));
      if (mask) for (let i = 0; i < len; i++) payload[i]! ^= mask[i & 3]!;
      buf = buf.subarray(off + len);
      if (opcode === 0x8) {
        socket.end(Buffer.from([0x88, 0]));
        return;
      }
      // Echo data frames; answer a ping with a pong.
      const op = opcode === 0x9 ? 0xa : opcode;
      const header =
        len < 126
          ? Buffer.from([0x80 | op, len])
          : Buffer.from([0x80 | op, 126, (len >> 8) & 0xff, len & 0xff]);
      out.push(header, payload);
    }
    if (out.length) socket.write(Buffer.concat(out));
  };
  socket.on('data', onData);
  if (head.length) onData(head);
});

server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as net.AddressInfo).port })}\n`);
});
const shutdown = () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
