// Telling a person's input from a VNC viewer's own traffic (src/proxy/rfb-input.ts).
import { describe, expect, it } from 'vitest';
import { RfbInputWatcher } from '../../src/proxy/rfb-input.ts';

const u16 = (n: number) => Buffer.from([n >> 8, n & 255]);
const s32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const handshake = Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([1]), Buffer.from([1])]);
const setEncodings = Buffer.concat([Buffer.from([2, 0]), u16(3), s32(0), s32(7), s32(-223)]);
const fbRequest = Buffer.from([3, 1, 0, 0, 0, 0, 5, 0, 3, 32]);
const pixelFormat = Buffer.concat([Buffer.from([0, 0, 0, 0]), Buffer.alloc(16)]);
const key = Buffer.from([4, 1, 0, 0, 0, 0, 0, 0x61]);
const pointer = Buffer.from([5, 0, 0, 10, 0, 20]);
const fence = Buffer.concat([Buffer.from([248, 0, 0, 0]), s32(0), Buffer.from([3, 1, 2, 3])]);
const cut = Buffer.concat([Buffer.from([6, 0, 0, 0]), s32(2), Buffer.from('hi')]);
const qemuKey = Buffer.concat([Buffer.from([255, 0]), u16(1), s32(0x61), s32(30)]);

function watch(chunks: Buffer[]): { inputs: number; lost: boolean } {
  let inputs = 0;
  const w = new RfbInputWatcher(() => inputs++);
  for (const c of chunks) w.feed(c);
  return { inputs, lost: w.lost };
}

describe('RfbInputWatcher', () => {
  it('counts keys, pointer moves, clipboard text; not the viewer requests for updates', () => {
    expect(watch([handshake, pixelFormat, setEncodings, fbRequest, fbRequest, fence])).toEqual({
      inputs: 0,
      lost: false,
    });
    expect(watch([handshake, setEncodings, fbRequest, key, pointer, fbRequest, cut, qemuKey])).toEqual({
      inputs: 4,
      lost: false,
    });
  });

  it('follows messages split and joined in any way', () => {
    const all = Buffer.concat([handshake, setEncodings, fbRequest, key, fbRequest, pointer, pointer]);
    const bytes = [...all].map((b) => Buffer.from([b]));
    expect(watch(bytes)).toEqual({ inputs: 3, lost: false });
    expect(watch([all])).toEqual({ inputs: 3, lost: false });
  });

  it('handles RFB 3.3 (no security choice) and VNC authentication', () => {
    const v33 = Buffer.concat([Buffer.from('RFB 003.003\n'), Buffer.from([1])]);
    expect(watch([v33, fbRequest, pointer])).toEqual({ inputs: 1, lost: false });
    const auth = Buffer.concat([
      Buffer.from('RFB 003.008\n'),
      Buffer.from([2]),
      Buffer.alloc(16),
      Buffer.from([1]),
    ]);
    expect(watch([auth, fbRequest, key])).toEqual({ inputs: 1, lost: false });
  });

  it('counts everything once it cannot follow the stream (never idle by mistake)', () => {
    const r = watch([handshake, fbRequest, Buffer.from([99, 1, 2, 3]), fbRequest, fbRequest]);
    expect(r.lost).toBe(true);
    expect(r.inputs).toBe(3);
    expect(watch([Buffer.from('GET / HTTP/1.1\r\n')]).lost).toBe(true);
  });
});
