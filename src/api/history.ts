// Job history with efficiency: the caller's ended sessions and batch jobs, what each asked for against
// what accounting (sacct) says it used, as JSON or CSV; and the form's right-size hint.
import Type, { type Static } from 'typebox';
import { Model, Nullable } from './common.ts';

const QueryText = (description: string) => Type.Optional(Type.String({ maxLength: 200, description }));

export const HistoryQuery = Type.Object({
  cluster: QueryText('Only this cluster.'),
  state: QueryText(
    "Only this state: the gateway's (ended, failed, completed, ...) or accounting's (completed, cancelled, timeout, out_of_memory, ...).",
  ),
  kind: QueryText('"session" or "job": only sessions (interactive) or only batch jobs.'),
  from: QueryText('Ended on or after this day (YYYY-MM-DD, UTC) or time (epoch ms).'),
  to: QueryText('Ended on or before this day (YYYY-MM-DD, UTC, the whole day) or time (epoch ms).'),
  limit: QueryText('At most this many (default 500, at most 5000).'),
});
export type HistoryQuery = Static<typeof HistoryQuery>;

export const UsageRatio = Model('UsageRatio', {
  used: Type.Number(),
  requested: Type.Number(),
  fraction: Type.Union([Type.Number(), Type.Null()], {
    description: 'used / requested (above 1 when over); null when nothing was asked.',
  }),
});
export type UsageRatio = Static<typeof UsageRatio>;

export const Efficiency = Model('Efficiency', {
  cpu: Type.Union([UsageRatio, Type.Null()], {
    description: 'TotalCPU against cores × elapsed, in CPU seconds.',
  }),
  memory: Type.Union([UsageRatio, Type.Null()], {
    description: 'Peak MaxRSS over the steps against requested memory, in MB.',
  }),
  time: Type.Union([UsageRatio, Type.Null()], {
    description: 'Elapsed against the time limit, in seconds.',
  }),
});
export type Efficiency = Static<typeof Efficiency>;

export const HISTORY_ACCOUNTING = ['sacct', 'none', 'pending'] as const;

/** One ended session or batch job. Times are epoch milliseconds. */
export const HistoryEntry = Model('HistoryEntry', {
  kind: Type.Enum(['session', 'job']),
  id: Type.String({ description: 'The session id, or the job id for a batch job.' }),
  cluster: Type.String(),
  jobId: Nullable(Type.String({ description: "The scheduler's job id; null when it never got one." })),
  name: Type.String({ description: "The session's label or app, or the job's name." }),
  app: Nullable(Type.String({ description: "The session's app id; null for a batch job." })),
  state: Type.String({
    description: "The gateway's state: ended or failed (sessions), the job state (jobs).",
  }),
  schedulerState: Nullable(Type.String({ description: "Accounting's end state (completed, timeout, ...)." })),
  submittedAt: Nullable(Type.Number()),
  startedAt: Nullable(Type.Number()),
  endedAt: Nullable(Type.Number()),
  requested: Type.Object({
    cores: Nullable(Type.Number()),
    memoryMb: Nullable(Type.Number()),
    minutes: Nullable(Type.Number()),
  }),
  accounting: Type.Enum(HISTORY_ACCOUNTING, {
    description:
      "'sacct': the figures are accounting's; 'none': there are no accounting data for it (the cluster keeps none, accounting did not know it within an hour of its end, or it ended more than 7 days ago unread); 'pending': not read yet (within an hour of the end).",
  }),
  efficiency: Efficiency,
});
export type HistoryEntry = Static<typeof HistoryEntry>;

export const HistoryReply = Type.Object({ entries: Type.Array(HistoryEntry) }, { title: 'HistoryReply' });
export type HistoryReply = Static<typeof HistoryReply>;

export const RightSizeQuery = Type.Object({
  cluster: Type.String({ maxLength: 200 }),
  app: Type.String({ maxLength: 200, description: 'The app, by id.' }),
});
export type RightSizeQuery = Static<typeof RightSizeQuery>;

export const RightSizeReply = Model('RightSizeReply', {
  hint: Nullable(
    Type.Object({
      sessions: Type.Number({ description: 'How many of your newest sessions of the app it is about.' }),
      maxUsedMb: Type.Number(),
      requestedMb: Type.Number({ description: 'The largest request among them.' }),
      message: Type.String(),
    }),
  ),
});
export type RightSizeReply = Static<typeof RightSizeReply>;
