// The ssh backend (BSC-style): sessions are agents started over ssh, as the user, on one configured
// host. The gateway holds a key the host trusts for its users (sshd AuthorizedKeysFile or
// AuthorizedKeysCommand, or one key per user). Job id = the agent's PID on that host.
//
// - submit: `ssh -l <user> <host> -- /bin/bash -s`; the launch script (with the agent's secrets)
//   goes over stdin, never on a command line. It starts the agent detached (setsid, output to
//   ~/.atrium/logs/session-<id>.log) and prints its PID.
// - poll: ONE ssh call as the poll account, whatever the number of sessions: `ps` of every process
//   on the host (agents carry their session tag, deadline and resources in their arguments), plus
//   the host's cores and memory.
// - cancel: `ssh -l <user> <host> -- kill -TERM <pid>` as the owner.
import os from 'node:os';
import type { ClusterConfig } from '../config/schema.ts';
import { setupLines, shellQuote } from './slurm/commands.ts';
import {
  type CommandRunner,
  describeFailure,
  ExecRunner,
  type RunResult,
  succeeded,
} from './slurm/runner.ts';
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

export interface SshAdapterConfig {
  /** The gateway's name for this cluster. */
  name: string;
  host: string;
  port: number;
  /** Private key; `{user}` is replaced by the user name (one key per user). ssh's defaults when absent. */
  keyFile?: string;
  knownHostsFile?: string;
  /** Address the gateway reaches apps at (the agent reports it; the SSRF check compares). Default: host. */
  address?: string;
  sshCommand: string;
  /** Account the poll logs in as. */
  pollUser: string;
  commandTimeoutMs: number;
  /** Seconds a finished agent stays visible as a finished job (like Slurm's MinJobAge). Default 300. */
  keepFinishedSeconds?: number;
  /** PATH inside sessions before `setup` runs. */
  sessionPath?: string;
  /** Session log directory relative to HOME. Default .atrium/logs */
  logDir?: string;
}

const USER_RE = /^[a-z_][a-z0-9_.-]{0,31}$/;
const HOST_RE = /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,252}$/;
const TAG_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const PID_RE = /^[1-9]\d{0,9}$/;
/** The arguments every agent started by this backend ends with (read back by the poll). */
const MARKER_RE =
  / --atrium-session=([A-Za-z0-9][A-Za-z0-9_.-]{0,63}) --atrium-deadline=(\d{1,15}) --atrium-resources=(\d{1,9}),(\d{1,12}),(\d{1,6})$/;
const HOST_SECTION = '@@atrium-host@@';

/** The argv of ssh for one remote command run as `user` (every remote word quoted for the remote shell). */
export function sshArgv(cfg: SshAdapterConfig, user: string, remote: readonly string[]): string[] {
  if (!USER_RE.test(user)) throw new SchedulerError(`invalid user name: ${user}`);
  if (!HOST_RE.test(cfg.host)) throw new SchedulerError(`invalid ssh host: ${cfg.host}`);
  const argv = [
    cfg.sshCommand,
    '-T',
    '-p',
    String(cfg.port),
    '-o',
    'BatchMode=yes',
    '-o',
    'ConnectTimeout=10',
    '-o',
    'ServerAliveInterval=15',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'LogLevel=ERROR',
  ];
  if (cfg.knownHostsFile) argv.push('-o', `UserKnownHostsFile=${cfg.knownHostsFile}`);
  if (cfg.keyFile) argv.push('-o', 'IdentitiesOnly=yes', '-i', cfg.keyFile.replaceAll('{user}', user));
  // ssh joins the remote words with spaces for the remote user's shell: quote each one.
  argv.push('-l', user, '--', cfg.host, remote.map(shellQuote).join(' '));
  return argv;
}

/** The script `bash -s` reads on the host: environment, log redirect, setup, then the detached agent. */
export function buildLaunchScript(
  sub: SessionSubmission,
  opts: { deadlineMs: number; address: string; path?: string; logDir?: string },
): string {
  const q = shellQuote;
  const id = sub.identity;
  const lines = [
    'umask 077',
    `export HOME=${q(id.home)} USER=${q(id.user)} LOGNAME=${q(id.user)} SHELL=${q(id.shell)}`,
    `export PATH=${q(opts.path ?? '/usr/local/bin:/usr/bin:/bin')} LANG=C.UTF-8`,
    'unset SSH_CLIENT SSH_CONNECTION SSH_ORIGINAL_COMMAND',
    `__atrium_log="$HOME"/${q(opts.logDir ?? '.atrium/logs')}`,
    'mkdir -p -m 700 "$__atrium_log" || { echo "atrium-error: cannot create $__atrium_log"; exit 1; }',
    `__atrium_log="$__atrium_log"/${q(`session-${sub.sessionId}.log`)}`,
    'cd "$HOME" || { echo "atrium-error: cannot enter $HOME"; exit 1; }',
    `export ATRIUM_SESSION_ID=${q(sub.sessionId)} ATRIUM_DEADLINE=${q(String(opts.deadlineMs))}`,
    `export ATRIUM_CPUS=${q(String(sub.cores))} ATRIUM_ADVERTISE_HOST=${q(opts.address)}`,
  ];
  for (const [k, v] of Object.entries(sub.agentEnv)) lines.push(`export ${k}=${q(v)}`);
  const marker = [
    `--atrium-session=${sub.tag}`,
    `--atrium-deadline=${Math.floor(opts.deadlineMs / 1000)}`,
    `--atrium-resources=${sub.cores},${sub.memoryMb},${sub.gpus}`,
  ];
  // A background subshell: not a process group leader, so setsid does not fork and `exec` keeps the
  // PID that $! names. Nothing of it holds the ssh channel open.
  lines.push(
    '(',
    `  echo "atrium: session ${sub.sessionId} started over ssh on $(hostname) at $(date -u +%Y-%m-%dT%H:%M:%SZ)"`,
    ...setupLines(sub.setup ?? []),
    `  exec setsid ${[...sub.agentArgv, ...marker].map(q).join(' ')}`,
    ') </dev/null >>"$__atrium_log" 2>&1 &',
    'echo "atrium-pid: $!"',
  );
  return `${lines.join('\n')}\n`;
}

interface HostFacts {
  cpus: number;
  memoryMb: number;
}

/** Reads the poll's output: agents (by their marker arguments) and the host's size. */
export function parsePollOutput(
  out: string,
  nowSec: number,
): { agents: { job: JobInfo; deadline: number }[]; host?: HostFacts } {
  const [procs = '', facts = ''] = out.split(`${HOST_SECTION}\n`);
  const agents: { job: JobInfo; deadline: number }[] = [];
  for (const line of procs.split('\n')) {
    const m = /^\s*(\d+)\s+(\S+)\s+(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const [, pid, user, etimes, args] = m as unknown as [string, string, string, string, string];
    const mk = MARKER_RE.exec(args);
    // Sessions never run as root: a root process with the marker is not ours.
    if (!mk || user === 'root') continue;
    const [, tag, deadline, cores, mem, gpus] = mk as unknown as [
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    const start = nowSec - Number(etimes);
    const job: JobInfo = {
      jobId: pid,
      name: `atrium-${tag}`,
      user,
      state: 'running',
      rawState: 'RUNNING',
      comment: tag,
      cpus: Number(cores),
      memoryMb: Number(mem),
      gpus: Number(gpus),
      submitTime: start,
      startTime: start,
      timeLimitMinutes: Math.max(1, Math.round((Number(deadline) - start) / 60)),
    };
    agents.push({ job, deadline: Number(deadline) });
  }
  const [cpus, memKb] = facts.trim().split('\n').map(Number);
  const host =
    cpus && memKb && Number.isFinite(cpus) && Number.isFinite(memKb)
      ? { cpus, memoryMb: Math.floor(memKb / 1024) }
      : undefined;
  return { agents, host };
}

const POLL_SCRIPT = [
  'LC_ALL=C ps -e -ww -o pid=,user:64=,etimes=,args= || exit 1',
  `echo ${HOST_SECTION}`,
  'nproc',
  "awk '/^MemTotal:/ {print $2}' /proc/meminfo",
].join('\n');

export class SshAdapter implements SchedulerAdapter {
  readonly kind = 'ssh' as const;
  readonly cluster: string;
  readonly runner: CommandRunner;
  private readonly cfg: SshAdapterConfig;
  private readonly address: string;
  private last: PollSnapshot | null = null;
  /** Agents seen running, kept after they vanish so the gateway learns they ended (not "unknown"). */
  private readonly known = new Map<string, JobInfo & { deadline: number }>();
  private readonly cancelled = new Set<string>();

  constructor(config: SshAdapterConfig, runner?: CommandRunner) {
    this.cfg = { ...config };
    this.cluster = config.name;
    this.address = config.address ?? config.host;
    this.runner = runner ?? new ExecRunner({ timeoutMs: config.commandTimeoutMs });
  }

  private ssh(user: string, remote: string[], input?: string, label = 'ssh'): Promise<RunResult> {
    return this.runner.run(sshArgv(this.cfg, user, remote), {
      timeoutMs: this.cfg.commandTimeoutMs,
      label,
      ...(input !== undefined ? { input } : {}),
    });
  }

  private validateIdentity(id: UnixIdentity): void {
    if (!USER_RE.test(id.user)) throw new SchedulerError(`invalid user name: ${id.user}`);
    if (id.uid === 0 || id.user === 'root') throw new SchedulerError('refusing to run work as root');
    if (!id.home.startsWith('/') || /[\0\n]/.test(id.home))
      throw new SchedulerError('home must be an absolute path');
    if (!id.shell.startsWith('/') || /[\0\n]/.test(id.shell))
      throw new SchedulerError('shell must be an absolute path');
  }

  private validate(sub: SessionSubmission): void {
    this.validateIdentity(sub.identity);
    if (!TAG_RE.test(sub.sessionId)) throw new SchedulerError('invalid session id');
    if (!TAG_RE.test(sub.tag)) throw new SchedulerError('invalid tag');
    const whole = (v: number, min: number) => Number.isInteger(v) && v >= min && v <= 1_000_000_000;
    if (!whole(sub.cores, 1)) throw new SchedulerError('cores must be a whole number >= 1', 'cores');
    if (!whole(sub.memoryMb, 1)) throw new SchedulerError('memory must be a whole number of MB', 'memory');
    if (!whole(sub.gpus, 0)) throw new SchedulerError('gpus must be a whole number >= 0', 'gpus');
    if (!whole(sub.minutes, 1)) throw new SchedulerError('time must be at least one minute', 'hours');
    if (sub.agentArgv.length === 0 || !sub.agentArgv[0]) throw new SchedulerError('empty agent argv');
    for (const a of sub.agentArgv) if (a.includes('\0')) throw new SchedulerError('NUL byte in agent argv');
    for (const [k, v] of Object.entries(sub.agentEnv)) {
      if (!ENV_NAME_RE.test(k)) throw new SchedulerError(`invalid environment variable name: ${k}`);
      if (v.includes('\0')) throw new SchedulerError(`NUL byte in environment variable ${k}`);
    }
  }

  private findTag(snap: PollSnapshot | null, sub: SessionSubmission): JobInfo | undefined {
    return snap?.jobs.find(
      (j) => j.comment === sub.tag && j.user === sub.identity.user && j.state === 'running',
    );
  }

  async submitSession(sub: SessionSubmission): Promise<SubmitResult> {
    this.validate(sub);
    const earlier = this.findTag(this.last, sub);
    if (earlier) return { jobId: earlier.jobId, adopted: true };
    const deadlineMs = Date.now() + sub.minutes * 60_000;
    const script = buildLaunchScript(sub, {
      deadlineMs,
      address: this.address,
      ...(this.cfg.sessionPath ? { path: this.cfg.sessionPath } : {}),
      ...(this.cfg.logDir ? { logDir: this.cfg.logDir } : {}),
    });
    const r = await this.ssh(sub.identity.user, ['/bin/bash', '-s'], script, 'ssh-launch');
    const pid = /^atrium-pid: (\d+)$/m.exec(r.stdout)?.[1];
    if (succeeded(r) && pid) return { jobId: pid };
    const remoteError = /^atrium-error: (.*)$/m.exec(r.stdout)?.[1];
    if (remoteError) throw new SchedulerError(`${this.cfg.host}: ${remoteError}`);
    if (r.code === 255 && /Permission denied|Host key verification failed/i.test(r.stderr)) {
      throw new SchedulerError(
        `cannot log in to ${this.cfg.host} as ${sub.identity.user}: ${lastLine(r.stderr)}`,
      );
    }
    // Timed out or cut off: did the agent start anyway?
    const found = this.findTag(await this.poll(), sub);
    if (found) return { jobId: found.jobId, adopted: true };
    throw new SchedulerError(`starting the session over ssh failed: ${describeFailure(r)}`);
  }

  async cancel(identity: UnixIdentity, jobId: string): Promise<void> {
    this.validateIdentity(identity);
    await this.kill(identity.user, jobId);
  }

  /** SIGTERM to the agent, as its owner (the agent stops its apps, then exits). */
  private async kill(user: string, jobId: string): Promise<void> {
    if (!PID_RE.test(jobId)) throw new SchedulerError(`invalid job id: ${jobId}`);
    if (user === 'root') throw new SchedulerError('refusing to act as root');
    const r = await this.ssh(user, ['kill', '-TERM', jobId], undefined, 'ssh-cancel');
    if (succeeded(r)) {
      this.cancelled.add(jobId);
      return;
    }
    const err = `${r.stderr}\n${r.stdout}`;
    if (!r.timedOut && r.error === undefined && r.code !== 255 && /No such process/i.test(err)) return;
    if (/Operation not permitted/i.test(err)) {
      throw new SchedulerError(`not allowed to stop process ${jobId} as ${user}`);
    }
    throw new SchedulerError(describeFailure(r));
  }

  async poll(): Promise<PollSnapshot> {
    const now = Date.now();
    const nowSec = Math.floor(now / 1000);
    const r = await this.ssh(this.cfg.pollUser, ['/bin/sh', '-c', POLL_SCRIPT], undefined, 'ssh-poll');
    if (!succeeded(r) || !r.stdout.includes(HOST_SECTION)) {
      const snap: PollSnapshot = {
        ok: false,
        error: describeFailure(r),
        at: nowSec,
        jobs: [],
        nodes: [],
        calls: 1,
      };
      this.last = snap;
      return snap;
    }
    const { agents, host } = parsePollOutput(r.stdout, nowSec);
    const jobs = agents.map((a) => a.job);
    const alive = new Set(jobs.map((j) => j.jobId));
    for (const { job, deadline } of agents) {
      job.nodes = this.cfg.host;
      job.nodeAddress = this.address;
      this.known.set(job.jobId, { ...job, deadline });
      // Safety net: the agent stops itself at its deadline; past a grace minute it is stopped here.
      if (nowSec > deadline + 60) void this.kill(job.user, job.jobId).catch(() => undefined);
    }
    // Agents that were seen and are gone: finished (shown for a while, like a scheduler's MinJobAge).
    const keepSec = this.cfg.keepFinishedSeconds ?? 300;
    for (const [id, k] of this.known) {
      if (alive.has(id)) continue;
      if (k.state === 'running') {
        k.state = this.cancelled.has(id) ? 'cancelled' : nowSec >= k.deadline - 1 ? 'timeout' : 'completed';
        k.rawState = k.state.toUpperCase();
        k.endTime = nowSec;
        k.nodeAddress = undefined;
      }
      if (nowSec - (k.endTime ?? nowSec) > keepSec) {
        this.known.delete(id);
        this.cancelled.delete(id);
        continue;
      }
      const { deadline: _deadline, ...finished } = k;
      jobs.push(finished);
    }
    const running = jobs.filter((j) => j.state === 'running');
    const node: NodeInfo = {
      name: this.cfg.host,
      address: this.address,
      state: running.length > 0 ? 'mixed' : 'idle',
      partitions: [],
      cpus: host?.cpus ?? 1,
      allocCpus: Math.min(
        host?.cpus ?? 1,
        running.reduce((s, j) => s + (j.cpus ?? 0), 0),
      ),
      memoryMb: host?.memoryMb ?? 1024,
      allocMemoryMb: running.reduce((s, j) => s + (j.memoryMb ?? 0), 0),
      gpus: 0,
      allocGpus: 0,
    };
    const snap: PollSnapshot = { ok: true, at: nowSec, jobs, nodes: [node], calls: 1 };
    this.last = snap;
    return snap;
  }

  async clusterInfo(): Promise<ClusterInfo> {
    return { name: this.cluster, partitions: [], reservations: [], hasAccounting: false };
  }
}

function lastLine(s: string): string {
  return s.trim().split('\n').filter(Boolean).pop() ?? '';
}

/** Factory for the cluster registry (src/scheduler/backends.ts). */
export function sshAdapterFromConfig(cfg: ClusterConfig): SshAdapter {
  const s = cfg.ssh!;
  return new SshAdapter({
    name: cfg.name,
    host: s.host,
    port: s.port,
    keyFile: s.keyFile,
    knownHostsFile: s.knownHostsFile,
    address: s.address,
    sshCommand: s.sshCommand,
    pollUser: s.pollUser ?? os.userInfo().username,
    commandTimeoutMs: s.commandTimeoutSeconds * 1000,
  });
}
