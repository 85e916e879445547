// Local accounts: the gateway's own users table, passwords hashed with scrypt (passwords.ts).
import type { Db } from '../db/index.ts';
import { findUserByName } from '../db/users.ts';
import { groupsOf } from '../system/users.ts';
import { verifyPassword } from './passwords.ts';
import { type PasswordCredentials, PasswordMethod, type SignedIn } from './sign-in.ts';

// A fixed hash so that unknown users take as long as known ones (no user enumeration by timing).
const DUMMY_HASH = 'scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';

export class LocalSignIn extends PasswordMethod {
  readonly name = 'local';
  protected readonly label = null;

  constructor(private readonly db: Db) {
    super();
  }

  async finish({ username, password }: PasswordCredentials): Promise<SignedIn<never> | null> {
    const row = await findUserByName(this.db, username);
    if (!row || row.source !== 'local' || !row.password_hash || row.disabled) {
      await verifyPassword(password, DUMMY_HASH);
      return null;
    }
    if (!(await verifyPassword(password, row.password_hash))) return null;
    const stored = JSON.parse(row.groups) as string[];
    const unixGroups = await groupsOf(row.unix_user);
    return {
      identity: {
        username: row.username,
        unixUser: row.unix_user,
        groups: [...new Set([...stored, ...unixGroups])],
        displayName: row.display_name,
        email: row.email,
        source: 'local',
      },
    };
  }
}
