// The embedded default backend: sessions are processes on the gateway host, started as the user
// with their supplementary groups (setpriv --init-groups; node's own uid switch drops them).
// Each job is recorded as a small file, so the backend behaves like a scheduler across gateway
// restarts: jobs keep running, and the next gateway finds them again.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setupLines, shellQuote } from './slurm/commands.ts';
import {
  type ClusterInfo,
  type JobInfo,
  type NodeInfo,
  type PollSnapshot,
  type SchedulerAdapter,
  SchedulerError,
  type SessionSubmission,
  type SubmitResult,
  type UnixIdentity,
} from './types.ts';

interface LocalJobRecord {
  jobId: string;
  pid: number;
  /** Process start time (clock ticks since boot): tells a live job from a reused pid. */
  startTicks: string;
  tag: string;
  user: string;
  cores: number;
  memoryMb: number;
  submitTime: number;
  deadline: number;
  exitCode?: number;
  endTime?: number;
}

export interface LocalAdapterOptions {
  cluster: string;
  /** Where job records live (inside the gateway's data dir). */
  stateDir: string;
  /** Seconds a finished job stays visible (like Slurm's MinJobAge). */
  keepFinishedSeconds?: number;
}

function procStartTicks(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22; the command name (field 2) may contain spaces, so count from its closing parenthesis.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19] ?? null;
  } catch {
    return null;
  }
}

function isAlive(rec: LocalJobRecord): boolean {
  const ticks = procStartTicks(rec.pid);
  if (ticks === null || ticks !== rec.startTicks) return false;
  try {
    const stat = fs.readFileSync(`/proc/${rec.pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

export class LocalAdapter implements SchedulerAdapter {
  readonly kind = 'local' as const;
  readonly cluster: string;
  private readonly dir: string;
  private readonly keepMs: number;

  constructor(opts: LocalAdapterOptions) {
    this.cluster = opts.cluster;
    this.dir = opts.stateDir;
    this.keepMs = (opts.keepFinishedSeconds ?? 300) * 1000;
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  private file(jobId: string): string {
    return path.join(this.dir, `${jobId}.json`);
  }

  private readAll(): LocalJobRecord[] {
    const out: LocalJobRecord[] = [];
    for (const f of fs.readdirSync(this.dir)) {
      if (!f.endsWith('.json')) continue;
      try {
        out.push(JSON.parse(fs.readFileSync(path.join(this.dir, f), 'utf8')) as LocalJobRecord);
      } catch {
        // a half-written record: skip it this time
      }
    }
    return out;
  }

  private write(rec: LocalJobRecord): void {
    const tmp = `${this.file(rec.jobId)}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(rec), { mode: 0o600 });
    fs.renameSync(tmp, this.file(rec.jobId));
  }

  async submitSession(sub: SessionSubmission): Promise<SubmitResult> {
    const existing = this.readAll().find((r) => r.tag === sub.tag);
    if (existing) return { jobId: existing.jobId, adopted: true };
    const myUid = process.getuid?.() ?? -1;
    if (sub.identity.uid === 0)
      throw new SchedulerError('sessions never run as root; map this account to another Unix user');
    if (myUid !== 0 && myUid !== sub.identity.uid) {
      throw new SchedulerError(
        `the gateway runs as uid ${myUid} and cannot start sessions as ${sub.identity.user}: run it as root or use the Slurm backend`,
      );
    }
    const deadline = Date.now() + sub.minutes * 60_000;
    const env: Record<string, string> = {
      HOME: sub.identity.home,
      USER: sub.identity.user,
      LOGNAME: sub.identity.user,
      SHELL: sub.identity.shell,
      PATH: '/usr/local/bin:/usr/bin:/bin',
      LANG: process.env.LANG && process.env.LANG !== 'C' ? process.env.LANG : 'C.UTF-8',
      ATRIUM_DEADLINE: String(deadline),
      ATRIUM_CPUS: String(sub.cores),
      ...sub.agentEnv,
    };
    // Like Slurm's batch script: as the user, the job's output goes to ~/.atrium/logs/session-<id>.log
    // (private), then the admin's setup lines run, then the agent. Its argv is passed as "$@", never
    // spliced into the script. Builtins where a command would do (the host name, the date, a log
    // folder that exists): each process started here delays the session's first page.
    const q = shellQuote;
    const script = [
      '__atrium_umask=$(umask); umask 077',
      '__atrium_logdir="$HOME"/.atrium/logs',
      '[ -d "$__atrium_logdir" ] || mkdir -p -m 700 "$__atrium_logdir" &&',
      `  exec >>"$__atrium_logdir"/${q(`session-${sub.sessionId}.log`)} 2>&1`,
      'umask "$__atrium_umask"; unset __atrium_umask __atrium_logdir',
      `TZ=UTC0 printf 'atrium: session ${sub.sessionId.replace(/[^A-Za-z0-9_.-]/g, '')} on %s at %(%Y-%m-%dT%H:%M:%SZ)T\\n' "$HOSTNAME" -1`,
      ...setupLines(sub.setup ?? []),
      'exec "$@"',
    ].join('\n');
    let argv = ['/bin/bash', '-c', script, 'atrium-session', ...sub.agentArgv];
    if (myUid === 0) {
      argv = [
        'setpriv',
        `--reuid=${sub.identity.uid}`,
        `--regid=${sub.identity.gid}`,
        '--init-groups',
        '--',
        ...argv,
      ];
    }
    const cwd = fs.existsSync(sub.identity.home) ? sub.identity.home : '/';
    const child = spawn(argv[0]!, argv.slice(1), { cwd, env, detached: true, stdio: 'ignore' });
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('spawn', () => resolve(child.pid!));
      child.once('error', (e) => reject(new SchedulerError(`could not start the session: ${e.message}`)));
    });
    const startTicks = procStartTicks(pid) ?? '0';
    const rec: LocalJobRecord = {
      jobId: String(pid),
      pid,
      startTicks,
      tag: sub.tag,
      user: sub.identity.user,
      cores: sub.cores,
      memoryMb: sub.memoryMb,
      submitTime: Math.floor(Date.now() / 1000),
      deadline,
    };
    this.write(rec);
    child.once('exit', (code, signal) => {
      try {
        const cur = JSON.parse(fs.readFileSync(this.file(rec.jobId), 'utf8')) as LocalJobRecord;
        // 128+N for a signal, as a shell reports it: the gateway tells a killed agent from an app's exit.
        cur.exitCode = code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 0);
        cur.endTime = Math.floor(Date.now() / 1000);
        this.write(cur);
      } catch {
        // record already removed
      }
    });
    child.unref();
    return { jobId: rec.jobId };
  }

  async cancel(_identity: UnixIdentity, jobId: string): Promise<void> {
    let rec: LocalJobRecord;
    try {
      rec = JSON.parse(fs.readFileSync(this.file(jobId), 'utf8')) as LocalJobRecord;
    } catch {
      return; // unknown or long gone
    }
    if (!isAlive(rec)) return;
    try {
      process.kill(rec.pid, 'SIGTERM');
    } catch {
      return;
    }
    // If the agent does not exit (it forwards the stop to its app), make sure it goes.
    setTimeout(() => {
      if (isAlive(rec)) {
        try {
          process.kill(-rec.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }, 15_000).unref();
  }

  async poll(): Promise<PollSnapshot> {
    const now = Date.now();
    const jobs: JobInfo[] = [];
    let allocCpus = 0;
    let allocMem = 0;
    for (const rec of this.readAll()) {
      const alive = isAlive(rec);
      if (alive && now > rec.deadline + 60_000) {
        // The agent enforces the limit itself; this is the safety net.
        try {
          process.kill(rec.pid, 'SIGTERM');
        } catch {
          // gone
        }
      }
      if (!alive && rec.endTime === undefined) {
        rec.endTime = Math.floor(now / 1000);
        this.write(rec);
      }
      if (!alive && rec.endTime !== undefined && now - rec.endTime * 1000 > this.keepMs) {
        fs.rmSync(this.file(rec.jobId), { force: true });
        continue;
      }
      const timedOut = !alive && (rec.endTime ?? 0) * 1000 >= rec.deadline - 1000;
      const state = alive
        ? 'running'
        : timedOut
          ? 'timeout'
          : (rec.exitCode ?? 0) === 0
            ? 'completed'
            : 'failed';
      if (alive) {
        allocCpus += rec.cores;
        allocMem += rec.memoryMb;
      }
      jobs.push({
        jobId: rec.jobId,
        name: `atrium-${rec.tag}`,
        user: rec.user,
        state,
        rawState: state.toUpperCase(),
        comment: rec.tag,
        nodes: 'localhost',
        nodeAddress: '127.0.0.1',
        cpus: rec.cores,
        memoryMb: rec.memoryMb,
        submitTime: rec.submitTime,
        startTime: rec.submitTime,
        endTime: rec.endTime,
        timeLimitMinutes: Math.round((rec.deadline - rec.submitTime * 1000) / 60_000),
        exitCode: rec.exitCode,
      });
    }
    const node: NodeInfo = {
      name: 'localhost',
      address: '127.0.0.1',
      state: allocCpus > 0 ? 'mixed' : 'idle',
      partitions: [],
      cpus: os.cpus().length,
      allocCpus: Math.min(allocCpus, os.cpus().length),
      memoryMb: Math.floor(os.totalmem() / 1024 / 1024),
      allocMemoryMb: allocMem,
      gpus: 0,
      allocGpus: 0,
    };
    return { ok: true, at: now, jobs, nodes: [node], calls: 1 };
  }

  async clusterInfo(): Promise<ClusterInfo> {
    return { name: this.cluster, partitions: [], reservations: [], hasAccounting: false };
  }
}
