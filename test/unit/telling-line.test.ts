// Which line of a failed session's log reaches its card: a failed setup line with what it printed, or
// the last line that reads like an error (not stack frames or our own progress lines). The setup lines
// of a job script stop at the first that fails, run by bash as the scheduler would.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { SETUP_FAILED, tellingLine } from '../../src/core/telling-line.ts';
import { setupLines } from '../../src/scheduler/slurm/commands.ts';

describe('tellingLine', () => {
  it("names a failed setup line with what the command printed, without bash's prefix", () => {
    const log = [
      'atrium: session abc on host at 2025-01-01T00:00:00Z',
      'atrium-session: line 7: /opt/envs/x/bin/activate: No such file or directory',
      `${SETUP_FAILED} (exit 1): source /opt/envs/x/bin/activate`,
    ].join('\n');
    expect(tellingLine(log)).toBe(
      'the environment setup failed (exit 1): source /opt/envs/x/bin/activate — /opt/envs/x/bin/activate: No such file or directory',
    );
    expect(tellingLine(`atrium: job 7 on n1 at t\n${SETUP_FAILED} (exit 1): false\n`)).toBe(
      'the environment setup failed (exit 1): false',
    );
  });

  it("takes Node.js's error, not its stack or version footer", () => {
    const log = [
      'atrium: session abc on host at t',
      'node:internal/modules/cjs/loader:1210',
      '  throw err;',
      '  ^',
      '',
      "Error: Cannot find module '/root/atrium/dist/agent/atrium-agent.mjs'",
      '    at Module._resolveFilename (node:internal/modules/cjs/loader:1207:15)',
      "  code: 'MODULE_NOT_FOUND',",
      '}',
      '',
      'Node.js v20.20.2',
    ].join('\n');
    expect(tellingLine(log)).toBe("Error: Cannot find module '/root/atrium/dist/agent/atrium-agent.mjs'");
  });

  it("reads the agent's own lines without their time stamp, and the app's last error", () => {
    const log = [
      '2025-01-01T00:00:00.000Z atrium-agent: session abc: starting jupyter',
      '[I 10:00:00 NotebookApp] Serving notebooks',
      'OSError: [Errno 98] Address already in use',
      '2025-01-01T00:00:01.000Z atrium-agent: waiting',
    ].join('\n');
    expect(tellingLine(log)).toBe('OSError: [Errno 98] Address already in use');
    expect(tellingLine('2025-01-01T00:00:00Z atrium-agent: fatal: EACCES: permission denied, open x')).toBe(
      'fatal: EACCES: permission denied, open x',
    );
  });

  it('finds nothing in a log without an error, and cuts long lines', () => {
    expect(tellingLine('atrium: session abc on host at t\nall good\n')).toBeUndefined();
    expect(tellingLine('')).toBeUndefined();
    expect(tellingLine(`error: ${'x'.repeat(1000)}`)!.length).toBeLessThanOrEqual(240);
  });
});

describe('setupLines', () => {
  const run = (setup: string[]) =>
    spawnSync(
      '/bin/bash',
      ['-c', [...setupLines(setup), 'echo agent-started'].join('\n'), 'atrium-session'],
      {
        encoding: 'utf8',
      },
    );

  it('runs every line and goes on when they succeed', () => {
    const r = run(['export A=1', 'B=$((A + 1))', 'echo "b=$B"']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('b=2\nagent-started\n');
  });

  it('stops at the first line that fails, naming it, before the agent starts', () => {
    const r = run(['export A=1', 'source /nonexistent/atrium-env', 'echo never']);
    expect(r.status).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('/nonexistent/atrium-env: No such file or directory');
    expect(r.stderr).toContain(`${SETUP_FAILED} (exit 1): source /nonexistent/atrium-env`);
    expect(tellingLine(r.stderr)).toBe(
      'the environment setup failed (exit 1): source /nonexistent/atrium-env — /nonexistent/atrium-env: No such file or directory',
    );
    const quoted = run([`false 'it''s' "$(echo x)"`]);
    expect(quoted.status).toBe(3);
    expect(quoted.stderr).toContain(`(exit 1): false 'it''s' "$(echo x)"`);
  });
});
