// Announcements from the administrators, on top of the dashboard. Loaded once, then kept current by
// the live `announcement` event (which carries the whole current list).
import { useCallback, useEffect, useState } from 'react';
import type { Announcement } from '../../api/admin.ts';
import { get } from '../api.ts';
import { useLiveEvent, useLiveReconnect } from '../live.ts';
import './admin.css';

export type AnnouncementView = Announcement;

const TONE = { info: 'alert-info', warning: 'alert-warn', critical: 'alert-bad' } as const;

export function Announcements() {
  const [list, setList] = useState<AnnouncementView[]>([]);
  const load = useCallback(async () => {
    try {
      setList((await get<{ announcements: AnnouncementView[] }>('/api/announcements')).announcements);
    } catch {
      // Announcements are extra: the dashboard works without them.
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);
  useLiveReconnect(() => void load());
  useLiveEvent<{ announcements?: AnnouncementView[] }>('announcement', (d) => {
    if (Array.isArray(d?.announcements)) setList(d.announcements);
  });
  // Expired ones go away on time even without news from the server.
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 30_000);
    return () => clearInterval(t);
  }, []);
  const shown = list.filter((a) => !a.expiresAt || a.expiresAt > now);
  if (shown.length === 0) return null;
  return (
    <section className="announcements" aria-label="Announcements">
      {shown.map((a) => (
        <p
          key={a.id}
          className={`alert ${TONE[a.level] ?? 'alert-info'} announcement`}
          role={a.level === 'info' ? 'status' : 'alert'}
          data-announcement={a.id}
        >
          {a.message}
          {a.expiresAt && (
            <span className="muted small"> (until {new Date(a.expiresAt).toLocaleString()})</span>
          )}
        </p>
      ))}
    </section>
  );
}
