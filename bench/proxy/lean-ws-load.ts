// A lean WebSocket echo load generator for ws-ceiling.ts: raw sockets, one precomputed masked 64-byte
// frame, replies counted by size (the app answers each with a 66-byte frame). Same ping-pong as
// `ws-load.ts echo`, with less CPU per message (direct: ~96k instead of ~82k round trips/s on one core).
//   tsx bench/proxy/lean-ws-load.ts --url ws://... --connections 50 --seconds 8 --warmup 2 [--header 'K: v']
// The last stdout line is {"result":{...}} as in ws-load.ts.
import crypto from 'node:crypto';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { echoResult, headerArgs, LatencyLog, optionReader } from './load-stats.ts';

const argv = process.argv.slice(2);
const opt = optionReader(argv);
const headers = headerArgs(argv);

const url = new URL(opt('url'));
const n = Number(opt('connections', '50'));
const seconds = Number(opt('seconds', '8'));
const warmup = Number(opt('warmup', '2'));
const mask = crypto.randomBytes(4);
const payload = Buffer.alloc(64, 0x61);
for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i & 3]!;
const frame = Buffer.concat([Buffer.from([0x82, 0x80 | 64]), mask, payload]);
const REPLY = 66;

let measuring = false;
let stopped = false;
let messages = 0;
let errors = 0;
const lat = new LatencyLog();

function open(): Promise<(() => void) | null> {
  return new Promise((resolve) => {
    const s = net.connect(Number(url.port), url.hostname);
    s.setNoDelay(true);
    let handshake = true;
    let acc = Buffer.alloc(0);
    let pending = 0;
    let sentAt = 0;
    const send = () => {
      sentAt = performance.now();
      s.write(frame);
    };
    s.on('connect', () =>
      s.write(
        `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\n` +
          headers.map((h) => `${h}\r\n`).join('') +
          '\r\n',
      ),
    );
    s.on('data', (d: Buffer) => {
      if (handshake) {
        acc = Buffer.concat([acc, d]);
        const end = acc.indexOf('\r\n\r\n');
        if (end === -1) return;
        if (!/^HTTP\/1\.1 101 /.test(acc.toString('latin1', 0, 13))) {
          errors++;
          s.destroy();
          return resolve(null);
        }
        handshake = false;
        resolve(send);
        d = acc.subarray(end + 4);
      }
      pending += d.length;
      while (pending >= REPLY) {
        pending -= REPLY;
        if (measuring) {
          messages++;
          lat.add(performance.now() - sentAt);
        }
        if (!stopped) send();
      }
    });
    s.on('error', () => {
      errors++;
      resolve(null);
    });
  });
}

const starts = await Promise.all(Array.from({ length: n }, open));
const opened = starts.filter((f): f is () => void => f !== null);
for (const go of opened) go();
await new Promise((r) => setTimeout(r, warmup * 1000));
measuring = true;
const t0 = performance.now();
await new Promise((r) => setTimeout(r, seconds * 1000));
measuring = false;
const elapsed = (performance.now() - t0) / 1000;
stopped = true;
const result = echoResult({ connections: n, opened: opened.length, errors, seconds: elapsed, messages }, lat);
process.stdout.write(`${JSON.stringify({ result })}\n`);
process.exit(0);
