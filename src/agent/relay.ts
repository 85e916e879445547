// The agent's relay, for nodes the gateway cannot reach Unix sockets on (any remote node). The app
// still listens on its private socket (or, for a site's app that only speaks TCP, on a loopback port
// of the node); the relay listens on TCP on the node and passes a connection on
// only after a mutual proof that both ends know the app's relay secret (src/apps/relay-protocol.ts),
// which only the gateway and this agent hold. Other users of the node get a closed connection, or, if
// they open with the protocol's first line, a proof bound to their own nonce that is of no use to them.
import net from 'node:net';
import {
  HANDSHAKE_TIMEOUT_MS,
  HELLO_LEN,
  isNonce,
  macMatches,
  newNonce,
  PROOF_LEN,
  RELAY_HELLO,
  relayMac,
} from '../apps/relay-protocol.ts';

export interface Relay {
  port: number;
  close(): void;
}

const HELLO = Buffer.from(RELAY_HELLO, 'latin1');

/** Where the relay passes connections on: the app's Unix socket, or its loopback port. */
export type RelayTarget = { socketPath: string } | { host: string; port: number };

export function startRelay(opts: {
  target: RelayTarget;
  host: string;
  secret: string;
  log: (msg: string) => void;
  handshakeTimeoutMs?: number;
}): Promise<Relay> {
  let refused = 0;
  // No Nagle: the handshake and the app's answers are small writes, each awaited by the other side.
  const server = net.createServer({ noDelay: true }, (conn) => {
    conn.on('error', () => conn.destroy());
    const timer = setTimeout(
      () => refuse('no handshake in time'),
      opts.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS,
    );
    conn.on('close', () => clearTimeout(timer));
    let buf: Buffer = Buffer.alloc(0);
    let nonceG = '';
    let nonceR = '';
    function refuse(why: string): void {
      // Logged now and then, not per attempt: a port scan must not fill the user's disk.
      if (refused++ % 100 === 0) opts.log(`relay: refused a connection (${why})`);
      conn.destroy();
    }
    const onData = (d: Buffer) => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      if (!nonceR) {
        // The gateway's opening line; anything else is dropped as soon as it differs.
        const n = Math.min(buf.length, HELLO.length);
        if (!buf.subarray(0, n).equals(HELLO.subarray(0, n))) return refuse('not the relay protocol');
        if (buf.length < HELLO_LEN) return;
        nonceG = buf.toString('latin1', HELLO.length, HELLO_LEN - 1);
        // The gateway says nothing more before our answer.
        if (buf.length > HELLO_LEN || buf[HELLO_LEN - 1] !== 10 || !isNonce(nonceG))
          return refuse('malformed opening');
        nonceR = newNonce();
        buf = Buffer.alloc(0);
        conn.write(`${nonceR} ${relayMac(opts.secret, 'relay', nonceG, nonceR)}\n`);
        return;
      }
      if (buf.length < PROOF_LEN) return;
      const proof = buf.subarray(0, PROOF_LEN);
      if (!macMatches(proof, `${relayMac(opts.secret, 'gateway', nonceR, nonceG)}\n`))
        return refuse('wrong secret');
      // The gateway's first bytes for the app may have come with its proof.
      const rest = buf.subarray(PROOF_LEN);
      conn.off('data', onData);
      conn.pause();
      clearTimeout(timer);
      const t = opts.target;
      const up = 'socketPath' in t ? net.connect(t.socketPath) : net.connect(t.port, t.host);
      up.setNoDelay(true);
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
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: opts.host, port: 0 }, () => {
      resolve({ port: (server.address() as net.AddressInfo).port, close: () => server.close() });
    });
  });
}
