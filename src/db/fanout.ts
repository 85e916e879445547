// Live events across gateways sharing one PostgreSQL: what one gateway publishes reaches the pages
// connected to every other one (NOTIFY on the database link), and theirs reach this one. A gateway hears
// its own notifications too: they carry its origin id and are skipped (it delivered them locally). An
// event too large for a NOTIFY payload is written to `live_messages` and announced by id.
import type { Logger } from 'pino';
import type { Db } from './index.ts';
import { MAX_PAYLOAD_BYTES, type PgLink } from './link.ts';

const CHANNEL = 'atrium_live';
/** Large events are read by the others within milliseconds; rows older than this are removed. */
const KEEP_MS = 60_000;

interface Envelope {
  /** Origin: the gateway that published it. */
  o: string;
  /** Audience, as the bus has it. */
  t: unknown;
  /** The event. */
  e: unknown;
}

/**
 * The bus's Fanout (src/events/bus.ts), kept free of its types: `send` takes what `publish` got,
 * `receive` hands over what other gateways published.
 */
export class PgFanout<To = unknown, Ev = unknown> {
  private deliver: ((to: To, ev: Ev) => void) | null = null;
  /** Sends in publish order, large events included (their insert is awaited before the NOTIFY). */
  private chain: Promise<unknown> = Promise.resolve();
  private lastSweep = 0;

  constructor(
    private readonly db: Db,
    private readonly link: PgLink,
    private readonly origin: string,
    private readonly log: Logger,
  ) {
    link.listen(CHANNEL, (payload) => void this.onNotify(payload));
  }

  send(to: To, ev: Ev): void {
    const body = JSON.stringify({ o: this.origin, t: to, e: ev } satisfies Envelope);
    this.chain = this.chain
      .then(() => this.post(body))
      .catch((e: Error) => this.log.debug({ err: e.message }, 'live event not sent to the other gateways'));
  }

  receive(deliver: (to: To, ev: Ev) => void): void {
    this.deliver = deliver;
  }

  private async post(body: string): Promise<void> {
    if (!this.link.up) return;
    if (Buffer.byteLength(body) <= MAX_PAYLOAD_BYTES) {
      await this.link.notify(CHANNEL, body);
      return;
    }
    const now = Date.now();
    const row = await this.db
      .insertInto('live_messages')
      .values({ at: now, body })
      .returning('id')
      .executeTakeFirstOrThrow();
    await this.link.notify(CHANNEL, JSON.stringify({ o: this.origin, id: row.id }));
    if (now - this.lastSweep > KEEP_MS) {
      this.lastSweep = now;
      await this.db
        .deleteFrom('live_messages')
        .where('at', '<', now - KEEP_MS)
        .execute();
    }
  }

  private async onNotify(payload: string): Promise<void> {
    let msg: Envelope & { id?: number };
    try {
      msg = JSON.parse(payload) as Envelope & { id?: number };
    } catch {
      return;
    }
    if (msg.o === this.origin || !this.deliver) return;
    if (msg.id !== undefined) {
      try {
        const row = await this.db
          .selectFrom('live_messages')
          .select('body')
          .where('id', '=', msg.id)
          .executeTakeFirst();
        if (!row) return;
        msg = JSON.parse(row.body) as Envelope;
      } catch (e) {
        this.log.debug({ err: (e as Error).message }, 'a large live event could not be read');
        return;
      }
    }
    this.deliver(msg.t as To, msg.e as Ev);
  }
}
