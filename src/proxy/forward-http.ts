// Plain HTTP forwarding for the gateway's proxy: does what http-proxy-3's `web()` does with the options
// the gateway uses (a keep-alive agent, no x-forwarded headers, no timeouts, no rewrites), request for
// request and byte for byte, without its per-request machinery (option merging, URL building, debug
// logging, extra listeners), which was about a fifth of the proxy's CPU time per request
// (docs/benchmarks.md). Any other configuration goes to http-proxy-3 itself. WebSockets are untouched.
//
// Mirrors http-proxy-3 1.23 dist/lib/http-proxy/passes/web-incoming.js (deleteLength, stream) and
// web-outgoing.js (removeChunked, setConnection, writeHeaders, writeStatusCode); the listeners of the
// ProxyServer ('error', 'proxyRes', 'proxyReq', 'start', 'end', 'econnreset') are called as it calls them.
import http from 'node:http';
import type { ProxyServer } from 'http-proxy-3';

export interface ForwardOptions {
  target: { host: string; port: number; socketPath?: string };
  agent: http.Agent;
}

/** The only ProxyServer options under which forwardWeb is equivalent to ProxyServer.web. */
const SAME_AS_FAST_PATH: Record<string, (v: unknown) => boolean> = {
  agent: (v) => v instanceof http.Agent,
  ws: () => true,
  xfwd: (v) => v === false || v === undefined,
  proxyTimeout: (v) => v === 0 || v === undefined,
  timeout: (v) => v === 0 || v === undefined,
  prependPath: (v) => v !== false,
};
const checked = new WeakMap<ProxyServer, boolean>();
// http-proxy-3 switches to its fetch() path when this is set (read once: process.env is slow to read).
const FORCE_FETCH_PATH = process.env.FORCE_FETCH_PATH === 'true';

function fastPathApplies(server: ProxyServer): boolean {
  let ok = checked.get(server);
  if (ok === undefined) {
    const s = server as unknown as { options?: Record<string, unknown>; webPasses?: unknown[] };
    ok =
      !!s.options &&
      Object.entries(s.options).every(([k, v]) => SAME_AS_FAST_PATH[k]?.(v) ?? false) &&
      s.webPasses?.length === 4;
    checked.set(server, ok);
  }
  return ok && !FORCE_FETCH_PATH;
}

// A URL made only of these characters, with a non-empty query if any, no leading '//' and no dot
// segment, comes out of WHATWG parsing unchanged: no need to parse it.
const PLAIN_URL = /^\/(?!\/)[\w\-.~!$&()*+,;=:@/%]*(?:\?[\w\-.~!$&()*+,;=:@/%?]+)?$/;
const DOT_SEGMENT = /(?:^|\/)(?:\.|%2e)/i;

/** The request path as http-proxy-3 sends it: WHATWG-normalised path and query (getPath + urlJoin). */
export function upstreamPath(url: string): string {
  if (PLAIN_URL.test(url) && !DOT_SEGMENT.test(url.split('?', 1)[0]!)) return url;
  if (url === '' || url.startsWith('?')) return url.length > 1 ? `/${url}` : '/';
  const u = new URL(url.startsWith('//') ? `http://base.invalid${url}` : url, 'http://base.invalid');
  const p = u.pathname + u.search;
  return p.startsWith('/') ? p : `/${p}`;
}

/** Proxies one HTTP request; same contract as `server.web(req, res, options)`. */
export function forwardWeb(
  server: ProxyServer,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  options: ForwardOptions,
): void {
  if (!fastPathApplies(server)) {
    server.web(req, res, options);
    return;
  }
  // deleteLength
  if ((req.method === 'DELETE' || req.method === 'OPTIONS') && !req.headers['content-length']) {
    req.headers['content-length'] = '0';
    delete req.headers['transfer-encoding'];
  }
  const { target, agent } = options;
  server.emit('start', req, res, target);
  // setupOutgoing: a copy of the headers without `trailer` (http-party/node-http-proxy#1647).
  const headers = { ...req.headers };
  delete headers.trailer;
  const proxyReq = http.request({
    host: target.host,
    port: +(target.port ?? 80),
    socketPath: target.socketPath,
    method: req.method,
    path: upstreamPath(req.url ?? ''),
    headers,
    agent,
  });
  if (server.listenerCount('proxyReq') > 0) {
    proxyReq.on('socket', (socket) => {
      if (!proxyReq.getHeader('expect')) server.emit('proxyReq', proxyReq, req, res, options, socket);
    });
  }
  res.on('close', () => {
    if (!res.writableFinished) proxyReq.destroy();
  });
  const onError = (err: Error & { code?: string }) => {
    if (req.socket.destroyed && err.code === 'ECONNRESET') {
      server.emit('econnreset', err, req, res, target);
      proxyReq.destroy();
      return;
    }
    server.emit('error', err, req, res, target);
  };
  req.on('error', onError);
  proxyReq.on('error', onError);
  // A request with neither length nor chunked body has no body: end it at once rather than pipe nothing
  // (and let the request run to its end, as the pipe would).
  if (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined) {
    proxyReq.end();
    req.resume();
  } else req.pipe(proxyReq);
  proxyReq.on('response', (proxyRes) => {
    server.emit('proxyRes', proxyRes, req, res);
    if (!res.headersSent) {
      const h = proxyRes.headers;
      // removeChunked: transfer-encoding is hop-by-hop.
      delete h['transfer-encoding'];
      // setConnection
      if (req.httpVersion === '1.0') h.connection = req.headers.connection || 'close';
      else if (req.httpVersion !== '2.0' && !h.connection)
        h.connection = req.headers.connection || 'keep-alive';
      // writeHeaders
      for (const key in h) {
        const value = h[key];
        if (value === undefined || value === null) continue;
        if (req.httpVersionMajor > 1 && (key === 'connection' || key === 'keep-alive')) continue;
        res.setHeader(key.trim(), value);
      }
      // writeStatusCode
      res.statusCode = proxyRes.statusCode as number;
      if (proxyRes.statusMessage && req.httpVersionMajor === 1) res.statusMessage = proxyRes.statusMessage;
    }
    if (!res.writableEnded) {
      if (server.listenerCount('end') > 0) proxyRes.on('end', () => server.emit('end', req, res, proxyRes));
      proxyRes.pipe(res);
    } else {
      server.emit('end', req, res, proxyRes);
    }
  });
}
