// The web terminal app: a small server the agent starts as the user. It serves a page (xterm.js) and a
// WebSocket on which each browser tab gets its own pty running the user's login shell. It listens on a
// Unix socket of mode 600 (or on TCP for tests), and wants the session's token in X-Atrium-Token,
// which only the gateway adds: nobody else on the node gets a shell of this user's.
//   node dist/apps/terminal/server.mjs --socket=PATH | --listen=HOST:PORT
// Bundled by src/apps/assets.ts into dist/apps/terminal/server.mjs (node-pty stays external).
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pty from 'node-pty';
import { type WebSocket, WebSocketServer } from 'ws';

const here = path.dirname(fileURLToPath(import.meta.url));
const token = process.env.ATRIUM_TERMINAL_TOKEN ?? '';
delete process.env.ATRIUM_TERMINAL_TOKEN;

function arg(name: string): string | undefined {
  const p = `--${name}=`;
  return process.argv.find((a) => a.startsWith(p))?.slice(p.length);
}

function log(msg: string): void {
  process.stderr.write(`${new Date().toISOString()} atrium-terminal: ${msg}\n`);
}

function authorized(req: http.IncomingMessage): boolean {
  if (!token) return true;
  const got = Buffer.from(String(req.headers['x-atrium-token'] ?? ''));
  const want = Buffer.from(token);
  return got.length === want.length && crypto.timingSafeEqual(got, want);
}

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Terminal</title>
<link rel="stylesheet" href="xterm.css">
<link rel="stylesheet" href="terminal.css">
<script src="client.js" defer></script>
</head>
<body data-state="connecting">
<div id="bar"><span id="title">Terminal</span><span id="status">connecting…</span></div>
<div id="terminal"></div>
</body>
</html>
`;

const CSS = `html,body{margin:0;height:100%;background:#1e1e1e;color:#ddd;font:13px system-ui,sans-serif}
body{display:flex;flex-direction:column}
#bar{display:flex;justify-content:space-between;padding:4px 10px;background:#2d2d2d;border-bottom:1px solid #444}
#status{color:#9c9}
body[data-state=closed] #status{color:#e99}
#terminal{flex:1;min-height:0;padding:4px}
`;

const FILES: Record<string, { file?: string; body?: string; type: string }> = {
  '/': { body: PAGE, type: 'text/html; charset=utf-8' },
  '/client.js': { file: 'client.js', type: 'text/javascript; charset=utf-8' },
  '/xterm.css': { file: 'xterm.css', type: 'text/css; charset=utf-8' },
  '/terminal.css': { body: CSS, type: 'text/css; charset=utf-8' },
};

const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'";

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://terminal');
  if (url.pathname === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok\n');
    return;
  }
  if (!authorized(req)) {
    res.writeHead(403, { 'content-type': 'text/plain' });
    res.end('forbidden\n');
    return;
  }
  if (url.pathname === '/activity') {
    // For the gateway's idle culling: seconds since the last keystroke in any of this server's
    // terminals (relative, so the node's clock need not agree with the gateway's).
    const body = JSON.stringify({
      terminals: terminals.size,
      idleSeconds: lastInput === null ? null : (Date.now() - lastInput) / 1000,
    });
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(body);
    return;
  }
  const f = FILES[url.pathname];
  if (!f || (req.method !== 'GET' && req.method !== 'HEAD')) {
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found\n');
    return;
  }
  let body: Buffer;
  try {
    body = f.body !== undefined ? Buffer.from(f.body) : fs.readFileSync(path.join(here, f.file!));
  } catch {
    res.writeHead(500, { 'content-type': 'text/plain' });
    res.end('the terminal is not built (npm run build)\n');
    return;
  }
  res.writeHead(200, {
    'content-type': f.type,
    'content-length': body.length,
    'cache-control': url.pathname === '/' ? 'no-store' : 'max-age=300',
    'content-security-policy': CSP,
    'x-content-type-options': 'nosniff',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
});

const terminals = new Set<pty.IPty>();
/** When a person last typed into a terminal of this server (ms), null before the first key. */
let lastInput: number | null = null;
const wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024, perMessageDeflate: false });

function clamp(n: unknown, lo: number, hi: number, dflt: number): number {
  const v = Number(n);
  return Number.isInteger(v) ? Math.min(hi, Math.max(lo, v)) : dflt;
}

/** The folder a new terminal starts in: `cwd` from the page's address (the Files page's "open a
 * terminal here") when it is a folder this user can enter, else the home directory. */
function startDir(url: URL): string {
  const home = os.homedir();
  const want = url.searchParams.get('cwd');
  if (want && path.isAbsolute(want)) {
    try {
      fs.accessSync(want, fs.constants.X_OK);
      if (fs.statSync(want).isDirectory()) return want;
    } catch {
      // not a folder of ours: home
    }
  }
  return fs.existsSync(home) ? home : '/';
}

function openTerminal(ws: WebSocket, url: URL): void {
  const shell = process.env.SHELL || os.userInfo().shell || '/bin/bash';
  const term = pty.spawn(shell, ['-l'], {
    name: 'xterm-256color',
    cols: clamp(url.searchParams.get('cols'), 2, 1000, 80),
    rows: clamp(url.searchParams.get('rows'), 2, 500, 24),
    cwd: startDir(url),
    env: { ...process.env, TERM: 'xterm-256color', COLORTERM: 'truecolor' } as Record<string, string>,
  });
  terminals.add(term);
  log(`shell ${shell} started (pid ${term.pid})`);
  // Backpressure: a command that prints fast must not fill the gateway's memory.
  let pending = 0;
  let paused = false;
  term.onData((d) => {
    if (ws.readyState !== ws.OPEN) return;
    pending += d.length;
    ws.send(d, () => {
      pending -= d.length;
      if (paused && pending < 64 * 1024) {
        paused = false;
        term.resume();
      }
    });
    if (!paused && pending > 1024 * 1024) {
      paused = true;
      term.pause();
    }
  });
  term.onExit(({ exitCode }) => {
    terminals.delete(term);
    log(`shell exited (${exitCode})`);
    if (ws.readyState === ws.OPEN) ws.close(1000, 'the shell exited');
  });
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    let m: { t?: string; d?: unknown; c?: unknown; r?: unknown };
    try {
      m = JSON.parse(String(data)) as typeof m;
    } catch {
      return;
    }
    if (m.t === 'i' && typeof m.d === 'string') {
      lastInput = Date.now();
      term.write(m.d);
    } else if (m.t === 'r') term.resize(clamp(m.c, 2, 1000, 80), clamp(m.r, 2, 500, 24));
  });
  ws.on('close', () => {
    if (terminals.has(term)) {
      terminals.delete(term);
      try {
        term.kill('SIGHUP');
      } catch {
        // already gone
      }
    }
  });
  ws.on('error', () => ws.terminate());
}

server.on('upgrade', (req, socket, head) => {
  socket.on('error', () => socket.destroy());
  const url = new URL(req.url ?? '/', 'http://terminal');
  if (url.pathname !== '/pty' || !authorized(req)) {
    socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => openTerminal(ws, url));
});

function shutdown(): void {
  for (const t of terminals) {
    try {
      t.kill('SIGHUP');
    } catch {
      // gone
    }
  }
  server.close();
  setTimeout(() => process.exit(0), 300).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
process.on('SIGHUP', shutdown);

const socketPath = arg('socket');
const listen = arg('listen');
if (socketPath) {
  fs.rmSync(socketPath, { force: true });
  process.umask(0o077); // the socket is created 600: only this user (and root) can connect
  server.listen(socketPath, () => {
    fs.chmodSync(socketPath, 0o600);
    log(`listening on ${socketPath}`);
  });
} else if (listen && /^[^:]+:\d+$/.test(listen)) {
  const [host, port] = listen.split(':');
  server.listen(Number(port), host, () => log(`listening on ${listen}`));
} else {
  process.stderr.write('usage: server.mjs --socket=PATH | --listen=HOST:PORT\n');
  process.exit(2);
}
