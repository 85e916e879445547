// Source-network rules: which client addresses may use the gateway (or one cluster), and which address
// a request comes from when a trusted reverse proxy stands in front. Pure (no node:net): the config check,
// the gateway's hooks and the unit tests share it.
//
// Every address is compared as 128 bits: an IPv4 address a.b.c.d is the IPv4-mapped IPv6 address
// ::ffff:a.b.c.d, and an IPv4 network a.b.c.d/n is ::ffff:a.b.c.d/(96+n). So a client seen as
// "::ffff:127.0.0.2" (a dual-stack listener) and one seen as "127.0.0.2" match the same rules, and
// `::/0` covers every address, IPv4 too.

export interface Network {
  /** As written in the configuration. */
  text: string;
  base: bigint;
  /** Prefix length in the 128-bit form. */
  bits: number;
}

const V4_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const MAPPED_PREFIX = 0xffffn << 32n;

function parseV4(s: string): bigint | null {
  const m = V4_RE.exec(s);
  if (!m) return null;
  let v = 0n;
  for (const part of m.slice(1)) {
    // "010" reads as octal to some tools and decimal to others: refused rather than guessed.
    if (part.length > 1 && part.startsWith('0')) return null;
    const n = Number(part);
    if (n > 255) return null;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

function parseV6(s: string): bigint | null {
  if (!/^[0-9A-Fa-f:.]+$/.test(s) || s.length > 45) return null;
  let text = s;
  // An IPv4 tail (::ffff:1.2.3.4, 64:ff9b::1.2.3.4) is the last two groups written another way.
  if (s.includes('.')) {
    const lastColon = s.lastIndexOf(':');
    const tail = parseV4(s.slice(lastColon + 1));
    if (tail === null) return null;
    text = `${s.slice(0, lastColon + 1)}${(tail >> 16n).toString(16)}:${(tail & 0xffffn).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const groupsOf = (h: string) => (h === '' ? [] : h.split(':'));
  const head = groupsOf(halves[0]!);
  const rest = halves.length === 2 ? groupsOf(halves[1]!) : [];
  const given = head.length + rest.length;
  if (halves.length === 1 ? given !== 8 : given > 7) return null;
  const groups = [...head, ...Array<string>(8 - given).fill('0'), ...rest];
  let v = 0n;
  for (const g of groups) {
    if (!/^[0-9A-Fa-f]{1,4}$/.test(g)) return null;
    v = (v << 16n) | BigInt(Number.parseInt(g, 16));
  }
  return v;
}

/**
 * An address in its 128-bit form, or null when it is not an IPv4 or IPv6 address. A zone (`fe80::1%eth0`,
 * as a socket may report a link-local peer) is ignored.
 */
export function parseAddress(text: string): bigint | null {
  const s = text.trim();
  const v4 = parseV4(s);
  if (v4 !== null) return MAPPED_PREFIX | v4;
  const zone = s.indexOf('%');
  return parseV6(zone === -1 ? s : s.slice(0, zone));
}

/** An address or network as written (`10.0.0.0/8`, `2001:db8::/32`, `192.0.2.7`), or why it is not one. */
export function parseNetwork(text: string): { ok: true; network: Network } | { ok: false; why: string } {
  const [addr = '', prefix, extra] = text.trim().split('/');
  const bad = (why: string) => ({
    ok: false as const,
    why: `"${text}" is not an address or network (CIDR): ${why}`,
  });
  if (extra !== undefined) return bad('more than one "/"');
  const v4 = parseV4(addr);
  const v6 = v4 === null && !addr.includes('%') ? parseV6(addr) : null;
  if (v4 === null && v6 === null) return bad(`"${addr}" is neither an IPv4 nor an IPv6 address`);
  const max = v4 !== null ? 32 : 128;
  let len = max;
  if (prefix !== undefined) {
    if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max)
      return bad(`the prefix length must be a number from 0 to ${max}`);
    len = Number(prefix);
  }
  const base = v4 !== null ? MAPPED_PREFIX | v4 : v6!;
  const bits = v4 !== null ? 96 + len : len;
  const host = (1n << BigInt(128 - bits)) - 1n;
  if ((base & host) !== 0n) {
    const net = v4 !== null ? formatV4(base & ~host) : formatV6(base & ~host);
    return bad(`it has address bits set after the prefix (the network is ${net}/${len})`);
  }
  return { ok: true, network: { text, base, bits } };
}

function formatV4(v: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join('.');
}

function formatV6(v: bigint): string {
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((v >> BigInt(i * 16)) & 0xffffn).toString(16));
  return groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}

/** The networks of a rule list; throws on the first malformed entry (the config check names it first). */
export function compileNetworks(list: readonly string[]): Network[] {
  return list.map((text) => {
    const r = parseNetwork(text);
    if (!r.ok) throw new Error(r.why);
    return r.network;
  });
}

/** Whether the address is in one of the networks; an address that does not parse is in none. */
export function inNetworks(address: string, networks: readonly Network[]): boolean {
  const a = parseAddress(address);
  if (a === null) return false;
  return networks.some((n) => a >> BigInt(128 - n.bits) === n.base >> BigInt(128 - n.bits));
}

/** How an address reads in messages: IPv4-mapped IPv6 addresses as the IPv4 address they are. */
export function displayAddress(address: string): string {
  const m = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address.trim());
  return m ? m[1]! : address.trim();
}

/**
 * The client's address: the peer's, unless the peer is a trusted proxy; then X-Forwarded-For is read
 * from its right end, each hop a trusted proxy added, up to the first address that is not a trusted
 * proxy (what a client writes at the left end of the header counts only when every hop after it is
 * trusted). The same walk as fastify's `trustProxy` (proxy-addr), so the address the rules see is the
 * one the rate limits and the audit log see.
 */
export function clientAddress(
  peer: string,
  forwardedFor: string | undefined,
  trusted: (address: string) => boolean,
): string {
  const hops = (forwardedFor ?? '')
    .split(',')
    .map((h) => h.trim())
    .filter((h) => h !== '')
    .reverse();
  let current = peer;
  for (const hop of hops) {
    if (!trusted(current)) return current;
    current = hop;
  }
  return current;
}
