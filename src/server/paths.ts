// The one spelling of a request path that the proxy, the router and every check see. fastify decodes
// the path before it matches a route, so a check that read the raw URL could be skipped by spelling
// the same route differently (`/%61pi/logout` reached the handler of `/api/logout` without its CSRF
// check). Every request therefore goes through canonicalTarget() before anything else looks at it:
// paths of the gateway's own that decode to something odd are refused, the rest are rewritten to their
// RFC 3986 normal form (percent-encoded letters, digits, "-", "_" and "~" decoded), so `req.url` is
// what the router matches. Paths under /user/<name>/<session>/ are the apps': after the prefix they are
// passed on byte for byte (Jupyter's contents API, for one, carries encoded slashes in file names), and
// the proxy's own parser (src/proxy/routes.ts) checks the name and session segments.

export type Target = { ok: true; url: string; proxied: boolean } | { ok: false; why: string };

const HEX = /^[0-9A-Fa-f]{2}$/;
/** Characters RFC 3986 calls unreserved, minus ".": their encoded form means the same (decoded here). */
const PLAIN = /^[A-Za-z0-9_~-]$/;
/** Raw characters no client puts in a path of ours: backslash, fragment, controls, space, non-ASCII. */
function rawOdd(path: string): boolean {
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c === 0x5c || c === 0x23) return true;
  }
  return false;
}

function bad(why: string): Target {
  return { ok: false, why };
}

/**
 * What a byte percent-encoded in a path of the gateway's own may not be: a path or query delimiter
 * ("/", "?", "#"), a dot (dot segments, trailing dots), "\", "%" (double encoding) or a control byte.
 */
function oddEscape(byte: number): string | undefined {
  if (byte === 0x2f || byte === 0x5c) return 'an encoded slash or backslash';
  if (byte === 0x2e) return 'an encoded dot';
  if (byte === 0x25) return 'double encoding (%25)';
  if (byte === 0x3f || byte === 0x23) return 'an encoded "?" or "#"';
  if (byte < 0x20 || byte === 0x7f) return 'an encoded control character (NUL, CR, LF...)';
  return undefined;
}

/**
 * Checks one path of the gateway's own and returns its normal form, or why it is refused: encoded
 * slashes, dots, "%", "?", "#" or control bytes, escapes that are not two hex digits or that decode to
 * invalid or overlong UTF-8, empty segments (`//`), dot segments (`/./`, `/../`), segments ending in a
 * dot, and raw backslashes, spaces or non-ASCII bytes.
 */
export function normalisePath(path: string): { ok: true; path: string } | { ok: false; why: string } {
  if (!path.startsWith('/')) return { ok: false, why: 'the path must start with /' };
  if (rawOdd(path)) return { ok: false, why: 'a backslash, space, control or non-ASCII character' };
  const segments = path.split('/');
  const out: string[] = [];
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    const last = i === segments.length - 1;
    if (i > 0 && seg === '' && !last) return { ok: false, why: 'an empty segment (//)' };
    if (seg === '.' || seg === '..') return { ok: false, why: 'a dot segment (/./ or /../)' };
    if (seg.endsWith('.')) return { ok: false, why: 'a segment that ends with a dot' };
    let norm = '';
    for (let j = 0; j < seg.length; j++) {
      const c = seg[j]!;
      if (c !== '%') {
        norm += c;
        continue;
      }
      const hex = seg.slice(j + 1, j + 3);
      if (!HEX.test(hex)) return { ok: false, why: 'a "%" not followed by two hex digits' };
      const byte = Number.parseInt(hex, 16);
      const odd = oddEscape(byte);
      if (odd) return { ok: false, why: odd };
      const ch = String.fromCharCode(byte);
      norm += byte < 0x80 && PLAIN.test(ch) ? ch : `%${hex.toUpperCase()}`;
      j += 2;
    }
    try {
      // Throws on invalid or overlong UTF-8 (e.g. %C0%AE, an overlong ".").
      decodeURIComponent(norm);
    } catch {
      return { ok: false, why: 'an escape that is not valid UTF-8' };
    }
    out.push(norm);
  }
  return { ok: true, path: out.join('/') };
}

/** Decides where a request goes and the URL everything after this sees (see the top of this file). */
export function canonicalTarget(url: string): Target {
  // Absolute-form ("http://host/...") and "*" targets: the gateway is no forward proxy.
  if (!url.startsWith('/')) return bad('the request target must be a path');
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const query = q === -1 ? '' : url.slice(q);
  if (path.startsWith('/user/')) return { ok: true, url, proxied: true };
  // The first segment is the gateway's in every case; it alone is normalised for apps' paths.
  const slash = path.indexOf('/', 1);
  const first = normalisePath(slash === -1 ? path : path.slice(0, slash));
  if (!first.ok) return bad(first.why);
  if (first.path === '/user' && slash !== -1) {
    return { ok: true, url: `/user${path.slice(slash)}${query}`, proxied: true };
  }
  const all = normalisePath(path);
  if (!all.ok) return bad(all.why);
  return { ok: true, url: all.path + query, proxied: false };
}
