// The frames of a dial-out tunnel (src/apps/tunnel.ts): one WebSocket from a session's agent to the
// gateway carries many streams (one per connection of the browser's to an app). Each WebSocket binary
// message is exactly one frame:
//
//   type (1 byte) | stream id (4 bytes, big-endian) | payload (0..MAX_PAYLOAD bytes)
//
// Stream 0 is the tunnel's own: the handshake (HELLO, AUTH, WELCOME). Streams are opened by the gateway
// only (odd ids, increasing), so a stream id the gateway never opened is a broken peer, not a race.
// Decoding is strict: anything that is not exactly a frame this version knows is an error, and the
// caller closes the whole tunnel (never just skips the frame: the two ends would disagree from then on).

export const FRAME = {
  /** gateway → agent, stream 0: the gateway's nonce (32 bytes). */
  HELLO: 1,
  /** agent → gateway, stream 0: the agent's nonce (32 bytes) and its MAC (32 bytes). */
  AUTH: 2,
  /** gateway → agent, stream 0: the gateway's MAC over the agent's nonce (32 bytes). */
  WELCOME: 3,
  /** gateway → agent: open a stream to an app; payload "<session id> <app id>". */
  OPEN: 4,
  /** Bytes of a stream (1..MAX_DATA). */
  DATA: 5,
  /** The sender will send no more bytes on this stream (half close). */
  END: 6,
  /** The stream is gone, both ways; payload: why (UTF-8, at most 200 bytes). */
  RESET: 7,
  /** The receiver consumed this many bytes (4 bytes): the sender may send that many more. */
  CREDIT: 8,
} as const;

export type FrameType = (typeof FRAME)[keyof typeof FRAME];

export interface Frame {
  type: FrameType;
  stream: number;
  payload: Uint8Array;
}

export const HEADER_LEN = 5;
/** Largest DATA payload: bigger writes are split. */
export const MAX_DATA = 64 * 1024;
/** Largest frame of any kind, header included: a bigger WebSocket message is refused unread. */
export const MAX_FRAME = HEADER_LEN + MAX_DATA;
/** Bytes a sender may have unacknowledged per stream (the receiver's bounded buffer). */
export const STREAM_WINDOW = 512 * 1024;
/** Streams one tunnel may have open at once. */
export const MAX_STREAMS = 1024;
export const NONCE_LEN = 32;
export const MAC_LEN = 32;

const FIXED_LEN: Partial<Record<FrameType, number>> = {
  [FRAME.HELLO]: NONCE_LEN,
  [FRAME.AUTH]: NONCE_LEN + MAC_LEN,
  [FRAME.WELCOME]: MAC_LEN,
  [FRAME.END]: 0,
  [FRAME.CREDIT]: 4,
};
const CONTROL = new Set<number>([FRAME.HELLO, FRAME.AUTH, FRAME.WELCOME]);

export function encodeFrame(
  type: FrameType,
  stream: number,
  payload: Uint8Array = new Uint8Array(0),
): Buffer {
  const b = Buffer.allocUnsafe(HEADER_LEN + payload.length);
  b[0] = type;
  b.writeUInt32BE(stream >>> 0, 1);
  b.set(payload, HEADER_LEN);
  return b;
}

export function creditFrame(stream: number, bytes: number): Buffer {
  const p = Buffer.allocUnsafe(4);
  p.writeUInt32BE(bytes >>> 0, 0);
  return encodeFrame(FRAME.CREDIT, stream, p);
}

/** The bytes a CREDIT frame grants. */
export function creditOf(f: Frame): number {
  return Buffer.from(f.payload.buffer, f.payload.byteOffset, 4).readUInt32BE(0);
}

export type Decoded = { ok: true; frame: Frame } | { ok: false; why: string };

/** One WebSocket message as a frame, or why it is none. */
export function decodeFrame(msg: Uint8Array): Decoded {
  if (msg.length < HEADER_LEN)
    return { ok: false, why: `frame of ${msg.length} bytes is shorter than its header` };
  if (msg.length > MAX_FRAME) return { ok: false, why: `frame of ${msg.length} bytes is over ${MAX_FRAME}` };
  const type = msg[0]!;
  if (type < FRAME.HELLO || type > FRAME.CREDIT) return { ok: false, why: `unknown frame type ${type}` };
  const stream = Buffer.from(msg.buffer, msg.byteOffset, msg.length).readUInt32BE(1);
  const payload = msg.subarray(HEADER_LEN);
  const t = type as FrameType;
  if (CONTROL.has(t) !== (stream === 0)) return { ok: false, why: `frame type ${type} on stream ${stream}` };
  const fixed = FIXED_LEN[t];
  if (fixed !== undefined && payload.length !== fixed)
    return { ok: false, why: `frame type ${type} with ${payload.length} payload bytes (want ${fixed})` };
  if (t === FRAME.DATA && payload.length === 0) return { ok: false, why: 'empty data frame' };
  if (t === FRAME.RESET && payload.length > 200) return { ok: false, why: 'reset reason too long' };
  if (t === FRAME.OPEN && !parseOpen(payload)) return { ok: false, why: 'malformed open frame' };
  return { ok: true, frame: { type: t, stream, payload } };
}

const OPEN_RE = /^([a-z0-9]{4,32}) ([A-Za-z0-9][A-Za-z0-9_.-]{0,63})$/;

export function openPayload(sessionId: string, app: string): Buffer {
  return Buffer.from(`${sessionId} ${app}`, 'latin1');
}

/** The session and app an OPEN frame names, or null when malformed. */
export function parseOpen(payload: Uint8Array): { sessionId: string; app: string } | null {
  if (payload.length > 100) return null;
  const m = OPEN_RE.exec(Buffer.from(payload).toString('latin1'));
  return m ? { sessionId: m[1]!, app: m[2]! } : null;
}
