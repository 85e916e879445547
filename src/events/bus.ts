// Publish/subscribe for live pages (server-sent events), in process, and across the gateways sharing a
// database through a Fanout. Every event names its audience: one user, admins, the users of one
// cluster, or everyone signed in; a subscriber only ever receives what is addressed to it.
export type Audience = { userId: number } | { admins: true } | { cluster: string } | { all: true };

export interface LiveEvent {
  /** e.g. 'session', 'job', 'notification', 'resources', 'announcement' */
  type: string;
  data: unknown;
}

export interface Subscriber {
  userId: number;
  isAdmin: boolean;
  /** The clusters this user may use: only their free-resources tables reach the user (admins get all). */
  clusters?: ReadonlySet<string>;
  send(ev: LiveEvent): void;
}

/**
 * Carries events to the other gateways sharing the database and theirs to this one (on PostgreSQL:
 * src/db/fanout.ts). Each event reaches every gateway's subscribers once: the publisher's locally, the
 * others' through the fanout.
 */
export interface Fanout {
  send(to: Audience, ev: LiveEvent): void;
  /** `deliver` gets what other gateways published. */
  receive(deliver: (to: Audience, ev: LiveEvent) => void): void;
}

export class EventBus {
  private readonly subs = new Set<Subscriber>();

  constructor(private readonly fanout?: Fanout) {
    fanout?.receive((to, ev) => this.deliver(to, ev));
  }

  subscribe(s: Subscriber): () => void {
    this.subs.add(s);
    return () => this.subs.delete(s);
  }

  publish(to: Audience, ev: LiveEvent): void {
    this.deliver(to, ev);
    this.fanout?.send(to, ev);
  }

  private deliver(to: Audience, ev: LiveEvent): void {
    for (const s of this.subs) {
      if (
        'all' in to ||
        ('admins' in to && s.isAdmin) ||
        ('userId' in to && s.userId === to.userId) ||
        ('cluster' in to && (s.isAdmin || s.clusters?.has(to.cluster) === true))
      ) {
        try {
          s.send(ev);
        } catch {
          // A broken stream is removed by its own close handler.
        }
      }
    }
  }

  get size(): number {
    return this.subs.size;
  }
}
