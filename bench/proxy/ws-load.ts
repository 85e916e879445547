// WebSocket load generator (its own process, pinned by the driver).
//
// echo:  N connections; each sends a 64-byte message, waits for the echo, sends again, for warm-up + T
//        seconds. Reports round trips per second and latency percentiles over the measured part.
//   tsx bench/proxy/ws-load.ts echo --url ws://... --connections 50 --seconds 8 --warmup 2 [--header 'Cookie: x=y']
//
// churn: open/close cycles with a given concurrency. A cycle opens a WebSocket, sends 64 bytes, waits for
//        the echo and closes normally. A share of the cycles goes to --flaky-url, whose app drops the
//        connection after its first echo or is killed outright, so those end with 1006 or a refused upgrade.
//   tsx bench/proxy/ws-load.ts churn --url ws://... --flaky-url ws://... --cycles 50000 --concurrency 50 --flaky-share 0.1
//
// The last stdout line is a JSON object with the results.
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { echoResult, headerArgs, LatencyLog, optionReader } from './load-stats.ts';

const argv = process.argv.slice(2);
const mode = argv[0];
const opt = optionReader(argv);
const headers: Record<string, string> = {};
for (const h of headerArgs(argv)) {
  const c = h.indexOf(':');
  headers[h.slice(0, c).trim()] = h.slice(c + 1).trim();
}
const payload = Buffer.alloc(Number(opt('size', '64')), 0x61);

async function echo(): Promise<void> {
  const url = opt('url');
  const n = Number(opt('connections', '50'));
  const seconds = Number(opt('seconds', '8'));
  const warmup = Number(opt('warmup', '2'));
  const lat = new LatencyLog();
  let measuring = false;
  let stopped = false;
  let messages = 0;
  let errors = 0;
  const sockets: WebSocket[] = [];

  await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<void>((resolve) => {
          const ws = new WebSocket(url, { headers, perMessageDeflate: false });
          sockets.push(ws);
          let sentAt = 0;
          const send = () => {
            sentAt = performance.now();
            ws.send(payload);
          };
          ws.on('open', () => resolve());
          ws.on('error', () => {
            errors++;
            resolve();
          });
          ws.on('message', () => {
            if (measuring) {
              messages++;
              lat.add(performance.now() - sentAt);
            }
            if (!stopped) send();
          });
          (ws as WebSocket & { start?: () => void }).start = send;
        }),
    ),
  );
  const open = sockets.filter((s) => s.readyState === WebSocket.OPEN);
  for (const s of open) (s as WebSocket & { start: () => void }).start();
  await new Promise((r) => setTimeout(r, warmup * 1000));
  measuring = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  measuring = false;
  const elapsed = (performance.now() - t0) / 1000;
  stopped = true;
  for (const s of sockets) s.terminate();
  const result = echoResult({ connections: n, opened: open.length, errors, seconds: elapsed, messages }, lat);
  process.stdout.write(`${JSON.stringify({ result })}\n`);
}

async function churn(): Promise<void> {
  const url = opt('url');
  const flakyUrl = opt('flaky-url', url);
  const cycles = Number(opt('cycles', '50000'));
  const concurrency = Number(opt('concurrency', '50'));
  const flakyShare = Number(opt('flaky-share', '0.1'));
  const timeoutMs = Number(opt('timeout-ms', '10000'));
  const counts = { ok: 0, flakyDropped: 0, refused: 0, errors: 0, stuck: 0, flaky: 0, stable: 0 };
  let started = 0;
  const t0 = performance.now();

  const one = (flaky: boolean) =>
    new Promise<void>((resolve) => {
      const ws = new WebSocket(flaky ? flakyUrl : url, { headers, perMessageDeflate: false });
      let echoed = false;
      let refused = false;
      const timer = setTimeout(() => {
        counts.stuck++;
        ws.terminate();
      }, timeoutMs);
      ws.on('open', () => ws.send(payload));
      ws.on('message', () => {
        echoed = true;
        if (!flaky) ws.close(1000);
      });
      ws.on('unexpected-response', (_req, res) => {
        refused = true;
        res.resume();
        ws.terminate();
      });
      ws.on('error', () => undefined);
      ws.on('close', (code) => {
        clearTimeout(timer);
        if (refused) counts.refused++;
        else if (echoed && code === 1000) counts.ok++;
        else if (flaky) counts.flakyDropped++;
        else counts.errors++;
        resolve();
      });
    });

  // Every 10th cycle of each block of 100 hits the flaky app, evenly spread.
  const period = flakyShare > 0 ? Math.round(1 / flakyShare) : 0;
  const worker = async () => {
    while (started < cycles) {
      const i = started++;
      const flaky = period > 0 && i % period === period - 1;
      if (flaky) counts.flaky++;
      else counts.stable++;
      await one(flaky);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  const result = { mode: 'churn', cycles, concurrency, seconds, cyclesPerSec: cycles / seconds, ...counts };
  process.stdout.write(`${JSON.stringify({ result })}\n`);
}

if (mode === 'echo') await echo();
else if (mode === 'churn') await churn();
else {
  process.stderr.write('usage: ws-load.ts echo|churn --url ws://... [options]\n');
  process.exit(2);
}
process.exit(0);
