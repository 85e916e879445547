// Batch jobs and the queue: submitting, following, cancelling, reading output. Field values are checked
// by src/core/batch-request.ts, whose messages name each form field.
import Type, { type Static } from 'typebox';
import { FormNumber, OptionalText } from './common.ts';

const QueryText = Type.Optional(Type.String({ maxLength: 200 }));

/** A script by path on the cluster (`scriptPath`) or pasted (`script`), with its resources. */
export const NewJobBody = Type.Object({
  cluster: OptionalText(200),
  source: OptionalText(20),
  scriptPath: OptionalText(8192),
  script: OptionalText(1024 * 1024),
  jobName: OptionalText(1000),
  partition: OptionalText(200),
  account: OptionalText(200),
  cores: FormNumber,
  memoryGb: FormNumber,
  gpus: FormNumber,
  hours: FormNumber,
  workDir: OptionalText(8192),
});
export type NewJobBody = Static<typeof NewJobBody>;

export const JobsQuery = Type.Object({ cluster: QueryText, state: QueryText, limit: QueryText });
export type JobsQuery = Static<typeof JobsQuery>;

/** /api/jobs/:cluster/:jobId (a job that is not the caller's is "no such job"). */
export const JobParams = Type.Object({ cluster: Type.String(), jobId: Type.String() });
export type JobParams = Static<typeof JobParams>;

/** A page of a job's output: `stream` stdout or stderr, from `offset` or from the end (`from=end`). */
export const JobOutputQuery = Type.Object({
  stream: QueryText,
  from: QueryText,
  offset: QueryText,
  limit: QueryText,
});
export type JobOutputQuery = Static<typeof JobOutputQuery>;

/** The queue of one cluster (the first the caller may use by default), filtered. */
export const QueueQuery = Type.Object({
  cluster: QueryText,
  partition: QueryText,
  state: QueryText,
  user: QueryText,
  mine: QueryText,
  limit: QueryText,
});
export type QueueQuery = Static<typeof QueueQuery>;
