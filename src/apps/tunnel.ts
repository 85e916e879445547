// The dial-out tunnel's two ends share this: the handshake's MACs and the stream multiplexer. The agent
// (src/agent/tunnel.ts) dials the gateway (src/proxy/tunnel.ts) over one WebSocket on the gateway's own
// port; the gateway opens one stream per connection to an app. Frames: src/core/tunnel-frames.ts.
// Node built-ins only (the agent's bundle imports it).
//
// Handshake, on stream 0, both proofs bound to the session and to both fresh nonces:
//   gateway → agent  HELLO   nonceG
//   agent → gateway  AUTH    nonceA, HMAC(secret, "atrium-tunnel1|agent|<session>|" nonceG nonceA)
//   gateway → agent  WELCOME HMAC(secret, "atrium-tunnel1|gateway|<session>|" nonceA nonceG)
// The agent proves first, over the gateway's nonce: a peer without the secret learns nothing but a
// nonce. The gateway proves second, over the agent's nonce, so the agent knows it serves its own
// gateway (not one that a DNS or proxy mistake put in between) before it carries a byte to an app.
import crypto from 'node:crypto';
import { Duplex } from 'node:stream';
import {
  creditFrame,
  creditOf,
  decodeFrame,
  encodeFrame,
  FRAME,
  type Frame,
  MAX_DATA,
  MAX_STREAMS,
  openPayload,
  parseOpen,
  STREAM_WINDOW,
} from '../core/tunnel-frames.ts';

/** The path agents dial: GET <hub>/api/agent/tunnel/<session id> with an Upgrade to WebSocket. */
export const TUNNEL_PATH = '/api/agent/tunnel/';
/** How long either side waits for the other's part of the handshake. */
export const TUNNEL_HANDSHAKE_MS = 10_000;

export function tunnelMac(
  secret: string,
  role: 'agent' | 'gateway',
  sessionId: string,
  peerNonce: Uint8Array,
  ownNonce: Uint8Array,
): Buffer {
  return crypto
    .createHmac('sha256', secret)
    .update(`atrium-tunnel1|${role}|${sessionId}|`)
    .update(peerNonce)
    .update(ownNonce)
    .digest();
}

export function macEquals(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

/** A broken peer: the whole tunnel closes (never only the frame: the ends would disagree from then on). */
export class TunnelProtocolError extends Error {}

/**
 * One stream of a tunnel, as a socket-like Duplex: Node's http client and http-proxy-3 call the
 * net.Socket methods below on the connections they are given.
 */
export class TunnelStream extends Duplex {
  /** Bytes the peer lets us send before its next CREDIT. */
  private sendCredit = STREAM_WINDOW;
  /** Bytes we received and passed on but have not granted back yet. */
  private consumed = 0;
  /** Bytes received and not yet granted back: never more than the window. */
  private outstanding = 0;
  private waiting: { chunk: Buffer; cb: (err?: Error | null) => void } | null = null;
  private idle: NodeJS.Timeout | undefined;
  private idleMs = 0;
  private sentEnd = false;
  private gotEnd = false;
  private closedByPeer = false;
  readonly connecting = false;
  readonly remoteAddress = 'tunnel';

  constructor(
    private readonly mux: TunnelMux,
    readonly id: number,
  ) {
    super({ allowHalfOpen: true, highWaterMark: 64 * 1024 });
    // A tunnel that closes fails every stream: one whose user has not listened yet must not take the
    // process down (the gateway's, or the agent's) with it.
    this.on('error', () => undefined);
  }

  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
  /** Emits 'timeout' after `ms` without traffic, as net.Socket does (0: never). */
  setTimeout(ms: number, cb?: () => void): this {
    this.idleMs = ms;
    if (cb) this.once('timeout', cb);
    this.touch();
    return this;
  }
  private touch(): void {
    if (this.idle) clearTimeout(this.idle);
    this.idle = undefined;
    if (this.idleMs > 0 && !this.destroyed) {
      this.idle = setTimeout(() => this.emit('timeout'), this.idleMs);
      this.idle.unref();
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.touch();
    this.sendSome(chunk, cb);
  }

  private sendSome(chunk: Buffer, cb: (err?: Error | null) => void): void {
    let off = 0;
    while (off < chunk.length && this.sendCredit > 0) {
      const n = Math.min(chunk.length - off, MAX_DATA, this.sendCredit);
      this.mux.send(encodeFrame(FRAME.DATA, this.id, chunk.subarray(off, off + n)));
      this.sendCredit -= n;
      off += n;
    }
    if (off === chunk.length) cb();
    else this.waiting = { chunk: chunk.subarray(off), cb };
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.sentEnd = true;
    this.mux.send(encodeFrame(FRAME.END, this.id));
    this.mux.settle(this);
    cb();
  }

  override _read(): void {
    this.grant();
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    if (this.idle) clearTimeout(this.idle);
    // A stream both ends finished needs no RESET; one the peer reset needs none either.
    if (!this.closedByPeer && !(this.sentEnd && this.gotEnd))
      this.mux.send(encodeFrame(FRAME.RESET, this.id, Buffer.from((err?.message ?? 'closed').slice(0, 200))));
    this.mux.forget(this.id);
    const w = this.waiting;
    this.waiting = null;
    w?.cb(err ?? new Error('stream closed'));
    cb(err);
  }

  /** Gives the peer back the credit of what was read, once a good share of the window is free. */
  private grant(): void {
    if (this.consumed >= STREAM_WINDOW / 4 || (this.consumed > 0 && this.readableLength === 0)) {
      this.mux.send(creditFrame(this.id, this.consumed));
      this.outstanding -= this.consumed;
      this.consumed = 0;
    }
  }

  /** A frame of the peer's for this stream. */
  onFrame(f: Frame): void {
    switch (f.type) {
      case FRAME.DATA: {
        if (this.gotEnd) throw new TunnelProtocolError(`data after end on stream ${this.id}`);
        this.outstanding += f.payload.length;
        if (this.outstanding > STREAM_WINDOW)
          throw new TunnelProtocolError(`stream ${this.id} sent past its window`);
        this.touch();
        // A view, not a copy: both ends' WebSocket readers hand over buffers they never reuse.
        const p = f.payload;
        const more = this.push(Buffer.from(p.buffer, p.byteOffset, p.length));
        this.consumed += f.payload.length;
        if (more) this.grant();
        return;
      }
      case FRAME.END:
        if (this.gotEnd) throw new TunnelProtocolError(`second end on stream ${this.id}`);
        this.gotEnd = true;
        this.push(null);
        this.mux.settle(this);
        return;
      case FRAME.RESET:
        this.closedByPeer = true;
        this.destroy(
          new Error(`reset by the peer: ${Buffer.from(f.payload).toString('utf8') || 'no reason'}`),
        );
        return;
      case FRAME.CREDIT: {
        this.sendCredit += creditOf(f);
        if (this.sendCredit > STREAM_WINDOW)
          throw new TunnelProtocolError(`stream ${this.id} granted more than the window`);
        const w = this.waiting;
        if (w) {
          this.waiting = null;
          this.sendSome(w.chunk, w.cb);
        }
        return;
      }
      default:
        throw new TunnelProtocolError(`frame type ${f.type} on stream ${this.id}`);
    }
  }

  /** Both ways ended. */
  get done(): boolean {
    return this.sentEnd && this.gotEnd;
  }
}

export interface TunnelMuxOptions {
  /** Sends one frame (one WebSocket binary message). */
  send(frame: Buffer): void;
  /** The tunnel is broken (a malformed or unexpected frame): the owner closes the WebSocket. */
  fail(why: string): void;
  /** Agent side: a stream the gateway opened, to the named app. */
  onOpen?(stream: TunnelStream, sessionId: string, app: string): void;
}

/** The streams of one authenticated tunnel. */
export class TunnelMux {
  private readonly streams = new Map<number, TunnelStream>();
  private nextId = 1;
  /** The highest id the gateway opened (agent side): lower unknown ids are streams already closed. */
  private highestOpened = 0;
  private closed = false;

  constructor(private readonly opts: TunnelMuxOptions) {}

  get size(): number {
    return this.streams.size;
  }

  send(frame: Buffer): void {
    if (!this.closed) this.opts.send(frame);
  }

  /** Gateway side: a new stream to an app of the session. */
  open(sessionId: string, app: string): TunnelStream {
    if (this.closed) throw new Error('the tunnel is closed');
    if (this.streams.size >= MAX_STREAMS) throw new Error('too many streams on the tunnel');
    const id = this.nextId;
    this.nextId += 2;
    const s = new TunnelStream(this, id);
    this.streams.set(id, s);
    this.send(encodeFrame(FRAME.OPEN, id, openPayload(sessionId, app)));
    return s;
  }

  /** One WebSocket message from the peer (after the handshake). */
  receive(msg: Uint8Array): void {
    if (this.closed) return;
    const d = decodeFrame(msg);
    if (!d.ok) return this.fail(d.why);
    const f = d.frame;
    try {
      if (f.stream === 0) throw new TunnelProtocolError(`handshake frame ${f.type} after the handshake`);
      const s = this.streams.get(f.stream);
      if (f.type === FRAME.OPEN) {
        if (!this.opts.onOpen) throw new TunnelProtocolError('the agent may not open streams');
        if (f.stream % 2 !== 1 || f.stream <= this.highestOpened)
          throw new TunnelProtocolError(`open of stream ${f.stream} out of order`);
        if (this.streams.size >= MAX_STREAMS) throw new TunnelProtocolError('too many streams');
        this.highestOpened = f.stream;
        const open = parseOpen(f.payload)!;
        const ns = new TunnelStream(this, f.stream);
        this.streams.set(f.stream, ns);
        this.opts.onOpen(ns, open.sessionId, open.app);
        return;
      }
      if (!s) {
        // A stream that one end closed while the other's frames for it were on the way: dropped. A
        // stream that was never opened is a broken peer.
        const opened = this.opts.onOpen ? f.stream <= this.highestOpened : f.stream < this.nextId;
        if (!opened) throw new TunnelProtocolError(`frame for stream ${f.stream}, never opened`);
        return;
      }
      s.onFrame(f);
    } catch (e) {
      if (e instanceof TunnelProtocolError) this.fail(e.message);
      else throw e;
    }
  }

  /** Drops a stream that both ends finished. */
  settle(s: TunnelStream): void {
    if (s.done) this.streams.delete(s.id);
  }

  forget(id: number): void {
    this.streams.delete(id);
  }

  private fail(why: string): void {
    this.opts.fail(why);
    this.close(why);
  }

  /** Every stream ends with an error (the tunnel is gone). */
  close(why: string): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of [...this.streams.values()]) s.destroy(new Error(`tunnel closed: ${why}`));
    this.streams.clear();
  }
}
