// What administrators steer, kept in the database so it survives restarts and so the CLI (which works
// on the database directly) and the running gateway see the same thing:
// - drain flags: `settings` key `cluster.drained.<name>` = "true" | "false" (absent: the config's
//   `drained`);
// - stop requests from the CLI: `settings` key `admin.stop.<session id>` = JSON {actor, at}; the
//   gateway carries them out (one code path for stopping: SessionService.stop);
// - announcements: the `announcements` table.
import { ANNOUNCEMENT_LEVELS, type Announcement, type AnnouncementLevel } from '../api/admin.ts';
import type { Db } from '../db/index.ts';

const DRAIN_PREFIX = 'cluster.drained.';
const STOP_PREFIX = 'admin.stop.';

// Announcements are shown as they are stored: types of the API contract.
export { ANNOUNCEMENT_LEVELS, type Announcement, type AnnouncementLevel };

async function setSetting(db: Db, key: string, value: string): Promise<void> {
  await db
    .insertInto('settings')
    .values({ key, value })
    .onConflict((oc) => oc.column('key').doUpdateSet({ value }))
    .execute();
}

/** Runtime drain flags by cluster name (only clusters an admin switched). */
export async function drainFlags(db: Db): Promise<Map<string, boolean>> {
  const rows = await db.selectFrom('settings').selectAll().where('key', 'like', `${DRAIN_PREFIX}%`).execute();
  return new Map(rows.map((r) => [r.key.slice(DRAIN_PREFIX.length), r.value === 'true']));
}

export async function setDrained(db: Db, cluster: string, drained: boolean): Promise<void> {
  await setSetting(db, DRAIN_PREFIX + cluster, drained ? 'true' : 'false');
}

export async function requestStop(db: Db, sessionId: string, actor: string): Promise<void> {
  await setSetting(db, STOP_PREFIX + sessionId, JSON.stringify({ actor, at: Date.now() }));
}

/** Stop requests left by the CLI; each is removed as it is taken. */
export async function takeStopRequests(db: Db): Promise<{ sessionId: string; actor: string }[]> {
  const rows = await db.selectFrom('settings').selectAll().where('key', 'like', `${STOP_PREFIX}%`).execute();
  const out: { sessionId: string; actor: string }[] = [];
  for (const r of rows) {
    const del = await db.deleteFrom('settings').where('key', '=', r.key).executeTakeFirst();
    if (Number(del.numDeletedRows) !== 1) continue; // another gateway took it
    let actor = 'cli';
    try {
      actor = String((JSON.parse(r.value) as { actor?: unknown }).actor ?? 'cli');
    } catch {
      // keep the default
    }
    out.push({ sessionId: r.key.slice(STOP_PREFIX.length), actor });
  }
  return out;
}

function toAnnouncement(r: {
  id: number;
  at: number;
  message: string;
  level: string;
  expires_at: number | null;
  active: number;
  author: string | null;
}): Announcement {
  return {
    id: r.id,
    at: r.at,
    message: r.message,
    level: (ANNOUNCEMENT_LEVELS as readonly string[]).includes(r.level)
      ? (r.level as AnnouncementLevel)
      : 'info',
    expiresAt: r.expires_at,
    active: r.active === 1,
    author: r.author,
  };
}

function announcementQuery(db: Db) {
  return db
    .selectFrom('announcements')
    .leftJoin('users', 'users.id', 'announcements.author_user_id')
    .select([
      'announcements.id',
      'announcements.at',
      'announcements.message',
      'announcements.level',
      'announcements.expires_at',
      'announcements.active',
      'users.username as author',
    ]);
}

/** What users see now: active and not expired, newest first. */
export async function currentAnnouncements(db: Db, now = Date.now()): Promise<Announcement[]> {
  const rows = await announcementQuery(db)
    .where('announcements.active', '=', 1)
    .where((eb) =>
      eb.or([eb('announcements.expires_at', 'is', null), eb('announcements.expires_at', '>', now)]),
    )
    .orderBy('announcements.id', 'desc')
    .limit(20)
    .execute();
  return rows.map(toAnnouncement);
}

/** Every announcement (for the admin page and CLI), newest first. */
export async function allAnnouncements(db: Db, limit = 100): Promise<Announcement[]> {
  const rows = await announcementQuery(db).orderBy('announcements.id', 'desc').limit(limit).execute();
  return rows.map(toAnnouncement);
}

export function checkAnnouncement(message: unknown, level: unknown, expiresAt: unknown): string | null {
  if (typeof message !== 'string' || message.trim() === '') return 'message: write the announcement';
  if (message.length > 1000) return 'message: at most 1000 characters';
  if (!(ANNOUNCEMENT_LEVELS as readonly unknown[]).includes(level))
    return `level: one of ${ANNOUNCEMENT_LEVELS.join(', ')}`;
  if (
    expiresAt !== null &&
    (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt) || expiresAt <= Date.now())
  )
    return 'expiresAt: a time in the future';
  return null;
}

export async function createAnnouncement(
  db: Db,
  a: { message: string; level: AnnouncementLevel; expiresAt: number | null; authorUserId: number | null },
): Promise<number> {
  const r = await db
    .insertInto('announcements')
    .values({
      at: Date.now(),
      author_user_id: a.authorUserId,
      message: a.message.trim(),
      level: a.level,
      expires_at: a.expiresAt,
      active: 1,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return r.id;
}

/** Takes an announcement down; false when there is no such one. */
export async function expireAnnouncement(db: Db, id: number): Promise<boolean> {
  const r = await db.updateTable('announcements').set({ active: 0 }).where('id', '=', id).executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** Batch jobs of every user (the jobs table), newest first. */
export async function allJobs(db: Db, limit = 500) {
  return db
    .selectFrom('jobs')
    .innerJoin('users', 'users.id', 'jobs.user_id')
    .select([
      'jobs.id',
      'jobs.cluster',
      'jobs.job_id',
      'jobs.name',
      'jobs.partition',
      'jobs.state',
      'jobs.reason',
      'jobs.exit_code',
      'jobs.submitted_at',
      'jobs.started_at',
      'jobs.ended_at',
      'users.username',
    ])
    .orderBy('jobs.submitted_at', 'desc')
    .limit(limit)
    .execute();
}

/** Active sessions counted by state and cluster (the atrium_sessions gauge). */
export async function sessionCounts(db: Db): Promise<{ state: string; cluster: string; count: number }[]> {
  const rows = await db
    .selectFrom('sessions')
    .select(['state', 'cluster', db.fn.countAll<number>().as('count')])
    .where('state', 'in', ['requested', 'queued', 'starting', 'running', 'ending'])
    .groupBy(['state', 'cluster'])
    .execute();
  return rows.map((r) => ({ state: r.state, cluster: r.cluster, count: Number(r.count) }));
}
