// argv builders for the Slurm commands the adapter runs, and the batch script of a session.
// Everything is argv (no shell); nothing secret goes into argv: agentEnv travels in the script on stdin.
import path from 'node:path';
import { SETUP_FAILED } from '../../core/telling-line.ts';
import type { SessionSubmission, UnixIdentity } from '../types.ts';
import { SACCT_FIELDS, SACCT_USAGE_FIELDS, type Separators, SINFO_FIELDS, SQUEUE_FIELDS } from './parse.ts';
import { DEFAULT_PATH } from './runner.ts';

export type RunAs = 'runuser' | 'sudo' | 'none';

/** Path of a Slurm command: `${binDir}/${name}` or the bare name (looked up in PATH). */
export function slurmBin(name: string, binDir?: string): string {
  return binDir ? path.join(binDir, name) : name;
}

function formatSpec(fields: readonly string[], sep: Separators): string {
  return fields.map((f, i) => `${f}:${i === fields.length - 1 ? sep.record : sep.field}`).join(',');
}

/**
 * squeue listing every job of every user in every state still held by slurmctld (finished ones until
 * MinJobAge). Optional filters are for the adopt-by-tag lookup only.
 */
export function squeueArgv(
  sep: Separators,
  opts: { binDir?: string; user?: string; name?: string } = {},
): string[] {
  const argv = [slurmBin('squeue', opts.binDir), '-h', '-a', '-t', 'all'];
  if (opts.user) argv.push(`--user=${opts.user}`);
  if (opts.name) argv.push(`--name=${opts.name}`);
  argv.push('-O', formatSpec(SQUEUE_FIELDS, sep));
  return argv;
}

/** sinfo, one line per node and partition, with NodeAddr, CPU and memory use and GRES in use. */
export function sinfoNodesArgv(sep: Separators, opts: { binDir?: string } = {}): string[] {
  return [slurmBin('sinfo', opts.binDir), '-h', '-a', '-N', '-O', formatSpec(SINFO_FIELDS, sep)];
}

export function partitionsArgv(opts: { binDir?: string } = {}): string[] {
  return [slurmBin('scontrol', opts.binDir), '-o', 'show', 'partition'];
}

export function reservationsArgv(opts: { binDir?: string } = {}): string[] {
  return [slurmBin('scontrol', opts.binDir), '-o', 'show', 'reservation'];
}

export function associationsArgv(opts: { binDir?: string; clusterName?: string } = {}): string[] {
  const argv = [slurmBin('sacctmgr', opts.binDir), '-nP', 'show', 'assoc'];
  if (opts.clusterName) argv.push(`where`, `cluster=${opts.clusterName}`);
  // The job-count limits tell an expired project (a limit of 0) from an active one; the cluster, last,
  // lets the adapter keep only its own cluster's associations when one slurmdbd serves several.
  argv.push('format=User,Account,GrpJobs,GrpSubmit,MaxJobs,MaxSubmit,Cluster');
  return argv;
}

/** sacct for exit codes of the given jobs (one call). sacct --json's exit codes are wrong in 22.05. */
export function sacctArgv(jobIds: readonly string[], opts: { binDir?: string } = {}): string[] {
  return [
    slurmBin('sacct', opts.binDir),
    '-a',
    '-X',
    '-P',
    '-n',
    '-j',
    jobIds.join(','),
    '-o',
    SACCT_FIELDS.join(','),
  ];
}

/** sacct for what the given ended jobs used, steps included (MaxRSS is per step), for every user. One call. */
export function sacctUsageArgv(jobIds: readonly string[], opts: { binDir?: string } = {}): string[] {
  return [
    slurmBin('sacct', opts.binDir),
    '-a',
    '-P',
    '-n',
    '-j',
    jobIds.join(','),
    '-o',
    SACCT_USAGE_FIELDS.join(','),
  ];
}

/** `scontrol update` of a job's time limit (whole minutes), run as the Slurm operator. */
export function timeLimitArgv(jobId: string, totalMinutes: number, opts: { binDir?: string } = {}): string[] {
  return [slurmBin('scontrol', opts.binDir), 'update', `JobId=${jobId}`, `TimeLimit=${totalMinutes}`];
}

export function scancelArgv(jobId: string, opts: { binDir?: string } = {}): string[] {
  return [slurmBin('scancel', opts.binDir), jobId];
}

/** Job name of a session: lets the adopt lookup filter squeue by --name. */
export function sessionJobName(sessionId: string): string {
  return `atrium-${sessionId}`;
}

/** Where the session's output goes (the batch script redirects itself there, see buildBatchScript). */
export function sessionLogPath(home: string, sessionId: string, logDir = '.atrium/logs'): string {
  return path.posix.join(home, logDir, `session-${sessionId}.log`);
}

/**
 * Where a session's login environment comes from (`slurm.loginEnvironment`):
 * - `shell`: the batch script is a bash login shell (/etc/profile, then ~/.bash_profile, ~/.bash_login
 *   or ~/.profile), and sbatch runs with --export=ALL from an emptied environment (the identity, PATH
 *   and SLURM_CONF only), so nothing of the gateway's reaches the job.
 * - `slurm`: --export=NONE; slurmd loads it with the user's own login shell (`su - user`), as Open
 *   OnDemand does. slurmd waits for that shell in whole seconds (22.05: up to 1 s more per start, about
 *   every other start on the test cluster), which is why it is not the default.
 */
export type LoginEnvironment = 'shell' | 'slurm';

export interface SbatchOptions {
  binDir?: string;
  /** Default `shell`, see LoginEnvironment. */
  loginEnvironment?: LoginEnvironment;
  /** SLURM_CONF to keep in the emptied environment (loginEnvironment `shell`). */
  slurmConf?: string;
  /**
   * Empty sbatch's environment with `env -i` (loginEnvironment `shell`). Not under sudo: sudo resets
   * the environment itself, and a sudo rule admitting env would admit any command.
   */
  emptyEnv?: boolean;
  /** Partition when the submission names none. */
  defaultPartition?: string;
  /** Restrict to these nodes (sbatch --nodelist), e.g. for tests or admin-pinned profiles. */
  nodelist?: string;
}

/** sbatch argv for a session; the script itself goes to stdin (buildBatchScript). */
export function sbatchArgv(sub: SessionSubmission, opts: SbatchOptions = {}): string[] {
  const shell = (opts.loginEnvironment ?? 'shell') === 'shell';
  const argv = [
    // --export=ALL of an environment holding nothing but where Slurm is: the job's SLURM_* and the
    // script's own exports (the gateway's SLURM_TIME_FORMAT, TZ or secrets never reach the session).
    // The identity too, as a login would have it before the profile scripts run (they may use it).
    ...(shell && opts.emptyEnv !== false
      ? [
          'env',
          '-i',
          `PATH=${DEFAULT_PATH}`,
          `HOME=${sub.identity.home}`,
          `USER=${sub.identity.user}`,
          `LOGNAME=${sub.identity.user}`,
          `SHELL=${sub.identity.shell}`,
          ...(opts.slurmConf ? [`SLURM_CONF=${opts.slurmConf}`] : []),
        ]
      : []),
    slurmBin('sbatch', opts.binDir),
    '--parsable',
    shell ? '--export=ALL' : '--export=NONE',
    `--job-name=${sessionJobName(sub.sessionId)}`,
    `--comment=${sub.tag}`,
    '--nodes=1',
    '--ntasks=1',
    `--cpus-per-task=${sub.cores}`,
    `--mem=${sub.memoryMb}M`,
    `--time=${sub.minutes}`,
    `--chdir=${sub.identity.home}`,
    // Slurm opens -o/-e before the script runs and fails the job if the directory is missing; the
    // script creates ~/.atrium/logs and redirects itself there (see docs/slurm.md).
    '--output=/dev/null',
    '--error=/dev/null',
    // A session is interactive: a requeued job would restart the app elsewhere with the user's kernels
    // and unsaved state gone, behind an agent whose one-time secret is spent. A node failure ends it
    // instead (NODE_FAIL, "node X failed"), and the user starts a new one. Batch jobs keep the site's
    // requeue policy (sbatchBatchArgv).
    '--no-requeue',
  ];
  const partition = sub.partition ?? opts.defaultPartition;
  if (partition) argv.push(`--partition=${partition}`);
  if (sub.account) argv.push(`--account=${sub.account}`);
  if (sub.reservation) argv.push(`--reservation=${sub.reservation}`);
  if (sub.gpus > 0) argv.push(`--gres=gpu:${sub.gpus}`);
  const nodelist = sub.nodelist ?? opts.nodelist;
  if (nodelist) argv.push(`--nodelist=${nodelist}`);
  return argv;
}

/** Quote for bash: the value between single quotes, each ' written as '\''. Any byte but NUL is safe. */
export function shellQuote(s: string): string {
  if (s.includes('\0')) throw new Error('NUL byte in a shell word');
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * An environment's setup lines for a bash script: each runs as written, and the first one that fails
 * ends the job after a line naming it (stderr, so in the session's log), so the session fails with
 * that reason rather than start its apps in a half-made environment.
 */
export function setupLines(setup: readonly string[]): string[] {
  const out: string[] = [];
  for (const line of setup) {
    const first = line.split('\n')[0]!.slice(0, 200);
    out.push(
      line,
      `__atrium_rc=$?; [ "$__atrium_rc" -eq 0 ] || { printf '%s (exit %s): %s\\n' ${shellQuote(SETUP_FAILED)} "$__atrium_rc" ${shellQuote(first)} >&2; exit 3; }`,
    );
  }
  return out;
}

export interface ScriptOptions {
  /** PATH of the session before `setup` runs. */
  path?: string;
  lang?: string;
  /** Log directory relative to HOME. Default .atrium/logs */
  logDir?: string;
  /** Default `shell`: the script is a bash login shell (see LoginEnvironment). */
  loginEnvironment?: LoginEnvironment;
}

/**
 * The batch script (sent on sbatch's stdin, never a file and never a command line): a bash login
 * shell (or plain bash when slurmd loads the login environment), the identity environment, the log
 * redirect, the agent's environment, the admin's setup lines, then `exec` of the agent argv.
 */
export function buildBatchScript(sub: SessionSubmission, opts: ScriptOptions = {}): string {
  const id: UnixIdentity = sub.identity;
  const logDir = opts.logDir ?? '.atrium/logs';
  const q = shellQuote;
  const lines: string[] = [
    (opts.loginEnvironment ?? 'shell') === 'shell' ? '#!/bin/bash -l' : '#!/bin/bash',
    `# Atrium session ${sub.sessionId} (generated)`,
    'umask 077',
    `export HOME=${q(id.home)} USER=${q(id.user)} LOGNAME=${q(id.user)} SHELL=${q(id.shell)}`,
    `export PATH=${q(opts.path ?? '/usr/local/bin:/usr/bin:/bin')} LANG=${q(opts.lang ?? 'C.UTF-8')}`,
    `export ATRIUM_SESSION_ID=${q(sub.sessionId)}`,
    // Output: ~/.atrium/logs/session-<id>.log, made by the job (as the user, on the node) with mode 700.
    `__atrium_logdir="$HOME"/${q(logDir)}`,
    'mkdir -p -m 700 "$__atrium_logdir" &&',
    `  exec >>"$__atrium_logdir"/${q(`session-${sub.sessionId}.log`)} 2>&1`,
    'unset __atrium_logdir',
    `echo "atrium: job $SLURM_JOB_ID on \${SLURMD_NODENAME:-?} at $(date -u +%Y-%m-%dT%H:%M:%SZ)"`,
    'cd "$HOME" || exit 1',
    // What the session's own submit left that would follow into jobs sbatch'ed from inside it (export
    // ALL): --export=NONE's mark would make their srun drop the environment, and a --mem'd session's
    // SLURM_MEM_PER_NODE next to a job's SLURM_MEM_PER_CPU makes srun there refuse to start ("mutually
    // exclusive"). srun inside the session still runs in its allocation (docs/jobs.md).
    'unset SLURM_EXPORT_ENV SLURM_MEM_PER_NODE SLURM_MEM_PER_CPU SLURM_MEM_PER_GPU',
  ];
  for (const [k, v] of Object.entries(sub.agentEnv)) {
    lines.push(`export ${k}=${q(v)}`);
  }
  lines.push(...setupLines(sub.setup ?? []));
  lines.push(`exec ${sub.agentArgv.map(q).join(' ')}`);
  return `${lines.join('\n')}\n`;
}

/**
 * Run a command as `user`. runuser (gateway is root) keeps the runner's clean environment, so
 * SLURM_CONF reaches the command; sudo resets the environment, so SLURM_CONF goes on its command
 * line (needs SETENV in sudoers or env_keep, see docs/slurm.md). 'none' runs the command directly.
 */
export function asUser(argv: readonly string[], user: string, runAs: RunAs, slurmConf?: string): string[] {
  switch (runAs) {
    case 'runuser':
      return ['runuser', '-u', user, '--', ...argv];
    case 'sudo':
      return ['sudo', '-n', '-u', user, ...(slurmConf ? [`SLURM_CONF=${slurmConf}`] : []), '--', ...argv];
    case 'none':
      return [...argv];
  }
}
