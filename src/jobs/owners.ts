// Who a job belongs to on the gateway: the poll and sacct name Unix users, several gateway accounts may
// share one (usually one), and disabled accounts follow nothing.
import type { Db } from '../db/index.ts';
import { listUsers, type User } from '../db/users.ts';

const USERS_TTL_MS = 30_000;

export interface JobOwnersDeps {
  db: Db;
}

export class JobOwners {
  /** Unix user -> gateway user ids (usually one). */
  private byUnix = new Map<string, number[]>();
  private usersAt = 0;

  constructor(private readonly deps: JobOwnersDeps) {}

  /** Re-reads the users at most every 30 s (a poll comes every few seconds). */
  async refresh(): Promise<void> {
    if (Date.now() - this.usersAt < USERS_TTL_MS) return;
    const map = new Map<string, number[]>();
    for (const u of await listUsers(this.deps.db)) {
      if (u.disabled) continue;
      const ids = map.get(u.unix_user) ?? [];
      ids.push(u.id);
      map.set(u.unix_user, ids);
    }
    this.byUnix = map;
    this.usersAt = Date.now();
  }

  /** A user who just submitted is followed from the next poll on, not only after the next refresh. */
  note(user: User): void {
    const ids = this.byUnix.get(user.unixUser) ?? [];
    if (!ids.includes(user.id))
      this.byUnix.set(
        user.unixUser,
        [...ids, user.id].sort((a, b) => a - b),
      );
  }

  has(unixUser: string): boolean {
    return this.byUnix.has(unixUser);
  }

  /** The gateway user ids of a Unix user, lowest first; undefined when none is known. */
  idsOf(unixUser: string): readonly number[] | undefined {
    return this.byUnix.get(unixUser);
  }
}
