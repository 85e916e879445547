// Remote desktops (transport: rfb). The gateway serves the noVNC page itself, under the session's own
// address, and bridges the page's WebSocket to the desktop's RFB stream: no websockify, no VNC
// password. The proxy has already checked the sign-in, the owner and the Origin before calling here,
// or a guest's grant (a one-time desktop link): a guest's viewer goes through RfbGuestFilter (shared,
// and no input at all when view-only), and its page tells noVNC so.
import fs from 'node:fs';
import type http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { Transform } from 'node:stream';
import type { Logger } from 'pino';
import { createWebSocketStream, WebSocketServer } from 'ws';
import { APPS_DIST } from '../apps/assets.ts';
import type { ProxyGuest, ProxyHooks } from './proxy.ts';
import { RfbGuestFilter, RfbInputWatcher } from './rfb-input.ts';
import type { RouteEndpoint } from './routes.ts';
import { connectTarget } from './upstream.ts';

const page = (guest?: ProxyGuest) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Remote desktop · Atrium</title>
<link rel="stylesheet" href="desktop.css">
<script type="module" src="desktop.js"></script>
</head>
<body data-state="connecting"${guest ? ` data-guest="${guest.viewOnly ? 'view-only' : 'full'}"` : ''}>
<div id="bar"><strong>${guest ? `Shared desktop${guest.viewOnly ? ' (view only)' : ''}` : 'Remote desktop'}</strong><span id="status">connecting…</span><span class="spacer"></span><button id="reconnect" type="button" hidden>Reconnect</button></div>
<div id="screen"></div>
</body>
</html>
`;

const ASSETS: Record<string, { file: string; type: string }> = {
  '/desktop.js': { file: 'desktop.js', type: 'text/javascript; charset=utf-8' },
  '/desktop.css': { file: 'desktop.css', type: 'text/css; charset=utf-8' },
};

const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data: blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'";

export interface RfbHooksOptions {
  log: Logger;
  /** Where desktop.js and desktop.css are (dist/apps/desktop by default). */
  assetsDir?: string;
  /** A key, pointer or clipboard event from the browser reached the desktop (idle culling). */
  onInput?(route: RouteEndpoint): void;
}

/** The proxy hooks for rfb apps: `rawPage` serves the noVNC page, `bridge` carries the RFB stream. */
export function rfbHooks(opts: RfbHooksOptions): Required<Pick<ProxyHooks, 'rawPage' | 'bridge'>> {
  const dir = opts.assetsDir ?? path.join(APPS_DIST, 'desktop');
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 16 * 1024 * 1024 });
  const headers = (type: string, length: number) => ({
    'content-type': type,
    'content-length': length,
    'cache-control': 'no-store',
    'content-security-policy': CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  });

  return {
    rawPage(
      _route: RouteEndpoint,
      rest: string,
      req: http.IncomingMessage,
      res: http.ServerResponse,
      guest?: ProxyGuest,
    ) {
      const pathname = rest.split('?')[0] ?? '/';
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' });
        res.end('method not allowed\n');
        return;
      }
      let body: Buffer;
      let type: string;
      if (pathname === '/' || pathname === '/index.html') {
        body = Buffer.from(page(guest));
        type = 'text/html; charset=utf-8';
      } else if (ASSETS[pathname]) {
        try {
          body = fs.readFileSync(path.join(dir, ASSETS[pathname].file));
        } catch {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end('the desktop client is not built (npm run build)\n');
          return;
        }
        type = ASSETS[pathname].type;
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found\n');
        return;
      }
      res.writeHead(200, headers(type, body.length));
      res.end(req.method === 'HEAD' ? undefined : body);
    },

    bridge(
      route: RouteEndpoint,
      req: http.IncomingMessage,
      socket: net.Socket,
      head: Buffer,
      guest?: ProxyGuest,
    ) {
      // As for proxied WebSockets (src/proxy/proxy.ts): once the gateway's side of the browser's socket
      // is finished (our FIN sent: the close handshake is done or was refused), the browser gets 2 s to
      // close its own, not ws's 30 s during which the desktop's connection stays open too.
      socket.once('finish', () => {
        const t = setTimeout(() => socket.destroy(), 2000);
        socket.once('close', () => clearTimeout(t));
      });
      wss.handleUpgrade(req, socket, head, (ws) => {
        const stream = createWebSocketStream(ws);
        const onInput = opts.onInput;
        const watcher = onInput ? new RfbInputWatcher(() => onInput(route)) : undefined;
        if (watcher && !guest) ws.on('message', (data: Buffer) => watcher.feed(data));
        let upstream: net.Socket | undefined;
        const close = (why?: string) => {
          if (why) opts.log.debug({ prefix: route.prefix, why }, 'desktop bridge closed');
          upstream?.destroy();
          stream.destroy();
          ws.terminate();
        };
        stream.on('error', (e) => close(e.message));
        ws.on('close', () => close());
        connectTarget(route.target, (err, s) => {
          if (err || !s) {
            // e.g. the switch to the user's identity failed, or the relay did not prove itself: no
            // desktop, and no socket left open.
            opts.log.warn({ prefix: route.prefix, err: err?.message }, 'desktop bridge: cannot connect');
            close();
            return;
          }
          upstream = s;
          // The browser went away during the relay's handshake.
          if (ws.readyState !== ws.OPEN) return close();
          s.on('error', (e) => close(e.message));
          s.on('close', () => close());
          const pipe = () => {
            if (guest) {
              // Only what the filter lets through reaches the desktop (and counts as someone's input).
              const filter = new RfbGuestFilter(guest.viewOnly);
              const filtered = new Transform({
                transform(chunk: Buffer, _enc, done) {
                  const out = filter.pass(chunk);
                  if (out === null) {
                    done();
                    close("a guest's viewer sent what the gateway cannot follow");
                    return;
                  }
                  watcher?.feed(out);
                  done(null, out);
                },
              });
              stream.pipe(filtered).pipe(s);
            } else stream.pipe(s);
            s.pipe(stream);
          };
          if (s.connecting) s.once('connect', pipe);
          else pipe();
        });
      });
    },
  };
}
