// Pure sign-in and token logic: LDAP escaping, access decisions, token scopes and requests, OIDC claim
// mapping, safe post-sign-in redirects, refresh timing, audit query parsing.
import { describe, expect, it } from 'vitest';
import { decideAccess } from '../../src/auth/access.ts';
import { escapeDnValue, escapeFilterValue, fillTemplate, plausibleUsername } from '../../src/auth/ldap.ts';
import {
  claimValue,
  groupsFrom,
  identityFrom,
  refreshDueAt,
  safeNext,
  usernameFrom,
} from '../../src/auth/oidc.ts';
import { newApiToken, parseTokenRequest, scopeAllows } from '../../src/auth/tokens.ts';
import { type ConfigError, parseConfig } from '../../src/config/load.ts';
import { parseAuditQuery } from '../../src/server/routes/audit.ts';

describe('LDAP escaping (RFC 4515 filters, RFC 4514 DNs)', () => {
  it('escapes filter metacharacters so a name cannot widen or rewrite the filter', () => {
    expect(escapeFilterValue('alice')).toBe('alice');
    expect(escapeFilterValue('*')).toBe('\\2a');
    expect(escapeFilterValue('a(b)c')).toBe('a\\28b\\29c');
    expect(escapeFilterValue('a\\b')).toBe('a\\5cb');
    expect(escapeFilterValue('a\u0000b')).toBe('a\\00b');
    expect(escapeFilterValue('x\r\n')).toBe('x\\0d\\0a');
    expect(escapeFilterValue('*)(uid=*))(|(uid=*')).toBe('\\2a\\29\\28uid=\\2a\\29\\29\\28|\\28uid=\\2a');
    expect(escapeFilterValue('émile')).toBe('émile');
    const filter = fillTemplate('(&(objectClass=posixAccount)(uid={username}))', {
      username: escapeFilterValue('alice)(uid=*'),
    });
    expect(filter).toBe('(&(objectClass=posixAccount)(uid=alice\\29\\28uid=\\2a))');
  });

  it('escapes DN specials, leading # or space, trailing space and NUL', () => {
    expect(escapeDnValue('alice')).toBe('alice');
    expect(escapeDnValue('a,ou=admins')).toBe('a\\,ou\\=admins');
    expect(escapeDnValue('a+b;c<d>e"f\\g')).toBe('a\\+b\\;c\\<d\\>e\\"f\\\\g');
    expect(escapeDnValue('#x')).toBe('\\#x');
    expect(escapeDnValue(' x ')).toBe('\\ x\\ ');
    expect(escapeDnValue('a#b c')).toBe('a#b c');
    expect(escapeDnValue('a\u0000')).toBe('a\\00');
    expect(fillTemplate('uid={username},ou=people,dc=x', { username: escapeDnValue('bob,ou=x') })).toBe(
      'uid=bob\\,ou\\=x,ou=people,dc=x',
    );
  });

  it('fills only known placeholders, once (no re-expansion of values)', () => {
    expect(
      fillTemplate('(|(memberUid={username})(member={dn})(x={other}))', { username: '{dn}', dn: 'D' }),
    ).toBe('(|(memberUid={dn})(member=D)(x={other}))');
  });

  it('refuses empty, long or control-character user names before the directory sees them', () => {
    expect(plausibleUsername('alice')).toBe(true);
    expect(plausibleUsername('')).toBe(false);
    expect(plausibleUsername('a'.repeat(101))).toBe(false);
    expect(plausibleUsername('a\u0000')).toBe(false);
    expect(plausibleUsername('a\nb')).toBe(false);
  });
});

describe('access decisions', () => {
  const rules = { allowGroups: ['hpcusers'], adminGroups: ['hpcadmins'], adminUsers: ['root-like'] };

  it('lets in listed groups only, and makes admins from the admin group or list', () => {
    expect(decideAccess('alice', ['hpcusers'], rules)).toEqual({ allowed: true, isAdmin: false });
    expect(decideAccess('bob', ['hpcusers', 'hpcadmins'], rules)).toEqual({ allowed: true, isAdmin: true });
    expect(decideAccess('carol', ['physics'], rules)).toMatchObject({ allowed: false, isAdmin: false });
    expect(decideAccess('carol', [], rules).reason).toMatch(/not in a group/);
    expect(decideAccess('root-like', [], rules)).toEqual({ allowed: true, isAdmin: true });
  });

  it('lets everyone in when no groups are listed; group names match exactly', () => {
    const open = { allowGroups: [], adminGroups: ['admins'], adminUsers: [] };
    expect(decideAccess('x', [], open)).toEqual({ allowed: true, isAdmin: false });
    expect(decideAccess('x', ['Admins', 'admins2', 'admin'], open).isAdmin).toBe(false);
    expect(decideAccess('x', ['HPCUSERS'], rules).allowed).toBe(false);
  });
});

describe('API token scopes', () => {
  it('browser sessions may do everything their user may', () => {
    expect(scopeAllows(null, 'sessions', 'POST')).toBe(true);
  });

  it('a token needs the scope; "read" stands in for GET and HEAD only', () => {
    expect(scopeAllows(['sessions'], 'sessions', 'POST')).toBe(true);
    expect(scopeAllows(['jobs'], 'sessions', 'GET')).toBe(false);
    expect(scopeAllows(['read'], 'sessions', 'GET')).toBe(true);
    expect(scopeAllows(['read'], 'sessions', 'head')).toBe(true);
    expect(scopeAllows(['read'], 'sessions', 'POST')).toBe(false);
    expect(scopeAllows(['read'], 'jobs', 'DELETE')).toBe(false);
    expect(scopeAllows(['read'], undefined, 'POST')).toBe(true);
    expect(scopeAllows([], 'read', 'GET')).toBe(false);
  });

  it('checks token requests: name, known scopes, bounded expiry', () => {
    const now = 1_000_000;
    expect(parseTokenRequest({ name: 'ci', scopes: ['read', 'read'] }, 365, now)).toEqual({
      ok: true,
      value: { name: 'ci', scopes: ['read'], expiresAt: now + 90 * 86_400_000 },
    });
    expect(parseTokenRequest({ name: 'ci', scopes: ['jobs'], expiresInDays: 7 }, 365, now)).toMatchObject({
      ok: true,
      value: { expiresAt: now + 7 * 86_400_000 },
    });
    expect(parseTokenRequest({ name: 'x', scopes: ['read'] }, 30, now)).toMatchObject({
      value: { expiresAt: now + 30 * 86_400_000 },
    });
    for (const [body, field] of [
      [{ name: '<script>alert(1)</script>', scopes: ['read'] }, 'name'],
      [{ name: '', scopes: ['read'] }, 'name'],
      [{ name: 'a'.repeat(65), scopes: ['read'] }, 'name'],
      [{ name: 'x\r\nSet-Cookie: a=b', scopes: ['read'] }, 'name'],
      [{ name: 'x', scopes: [] }, 'scopes'],
      [{ name: 'x', scopes: ['admin'] }, 'scopes'],
      [{ name: 'x', scopes: 'read' }, 'scopes'],
      [{ name: 'x', scopes: ['read'], expiresInDays: 0 }, 'expiresInDays'],
      [{ name: 'x', scopes: ['read'], expiresInDays: 1.5 }, 'expiresInDays'],
      [{ name: 'x', scopes: ['read'], expiresInDays: 366 }, 'expiresInDays'],
      [{ name: 'x', scopes: ['read'], expiresInDays: '7' }, 'expiresInDays'],
    ] as const) {
      expect(parseTokenRequest(body, 365, now), JSON.stringify(body)).toMatchObject({ ok: false, field });
    }
  });

  it('makes recognisable, long random tokens', () => {
    const a = newApiToken();
    expect(a).toMatch(/^atr_[A-Za-z0-9_-]{43}$/);
    expect(newApiToken()).not.toBe(a);
  });
});

describe('OIDC claims and redirects', () => {
  it('reads claims by name or dotted path', () => {
    const c = {
      preferred_username: 'alice',
      realm_access: { roles: ['hpc'] },
      'https://x.org/groups': ['g'],
    };
    expect(claimValue(c, 'preferred_username')).toBe('alice');
    expect(claimValue(c, 'realm_access.roles')).toEqual(['hpc']);
    expect(claimValue(c, 'https://x.org/groups')).toEqual(['g']);
    expect(claimValue(c, 'realm_access.nope')).toBeUndefined();
    expect(claimValue(c, 'preferred_username.length')).toBeUndefined();
  });

  it('takes group names from lists or strings, dropping the leading slash of Keycloak paths', () => {
    expect(groupsFrom(['/hpcusers', 'physics', '/a/b', 42, '', '/hpcusers'])).toEqual([
      'hpcusers',
      'physics',
      'a/b',
    ]);
    expect(groupsFrom('solo')).toEqual(['solo']);
    expect(groupsFrom(undefined)).toEqual([]);
    expect(groupsFrom({ a: 1 })).toEqual([]);
  });

  it('takes only a Unix user name as the cluster user name', () => {
    expect(usernameFrom('alice')).toBe('alice');
    for (const bad of ['../root', 'a b', '', 'x'.repeat(40), 'alice\n', 7, null, '-rf'])
      expect(usernameFrom(bad)).toBeNull();
    expect(
      identityFrom(
        { sub: 's', preferred_username: 'bob', groups: ['/g'], name: 'B', email: 'b@x' },
        {
          usernameClaim: 'preferred_username',
          groupsClaim: 'groups',
        },
      ),
    ).toEqual({ sub: 's', username: 'bob', groups: ['g'], displayName: 'B', email: 'b@x' });
  });

  it('returns only to local paths after sign-in', () => {
    expect(safeNext('/sessions?x=1#y')).toBe('/sessions?x=1#y');
    expect(safeNext('/user/alice/abc/tree')).toBe('/user/alice/abc/tree');
    for (const bad of [
      '//evil.example',
      '/\\evil.example',
      'https://evil.example',
      'javascript:alert(1)',
      'evil',
      '/\t/evil.example',
      '/x\r\nSet-Cookie: a=b',
      undefined,
      42,
      '',
      `/${'a'.repeat(3000)}`,
    ]) {
      expect(safeNext(bad), String(bad)).toBe('/');
    }
  });

  it('plans refreshes a quarter of the lifetime early, between 5 and 60 seconds', () => {
    expect(refreshDueAt(undefined, undefined)).toBeNull();
    expect(refreshDueAt(100_000, 20_000)).toBe(95_000);
    expect(refreshDueAt(1_000_000, 120_000)).toBe(970_000);
    expect(refreshDueAt(10_000_000, 3_600_000)).toBe(9_940_000);
  });
});

describe('audit query parameters', () => {
  it('parses filters and refuses malformed ones', () => {
    expect(parseAuditQuery({ action: 'session.*', ok: 'false', since: '5', limit: '10' })).toEqual({
      action: 'session.*',
      actor: undefined,
      target: undefined,
      ok: false,
      since: 5,
      until: undefined,
      before: undefined,
      limit: 10,
    });
    expect(() => parseAuditQuery({ since: '-1' })).toThrow(/since/);
    expect(() => parseAuditQuery({ ok: 'maybe' })).toThrow(/ok/);
    expect(() => parseAuditQuery({ actor: 'x'.repeat(201) })).toThrow(/actor/);
  });
});

describe('auth configuration checks', () => {
  const problems = (yaml: string) => {
    try {
      parseConfig(yaml);
      return [];
    } catch (e) {
      return (e as ConfigError).problems.map((p) => `${p.key}: ${p.message}`);
    }
  };

  it('refuses an http:// issuer unless allowInsecure, and LDAP without a way to find users', () => {
    expect(problems('auth:\n  oidc:\n    issuer: http://idp\n    clientId: x\n')).toEqual([
      'auth.oidc.issuer: must be an https:// URL (allowInsecure: true is for test providers only)',
    ]);
    expect(
      problems('auth:\n  oidc:\n    issuer: http://127.0.0.1:1\n    clientId: x\n    allowInsecure: true\n'),
    ).toEqual([]);
    expect(problems('auth:\n  ldap:\n    url: ldap://x\n')[0]).toMatch(/^auth.ldap: set userDnTemplate/);
    expect(problems('auth:\n  ldap:\n    url: ldap://x\n    userDnTemplate: uid=x\n')[0]).toMatch(
      /{username}/,
    );
  });

  it('defaults the new limits', () => {
    const cfg = parseConfig('{}');
    expect(cfg.auth.apiRequestsPerMinute).toBe(1200);
    expect(cfg.auth.apiTokenMaxDays).toBe(365);
  });
});
