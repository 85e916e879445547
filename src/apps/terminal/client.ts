// The browser side of the web terminal: xterm.js with the fit add-on, talking to the terminal server's
// /pty WebSocket (relative to the page, so it works under any gateway prefix). Input and resizes go as
// small JSON messages; output comes back as text.
import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';

const el = document.getElementById('terminal')!;
const status = document.getElementById('status')!;
const setState = (state: string, text: string) => {
  document.body.dataset.state = state;
  status.textContent = text;
};

const term = new Terminal({
  cursorBlink: true,
  fontFamily: 'DejaVu Sans Mono, Menlo, Consolas, monospace',
  fontSize: 14,
  scrollback: 5000,
  theme: { background: '#1e1e1e' },
});
const fit = new FitAddon();
term.loadAddon(fit);
term.open(el);
fit.fit();
// For tests and assistive tools: the terminal's text, as shown.
(window as unknown as { atriumTerminalText: () => string }).atriumTerminalText = () => {
  const b = term.buffer.active;
  const lines: string[] = [];
  for (let i = 0; i < b.length; i++) lines.push(b.getLine(i)?.translateToString(true) ?? '');
  return lines.join('\n');
};

const url = new URL('pty', window.location.href);
url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
url.search = `?cols=${term.cols}&rows=${term.rows}`;
// "Open a terminal here" (the Files page) passes the folder in the page's address.
const cwd = new URLSearchParams(window.location.search).get('cwd');
if (cwd) url.searchParams.set('cwd', cwd);
const ws = new WebSocket(url);
const send = (m: unknown) => {
  if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(m));
};
ws.onopen = () => {
  setState('open', 'connected');
  term.focus();
};
ws.onmessage = (e) => term.write(typeof e.data === 'string' ? e.data : '');
ws.onclose = (e) => {
  setState('closed', `disconnected${e.reason ? `: ${e.reason}` : ''} — reload to start a new shell`);
  term.write('\r\n\x1b[2m[disconnected]\x1b[0m\r\n');
};
term.onData((d) => send({ t: 'i', d }));
term.onResize(({ cols, rows }) => send({ t: 'r', c: cols, r: rows }));
window.addEventListener('resize', () => fit.fit());
