// What the gateway changes in an app's answers before the browser sees them. Apps are served from the
// gateway's own origin, so an app's cookie or a missing header is the gateway's concern:
// - a cookie an app sets applies to that app's address only (`/user/<name>/<session>/`): Jupyter sets
//   its `_xsrf` cookie with Path=/, which would otherwise reach every page and API of the gateway and
//   every other session, and a Domain attribute would hand it to sibling hosts;
// - where the app sets none, the gateway's own protections: framing by the same origin only (the
//   gateway's pages and VS Code's webviews frame the apps' pages, other sites may not: clickjacking),
//   no full addresses in Referer to other sites (session URLs), and no MIME sniffing. An app that sets
//   its own keeps it.
import type http from 'node:http';

/** Headers added to an app's answer when it sets none of its own (the name is lower-case). */
export const APP_RESPONSE_DEFAULTS: Readonly<Record<string, string>> = {
  'x-frame-options': 'SAMEORIGIN',
  'referrer-policy': 'same-origin',
  'x-content-type-options': 'nosniff',
};

/** Sets the defaults the app left out. A CSP with frame-ancestors already decides framing. */
export function addResponseDefaults(headers: http.IncomingHttpHeaders): void {
  const csp = ([] as string[]).concat(headers['content-security-policy'] ?? []).join(';');
  for (const [name, value] of Object.entries(APP_RESPONSE_DEFAULTS)) {
    if (headers[name] !== undefined) continue;
    if (name === 'x-frame-options' && /(?:^|;)\s*frame-ancestors\b/i.test(csp)) continue;
    headers[name] = value;
  }
}

/**
 * One Set-Cookie of an app, kept to the app's address: a Path outside `prefix` (or none) becomes
 * `prefix`, and a Domain attribute goes (the cookie stays with this host). Other attributes are kept.
 */
export function scopeAppCookie(setCookie: string, prefix: string): string {
  const [pair, ...attrs] = setCookie.split(';');
  const kept: string[] = [];
  let path: string | undefined;
  for (const a of attrs) {
    const name = a.split('=', 1)[0]!.trim().toLowerCase();
    if (name === 'path') path = a.slice(a.indexOf('=') + 1).trim();
    else if (name !== 'domain' && a.trim() !== '') kept.push(a.trim());
  }
  const inside = path !== undefined && (path === prefix || path.startsWith(prefix));
  return [pair!.trim(), `Path=${inside ? path : prefix}`, ...kept].join('; ');
}
