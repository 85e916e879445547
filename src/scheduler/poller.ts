// One poll loop per cluster. Every consumer (sessions, batch jobs, the free-resources table, the
// queue pages) reads the same snapshot: the number of scheduler calls does not grow with users,
// sessions or open pages.
import type { Logger } from 'pino';
import type { PollSnapshot, SchedulerAdapter } from './types.ts';

export type SnapshotListener = (cluster: string, snap: PollSnapshot) => void | Promise<void>;

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
  /** How long the last poll took (ms), for the poll-duration metric. */
  lastDurationMs = 0;

  constructor(
    readonly adapter: SchedulerAdapter,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  onSnapshot(l: SnapshotListener): void {
    this.listeners.push(l);
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
  private queued: Promise<PollSnapshot> | null = null;

  /**
   * A poll that starts now or later, with its listeners done (agent callbacks, tests). Polls never
   * overlap: while one is under way, every caller shares the single poll that follows it, so a burst
   * of callers costs at most one extra poll.
   */
  pollNow(): Promise<PollSnapshot> {
    if (!this.inflight) return this.startPoll();
    this.queued ??= this.inflight.then(() => {
      this.queued = null;
      return this.inflight ?? this.startPoll();
    });
    return this.queued;
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
    this.firstDone();
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
        this.log.error({ err: e, cluster: this.adapter.cluster }, 'snapshot listener failed');
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
