// "Share link" on a running desktop session's card: a small dialog that makes a one-time link to the
// desktop (for some minutes, optionally view-only), shows it once with a copy button, and lists the
// session's live links with a revoke button each.
import { useEffect, useId, useRef, useState } from 'react';
import type { DesktopLinksReply, DesktopLinkView, NewDesktopLinkReply } from '../../api/desktop-links.ts';
import { ApiError, del, get, post, sentence } from '../api.ts';
import type { SessionView } from '../types.ts';
import { ConfirmDialog, DialogButton } from './ConfirmDialog.tsx';

/** Which apps may be shared, and the site's longest link: read once per page load. */
let settings: Promise<DesktopLinksReply> | null = null;

function useShareable(app: string): { maxMinutes: number } | null {
  const [s, setS] = useState<DesktopLinksReply | null>(null);
  useEffect(() => {
    let live = true;
    settings ??= get<DesktopLinksReply>('/api/desktop-links');
    settings.then(
      (r) => live && setS(r),
      () => {
        settings = null;
      },
    );
    return () => {
      live = false;
    };
  }, []);
  if (!s || s.maxMinutes <= 0 || !s.apps.includes(app)) return null;
  return { maxMinutes: s.maxMinutes };
}

export function DesktopLinkButton({ session, title }: { session: SessionView; title: string }) {
  const shareable = useShareable(session.app);
  if (!shareable || session.state !== 'running') return null;
  return (
    <DialogButton
      label="Share link"
      ariaLabel={`Share link to ${title}`}
      dialog={(close) => (
        <ShareDialog session={session} title={title} maxMinutes={shareable.maxMinutes} onClose={close} />
      )}
    />
  );
}

function ShareDialog({
  session,
  title,
  maxMinutes,
  onClose,
}: {
  session: SessionView;
  title: string;
  maxMinutes: number;
  onClose(): void;
}) {
  const linkInput = useRef<HTMLInputElement>(null);
  const inputId = useId();
  const [minutes, setMinutes] = useState(String(Math.min(30, maxMinutes)));
  const [viewOnly, setViewOnly] = useState(true);
  const [made, setMade] = useState<NewDesktopLinkReply | null>(null);
  const [links, setLinks] = useState<DesktopLinkView[]>([]);
  const [note, setNote] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  const refresh = async () => {
    const r = await get<DesktopLinksReply>('/api/desktop-links');
    setLinks(
      r.links.filter((l) => l.sessionId === session.id && (l.state === 'unused' || l.state === 'in use')),
    );
  };
  // biome-ignore lint/correctness/useExhaustiveDependencies: once, when the dialog opens
  useEffect(() => {
    refresh().catch(() => undefined);
  }, []);

  const fail = (e: unknown) => setError(e instanceof ApiError ? sentence(e.message) : String(e));
  const create = async () => {
    if (busy) return;
    setBusy(true);
    setError('');
    setNote('');
    try {
      const r = await post<NewDesktopLinkReply>(`/api/sessions/${session.id}/desktop-links`, {
        minutes: Number(minutes),
        viewOnly,
      });
      setMade(r);
      await refresh();
    } catch (e) {
      fail(e);
    } finally {
      setBusy(false);
    }
  };
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(made?.url ?? '');
      setNote('Copied to the clipboard.');
    } catch {
      // No clipboard access (an insecure origin, or refused): select it for Ctrl+C.
      linkInput.current?.focus();
      linkInput.current?.select();
      setNote('The browser does not allow copying here: the link is selected, press Ctrl+C.');
    }
  };
  const revoke = async (l: DesktopLinkView) => {
    setError('');
    try {
      await del(`/api/desktop-links/${l.id}`);
      if (made?.link.id === l.id) setMade(null);
      setNote('Link revoked.');
      await refresh();
    } catch (e) {
      fail(e);
    }
  };
  const until = (ms: number) => new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

  return (
    <ConfirmDialog
      title={`Share ${title}`}
      confirmLabel={made ? 'Create another link' : 'Create link'}
      cancelLabel="Close"
      onConfirm={() => void create()}
      onCancel={onClose}
    >
      <p className="small">
        A link that opens this desktop once, in one other browser, without signing in. It gives access to this
        desktop only, and ends when its time is over, when you revoke it or when the session stops.
      </p>
      <label>
        Valid for (minutes, at most {maxMinutes}){' '}
        <input
          type="number"
          min={1}
          max={maxMinutes}
          value={minutes}
          onChange={(e) => setMinutes(e.currentTarget.value)}
        />
      </label>
      <label>
        <input type="checkbox" checked={viewOnly} onChange={(e) => setViewOnly(e.currentTarget.checked)} />{' '}
        View only (the guest cannot type, point or paste)
      </label>
      {made && (
        <div className="token-copy">
          <label className="visually-hidden" htmlFor={inputId}>
            One-time link
          </label>
          <input
            ref={linkInput}
            id={inputId}
            className="token-value"
            readOnly
            value={made.url}
            spellCheck={false}
            autoComplete="off"
            onFocus={(e) => e.currentTarget.select()}
          />
          <button type="button" className="btn btn-primary" onClick={() => void copy()}>
            Copy link
          </button>
        </div>
      )}
      <p className="small" aria-live="polite">
        {note}
      </p>
      {error && (
        <p className="alert alert-bad" role="alert">
          {error}
        </p>
      )}
      {links.length > 0 && (
        <ul className="desktop-links">
          {links.map((l) => (
            <li key={l.id} data-link={l.id}>
              {l.viewOnly ? 'View only' : 'Full access'}, {l.state === 'unused' ? 'not opened yet' : 'opened'}
              , until {until(l.expiresAt)}{' '}
              <button
                type="button"
                className="btn btn-small btn-danger-outline"
                onClick={() => void revoke(l)}
              >
                Revoke
              </button>
            </li>
          ))}
        </ul>
      )}
    </ConfirmDialog>
  );
}
