import type { Selectable, Updateable } from 'kysely';
import type { Db } from './index.ts';
import type { UsersTable } from './schema.ts';

export type UserRow = Selectable<UsersTable>;

export interface User {
  id: number;
  username: string;
  unixUser: string;
  displayName: string | null;
  email: string | null;
  source: string;
  isAdmin: boolean;
  groups: string[];
  disabled: boolean;
}

export function toUser(r: UserRow): User {
  return {
    id: r.id,
    username: r.username,
    unixUser: r.unix_user,
    displayName: r.display_name,
    email: r.email,
    source: r.source,
    isAdmin: r.is_admin === 1,
    groups: JSON.parse(r.groups) as string[],
    disabled: r.disabled === 1,
  };
}

export async function findUserByName(db: Db, username: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').selectAll().where('username', '=', username).executeTakeFirst();
}

export async function findUserById(db: Db, id: number): Promise<UserRow | undefined> {
  return db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function listUsers(db: Db): Promise<UserRow[]> {
  return db.selectFrom('users').selectAll().orderBy('username').execute();
}

export interface NewUser {
  username: string;
  unixUser: string;
  passwordHash?: string | null;
  source?: string;
  isAdmin?: boolean;
  groups?: string[];
  displayName?: string | null;
  email?: string | null;
}

export async function createUser(db: Db, u: NewUser): Promise<UserRow> {
  return db
    .insertInto('users')
    .values({
      username: u.username,
      unix_user: u.unixUser,
      password_hash: u.passwordHash ?? null,
      source: u.source ?? 'local',
      is_admin: u.isAdmin ? 1 : 0,
      groups: JSON.stringify(u.groups ?? []),
      display_name: u.displayName ?? null,
      email: u.email ?? null,
      disabled: 0,
      created_at: Date.now(),
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** Creates or refreshes a user who signed in through an external provider (OIDC, LDAP). */
export async function upsertExternalUser(db: Db, u: NewUser & { source: string }): Promise<UserRow> {
  const existing = await findUserByName(db, u.username);
  if (!existing) return createUser(db, u);
  await db
    .updateTable('users')
    .set({
      groups: JSON.stringify(u.groups ?? []),
      is_admin: u.isAdmin ? 1 : 0,
      display_name: u.displayName ?? existing.display_name,
      email: u.email ?? existing.email,
      source: u.source,
    })
    .where('id', '=', existing.id)
    .execute();
  return (await findUserById(db, existing.id))!;
}

export async function updateUser(
  db: Db,
  id: number,
  patch: Partial<{
    passwordHash: string;
    isAdmin: boolean;
    disabled: boolean;
    unixUser: string;
    lastLoginAt: number;
  }>,
): Promise<void> {
  const set: Updateable<UsersTable> = {};
  if (patch.passwordHash !== undefined) set.password_hash = patch.passwordHash;
  if (patch.isAdmin !== undefined) set.is_admin = patch.isAdmin ? 1 : 0;
  if (patch.disabled !== undefined) set.disabled = patch.disabled ? 1 : 0;
  if (patch.unixUser !== undefined) set.unix_user = patch.unixUser;
  if (patch.lastLoginAt !== undefined) set.last_login_at = patch.lastLoginAt;
  if (Object.keys(set).length === 0) return;
  await db.updateTable('users').set(set).where('id', '=', id).execute();
}

export async function countUsers(db: Db): Promise<number> {
  const r = await db
    .selectFrom('users')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(r.n);
}
