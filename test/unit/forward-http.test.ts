// forwardWeb must behave exactly like http-proxy-3's web() with the gateway's options: the same bytes
// reach the app, the same bytes reach the browser, and failures end the same way. Each case sends the
// same raw request through both and compares (only the Date header is masked).
import http from 'node:http';
import { createRequire } from 'node:module';
import net from 'node:net';
import { ProxyServer } from 'http-proxy-3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forwardWeb, upstreamPath } from '../../src/proxy/forward-http.ts';

type Script = (raw: string, socket: net.Socket) => void;

let script: Script = () => undefined;
const seen: string[] = [];
let upstream: net.Server;
let upstreamPort = 0;

interface Side {
  server: http.Server;
  port: number;
  agent: http.Agent;
  proxy: ProxyServer;
  events: string[];
}
const sides: Record<'lib' | 'fast', Side> = {} as never;

function onError(events: string[]) {
  return (err: Error, _req: http.IncomingMessage, res: http.ServerResponse | net.Socket) => {
    events.push(`error:${(err as { code?: string }).code ?? err.message}`);
    if (res instanceof http.ServerResponse && !res.headersSent) {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end('bad gateway');
    } else res.destroy();
  };
}

async function makeSide(kind: 'lib' | 'fast'): Promise<Side> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 512, maxFreeSockets: 64, scheduling: 'lifo' });
  const proxy = new ProxyServer({ agent, ws: true, xfwd: false, proxyTimeout: 0 });
  const events: string[] = [];
  proxy.on('error', onError(events));
  proxy.on('proxyRes', (pr) => events.push(`proxyRes:${pr.statusCode}`));
  proxy.on('econnreset', () => events.push('econnreset'));
  const target = { host: '127.0.0.1', port: upstreamPort };
  const server = http.createServer((req, res) => {
    if (kind === 'lib') proxy.web(req, res, { target, agent });
    else forwardWeb(proxy, req, res, { target, agent });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as net.AddressInfo).port, agent, proxy, events };
}

beforeAll(async () => {
  upstream = net.createServer((socket) => {
    let buf = '';
    socket.on('data', (d) => {
      buf += d.toString('latin1');
      // One request per connection is enough here: answer once the head (and any declared body) is in.
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      const len = /\r\ncontent-length: *(\d+)/i.exec(buf.slice(0, end));
      const chunked = /\r\ntransfer-encoding: *chunked/i.test(buf.slice(0, end));
      if (len && buf.length < end + 4 + Number(len[1])) return;
      if (chunked && !buf.endsWith('0\r\n\r\n')) return;
      seen.push(buf);
      const raw = buf;
      buf = '';
      script(raw, socket);
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upstreamPort = (upstream.address() as net.AddressInfo).port;
  sides.lib = await makeSide('lib');
  sides.fast = await makeSide('fast');
});

afterAll(async () => {
  for (const s of Object.values(sides)) {
    s.server.closeAllConnections();
    s.server.close();
    s.agent.destroy();
  }
  upstream.close();
});

/** Sends raw bytes, collects everything until the connection closes or stays quiet. */
function exchange(
  port: number,
  raw: string | string[],
  opts: { quietMs?: number; abortAfterMs?: number } = {},
) {
  return new Promise<string>((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    let timer: NodeJS.Timeout | undefined;
    const done = () => {
      clearTimeout(timer);
      s.destroy();
      resolve(out);
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(done, opts.quietMs ?? 250);
    };
    s.on('connect', async () => {
      for (const part of Array.isArray(raw) ? raw : [raw]) {
        s.write(part, 'latin1');
        await new Promise((r) => setTimeout(r, 20));
      }
      if (opts.abortAfterMs !== undefined) setTimeout(done, opts.abortAfterMs);
      arm();
    });
    s.on('data', (d) => {
      out += d.toString('latin1');
      arm();
    });
    s.on('error', () => undefined);
    s.on('close', done);
  });
}

const mask = (s: string) => s.replace(/\r\ndate: [^\r]*/gi, '\r\ndate: X');

async function both(
  raw: string | string[],
  respond: Script,
  opts?: { quietMs?: number; abortAfterMs?: number },
) {
  script = respond;
  const res: Record<string, { upstream: string[]; client: string; events: string[] }> = {};
  for (const k of ['lib', 'fast'] as const) {
    seen.length = 0;
    sides[k].events.length = 0;
    sides[k].agent.destroy(); // no socket reuse between cases: each case starts alike
    const client = await exchange(sides[k].port, raw, opts);
    await new Promise((r) => setTimeout(r, 50));
    res[k] = { upstream: [...seen], client: mask(client), events: [...sides[k].events] };
  }
  expect(res.fast).toEqual(res.lib);
  return res.fast!;
}

const ok =
  (body = 'hello', extra = '') =>
  (_raw: string, s: net.Socket) =>
    s.write(
      `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n${extra}Content-Length: ${body.length}\r\n\r\n${body}`,
    );

describe('forwardWeb is http-proxy-3 web() without the overhead', () => {
  it('sends the same path as http-proxy-3 for any URL (random URLs against its own getPath and urlJoin)', () => {
    const common = createRequire(import.meta.url)('http-proxy-3/dist/lib/http-proxy/common.js') as {
      urlJoin(...a: string[]): string;
      toURL(u: string): URL;
    };
    const reference = (url: string) => {
      const p =
        url === '' || url.startsWith('?') ? url : `${common.toURL(url).pathname}${common.toURL(url).search}`;
      return common.urlJoin('/', p);
    };
    const alphabet = [...'abcXYZ019/._-~!$&()*+,;=:@%?#\'"<>{}|^`[] é', '%2e', '%2E', '..', '//', '%41'];
    let seed = 42;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const urls = [
      '/',
      '/user/a/s1/',
      '/user/a/s1/x?y=1',
      '/x?',
      '/x??',
      '//x',
      '?q',
      '',
      '/a/./b',
      '/a/%2e/b',
    ];
    for (let i = 0; i < 20_000; i++) {
      let u = rnd(4) === 0 ? '' : '/';
      for (let j = rnd(12); j > 0; j--) u += alphabet[rnd(alphabet.length)];
      urls.push(u);
    }
    for (const u of urls) {
      const p = upstreamPath(u);
      // http.request's default for an empty path is '/'.
      expect([u, p || '/']).toEqual([u, reference(u)]);
    }
  });

  it('GET with query, cookies and the session prefix', async () => {
    const r = await both(
      'GET /user/a/s1/api/x?y=1&z=%20 HTTP/1.1\r\nHost: gw\r\nCookie: a=b; c=d\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n',
      ok(),
    );
    expect(r.upstream[0]).toMatch(/^GET \/user\/a\/s1\/api\/x\?y=1&z=%20 HTTP\/1.1\r\n/);
    expect(r.client).toMatch(/^HTTP\/1.1 200 OK\r\n/);
  });

  it('normalises the path the same way (dot segments, double slashes, odd characters)', async () => {
    for (const path of [
      '/user/a/s1/./b/../c',
      '/user/a/s1/%2e%2e/x',
      '//user/a',
      "/user/a/s1/q?x='y'&a=%zz",
      '/user/a/s1/{x}|`',
      '/user/a/s1/ü',
    ]) {
      await both(`GET ${path} HTTP/1.1\r\nHost: gw\r\n\r\n`, ok());
    }
  });

  it('POST with a body, chunked upload, trailer header dropped', async () => {
    await both(
      'POST /p HTTP/1.1\r\nHost: gw\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world',
      ok(),
    );
    await both(
      [
        'POST /p HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n',
        '5\r\nhello\r\n',
        '6\r\n world\r\n0\r\n\r\n',
      ],
      ok(),
    );
  });

  it('DELETE and OPTIONS without a body get content-length 0', async () => {
    const r = await both('DELETE /d HTTP/1.1\r\nHost: gw\r\n\r\n', ok());
    expect(r.upstream[0]).toMatch(/content-length: 0/i);
    await both('OPTIONS /o HTTP/1.1\r\nHost: gw\r\n\r\n', ok());
  });

  it('HTTP/1.0 clients, Connection: close, HEAD, 204 and 304', async () => {
    await both('GET /old HTTP/1.0\r\n\r\n', ok());
    await both('GET /old HTTP/1.0\r\nHost: gw\r\nConnection: keep-alive\r\n\r\n', ok());
    await both('GET /c HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n', ok());
    await both('HEAD /h HTTP/1.1\r\nHost: gw\r\n\r\n', (_r, s) =>
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n'),
    );
    await both('GET /n HTTP/1.1\r\nHost: gw\r\n\r\n', (_r, s) => s.write('HTTP/1.1 204 No Content\r\n\r\n'));
    await both('GET /n HTTP/1.1\r\nHost: gw\r\nIf-None-Match: "x"\r\n\r\n', (_r, s) =>
      s.write('HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n'),
    );
  });

  it('response headers: duplicates, set-cookie, chunked, custom reason, keep-alive from the app', async () => {
    await both('GET /h HTTP/1.1\r\nHost: gw\r\n\r\n', (_r, s) =>
      s.write(
        'HTTP/1.1 201 Made It\r\nSet-Cookie: a=1; Path=/\r\nSet-Cookie: b=2\r\nX-Dup: 1\r\nX-Dup: 2\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
      ),
    );
  });

  it('a response ended by closing the connection, and a body streamed in pieces', async () => {
    await both('GET /eof HTTP/1.1\r\nHost: gw\r\n\r\n', (_r, s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npart one ');
      setTimeout(() => s.end('part two'), 30);
    });
    await both('GET /sse HTTP/1.1\r\nHost: gw\r\nAccept: text/event-stream\r\n\r\n', (_r, s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n');
      setTimeout(() => s.write('6\r\ndata:1\r\n'), 20);
      setTimeout(() => s.write('6\r\ndata:2\r\n0\r\n\r\n'), 60);
    });
  });

  it('failures: app refuses, app resets before and during the response, client goes away', async () => {
    // Refused: point both sides at a closed port for one request.
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const deadPort = (closed.address() as net.AddressInfo).port;
    closed.close();
    const saved = upstreamPort;
    upstreamPort = deadPort;
    const refused: Record<string, string> = {};
    for (const k of ['lib', 'fast'] as const) {
      const s = sides[k];
      s.server.removeAllListeners('request');
      s.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
        const target = { host: '127.0.0.1', port: upstreamPort };
        if (k === 'lib') s.proxy.web(req, res, { target, agent: s.agent });
        else forwardWeb(s.proxy, req, res, { target, agent: s.agent });
      });
      s.events.length = 0;
      refused[k] =
        `${mask(await exchange(s.port, 'GET /x HTTP/1.1\r\nHost: gw\r\n\r\n'))}|${s.events.join(',')}`;
    }
    upstreamPort = saved;
    expect(refused.fast).toEqual(refused.lib);
    expect(refused.fast).toMatch(/^HTTP\/1.1 502 .*error:ECONNREFUSED$/s);

    await both('GET /rst HTTP/1.1\r\nHost: gw\r\n\r\n', (_r, s) => s.resetAndDestroy());
    await both('GET /mid HTTP/1.1\r\nHost: gw\r\n\r\n', (_r, s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part');
      setTimeout(() => s.resetAndDestroy(), 30);
    });
    await both(
      'GET /slow HTTP/1.1\r\nHost: gw\r\n\r\n',
      (_r, s) => {
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst');
        setTimeout(() => s.destroy(), 300);
      },
      { abortAfterMs: 60 },
    );
  });
});
