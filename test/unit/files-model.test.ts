// The Files page's pure parts (src/web/files/model.ts): sorting, breadcrumbs, links out.
import { describe, expect, it } from 'vitest';
import {
  crumbs,
  type FileEntry,
  isBatchScript,
  jupyterPath,
  linkTarget,
  rootOf,
  sortEntries,
  terminalHere,
} from '../../src/web/files/model.ts';

const e = (name: string, type: FileEntry['type'], size = 0, mtime = 0): FileEntry => ({
  name,
  type,
  size,
  mtime,
  mode: 0o644,
  etag: '',
});
const entries = [
  e('b10.txt', 'file', 5, 3),
  e('.hidden', 'file', 1, 1),
  e('b2.txt', 'file', 50, 2),
  e('dir', 'dir', 0, 9),
];
const roots = [
  { id: 'home', name: 'Home', path: '/home/alice', ok: true },
  { id: 'p', name: 'Project', path: '/project/alice', ok: true },
];

describe('Files page model', () => {
  it('sorts folders first, names naturally, by size or date either way; hides dot files unless asked', () => {
    const names = (l: FileEntry[]) => l.map((x) => x.name);
    expect(names(sortEntries(entries, { key: 'name', dir: 'asc' }, false))).toEqual([
      'dir',
      'b2.txt',
      'b10.txt',
    ]);
    expect(names(sortEntries(entries, { key: 'size', dir: 'desc' }, true))).toEqual([
      'dir',
      'b2.txt',
      'b10.txt',
      '.hidden',
    ]);
    expect(names(sortEntries(entries, { key: 'mtime', dir: 'asc' }, true))).toEqual([
      'dir',
      '.hidden',
      'b2.txt',
      'b10.txt',
    ]);
  });

  it('builds breadcrumbs from the root and resolves links for display', () => {
    expect(crumbs('/home/alice/a/b', roots[0]!)).toEqual([
      { label: 'Home', path: '/home/alice' },
      { label: 'a', path: '/home/alice/a' },
      { label: 'b', path: '/home/alice/a/b' },
    ]);
    expect(rootOf('/project/alice/x', roots)?.id).toBe('p');
    expect(rootOf('/etc', roots)).toBeUndefined();
    expect(linkTarget('/home/alice/a', '../b/./c')).toBe('/home/alice/b/c');
    expect(linkTarget('/home/alice', '/etc')).toBe('/etc');
  });

  it('links to Jupyter inside the home folder only, and to a terminal in a folder', () => {
    const url = '/user/alice/s1/';
    expect(jupyterPath(url, '/home/alice', '/home/alice/a b', true)).toBe('/user/alice/s1/tree/a%20b');
    expect(jupyterPath(url, '/home/alice', '/home/alice', true)).toBe('/user/alice/s1/tree');
    expect(jupyterPath(url, '/home/alice', '/home/alice/n.ipynb', false)).toBe(
      '/user/alice/s1/notebooks/n.ipynb',
    );
    expect(jupyterPath(url, '/home/alice', '/project/alice/x', true)).toBeNull();
    expect(terminalHere('/user/alice/s1.terminal/', '/home/alice/a&b')).toBe(
      '/user/alice/s1.terminal/?cwd=%2Fhome%2Falice%2Fa%26b',
    );
    expect(isBatchScript('run.sbatch')).toBe(true);
    expect(isBatchScript('notes.txt')).toBe(false);
  });
});
