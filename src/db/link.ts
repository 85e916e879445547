// The gateway's own PostgreSQL connection for LISTEN/NOTIFY: how gateways sharing one database tell each
// other what changed (live events, routes, signed-out browsers, poll snapshots). Pooled connections
// cannot LISTEN (a notification reaches only the connection that listens), so this one is kept apart,
// reconnected when it drops, and says when it came back: what was told meanwhile is lost, and each user
// of the link then rebuilds its state from the tables.
import pg from 'pg';
import type { Logger } from 'pino';

/** PostgreSQL refuses NOTIFY payloads of 8000 bytes or more. */
export const MAX_PAYLOAD_BYTES = 7900;

const RETRY_MIN_MS = 200;
const RETRY_MAX_MS = 1000;
/** A connection that silently stopped answering (a host gone without a reset) is found this fast. */
const PROBE_EVERY_MS = 5000;
const PROBE_TIMEOUT_MS = 3000;

export class PgLink {
  private client: pg.Client | null = null;
  private readonly handlers = new Map<string, Set<(payload: string) => void>>();
  private readonly upListeners = new Set<() => void>();
  private closed = false;
  private connected = false;
  private retryMs = RETRY_MIN_MS;
  private retryTimer: NodeJS.Timeout | null = null;
  private probeTimer: NodeJS.Timeout | null = null;
  /** Sends in the order asked: one connection runs its queries one after the other. */
  private sending: Promise<unknown> = Promise.resolve();
  private firstUp: () => void = () => undefined;
  private readonly first = new Promise<void>((r) => {
    this.firstUp = r;
  });
  private everUp = false;

  constructor(
    private readonly url: string,
    private readonly log: Logger,
    private readonly applicationName = 'atrium-link',
  ) {}

  /** Connects in the background (and again whenever the connection drops). */
  start(): void {
    void this.connect();
  }

  /** Resolves once connected the first time, or after `ms`. */
  async ready(ms: number): Promise<boolean> {
    let t: NodeJS.Timeout | undefined;
    await Promise.race([this.first, new Promise<void>((r) => (t = setTimeout(r, ms)))]);
    clearTimeout(t);
    return this.connected;
  }

  get up(): boolean {
    return this.connected;
  }

  /** `f` gets every payload sent on `channel` by any gateway, this one included. */
  listen(channel: string, f: (payload: string) => void): void {
    let set = this.handlers.get(channel);
    if (!set) {
      set = new Set();
      this.handlers.set(channel, set);
      if (this.connected && this.client)
        void this.client.query(`listen ${ident(channel)}`).catch(() => undefined);
    }
    set.add(f);
  }

  /**
   * Called after each (re)connection but the first: notifications sent while this gateway was not
   * listening are lost, so state learnt from them must be read again.
   */
  onReconnect(f: () => void): () => void {
    this.upListeners.add(f);
    return () => this.upListeners.delete(f);
  }

  /** Sends a notification (in order with this gateway's others). False when not connected: it is dropped. */
  notify(channel: string, payload: string): Promise<boolean> {
    const run = async (): Promise<boolean> => {
      const c = this.client;
      if (!c || !this.connected) return false;
      try {
        await c.query('select pg_notify($1, $2)', [channel, payload]);
        return true;
      } catch (e) {
        this.log.debug({ err: (e as Error).message, channel }, 'database link: notify failed');
        return false;
      }
    };
    const p = this.sending.then(run, run);
    this.sending = p;
    return p;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.probeTimer) clearInterval(this.probeTimer);
    const c = this.client;
    this.client = null;
    this.connected = false;
    await this.sending.catch(() => undefined);
    await c?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const c = new pg.Client({
      connectionString: this.url,
      application_name: this.applicationName,
      keepAlive: true,
      connectionTimeoutMillis: 5000,
    });
    let lost = false;
    const onLost = (why: string) => {
      if (lost) return;
      lost = true;
      if (this.client === c) {
        this.client = null;
        if (this.connected) this.log.warn({ why }, 'database link lost; reconnecting');
        this.connected = false;
        if (this.probeTimer) clearInterval(this.probeTimer);
        this.probeTimer = null;
      }
      c.end().catch(() => undefined);
      this.scheduleRetry();
    };
    c.on('error', (e) => onLost(e.message));
    c.on('end', () => onLost('the connection ended'));
    c.on('notification', (n) => {
      for (const f of this.handlers.get(n.channel) ?? []) {
        try {
          f(n.payload ?? '');
        } catch (e) {
          this.log.error({ err: e, channel: n.channel }, 'database link: a listener failed');
        }
      }
    });
    try {
      await c.connect();
      for (const ch of this.handlers.keys()) await c.query(`listen ${ident(ch)}`);
    } catch (e) {
      if (!lost) {
        this.log.debug({ err: (e as Error).message }, 'database link: cannot connect yet');
        onLost((e as Error).message);
      }
      return;
    }
    if (this.closed || lost) {
      await c.end().catch(() => undefined);
      return;
    }
    this.client = c;
    this.connected = true;
    this.retryMs = RETRY_MIN_MS;
    this.probeTimer = setInterval(() => void this.probe(c, onLost), PROBE_EVERY_MS);
    this.probeTimer.unref();
    const again = this.everUp;
    this.everUp = true;
    this.firstUp();
    if (again) {
      this.log.info('database link back');
      for (const f of this.upListeners) {
        try {
          f();
        } catch (e) {
          this.log.error({ err: e }, 'database link: a reconnect listener failed');
        }
      }
    }
  }

  private async probe(c: pg.Client, onLost: (why: string) => void): Promise<void> {
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => (t = setTimeout(() => r('timeout'), PROBE_TIMEOUT_MS)));
    const r = await Promise.race([
      c.query('select 1').then(
        () => 'ok' as const,
        () => 'error' as const,
      ),
      timeout,
    ]);
    clearTimeout(t);
    if (r !== 'ok') onLost(r === 'timeout' ? 'no answer' : 'a probe failed');
  }

  private scheduleRetry(): void {
    if (this.closed || this.retryTimer) return;
    const wait = this.retryMs;
    this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.connect();
    }, wait);
    this.retryTimer.unref();
  }
}

/** Channel names are ours ([a-z_]); quoted all the same. */
function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
