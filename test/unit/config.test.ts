import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/load.ts';

function problems(yaml: string) {
  try {
    parseConfig(yaml);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  return [];
}

describe('configuration', () => {
  it('an empty file is the embedded default', () => {
    const c = parseConfig('');
    expect(c.server.port).toBe(8000);
    expect(c.server.host).toBe('127.0.0.1');
    expect(c.clusters).toEqual([expect.objectContaining({ name: 'local', backend: 'local', maxHours: 8 })]);
    expect(c.appCatalogue.map((a) => a.id)).toContain('jupyter');
    expect(c.auth.local.enabled).toBe(true);
  });

  it('names the bad key and its line', () => {
    const p = problems(
      'server:\n  port: 99999\nclusters:\n  - name: a\n    backend: local\n    maxHourz: 3\n',
    );
    expect(p).toContainEqual({ key: 'server.port', line: 2, message: 'must be <= 65535' });
    expect(p).toContainEqual({ key: 'clusters[0].maxHourz', line: 6, message: 'unknown key' });
  });

  it('checks rules across keys', () => {
    expect(problems('clusters:\n  - name: s\n    backend: slurm\n')).toContainEqual(
      expect.objectContaining({ key: 'clusters[0].slurm', message: expect.stringContaining('slurm:') }),
    );
    expect(
      problems('clusters:\n  - {name: a, backend: local}\n  - {name: a, backend: local}\n'),
    ).toContainEqual(expect.objectContaining({ key: 'clusters[1].name', line: 3 }));
    expect(problems('auth:\n  local:\n    enabled: false\n')).toContainEqual(
      expect.objectContaining({ key: 'auth' }),
    );
  });

  it('refuses an app that puts its token on the command line', () => {
    const p = problems(
      'apps:\n  - id: x\n    name: X\n    command: [x, "--token={token}"]\n    ready: {http: /}\n',
    );
    expect(p).toContainEqual(expect.objectContaining({ key: 'apps[0].command', line: 4 }));
  });

  it('reports YAML syntax errors with a line', () => {
    const p = problems('server:\n  port: [1,\n');
    expect(p[0]!.line).toBeGreaterThan(0);
  });
});
