// The one seam between the gateway and every way of running work (local processes, Slurm, ssh).
// Modelled on Open OnDemand's job adapters: submit, info_all (here: poll), delete (cancel), cluster_info.
import type { Logger } from 'pino';
import type { ClusterConfig } from '../config/schema.ts';

/** The Unix identity a job runs as. The gateway never runs user work as root. */
export interface UnixIdentity {
  user: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

/** What a backend needs to start one interactive session (the agent is the job's program). */
export interface SessionSubmission {
  sessionId: string;
  /** Tag put on the scheduler's job (name/comment) so a timed-out submit can be found and adopted. */
  tag: string;
  identity: UnixIdentity;
  cores: number;
  memoryMb: number;
  gpus: number;
  minutes: number;
  partition?: string;
  account?: string;
  reservation?: string;
  /** Restrict the job to these nodes (Slurm --nodelist). Admin-defined or tests; never user input. */
  nodelist?: string;
  /** argv of the agent, e.g. [node, /opt/atrium/agent.mjs]. */
  agentArgv: string[];
  /** Environment handed to the agent. Contains secrets: never put it on a command line. */
  agentEnv: Record<string, string>;
  /** Shell lines run before the agent starts (the environment's setup, e.g. `module load`). Admin-defined, never user input. */
  setup?: string[];
}

/**
 * One batch job as the user asked for it: a script on the cluster (by path; sbatch opens it as the user,
 * so the user's file permissions decide) or a script's text (handed to sbatch on stdin). Options are
 * passed to sbatch only when given, so the script's own #SBATCH lines apply where the form is silent.
 */
export interface BatchSubmission {
  identity: UnixIdentity;
  /** Absolute path of the script on the cluster. Exactly one of scriptPath and script. */
  scriptPath?: string;
  /** The script's text; must start with "#!". */
  script?: string;
  /** --chdir when the user named a working directory. */
  workDir?: string;
  /**
   * Directory sbatch runs in when no workDir is given (the job's default working directory, which a
   * `#SBATCH --chdir` line still overrides). Default: the script's directory (by path) or the home.
   */
  defaultDir?: string;
  jobName?: string;
  partition?: string;
  account?: string;
  /** --cpus-per-task */
  cores?: number;
  /** --mem, MB per node */
  memoryMb?: number;
  /** --gres=gpu:N */
  gpus?: number;
  /** --time, minutes */
  minutes?: number;
  /** Slurm --mail-type values (BEGIN, END, FAIL, ...) and the address; only where the site has mail. */
  mailTypes?: string[];
  mailUser?: string;
  /** Tag put in --comment, so a submit whose outcome is unknown (timeout) can be found again. */
  tag?: string;
}

// The jobs and nodes a poll sees are domain data (src/core reads them): defined there, shared here.
export { FINISHED_JOB_STATES, type JobInfo, type JobState, type NodeInfo } from '../core/cluster-state.ts';

import type { JobInfo, NodeInfo } from '../core/cluster-state.ts';
import type { JobUsage } from '../core/efficiency.ts';
import type { AssociationUsage } from '../core/usage.ts';

export interface PartitionInfo {
  name: string;
  isDefault: boolean;
  nodes: string[];
  maxTimeMinutes?: number;
  state: string;
  /** e.g. "FORCE:5" */
  overSubscribe?: string;
}

export interface ReservationInfo {
  name: string;
  users: string[];
  accounts: string[];
  nodes: string[];
  startTime?: number;
  endTime?: number;
  state: string;
  /** Slurm's flags, upper case (MAINT, IGNORE_JOBS, ...); walltime extensions stop before MAINT ones. */
  flags?: string[];
  partition?: string;
}

/** Everything one poll learns. `ok: false` means the scheduler could not be reached: callers must not
 * conclude that any job ended (batchspawner issues 171, 174). */
export interface PollSnapshot {
  ok: boolean;
  error?: string;
  at: number;
  jobs: JobInfo[];
  nodes: NodeInfo[];
  /** How many scheduler commands (or API calls) this poll made. */
  calls: number;
}

export interface SubmitResult {
  jobId: string;
  /** true when the job was found by its tag after a failed or timed-out submit. */
  adopted?: boolean;
}

export class SchedulerError extends Error {
  constructor(
    message: string,
    /** The form field the error is about, when it is about one. */
    readonly field?: string,
  ) {
    super(message);
    this.name = 'SchedulerError';
  }
}

/** Static facts about a cluster that change rarely (cached by callers). */
export interface ClusterInfo {
  name: string;
  partitions: PartitionInfo[];
  reservations: ReservationInfo[];
  /** Accounts per user where accounting runs; undefined when the cluster has no accounting. */
  accountsByUser?: Record<string, string[]>;
  hasAccounting: boolean;
  /**
   * What the scheduler hides from ordinary users (Slurm's PrivateData: "jobs", "nodes", "usage", ...).
   * Undefined when unknown: callers then treat job lists as private.
   */
  privateData?: string[];
}

export interface SchedulerAdapter {
  /** The backend's name, as registered (src/scheduler/registry.ts). */
  readonly kind: string;
  readonly cluster: string;
  submitSession(sub: SessionSubmission): Promise<SubmitResult>;
  /** Submit a batch job as the user (backends that run batch jobs). */
  submitBatch?(sub: BatchSubmission): Promise<SubmitResult>;
  /** Cancel as the job's owner. */
  cancel(identity: UnixIdentity, jobId: string): Promise<void>;
  /**
   * Set a running job's time limit to `totalMinutes` (walltime extension, docs/sessions.md). Runs with
   * the gateway's own rights as the scheduler's operator, not the user's: users may only lower their
   * limits. The policy is checked before (src/core/extension.ts). Backends without it refuse extensions.
   */
  setTimeLimit?(jobId: string, totalMinutes: number): Promise<void>;
  /** One look at every job and node: one scheduler call serves every user and session. */
  poll(): Promise<PollSnapshot>;
  clusterInfo(): Promise<ClusterInfo>;
  /**
   * The reservations as the scheduler lists them now, in one call and never from a cache (a walltime
   * extension must see a maintenance window made a minute ago). Throws SchedulerError when it cannot.
   */
  reservations?(): Promise<ReservationInfo[]>;
  /**
   * Usage, limits and fair share of every association of the cluster, in one call (backends with
   * accounting). Throws SchedulerError when the scheduler cannot tell.
   */
  accountUsage?(): Promise<AssociationUsage[]>;
  /**
   * What these ended jobs used, from accounting, in one call (backends with accounting). null: the
   * cluster keeps none. A job accounting does not know (yet) is missing from the map.
   */
  jobUsage?(jobIds: readonly string[]): Promise<Map<string, JobUsage> | null>;
  close?(): Promise<void>;
}

/** One scheduler backend, registered by name (src/scheduler/registry.ts). */
export interface BackendDefinition {
  /** Builds the adapter of one configured cluster. `dataDir` is the gateway's data directory. */
  create(cfg: ClusterConfig, dataDir: string, log: Logger): SchedulerAdapter;
  /**
   * The cluster key holding this backend's settings (`slurm:`, `ssh:`), which `atrium config check`
   * then requires; undefined when the backend has none.
   */
  settingsKey?: 'slurm' | 'ssh';
  /**
   * The sessions run on the gateway's own host: apps' Unix sockets are reachable directly, installed
   * software and the machine's size can be read here, and a poll is cheap (every 2 s).
   */
  sameHost: boolean;
}
