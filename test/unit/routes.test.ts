import { describe, expect, it } from 'vitest';
import { decideAccess } from '../../src/auth/access.ts';
import { RateLimiter } from '../../src/auth/rate-limit.ts';
import { parseUserPath } from '../../src/proxy/routes.ts';

describe('proxy paths', () => {
  it('parses /user/<name>/<session>/<rest>', () => {
    expect(parseUserPath('/user/alice/abc123/api/kernels?x=1')).toEqual({
      username: 'alice',
      sessionId: 'abc123',
      rest: '/api/kernels?x=1',
      bare: false,
    });
    expect(parseUserPath('/user/alice/abc123')).toMatchObject({ bare: true, rest: '/' });
  });

  it('refuses anything odd', () => {
    for (const p of [
      '/user/',
      '/user/alice',
      '/user/alice/ABC/',
      '/user/alice/../bob/x/',
      '/user/alice/a%2fb/',
      '/user/%/abc1/',
      '/user/alice/ab/',
      '/users/alice/abc1/',
    ]) {
      expect(parseUserPath(p), p).toBeNull();
    }
  });
});

describe('rate limiter', () => {
  it('allows max hits per window, then says how long to wait', () => {
    const rl = new RateLimiter(3, 60_000);
    expect([rl.hit('k', 0), rl.hit('k', 1), rl.hit('k', 2)]).toEqual([0, 0, 0]);
    expect(rl.hit('k', 3)).toBe(60);
    expect(rl.hit('k', 60_001)).toBe(0);
    expect(rl.hit('other', 3)).toBe(0);
  });
});

describe('access rules', () => {
  const rules = { allowGroups: ['hpc'], adminGroups: ['admins'], adminUsers: ['root-ish'] };
  it('allows members of allowed groups, and admins always', () => {
    expect(decideAccess('a', ['hpc'], rules)).toEqual({ allowed: true, isAdmin: false });
    expect(decideAccess('b', ['other'], rules).allowed).toBe(false);
    expect(decideAccess('c', ['admins'], rules)).toEqual({ allowed: true, isAdmin: true });
    expect(decideAccess('root-ish', [], rules).isAdmin).toBe(true);
    expect(decideAccess('d', [], { allowGroups: [], adminGroups: [], adminUsers: [] }).allowed).toBe(true);
  });
});
