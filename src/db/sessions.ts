import type { Selectable, Updateable } from 'kysely';
import type { SessionRequest } from '../core/request.ts';
import type { SessionState } from '../core/session-machine.ts';
import type { Db } from './index.ts';
import type { SessionsTable } from './schema.ts';

export type SessionRow = Selectable<SessionsTable>;
export type SessionPatch = Updateable<SessionsTable>;

export interface QueueInfo {
  reason?: string;
  /** 1-based position among pending jobs of the partition. */
  position?: number;
  pendingInPartition?: number;
  expectedStart?: number;
  partition?: string;
  nodes?: string;
}

export async function insertSession(
  db: Db,
  s: {
    id: string;
    userId: number;
    request: SessionRequest;
    appToken: string;
    agentSecretHash: string;
    timeLimitMin: number;
    /** The session's apps (main and extra) that are started on a Unix socket. */
    socketApps: string[];
    /** The gateway that takes the request, where several share the database. */
    gateway?: string;
  },
): Promise<SessionRow> {
  const now = Date.now();
  return db
    .insertInto('sessions')
    .values({
      id: s.id,
      user_id: s.userId,
      cluster: s.request.cluster,
      app: s.request.app,
      environment: s.request.environment ?? null,
      label: s.request.label ?? null,
      state: 'requested',
      reason: null,
      request: JSON.stringify(s.request),
      job_id: null,
      host: null,
      port: null,
      socket_path: null,
      app_token: s.appToken,
      agent_secret_hash: s.agentSecretHash,
      heartbeat_token_hash: null,
      last_heartbeat_at: null,
      time_limit_min: s.timeLimitMin,
      created_at: now,
      submitted_at: null,
      started_at: null,
      ready_at: null,
      ended_at: null,
      expires_at: null,
      warned_at: null,
      queue_info: null,
      updated_at: now,
      socket_apps: JSON.stringify(s.socketApps),
      gateway: s.gateway ?? null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function getSession(db: Db, id: string): Promise<SessionRow | undefined> {
  return db.selectFrom('sessions').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function updateSession(db: Db, id: string, patch: SessionPatch): Promise<void> {
  await db
    .updateTable('sessions')
    .set({ ...patch, updated_at: Date.now() })
    .where('id', '=', id)
    .execute();
}

/** Updates only when the row is still in `expected` state: two writers cannot both win a transition. */
export async function casState(
  db: Db,
  id: string,
  expected: SessionState,
  patch: SessionPatch & { state: SessionState },
): Promise<boolean> {
  const r = await db
    .updateTable('sessions')
    .set({ ...patch, updated_at: Date.now() })
    .where('id', '=', id)
    .where('state', '=', expected)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

export async function listActiveSessions(db: Db): Promise<SessionRow[]> {
  return db
    .selectFrom('sessions')
    .selectAll()
    .where('state', 'in', ['requested', 'queued', 'starting', 'running', 'ending'])
    .execute();
}

export async function listSessionsOfUser(db: Db, userId: number, includeEnded = true): Promise<SessionRow[]> {
  let q = db.selectFrom('sessions').selectAll().where('user_id', '=', userId);
  if (!includeEnded) q = q.where('state', 'in', ['requested', 'queued', 'starting', 'running', 'ending']);
  return q.orderBy('created_at', 'desc').limit(200).execute();
}

export async function listAllSessions(db: Db, limit = 500): Promise<(SessionRow & { username: string })[]> {
  return db
    .selectFrom('sessions')
    .innerJoin('users', 'users.id', 'sessions.user_id')
    .selectAll('sessions')
    .select('users.username')
    .orderBy('sessions.created_at', 'desc')
    .limit(limit)
    .execute();
}

export async function addSessionEvent(
  db: Db,
  sessionId: string,
  state: string,
  message: string,
): Promise<void> {
  await db
    .insertInto('session_events')
    .values({ session_id: sessionId, at: Date.now(), state, message })
    .execute();
}

export async function sessionEvents(db: Db, sessionId: string) {
  return db
    .selectFrom('session_events')
    .selectAll()
    .where('session_id', '=', sessionId)
    .orderBy('id')
    .execute();
}
