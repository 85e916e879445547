// Which gateways sharing the database are alive: each renews its row every BEAT_MS; one not heard from
// for GONE_MS is gone. Times are the database's clock, so gateways' clocks may differ. A session whose
// gateway is gone before it submitted the job is settled by the poll at once (settleRequested in
// src/sessions/launch.ts).
import os from 'node:os';
import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { Db } from './index.ts';

export const BEAT_MS = 500;
export const GONE_MS = 2000;
/**
 * How long after its last beat a gone gateway's submit may still create a job: an sbatch it started
 * runs on without it (a killed gateway's timer no longer bounds it), so a session is settled only by a
 * poll started later than that. The default command timeout (slurm.commandTimeoutSeconds): what the
 * gateway itself would have let an sbatch take. One second was too short on a loaded host (CI saw a
 * job appear for a session already failed as "no job was created").
 */
const SUBMIT_GRACE_MS = 30_000;
/** Rows of gateways gone this long are removed. */
const FORGET_MS = 3600_000;

/** The database's clock in epoch milliseconds (PostgreSQL). */
export const DB_NOW_MS = sql<number>`(extract(epoch from clock_timestamp()) * 1000)::bigint`;

interface Peer {
  /** Last beat, in this host's clock. */
  seenAt: number;
  /** Its row is gone (a clean stop): gone now, however recent its last beat. */
  removed: boolean;
}

export class GatewayRegistry {
  private timer: NodeJS.Timeout | null = null;
  private readonly peers = new Map<string, Peer>();
  /** This host's time of the last successful look at the table (0: never). */
  private refreshedAt = 0;
  private lastForget = 0;
  private beating: Promise<void> | null = null;

  constructor(
    private readonly db: Db,
    readonly id: string,
    private readonly url: () => string,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => {
      this.beating ??= this.beat().finally(() => {
        this.beating = null;
      });
    }, BEAT_MS);
    this.timer.unref();
  }

  /** Gone for good: the others settle its sessions without waiting for it to miss its beats. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.beating;
    await this.db
      .deleteFrom('gateways')
      .where('id', '=', this.id)
      .execute()
      .catch(() => undefined);
  }

  /** The gateways heard from within GONE_MS (this one included). */
  alive(now = Date.now()): string[] {
    return [...this.peers].filter(([, p]) => !p.removed && now - p.seenAt <= GONE_MS).map(([id]) => id);
  }

  /**
   * Whether gateway `id` is gone, and was already gone long enough before `t` (this host's time a poll
   * started) that the poll would have seen any job its last submit created.
   */
  goneBefore(id: string, t: number, now = Date.now()): boolean {
    if (id === this.id || this.refreshedAt === 0) return false;
    const p = this.peers.get(id);
    if (!p) return true;
    return (p.removed || now - p.seenAt > GONE_MS) && p.seenAt + BEAT_MS + SUBMIT_GRACE_MS < t;
  }

  private async beat(): Promise<void> {
    try {
      const r = await this.db
        .updateTable('gateways')
        .set({ seen_at: DB_NOW_MS, url: this.url() })
        .where('id', '=', this.id)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) {
        await this.db
          .insertInto('gateways')
          .values({
            id: this.id,
            host: os.hostname(),
            pid: process.pid,
            url: this.url(),
            started_at: DB_NOW_MS,
            seen_at: DB_NOW_MS,
          })
          .execute();
      }
      const local = Date.now();
      const rows = await this.db
        .selectFrom('gateways')
        .select(['id', sql<number>`${DB_NOW_MS} - seen_at`.as('age')])
        .execute();
      const seen = new Set<string>();
      for (const r of rows) {
        seen.add(r.id);
        const seenAt = local - Number(r.age);
        const p = this.peers.get(r.id);
        if (!p) this.peers.set(r.id, { seenAt, removed: false });
        else p.seenAt = seenAt;
      }
      for (const [id, p] of this.peers) if (!seen.has(id)) p.removed = true;
      this.refreshedAt = local;
      if (local - this.lastForget > 60_000) {
        this.lastForget = local;
        await this.db
          .deleteFrom('gateways')
          .where('seen_at', '<', sql<number>`${DB_NOW_MS} - ${FORGET_MS}`)
          .execute();
        for (const [id, p] of this.peers) if (local - p.seenAt > FORGET_MS) this.peers.delete(id);
      }
    } catch (e) {
      this.log.debug({ err: (e as Error).message }, 'gateway beat failed');
    }
  }
}
