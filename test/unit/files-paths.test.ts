// What a path of the Files page may be (src/files/paths.ts), and how the helper is run as the user
// (src/files/service.ts): pure rules, no files touched.
import { describe, expect, it } from 'vitest';
import {
  checkName,
  contentDisposition,
  expandRoot,
  PathProblem,
  resolvePath,
  rootsFor,
} from '../../src/files/paths.ts';
import { helperArgv, runAsFor } from '../../src/files/service.ts';

const alice = { name: 'alice', home: '/home/alice' };
const roots = rootsFor(
  [
    { name: 'Home', path: '~' },
    { name: 'Project', path: '/project/$USER' },
    // The braced form, as a site writes it in YAML.
    { name: 'Scratch', path: '/scratch/$' + '{USER}/' },
  ],
  alice,
);

function problem(f: () => unknown): PathProblem {
  try {
    f();
  } catch (e) {
    if (e instanceof PathProblem) return e;
    throw e;
  }
  throw new Error('no problem found');
}

describe('roots', () => {
  it('expand ~, $HOME and $USER, and drop what is not absolute or climbs', () => {
    expect(roots.map((r) => [r.id, r.path])).toEqual([
      ['home', '/home/alice'],
      ['project', '/project/alice'],
      ['scratch', '/scratch/alice'],
    ]);
    expect(expandRoot('$HOME/data', alice)).toBe('/home/alice/data');
    expect(expandRoot('relative', alice)).toBeNull();
    expect(expandRoot('/a/../etc', alice)).toBeNull();
    expect(expandRoot('/a/$USERNAME', alice)).toBe('/a/$USERNAME');
  });
});

describe('resolvePath', () => {
  it('finds the root of a path and its segments below it', () => {
    expect(resolvePath('/home/alice/a/b', roots)).toMatchObject({ root: { id: 'home' }, rel: ['a', 'b'] });
    expect(resolvePath('/project/alice/', roots)).toMatchObject({ root: { id: 'project' }, rel: [] });
    expect(resolvePath('/home/alice/line\nbreak', roots).rel).toEqual(['line\nbreak']);
    expect(resolvePath(`/home/alice/it's "q" $(x) ü`, roots).rel).toEqual([`it's "q" $(x) ü`]);
  });

  it('refuses, naming the field and the problem', () => {
    const cases: [unknown, number, RegExp][] = [
      ['/etc/passwd', 403, /path: outside your folders \(Home: \/home\/alice/],
      ['/home/alicex', 403, /outside your folders/],
      ['/home/alice/../bob', 400, /"\.\." segment/],
      ['/home/alice/./x', 400, /"\." segment/],
      ['/home/alice//x', 400, /empty segment/],
      ['home/alice', 400, /absolute path/],
      ['', 400, /empty/],
      ['/home/alice/a\0b', 400, /NUL/],
      ['/home/alice/a\rb', 400, /control character/],
      ['/home/alice/a\u0085b', 400, /control character/],
      ['/home/alice/%2e%2e/bob', 400, /percent-encoded/],
      ['/home/alice/%2F', 400, /percent-encoded/],
      ['/home/alice/%252e', 400, /percent-encoded/],
      [`/home/alice/${'x'.repeat(256)}`, 400, /longer than 255 bytes/],
      [`/home/alice/${'é'.repeat(128)}`, 400, /longer than 255 bytes/],
      [42, 400, /must be text/],
    ];
    for (const [input, status, why] of cases) {
      const p = problem(() => resolvePath(input, roots));
      expect([p.status, p.field], JSON.stringify(input)).toEqual([status, 'path']);
      expect(p.message, JSON.stringify(input)).toMatch(why);
    }
    expect(problem(() => resolvePath('/x', roots, 'to')).message).toMatch(/^to: /);
  });
});

describe('checkName', () => {
  it('takes one segment and refuses the rest', () => {
    expect(checkName('a b "c"')).toBe('a b "c"');
    expect(problem(() => checkName('')).message).toBe('name: an empty name (a name of 0 bytes)');
    expect(problem(() => checkName('a/b')).message).toMatch(/may not contain "\/"/);
    expect(problem(() => checkName('..')).message).toMatch(/"\.\." segment/);
  });
});

describe('contentDisposition', () => {
  it('keeps any name, quotes and newlines included, in filename*', () => {
    const name = 'a "b"\nc ü.txt';
    const v = contentDisposition(name);
    expect(v).toMatch(/^attachment; filename="a _b__c _.txt"; filename\*=UTF-8''/);
    expect(decodeURIComponent(v.split("UTF-8''")[1]!)).toBe(name);
    expect(v).not.toMatch(/[\r\n]/);
  });
});

describe('running the helper as the user', () => {
  const who = { user: 'alice', uid: 1001, gid: 1001, home: '/home/alice', shell: '/bin/bash' };
  it('chooses setpriv as root, nothing for the own user, sudo otherwise', () => {
    expect(runAsFor('auto', 0, 1001)).toBe('setpriv');
    expect(runAsFor('auto', 1001, 1001)).toBe('none');
    expect(runAsFor('auto', 999, 1001)).toBe('sudo');
    expect(runAsFor('sudo', 0, 1001)).toBe('sudo');
  });
  it('passes the request as one argv element, never through a shell', () => {
    const req = { op: 'list', root: '/home/alice', rel: ['$(rm -rf ~)', "a'b"] };
    const argv = helperArgv('setpriv', who, '/usr/bin/node', '/opt/atrium/dist/files/atrium-files.mjs', req);
    expect(argv.slice(0, 5)).toEqual(['setpriv', '--reuid=1001', '--regid=1001', '--init-groups', '--']);
    expect(JSON.parse(argv.at(-1)!)).toEqual(req);
    expect(helperArgv('sudo', who, 'n', 'h', req).slice(0, 5)).toEqual(['sudo', '-n', '-u', 'alice', '--']);
  });
});
