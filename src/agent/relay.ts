// The agent's relay, for nodes the gateway cannot reach Unix sockets on (any remote node). The app
// still listens on its private socket; the relay listens on TCP on the node and passes a connection on
// only when its first line is the session's secret, which only the gateway knows (see
// src/proxy/upstream.ts). Other users of the node get nothing but a closed connection.
import crypto from 'node:crypto';
import net from 'node:net';
import { RELAY_MAGIC } from '../apps/types.ts';

export interface Relay {
  port: number;
  close(): void;
}

const MAX_PREAMBLE = 512;

export function startRelay(opts: {
  socketPath: string;
  host: string;
  secret: string;
  log: (msg: string) => void;
}): Promise<Relay> {
  const expected = Buffer.from(`${RELAY_MAGIC} ${opts.secret}`, 'latin1');
  let refused = 0;
  const server = net.createServer((conn) => {
    conn.on('error', () => conn.destroy());
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => conn.destroy(), 10_000);
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const nl = buf.indexOf(10);
      if (nl === -1) {
        if (buf.length > MAX_PREAMBLE) conn.destroy();
        return;
      }
      conn.off('data', onData);
      conn.pause();
      clearTimeout(timer);
      const line = buf.subarray(0, nl);
      const rest = buf.subarray(nl + 1);
      if (line.length !== expected.length || !crypto.timingSafeEqual(line, expected)) {
        // Logged now and then, not per attempt: a port scan must not fill the user's disk.
        if (refused++ % 100 === 0) opts.log(`relay: refused a connection without the session secret`);
        conn.destroy();
        return;
      }
      const up = net.connect(opts.socketPath);
      const close = () => {
        conn.destroy();
        up.destroy();
      };
      up.on('error', close);
      up.on('close', close);
      conn.on('close', close);
      up.on('connect', () => {
        if (rest.length > 0) up.write(rest);
        conn.pipe(up);
        up.pipe(conn);
        conn.resume();
      });
    };
    conn.on('data', onData);
    conn.on('close', () => clearTimeout(timer));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: opts.host, port: 0 }, () => {
      resolve({ port: (server.address() as net.AddressInfo).port, close: () => server.close() });
    });
  });
}
