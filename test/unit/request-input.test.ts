// The gateway's first look at a request: the one spelling of its path (src/server/paths.ts), JSON
// bodies without prototype keys and schema refusals that name their field (src/server/validation.ts),
// and what it changes in apps' answers (src/proxy/app-response.ts).
import { describe, expect, it } from 'vitest';
import { NewSessionBody } from '../../src/api/sessions.ts';
import { addResponseDefaults, scopeAppCookie } from '../../src/proxy/app-response.ts';
import { canonicalTarget, normalisePath } from '../../src/server/paths.ts';
import { forbiddenKey, parseJsonBody, validatorCompiler } from '../../src/server/validation.ts';

describe('canonicalTarget: the one spelling of a path', () => {
  it('decodes encoded letters and digits, so checks and the router see one path', () => {
    for (const [raw, url] of [
      ['/%61pi/logout', '/api/logout'],
      ['/%61%70%69/tokens?x=%2F', '/api/tokens?x=%2F'],
      ['/api/%6Cogout', '/api/logout'],
      ['/api/%6cogout', '/api/logout'],
      ['/api/sessions/%41b%7e', '/api/sessions/Ab~'],
      ['/api/x%3cy', '/api/x%3Cy'],
      ['/', '/'],
      ['/static/page.css', '/static/page.css'],
      ['/api/sessions/', '/api/sessions/'],
    ]) {
      expect(canonicalTarget(raw!), raw).toEqual({ ok: true, url, proxied: false });
    }
  });

  it('refuses every odd spelling of a path of its own', () => {
    for (const raw of [
      '/api%2Flogout',
      '/api%2flogout',
      '/api/%2e/logout',
      '/api/%2E%2E/api/logout',
      '/%2e%2e/%2e%2e/etc/shadow',
      '/api%2e/logout',
      '/%2561pi/logout',
      '/api/logout%00',
      '/api/logout%0d%0a',
      '//api/logout',
      '/api//logout',
      '/./api/logout',
      '/api/./logout',
      '/api/../api/logout',
      '/api/..',
      '/api./logout',
      '/api/logout.',
      '/api/logout..',
      '/api\\logout',
      '/api%5Clogout',
      '/api/%C0%AE%C0%AE/x',
      '/api/%C1%A1',
      '/api/%E0%80%AF',
      '/api/%FF',
      '/api/%ZZ',
      '/api/%4',
      '/api/x%3Fy',
      '/api/x%23y',
      '/api/\u00e9',
      'http://evil.example/api/logout',
      '*',
    ]) {
      const t = canonicalTarget(raw);
      expect(t.ok, raw).toBe(false);
    }
  });

  it("leaves apps' paths to the proxy byte for byte, and normalises only the gateway's prefix", () => {
    for (const raw of [
      '/user/alice/abcd1234/api/contents/a%2Fb.ipynb',
      '/user/alice/abcd1234/..%2f..%2f',
      '/user/%61lice/abcd1234/',
      '/user//alice//abcd1234/',
      '/user/alice/abcd1234/x%00',
    ]) {
      expect(canonicalTarget(raw)).toEqual({ ok: true, url: raw, proxied: true });
    }
    expect(canonicalTarget('/%75ser/alice/abcd1234/a%2Fb?q=1')).toEqual({
      ok: true,
      url: '/user/alice/abcd1234/a%2Fb?q=1',
      proxied: true,
    });
    expect(canonicalTarget('/%2e%2e/user/alice/abcd1234/').ok).toBe(false);
    expect(canonicalTarget('//user/alice/abcd1234/').ok).toBe(false);
    expect(canonicalTarget('/user./alice/abcd1234/').ok).toBe(false);
    // "/user" alone is a page of the web UI, not the proxy's.
    expect(canonicalTarget('/user')).toEqual({ ok: true, url: '/user', proxied: false });
  });

  it('random spellings of a route either mean exactly it or are refused', () => {
    const route = '/api/admin/clusters/local/drain';
    let seed = 42;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let i = 0; i < 2000; i++) {
      let spelled = '';
      for (const c of route) {
        const hex = c.charCodeAt(0).toString(16).padStart(2, '0');
        const pick = rnd(6);
        if (pick === 0) spelled += `%${hex}`;
        else if (pick === 1) spelled += `%${hex.toUpperCase()}`;
        else if (pick === 2 && c === '/') spelled += ['//', '/./', '/x/../'][rnd(3)];
        else if (pick === 3) spelled += `%25${hex}`;
        else spelled += c;
      }
      const t = canonicalTarget(spelled);
      if (t.ok) expect(t.url, spelled).toBe(route);
    }
  });

  it('normalisePath keeps other escapes, upper-cased', () => {
    expect(normalisePath('/a%2bb%c3%a9')).toEqual({ ok: true, path: '/a%2Bb%C3%A9' });
  });
});

describe('JSON bodies and schema refusals', () => {
  it('refuses prototype keys anywhere, naming where', () => {
    expect(forbiddenKey(JSON.parse('{"__proto__":{"isAdmin":true}}'))).toBe('__proto__');
    expect(forbiddenKey(JSON.parse('{"kinds":{"constructor":{"prototype":{}}}}'))).toBe('kinds.constructor');
    expect(forbiddenKey(JSON.parse('{"apps":[{"id":"a"},{"prototype":1}]}'))).toBe('apps.1.prototype');
    expect(forbiddenKey(JSON.parse('{"label":"__proto__"}'))).toBeUndefined();
    expect(() => parseJsonBody('{"a":1,"__proto__":{"x":1}}')).toThrow(/__proto__/);
    expect(() => parseJsonBody('{"a":')).toThrow(/not valid JSON/);
    expect(() => parseJsonBody('')).toThrow(/empty/);
    // Deep nesting costs no stack.
    expect(forbiddenKey(JSON.parse(`${'['.repeat(50_000)}${']'.repeat(50_000)}`))).toBeUndefined();
  });

  const check = validatorCompiler({ schema: NewSessionBody, httpPart: 'body', method: 'POST', url: '/' });
  const refusal = (body: unknown) => {
    const r = check(body) as { error?: { status: number; field: string; message: string } };
    return r.error ? { status: r.error.status, field: r.error.field, message: r.error.message } : null;
  };

  it('names the field of a type confusion, with what it must be', () => {
    expect(refusal({ cluster: { toString: 1 } })).toEqual({
      status: 400,
      field: 'cluster',
      message: 'cluster: must be text',
    });
    expect(refusal({ cores: [] })).toEqual({
      status: 400,
      field: 'cores',
      message: 'cores: must be a number or text',
    });
    expect(refusal({ extraApps: [1] })?.message).toBe('extraApps.0: must be text');
    expect(refusal({ extraApps: { a: 1 } })?.message).toBe('extraApps: must be a list of texts or text');
    expect(refusal({ label: 'x'.repeat(201) })?.message).toBe('label: at most 200 characters');
    expect(refusal('cluster=local')?.field).toBe('body');
    expect(refusal({ cluster: 'local', cores: '2', hours: null })).toBeNull();
  });
});

describe("apps' answers", () => {
  it('keep cookies at the app address', () => {
    const p = '/user/alice/abcd1234/';
    expect(scopeAppCookie('_xsrf=2|abc; Path=/; expires=Wed, 01 Jan 2031 00:00:00 GMT', p)).toBe(
      `_xsrf=2|abc; Path=${p}; expires=Wed, 01 Jan 2031 00:00:00 GMT`,
    );
    expect(scopeAppCookie('a=1', p)).toBe(`a=1; Path=${p}`);
    expect(scopeAppCookie('a=1; Path=/api/; Domain=.example.org; HttpOnly', p)).toBe(
      `a=1; Path=${p}; HttpOnly`,
    );
    expect(scopeAppCookie(`a=1; path=${p}lab/`, p)).toBe(`a=1; Path=${p}lab/`);
    expect(scopeAppCookie('a=1; Path=/user/alice/abcd12345/', p)).toBe(`a=1; Path=${p}`);
  });

  it("get the gateway's protections they lack, and keep their own", () => {
    const bare: Record<string, string | string[] | undefined> = { 'content-type': 'text/html' };
    addResponseDefaults(bare);
    expect(bare).toMatchObject({
      'x-frame-options': 'SAMEORIGIN',
      'referrer-policy': 'same-origin',
      'x-content-type-options': 'nosniff',
    });
    const own: Record<string, string | string[] | undefined> = {
      'content-security-policy': "frame-ancestors 'self'; report-uri /x",
      'referrer-policy': 'no-referrer',
    };
    addResponseDefaults(own);
    expect(own['x-frame-options']).toBeUndefined();
    expect(own['referrer-policy']).toBe('no-referrer');
    expect(own['x-content-type-options']).toBe('nosniff');
  });
});
