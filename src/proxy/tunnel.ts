// The gateway's end of dial-out tunnels (clusters with `connection: dial-out`): the agent of a session on
// a node that accepts no inbound connection dials the gateway's own port (src/agent/tunnel.ts), proves it
// knows the session's tunnel secret, checks the gateway's proof, and from then on the gateway opens one
// stream of that WebSocket per connection to an app (src/apps/tunnel.ts). One tunnel per session: a newer
// authenticated one (the agent reconnected) replaces the older.
import crypto from 'node:crypto';
import type net from 'node:net';
import type { WebSocket } from 'ws';
import { macEquals, TUNNEL_HANDSHAKE_MS, TunnelMux, type TunnelStream, tunnelMac } from '../apps/tunnel.ts';
import { decodeFrame, encodeFrame, FRAME, NONCE_LEN } from '../core/tunnel-frames.ts';

/** No tunnel of the session's agent is connected (it is reconnecting, or gone). */
export class TunnelDown extends Error {
  readonly code = 'ETUNNELDOWN';
}

export interface TunnelLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

interface Live {
  mux: TunnelMux;
  ws: WebSocket;
  since: number;
}

export class TunnelHub {
  private readonly live = new Map<string, Live>();
  private readonly waiters = new Map<string, Set<() => void>>();
  /** Told when a session's tunnel comes up or goes down. */
  onChange?: (sessionId: string, up: boolean) => void;
  /** How long a connection waits for a reconnecting agent before the proxy shows its error page. */
  waitMs = 5_000;

  constructor(private readonly log: TunnelLog) {}

  isUp(sessionId: string): boolean {
    return this.live.has(sessionId);
  }

  /** Sessions with a tunnel up now. */
  get size(): number {
    return this.live.size;
  }

  /**
   * Runs the handshake on a fresh WebSocket from an agent that says it serves `sessionId`; `refused` is
   * called (once) when it fails to prove the secret or breaks the protocol before that.
   */
  accept(
    sessionId: string,
    secret: string,
    ws: WebSocket,
    refused: (why: string) => void,
    peer?: string,
  ): void {
    const nonceG = crypto.randomBytes(NONCE_LEN);
    let mux: TunnelMux | null = null;
    let failed = false;
    const refuse = (why: string) => {
      if (failed) return;
      failed = true;
      refused(why);
      ws.terminate();
    };
    const timer = setTimeout(() => refuse('no handshake in time'), TUNNEL_HANDSHAKE_MS);
    // The agent takes a silent gateway for gone (a half-open connection after a failover) and dials again.
    const ping = setInterval(() => ws.ping(), 20_000);
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (mux) return mux.receive(data);
      if (failed) return;
      if (!isBinary) return refuse('a text message in the handshake');
      const d = decodeFrame(data);
      if (!d.ok) return refuse(`malformed handshake: ${d.why}`);
      if (d.frame.type !== FRAME.AUTH) return refuse(`frame type ${d.frame.type} before the handshake`);
      const nonceA = d.frame.payload.subarray(0, NONCE_LEN);
      const mac = d.frame.payload.subarray(NONCE_LEN);
      if (!macEquals(mac, tunnelMac(secret, 'agent', sessionId, nonceG, nonceA)))
        return refuse('the agent does not know the session secret');
      clearTimeout(timer);
      ws.send(encodeFrame(FRAME.WELCOME, 0, tunnelMac(secret, 'gateway', sessionId, nonceA, nonceG)));
      const m = new TunnelMux({
        send: (f) => ws.send(f),
        fail: (why) => {
          this.log.warn({ session: sessionId, why, peer }, 'tunnel closed: the agent broke the protocol');
          ws.terminate();
        },
      });
      mux = m;
      const old = this.live.get(sessionId);
      this.live.set(sessionId, { mux: m, ws, since: Date.now() });
      if (old) {
        old.mux.close('replaced by a newer tunnel');
        old.ws.terminate();
      }
      this.log.info({ session: sessionId, peer }, 'tunnel up');
      this.onChange?.(sessionId, true);
      const w = this.waiters.get(sessionId);
      this.waiters.delete(sessionId);
      for (const f of w ?? []) f();
    });
    ws.on('error', (e) => {
      // e.g. a message over the largest frame (ws's maxPayload): that tunnel closes, the others go on.
      this.log.warn({ session: sessionId, why: e.message, peer }, 'tunnel closed on an error');
      ws.terminate();
    });
    ws.on('close', (code: number) => {
      clearTimeout(timer);
      clearInterval(ping);
      if (!mux) {
        if (!failed) refuse('closed before the handshake');
        return;
      }
      mux.close('the tunnel closed');
      if (this.live.get(sessionId)?.mux === mux) {
        this.live.delete(sessionId);
        this.log.info({ session: sessionId, code }, 'tunnel down');
        this.onChange?.(sessionId, false);
      }
    });
    ws.send(encodeFrame(FRAME.HELLO, 0, nonceG));
  }

  /** A stream to an app of the session; waits a moment for an agent that is reconnecting. */
  connect(sessionId: string, app: string, cb: (err: Error | null, s?: net.Socket) => void): void {
    const l = this.live.get(sessionId);
    if (l) {
      try {
        cb(null, l.mux.open(sessionId, app) as TunnelStream as unknown as net.Socket);
      } catch (e) {
        cb(e as Error);
      }
      return;
    }
    const set = this.waiters.get(sessionId) ?? new Set<() => void>();
    this.waiters.set(sessionId, set);
    const waiter = () => {
      clearTimeout(t);
      this.connect(sessionId, app, cb);
    };
    const t = setTimeout(() => {
      set.delete(waiter);
      cb(new TunnelDown("the session's agent is not connected to the gateway"));
    }, this.waitMs);
    set.add(waiter);
  }

  /** Closes the session's tunnel (the session ended): the agent stops on its next heartbeat. */
  close(sessionId: string): void {
    const l = this.live.get(sessionId);
    if (!l) return;
    this.live.delete(sessionId);
    l.mux.close('the session ended');
    l.ws.close(1000, 'session ended');
  }

  closeAll(): void {
    for (const id of [...this.live.keys()]) {
      const l = this.live.get(id)!;
      this.live.delete(id);
      l.mux.close('the gateway is stopping');
      l.ws.terminate();
    }
  }
}
