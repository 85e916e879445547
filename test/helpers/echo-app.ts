// A tiny app for sessions in tests: a Python HTTP server that answers every request with what it got
// (method, path, headers, whether the gateway's app token came along) and logs each request to
// <session dir>/echo-requests.log. It accepts WebSocket handshakes, can try to set
// the gateway's cookie and cookies for other paths (/setcookie), sets its own security headers on
// /ownheaders (and none elsewhere), and in "slow" mode never becomes ready (a session kept "starting").
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const SCRIPT = String.raw`
import base64, hashlib, json, os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

host, port, base, mode, session_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
log_path = os.path.join(session_dir, 'echo-requests.log')
token = os.environ.get('ECHO_TOKEN', '')
GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

class H(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    def reply(self, status, obj, extra=()):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self):
        n = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(n) if n else b''
        headers = [[k, v] for k, v in self.headers.items()]
        with open(log_path, 'a') as f:
            f.write(json.dumps({'method': self.command, 'path': self.path, 'headers': headers}) + '\n')
        if mode == 'slow':
            self.reply(503, {'starting': True})
            return
        if self.headers.get('Upgrade', '').lower() == 'websocket':
            key = self.headers.get('Sec-WebSocket-Key', '')
            accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
            self.send_response(101)
            self.send_header('Upgrade', 'websocket')
            self.send_header('Connection', 'Upgrade')
            self.send_header('Sec-WebSocket-Accept', accept)
            self.end_headers()
            self.wfile.flush()
            # Hold the connection open until the other side closes it.
            try:
                while self.rfile.read(1):
                    pass
            except Exception:
                pass
            self.close_connection = True
            return
        extra = []
        if self.path.split('?')[0].endswith('/setcookie'):
            extra = [('Set-Cookie', 'atrium_session=planted-by-the-app; Path=/'),
                     ('Set-Cookie', 'app_pref=1; Path=' + base),
                     ('Set-Cookie', 'root_pref=1; Path=/'),
                     ('Set-Cookie', 'no_path=1'),
                     ('Set-Cookie', 'api_pref=1; Domain=127.0.0.1; Path=/api/; HttpOnly')]
        if self.path.split('?')[0].endswith('/ownheaders'):
            extra = [('X-Frame-Options', 'DENY'), ('Referrer-Policy', 'no-referrer'),
                     ('Content-Security-Policy', "frame-ancestors 'none'")]
        self.reply(200, {
            'app': 'echo', 'base': base, 'method': self.command, 'path': self.path,
            'headers': headers, 'body': body.decode('latin1')[:2000],
            'tokenOk': token != '' and self.headers.get('X-Echo-Token') == token,
            'tokenCount': len(self.headers.get_all('X-Echo-Token') or []),
            'accessTokenFile': os.environ.get('ATRIUM_ACCESS_TOKEN_FILE'),
        }, extra)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any

ThreadingHTTPServer((host, port), H).serve_forever()
`;

/** Writes the script where every user can read it; returns the `apps:` YAML for "echo" and "echoslow". */
export function echoApps(): { dir: string; yaml: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-echo-'));
  fs.chmodSync(dir, 0o755);
  const script = path.join(dir, 'echo.py');
  fs.writeFileSync(script, SCRIPT, { mode: 0o644 });
  const app = (id: string, mode: string, timeout: number) => `  - id: ${id}
    name: Echo ${mode}
    command: [/usr/bin/python3, ${script}, '{bind_host}', '{port}', '{base_url}', ${mode}, '{session_dir}']
    env:
      ECHO_TOKEN: '{token}'
    prefix: keep
    ready:
      http: '{base_url}'
      timeoutSeconds: ${timeout}
    upstreamHeaders:
      X-Echo-Token: '{token}'
`;
  return { dir, yaml: `apps:\n${app('echo', 'echo', 30)}${app('echoslow', 'slow', 900)}` };
}

export interface EchoRequest {
  method: string;
  path: string;
  headers: [string, string][];
}

/** The requests an echo session's app has received (read as root from the owner's session dir). */
export function echoLog(unixUser: string, sessionId: string): EchoRequest[] {
  const home = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${unixUser}:`))
    ?.split(':')[5];
  const file = path.join(home ?? `/home/${unixUser}`, '.atrium', 'sessions', sessionId, 'echo-requests.log');
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as EchoRequest);
}
