// Settings: who you are signed in as, your API tokens, notifications, and signing out everywhere.
import { useState } from 'react';
import { ApiTokens } from '../components/ApiTokens.tsx';
import { NotificationSettings } from '../components/NotificationSettings.tsx';
import { signOut } from '../sign-out.ts';
import type { PageProps } from '../types.ts';
import './SettingsPage.css';

const SOURCES: Record<string, string> = {
  local: 'a local gateway account',
  ldap: 'the site directory (LDAP)',
  oidc: 'single sign-on',
};

export function SettingsPage({ me }: PageProps) {
  return (
    <div className="settings">
      <h1>Settings</h1>
      <Account me={me} />
      <ApiTokens />
      <Notifications />
      <SignOutEverywhere />
    </div>
  );
}

function Account({ me }: PageProps) {
  return (
    <section className="card" aria-labelledby="account-title">
      <h2 id="account-title">Account</h2>
      <dl className="facts">
        <dt>User name</dt>
        <dd>{me.username}</dd>
        {me.displayName && (
          <>
            <dt>Name</dt>
            <dd>{me.displayName}</dd>
          </>
        )}
        <dt>Unix account</dt>
        <dd>
          <code>{me.unixUser}</code>
          {me.isAdmin && <span className="muted"> · administrator</span>}
        </dd>
        <dt>Signed in with</dt>
        <dd>{SOURCES[me.source] ?? me.source}</dd>
        {me.groups.length > 0 && (
          <>
            <dt>Groups</dt>
            <dd>{me.groups.join(', ')}</dd>
          </>
        )}
      </dl>
    </section>
  );
}

// ---- notification settings (src/web/components/NotificationSettings.tsx) ----------------------------
function Notifications() {
  return (
    <section className="card" aria-labelledby="notifications-title" data-slot="notification-settings">
      <h2 id="notifications-title">Notifications</h2>
      <NotificationSettings />
    </section>
  );
}

function SignOutEverywhere() {
  const [busy, setBusy] = useState(false);
  return (
    <section className="card" aria-labelledby="signout-title">
      <h2 id="signout-title">Sign out everywhere</h2>
      <p>
        Ends your sign-in in this browser and in every other browser or computer, and closes the connections
        to your sessions open there. Your sessions keep running, and API tokens keep working: revoke them
        above if they may have leaked.
      </p>
      <button
        type="button"
        className="btn btn-danger-outline"
        disabled={busy}
        onClick={() => {
          setBusy(true);
          void signOut(true);
        }}
      >
        {busy ? 'Signing out…' : 'Sign out everywhere'}
      </button>
    </section>
  );
}
