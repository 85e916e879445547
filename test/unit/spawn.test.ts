// Commands forked by the helper process (src/system/spawn.ts), as in the gateway: the same answers as
// in-process, and a helper that dies is replaced while its commands are answered with an error.
import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { ExecRunner } from '../../src/scheduler/slurm/runner.ts';
import { forkThroughHelper, stopSpawnHelper } from '../../src/system/spawn.ts';

const helperPids = () =>
  execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes('atrium-spawn-helper'))
    .map((l) => Number(l.trim().split(/\s+/)[0]));

describe('commands through the spawn helper', () => {
  forkThroughHelper();
  afterAll(() => stopSpawnHelper());
  const runner = new ExecRunner({ maxOutputBytes: 1000 });

  it('passes stdin, the environment and the working directory; returns stdout, stderr and the code', async () => {
    const r = await runner.run(['sh', '-c', 'cat; echo "$ONLY $(pwd)"; echo oops >&2; exit 3'], {
      input: 'line from stdin\n',
      env: { ONLY: 'this' },
      cwd: '/tmp',
    });
    expect(r).toMatchObject({
      code: 3,
      stdout: 'line from stdin\nthis /tmp\n',
      stderr: 'oops\n',
      timedOut: false,
    });
    expect(helperPids().length).toBe(1);
  });

  it('kills a command at its timeout, reports a missing program and caps the output', async () => {
    const slow = await runner.run(['sleep', '10'], { timeoutMs: 200 });
    expect(slow.timedOut).toBe(true);
    expect(slow.code).toBeNull();
    const missing = await runner.run(['/nonexistent/program']);
    expect(missing.error).toMatch(/ENOENT/);
    const big = await runner.run(['head', '-c', '5000', '/dev/zero']);
    expect(big.error).toMatch(/output larger than 1000 bytes/);
  });

  it('keeps bytes as they are with latin1 output', async () => {
    const r = await runner.run(['printf', '\\377\\000a'], { stdoutEncoding: 'latin1' });
    expect(Buffer.from(r.stdout, 'latin1')).toEqual(Buffer.from([0xff, 0, 0x61]));
  });

  it('answers the commands of a helper that died with an error and starts a new one', async () => {
    const [pid] = helperPids();
    const running = runner.run(['sleep', '5']);
    // The helper has the command now.
    await new Promise((r) => setTimeout(r, 300));
    process.kill(pid!, 'SIGKILL');
    const r = await running;
    expect(r.error).toBe('the spawn helper exited');
    const again = await runner.run(['echo', 'back']);
    expect(again.stdout).toBe('back\n');
    expect(helperPids()).not.toContain(pid);
  });
});
