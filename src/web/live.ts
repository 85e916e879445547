// Live updates: one EventSource on /api/events per signed-in tab, shared by every component.
// Components subscribe to an event type with useLiveEvent('session', handler); types nobody
// listens to are ignored. After a reconnect, useLiveReconnect handlers run so pages can re-read
// what they may have missed while the stream was down.
import { createContext, useContext, useEffect, useRef, useSyncExternalStore } from 'react';

export type LiveStatus = 'connecting' | 'open' | 'down';
type Handler = (data: unknown) => void;

export class LiveConnection {
  private es: EventSource | null = null;
  private readonly handlers = new Map<string, Set<Handler>>();
  private readonly listening = new Set<string>();
  private readonly reconnectHandlers = new Set<() => void>();
  private readonly statusListeners = new Set<() => void>();
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private wasOpen = false;
  private closed = false;
  private failures = 0;
  status: LiveStatus = 'connecting';

  constructor(
    private readonly url = '/api/events',
    /** Called when the stream fails for good (e.g. the sign-in ended); may check the session. */
    private readonly onFailure?: () => void,
  ) {}

  start(): void {
    this.closed = false;
    if (this.es || this.retryTimer) return;
    const es = new EventSource(this.url);
    this.es = es;
    this.listening.clear();
    for (const type of this.handlers.keys()) this.listen(type);
    es.onopen = () => {
      this.failures = 0;
      this.setStatus('open');
      if (this.wasOpen) for (const f of this.reconnectHandlers) f();
      this.wasOpen = true;
    };
    es.onerror = () => {
      if (es.readyState === EventSource.CLOSED) {
        // The browser gave up (an HTTP error, not a dropped stream): retry ourselves, more slowly.
        this.es = null;
        this.setStatus('down');
        this.failures++;
        this.onFailure?.();
        const wait = Math.min(30_000, 2_000 * 2 ** Math.min(this.failures - 1, 4));
        this.retryTimer = setTimeout(() => {
          this.retryTimer = null;
          if (!this.closed) this.start();
        }, wait);
      } else {
        this.setStatus('connecting');
      }
    };
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.es?.close();
    this.es = null;
  }

  private listen(type: string): void {
    if (!this.es || this.listening.has(type)) return;
    this.listening.add(type);
    this.es.addEventListener(type, (ev) => this.dispatch(type, (ev as MessageEvent).data));
  }

  /** Delivers one event (also used by tests and by code that learns news from a fetch). */
  dispatch(type: string, raw: unknown): void {
    let data: unknown = raw;
    if (typeof raw === 'string') {
      try {
        data = JSON.parse(raw);
      } catch {
        return;
      }
    }
    for (const h of this.handlers.get(type) ?? []) {
      try {
        h(data);
      } catch (e) {
        console.error(`live event ${type}:`, e);
      }
    }
  }

  on(type: string, handler: Handler): () => void {
    let set = this.handlers.get(type);
    if (!set) {
      set = new Set();
      this.handlers.set(type, set);
    }
    set.add(handler);
    this.listen(type);
    return () => set.delete(handler);
  }

  onReconnect(f: () => void): () => void {
    this.reconnectHandlers.add(f);
    return () => this.reconnectHandlers.delete(f);
  }

  subscribeStatus = (f: () => void): (() => void) => {
    this.statusListeners.add(f);
    return () => this.statusListeners.delete(f);
  };

  getStatus = (): LiveStatus => this.status;

  private setStatus(s: LiveStatus): void {
    if (this.status === s) return;
    this.status = s;
    for (const f of this.statusListeners) f();
  }
}

export const LiveContext = createContext<LiveConnection | null>(null);

/** Runs `handler` for every live event of `type` (the latest handler is used; no re-subscribing). */
export function useLiveEvent<T = unknown>(type: string, handler: (data: T) => void): void {
  useLiveSubscription(handler, (live, latest) => live.on(type, (d) => latest()(d as T)), type);
}

/** Runs `handler` whenever the stream comes back after an interruption. */
export function useLiveReconnect(handler: () => void): void {
  useLiveSubscription(handler, (live, latest) => live.onReconnect(() => latest()()), '');
}

/**
 * Subscribes once per connection (and `key`) and always calls the latest `handler`, so that a component
 * passing a fresh closure on every render does not re-subscribe each time.
 */
function useLiveSubscription<H>(
  handler: H,
  subscribe: (live: LiveConnection, latest: () => H) => () => void,
  key: string,
): void {
  const live = useContext(LiveContext);
  const ref = useRef(handler);
  useEffect(() => {
    ref.current = handler;
  });
  // biome-ignore lint/correctness/useExhaustiveDependencies: `subscribe` is a fresh closure each render; `key` stands for what it captures
  useEffect(() => {
    if (!live) return;
    return subscribe(live, () => ref.current);
  }, [live, key]);
}

const noStatus = () => () => {};
const connecting = (): LiveStatus => 'connecting';

export function useLiveStatus(): LiveStatus {
  const live = useContext(LiveContext);
  return useSyncExternalStore(live?.subscribeStatus ?? noStatus, live?.getStatus ?? connecting);
}
