// What one poll of a scheduler sees of jobs and nodes: plain data, read by the domain logic of src/core
// and produced by the backends of src/scheduler.

// The states are the API contract's (the page shows what a poll saw), defined once there.
import { ENDED_JOB_STATES, type JobState } from '../api/jobs.ts';

export type { JobState };

export const FINISHED_JOB_STATES: ReadonlySet<JobState> = new Set(ENDED_JOB_STATES);

/** One job as seen by one poll of the scheduler. Times are epoch seconds. */
export interface JobInfo {
  jobId: string;
  name: string;
  user: string;
  state: JobState;
  /** Scheduler's own state word, e.g. PENDING, RUNNING. */
  rawState: string;
  /** Pending reason ("Resources", "Priority", ...); undefined when none. */
  reason?: string;
  partition?: string;
  account?: string;
  reservation?: string;
  /** Tag set at submit (comment); used to match sessions to jobs. */
  comment?: string;
  nodes?: string;
  /** Address of the first node (NodeAddr), when running. */
  nodeAddress?: string;
  cpus?: number;
  memoryMb?: number;
  gpus?: number;
  submitTime?: number;
  startTime?: number;
  endTime?: number;
  /** Minutes; undefined when unlimited. */
  timeLimitMinutes?: number;
  exitCode?: number;
  workDir?: string;
  stdoutPath?: string;
  stderrPath?: string;
  priority?: number;
  /** How many times the scheduler restarted (requeued) the job; undefined when never. */
  restarts?: number;
}

/** One node of the cluster as seen by one poll. Memory in MB. */
export interface NodeInfo {
  name: string;
  address: string;
  state: string;
  partitions: string[];
  cpus: number;
  allocCpus: number;
  memoryMb: number;
  allocMemoryMb: number;
  gpus: number;
  allocGpus: number;
  /** GPU type when the node declares one, e.g. "a100". */
  gpuType?: string;
}
