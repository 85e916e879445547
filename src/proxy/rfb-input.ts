// What a VNC viewer sends (RFB 3.3-3.8, RFC 6143), cut into its handshake parts and messages, and two
// readers of it. RfbInputWatcher tells a person's input from the rest: key and pointer events and
// clipboard text are input; the viewer's own requests for screen updates, pixel formats, encodings,
// fences and desktop size are not (noVNC sends those all the time, with nobody at the keyboard). Fed the
// browser-to-desktop bytes of the gateway's bridge, it calls `onInput` once per message of input. A
// message it does not know means the stream can no longer be followed: from then on every chunk counts
// as input, so a session is never judged idle by a parser that lost its place. RfbGuestFilter is what
// a one-time desktop link's guest may send: always a shared ClientInit (a guest never disconnects the
// owner's viewer), and in view-only mode no input at all; a stream it cannot follow is closed.
// Pure: no I/O.

/** Bytes of the fixed-size client messages after their type byte, by type. */
const FIXED: Record<number, number> = {
  0: 19, // SetPixelFormat
  3: 9, // FramebufferUpdateRequest
  4: 7, // KeyEvent
  5: 5, // PointerEvent
  150: 9, // EnableContinuousUpdates
  250: 3, // xvp
};

/** Client messages that act on the desktop: keys, pointer, clipboard, xvp (power), desktop size, QEMU keys. */
const INPUT = new Set([4, 5, 6, 255]);
const VIEW_ONLY_DROPPED = new Set([4, 5, 6, 250, 251, 255]);

type Phase = 'version' | 'security' | 'vncauth' | 'init' | 'messages' | 'lost';

/** One whole part of the viewer's stream: a handshake step, or a message with its type. */
export type RfbUnit =
  | { kind: 'handshake'; part: 'version' | 'security' | 'vncauth' | 'init'; bytes: Buffer }
  | { kind: 'message'; type: number; bytes: Buffer };

/** Cuts the viewer-to-desktop stream into whole units, across chunks split and joined in any way. */
export class RfbClientParser {
  private buf: Buffer = Buffer.alloc(0);
  private phase: Phase = 'version';

  /** The stream can no longer be followed (an unknown message or handshake, or a unit over 1 MiB). */
  get lost(): boolean {
    return this.phase === 'lost';
  }

  /** The handshake is over: what follows are messages. */
  get inMessages(): boolean {
    return this.phase === 'messages';
  }

  /** The units `chunk` completes, in order (none once lost). */
  feed(chunk: Buffer): RfbUnit[] {
    const units: RfbUnit[] = [];
    if (this.phase === 'lost') return units;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    for (let u = this.step(); u; u = this.step()) units.push(u);
    if (this.buf.length > 1 << 20) this.lose();
    return units;
  }

  /** The bytes held back for an incomplete unit, handed over (the caller follows the stream no more). */
  drain(): Buffer {
    const rest = this.buf;
    this.buf = Buffer.alloc(0);
    return rest;
  }

  private lose(): void {
    this.phase = 'lost';
    this.buf = Buffer.alloc(0);
  }

  private take(n: number): Buffer | null {
    if (this.buf.length < n) return null;
    const unit = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return unit;
  }

  /** One whole unit (handshake part or message), or null when more bytes are needed or the place is lost. */
  private step(): RfbUnit | null {
    const b = this.buf;
    switch (this.phase) {
      case 'version': {
        if (b.length < 12) return null;
        const v = b.toString('latin1', 0, 12);
        if (!/^RFB \d{3}\.\d{3}\n$/.test(v)) {
          this.lose();
          return null;
        }
        // 3.3 has the server choose the security type: the viewer sends nothing until ClientInit.
        this.phase = v === 'RFB 003.003\n' ? 'init' : 'security';
        return { kind: 'handshake', part: 'version', bytes: this.take(12)! };
      }
      case 'security': {
        if (b.length < 1) return null;
        const type = b[0]!;
        if (type !== 1 && type !== 2) {
          this.lose();
          return null;
        }
        this.phase = type === 1 ? 'init' : 'vncauth';
        return { kind: 'handshake', part: 'security', bytes: this.take(1)! };
      }
      case 'vncauth': {
        const bytes = this.take(16);
        if (!bytes) return null;
        this.phase = 'init';
        return { kind: 'handshake', part: 'vncauth', bytes };
      }
      case 'init': {
        const bytes = this.take(1);
        if (!bytes) return null;
        this.phase = 'messages';
        return { kind: 'handshake', part: 'init', bytes };
      }
      case 'messages':
        return this.message();
      default:
        return null;
    }
  }

  private message(): RfbUnit | null {
    const b = this.buf;
    if (b.length < 1) return null;
    const type = b[0]!;
    let len: number;
    if (FIXED[type] !== undefined) len = 1 + FIXED[type];
    else if (type === 2) {
      // SetEncodings: pad, count (u16), count × s32
      if (b.length < 4) return null;
      len = 4 + 4 * b.readUInt16BE(2);
    } else if (type === 6) {
      // ClientCutText: pad ×3, length (s32; negative: extended clipboard of |length| bytes)
      if (b.length < 8) return null;
      len = 8 + Math.abs(b.readInt32BE(4));
    } else if (type === 248) {
      // ClientFence: pad ×3, flags (u32), length (u8), payload
      if (b.length < 9) return null;
      len = 9 + b[8]!;
    } else if (type === 251) {
      // SetDesktopSize: pad, width, height (u16), screens (u8), pad, screens × 16
      if (b.length < 8) return null;
      len = 8 + 16 * b[6]!;
    } else if (type === 255) {
      // QEMU: sub-type 0 is the extended key event (12 bytes in all); others are not followed.
      if (b.length < 2) return null;
      if (b[1] !== 0) {
        this.lose();
        return null;
      }
      len = 12;
    } else {
      this.lose();
      return null;
    }
    const bytes = this.take(len);
    return bytes ? { kind: 'message', type, bytes } : null;
  }
}

export class RfbInputWatcher {
  private readonly parser = new RfbClientParser();

  constructor(private readonly onInput: () => void) {}

  /** Whether the parser lost its place (then every chunk counts as input). */
  get lost(): boolean {
    return this.parser.lost;
  }

  feed(chunk: Buffer): void {
    if (this.parser.lost) {
      if (chunk.length > 0) this.onInput();
      return;
    }
    for (const u of this.parser.feed(chunk)) if (u.kind === 'message' && INPUT.has(u.type)) this.onInput();
    if (this.parser.lost) this.onInput();
  }
}

/**
 * What a guest's viewer may send to the desktop: the handshake with its ClientInit made shared, then
 * every message (full access: passed on unread from there) or, view-only, none that acts on the desktop.
 */
export class RfbGuestFilter {
  private readonly parser = new RfbClientParser();
  private through = false;

  constructor(private readonly viewOnly: boolean) {}

  /** The bytes of `chunk` that may reach the desktop; null when the stream cannot be followed (close it). */
  pass(chunk: Buffer): Buffer | null {
    if (this.through) return chunk;
    const out: Buffer[] = [];
    for (const u of this.parser.feed(chunk)) {
      if (u.kind === 'handshake') out.push(u.part === 'init' ? Buffer.from([1]) : u.bytes);
      else if (!(this.viewOnly && VIEW_ONLY_DROPPED.has(u.type))) out.push(u.bytes);
    }
    if (this.parser.lost) return null;
    if (!this.viewOnly && this.parser.inMessages) {
      out.push(this.parser.drain());
      this.through = true;
    }
    return Buffer.concat(out);
  }
}
