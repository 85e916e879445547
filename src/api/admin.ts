// Administration: every session and job, stopping sessions, draining clusters, announcements, the audit
// log. Every route under /api/admin/ is for administrators with a browser session.
import Type, { type Static } from 'typebox';
import { FreeTable } from './clusters.ts';
import { FormNumber, IdParams, Model, Nullable, OptionalText, Text } from './common.ts';
import { SessionView } from './sessions.ts';

/** `state=active` lists only sessions that are not over; `limit` caps the list (1 to 5000). */
export const AdminSessionsQuery = Type.Object({
  state: Type.Optional(Text(20, '"active": only sessions that are not over.')),
  limit: Type.Optional(
    Type.Integer({ minimum: 1, description: 'At most this many (default 500, at most 5000).' }),
  ),
});
export type AdminSessionsQuery = Static<typeof AdminSessionsQuery>;

/** A dashboard announcement; it ends at `expiresAt` (ms or an ISO date) or after `hours`, else when expired. */
export const NewAnnouncementBody = Type.Object({
  message: OptionalText(2000, 'The text (at most 1000 characters).'),
  level: OptionalText(20, 'info (default), warning or critical.'),
  expiresAt: FormNumber('When it ends: epoch ms or an ISO date.'),
  hours: FormNumber('Or: it ends after this many hours.'),
});
export type NewAnnouncementBody = Static<typeof NewAnnouncementBody>;

export const AnnouncementParams = IdParams;
export type AnnouncementParams = IdParams;

/** Filters of the audit log; numbers are checked by the route, with messages per parameter. */
export const AuditQuery = Type.Object({
  action: Type.Optional(Type.String({ description: 'e.g. signin, session.start, admin.cluster.drain.' })),
  actor: Type.Optional(Type.String({ description: 'Who acted (a user name).' })),
  target: Type.Optional(Type.String({ description: 'What it acted on (a session id, a cluster, ...).' })),
  ok: Type.Optional(Type.String({ description: 'true or false: only what succeeded, or only refusals.' })),
  since: Type.Optional(Type.String({ description: 'From this time (epoch ms).' })),
  until: Type.Optional(Type.String({ description: 'Up to this time (epoch ms).' })),
  before: Type.Optional(
    Type.String({ description: "Entries older than this id (the previous page's `next`)." }),
  ),
  limit: Type.Optional(Type.String({ description: 'At most this many (default 200, at most 1000).' })),
});
export type AuditQuery = Static<typeof AuditQuery>;

// ---- replies ---------------------------------------------------------------------------------------

/** A session of any user. */
export const AdminSession = Type.Object(
  { ...SessionView.properties, user: Type.String({ description: 'Its owner.' }), userId: Type.Number() },
  { title: 'AdminSession' },
);
export type AdminSession = Static<typeof AdminSession>;

export const AdminSessionsReply = Type.Object({ sessions: Type.Array(AdminSession) });
export type AdminSessionsReply = Static<typeof AdminSessionsReply>;

/** A batch job of any user submitted through Atrium (the jobs table), newest first. */
export const AdminJob = Model('AdminJob', {
  id: Type.Number(),
  cluster: Type.String(),
  jobId: Type.String(),
  name: Type.String(),
  user: Type.String(),
  partition: Nullable(Type.String()),
  state: Type.String(),
  reason: Nullable(Type.String()),
  exitCode: Nullable(Type.Number()),
  submittedAt: Type.Number(),
  startedAt: Nullable(Type.Number()),
  endedAt: Nullable(Type.Number()),
});
export type AdminJob = Static<typeof AdminJob>;

export const AdminJobsReply = Type.Object({ jobs: Type.Array(AdminJob) });
export type AdminJobsReply = Static<typeof AdminJobsReply>;

/** A job in a cluster's queue as of the last poll; `session` is the Atrium session it runs, if any. */
export const ClusterJob = Model('ClusterJob', {
  jobId: Type.String(),
  name: Type.String(),
  user: Type.String(),
  state: Type.String(),
  reason: Nullable(Type.String()),
  partition: Nullable(Type.String()),
  nodes: Nullable(Type.String()),
  cpus: Nullable(Type.Number()),
  memoryMb: Nullable(Type.Number()),
  gpus: Nullable(Type.Number()),
  startTime: Nullable(Type.Number()),
  session: Nullable(Type.String()),
});
export type ClusterJob = Static<typeof ClusterJob>;

/** A cluster as administrators see it: drain state, the scheduler's health, free resources, the queue. */
export const AdminClusterView = Model('AdminClusterView', {
  name: Type.String(),
  title: Type.String(),
  backend: Type.String(),
  drained: Type.Boolean(),
  drainedByConfig: Type.Boolean({
    description: "The config's `drained` (an administrator's switch overrides it).",
  }),
  reachable: Type.Boolean(),
  lastPollAt: Nullable(Type.Number()),
  error: Nullable(Type.String({ description: "The last poll's error, when it failed." })),
  allowGroups: Type.Array(Type.String()),
  free: FreeTable,
  jobs: Type.Array(ClusterJob),
});
export type AdminClusterView = Static<typeof AdminClusterView>;

export const AdminClustersReply = Type.Object({ clusters: Type.Array(AdminClusterView) });
export type AdminClustersReply = Static<typeof AdminClustersReply>;

export const AdminClusterReply = Type.Object({ cluster: AdminClusterView });
export type AdminClusterReply = Static<typeof AdminClusterReply>;

export const ANNOUNCEMENT_LEVELS = ['info', 'warning', 'critical'] as const;
export const AnnouncementLevel = Type.Enum(ANNOUNCEMENT_LEVELS, { title: 'AnnouncementLevel' });
export type AnnouncementLevel = Static<typeof AnnouncementLevel>;

export const Announcement = Model('Announcement', {
  id: Type.Number(),
  at: Type.Number(),
  message: Type.String(),
  level: AnnouncementLevel,
  expiresAt: Nullable(Type.Number()),
  active: Type.Boolean({ description: 'false once taken down.' }),
  author: Nullable(Type.String()),
});
export type Announcement = Static<typeof Announcement>;

export const AnnouncementsReply = Type.Object({ announcements: Type.Array(Announcement) });
export type AnnouncementsReply = Static<typeof AnnouncementsReply>;

export const AnnouncementReply = Type.Object({ announcement: Announcement });
export type AnnouncementReply = Static<typeof AnnouncementReply>;

/** One entry of the audit log. */
export const AuditEntry = Model('AuditEntry', {
  id: Type.Number(),
  at: Type.Number(),
  actorUserId: Nullable(Type.Number()),
  actor: Nullable(Type.String()),
  action: Type.String({ description: '"signin", "session.start", "admin.cluster.drain", ...' }),
  target: Nullable(Type.String()),
  ip: Nullable(Type.String()),
  ok: Type.Boolean(),
  details: Type.Unknown({ description: 'What else the action recorded (an object), or null.' }),
});
export type AuditEntry = Static<typeof AuditEntry>;

/** Newest first; pass `next` as `before` for the next page (null: no more). */
export const AuditReply = Type.Object({ entries: Type.Array(AuditEntry), next: Nullable(Type.Number()) });
export type AuditReply = Static<typeof AuditReply>;

/** The admin routes this gateway serves, read from its router. */
export const AdminRoutesReply = Type.Object({
  routes: Type.Array(Type.Object({ method: Type.String(), path: Type.String() })),
});
export type AdminRoutesReply = Static<typeof AdminRoutesReply>;
