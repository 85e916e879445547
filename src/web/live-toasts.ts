// Which live events become toasts, and how. To show a new event type, add an entry here: it gets the
// event's data and a few lookups, and returns a toast (or null to stay quiet).
import type { ToastInput } from './components/Toasts.tsx';
import { plural, safeNext } from './format.ts';
import type { SessionView } from './types.ts';

export interface ToastLookups {
  session(id: string): SessionView | undefined;
}

export type LiveToast = (data: unknown, lookups: ToastLookups) => ToastInput | null;

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.trim() !== '' ? v : undefined;
}

function sessionName(s: SessionView | undefined): string {
  if (!s) return 'Your session';
  return s.label ? `${s.label} (${s.appName})` : s.appName;
}

export const LIVE_TOASTS: Record<string, LiveToast> = {
  'session.warning': (data, { session }) => {
    const d = data as { id?: unknown; minutesLeft?: unknown };
    const id = str(d.id);
    if (!id) return null;
    const minutes = typeof d.minutesLeft === 'number' ? Math.max(0, Math.round(d.minutesLeft)) : undefined;
    const s = session(id);
    return {
      key: `warning:${id}`,
      tone: 'warn',
      title: `${sessionName(s)} ends soon`,
      message:
        minutes === undefined
          ? 'The session is about to reach its time limit. Save your work.'
          : `${minutes <= 1 ? 'About a minute' : plural(minutes, 'minute')} left before the time limit. Save your work.`,
    };
  },
  // Notifications from the server: {id, kind, title, body, link} (also tolerates {message, level, url}
  // or a plain string). A session's "ending soon" replaces the session.warning toast, not doubles it.
  notification: (data) => {
    if (typeof data === 'string') return { title: data };
    const d = (data ?? {}) as Record<string, unknown>;
    const title = str(d.title) ?? str(d.subject) ?? str(d.message) ?? str(d.body);
    if (!title) return null;
    const kind = str(d.kind) ?? '';
    const level = str(d.level) ?? str(d.severity);
    const tone: ToastInput['tone'] =
      level === 'error' || kind.endsWith('.failed')
        ? 'bad'
        : level === 'warning' || level === 'warn' || kind.endsWith('.ending_soon') || kind === 'session.idle'
          ? 'warn'
          : level === 'success' || kind.endsWith('.ready')
            ? 'ok'
            : 'info';
    const link = str(d.link) ?? str(d.url);
    const safeLink = link && safeNext(link) === link ? link : undefined;
    const sessionId = safeLink ? /^\/user\/[^/]+\/([a-z0-9]+)(?:[./]|$)/.exec(safeLink)?.[1] : undefined;
    const body = title === str(d.title) ? (str(d.body) ?? str(d.message)) : undefined;
    return {
      tone,
      title,
      message: body,
      action: safeLink
        ? { label: kind.startsWith('session.') ? 'Open the session' : 'Open', href: safeLink }
        : undefined,
      key:
        kind === 'session.ending_soon' && sessionId
          ? `warning:${sessionId}`
          : str(d.id) || typeof d.id === 'number'
            ? `notification:${String(d.id)}`
            : undefined,
    };
  },
};
