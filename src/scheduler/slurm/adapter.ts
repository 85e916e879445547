// Slurm backend: sbatch/scancel as the user (runuser or sudo), one squeue + one sinfo per poll.
import { randomBytes } from 'node:crypto';
import type { JobUsage } from '../../core/efficiency.ts';
import type { AssociationUsage } from '../../core/usage.ts';
import {
  type BatchSubmission,
  type ClusterInfo,
  FINISHED_JOB_STATES,
  type JobInfo,
  type NodeInfo,
  type PollSnapshot,
  type ReservationInfo,
  type SchedulerAdapter,
  SchedulerError,
  type SessionSubmission,
  type SubmitResult,
  type UnixIdentity,
} from '../types.ts';
import {
  classifyBatchError,
  defaultDirOf,
  parseClusterName,
  parsePrivateData,
  sbatchBatchArgv,
  showConfigArgv,
  validateBatch,
} from './batch.ts';
import {
  associationsArgv,
  asUser,
  buildBatchScript,
  type LoginEnvironment,
  partitionsArgv,
  type RunAs,
  reservationsArgv,
  sacctArgv,
  sacctUsageArgv,
  sbatchArgv,
  scancelArgv,
  sessionJobName,
  sinfoNodesArgv,
  squeueArgv,
  timeLimitArgv,
} from './commands.ts';
import {
  classifySbatchError,
  expandHostlist,
  parseAssociations,
  parsePartitions,
  parseReservations,
  parseSacct,
  parseSacctUsage,
  parseSbatchJobId,
  parseSinfoNodes,
  parseSqueue,
  type SacctRecord,
  separatorsFor,
} from './parse.ts';
import {
  type CommandRunner,
  describeFailure,
  ExecRunner,
  type RunOptions,
  type RunResult,
  succeeded,
} from './runner.ts';
import { parseSshare, sshareArgv } from './sshare.ts';

export interface SlurmAdapterConfig {
  /** The gateway's name for this cluster (SchedulerAdapter.cluster). */
  name: string;
  /** SLURM_CONF for every command; unset = Slurm's default (/etc/slurm/slurm.conf or configless). */
  slurmConf?: string;
  /** How sbatch/scancel run as the user: runuser (gateway is root), sudo -n, or none (gateway is the user). */
  runAs: RunAs;
  /** Directory of the Slurm commands; unset = looked up in PATH. */
  binDir?: string;
  /** Timeout of every Slurm command (ms). */
  commandTimeoutMs: number;
  /** Partition when a submission names none (else Slurm's default partition). */
  partition?: string;
  /** Timeout of sbatch (ms); default commandTimeoutMs. */
  submitTimeoutMs?: number;
  /**
   * Look for a job with the submission's tag before running sbatch (one squeue filtered by user and
   * job name), so a retried submit adopts the job of an earlier attempt. Default true.
   */
  adoptBeforeSubmit?: boolean;
  /** Slurm's ClusterName, to restrict the sacctmgr association listing to this cluster. */
  clusterName?: string;
  /** PATH inside sessions before `setup` runs. */
  sessionPath?: string;
  /** LANG inside sessions. Default C.UTF-8. */
  sessionLang?: string;
  /** Session log directory relative to HOME. Default .atrium/logs */
  logDir?: string;
  /** Where a session's login environment comes from; default `shell` (LoginEnvironment). */
  loginEnvironment?: LoginEnvironment;
}

const USER_RE = /^[a-z_][a-z0-9_.-]{0,31}\$?$/i;
const SESSION_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$/;
const NODELIST_RE = /^[A-Za-z0-9_][A-Za-z0-9_.,[\]-]{0,1023}$/;
const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const JOB_ID_RE = /^\d+(?:_\d+)?$/;

const CANCEL_GONE = /Invalid job id specified|Job\/step already completing or completed|already completed/i;

export class SlurmAdapter implements SchedulerAdapter {
  readonly kind = 'slurm' as const;
  readonly cluster: string;
  readonly runner: CommandRunner;
  private readonly cfg: SlurmAdapterConfig;
  private lastNodes: NodeInfo[] = [];

  constructor(config: SlurmAdapterConfig, runner?: CommandRunner) {
    this.cfg = { ...config };
    this.cluster = config.name;
    this.runner = runner ?? new ExecRunner({ timeoutMs: config.commandTimeoutMs });
  }

  /** Environment of every Slurm command: SLURM_CONF, epoch time stamps, UTC. */
  private env(): Record<string, string> {
    const env: Record<string, string> = { SLURM_TIME_FORMAT: '%s', TZ: 'UTC' };
    if (this.cfg.slurmConf) env.SLURM_CONF = this.cfg.slurmConf;
    return env;
  }

  private run(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
    return this.runner.run(argv, {
      timeoutMs: this.cfg.commandTimeoutMs,
      ...opts,
      env: { ...this.env(), ...opts.env },
    });
  }

  private asUser(argv: string[], identity: UnixIdentity): string[] {
    return asUser(argv, identity.user, this.cfg.runAs, this.cfg.slurmConf);
  }

  // -------------------------------------------------------------------------------------------
  // submit

  async submitSession(sub: SessionSubmission): Promise<SubmitResult> {
    this.validateSubmission(sub);
    if (this.cfg.adoptBeforeSubmit !== false) {
      const found = await this.findByTag(sub);
      if (found.error) throw new SchedulerError(`cannot check for an earlier submit: ${found.error}`);
      if (found.job) return { jobId: found.job.jobId, adopted: true };
    }
    const argv = this.asUser(
      sbatchArgv(sub, {
        ...(this.cfg.binDir ? { binDir: this.cfg.binDir } : {}),
        ...(this.cfg.partition ? { defaultPartition: this.cfg.partition } : {}),
        ...(this.cfg.slurmConf ? { slurmConf: this.cfg.slurmConf } : {}),
        ...(this.cfg.loginEnvironment ? { loginEnvironment: this.cfg.loginEnvironment } : {}),
        emptyEnv: this.cfg.runAs !== 'sudo',
      }),
      sub.identity,
    );
    const script = buildBatchScript(sub, {
      ...(this.cfg.sessionPath ? { path: this.cfg.sessionPath } : {}),
      ...(this.cfg.sessionLang ? { lang: this.cfg.sessionLang } : {}),
      ...(this.cfg.logDir ? { logDir: this.cfg.logDir } : {}),
      ...(this.cfg.loginEnvironment ? { loginEnvironment: this.cfg.loginEnvironment } : {}),
    });
    const r = await this.run(argv, {
      input: script,
      // Under sudo, sbatch's environment is sudo's (reset) one, which would keep the adapter's TZ and
      // export it into the session (--export=ALL): the session keeps the node's time zone.
      env: { TZ: undefined, SLURM_TIME_FORMAT: undefined },
      label: 'sbatch',
      timeoutMs: this.cfg.submitTimeoutMs ?? this.cfg.commandTimeoutMs,
    });
    if (succeeded(r)) {
      const jobId = parseSbatchJobId(r.stdout);
      if (jobId) return { jobId };
    }
    // Failed, timed out, or no job id printed: was the job created anyway?
    const failure =
      r.timedOut || r.error !== undefined || r.code === 0
        ? { message: describeFailure(r), definite: false as const }
        : classifySbatchError(r.stderr, { gpus: sub.gpus, ...this.guessNodeConfigField(sub) });
    if (failure.definite) {
      throw new SchedulerError(failure.message, failure.field);
    }
    const found = await this.findByTag(sub);
    if (found.job) return { jobId: found.job.jobId, adopted: true };
    const why = found.error ? `; looking for it failed too: ${found.error}` : '; no job with its tag exists';
    throw new SchedulerError(`submit failed: ${failure.message}${why}`);
  }

  /**
   * The job of an earlier attempt of this submission: same user, job name and comment (tag). Jobs that
   * Slurm refused at submit (FAILED without ever getting a node, e.g. BadConstraints) do not count.
   */
  async findByTag(
    sub: Pick<SessionSubmission, 'identity' | 'sessionId' | 'tag'>,
  ): Promise<{ job?: JobInfo; error?: string }> {
    const sep = separatorsFor(randomBytes(8).toString('hex'));
    const argv = squeueArgv(sep, {
      ...(this.cfg.binDir ? { binDir: this.cfg.binDir } : {}),
      user: sub.identity.user,
      name: sessionJobName(sub.sessionId),
    });
    const r = await this.run(argv, { label: 'squeue' });
    if (!succeeded(r)) return { error: describeFailure(r) };
    const { jobs } = parseSqueue(r.stdout, sep);
    const mine = jobs
      .filter((j) => j.user === sub.identity.user && j.comment === sub.tag)
      .sort((a, b) => Number(b.jobId.split('_')[0]) - Number(a.jobId.split('_')[0]));
    const live = mine.find((j) => !FINISHED_JOB_STATES.has(j.state));
    if (live) return { job: live };
    const ran = mine.find((j) => j.nodes !== undefined && j.startTime !== undefined);
    return ran ? { job: ran } : {};
  }

  /** For "Requested node configuration is not available": which field is most likely at fault. */
  private guessNodeConfigField(sub: SessionSubmission): { guess?: 'cores' | 'gpus' } {
    const nodes = this.lastNodes.filter((n) => !sub.partition || n.partitions.includes(sub.partition));
    if (nodes.length === 0) return {};
    if (sub.gpus > 0 && !nodes.some((n) => n.gpus >= sub.gpus)) return { guess: 'gpus' };
    if (!nodes.some((n) => n.cpus >= sub.cores)) return { guess: 'cores' };
    if (sub.gpus > 0 && !nodes.some((n) => n.gpus >= sub.gpus && n.cpus >= sub.cores))
      return { guess: 'gpus' };
    return {};
  }

  private validateSubmission(sub: SessionSubmission): void {
    this.validateIdentity(sub.identity);
    if (!SESSION_ID_RE.test(sub.sessionId)) throw new SchedulerError('invalid session id');
    if (!sub.tag || sub.tag.length > 200 || /[\s\p{Cc}]/u.test(sub.tag))
      throw new SchedulerError('invalid tag');
    const posInt = (v: number, min: number) => Number.isInteger(v) && v >= min && v <= 1_000_000_000;
    if (!posInt(sub.cores, 1)) throw new SchedulerError('cores must be a whole number >= 1', 'cores');
    if (!posInt(sub.memoryMb, 1))
      throw new SchedulerError('memory must be a whole number of MB >= 1', 'memory');
    if (!posInt(sub.gpus, 0)) throw new SchedulerError('gpus must be a whole number >= 0', 'gpus');
    if (!posInt(sub.minutes, 1)) throw new SchedulerError('time must be at least one minute', 'hours');
    for (const [field, v] of [
      ['partition', sub.partition ?? this.cfg.partition],
      ['account', sub.account],
      ['reservation', sub.reservation],
    ] as const) {
      if (v !== undefined && !NAME_RE.test(v)) throw new SchedulerError(`invalid ${field} name`, field);
    }
    if (sub.nodelist !== undefined && !NODELIST_RE.test(sub.nodelist))
      throw new SchedulerError('invalid node list');
    if (sub.agentArgv.length === 0 || !sub.agentArgv[0]) throw new SchedulerError('empty agent argv');
    for (const a of sub.agentArgv) if (a.includes('\0')) throw new SchedulerError('NUL byte in agent argv');
    for (const [k, v] of Object.entries(sub.agentEnv)) {
      if (!ENV_NAME_RE.test(k)) throw new SchedulerError(`invalid environment variable name: ${k}`);
      if (v.includes('\0')) throw new SchedulerError(`NUL byte in environment variable ${k}`);
    }
  }

  private validateIdentity(id: UnixIdentity): void {
    if (!USER_RE.test(id.user)) throw new SchedulerError(`invalid user name: ${id.user}`);
    if (id.uid === 0 || id.user === 'root') throw new SchedulerError('refusing to run work as root');
    if (!id.home.startsWith('/') || id.home.includes('\0'))
      throw new SchedulerError('home must be an absolute path');
    if (!id.shell.startsWith('/') || /[\0\n]/.test(id.shell))
      throw new SchedulerError('shell must be an absolute path');
    if (this.cfg.runAs === 'none' && typeof process.getuid === 'function' && process.getuid() !== id.uid) {
      throw new SchedulerError(
        `runAs 'none' can only act for the gateway's own user (uid ${process.getuid()})`,
      );
    }
  }

  // -------------------------------------------------------------------------------------------
  // batch jobs

  /**
   * sbatch as the user: by path (the path is an argument, so sbatch opens the file with the user's
   * rights: a script the user cannot read is refused with sbatch's own "Unable to open file") or by
   * text (on stdin). Without a working directory from the form, sbatch runs in the script's directory
   * (or the home), so a `#SBATCH --chdir` line still decides.
   */
  async submitBatch(sub: BatchSubmission): Promise<SubmitResult> {
    this.validateIdentity(sub.identity);
    validateBatch(sub);
    const bin = this.cfg.binDir ? { binDir: this.cfg.binDir } : {};
    const cwd = sub.workDir === undefined ? defaultDirOf(sub) : undefined;
    const opts = (dir: string | undefined): RunOptions => ({
      label: 'sbatch',
      timeoutMs: this.cfg.submitTimeoutMs ?? this.cfg.commandTimeoutMs,
      ...(sub.script !== undefined ? { input: sub.script } : {}),
      ...(dir !== undefined ? { cwd: dir } : {}),
    });
    let r = await this.run(this.asUser(sbatchBatchArgv(sub, bin), sub.identity), opts(cwd));
    if (
      cwd !== undefined &&
      r.code === null &&
      r.error !== undefined &&
      /ENOENT|EACCES|ENOTDIR/.test(r.error)
    ) {
      // The gateway could not enter that directory itself (e.g. a home on NFS with root squash): let
      // sbatch, as the user, take it as --chdir instead.
      r = await this.run(
        this.asUser(sbatchBatchArgv({ ...sub, workDir: cwd }, bin), sub.identity),
        opts(undefined),
      );
    }
    if (succeeded(r)) {
      const jobId = parseSbatchJobId(r.stdout);
      if (jobId) return { jobId };
    }
    const failure =
      r.timedOut || r.error !== undefined || r.code === 0
        ? { message: describeFailure(r), definite: false as const, field: undefined }
        : classifyBatchError(r.stderr, sub);
    if (failure.definite || !sub.tag) throw new SchedulerError(failure.message, failure.field);
    // The outcome is unknown (timeout, controller unreachable): was the job created anyway?
    const sep = separatorsFor(randomBytes(8).toString('hex'));
    const q = await this.run(squeueArgv(sep, { ...bin, user: sub.identity.user }), { label: 'squeue' });
    if (succeeded(q)) {
      const found = parseSqueue(q.stdout, sep).jobs.find(
        (j) =>
          j.user === sub.identity.user &&
          j.comment === sub.tag &&
          !(j.state === 'failed' && j.nodes === undefined && j.startTime === undefined),
      );
      if (found) return { jobId: found.jobId, adopted: true };
    }
    throw new SchedulerError(
      `submit failed: ${failure.message}; ${succeeded(q) ? 'no job with its tag exists' : `looking for it failed too: ${describeFailure(q)}`}`,
    );
  }

  // -------------------------------------------------------------------------------------------
  // cancel

  async cancel(identity: UnixIdentity, jobId: string): Promise<void> {
    this.validateIdentity(identity);
    if (!JOB_ID_RE.test(jobId)) throw new SchedulerError(`invalid job id: ${jobId}`);
    const argv = this.asUser(
      scancelArgv(jobId, this.cfg.binDir ? { binDir: this.cfg.binDir } : {}),
      identity,
    );
    const r = await this.run(argv, { label: 'scancel' });
    // scancel exits 0 on some errors: its stderr tells.
    const err = r.stderr.trim();
    if (succeeded(r) && !/error/i.test(err)) return;
    if (!r.timedOut && r.error === undefined && CANCEL_GONE.test(err) && !/permission denied/i.test(err))
      return;
    if (/permission denied|Access\/permission denied/i.test(err)) {
      throw new SchedulerError(`not allowed to cancel job ${jobId} as ${identity.user}`);
    }
    throw new SchedulerError(describeFailure(r));
  }

  // -------------------------------------------------------------------------------------------
  // time limit

  /** As the gateway (a Slurm operator or root): users may lower their own limits only. */
  async setTimeLimit(jobId: string, totalMinutes: number): Promise<void> {
    if (!JOB_ID_RE.test(jobId)) throw new SchedulerError(`invalid job id: ${jobId}`);
    if (!Number.isInteger(totalMinutes) || totalMinutes < 1 || totalMinutes > 1_000_000_000)
      throw new SchedulerError('the time limit must be a whole number of minutes', 'minutes');
    const argv = timeLimitArgv(jobId, totalMinutes, this.cfg.binDir ? { binDir: this.cfg.binDir } : {});
    const r = await this.run(argv, { label: 'scontrol' });
    const err = r.stderr.trim();
    if (succeeded(r) && !/error/i.test(err)) return;
    if (/access.*denied|permission denied|not authorized/i.test(err))
      throw new SchedulerError(
        'the gateway may not change time limits: it must be a Slurm operator (sacctmgr modify user <gateway user> set adminlevel=operator)',
      );
    throw new SchedulerError(describeFailure(r));
  }

  // -------------------------------------------------------------------------------------------
  // poll

  async poll(): Promise<PollSnapshot> {
    const at = Math.floor(Date.now() / 1000);
    const sep = separatorsFor(randomBytes(8).toString('hex'));
    const bin = this.cfg.binDir ? { binDir: this.cfg.binDir } : {};
    const [q, s] = await Promise.all([
      this.run(squeueArgv(sep, bin), { label: 'squeue' }),
      this.run(sinfoNodesArgv(sep, bin), { label: 'sinfo' }),
    ]);
    const calls = 2;
    const fail = (error: string): PollSnapshot => ({ ok: false, error, at, jobs: [], nodes: [], calls });
    if (!succeeded(q)) return fail(describeFailure(q));
    if (!succeeded(s)) return fail(describeFailure(s));
    const pj = parseSqueue(q.stdout, sep);
    if (pj.bad > 0) return fail(`squeue printed ${pj.bad} unreadable record(s)`);
    const pn = parseSinfoNodes(s.stdout, sep);
    if (pn.bad > 0) return fail(`sinfo printed ${pn.bad} unreadable record(s)`);
    const addr = new Map(pn.nodes.map((n) => [n.name, n.address]));
    for (const job of pj.jobs) {
      if (!job.nodes || !(job.state === 'running' || job.state === 'completing' || job.state === 'suspended'))
        continue;
      const first = expandHostlist(job.nodes)[0];
      const a = first !== undefined ? addr.get(first) : undefined;
      if (a) job.nodeAddress = a;
    }
    this.lastNodes = pn.nodes;
    return { ok: true, at, jobs: pj.jobs, nodes: pn.nodes, calls };
  }

  // -------------------------------------------------------------------------------------------
  // cluster info

  async clusterInfo(): Promise<ClusterInfo> {
    const bin = this.cfg.binDir ? { binDir: this.cfg.binDir } : {};
    const [p, reservations, a, conf] = await Promise.all([
      this.run(partitionsArgv(bin), { label: 'scontrol' }),
      this.reservations(),
      this.run(
        associationsArgv({ ...bin, ...(this.cfg.clusterName ? { clusterName: this.cfg.clusterName } : {}) }),
        { label: 'sacctmgr' },
      ),
      this.run(showConfigArgv(bin), { label: 'scontrol' }),
    ]);
    if (!succeeded(p)) throw new SchedulerError(describeFailure(p));
    const info: ClusterInfo = {
      name: this.cluster,
      partitions: parsePartitions(p.stdout),
      reservations,
      hasAccounting: false,
    };
    // PrivateData (what ordinary users may not see); left undefined when unknown.
    const privateData = succeeded(conf) ? parsePrivateData(conf.stdout) : undefined;
    if (privateData !== undefined) info.privateData = privateData;
    if (succeeded(a)) {
      // slurmdbd lists the associations of every cluster it serves: only this one's count.
      const clusterName =
        this.cfg.clusterName ?? (succeeded(conf) ? parseClusterName(conf.stdout) : undefined);
      if (clusterName === undefined)
        throw new SchedulerError(
          `cannot tell this cluster's ClusterName: ${succeeded(conf) ? 'none in scontrol show config' : describeFailure(conf)}`,
        );
      info.hasAccounting = true;
      info.accountsByUser = parseAssociations(a.stdout, clusterName);
    } else if (!NO_ACCOUNTING.test(a.stderr) && !NO_ACCOUNTING.test(a.stdout)) {
      // Accounting is configured but slurmdbd did not answer: say so rather than "no accounting".
      throw new SchedulerError(`accounting is configured but unavailable: ${describeFailure(a)}`);
    }
    return info;
  }

  async reservations(): Promise<ReservationInfo[]> {
    const r = await this.run(reservationsArgv(this.cfg.binDir ? { binDir: this.cfg.binDir } : {}), {
      label: 'scontrol',
    });
    if (!succeeded(r)) throw new SchedulerError(describeFailure(r));
    return parseReservations(r.stdout);
  }

  /** Exit codes and end states from sacct for these jobs (one call). Empty map without accounting. */
  async jobRecords(jobIds: readonly string[]): Promise<Map<string, SacctRecord>> {
    return fetchJobRecords(this.runner, this.cfg, jobIds);
  }

  /**
   * What these ended jobs used, from one sacct call for every user (as the operator). null: the cluster
   * keeps no accounting. Throws SchedulerError when sacct fails.
   */
  async jobUsage(jobIds: readonly string[]): Promise<Map<string, JobUsage> | null> {
    const ids = [...new Set(jobIds)];
    for (const id of ids) if (!JOB_ID_RE.test(id)) throw new SchedulerError(`invalid job id: ${id}`);
    if (ids.length === 0) return new Map();
    const bin = this.cfg.binDir ? { binDir: this.cfg.binDir } : {};
    const r = await this.run(sacctUsageArgv(ids, bin), { label: 'sacct' });
    if (!succeeded(r)) {
      if (NO_ACCOUNTING.test(r.stderr)) return null;
      throw new SchedulerError(describeFailure(r));
    }
    return parseSacctUsage(r.stdout);
  }

  /** Every association's usage, limit and fair share: one sshare for the whole cluster. */
  async accountUsage(): Promise<AssociationUsage[]> {
    const r = await this.run(sshareArgv(this.cfg.binDir ? { binDir: this.cfg.binDir } : {}), {
      label: 'sshare',
    });
    // No accounting, no associations: nothing to show rather than an error every refresh.
    if (!succeeded(r) && NO_ACCOUNTING.test(`${r.stderr}\n${r.stdout}`)) return [];
    if (!succeeded(r)) throw new SchedulerError(describeFailure(r));
    try {
      return parseSshare(r.stdout);
    } catch (e) {
      throw new SchedulerError((e as Error).message);
    }
  }

  async close(): Promise<void> {}
}

const NO_ACCOUNTING =
  /accounting storage is disabled|not running a supported accounting_storage plugin|accounting_storage\/none/i;

/**
 * sacct for a set of jobs in one call (batch-job history): job id -> state, exit code, times.
 * Returns an empty map when the cluster has no accounting. Throws SchedulerError when sacct fails.
 */
export async function fetchJobRecords(
  runner: CommandRunner,
  cfg: Pick<SlurmAdapterConfig, 'binDir' | 'slurmConf' | 'commandTimeoutMs'>,
  jobIds: readonly string[],
): Promise<Map<string, SacctRecord>> {
  const ids = [...new Set(jobIds)];
  const res = new Map<string, SacctRecord>();
  if (ids.length === 0) return res;
  for (const id of ids) if (!JOB_ID_RE.test(id)) throw new SchedulerError(`invalid job id: ${id}`);
  const env: Record<string, string> = { SLURM_TIME_FORMAT: '%s', TZ: 'UTC' };
  if (cfg.slurmConf) env.SLURM_CONF = cfg.slurmConf;
  const r = await runner.run(sacctArgv(ids, cfg.binDir ? { binDir: cfg.binDir } : {}), {
    env,
    timeoutMs: cfg.commandTimeoutMs,
    label: 'sacct',
  });
  if (!succeeded(r)) {
    if (NO_ACCOUNTING.test(r.stderr)) return res;
    throw new SchedulerError(describeFailure(r));
  }
  for (const rec of parseSacct(r.stdout)) res.set(rec.jobId, rec);
  return res;
}

/** Exit codes only: job id -> exit code (128+signal when killed), for the jobs sacct knows. One call. */
export async function fetchExitCodes(
  runner: CommandRunner,
  cfg: Pick<SlurmAdapterConfig, 'binDir' | 'slurmConf' | 'commandTimeoutMs'>,
  jobIds: readonly string[],
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const [id, rec] of await fetchJobRecords(runner, cfg, jobIds)) {
    if (rec.exitCode !== undefined) out.set(id, rec.exitCode);
  }
  return out;
}
