// `atrium db copy`: moves a site's state from its SQLite file to another database (PostgreSQL), all of
// it or nothing. Both sides are migrated to this release's schema first, so the columns match.
import { sql } from 'kysely';
import { engineOf } from './engine.ts';
import type { Db } from './index.ts';
import type { Database } from './schema.ts';

/** Every table, parents before the tables whose rows point at them (foreign keys). */
export const COPY_ORDER = [
  'users',
  'web_sessions',
  'oidc_login_states',
  'sessions',
  'session_events',
  'jobs',
  'notifications',
  'notification_prefs',
  'audit_log',
  'api_tokens',
  'announcements',
  'settings',
  'session_presets',
  'desktop_links',
  'job_usage',
] as const satisfies readonly (keyof Database)[];

/**
 * Tables that only coordinate the gateways running now (liveness, poll leases and snapshots, large live
 * events): not a site's state, so not copied; the target's are left as they are.
 */
export const NOT_COPIED = [
  'gateways',
  'poll_leases',
  'poll_snapshots',
  'live_messages',
] as const satisfies readonly (keyof Database)[];

// A table added to the schema but to neither list fails the type-check here, not a site's move.
type Uncopied = Exclude<keyof Database, (typeof COPY_ORDER)[number] | (typeof NOT_COPIED)[number]>;
const everyTable: [Uncopied] extends [never] ? true : Uncopied = true;
void everyTable;

/** The copy cannot run (the target holds data and --force was not given...); nothing was written. */
export class CopyRefused extends Error {}

export interface CopyResult {
  tables: { table: string; rows: number }[];
  /** Rows that were in the target before (only with `force`). */
  replaced: number;
}

// PostgreSQL takes at most 65535 parameters per statement.
const PARAMS_PER_INSERT = 30_000;
const READ_BATCH = 2_000;

async function countRows(db: Db, table: string): Promise<number> {
  const r = await db
    .selectFrom(table as keyof Database)
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

async function userTables(db: Db): Promise<string[]> {
  return (await db.introspection.getTables()).map((t) => t.name).filter((n) => !n.startsWith('kysely_'));
}

/**
 * Copies every table of `src` (SQLite) into `dst` in one transaction, then checks the counts. The
 * target must be empty unless `force`, which replaces what it holds. `say` gets one line per table.
 */
export async function copyDatabase(
  src: Db,
  dst: Db,
  opts: { force?: boolean; say?: (line: string) => void } = {},
): Promise<CopyResult> {
  if (engineOf(src) !== 'sqlite') throw new CopyRefused('from: the source must be a SQLite database');
  const known = new Set<string>([...COPY_ORDER, ...NOT_COPIED]);
  for (const side of [src, dst]) {
    const unknown = (await userTables(side)).filter((t) => !known.has(t));
    // A table this release does not know (a newer release's?) would be left behind.
    if (unknown.length > 0)
      throw new CopyRefused(`${side === src ? 'from' : 'to'}: unknown table(s) ${unknown.join(', ')}`);
  }
  // One read transaction: a consistent snapshot even if something still writes the file.
  return src.transaction().execute(async (from) =>
    dst.transaction().execute(async (to) => {
      const before: string[] = [];
      let replaced = 0;
      for (const t of COPY_ORDER) {
        const n = await countRows(to, t);
        if (n > 0) before.push(`${t}: ${n}`);
        replaced += n;
      }
      if (replaced > 0 && !opts.force)
        throw new CopyRefused(
          `to: the target database is not empty (${before.join(', ')}); --force replaces its contents`,
        );
      for (const t of [...COPY_ORDER].reverse()) await to.deleteFrom(t).execute();

      const tables: CopyResult['tables'] = [];
      for (const t of COPY_ORDER) {
        const expected = await countRows(from, t);
        let last = 0;
        for (;;) {
          // Pages by SQLite's rowid, so a large audit log is never all in memory.
          const page = await sql<Record<string, unknown> & { atrium_copy_rowid: number }>`
            select rowid as atrium_copy_rowid, * from ${sql.table(t)}
            where rowid > ${last} order by rowid limit ${READ_BATCH}`.execute(from);
          if (page.rows.length === 0) break;
          last = page.rows[page.rows.length - 1]!.atrium_copy_rowid;
          const rows = page.rows.map(({ atrium_copy_rowid: _, ...row }) => row);
          const per = Math.max(1, Math.floor(PARAMS_PER_INSERT / Object.keys(rows[0]!).length));
          for (let i = 0; i < rows.length; i += per) {
            await to
              .insertInto(t)
              .values(rows.slice(i, i + per) as never)
              .execute();
          }
        }
        const copied = await countRows(to, t);
        if (copied !== expected)
          throw new Error(`${t}: ${expected} rows in the source, ${copied} in the target`);
        tables.push({ table: t, rows: copied });
        opts.say?.(`${t}: ${copied} row${copied === 1 ? '' : 's'}`);
      }
      if (engineOf(to) === 'postgres') await resetSequences(to);
      return { tables, replaced };
    }),
  );
}

/**
 * Rows were inserted with their ids, which does not advance PostgreSQL's sequences: without this the
 * next insert would take id 1 again and collide.
 */
async function resetSequences(db: Db): Promise<void> {
  for (const t of await db.introspection.getTables()) {
    if (t.name.startsWith('kysely_')) continue;
    for (const c of t.columns) {
      if (!c.isAutoIncrementing) continue;
      await sql`select setval(pg_get_serial_sequence(${t.name}, ${c.name}),
                 coalesce((select max(${sql.ref(c.name)}) from ${sql.table(t.name)}), 0) + 1, false)`.execute(
        db,
      );
    }
  }
}
