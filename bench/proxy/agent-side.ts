// The agent's end of the two ways a gateway reaches apps on nodes it cannot reach sockets on, for the proxy
// benchmark, in its own process (as on a node, beside the app): the relay (src/agent/relay.ts: a TCP port
// with a handshake per connection) or the dial-out tunnel (src/agent/tunnel.ts: one WebSocket to the
// gateway carrying every connection).
//   tsx bench/proxy/agent-side.ts relay --to <app port> --secret S         prints {"relay":N}
//   tsx bench/proxy/agent-side.ts tunnel --to <app port> --secret S --hub URL --session ID --app A
//                                                                           prints {"tunnel":"up"}
import { startRelay } from '../../src/agent/relay.ts';
import { startTunnel } from '../../src/agent/tunnel.ts';

const [mode, ...rest] = process.argv.slice(2);
const opt = (k: string) => {
  const i = rest.indexOf(`--${k}`);
  if (i === -1 || rest[i + 1] === undefined) throw new Error(`missing --${k}`);
  return rest[i + 1]!;
};
const log = (m: string) => process.stderr.write(`${m}\n`);
const app = { host: '127.0.0.1', port: Number(opt('to')) };

if (mode === 'relay') {
  const r = await startRelay({ target: app, host: '127.0.0.1', secret: opt('secret'), log });
  process.stdout.write(`${JSON.stringify({ relay: r.port })}\n`);
} else if (mode === 'tunnel') {
  const t = startTunnel({
    hubUrl: opt('hub'),
    sessionId: opt('session'),
    secret: opt('secret'),
    targets: new Map([[opt('app'), app]]),
    log,
  });
  await t.up;
  process.stdout.write(`${JSON.stringify({ tunnel: 'up' })}\n`);
} else {
  throw new Error('mode: relay or tunnel');
}
process.on('SIGTERM', () => process.exit(0));
process.on('disconnect', () => process.exit(0));
