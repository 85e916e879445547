// The agent's end of the dial-out tunnel (clusters with `connection: dial-out`, for nodes that accept no
// inbound connection): one WebSocket to the gateway's own port, authenticated both ways with the
// session's tunnel secret (src/apps/tunnel.ts), over which the gateway opens a stream per connection to
// an app; the agent passes each on to the app's private socket (or loopback port). Nothing of the session
// listens on TCP. When the WebSocket goes (the gateway restarted, a network break) the agent dials again
// with backoff, for as long as the session lives.
// Node built-ins only (bundled): Node 20 has no WebSocket client, so the few parts of RFC 6455 a binary
// client needs are here.
import crypto from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import {
  macEquals,
  TUNNEL_HANDSHAKE_MS,
  TUNNEL_PATH,
  TunnelMux,
  TunnelProtocolError,
  tunnelMac,
} from '../apps/tunnel.ts';
import { decodeFrame, encodeFrame, FRAME, MAX_FRAME, NONCE_LEN } from '../core/tunnel-frames.ts';

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** Without a message from the gateway this long (it pings every 20 s), the connection is taken for dead. */
const SILENCE_MS = 60_000;

export type TunnelTarget = { socketPath: string } | { host: string; port: number };

export interface TunnelOptions {
  hubUrl: string;
  sessionId: string;
  secret: string;
  /** Where each app of the session is, by app id. */
  targets: Map<string, TunnelTarget>;
  log: (msg: string) => void;
}

export interface AgentTunnel {
  /** Resolves when the tunnel is up for the first time. */
  readonly up: Promise<void>;
  close(): void;
}

/** A minimal WebSocket client connection: binary messages out (masked), whole messages in. */
class WsClient {
  private buf: Buffer = Buffer.alloc(0);
  private parts: Buffer[] = [];
  private partsLen = 0;
  onMessage: (msg: Buffer) => void = () => undefined;
  onClose: (why: string) => void = () => undefined;
  private closed = false;

  constructor(readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('error', (e) => this.close(e.message));
    socket.on('close', () => this.close('the connection closed'));
  }

  /** Starts reading, once the handlers are set: `head` is what came with the upgrade's answer. */
  start(head: Buffer): void {
    if (head.length > 0) this.feed(head);
    this.socket.on('data', (d: Buffer) => this.feed(d));
  }

  send(payload: Buffer, opcode = 2): void {
    if (this.closed) return;
    const n = payload.length;
    const hl = n < 126 ? 6 : n < 65536 ? 8 : 14;
    // One write per frame (no Nagle here: a header and its body in two segments cost a packet each).
    const head = Buffer.allocUnsafe(hl + n);
    head[0] = 0x80 | opcode;
    let o = 2;
    if (n < 126) head[1] = 0x80 | n;
    else if (n < 65536) {
      head[1] = 0x80 | 126;
      head.writeUInt16BE(n, 2);
      o = 4;
    } else {
      head[1] = 0x80 | 127;
      head.writeBigUInt64BE(BigInt(n), 2);
      o = 10;
    }
    const mask = crypto.randomBytes(4);
    mask.copy(head, o);
    for (let i = 0; i < n; i++) head[hl + i] = payload[i]! ^ mask[i & 3]!;
    this.socket.write(head);
  }

  private feed(d: Buffer): void {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    while (!this.closed && this.buf.length >= 2) {
      const b0 = this.buf[0]!;
      const b1 = this.buf[1]!;
      if (b1 & 0x80) return this.close('a masked frame from the gateway');
      let len = b1 & 0x7f;
      let o = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        o = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        const big = this.buf.readBigUInt64BE(2);
        if (big > BigInt(MAX_FRAME)) return this.close(`a message of ${big} bytes is over ${MAX_FRAME}`);
        len = Number(big);
        o = 10;
      }
      if (len > MAX_FRAME) return this.close(`a message of ${len} bytes is over ${MAX_FRAME}`);
      if (this.buf.length < o + len) return;
      const payload = this.buf.subarray(o, o + len);
      this.buf = this.buf.subarray(o + len);
      const opcode = b0 & 0x0f;
      const fin = (b0 & 0x80) !== 0;
      if (opcode === 8) return this.close('the gateway closed the tunnel');
      if (opcode === 9) {
        this.send(Buffer.from(payload), 10);
        this.onMessage(Buffer.alloc(0));
        continue;
      }
      if (opcode === 10) {
        this.onMessage(Buffer.alloc(0));
        continue;
      }
      if (opcode !== 0 && opcode !== 2) return this.close(`unexpected WebSocket opcode ${opcode}`);
      this.parts.push(payload);
      this.partsLen += payload.length;
      if (this.partsLen > MAX_FRAME) return this.close(`a message over ${MAX_FRAME} bytes`);
      if (fin) {
        const msg = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
        this.parts = [];
        this.partsLen = 0;
        this.onMessage(msg);
      }
    }
  }

  close(why: string): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    this.onClose(why);
  }
}

/** Opens the WebSocket to the gateway's tunnel endpoint. */
function dial(hubUrl: string, sessionId: string): Promise<{ ws: WsClient; head: Buffer }> {
  const url = new URL(`${hubUrl}${TUNNEL_PATH}${sessionId}`);
  const key = crypto.randomBytes(16).toString('base64');
  const lib = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(url, {
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': key,
      },
      timeout: TUNNEL_HANDSHAKE_MS,
    });
    req.on('timeout', () => req.destroy(new Error('no answer in time')));
    req.on('error', reject);
    req.on('response', (res) => {
      res.resume();
      reject(
        Object.assign(new Error(`the gateway answered HTTP ${res.statusCode}`), { status: res.statusCode }),
      );
    });
    req.on('upgrade', (res, socket, head) => {
      const accept = crypto
        .createHash('sha1')
        .update(key + WS_GUID)
        .digest('base64');
      if (res.headers['sec-websocket-accept'] !== accept) {
        socket.destroy();
        return reject(new Error('the gateway answered the upgrade wrongly'));
      }
      resolve({ ws: new WsClient(socket), head });
    });
    req.end();
  });
}

/**
 * One connection: the handshake, then streams until it closes. Resolves (with whether it was ever up)
 * when it closes; rejects when it cannot be made or authenticated.
 */
function runOnce(
  opts: TunnelOptions,
  onUp: () => void,
  onWs: (ws: WsClient | null) => void,
): Promise<boolean> {
  return dial(opts.hubUrl, opts.sessionId).then(
    ({ ws, head }) =>
      new Promise<boolean>((resolve, reject) => {
        onWs(ws);
        const nonceA = crypto.randomBytes(NONCE_LEN);
        let nonceG: Buffer | null = null;
        let mux: TunnelMux | null = null;
        let lastHeard = Date.now();
        const watch = setInterval(() => {
          if (Date.now() - lastHeard > SILENCE_MS) ws.close('the gateway has been silent');
        }, 10_000);
        const handshake = setTimeout(() => ws.close('no handshake in time'), TUNNEL_HANDSHAKE_MS);
        ws.onClose = (why) => {
          clearInterval(watch);
          clearTimeout(handshake);
          onWs(null);
          if (mux) {
            mux.close(why);
            opts.log(`tunnel: down (${why}); dialling again`);
            resolve(true);
          } else reject(new Error(why));
        };
        ws.onMessage = (msg) => {
          lastHeard = Date.now();
          if (msg.length === 0) return;
          if (mux) return mux.receive(msg);
          const d = decodeFrame(msg);
          if (!d.ok) return ws.close(`malformed handshake: ${d.why}`);
          if (!nonceG) {
            if (d.frame.type !== FRAME.HELLO) return ws.close('the gateway did not open the handshake');
            nonceG = Buffer.from(d.frame.payload);
            const mac = tunnelMac(opts.secret, 'agent', opts.sessionId, nonceG, nonceA);
            ws.send(encodeFrame(FRAME.AUTH, 0, Buffer.concat([nonceA, mac])));
            return;
          }
          if (d.frame.type !== FRAME.WELCOME) return ws.close('the gateway did not accept the tunnel');
          const want = tunnelMac(opts.secret, 'gateway', opts.sessionId, nonceA, nonceG);
          if (!macEquals(d.frame.payload, want))
            return ws.close('the gateway does not know the session secret');
          clearTimeout(handshake);
          mux = new TunnelMux({
            send: (f) => ws.send(f),
            fail: (why) => {
              opts.log(`tunnel: closed, the gateway broke the protocol (${why})`);
              ws.close(why);
            },
            onOpen: (stream, sessionId, app) => {
              if (sessionId !== opts.sessionId)
                throw new TunnelProtocolError(`a stream for another session (${sessionId})`);
              const t = opts.targets.get(app);
              if (!t) {
                stream.destroy(new Error(`no app ${app} in this session`));
                return;
              }
              const up = 'socketPath' in t ? net.connect(t.socketPath) : net.connect(t.port, t.host);
              up.setNoDelay(true);
              const close = (e?: Error) => {
                up.destroy();
                stream.destroy(e);
              };
              up.on('error', close);
              up.on('close', () => close());
              stream.on('error', () => up.destroy());
              stream.on('close', () => up.destroy());
              stream.pipe(up);
              up.pipe(stream);
            },
          });
          opts.log('tunnel: up');
          onUp();
        };
        ws.start(head);
      }),
  );
}

export function startTunnel(opts: TunnelOptions): AgentTunnel {
  let closed = false;
  let current: WsClient | null = null;
  let markUp: () => void = () => undefined;
  const up = new Promise<void>((r) => {
    markUp = r;
  });
  let wake: (() => void) | null = null;
  void (async () => {
    let attempt = 0;
    while (!closed) {
      try {
        if (await runOnce(opts, markUp, (ws) => (current = ws))) attempt = 0;
      } catch (e) {
        // The gateway says the session is over: nothing to dial for (the heartbeat stops the agent).
        if ((e as { status?: number }).status === 410) {
          opts.log('tunnel: the gateway says the session has ended; not dialling again');
          break;
        }
        if (attempt % 10 === 0)
          opts.log(`tunnel: cannot reach the gateway (${(e as Error).message}); retrying`);
      }
      if (closed) break;
      // Jittered: after a gateway restart, every agent does not dial in the same instant.
      const ms = Math.min(10_000, 250 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random() / 2);
      attempt++;
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, ms);
      });
    }
  })();
  return {
    up,
    close() {
      closed = true;
      current?.close('the session is stopping');
      wake?.();
    },
  };
}
