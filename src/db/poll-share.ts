// One scheduler poll per cluster for every gateway sharing one PostgreSQL. A lease per cluster
// (`poll_leases`: holder, expiry on the database's clock) is taken by compare-and-set and renewed
// several times per poll period; its holder polls, runs what follows from a poll (state changes, live
// events) and stores the snapshot (`poll_snapshots`) with a NOTIFY; the others read it, and ask the
// holder for an early poll after a submit or a stop of their own. When the holder dies its lease
// expires and another gateway takes it: within LEASE_FACTOR poll periods plus one check.
import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { ClusterPoller, PollShare } from '../scheduler/poller.ts';
import type { PollSnapshot } from '../scheduler/types.ts';
import { DB_NOW_MS } from './gateways.ts';
import type { Db } from './index.ts';
import type { PgLink } from './link.ts';

const SNAPSHOT_CHANNEL = 'atrium_poll';
const ASK_CHANNEL = 'atrium_poll_ask';
/** The lease lasts this many poll periods (at least LEASE_MIN_MS) from its last renewal. */
const LEASE_FACTOR = 1.25;
const LEASE_MIN_MS = 1500;
/** The holder stops believing it holds the lease this long before the database says it ends. */
const LEASE_MARGIN_MS = 250;
/** Followers ask for an early poll at most this often per cluster. */
const ASK_EVERY_MS = 200;

export class PollLeases {
  private readonly shares = new Map<string, ClusterShare>();

  constructor(
    readonly db: Db,
    readonly link: PgLink,
    readonly gatewayId: string,
    readonly log: Logger,
  ) {
    link.listen(SNAPSHOT_CHANNEL, (payload) => {
      let m: { c?: string; v?: number; o?: string };
      try {
        m = JSON.parse(payload) as typeof m;
      } catch {
        return;
      }
      if (m.o === this.gatewayId || typeof m.c !== 'string') return;
      this.shares.get(m.c)?.fetch();
    });
    link.listen(ASK_CHANNEL, (cluster) => this.shares.get(cluster)?.asked());
    // Notifications were lost while the link was down: read every cluster's latest snapshot now.
    link.onReconnect(() => {
      for (const s of this.shares.values()) s.fetch();
    });
  }

  /** The poller polls from now on only while this gateway holds the cluster's lease. */
  add(poller: ClusterPoller): void {
    const s = new ClusterShare(this, poller);
    this.shares.set(poller.adapter.cluster, s);
    poller.shareWith(s);
  }

  start(): void {
    for (const s of this.shares.values()) s.start();
  }

  /** Stops, and gives up the leases this gateway holds so another takes them at once. */
  async stop(): Promise<void> {
    for (const s of this.shares.values()) s.stop();
    await this.db
      .deleteFrom('poll_leases')
      .where('holder', '=', this.gatewayId)
      .execute()
      .catch(() => undefined);
  }

  /** Per cluster: whether this gateway polls it, and how old its latest snapshot is (ms). */
  status(): Record<string, { polls: boolean }> {
    const out: Record<string, { polls: boolean }> = {};
    for (const [name, s] of this.shares) out[name] = { polls: s.leading };
    return out;
  }
}

class ClusterShare implements PollShare {
  private held = false;
  /** This host's time until which the lease is surely ours. */
  private heldUntil = 0;
  /** Version of the latest snapshot read or stored. */
  private version = -1;
  private timer: NodeJS.Timeout | null = null;
  private checking = false;
  private fetching: Promise<void> | null = null;
  private fetchAgain = false;
  private lastAsk = 0;
  private askTimer: NodeJS.Timeout | null = null;
  private storing: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly owner: PollLeases,
    private readonly poller: ClusterPoller,
  ) {}

  private get cluster(): string {
    return this.poller.adapter.cluster;
  }

  private get leaseMs(): number {
    return Math.max(LEASE_MIN_MS, Math.round(this.poller.intervalMs * LEASE_FACTOR));
  }

  /** How often the lease is renewed, or its expiry looked for. */
  private get checkMs(): number {
    return Math.max(250, Math.min(1000, Math.round(this.poller.intervalMs / 4)));
  }

  get leading(): boolean {
    return this.held && Date.now() < this.heldUntil;
  }

  start(): void {
    void this.check();
    this.timer = setInterval(() => void this.check(), this.checkMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.askTimer) clearTimeout(this.askTimer);
    this.timer = null;
    this.askTimer = null;
    this.held = false;
  }

  /** Renews the lease or tries to take it (compare-and-set on its expiry), then follows the holder. */
  private async check(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    const { db, gatewayId, log } = this.owner;
    const started = Date.now();
    try {
      const won = await sql<{ holder: string }>`
        insert into poll_leases (cluster, holder, expires_at)
        values (${this.cluster}, ${gatewayId}, ${DB_NOW_MS} + ${this.leaseMs})
        on conflict (cluster) do update set holder = excluded.holder, expires_at = excluded.expires_at
        where poll_leases.holder = excluded.holder or poll_leases.expires_at < ${DB_NOW_MS}
        returning holder`.execute(db);
      const mine = won.rows.length === 1;
      const was = this.leading;
      this.held = mine;
      if (mine) this.heldUntil = started + this.leaseMs - LEASE_MARGIN_MS;
      if (mine && !was) {
        log.info({ cluster: this.cluster }, 'this gateway polls the cluster now');
        this.poller.wake();
      } else if (!mine && was) {
        log.info({ cluster: this.cluster }, 'another gateway polls the cluster now');
      }
      if (!mine) this.fetch();
    } catch (e) {
      // The database does not answer: the lease is ours until it would have expired, no longer.
      log.debug({ cluster: this.cluster, err: (e as Error).message }, 'poll lease not renewed');
    } finally {
      this.checking = false;
    }
  }

  share(snap: PollSnapshot): void {
    const age = Math.min(this.poller.ageMs, 60_000);
    const data = JSON.stringify(snap);
    this.storing = this.storing
      .then(() => this.store(data, age))
      .catch((e: Error) =>
        this.owner.log.debug({ cluster: this.cluster, err: e.message }, 'snapshot not shared'),
      );
  }

  private async store(data: string, age: number): Promise<void> {
    const { db, gatewayId, link } = this.owner;
    // Only the holder's snapshot replaces the stored one (a former holder's late poll does not).
    const r = await sql<{ version: number }>`
      insert into poll_snapshots (cluster, version, holder, taken_at, data)
      values (${this.cluster}, 1, ${gatewayId}, ${DB_NOW_MS} - ${age}, ${data})
      on conflict (cluster) do update set version = poll_snapshots.version + 1, holder = excluded.holder,
        taken_at = excluded.taken_at, data = excluded.data
      where exists (select 1 from poll_leases l where l.cluster = excluded.cluster and l.holder = excluded.holder)
      returning version`.execute(db);
    const v = r.rows[0]?.version;
    if (v === undefined) return;
    this.version = Number(v);
    await link.notify(SNAPSHOT_CHANNEL, JSON.stringify({ c: this.cluster, v: this.version, o: gatewayId }));
  }

  /** Reads the stored snapshot when it is newer than ours (coalesced). */
  fetch(): void {
    if (this.leading) return;
    if (this.fetching) {
      this.fetchAgain = true;
      return;
    }
    this.fetching = this.fetchOnce()
      .catch((e: Error) =>
        this.owner.log.debug({ cluster: this.cluster, err: e.message }, 'shared snapshot not read'),
      )
      .finally(() => {
        this.fetching = null;
        if (this.fetchAgain) {
          this.fetchAgain = false;
          this.fetch();
        }
      });
  }

  private async fetchOnce(): Promise<void> {
    const local = Date.now();
    const r = await sql<{ version: number; data: string; age: number }>`
      select version, data, ${DB_NOW_MS} - taken_at as age from poll_snapshots
      where cluster = ${this.cluster} and version <> ${this.version}`.execute(this.owner.db);
    const row = r.rows[0];
    if (!row || this.leading) return;
    this.version = Number(row.version);
    this.poller.receive(JSON.parse(row.data) as PollSnapshot, local - Math.max(0, Number(row.age)));
  }

  askPoll(): void {
    if (this.askTimer) return;
    const send = () => {
      this.askTimer = null;
      this.lastAsk = Date.now();
      void this.owner.link.notify(ASK_CHANNEL, this.cluster);
    };
    // Coalesced, never dropped: a burst of asks is one, sent at most ASK_EVERY_MS after the last.
    const wait = this.lastAsk + ASK_EVERY_MS - Date.now();
    if (wait <= 0) send();
    else this.askTimer = setTimeout(send, wait);
  }

  /** Another gateway wants an early poll: the holder obliges (coalesced with its polls). */
  asked(): void {
    if (this.leading) this.poller.wake();
  }
}
