// Named presets of the new-session form (table session_presets), and the recent sessions the form's
// last-used values come from.
import type { Selectable } from 'kysely';
import type { PresetValues } from '../api/presets.ts';
import type { RecentSession } from '../core/presets.ts';
import type { SessionRequest } from '../core/request.ts';
import type { Db } from './index.ts';
import type { SessionPresetsTable } from './schema.ts';

export type PresetRow = Selectable<SessionPresetsTable>;

/** Sessions read to find the newest per cluster and app: enough for any real mix of apps. */
const RECENT_SESSIONS = 300;

/** The user's own presets and every site preset. */
export async function presetsVisibleTo(db: Db, userId: number): Promise<PresetRow[]> {
  return db
    .selectFrom('session_presets')
    .selectAll()
    .where((eb) => eb.or([eb('user_id', '=', userId), eb('user_id', 'is', null)]))
    .orderBy('name')
    .orderBy('id')
    .execute();
}

export async function getPreset(db: Db, id: number): Promise<PresetRow | undefined> {
  return db.selectFrom('session_presets').selectAll().where('id', '=', id).executeTakeFirst();
}

/** The presets of one owner (null: the site's) on a cluster. */
export async function presetsOf(db: Db, userId: number | null, cluster: string): Promise<PresetRow[]> {
  return db
    .selectFrom('session_presets')
    .selectAll()
    .where('user_id', userId === null ? 'is' : '=', userId)
    .where('cluster', '=', cluster)
    .execute();
}

export async function countPresets(db: Db, userId: number): Promise<number> {
  const r = await db
    .selectFrom('session_presets')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('user_id', '=', userId)
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

/** Makes a preset its owner's only default on its cluster (or not the default), in one transaction. */
async function setDefault(db: Db, row: PresetRow, on: boolean, now: number): Promise<void> {
  if (on && row.user_id !== null) {
    await db
      .updateTable('session_presets')
      .set({ is_default: 0, updated_at: now })
      .where('user_id', '=', row.user_id)
      .where('cluster', '=', row.cluster)
      .where('is_default', '=', 1)
      .where('id', '!=', row.id)
      .execute();
  }
  await db
    .updateTable('session_presets')
    .set({ is_default: on ? 1 : 0, updated_at: now })
    .where('id', '=', row.id)
    .execute();
}

export async function insertPreset(
  db: Db,
  p: { userId: number | null; cluster: string; name: string; values: PresetValues; isDefault: boolean },
): Promise<PresetRow> {
  return db.transaction().execute(async (tx) => {
    const now = Date.now();
    const row = await tx
      .insertInto('session_presets')
      .values({
        user_id: p.userId,
        cluster: p.cluster,
        name: p.name,
        form_values: JSON.stringify(p.values),
        is_default: 0,
        created_at: now,
        updated_at: now,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    if (!p.isDefault) return row;
    await setDefault(tx, row, true, now);
    return { ...row, is_default: 1 };
  });
}

export async function updatePreset(
  db: Db,
  row: PresetRow,
  patch: { name?: string; values?: PresetValues; isDefault?: boolean },
): Promise<PresetRow> {
  return db.transaction().execute(async (tx) => {
    const now = Date.now();
    await tx
      .updateTable('session_presets')
      .set({
        ...(patch.name !== undefined ? { name: patch.name } : {}),
        ...(patch.values !== undefined ? { form_values: JSON.stringify(patch.values) } : {}),
        updated_at: now,
      })
      .where('id', '=', row.id)
      .execute();
    if (patch.isDefault !== undefined) await setDefault(tx, row, patch.isDefault, now);
    return (await getPreset(tx, row.id))!;
  });
}

export async function deletePreset(db: Db, id: number): Promise<void> {
  await db.deleteFrom('session_presets').where('id', '=', id).execute();
}

/** The user's newest sessions, newest first: what each asked for is the form's last-used values. */
export async function recentSessions(db: Db, userId: number): Promise<RecentSession[]> {
  const rows = await db
    .selectFrom('sessions')
    .select(['id', 'cluster', 'app', 'created_at', 'request'])
    .where('user_id', '=', userId)
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(RECENT_SESSIONS)
    .execute();
  return rows.map((r) => ({
    id: r.id,
    cluster: r.cluster,
    app: r.app,
    createdAt: r.created_at,
    request: JSON.parse(r.request) as SessionRequest,
  }));
}
