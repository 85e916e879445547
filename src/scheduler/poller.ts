// One poll loop per cluster. Every consumer (sessions, batch jobs, the free-resources table, the
// queue pages) reads the same snapshot: the number of scheduler calls does not grow with users,
// sessions or open pages, nor with gateways: where several share one database, only the holder of
// the cluster's lease polls, and the others take its snapshots (PollShare).
import type { Logger } from 'pino';
import { isDatabaseUnavailable } from '../db/engine.ts';
import type { PollSnapshot, SchedulerAdapter } from './types.ts';

export type SnapshotListener = (cluster: string, snap: PollSnapshot) => void | Promise<void>;

/**
 * One poll for every gateway sharing the database (src/db/poll-share.ts): the lease holder polls, runs
 * the listeners (the state changes and live events that follow from a poll happen once) and shares
 * the snapshot; the others keep it as theirs (`receive`) for pages, forms and agent callbacks.
 */
export interface PollShare {
  /** This gateway holds the cluster's lease. */
  readonly leading: boolean;
  /** A snapshot this gateway took, for the others. */
  share(snap: PollSnapshot): void;
  /** Asks the lease holder for an early poll (after a submit or a stop here). */
  askPoll(): void;
}

export class ClusterPoller {
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private stopped = false;
  private last: PollSnapshot | null = null;
  /** Last snapshot that reached the scheduler (jobs and nodes known). */
  private lastGood: PollSnapshot | null = null;
  private readonly listeners: SnapshotListener[] = [];
  private consecutiveFailures = 0;
  private wakeRequested = false;
  private firstDone: () => void = () => undefined;
  private readonly first = new Promise<void>((resolve) => {
    this.firstDone = resolve;
  });
  pollCount = 0;
  callCount = 0;
  /** How long the last poll took (ms): the scheduler's commands and their parsing. */
  lastDurationMs = 0;
  /** How long the listeners took with the last poll (ms): state changes, database writes, live events. */
  lastApplyMs = 0;
  private readonly polledListeners: SnapshotListener[] = [];
  private pollShare: PollShare | null = null;
  /** When (this host's clock) the latest snapshot was taken, here or by the lease holder. */
  private takenAt = 0;
  /**
   * Callers of pollNow on a gateway that does not poll: they get the first shared snapshot taken after
   * they asked (`since`, this host's clock).
   */
  private sharedWaiters: { since: number; done: (snap: PollSnapshot) => void }[] = [];

  constructor(
    readonly adapter: SchedulerAdapter,
    readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  /** From now on this poller polls only while `share` says it holds the lease. */
  shareWith(share: PollShare): void {
    this.pollShare = share;
  }

  /** Polls here: no other gateway shares the database, or this one holds the cluster's lease. */
  get leading(): boolean {
    return this.pollShare?.leading ?? true;
  }

  /** How old the latest snapshot is (ms); Infinity before the first. */
  get ageMs(): number {
    return this.takenAt === 0 ? Number.POSITIVE_INFINITY : Date.now() - this.takenAt;
  }

  /**
   * A snapshot the lease holder took, `takenAt` in this host's clock. The listeners do not run here:
   * the holder ran them.
   */
  receive(snap: PollSnapshot, takenAt: number): void {
    if (takenAt <= this.takenAt) return;
    this.takenAt = takenAt;
    this.last = snap;
    if (snap.ok) this.lastGood = snap;
    this.firstDone();
    this.settleWaiters(snap, takenAt);
  }

  /** Hands `snap` to the waiters that asked before it was taken (the clocks' estimate may be off a little). */
  private settleWaiters(snap: PollSnapshot, takenAt: number): void {
    const now = this.sharedWaiters.filter((w) => takenAt >= w.since - 100);
    if (now.length === 0) return;
    this.sharedWaiters = this.sharedWaiters.filter((w) => !now.includes(w));
    for (const w of now) w.done(snap);
  }

  onSnapshot(l: SnapshotListener): void {
    this.listeners.push(l);
  }

  /** `l` runs after every snapshot listener has finished with a poll of this gateway (for metrics). */
  onPolled(l: SnapshotListener): void {
    this.polledListeners.push(l);
  }

  start(): void {
    this.stopped = false;
    void this.tick();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Ask for an early poll (after a submit or a stop), coalesced with any poll already running. */
  wake(): void {
    if (this.stopped) return;
    if (!this.leading) {
      this.pollShare?.askPoll();
      return;
    }
    if (this.running) {
      this.wakeRequested = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), 50);
  }

  get latest(): PollSnapshot | null {
    return this.last;
  }

  get latestGood(): PollSnapshot | null {
    return this.lastGood;
  }

  get reachable(): boolean {
    return this.last?.ok ?? true;
  }

  /** Resolves when the first poll has ended (reached the scheduler or not), or after `ms` at most. */
  async whenPolled(ms: number): Promise<void> {
    if (this.last) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.first, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
    clearTimeout(timer);
  }

  private inflight: Promise<PollSnapshot> | null = null;

  /** The poll under way here, if any (its listeners done when it resolves). */
  get current(): Promise<PollSnapshot> | null {
    return this.inflight;
  }
  private queued: Promise<PollSnapshot> | null = null;

  /**
   * A poll that starts now or later, with its listeners done (agent callbacks, tests). Polls never
   * overlap: while one is under way, every caller shares the single poll that follows it, so a burst
   * of callers costs at most one extra poll.
   */
  pollNow(): Promise<PollSnapshot> {
    if (!this.leading) return this.nextShared();
    if (!this.inflight) return this.startPoll();
    this.queued ??= this.inflight.then(() => {
      this.queued = null;
      return this.inflight ?? this.startPoll();
    });
    return this.queued;
  }

  /** The lease holder's next snapshot (it is asked for one), or the latest if none comes in time. */
  private nextShared(): Promise<PollSnapshot> {
    const since = Date.now();
    this.pollShare?.askPoll();
    return new Promise((resolve) => {
      const waiter = {
        since,
        done: (snap: PollSnapshot) => {
          clearTimeout(timer);
          resolve(snap);
        },
      };
      const timer = setTimeout(
        () => {
          this.sharedWaiters = this.sharedWaiters.filter((w) => w !== waiter);
          resolve(
            this.last ?? {
              ok: false,
              error: 'no poll of this cluster yet',
              at: Date.now(),
              jobs: [],
              nodes: [],
              calls: 0,
            },
          );
        },
        2 * this.intervalMs + 2000,
      );
      this.sharedWaiters.push(waiter);
    });
  }

  private startPoll(): Promise<PollSnapshot> {
    const p: Promise<PollSnapshot> = this.runOnce().finally(() => {
      if (this.inflight === p) this.inflight = null;
    });
    this.inflight = p;
    return p;
  }

  private async runOnce(): Promise<PollSnapshot> {
    this.running = true;
    const started = Date.now();
    let snap: PollSnapshot;
    try {
      snap = await this.adapter.poll();
    } catch (e) {
      snap = { ok: false, error: (e as Error).message, at: Date.now(), jobs: [], nodes: [], calls: 1 };
    }
    this.lastDurationMs = Date.now() - started;
    this.pollCount++;
    this.callCount += snap.calls;
    this.last = snap;
    this.takenAt = started;
    this.firstDone();
    if (this.pollShare) {
      this.pollShare.share(snap);
      this.settleWaiters(snap, started);
    }
    if (snap.ok) {
      this.lastGood = snap;
      this.consecutiveFailures = 0;
    } else {
      this.consecutiveFailures++;
      if (this.consecutiveFailures === 1 || this.consecutiveFailures % 10 === 0) {
        this.log.warn(
          { cluster: this.adapter.cluster, error: snap.error },
          'scheduler unreachable; states are unknown',
        );
      }
    }
    for (const l of this.listeners) {
      try {
        await l(this.adapter.cluster, snap);
      } catch (e) {
        // The database restarting is said once by the gateway, not by every listener of every poll.
        if (isDatabaseUnavailable(e))
          this.log.debug(
            { err: (e as Error).message, cluster: this.adapter.cluster },
            'snapshot listener failed',
          );
        else this.log.error({ err: e, cluster: this.adapter.cluster }, 'snapshot listener failed');
      }
    }
    this.lastApplyMs = Date.now() - started - this.lastDurationMs;
    for (const l of this.polledListeners) {
      try {
        await l(this.adapter.cluster, snap);
      } catch (e) {
        this.log.error({ err: e, cluster: this.adapter.cluster }, 'poll listener failed');
      }
    }
    this.log.debug(
      { cluster: this.adapter.cluster, ms: Date.now() - started, jobs: snap.jobs.length },
      'poll',
    );
    this.running = false;
    return snap;
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    if (!this.leading) {
      // Another gateway polls; the share wakes this loop when the lease comes here.
      this.timer = setTimeout(() => void this.tick(), this.intervalMs);
      return;
    }
    await (this.inflight ?? this.startPoll());
    if (this.stopped) return;
    // Back off while the scheduler is down, and add jitter so many gateways do not poll in step
    // (jupyterhub issue 4646).
    const backoff = Math.min(this.consecutiveFailures, 4);
    const base = this.intervalMs * (1 + backoff);
    const delay = this.wakeRequested ? 50 : base * (0.9 + Math.random() * 0.2);
    this.wakeRequested = false;
    this.timer = setTimeout(() => void this.tick(), delay);
  }
}
