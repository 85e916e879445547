// Talks to a Jupyter server through a proxy only (the gateway's, or JupyterHub's in the spawn benchmark):
// create a kernel over REST, run code over the kernel WebSocket, return what it printed.
import crypto from 'node:crypto';
import WebSocket from 'ws';

/** A session cookie (`name=value`), or the headers to send (e.g. JupyterHub's `authorization`). */
export type JupyterAuth = string | Record<string, string>;

const headersOf = (auth: JupyterAuth): Record<string, string> =>
  typeof auth === 'string' ? { cookie: auth } : auth;

export async function createKernel(sessionUrl: string, auth: JupyterAuth): Promise<string> {
  const r = await fetch(`${sessionUrl}api/kernels`, {
    method: 'POST',
    headers: { ...headersOf(auth), 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'python3' }),
  });
  if (r.status !== 201) throw new Error(`kernel create: HTTP ${r.status} ${await r.text()}`);
  return ((await r.json()) as { id: string }).id;
}

/** Runs `code` in the kernel and resolves with its stdout. `tls`: e.g. the `ca` a wss:// URL needs. */
export function runInKernel(
  sessionUrl: string,
  auth: JupyterAuth,
  kernelId: string,
  code: string,
  timeoutMs = 60_000,
  tls: { ca?: string | Buffer } = {},
): Promise<string> {
  const wsUrl = `${sessionUrl.replace(/^http/, 'ws')}api/kernels/${kernelId}/channels?session_id=${crypto.randomUUID()}`;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl, { headers: headersOf(auth), ...tls });
    const msgId = crypto.randomUUID();
    let out = '';
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`kernel did not answer in ${timeoutMs} ms (stdout so far: ${JSON.stringify(out)})`));
    }, timeoutMs);
    ws.on('unexpected-response', (req, res) => {
      clearTimeout(timer);
      req.destroy();
      reject(new Error(`websocket refused: HTTP ${res.statusCode}`));
    });
    ws.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    ws.on('open', () => {
      ws.send(
        JSON.stringify({
          header: {
            msg_id: msgId,
            username: 'test',
            session: crypto.randomUUID(),
            msg_type: 'execute_request',
            version: '5.3',
            date: new Date().toISOString(),
          },
          parent_header: {},
          metadata: {},
          content: {
            code,
            silent: false,
            store_history: false,
            user_expressions: {},
            allow_stdin: false,
            stop_on_error: true,
          },
          channel: 'shell',
          buffers: [],
        }),
      );
    });
    ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as {
        msg_type: string;
        parent_header: { msg_id?: string };
        content: Record<string, unknown>;
        channel: string;
      };
      if (m.parent_header?.msg_id !== msgId) return;
      if (m.msg_type === 'stream') out += String(m.content.text ?? '');
      if (m.msg_type === 'error') out += `ERROR ${String(m.content.ename)}: ${String(m.content.evalue)}`;
      if (m.msg_type === 'status' && m.content.execution_state === 'idle') {
        clearTimeout(timer);
        ws.close();
        resolve(out);
      }
    });
  });
}

export async function kernelRoundTrip(
  sessionUrl: string,
  auth: JupyterAuth,
  code = 'print(6*7)',
  tls: { ca?: string | Buffer } = {},
): Promise<{ kernelId: string; stdout: string }> {
  const kernelId = await createKernel(sessionUrl, auth);
  const stdout = await runInKernel(sessionUrl, auth, kernelId, code, 60_000, tls);
  return { kernelId, stdout };
}

/** Opens a WebSocket and reports the HTTP status if it is refused (or 101 if it opens). */
export function wsStatus(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers });
    ws.on('unexpected-response', (req, res) => {
      req.destroy();
      resolve(res.statusCode ?? 0);
    });
    ws.on('open', () => {
      ws.close();
      resolve(101);
    });
    ws.on('error', () => resolve(0));
  });
}
