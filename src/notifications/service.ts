// Notifications: when a job or session changes state, the owner hears about it in the page (live,
// over server-sent events), as a browser notification when they allow it, and by e-mail through
// Slurm's --mail-type where the site has mail. Stored, so a user who was away sees what happened.
import type { Notification, NotificationPrefs } from '../api/notifications.ts';
import type { Db } from '../db/index.ts';
import type { EventBus } from '../events/bus.ts';

export const NOTIFICATION_KINDS = [
  'session.ready',
  'session.ending_soon',
  'session.idle',
  'session.ended',
  'session.failed',
  'job.started',
  'job.completed',
  'job.failed',
  'job.timeout',
  'job.cancelled',
] as const;
export type NotificationKind = (typeof NOTIFICATION_KINDS)[number];

// What a user reads and chooses: types of the API contract.
export type { Notification, NotificationPrefs };

export const DEFAULT_PREFS: NotificationPrefs = {
  kinds: Object.fromEntries(NOTIFICATION_KINDS.map((k) => [k, true])),
  browser: true,
  email: false,
};

export class NotificationService {
  private readonly prefsCache = new Map<number, NotificationPrefs>();

  constructor(
    private readonly db: Db,
    private readonly bus: EventBus,
  ) {}

  async prefs(userId: number): Promise<NotificationPrefs> {
    const cached = this.prefsCache.get(userId);
    if (cached) return cached;
    const row = await this.db
      .selectFrom('notification_prefs')
      .selectAll()
      .where('user_id', '=', userId)
      .executeTakeFirst();
    const stored = row ? (JSON.parse(row.prefs) as Partial<NotificationPrefs>) : {};
    const p: NotificationPrefs = {
      kinds: { ...DEFAULT_PREFS.kinds, ...(stored.kinds ?? {}) },
      browser: stored.browser ?? DEFAULT_PREFS.browser,
      email: stored.email ?? DEFAULT_PREFS.email,
    };
    this.prefsCache.set(userId, p);
    return p;
  }

  /** Forgets a user's cached preferences (changed on another gateway sharing the database). */
  forgetPrefs(userId: number): void {
    this.prefsCache.delete(userId);
  }

  async setPrefs(userId: number, patch: Partial<NotificationPrefs>): Promise<NotificationPrefs> {
    const cur = await this.prefs(userId);
    const kinds = { ...cur.kinds };
    for (const [k, v] of Object.entries(patch.kinds ?? {})) {
      if ((NOTIFICATION_KINDS as readonly string[]).includes(k) && typeof v === 'boolean') kinds[k] = v;
    }
    const next: NotificationPrefs = {
      kinds,
      browser: typeof patch.browser === 'boolean' ? patch.browser : cur.browser,
      email: typeof patch.email === 'boolean' ? patch.email : cur.email,
    };
    await this.db
      .insertInto('notification_prefs')
      .values({ user_id: userId, prefs: JSON.stringify(next) })
      .onConflict((oc) => oc.column('user_id').doUpdateSet({ prefs: JSON.stringify(next) }))
      .execute();
    this.prefsCache.set(userId, next);
    return next;
  }

  /** Records and pushes a notification to its owner (and only them), unless they turned the kind off. */
  async notify(
    userId: number,
    kind: NotificationKind,
    title: string,
    body: string,
    link: string | null = null,
  ): Promise<void> {
    const p = await this.prefs(userId);
    if (p.kinds[kind] === false) return;
    const at = Date.now();
    const row = await this.db
      .insertInto('notifications')
      .values({ user_id: userId, at, kind, title, body, link, read_at: null })
      .returning('id')
      .executeTakeFirstOrThrow();
    const n: Notification = { id: row.id, at, kind, title, body, link, read: false };
    this.bus.publish({ userId }, { type: 'notification', data: { ...n, browser: p.browser } });
  }

  async list(userId: number, limit = 50): Promise<Notification[]> {
    const rows = await this.db
      .selectFrom('notifications')
      .selectAll()
      .where('user_id', '=', userId)
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
    return rows.map((r) => ({
      id: r.id,
      at: r.at,
      kind: r.kind,
      title: r.title,
      body: r.body,
      link: r.link,
      read: r.read_at !== null,
    }));
  }

  async markRead(userId: number, ids: number[] | 'all'): Promise<void> {
    let q = this.db
      .updateTable('notifications')
      .set({ read_at: Date.now() })
      .where('user_id', '=', userId)
      .where('read_at', 'is', null);
    if (ids !== 'all') q = q.where('id', 'in', ids.length > 0 ? ids : [-1]);
    await q.execute();
  }
}
