// Runs scheduler commands: argv only (never a shell), a timeout that kills the whole process group,
// optional stdin, a clean environment, and call counters so tests can assert "one squeue per poll".
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import path from 'node:path';

export interface RunOptions {
  /** Written to the child's stdin, then stdin is closed. Without it stdin is /dev/null-like (closed at once). */
  input?: string;
  /** Kill the command (SIGTERM to its process group, SIGKILL 2 s later) after this many ms. */
  timeoutMs?: number;
  /** Extra environment on top of the runner's base environment. */
  env?: Record<string, string>;
  cwd?: string;
  /** Name the call is counted under; defaults to the basename of argv[0]. */
  label?: string;
  /** How stdout is decoded. 'latin1' keeps every byte as one character (binary-safe file reads). */
  stdoutEncoding?: 'utf8' | 'latin1';
}

export interface RunResult {
  argv: readonly string[];
  label: string;
  /** Exit code; null when killed by a signal or not started. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  durationMs: number;
  /** Set when the command could not be started (ENOENT, EACCES...) or its output was too large. */
  error?: string;
}

export interface CommandRunner {
  run(argv: readonly string[], opts?: RunOptions): Promise<RunResult>;
  /** Total calls made through this runner. */
  readonly calls: number;
  /** Calls per label (e.g. squeue, sinfo, sbatch). */
  callsOf(label: string): number;
}

export interface ExecRunnerOptions {
  /** Default timeout when a call gives none (ms). Default 30 000. */
  timeoutMs?: number;
  /**
   * Base environment of every command. The gateway's own environment is NOT inherited (it may hold
   * secrets and SLURM_* variables of its own). Default: PATH, LANG=C.UTF-8, TZ=UTC.
   */
  env?: Record<string, string>;
  /** Output cap per stream in bytes; a command printing more is killed. Default 256 MiB. */
  maxOutputBytes?: number;
  /** Called after every command (for logging/metrics). */
  onResult?: (r: RunResult) => void;
}

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export class ExecRunner implements CommandRunner {
  private total = 0;
  private readonly perLabel = new Map<string, number>();
  private readonly timeoutMs: number;
  private readonly baseEnv: Record<string, string>;
  private readonly maxOutputBytes: number;
  private readonly onResult: ((r: RunResult) => void) | undefined;

  constructor(opts: ExecRunnerOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.baseEnv = opts.env ?? { PATH: DEFAULT_PATH, LANG: 'C.UTF-8', TZ: 'UTC' };
    this.maxOutputBytes = opts.maxOutputBytes ?? 256 * 1024 * 1024;
    this.onResult = opts.onResult;
  }

  get calls(): number {
    return this.total;
  }

  callsOf(label: string): number {
    return this.perLabel.get(label) ?? 0;
  }

  run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const label = opts.label ?? path.basename(argv[0] ?? '');
    this.total += 1;
    this.perLabel.set(label, (this.perLabel.get(label) ?? 0) + 1);
    const started = performance.now();
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    return new Promise<RunResult>((resolve) => {
      const [file, ...args] = argv;
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      let killTimer: NodeJS.Timeout | undefined;
      const finish = (r: Omit<RunResult, 'argv' | 'label' | 'durationMs'>): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearTimeout(killTimer);
        const result: RunResult = { argv, label, durationMs: performance.now() - started, ...r };
        this.onResult?.(result);
        resolve(result);
      };
      if (!file) {
        finish({ code: null, signal: null, stdout: '', stderr: '', timedOut: false, error: 'empty argv' });
        return;
      }
      let child: ChildProcessWithoutNullStreams;
      try {
        child = spawn(file, args, {
          env: { ...this.baseEnv, ...opts.env },
          cwd: opts.cwd ?? '/',
          stdio: ['pipe', 'pipe', 'pipe'],
          // Own process group, so a timeout kills runuser/sudo and the command under it.
          detached: true,
          windowsHide: true,
        });
      } catch (e) {
        // e.g. a NUL byte in an argument
        finish({ code: null, signal: null, stdout: '', stderr: '', timedOut: false, error: String(e) });
        return;
      }
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let outBytes = 0;
      let errBytes = 0;
      let timedOut = false;
      let overflow = false;
      const killGroup = (sig: NodeJS.Signals): void => {
        if (child.pid === undefined) return;
        try {
          process.kill(-child.pid, sig);
        } catch {
          try {
            child.kill(sig);
          } catch {
            /* already gone */
          }
        }
      };
      const abort = (): void => {
        killGroup('SIGTERM');
        killTimer = setTimeout(() => killGroup('SIGKILL'), 2000);
        killTimer.unref();
      };
      child.stdout.on('data', (b: Buffer) => {
        outBytes += b.length;
        if (outBytes > this.maxOutputBytes) {
          if (!overflow) {
            overflow = true;
            abort();
          }
          return;
        }
        out.push(b);
      });
      child.stderr.on('data', (b: Buffer) => {
        errBytes += b.length;
        if (errBytes <= 1024 * 1024) err.push(b);
      });
      child.stdin.on('error', () => {
        /* EPIPE when the command exits without reading its input: the exit status tells */
      });
      child.on('error', (e: NodeJS.ErrnoException) => {
        finish({
          code: null,
          signal: null,
          stdout: Buffer.concat(out).toString(opts.stdoutEncoding ?? 'utf8'),
          stderr: Buffer.concat(err).toString('utf8'),
          timedOut,
          error: `${e.code ?? 'error'}: ${e.message}`,
        });
      });
      child.on('close', (code, signal) => {
        finish({
          code,
          signal,
          stdout: Buffer.concat(out).toString(opts.stdoutEncoding ?? 'utf8'),
          stderr: Buffer.concat(err).toString('utf8'),
          timedOut,
          ...(overflow ? { error: `output larger than ${this.maxOutputBytes} bytes` } : {}),
        });
      });
      timer = setTimeout(() => {
        timedOut = true;
        abort();
      }, timeoutMs);
      timer.unref();
      if (opts.input !== undefined) child.stdin.end(opts.input);
      else child.stdin.end();
    });
  }
}

/** true when the command ran and exited 0 within its time. */
export function succeeded(r: RunResult): boolean {
  return r.code === 0 && !r.timedOut && r.error === undefined;
}

/** One line saying why a command failed (for error messages; never includes stdin). */
export function describeFailure(r: RunResult): string {
  const cmd = r.label;
  if (r.timedOut) return `${cmd} timed out after ${Math.round(r.durationMs)} ms`;
  if (r.error) return `${cmd} failed: ${r.error}`;
  const msg = r.stderr.trim().split('\n').filter(Boolean).slice(-3).join(' / ');
  const how = r.code !== null ? `exit ${r.code}` : `signal ${r.signal ?? '?'}`;
  return `${cmd} failed (${how})${msg ? `: ${msg}` : ''}`;
}
