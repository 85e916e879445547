// The desktop_links table: one-time desktop links, as hashes (src/server/features/desktop-links.ts).
import type { Selectable } from 'kysely';
import type { DesktopLinkEnd } from '../core/desktop-link.ts';
import type { Db } from './index.ts';
import type { DesktopLinksTable } from './schema.ts';

export type DesktopLinkRow = Selectable<DesktopLinksTable>;

export async function insertDesktopLink(
  db: Db,
  l: {
    sessionId: string;
    userId: number;
    tokenHash: string;
    viewOnly: boolean;
    now: number;
    expiresAt: number;
  },
): Promise<DesktopLinkRow> {
  return db
    .insertInto('desktop_links')
    .values({
      session_id: l.sessionId,
      user_id: l.userId,
      token_hash: l.tokenHash,
      view_only: l.viewOnly ? 1 : 0,
      created_at: l.now,
      expires_at: l.expiresAt,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function desktopLinkByToken(db: Db, tokenHash: string): Promise<DesktopLinkRow | undefined> {
  return db.selectFrom('desktop_links').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
}

/** The link whose grant a browser holds (whether the grant still lasts is its state's to say). */
export async function desktopLinkByGrant(db: Db, grantHash: string): Promise<DesktopLinkRow | undefined> {
  return db.selectFrom('desktop_links').selectAll().where('grant_hash', '=', grantHash).executeTakeFirst();
}

/**
 * Marks the link used by the browser given `grantHash`: true for exactly one caller, however many open
 * it at once, and only while it is unused, unexpired and not ended.
 */
export async function redeemDesktopLink(
  db: Db,
  id: number,
  r: { grantHash: string; ip: string; now: number },
): Promise<boolean> {
  const res = await db
    .updateTable('desktop_links')
    .set({ used_at: r.now, used_ip: r.ip, grant_hash: r.grantHash })
    .where('id', '=', id)
    .where('used_at', 'is', null)
    .where('ended_at', 'is', null)
    .where('expires_at', '>', r.now)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/** Ends links before their time; returns those it ended (links already ended or expired stay as they are). */
export async function endDesktopLinks(
  db: Db,
  where: { id: number } | { sessionId: string },
  by: DesktopLinkEnd,
  now: number,
): Promise<DesktopLinkRow[]> {
  let q = db
    .updateTable('desktop_links')
    .set({ ended_at: now, ended_by: by })
    .where('ended_at', 'is', null)
    .where('expires_at', '>', now);
  q = 'id' in where ? q.where('id', '=', where.id) : q.where('session_id', '=', where.sessionId);
  return q.returningAll().execute();
}

/** A user's links made since `since`, newest first. */
export async function listDesktopLinks(db: Db, userId: number, since: number): Promise<DesktopLinkRow[]> {
  return db
    .selectFrom('desktop_links')
    .selectAll()
    .where('user_id', '=', userId)
    .where('created_at', '>=', since)
    .orderBy('id', 'desc')
    .limit(200)
    .execute();
}

export async function desktopLinkOf(db: Db, id: number, userId: number): Promise<DesktopLinkRow | undefined> {
  return db
    .selectFrom('desktop_links')
    .selectAll()
    .where('id', '=', id)
    .where('user_id', '=', userId)
    .executeTakeFirst();
}
