// Password sign-in providers (local accounts, LDAP...). OIDC is a redirect flow and lives apart.
import type { Db } from '../db/index.ts';
import { findUserByName } from '../db/users.ts';
import { groupsOf } from '../system/users.ts';
import { verifyPassword } from './passwords.ts';

export interface VerifiedIdentity {
  username: string;
  unixUser: string;
  groups: string[];
  displayName?: string | null;
  email?: string | null;
  /** 'local' | 'ldap' */
  source: string;
}

/** The provider could not check the password (directory down, misconfigured): not a wrong password. */
export class ProviderUnavailable extends Error {
  constructor(
    readonly provider: string,
    message: string,
  ) {
    super(message);
    this.name = 'ProviderUnavailable';
  }
}

export interface PasswordProvider {
  readonly name: string;
  /**
   * The identity when the password is right, null when it is wrong or the user unknown.
   * Throws ProviderUnavailable when it cannot tell.
   */
  verify(username: string, password: string): Promise<VerifiedIdentity | null>;
}

// A fixed hash so that unknown users take as long as known ones (no user enumeration by timing).
const DUMMY_HASH = 'scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';

export class LocalPasswordProvider implements PasswordProvider {
  readonly name = 'local';
  constructor(private readonly db: Db) {}

  async verify(username: string, password: string): Promise<VerifiedIdentity | null> {
    const row = await findUserByName(this.db, username);
    if (!row || row.source !== 'local' || !row.password_hash || row.disabled) {
      await verifyPassword(password, DUMMY_HASH);
      return null;
    }
    if (!(await verifyPassword(password, row.password_hash))) return null;
    const stored = JSON.parse(row.groups) as string[];
    const unixGroups = await groupsOf(row.unix_user);
    return {
      username: row.username,
      unixUser: row.unix_user,
      groups: [...new Set([...stored, ...unixGroups])],
      displayName: row.display_name,
      email: row.email,
      source: 'local',
    };
  }
}
