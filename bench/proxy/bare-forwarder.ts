// The floor under every proxy, for ws-ceiling.ts: a TCP forwarder with no HTTP at all (each accepted
// connection is piped both ways to the app). Whatever a WebSocket proxy does, it cannot move bytes
// for less than this.
//   tsx bench/proxy/bare-forwarder.ts --to <port>      Prints {"port":N} once listening.
import net from 'node:net';

const args = process.argv.slice(2);
const to = Number(args[args.indexOf('--to') + 1]);
if (!to) throw new Error('--to <port> is required');

const server = net.createServer({ noDelay: true }, (client) => {
  const app = net.connect({ port: to, host: '127.0.0.1', noDelay: true });
  client.pipe(app).pipe(client);
  client.on('error', () => app.destroy());
  app.on('error', () => client.destroy());
  client.on('close', () => app.destroy());
  app.on('close', () => client.destroy());
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as net.AddressInfo).port })}\n`);
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
