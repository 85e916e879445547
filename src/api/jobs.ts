// Batch jobs and the queue: submitting, following, cancelling, reading output. Field values are checked
// by src/core/batch-request.ts, whose messages name each form field.
import Type, { type Static } from 'typebox';
import { AccessRefused } from './clusters.ts';
import { FormNumber, Model, Nullable, OptionalText } from './common.ts';

const QueryText = (description?: string) =>
  Type.Optional(Type.String({ maxLength: 200, ...(description ? { description } : {}) }));

/** A script by path on the cluster (`scriptPath`) or pasted (`script`), with its resources. */
export const NewJobBody = Type.Object({
  cluster: OptionalText(200, 'The cluster, by name (GET /api/jobs/clusters lists yours).'),
  source: OptionalText(20, '"path" (a script on the cluster) or "text" (pasted).'),
  scriptPath: OptionalText(8192, 'The script, an absolute path on the cluster (source "path").'),
  script: OptionalText(1024 * 1024, 'The script itself (source "text"; at most 256 KiB).'),
  jobName: OptionalText(1000),
  partition: OptionalText(200),
  account: OptionalText(200),
  cores: FormNumber('CPU cores.'),
  memoryGb: FormNumber('Memory in GB.'),
  gpus: FormNumber('GPUs.'),
  hours: FormNumber('Time limit in hours (decimals allowed).'),
  workDir: OptionalText(
    8192,
    "Working directory; default: the script's directory, or your home for pasted text.",
  ),
});
export type NewJobBody = Static<typeof NewJobBody>;

export const JobsQuery = Type.Object({
  cluster: QueryText('Only jobs of this cluster.'),
  state: QueryText('active, finished, all, or one state (pending, running, completed, ...).'),
  limit: QueryText('At most this many (default 200).'),
});
export type JobsQuery = Static<typeof JobsQuery>;

/** /api/jobs/:cluster/:jobId (a job that is not the caller's is "no such job"). */
export const JobParams = Type.Object({ cluster: Type.String(), jobId: Type.String() });
export type JobParams = Static<typeof JobParams>;

/** A page of a job's output: `stream` stdout or stderr, from `offset` or from the end (`from=end`). */
export const JobOutputQuery = Type.Object({
  stream: QueryText('stdout (default) or stderr.'),
  from: QueryText('"end": the last `limit` bytes.'),
  offset: QueryText("Byte offset to read from (a page's `nextOffset`)."),
  limit: QueryText('Bytes to read.'),
});
export type JobOutputQuery = Static<typeof JobOutputQuery>;

/** The queue of one cluster (the first the caller may use by default), filtered. */
export const QueueQuery = Type.Object({
  cluster: QueryText('The cluster (default: the first you may use).'),
  partition: QueryText(),
  state: QueryText('active, finished, all, or one state.'),
  user: QueryText("Only this Unix user's jobs."),
  mine: QueryText('"1" or "true": only your jobs.'),
  limit: QueryText('At most this many rows (default 500).'),
});
export type QueueQuery = Static<typeof QueueQuery>;

// ---- replies ---------------------------------------------------------------------------------------

/** States of a batch job that has not ended. */
export const ACTIVE_JOB_STATES = ['pending', 'running', 'completing', 'suspended'] as const;
/** States of a batch job that has ended. */
export const ENDED_JOB_STATES = [
  'completed',
  'failed',
  'cancelled',
  'timeout',
  'node_fail',
  'out_of_memory',
  'preempted',
] as const;
/** A batch job's state as the scheduler reports it ('unknown' while it cannot be asked). */
export const JOB_STATES = [...ACTIVE_JOB_STATES, ...ENDED_JOB_STATES, 'unknown'] as const;
export const JobState = Type.Enum(JOB_STATES, { title: 'JobState' });
export type JobState = Static<typeof JobState>;

/** A batch job as shown to its owner. Times are epoch milliseconds. */
export const JobView = Model('JobView', {
  cluster: Type.String(),
  jobId: Type.String(),
  name: Type.String(),
  user: Type.String({ description: 'Unix owner.' }),
  state: JobState,
  displayState: Type.Enum(JOB_STATES, {
    description:
      "'unknown' while the scheduler cannot be reached and the job is not finished, else the state.",
  }),
  finished: Type.Boolean(),
  reason: Nullable(Type.String()),
  partition: Nullable(Type.String()),
  account: Nullable(Type.String()),
  nodes: Nullable(Type.String()),
  cpus: Nullable(Type.Number()),
  memoryMb: Nullable(Type.Number()),
  gpus: Nullable(Type.Number()),
  submittedAt: Type.Number(),
  startedAt: Nullable(Type.Number()),
  endedAt: Nullable(Type.Number()),
  timeLimitMinutes: Nullable(Type.Number()),
  addTimeMinutes: Nullable(
    Type.Number({
      description:
        "Most minutes one request may add now (POST /api/jobs/{cluster}/{jobId}/extend, the site's `extension` policy); null when the job cannot be given more time.",
    }),
  ),
  elapsedSeconds: Nullable(
    Type.Number({
      description: 'Seconds run so far (running) or in total (finished); null before it starts.',
    }),
  ),
  exitCode: Nullable(Type.Number()),
  exitSource: Nullable(
    Type.String({ description: "'sacct' (accounting) or 'squeue' (as last seen); null while running." }),
  ),
  source: Type.String({
    description:
      "How it was submitted: 'path', 'text' (the page), 'session' (from inside one of the user's sessions, e.g. sbatch in its terminal), or 'external' (elsewhere, same Unix account).",
  }),
  scriptPath: Nullable(Type.String()),
  workDir: Nullable(Type.String()),
  stdoutPath: Nullable(Type.String()),
  stderrPath: Nullable(Type.String()),
  queue: Nullable(
    Type.Object(
      {
        position: Nullable(Type.Number()),
        pendingInPartition: Nullable(Type.Number()),
        expectedStart: Nullable(Type.Number()),
      },
      { description: "Pending jobs: position among the partition's pending jobs, expected start (ms)." },
    ),
  ),
  restarts: Type.Number({
    description:
      "How many times the scheduler restarted (requeued) the job: Slurm's and the site's requeue policy.",
  }),
  restartedAfter: Nullable(
    Type.String({
      description: 'Why it was last restarted, when the gateway saw the cause (e.g. "node n12 failed").',
    }),
  ),
});
export type JobView = Static<typeof JobView>;

/** Links from a job to a session (its working directory in the user's Jupyter). */
export const JobLinks = Model('JobLinks', {
  browse: Nullable(
    Type.Object(
      { url: Type.String(), sessionId: Type.String(), sessionName: Type.String() },
      { description: 'Open the working directory in a running Jupyter session of the user.' },
    ),
  ),
  newSession: Type.String({
    description: "The new-session form, pre-filled for Jupyter on the job's cluster.",
  }),
  why: Nullable(Type.String({ description: 'Why there is no browse link (shown to the user).' })),
});
export type JobLinks = Static<typeof JobLinks>;

export const JobDetail = Type.Object({ ...JobView.properties, links: JobLinks }, { title: 'JobDetail' });
export type JobDetail = Static<typeof JobDetail>;

/** What the submit form may offer on a cluster (from its live nodes and accounting). */
export const BatchLimits = Model('BatchLimits', {
  partitions: Type.Optional(Type.Immutable(Type.Array(Type.String()))),
  accounts: Type.Optional(
    Type.Immutable(
      Type.Array(Type.String(), {
        description:
          "The user's accounts; absent when the cluster has no accounting (any name is passed on).",
      }),
    ),
  ),
  perPartition: Type.Optional(
    Type.Record(
      Type.String(),
      Type.Object({ maxCores: Type.Number(), maxMemoryGb: Type.Number(), maxGpus: Type.Number() }),
      { description: 'Per partition, the largest node.' },
    ),
  ),
  maxCores: Type.Optional(Type.Number()),
  maxMemoryGb: Type.Optional(Type.Number()),
  maxGpus: Type.Optional(Type.Number()),
});
export type BatchLimits = Static<typeof BatchLimits>;

/** A cluster as the submit form shows it. */
export const BatchClusterView = Model('BatchClusterView', {
  name: Type.String(),
  title: Type.String(),
  limits: BatchLimits,
  defaultPartition: Nullable(Type.String()),
  mail: Type.Boolean({ description: 'E-mail through Slurm works here and the user has an address.' }),
  accessRefused: Type.Optional(AccessRefused),
});
export type BatchClusterView = Static<typeof BatchClusterView>;

export const JobsReply = Type.Object({ jobs: Type.Array(JobView) });
export type JobsReply = Static<typeof JobsReply>;

export const BatchClustersReply = Type.Object({ clusters: Type.Array(BatchClusterView) });
export type BatchClustersReply = Static<typeof BatchClustersReply>;

export const JobReply = Type.Object({ job: JobView });
export type JobReply = Static<typeof JobReply>;

export const JobDetailReply = Type.Object({ job: JobDetail });
export type JobDetailReply = Static<typeof JobDetailReply>;

/** A page of a job's stdout or stderr, read as its owner. */
export const JobOutputPage = Model('JobOutputPage', {
  data: Type.String({ description: 'The text (UTF-8; invalid bytes become U+FFFD).' }),
  offset: Type.Number({ description: "Byte offset of `data`'s first byte." }),
  nextOffset: Type.Number({ description: 'Offset to ask for next (follows the file as it grows).' }),
  size: Type.Number({ description: 'Size of the file when it was read.' }),
  eof: Type.Boolean({ description: 'nextOffset reached the end of the file (as of this read).' }),
  path: Nullable(Type.String()),
  exists: Type.Boolean(),
  message: Type.Optional(Type.String({ description: 'Why there is no output to show (yet).' })),
});
export type JobOutputPage = Static<typeof JobOutputPage>;

/** One row of the queue as shown to a user. Other users' rows carry no paths or comments. */
export const QueueRow = Model('QueueRow', {
  jobId: Type.String(),
  name: Type.String(),
  user: Type.String(),
  mine: Type.Boolean(),
  state: JobState,
  reason: Nullable(Type.String()),
  partition: Nullable(Type.String()),
  account: Nullable(Type.String()),
  nodes: Nullable(Type.String()),
  cpus: Nullable(Type.Number()),
  gpus: Nullable(Type.Number()),
  memoryMb: Nullable(Type.Number()),
  submitTime: Nullable(Type.Number()),
  startTime: Nullable(Type.Number()),
  timeLimitMinutes: Nullable(Type.Number()),
  priority: Nullable(Type.Number()),
  position: Nullable(
    Type.Number({ description: 'Among the pending jobs of its partition (pending jobs only).' }),
  ),
  pendingInPartition: Nullable(Type.Number()),
});
export type QueueRow = Static<typeof QueueRow>;

export const PartitionCount = Model('PartitionCount', {
  partition: Type.String(),
  running: Type.Number(),
  pending: Type.Number(),
  other: Type.Number({ description: 'Other states that still hold a place (completing, suspended).' }),
});
export type PartitionCount = Static<typeof PartitionCount>;

/** The queue of one cluster as of the last poll (one poll shared by every viewer). */
export const QueueView = Model('QueueView', {
  cluster: Type.String(),
  at: Type.Number({ description: 'When the queue was polled; 0 before the first poll.' }),
  fresh: Type.Boolean({
    description: 'false when the scheduler could not be reached at the last poll (the rows are older).',
  }),
  privateJobs: Type.Boolean({
    description:
      "true when the site hides other users' jobs (PrivateData=jobs): rows are the user's own only.",
  }),
  jobs: Type.Array(QueueRow),
  matched: Type.Number({ description: 'Rows that matched the filters (before the row limit).' }),
  truncated: Type.Boolean(),
  partitions: Type.Array(PartitionCount, {
    description: "Every user's jobs, counted per partition (counts only: allowed even with PrivateData).",
  }),
});
export type QueueView = Static<typeof QueueView>;
