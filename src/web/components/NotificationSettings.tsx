// Notification preferences: which changes of jobs and sessions to hear about, browser (desktop)
// notifications (the browser asks the user as well), e-mail through Slurm, and the latest messages.
import { type ReactNode, useCallback, useState } from 'react';
import type { Notification as Note, NotificationPrefs as Prefs } from '../../api/notifications.ts';
import { api, errorText, get, post } from '../api.ts';
import { formatWhen } from '../format.ts';
import { useLoader } from '../hooks.ts';
import { Link } from '../router.tsx';
import { browserPermission, requestBrowserPermission } from './BrowserNotifications.tsx';
import { useToasts } from './Toasts.tsx';
import '../pages/jobs.css';

const KINDS: [string, string][] = [
  ['session.ready', 'A session is ready'],
  ['session.ending_soon', 'A session reaches its time limit soon (15 minutes before)'],
  ['session.idle', 'An idle session is about to be stopped'],
  ['session.ended', 'A session ended'],
  ['session.failed', 'A session failed'],
  ['job.started', 'A job started'],
  ['job.completed', 'A job completed'],
  ['job.failed', 'A job failed'],
  ['job.timeout', 'A job reached its time limit'],
  ['job.cancelled', 'A job was cancelled'],
];

export function NotificationSettings() {
  const [prefs, setPrefs] = useState<Prefs | null>(null);
  const [notes, setNotes] = useState<Note[]>([]);
  const [permission, setPermission] = useState(browserPermission());
  const { notify } = useToasts();

  const { error, reload: load } = useLoader(
    useCallback(async () => {
      const r = await get<{ notifications: Note[]; prefs: Prefs }>('/api/notifications');
      setPrefs(r.prefs);
      setNotes(r.notifications);
    }, []),
  );

  const save = async (patch: Partial<Prefs>) => {
    const before = prefs;
    // Shown at once; the server's answer (or the old value, if it fails) follows.
    setPrefs((p) => (p ? { ...p, ...patch, kinds: { ...p.kinds, ...(patch.kinds ?? {}) } } : p));
    try {
      setPrefs(await api<Prefs>('PUT', '/api/notifications/prefs', patch));
    } catch (e) {
      setPrefs(before);
      notify({
        tone: 'bad',
        title: 'The setting was not saved',
        message: errorText(e),
      });
    }
  };

  const allow = async () => {
    const p = await requestBrowserPermission();
    setPermission(p);
    if (p === 'granted' && prefs && !prefs.browser) await save({ browser: true });
  };

  const markRead = async () => {
    await post('/api/notifications/read', {}).catch(() => undefined);
    await load();
  };

  if (error)
    return (
      <p className="alert alert-bad" role="alert">
        Your notification settings could not be loaded: {error}
      </p>
    );
  if (!prefs) return <p className="muted">Loading…</p>;
  const unread = notes.filter((n) => !n.read).length;
  return (
    <div className="notification-settings">
      <p>
        Messages appear in the corner of the page while you are signed in. Choose which ones you want, and
        whether your browser may show them when the page is in the background.
      </p>
      <fieldset className="field checks">
        <legend>Tell me when</legend>
        <div className="checks-list checks-column">
          {KINDS.map(([k, label]) => (
            <Check
              key={k}
              name={`kind-${k}`}
              checked={prefs.kinds[k] !== false}
              onChange={(on) => void save({ kinds: { [k]: on } })}
            >
              {label}
            </Check>
          ))}
        </div>
      </fieldset>
      <fieldset className="field checks">
        <legend>Browser notifications</legend>
        <Check name="browser" checked={prefs.browser} onChange={(on) => void save({ browser: on })}>
          Show them as browser notifications
        </Check>
        <p className="field-hint">
          {permission === 'unsupported'
            ? 'This browser does not support notifications.'
            : permission === 'granted'
              ? 'Your browser allows notifications from this site.'
              : permission === 'denied'
                ? 'Your browser blocks notifications from this site; allow them in its site settings.'
                : 'Your browser has not been asked yet.'}{' '}
          {permission === 'default' && (
            <button type="button" className="btn btn-small" onClick={() => void allow()}>
              Allow browser notifications
            </button>
          )}
        </p>
      </fieldset>
      <fieldset className="field checks">
        <legend>E-mail</legend>
        <Check name="email" checked={prefs.email} onChange={(on) => void save({ email: on })}>
          E-mail me about my batch jobs
        </Check>
        <p className="field-hint">
          Sent by the cluster (Slurm) for jobs you submit from now on, where the site delivers mail and your
          account has an address.
        </p>
      </fieldset>
      {notes.length > 0 && (
        <details className="recent">
          <summary>
            Recent messages ({notes.length}
            {unread > 0 ? `, ${unread} unread` : ''})
          </summary>
          <ul className="notes">
            {notes.slice(0, 20).map((n) => (
              <li key={n.id} className={n.read ? 'read' : 'unread'}>
                <span className="muted small">{formatWhen(n.at)}</span> <strong>{n.title}</strong> {n.body}{' '}
                {n.link?.startsWith('/jobs/') ? (
                  <Link href={n.link}>Open</Link>
                ) : n.link ? (
                  <a href={n.link}>Open</a>
                ) : null}
              </li>
            ))}
          </ul>
          {unread > 0 && (
            <button type="button" className="btn btn-small" onClick={() => void markRead()}>
              Mark all as read
            </button>
          )}
        </details>
      )}
    </div>
  );
}

/** One labelled checkbox of the settings; each saves as soon as it is ticked. */
function Check({
  name,
  checked,
  onChange,
  children,
}: {
  name: string;
  checked: boolean;
  onChange(on: boolean): void;
  children: ReactNode;
}) {
  return (
    <label className="check">
      <input type="checkbox" name={name} checked={checked} onChange={(e) => onChange(e.target.checked)} />
      {children}
    </label>
  );
}
