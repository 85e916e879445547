// Tells a person's input from the rest in what a VNC viewer sends (RFB 3.3-3.8, RFC 6143): key and
// pointer events and clipboard text are input; the viewer's own requests for screen updates, pixel
// formats, encodings, fences and desktop size are not (noVNC sends those all the time, with nobody at
// the keyboard). Fed the browser-to-desktop bytes of the gateway's bridge, it calls `onInput` once per
// message of input. A message it does not know means the stream can no longer be followed: from then
// on every chunk counts as input, so a session is never judged idle by a parser that lost its place.
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

const INPUT = new Set([4, 5, 6]);

type Phase = 'version' | 'security' | 'vncauth' | 'init' | 'messages' | 'lost';

export class RfbInputWatcher {
  private buf: Buffer = Buffer.alloc(0);
  private phase: Phase = 'version';
  private legacy = false;

  constructor(private readonly onInput: () => void) {}

  /** Whether the parser lost its place (then every chunk counts as input). */
  get lost(): boolean {
    return this.phase === 'lost';
  }

  feed(chunk: Buffer): void {
    if (this.phase === 'lost') {
      if (chunk.length > 0) this.onInput();
      return;
    }
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    while (this.step()) {
      // each step consumed one unit
    }
    if (this.buf.length > 1 << 20) this.lose();
  }

  private lose(): void {
    this.phase = 'lost';
    this.buf = Buffer.alloc(0);
    this.onInput();
  }

  private take(n: number): boolean {
    if (this.buf.length < n) return false;
    this.buf = this.buf.subarray(n);
    return true;
  }

  /** Consumes one unit (handshake part or message) when whole; false when more bytes are needed. */
  private step(): boolean {
    const b = this.buf;
    switch (this.phase) {
      case 'version': {
        if (b.length < 12) return false;
        const v = b.toString('latin1', 0, 12);
        if (!/^RFB \d{3}\.\d{3}\n$/.test(v)) {
          this.lose();
          return false;
        }
        // 3.3 has the server choose the security type: the viewer sends nothing until ClientInit.
        this.legacy = v === 'RFB 003.003\n';
        this.take(12);
        this.phase = this.legacy ? 'init' : 'security';
        return true;
      }
      case 'security': {
        if (b.length < 1) return false;
        const type = b[0]!;
        this.take(1);
        if (type === 1) this.phase = 'init';
        else if (type === 2) this.phase = 'vncauth';
        else {
          this.lose();
          return false;
        }
        return true;
      }
      case 'vncauth':
        if (!this.take(16)) return false;
        this.phase = 'init';
        return true;
      case 'init':
        if (!this.take(1)) return false;
        this.phase = 'messages';
        return true;
      case 'messages':
        return this.message();
      default:
        return false;
    }
  }

  private message(): boolean {
    const b = this.buf;
    if (b.length < 1) return false;
    const type = b[0]!;
    let len: number;
    if (FIXED[type] !== undefined) len = 1 + FIXED[type];
    else if (type === 2) {
      // SetEncodings: pad, count (u16), count × s32
      if (b.length < 4) return false;
      len = 4 + 4 * b.readUInt16BE(2);
    } else if (type === 6) {
      // ClientCutText: pad ×3, length (s32; negative: extended clipboard of |length| bytes)
      if (b.length < 8) return false;
      len = 8 + Math.abs(b.readInt32BE(4));
    } else if (type === 248) {
      // ClientFence: pad ×3, flags (u32), length (u8), payload
      if (b.length < 9) return false;
      len = 9 + b[8]!;
    } else if (type === 251) {
      // SetDesktopSize: pad, width, height (u16), screens (u8), pad, screens × 16
      if (b.length < 8) return false;
      len = 8 + 16 * b[6]!;
    } else if (type === 255) {
      // QEMU: sub-type 0 is the extended key event (12 bytes in all); others are not followed.
      if (b.length < 2) return false;
      if (b[1] !== 0) {
        this.lose();
        return false;
      }
      len = 12;
      if (b.length < len) return false;
      this.take(len);
      this.onInput();
      return true;
    } else {
      this.lose();
      return false;
    }
    if (b.length < len) return false;
    this.take(len);
    if (INPUT.has(type)) this.onInput();
    return true;
  }
}
