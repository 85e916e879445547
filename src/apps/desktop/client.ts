// The desktop page's script: noVNC (the npm library) connected to the session's WebSocket, which the
// gateway bridges to the desktop's RFB socket. Served by the gateway with the page (src/apps/rfb.ts).
import RFB from '@novnc/novnc';

const screen = document.getElementById('screen')!;
const status = document.getElementById('status')!;
const reconnect = document.getElementById('reconnect') as HTMLButtonElement;
const setState = (state: string, text: string) => {
  document.body.dataset.state = state;
  status.textContent = text;
  reconnect.hidden = state !== 'disconnected';
};

function connect(): void {
  const url = new URL('websockify', window.location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  setState('connecting', 'connecting…');
  const rfb = new RFB(screen, url.href, { wsProtocols: ['binary'] });
  // A guest (one-time desktop link) never resizes the owner's desktop; view-only, noVNC sends no input
  // either (the gateway drops any that comes).
  const guest = document.body.dataset.guest;
  rfb.viewOnly = guest === 'view-only';
  rfb.scaleViewport = true;
  rfb.resizeSession = guest === undefined;
  rfb.background = '#20262e';
  rfb.addEventListener('connect', () => {
    setState('connected', 'connected');
    rfb.focus();
  });
  rfb.addEventListener('disconnect', (e: Event) => {
    const clean = (e as CustomEvent<{ clean: boolean }>).detail?.clean;
    setState('disconnected', clean ? 'disconnected' : 'the connection was lost');
  });
  rfb.addEventListener('desktopname', (e: Event) => {
    const name = (e as CustomEvent<{ name: string }>).detail?.name;
    if (name) document.title = `${name} · Atrium`;
  });
}

reconnect.addEventListener('click', () => {
  screen.replaceChildren();
  connect();
});
connect();
