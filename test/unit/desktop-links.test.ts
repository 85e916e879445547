// One-time desktop links, the pure parts: a link's state, its refusal words, the lifetime check
// (src/core/desktop-link.ts), and what a guest's viewer may send to the desktop (src/proxy/rfb-input.ts).
import { describe, expect, it } from 'vitest';
import { checkLinkMinutes, desktopLinkRefusal, desktopLinkState } from '../../src/core/desktop-link.ts';
import { RfbGuestFilter } from '../../src/proxy/rfb-input.ts';

describe('desktop link state', () => {
  const link = { expiresAt: 1000, usedAt: null, endedAt: null, endedBy: null };
  it('is unused, then in use, until it expires, is revoked or its session ends', () => {
    expect(desktopLinkState(link, 999)).toBe('unused');
    expect(desktopLinkState({ ...link, usedAt: 500 }, 999)).toBe('in use');
    expect(desktopLinkState(link, 1000)).toBe('expired');
    expect(desktopLinkState({ ...link, usedAt: 500 }, 1000)).toBe('expired');
    expect(desktopLinkState({ ...link, endedAt: 600, endedBy: 'owner' }, 700)).toBe('revoked');
    expect(desktopLinkState({ ...link, endedAt: 600, endedBy: 'session' }, 2000)).toBe('ended');
  });

  it('says why each refusal', () => {
    expect(desktopLinkRefusal('in use').title).toBe('This link has already been used');
    expect(desktopLinkRefusal('expired').title).toBe('This link has expired');
    expect(desktopLinkRefusal('revoked').title).toBe('This link was revoked');
    expect(desktopLinkRefusal('ended').title).toBe('The shared desktop has ended');
    expect(desktopLinkRefusal(null).title).toBe('This link is not valid');
  });

  it('takes minutes above 0 up to the site maximum; 0 turns links off', () => {
    expect(checkLinkMinutes(30, 60)).toBeNull();
    expect(checkLinkMinutes(60, 60)).toBeNull();
    expect(checkLinkMinutes(0.01, 60)).toBeNull();
    expect(checkLinkMinutes(61, 60)).toBe('minutes: at most 60 on this site');
    expect(checkLinkMinutes(0, 60)).toMatch(/^minutes: /);
    expect(checkLinkMinutes(-5, 60)).toMatch(/^minutes: /);
    expect(checkLinkMinutes(Number.NaN, 60)).toMatch(/^minutes: /);
    expect(checkLinkMinutes(5, 0)).toBe('desktop links are turned off on this site');
  });
});

const u16 = (n: number) => Buffer.from([n >> 8, n & 255]);
const s32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const version = Buffer.from('RFB 003.008\n');
const security = Buffer.from([1]);
const exclusiveInit = Buffer.from([0]);
const setEncodings = Buffer.concat([Buffer.from([2, 0]), u16(2), s32(0), s32(7)]);
const fbRequest = Buffer.from([3, 1, 0, 0, 0, 0, 5, 0, 3, 32]);
const key = Buffer.from([4, 1, 0, 0, 0, 0, 0, 0x61]);
const pointer = Buffer.from([5, 1, 0, 10, 0, 20]);
const cut = Buffer.concat([Buffer.from([6, 0, 0, 0]), s32(2), Buffer.from('hi')]);
const resize = Buffer.concat([
  Buffer.from([251, 0]),
  u16(800),
  u16(600),
  Buffer.from([1, 0]),
  Buffer.alloc(16),
]);
const qemuKey = Buffer.concat([Buffer.from([255, 0]), u16(1), s32(0x61), s32(30)]);
const xvpShutdown = Buffer.from([250, 0, 1, 2]);

/** Feeds `chunks` to a filter; what passed, or null once it closed the stream. */
function through(viewOnly: boolean, chunks: Buffer[]): Buffer | null {
  const f = new RfbGuestFilter(viewOnly);
  const out: Buffer[] = [];
  for (const c of chunks) {
    const o = f.pass(c);
    if (o === null) return null;
    out.push(o);
  }
  return Buffer.concat(out);
}

describe("a guest's viewer (RfbGuestFilter)", () => {
  const viewerRequests = [setEncodings, fbRequest, fbRequest];
  const input = [key, pointer, cut, resize, qemuKey, xvpShutdown];

  it('view-only: passes the handshake (made shared) and screen requests, drops all input', () => {
    const sent = [version, security, exclusiveInit, ...viewerRequests, ...input, fbRequest];
    const expected = Buffer.concat([version, security, Buffer.from([1]), ...viewerRequests, fbRequest]);
    expect(through(true, sent)).toEqual(expected);
    // The same bytes split at every position and joined: the same result.
    const all = Buffer.concat(sent);
    for (let cut = 1; cut < all.length; cut += 3) {
      expect(through(true, [all.subarray(0, cut), all.subarray(cut)])).toEqual(expected);
    }
    expect(
      through(
        true,
        [...all].map((b) => Buffer.from([b])),
      ),
    ).toEqual(expected);
  });

  it('full access: a shared ClientInit, then everything as sent', () => {
    const sent = [version, security, exclusiveInit, ...viewerRequests, ...input];
    expect(through(false, sent)).toEqual(
      Buffer.concat([version, security, Buffer.from([1]), ...viewerRequests, ...input]),
    );
    // ClientInit and the first messages in one chunk, the last message split.
    const tail = Buffer.concat([exclusiveInit, fbRequest, key.subarray(0, 3)]);
    expect(through(false, [Buffer.concat([version, security]), tail, key.subarray(3)])).toEqual(
      Buffer.concat([version, security, Buffer.from([1]), fbRequest, key]),
    );
  });

  it('closes a stream it cannot follow (view-only: nothing unknown reaches the desktop)', () => {
    expect(through(true, [version, security, exclusiveInit, Buffer.from([77, 1, 2, 3])])).toBeNull();
    expect(through(true, [Buffer.from('HTTP/1.1 200\r\n')])).toBeNull();
    expect(through(true, [version, Buffer.from([9])])).toBeNull();
    expect(through(true, [version, security, exclusiveInit, Buffer.from([255, 1, 0, 0])])).toBeNull();
    // A clipboard message larger than the filter follows (1 MiB).
    const huge = Buffer.concat([Buffer.from([6, 0, 0, 0]), s32(2 << 20), Buffer.alloc(1 << 20)]);
    expect(through(true, [version, security, exclusiveInit, huge, Buffer.alloc(10)])).toBeNull();
  });
});
