// The top bar: product name, one tab per page, the live-update indicator and the user menu.
import { useEffect, useId, useRef, useState } from 'react';
import { useLiveStatus } from '../live.ts';
import type { PageDef } from '../pages.ts';
import { Link } from '../router.tsx';
import type { Me } from '../types.ts';

interface Props {
  me: Me;
  pages: PageDef[];
  current: PageDef | undefined;
  onSignOut(everywhere: boolean): void;
}

export function Header({ me, pages, current, onSignOut }: Props) {
  return (
    <header className="topbar">
      <div className="topbar-inner">
        <Link href="/" className="brand" aria-label="Atrium home">
          <img src="/favicon.svg" alt="" width={28} height={28} />
          <span className="brand-name">Atrium</span>
        </Link>
        <nav className="tabs" aria-label="Main">
          {pages.map((p) => (
            <Link
              key={p.path}
              href={p.path}
              className="tab"
              aria-current={p === current ? 'page' : undefined}
            >
              {p.label}
            </Link>
          ))}
        </nav>
        <div className="topbar-end">
          <LiveIndicator />
          <UserMenu me={me} onSignOut={onSignOut} />
        </div>
      </div>
    </header>
  );
}

function LiveIndicator() {
  const status = useLiveStatus();
  const text = status === 'open' ? 'Live' : status === 'connecting' ? 'Connecting…' : 'Offline, retrying';
  const title =
    status === 'open'
      ? 'This page updates by itself.'
      : 'Live updates are interrupted; the page shows the last known state and reconnects by itself.';
  return (
    <span className={`live live-${status}`} title={title}>
      <span className="live-dot" aria-hidden="true" />
      {text}
    </span>
  );
}

function UserMenu({ me, onSignOut }: { me: Me; onSignOut(everywhere: boolean): void }) {
  const [open, setOpen] = useState(false);
  const panelId = useId();
  const root = useRef<HTMLDivElement>(null);
  const button = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    if (!open) return;
    const onDown = (e: PointerEvent) => {
      if (root.current && !root.current.contains(e.target as Node)) setOpen(false);
    };
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        setOpen(false);
        button.current?.focus();
      }
    };
    document.addEventListener('pointerdown', onDown);
    document.addEventListener('keydown', onKey);
    return () => {
      document.removeEventListener('pointerdown', onDown);
      document.removeEventListener('keydown', onKey);
    };
  }, [open]);

  const name = me.displayName || me.username;
  return (
    <div className="usermenu" ref={root}>
      <button
        ref={button}
        type="button"
        className="usermenu-button"
        aria-expanded={open}
        aria-controls={panelId}
        aria-label={`Account menu for ${me.username}`}
        onClick={() => setOpen((o) => !o)}
      >
        <span className="avatar" aria-hidden="true">
          {name.slice(0, 1).toUpperCase()}
        </span>
        <span className="usermenu-name">{me.username}</span>
        <span className="caret" aria-hidden="true" />
      </button>
      {open && (
        <div className="usermenu-panel" id={panelId}>
          <div className="usermenu-who">
            <strong>{name}</strong>
            <span>
              Unix account <code>{me.unixUser}</code>
              {me.isAdmin ? ' · administrator' : ''}
            </span>
          </div>
          <button type="button" className="usermenu-item" onClick={() => onSignOut(false)}>
            Sign out
          </button>
          <button type="button" className="usermenu-item" onClick={() => onSignOut(true)}>
            Sign out everywhere
          </button>
        </div>
      )}
    </div>
  );
}
