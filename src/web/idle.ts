// Idle culling in the UI: the signed-in user's running sessions' idle state (loaded once, then kept
// current by live `session.idle` events, sent when a session is warned, used again, or stopped), and
// how the admin page words a session's idle time.
import { useCallback, useEffect, useState } from 'react';
import type { IdleStatus } from '../api/sessions.ts';
import { get } from './api.ts';
import { formatClock } from './format.ts';
import { useLiveEvent, useLiveReconnect } from './live.ts';

export type { IdleStatus };

/** Idle state by session id, for the owner's own sessions. */
export function useIdle(): Map<string, IdleStatus> {
  const [byId, setById] = useState(() => new Map<string, IdleStatus>());
  const load = useCallback(async () => {
    try {
      const r = await get<{ sessions: IdleStatus[] }>('/api/sessions/idle');
      setById(new Map(r.sessions.map((s) => [s.id, s])));
    } catch {
      // Not worth an error on the page: the warning also comes as a notification.
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);
  useLiveReconnect(() => void load());
  useLiveEvent<IdleStatus>('session.idle', (s) => {
    if (typeof s?.id === 'string') setById((m) => new Map(m).set(s.id, s));
  });
  return byId;
}

/** The warning on a session's card: when it stops unless used. */
export function idleWarning(s: IdleStatus | undefined): string | null {
  if (!s?.warnedAt || !s.stopsAt) return null;
  return `idle: stops at ${formatClock(s.stopsAt)} unless used`;
}

/** "busy", "active", "idle 12 min · stops 14:05" for the admin page. */
export function idleText(s: IdleStatus | undefined, now: number): string {
  if (!s) return '—';
  if (s.busy) return 'busy';
  const minutes = Math.floor(Math.max(0, now - s.lastActivityAt) / 60_000);
  const text = minutes < 1 ? 'active' : `idle ${minutes} min`;
  return s.stopsAt ? `${text} · stops ${formatClock(s.stopsAt)}` : text;
}
