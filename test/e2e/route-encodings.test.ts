// A property of the gateway's routes: no spelling of a path reaches a handler without that route's
// checks. The routes are the ones the gateway registered (read from its router, so a new route is
// covered without touching this test); each is called, as nobody, as bob, and as an administrator's
// browser driven by another site (no CSRF token, foreign Origin), in its plain spelling and in random
// encodings of its path (%XX in either case, double encoding, //, /./, /../, trailing dots,
// backslashes). Every answer must be the plain spelling's or a 400 for an odd path, no write from
// another origin and no admin route for bob may succeed, and nothing may change.
import http from 'node:http';
import path from 'node:path';
import Database from 'better-sqlite3';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.ts';
import { routesFromTree } from '../../src/server/features/admin.ts';
import { type Gateway, startGateway } from '../../src/server/gateway.ts';
import { canonicalTarget } from '../../src/server/paths.ts';
import { Client } from '../helpers/client.ts';
import { createTestGateway, type TestGateway } from '../helpers/gateway.ts';

let setup: TestGateway;
let gw: Gateway;
let bob: Client;
let adm: Client;

interface Answer {
  status: number;
  cacheControl: string | undefined;
}

/** One request with the path verbatim; resolves at the response's head (event streams never end). */
function hit(method: string, p: string, headers: Record<string, string>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const r = http.request(
      {
        host: '127.0.0.1',
        port: gw.port,
        method,
        path: p,
        headers: { connection: 'close', ...headers },
        agent: false,
      },
      (res) => {
        resolve({
          status: res.statusCode ?? 0,
          cacheControl: res.headers['cache-control'] as string | undefined,
        });
        res.destroy();
      },
    );
    r.on('error', reject);
    r.end();
  });
}

/** A reproducible stream of numbers in [0, 1). */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/**
 * `p` with letters and digits percent-encoded at random (either case), and now and then something odd:
 * a double encoding, or a slash made `//`, `/./`, `/x/../`, `\`, `/%2e/`, `%2F` or a trailing dot.
 */
function spell(p: string, rnd: () => number): string {
  let out = '';
  for (const c of p) {
    const hex = c.charCodeAt(0).toString(16).padStart(2, '0');
    const r = rnd();
    if (r < 0.01) out += `%25${hex}`;
    else if (c === '/' && r < 0.07 && out !== '')
      out += ['//', '/./', '/x/../', '\\', '/%2e/', '%2F', './'][Math.floor(rnd() * 7)];
    else if (/[A-Za-z0-9]/.test(c) && r < 0.25) out += `%${hex}`;
    else if (/[A-Za-z0-9]/.test(c) && r < 0.4) out += `%${hex.toUpperCase()}`;
    else out += c;
  }
  return out;
}

/** A concrete path for a route pattern: path parameters filled in. */
function concrete(pattern: string): string {
  return pattern
    .replace(/:(name|cluster)\b/g, 'local')
    .replace(/:id\b/g, 'abcd1234')
    .replace(/:jobId\b/g, '12345')
    .replace(/:[A-Za-z]+/g, 'x');
}

function stateNow(): string {
  const d = new Database(path.join(setup.dir, 'data', 'atrium.db'), { readonly: true });
  try {
    const q = (sql: string) => d.prepare(sql).all();
    return JSON.stringify([
      q('select id, state from sessions order by id'),
      q('select id, revoked_at from api_tokens order by id'),
      q('select id from web_sessions order by id'),
      q("select key, value from settings where key like 'cluster.drained.%' or key like 'admin.stop.%'"),
      q('select id, active from announcements order by id'),
      q('select user_id, prefs from notification_prefs order by user_id'),
      q('select id, is_admin, disabled from users order by id'),
    ]);
  } finally {
    d.close();
  }
}

beforeAll(async () => {
  // The helper writes the config and adds the users; the gateway runs here, so its router can be read.
  setup = await createTestGateway({
    name: 'encodings',
    users: [{ name: 'bob' }, { name: 'adm', unixUser: 'nobody', admin: true }],
    yaml: 'auth:\n  apiRequestsPerMinute: 1000000\n  loginAttemptsPerMinute: 1000000\n',
  });
  gw = await startGateway(loadConfig(setup.configFile), {
    log: pino({ level: 'silent' }),
    print: () => undefined,
  });
  bob = new Client(gw.url);
  adm = new Client(gw.url);
  expect((await bob.login('bob', setup.passwords.bob!)).status).toBe(200);
  expect((await adm.login('adm', setup.passwords.adm!)).status).toBe(200);
}, 120_000);

afterAll(async () => {
  await gw?.close();
});

describe('every registered route, in random spellings of its path', () => {
  it('answers as its plain spelling or refuses the path (400), and changes nothing', async () => {
    const routes = routesFromTree(gw.app.printRoutes({ commonPrefix: false }));
    expect(routes.length).toBeGreaterThan(30);
    expect(routes.some((r) => r.path === '/api/admin/clusters/:name/drain')).toBe(true);
    const evil = { origin: 'http://evil.example' };
    const callers: { name: string; headers: () => Record<string, string>; admin: boolean }[] = [
      { name: 'nobody, from another site', headers: () => evil, admin: false },
      { name: 'bob, from another site', headers: () => ({ cookie: bob.cookie, ...evil }), admin: false },
      { name: 'adm, from another site', headers: () => ({ cookie: adm.cookie, ...evil }), admin: true },
      { name: "adm's browser without its CSRF token", headers: () => ({ cookie: adm.cookie }), admin: true },
    ];
    const rnd = random(13);
    const before = stateNow();
    const problems: string[] = [];
    let sent = 0;
    let refusedAsOdd = 0;
    for (const route of routes) {
      const p = concrete(route.path);
      const write = !['GET', 'HEAD'].includes(route.method);
      for (const caller of callers) {
        const plain = await hit(route.method, p, caller.headers());
        const fromElsewhere = 'origin' in caller.headers();
        const tag = `${route.method} ${route.path} as ${caller.name}`;
        if (write && fromElsewhere && plain.status < 300) problems.push(`${tag}: ${plain.status}`);
        if (route.path.startsWith('/api/admin/') && !caller.admin && plain.status < 300)
          problems.push(`${tag}: ${plain.status}`);
        for (let i = 0; i < 12; i++) {
          const spelled = spell(p, rnd);
          const a = await hit(route.method, spelled, caller.headers());
          sent++;
          const target = canonicalTarget(spelled);
          if (a.status === 400 && (!target.ok || plain.status === 400)) {
            refusedAsOdd += target.ok ? 0 : 1;
            continue;
          }
          const same = target.ok && target.url === p;
          if (!same || a.status !== plain.status || a.cacheControl !== plain.cacheControl)
            problems.push(`${tag} spelled ${spelled}: ${a.status}, plain ${plain.status}`);
        }
      }
    }
    console.log(
      `route-encodings: ${routes.length} routes, ${sent} spellings, ${refusedAsOdd} refused as odd`,
    );
    expect(problems).toEqual([]);
    // Both kinds are well represented.
    expect(refusedAsOdd).toBeGreaterThan(sent / 5);
    expect(refusedAsOdd).toBeLessThan((sent * 4) / 5);
    expect(stateNow()).toBe(before);
    expect((await bob.get('/api/me')).status).toBe(200);
    expect((await adm.get('/api/me')).status).toBe(200);
  }, 300_000);
});
