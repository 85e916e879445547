// Who owns a session, as each part of the data path needs it: the name in its address, the Unix user
// its job must belong to, the identity the gateway acts as for it (cancel, read its log) and the one it
// reaches its sockets with. Names and uids do not change while the gateway runs, so most are cached.
import type { Db } from '../db/index.ts';
import { findUserById, type User } from '../db/users.ts';
import type { UnixIdentity } from '../scheduler/types.ts';
import { lookupUnixUser } from '../system/users.ts';

export class SessionOwners {
  private readonly usernames = new Map<number, string>();
  /** Owner's Unix user per user id: jobs are matched by tag only when they belong to the owner. */
  private readonly unixUsers = new Map<number, string>();
  private readonly socketOwners = new Map<number, { uid: number; gid: number }>();

  constructor(private readonly db: Db) {}

  /** A user who just made a session: their name is known without asking the database. */
  remember(user: User): void {
    this.usernames.set(user.id, user.username);
  }

  async username(userId: number): Promise<string> {
    return this.cached(this.usernames, userId, (row) => row?.username ?? '?');
  }

  async unixUser(userId: number): Promise<string> {
    return this.cached(this.unixUsers, userId, (row) => row?.unix_user ?? '');
  }

  private async cached(
    cache: Map<number, string>,
    userId: number,
    pick: (row: Awaited<ReturnType<typeof findUserById>>) => string,
  ): Promise<string> {
    let n = cache.get(userId);
    if (!n) {
      n = pick(await findUserById(this.db, userId));
      cache.set(userId, n);
    }
    return n;
  }

  /** The owner's Unix identity, looked up now (the scheduler and file commands run as it). */
  async identity(userId: number): Promise<UnixIdentity | null> {
    const owner = await findUserById(this.db, userId);
    return owner ? await lookupUnixUser(owner.unix_user) : null;
  }

  /** The Unix identity the gateway connects to a user's sockets with. */
  async socketOwner(userId: number): Promise<{ uid: number; gid: number } | null> {
    const hit = this.socketOwners.get(userId);
    if (hit) return hit;
    const id = await this.identity(userId);
    if (!id) return null;
    const owner = { uid: id.uid, gid: id.gid };
    this.socketOwners.set(userId, owner);
    return owner;
  }
}
