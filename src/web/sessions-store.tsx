// The signed-in user's sessions, shared by every page: loaded once, kept current by live `session`
// events (merged by id) and re-read after the live stream reconnects.
import { createContext, type ReactNode, useCallback, useContext, useEffect, useMemo, useState } from 'react';
import { ApiError, get } from './api.ts';
import { mergeSession } from './format.ts';
import { useLiveEvent, useLiveReconnect } from './live.ts';
import type { SessionView } from './types.ts';

interface SessionsState {
  sessions: SessionView[] | null;
  error: string | null;
  reload(): Promise<void>;
  /** Applies a fresher copy of one session (from an API answer or a live event). */
  upsert(s: SessionView): void;
}

const SessionsContext = createContext<SessionsState>({
  sessions: null,
  error: null,
  reload: async () => {},
  upsert: () => {},
});

export function useSessions(): SessionsState {
  return useContext(SessionsContext);
}

function isSessionView(v: unknown): v is SessionView {
  const s = v as SessionView;
  return typeof s?.id === 'string' && typeof s.state === 'string' && typeof s.createdAt === 'number';
}

export function SessionsProvider({ children }: { children: ReactNode }) {
  const [sessions, setSessions] = useState<SessionView[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  const reload = useCallback(async () => {
    try {
      const r = await get<{ sessions: SessionView[] }>('/api/sessions');
      setSessions([...r.sessions].sort((a, b) => b.createdAt - a.createdAt));
      setError(null);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return;
      setError(e instanceof Error ? e.message : String(e));
    }
  }, []);

  const upsert = useCallback((s: SessionView) => {
    setSessions((list) => mergeSession(list ?? [], s));
  }, []);

  useEffect(() => {
    void reload();
  }, [reload]);

  useLiveEvent('session', (data) => {
    if (isSessionView(data)) upsert(data);
  });
  useLiveReconnect(() => void reload());

  const value = useMemo(() => ({ sessions, error, reload, upsert }), [sessions, error, reload, upsert]);
  return <SessionsContext.Provider value={value}>{children}</SessionsContext.Provider>;
}
