import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { migrate } from './migrations.ts';
import type { Database } from './schema.ts';

export type Db = Kysely<Database>;

/** Opens (and migrates) the database. `url` is `sqlite:<path>` or `sqlite::memory:`. */
export async function openDb(url: string): Promise<Db> {
  const m = /^sqlite:(.*)$/.exec(url);
  if (!m) throw new Error(`database.url: only "sqlite:<path>" is supported in this release (got "${url}")`);
  const file = m[1]!;
  if (file !== ':memory:') {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  }
  const sqlite = new SQLite(file);
  if (file !== ':memory:') fs.chmodSync(file, 0o600);
  // WAL lets page reads run while a poll writes; NORMAL sync is safe with WAL and much faster.
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  await migrate(db);
  return db;
}

export function now(): number {
  return Date.now();
}
