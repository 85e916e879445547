// The agent's guard (src/agent/guard.ts) with real processes: the session's mark finds what an app
// started in a session of its own, a stop reaches processes that ignore SIGTERM, the parent-death signal
// takes an app down with its agent, and the guard stops a killed agent's leftovers.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  deathSignalPrefix,
  markedProcesses,
  SESSION_MARK,
  stopSessionProcesses,
} from '../../src/agent/guard.ts';
import { until } from '../helpers/wait.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const started: ChildProcess[] = [];

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie still answers kill(0): the state in /proc tells.
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** A process in a session of its own (as Jupyter starts kernels), with or without the session's mark. */
function sleeper(mark: string | null, script = 'sleep 300'): ChildProcess {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH };
  if (mark) env[SESSION_MARK] = mark;
  const c = spawn('sh', ['-c', script], { detached: true, stdio: 'ignore', env });
  started.push(c);
  return c;
}

afterEach(() => {
  for (const c of started.splice(0)) {
    try {
      process.kill(-c.pid!, 'SIGKILL');
    } catch {
      // gone
    }
  }
});

describe('the session mark', () => {
  it("finds a session's processes by their environment, and only those", async () => {
    const mine = sleeper('sess1');
    const other = sleeper('sess2');
    const none = sleeper(null);
    await until('the sleepers', () => [mine, other, none].every((c) => c.pid && alive(c.pid)), 5_000, 20);
    const found = markedProcesses('sess1', { uid: process.getuid!() });
    expect(found).toContain(mine.pid);
    expect(found).not.toContain(other.pid);
    expect(found).not.toContain(none.pid);
    expect(markedProcesses('sess1', { exclude: new Set([mine.pid!]) })).not.toContain(mine.pid);
  });

  it('stops marked processes with SIGTERM, then SIGKILL for one that ignores it', async () => {
    const polite = sleeper('sess3');
    const stubborn = sleeper('sess3', "trap '' TERM; while :; do sleep 1; done");
    await until('the sleepers', () => [polite, stubborn].every((c) => c.pid && alive(c.pid)), 5_000, 20);
    await new Promise((r) => setTimeout(r, 200)); // the trap is set
    // The stubborn one as an app: its group (its loop's `sleep 1` too) and its mark.
    const n = await stopSessionProcesses('sess3', [stubborn.pid!], { graceMs: 500, uid: process.getuid!() });
    expect(n).toBeGreaterThanOrEqual(2);
    await until('both gone', () => !alive(polite.pid!) && !alive(stubborn.pid!), 5_000, 20);
    expect(markedProcesses('sess3')).toEqual([]);
    expect(await stopSessionProcesses('sess3', [], { graceMs: 500 })).toBe(0);
  });
});

describe('dying with the agent', () => {
  it('setpriv --pdeathsig KILL takes an app down when its parent is killed', async () => {
    const prefix = deathSignalPrefix(process.env.PATH);
    expect(prefix.slice(1)).toEqual(['--pdeathsig', 'KILL', '--']);
    // A parent that starts the app through the prefix, prints its pid, and waits.
    const parent = spawn(
      process.execPath,
      [
        '-e',
        `const c = require('node:child_process').spawn(${JSON.stringify(prefix[0])}, ${JSON.stringify([
          ...prefix.slice(1),
          'sleep',
          '300',
        ])}, { detached: true, stdio: 'ignore' }); c.on('spawn', () => console.log(c.pid)); setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    started.push(parent);
    const app = await new Promise<number>((r) =>
      parent.stdout!.once('data', (d) => r(Number(String(d).trim()))),
    );
    await until('the app runs sleep', () => alive(app), 5_000, 20);
    parent.kill('SIGKILL');
    await until('the app died with its parent', () => !alive(app), 10_000, 20);
  });

  it("the guard stops what a SIGKILLed agent left: its apps' groups and their detached children", async () => {
    // A stand-in agent: starts the real guard (the agent's own code in guard mode), an app in its own
    // process group, and a child of the app in a session of its own; then is killed with SIGKILL.
    const fakeAgent = `
      import { spawn } from 'node:child_process';
      import { startGuard, SESSION_MARK } from ${JSON.stringify(path.join(ROOT, 'src/agent/guard.ts'))};
      const guard = startGuard({
        sessionId: 'sess4',
        argv: [process.execPath, '--import', 'tsx', ${JSON.stringify(path.join(ROOT, 'src/agent/main.ts'))}],
        env: { PATH: process.env.PATH },
        stderrFd: 2,
        log: (m) => console.error(m),
      });
      const env = { PATH: process.env.PATH, [SESSION_MARK]: 'sess4' };
      // The app ignores SIGTERM: only the guard's SIGKILL after its grace takes it.
      const app = spawn('sh', ['-c', "trap '' TERM; setsid sleep 300 & while :; do sleep 1; done"], { detached: true, stdio: 'ignore', env });
      app.on('spawn', () => { guard.watch(app.pid); console.log(JSON.stringify({ guard: guard.pid, app: app.pid })); });
      setInterval(() => {}, 1000);
    `;
    const agent = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', fakeAgent], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    started.push(agent);
    const pids = await new Promise<{ guard: number; app: number }>((r) =>
      agent.stdout!.once('data', (d) => r(JSON.parse(String(d)))),
    );
    // The app's detached child (setsid sleep) carries the mark too.
    const child = await until(
      "the app's detached child",
      () => markedProcesses('sess4').find((p) => p !== pids.app && p !== pids.guard && p !== agent.pid),
      10_000,
      50,
    );
    // The guard has had time to start and read the group.
    await new Promise((r) => setTimeout(r, 1500));
    expect(alive(pids.guard)).toBe(true);
    agent.kill('SIGKILL');
    await until(
      'the app, its detached child and the guard gone',
      () => !alive(pids.app) && !alive(child) && !alive(pids.guard),
      20_000,
      50,
    );
    expect(markedProcesses('sess4')).toEqual([]);
  }, 60_000);
});
