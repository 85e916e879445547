// What every method's verified identity meets before it becomes a browser session, the same for all:
// an account made by one kind of method is never taken over by a same-named identity from another, a
// disabled account stays out, and the access rules (access.ts) decide. The routes word the refusals.
import type { Db } from '../db/index.ts';
import { findUserById, findUserByName, type UserRow, updateUser, upsertExternalUser } from '../db/users.ts';
import { type AccessRules, decideAccess } from './access.ts';
import type { VerifiedIdentity } from './sign-in.ts';

export type Admission =
  | { admitted: true; row: UserRow }
  /** e.g. a directory user named like the local "admin": refused rather than the accounts merged. */
  | { admitted: false; refusal: 'conflict'; existingSource: string }
  | { admitted: false; refusal: 'disabled' }
  | { admitted: false; refusal: 'not_allowed'; reason: string | undefined };

/** The account for a sign-in: created or brought up to date (groups, administrator) when admitted. */
export async function admit(db: Db, rules: AccessRules, id: VerifiedIdentity): Promise<Admission> {
  let row = await findUserByName(db, id.username);
  if (row && (row.source === 'local') !== (id.source === 'local')) {
    return { admitted: false, refusal: 'conflict', existingSource: row.source };
  }
  if (row?.disabled) return { admitted: false, refusal: 'disabled' };
  // Administrators from a directory or a provider are who its groups say; only local accounts keep a stored flag.
  const storedAdmin = row?.source === 'local' && row.is_admin === 1;
  const decision = decideAccess(id.username, id.groups, rules, storedAdmin);
  if (!decision.allowed) return { admitted: false, refusal: 'not_allowed', reason: decision.reason };
  if (id.source !== 'local' || !row) {
    row = await upsertExternalUser(db, {
      username: id.username,
      unixUser: id.unixUser,
      source: id.source,
      groups: id.groups,
      isAdmin: decision.isAdmin,
      displayName: id.displayName,
      email: id.email,
    });
  } else if (decision.isAdmin !== (row.is_admin === 1)) {
    await updateUser(db, row.id, { isAdmin: decision.isAdmin });
    row = (await findUserByName(db, id.username))!;
  }
  return { admitted: true, row };
}

/**
 * The access rules again for a signed-in user whose source has renewed the identity (its groups may
 * have changed): the account follows, or `why` the sign-in must end.
 */
export async function readmit(
  db: Db,
  rules: AccessRules,
  userId: number,
  id: VerifiedIdentity,
): Promise<{ ok: true } | { ok: false; why: string }> {
  const user = await findUserById(db, userId);
  if (!user || id.username !== user.username)
    return { ok: false, why: 'the refreshed identity names another user' };
  const decision = decideAccess(user.username, id.groups, rules);
  if (!decision.allowed) return { ok: false, why: `access withdrawn: ${decision.reason}` };
  await upsertExternalUser(db, {
    username: user.username,
    unixUser: user.unix_user,
    source: id.source,
    groups: id.groups,
    isAdmin: decision.isAdmin,
    displayName: id.displayName,
    email: id.email,
  });
  return { ok: true };
}
