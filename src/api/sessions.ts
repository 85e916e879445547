// Sessions (interactive jobs): what a client sends to start, look at and stop them.
import Type, { type Static } from 'typebox';
import { SESSION_STATES } from '../core/session-machine.ts';
import { FormNumber, IdParams, Model, Nullable, OptionalText, Text } from './common.ts';

/** A new session, as the form or a script posts it. Field values are checked against the cluster's live
 * limits by src/core/request.ts, whose messages name each field. */
export const NewSessionBody = Type.Object({
  cluster: OptionalText(200, 'The cluster, by name (GET /api/clusters lists yours).'),
  app: OptionalText(200, 'The main app (user interface), by id.'),
  extraApps: Type.Optional(
    Type.Union([Type.Array(Text(200), { maxItems: 16 }), Text(1000), Type.Null()], {
      description:
        'Apps to run next to the main one: a list of ids, or a comma-separated string from a plain form.',
    }),
  ),
  environment: OptionalText(200, 'The software environment, by id.'),
  cores: FormNumber('CPU cores.'),
  memoryGb: FormNumber('Memory in GB.'),
  gpus: FormNumber('GPUs (default 0).'),
  hours: FormNumber('Time limit in hours.'),
  partition: OptionalText(200),
  account: OptionalText(200),
  reservation: OptionalText(200),
  label: OptionalText(200, 'Your own name for the session.'),
});
export type NewSessionBody = Static<typeof NewSessionBody>;

/** /api/sessions/:id (ids are checked by the route: an id of the wrong form is "no such session"). */
export const SessionParams = IdParams;
export type SessionParams = IdParams;

// ---- replies ---------------------------------------------------------------------------------------

export const SessionState = Type.Enum(SESSION_STATES, {
  title: 'SessionState',
  description:
    'requested → queued → starting → running → ending → ended; failed when it could not start or broke.',
});
export type SessionState = Static<typeof SessionState>;

/** The request as the gateway took it: the form's text made numbers, empty fields left out. */
export const SessionRequest = Model('SessionRequest', {
  cluster: Type.String(),
  app: Type.String({ description: 'The main app (user interface) by id.' }),
  extraApps: Type.Optional(
    Type.Array(Type.String(), {
      description: 'More apps on the same allocation, each at /user/<name>/<session>.<app>/.',
    }),
  ),
  environment: Type.Optional(Type.String()),
  cores: Type.Number(),
  memoryGb: Type.Number(),
  gpus: Type.Number(),
  hours: Type.Number({ description: 'Time limit in hours.' }),
  partition: Type.Optional(Type.String()),
  account: Type.Optional(Type.String()),
  reservation: Type.Optional(Type.String()),
  label: Type.Optional(Type.String({ description: "The user's own name for the session." })),
});
export type SessionRequest = Static<typeof SessionRequest>;

/** Where a pending session stands in the scheduler's queue. */
export const SessionQueue = Model('SessionQueue', {
  reason: Type.Optional(Type.String({ description: "The scheduler's reason for waiting." })),
  position: Type.Optional(Type.Number({ description: "1-based, among the partition's pending jobs." })),
  pendingInPartition: Type.Optional(Type.Number()),
  expectedStart: Type.Optional(Type.Number({ description: "The scheduler's estimate (epoch ms)." })),
  partition: Type.Optional(Type.String()),
  nodes: Type.Optional(Type.String()),
});
export type SessionQueue = Static<typeof SessionQueue>;

/** A session as its owner sees it. Times are epoch milliseconds. */
export const SessionView = Model('SessionView', {
  id: Type.String(),
  cluster: Type.String(),
  app: Type.String(),
  appName: Type.String(),
  environment: Nullable(Type.String()),
  label: Nullable(Type.String()),
  state: SessionState,
  displayState: Type.Union([SessionState, Type.Literal('unknown'), Type.Literal('reconnecting')], {
    description:
      "'unknown' while the scheduler cannot be reached; 'reconnecting' while the agent of a running session on a dial-out cluster has no tunnel to this gateway (it dials again by itself); else the state.",
  }),
  reason: Nullable(Type.String({ description: 'Why it ended or failed, for people.' })),
  request: SessionRequest,
  jobId: Nullable(Type.String()),
  url: Type.String({ description: "The app's address (a path on the gateway)." }),
  openUrl: Type.String({ description: "The address to open (may carry the app's start page)." }),
  apps: Type.Array(
    Type.Object({ id: Type.String(), name: Type.String(), url: Type.String(), openUrl: Type.String() }),
    { description: "The session's extra apps (same allocation, same sign-in), each at its own address." },
  ),
  createdAt: Type.Number(),
  startedAt: Nullable(Type.Number()),
  readyAt: Nullable(Type.Number()),
  endedAt: Nullable(Type.Number()),
  expiresAt: Nullable(Type.Number({ description: 'When the time limit ends it.' })),
  timeLimitMinutes: Type.Number(),
  addTimeMinutes: Nullable(
    Type.Number({
      description:
        "Most minutes one request may add now (POST /api/sessions/{id}/extend, the site's `extension` policy); null when the session cannot be given more time.",
    }),
  ),
  queue: Nullable(SessionQueue),
  lastHeartbeatAt: Nullable(Type.Number()),
  notRespondingSince: Nullable(
    Type.Number({
      description:
        'A running session whose agent has missed `sessions.heartbeatMissed` heartbeats: when it was last heard from (still `running`: its app may well answer); null while the agent reports in time.',
    }),
  ),
});
export type SessionView = Static<typeof SessionView>;

/** One step of a session's history. */
export const SessionEventRow = Type.Object(
  { at: Type.Number(), state: Type.String(), message: Type.String() },
  { title: 'SessionEventRow' },
);
export type SessionEventRow = Static<typeof SessionEventRow>;

export const SessionsReply = Type.Object({ sessions: Type.Array(SessionView) });
export type SessionsReply = Static<typeof SessionsReply>;

export const SessionReply = Type.Object({ session: SessionView });
export type SessionReply = Static<typeof SessionReply>;

export const SessionDetailReply = Type.Object({ session: SessionView, events: Type.Array(SessionEventRow) });
export type SessionDetailReply = Static<typeof SessionDetailReply>;

/** What the gateway knows of a running session's idleness (idle culling). */
export const IdleStatus = Model('IdleStatus', {
  id: Type.String({ description: 'The session.' }),
  minutes: Type.Number({
    description: "The session's idle policy, minutes (0: never stopped for idleness).",
  }),
  lastActivityAt: Type.Number({
    description: "Last activity seen (ms); the session's start when none was.",
  }),
  idleSeconds: Type.Number(),
  busy: Type.Boolean({ description: 'A Jupyter kernel was executing at the last check.' }),
  warnedAt: Nullable(
    Type.Number({
      description: 'When the owner was told it would be stopped; null when not (or activity came since).',
    }),
  ),
  stopsAt: Nullable(
    Type.Number({ description: 'When it will be stopped unless used; null without a policy.' }),
  ),
  checkedAt: Type.Number(),
  apps: Type.Record(Type.String(), Nullable(Type.Number()), {
    description: "Each app's latest activity (ms) by app id, null when none was seen.",
  }),
});
export type IdleStatus = Static<typeof IdleStatus>;

/** Idle state of running sessions; `enabled` is false when the site does not stop idle sessions. */
export const IdleReply = Type.Object({ enabled: Type.Boolean(), sessions: Type.Array(IdleStatus) });
export type IdleReply = Static<typeof IdleReply>;
