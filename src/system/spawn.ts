// Starts short commands (scheduler commands, NSS lookups, file reads as the user) and collects their
// output. In the gateway the processes are forked by a small helper process, not by the gateway:
// fork() copies the parent's page tables while its thread waits, and with a gateway of a few hundred MB
// each start cost it 10-50 ms of its event loop; at 200 users clicking through, half of the loop's time
// went to forking (bench:scale's profile, docs/benchmarks.md). The helper is a plain Node process of
// ~40 MB that runs the same function below; the gateway only exchanges a message with it.
import { type ChildProcess, spawn } from 'node:child_process';

export interface CommandRequest {
  file: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  /** Written to stdin, then stdin is closed; without it stdin is closed at once. */
  input?: string;
  /** SIGTERM to the process group after this many ms, SIGKILL 2 s later. */
  timeoutMs: number;
  /** A command printing more on stdout is killed. */
  maxOutputBytes: number;
  stdoutEncoding: 'utf8' | 'latin1';
}

export interface CommandOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** Could not be started (ENOENT, EACCES...) or printed too much. */
  error?: string;
}

/** The outcome of a command that never ran (or whose answer was lost), saying why. */
export function notRun(error: string): CommandOutcome {
  return { code: null, signal: null, stdout: '', stderr: '', timedOut: false, error };
}

/**
 * Runs one command: argv only (never a shell), its own process group (a timeout kills runuser/sudo
 * and the command under it), output capped. Self-contained on purpose: the helper runs it from its
 * source text, so it may use only its parameters and Node's globals.
 */
export function runCommandWith(start: typeof spawn, req: CommandRequest): Promise<CommandOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let errBytes = 0;
    let timedOut = false;
    let overflow = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null, error?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(killTimer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString(req.stdoutEncoding),
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut,
        ...(error !== undefined ? { error } : {}),
      });
    };
    let child: ReturnType<typeof spawn>;
    try {
      child = start(req.file, req.args, {
        env: req.env,
        cwd: req.cwd,
        stdio: ['pipe', 'pipe', 'pipe'],
        detached: true,
        windowsHide: true,
      });
    } catch (e) {
      // e.g. a NUL byte in an argument
      finish(null, null, String(e));
      return;
    }
    const killGroup = (sig: NodeJS.Signals) => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, sig);
      } catch {
        try {
          child.kill(sig);
        } catch {
          // already gone
        }
      }
    };
    const abort = () => {
      killGroup('SIGTERM');
      killTimer = setTimeout(() => killGroup('SIGKILL'), 2000);
      killTimer.unref();
    };
    child.stdout?.on('data', (b: Buffer) => {
      outBytes += b.length;
      if (outBytes > req.maxOutputBytes) {
        if (!overflow) {
          overflow = true;
          abort();
        }
        return;
      }
      out.push(b);
    });
    child.stderr?.on('data', (b: Buffer) => {
      errBytes += b.length;
      if (errBytes <= 1024 * 1024) err.push(b);
    });
    // EPIPE when the command exits without reading its input: the exit status tells.
    child.stdin?.on('error', () => undefined);
    child.on('error', (e: NodeJS.ErrnoException) => finish(null, null, `${e.code ?? 'error'}: ${e.message}`));
    child.on('close', (code, signal) =>
      finish(code, signal, overflow ? `output larger than ${req.maxOutputBytes} bytes` : undefined),
    );
    timer = setTimeout(() => {
      timedOut = true;
      abort();
    }, req.timeoutMs);
    timer.unref();
    if (req.input !== undefined) child.stdin?.end(req.input);
    else child.stdin?.end();
  });
}

// The helper: Node with this program on its command line (no file to install or find). `__name` is
// what a TypeScript transform may wrap named functions in; here it is the identity.
const HELPER_SOURCE = `
var __name = (f) => f;
process.title = 'atrium-spawn-helper';
const { spawn } = require('node:child_process');
const run = (${runCommandWith.toString()});
process.on('message', (m) => {
  run(spawn, m.req).then((r) => process.send({ id: m.id, r }));
});
process.on('disconnect', () => process.exit(0));
`;

/** The gateway's helper process; restarted when it dies, the commands it had are answered with an error. */
class SpawnHelper {
  private child: ChildProcess | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, (r: CommandOutcome) => void>();

  run(req: CommandRequest): Promise<CommandOutcome> {
    const child = this.ensure();
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      // While commands run, the channel keeps the gateway's loop alive; idle, it does not.
      if (this.pending.size === 1) child.channel?.ref();
      child.send({ id, req }, (e) => {
        if (e) this.settle(id, notRun(`spawn helper: ${e.message}`));
      });
    });
  }

  private settle(id: number, r: CommandOutcome): void {
    const done = this.pending.get(id);
    if (!done) return;
    this.pending.delete(id);
    if (this.pending.size === 0) this.child?.channel?.unref();
    done(r);
  }

  private ensure(): ChildProcess {
    if (this.child && this.child.connected) return this.child;
    const child = spawn(process.execPath, ['-e', HELPER_SOURCE], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    });
    child.on('message', (m: { id: number; r: CommandOutcome }) => this.settle(m.id, m.r));
    child.on('exit', () => {
      if (this.child === child) this.child = undefined;
      for (const id of [...this.pending.keys()]) this.settle(id, notRun('the spawn helper exited'));
    });
    child.unref();
    child.channel?.unref();
    this.child = child;
    return child;
  }

  stop(): void {
    this.child?.disconnect();
    this.child = undefined;
  }
}

let helper: SpawnHelper | undefined;

/** Runs a command, through the helper process once forkThroughHelper() was called, else in this process. */
export function runCommand(req: CommandRequest): Promise<CommandOutcome> {
  return helper ? helper.run(req) : runCommandWith(spawn, req);
}

/** From now on, commands are forked by a helper process (the gateway calls this at its start). */
export function forkThroughHelper(): void {
  helper ??= new SpawnHelper();
}

export function stopSpawnHelper(): void {
  helper?.stop();
  helper = undefined;
}
