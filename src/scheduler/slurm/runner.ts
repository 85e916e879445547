// Runs scheduler commands: argv only (never a shell), a timeout that kills the whole process group,
// optional stdin, a clean environment, and call counters so tests can assert "one squeue per poll".
// The process itself is started by src/system/spawn.ts (in the gateway, by its helper process).
import path from 'node:path';
import { notRun, runCommand } from '../../system/spawn.ts';

export interface RunOptions {
  /** Written to the child's stdin, then stdin is closed. Without it stdin is /dev/null-like (closed at once). */
  input?: string;
  /** Kill the command (SIGTERM to its process group, SIGKILL 2 s later) after this many ms. */
  timeoutMs?: number;
  /** Extra environment on top of the runner's base environment; undefined removes a base variable. */
  env?: Record<string, string | undefined>;
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
    const [file, ...args] = argv;
    const done = (r: Omit<RunResult, 'argv' | 'label' | 'durationMs'>): RunResult => {
      const result: RunResult = { argv, label, durationMs: performance.now() - started, ...r };
      this.onResult?.(result);
      return result;
    };
    if (!file) return Promise.resolve(done(notRun('empty argv')));
    return runCommand({
      file,
      args,
      env: withoutUnset({ ...this.baseEnv, ...opts.env }),
      cwd: opts.cwd ?? '/',
      ...(opts.input !== undefined ? { input: opts.input } : {}),
      timeoutMs,
      maxOutputBytes: this.maxOutputBytes,
      stdoutEncoding: opts.stdoutEncoding ?? 'utf8',
    }).then(done);
  }
}

function withoutUnset(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
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
