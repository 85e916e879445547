// Signed-in browser sessions: an opaque random token in a cookie, its hash in the database.
// A small in-memory cache keeps the proxy's per-request check to one Map lookup.
import { sql } from 'kysely';
import { type Db, isDatabaseUnavailable } from '../db/index.ts';
import { findUserById, toUser, type User } from '../db/users.ts';
import { hashToken, newToken } from './secrets.ts';

export interface WebSession {
  id: string;
  user: User;
  csrfToken: string;
  expiresAt: number;
  data: Record<string, unknown>;
}

const CACHE_TTL_MS = 30_000;

export class WebSessionStore {
  private readonly cache = new Map<string, { s: WebSession; cachedAt: number }>();

  constructor(
    private readonly db: Db,
    private readonly lifetimeMs: number,
  ) {}

  /** Starts a new session for the user (never reuses a token: no fixation). Returns the cookie value. */
  async create(
    userId: number,
    data: Record<string, unknown> = {},
  ): Promise<{ token: string; session: WebSession }> {
    const token = newToken();
    const id = hashToken(token);
    const now = Date.now();
    const csrf = newToken(24);
    await this.db
      .insertInto('web_sessions')
      .values({
        id,
        user_id: userId,
        csrf_token: csrf,
        created_at: now,
        expires_at: now + this.lifetimeMs,
        last_seen_at: now,
        data: JSON.stringify(data),
      })
      .execute();
    const session = (await this.lookup(token))!;
    return { token, session };
  }

  /** The session for a cookie token, or null when unknown, expired or the user is disabled. */
  async lookup(token: string | undefined): Promise<WebSession | null> {
    if (!token || token.length > 200) return null;
    const id = hashToken(token);
    const now = Date.now();
    const hit = this.cache.get(id);
    if (hit && now - hit.cachedAt < CACHE_TTL_MS) {
      return hit.s.expiresAt > now ? hit.s : null;
    }
    let row: Awaited<ReturnType<typeof this.readRow>>;
    let userRow: Awaited<ReturnType<typeof findUserById>>;
    try {
      row = await this.readRow(id);
      userRow = row ? await findUserById(this.db, row.user_id) : undefined;
    } catch (e) {
      // The database cannot be used: a browser this gateway knew stays signed in meanwhile, so the apps
      // of its running sessions keep working. Sign-outs elsewhere reach this cache (src/server/shared.ts).
      if (hit && hit.s.expiresAt > now && isDatabaseUnavailable(e)) return hit.s;
      throw e;
    }
    if (!row || row.expires_at <= now) {
      this.cache.delete(id);
      return null;
    }
    if (!userRow || userRow.disabled) return null;
    const s: WebSession = {
      id,
      user: toUser(userRow),
      csrfToken: row.csrf_token,
      expiresAt: row.expires_at,
      data: JSON.parse(row.data) as Record<string, unknown>,
    };
    if (this.cache.size > 50_000) this.cache.clear();
    this.cache.set(id, { s, cachedAt: now });
    if (now - row.last_seen_at > 60_000) {
      await this.db.updateTable('web_sessions').set({ last_seen_at: now }).where('id', '=', id).execute();
    }
    return s;
  }

  private readRow(id: string) {
    return this.db.selectFrom('web_sessions').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** Forgets a cached session: it ended, or its data changed, on another gateway sharing the database. */
  forget(id: string): void {
    this.cache.delete(id);
  }

  /** Forgets every cached session (what other gateways changed meanwhile was not heard). */
  forgetAll(): void {
    this.cache.clear();
  }

  /** Synchronous cache-only lookup for the hot proxy path; falls back to `lookup` when missing. */
  peek(token: string | undefined): WebSession | null | undefined {
    if (!token) return null;
    const hit = this.cache.get(hashToken(token));
    if (!hit || Date.now() - hit.cachedAt >= CACHE_TTL_MS) return undefined;
    return hit.s.expiresAt > Date.now() ? hit.s : null;
  }

  /** Replaces the session's server-side data; `refreshAt` (when given) is when its provider tokens fall due. */
  async updateData(id: string, data: Record<string, unknown>, refreshAt?: number | null): Promise<void> {
    await this.db
      .updateTable('web_sessions')
      .set(
        refreshAt === undefined
          ? { data: JSON.stringify(data) }
          : { data: JSON.stringify(data), refresh_at: refreshAt },
      )
      .where('id', '=', id)
      .execute();
    this.cache.delete(id);
  }

  async setRefreshAt(id: string, refreshAt: number | null): Promise<void> {
    await this.db.updateTable('web_sessions').set({ refresh_at: refreshAt }).where('id', '=', id).execute();
  }

  /** Sessions whose provider tokens are due for a refresh. */
  async dueForRefresh(now = Date.now(), limit = 100): Promise<{ id: string; user_id: number }[]> {
    return this.db
      .selectFrom('web_sessions')
      .select(['id', 'user_id'])
      .where('refresh_at', '<=', now)
      .where('expires_at', '>', now)
      .orderBy('refresh_at')
      .limit(limit)
      .execute();
  }

  /** The raw rows of one session or of all of a user's live sessions (server-side data included). */
  async rows(where: { id: string } | { userId: number } | { dataContains: string }) {
    let q = this.db.selectFrom('web_sessions').selectAll().where('expires_at', '>', Date.now());
    if ('id' in where) q = q.where('id', '=', where.id);
    else if ('userId' in where) q = q.where('user_id', '=', where.userId);
    // A coarse prefilter, case-sensitive on both engines (SQLite's LIKE is not, and PostgreSQL has no
    // instr): the text contains the needle when removing it changes the text. Callers check the parsed data.
    else q = q.where(sql<boolean>`replace(data, ${where.dataContains}, '') <> data`);
    return q.execute();
  }

  async destroy(id: string): Promise<void> {
    await this.db.deleteFrom('web_sessions').where('id', '=', id).execute();
    this.cache.delete(id);
  }

  /** Signs the user out everywhere (all browsers, all tabs). */
  async destroyAllFor(userId: number): Promise<void> {
    await this.db.deleteFrom('web_sessions').where('user_id', '=', userId).execute();
    for (const [k, v] of this.cache) if (v.s.user.id === userId) this.cache.delete(k);
  }

  /** Forget cached user data (after an admin changes a user). */
  invalidateUser(userId: number): void {
    for (const [k, v] of this.cache) if (v.s.user.id === userId) this.cache.delete(k);
  }

  async sweepExpired(): Promise<void> {
    await this.db.deleteFrom('web_sessions').where('expires_at', '<=', Date.now()).execute();
  }
}
