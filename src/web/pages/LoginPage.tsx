// Sign-in: user name and password (local accounts or LDAP), and/or the site's single sign-on.
// A refused single sign-on comes back here as /login?error=<code>: the code is shown as a message.
import { type FormEvent, useEffect, useId, useRef, useState } from 'react';
import type { OidcErrorCode } from '../../api/auth.ts';
import { ApiError, get, post, sentence } from '../api.ts';
import { safeNext } from '../format.ts';
import type { AuthMethods, Me } from '../types.ts';

interface Props {
  onSignedIn(me: Me, csrfToken: string): void;
}

/** What each `?error=` code of the single sign-on callback means to the person signing in. */
const SSO_ERRORS: Record<OidcErrorCode, string> = {
  failed: 'Single sign-on did not work. Try again; if it keeps failing, contact the administrators.',
  expired: 'The sign-in took too long or its link was already used. Please sign in again.',
  denied: 'Sign-in was cancelled at the identity provider. Sign in again to continue.',
  not_allowed: 'Your account is not allowed to use this gateway. Ask the administrators to give you access.',
  conflict:
    'A local account already has your user name, so single sign-on cannot use it. Contact the administrators.',
  disabled: 'Your account is disabled. Contact the administrators.',
  unavailable: 'The identity provider cannot be reached right now. Try again in a few minutes.',
};

const SSO_ERROR_OTHER = 'Single sign-on did not work. Please try again.';

function ssoErrorMessage(code: string | null): string | null {
  if (code === null) return null;
  return Object.hasOwn(SSO_ERRORS, code) ? SSO_ERRORS[code as OidcErrorCode] : SSO_ERROR_OTHER;
}

function loginError(e: unknown): string {
  if (!(e instanceof ApiError)) return 'Sign-in failed; try again.';
  switch (e.status) {
    case 401:
      return 'Wrong user name or password.';
    case 429:
      return e.retryAfter
        ? `Too many sign-in attempts. Wait ${e.retryAfter} s, then try again.`
        : sentence(e.message);
    case 403:
      return sentence(e.message.startsWith('Sign-in refused') ? e.message : `Sign-in refused: ${e.message}`);
    case 503:
      return 'The user directory cannot be reached right now, so your password cannot be checked. Try again in a few minutes.';
    default:
      return sentence(e.message);
  }
}

export function LoginPage({ onSignedIn }: Props) {
  const [methods, setMethods] = useState<AuthMethods | null>(null);
  const [methodsError, setMethodsError] = useState<string | null>(null);
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<{ message: string; field?: 'username' | 'password' } | null>(null);
  const [busy, setBusy] = useState(false);
  // Read once: the message stays until the next attempt, even after the code leaves the address bar.
  const [ssoError, setSsoError] = useState(() =>
    ssoErrorMessage(new URLSearchParams(location.search).get('error')),
  );
  const userRef = useRef<HTMLInputElement>(null);
  const passRef = useRef<HTMLInputElement>(null);
  const errorId = useId();

  useEffect(() => {
    document.title = 'Sign in · Atrium';
    // A reload should not show the old error again: drop ?error= (keeping ?next=).
    const params = new URLSearchParams(location.search);
    if (params.has('error')) {
      params.delete('error');
      const rest = params.toString();
      history.replaceState(
        history.state,
        '',
        `${location.pathname}${rest ? `?${rest}` : ''}${location.hash}`,
      );
    }
    get<AuthMethods>('/api/auth/methods')
      .then(setMethods)
      .catch((e: unknown) => setMethodsError(e instanceof Error ? e.message : String(e)));
  }, []);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (busy) return;
    if (!username.trim()) {
      setError({ message: 'Enter your user name.', field: 'username' });
      userRef.current?.focus();
      return;
    }
    if (!password) {
      setError({ message: 'Enter your password.', field: 'password' });
      passRef.current?.focus();
      return;
    }
    setBusy(true);
    setError(null);
    setSsoError(null);
    try {
      const r = await post<{ user: Me; csrfToken: string }>('/api/login', {
        username: username.trim(),
        password,
      });
      onSignedIn(r.user, r.csrfToken);
    } catch (err) {
      setBusy(false);
      setPassword('');
      const field =
        err instanceof ApiError && (err.field === 'username' || err.field === 'password')
          ? err.field
          : undefined;
      setError({ message: loginError(err), field });
      (field === 'username' ? userRef : passRef).current?.focus();
    }
  };

  const invalid = (f: 'username' | 'password') =>
    error && (error.field === f || !error.field) ? true : undefined;

  return (
    <div className="login">
      <div className="login-card">
        <div className="login-brand">
          <img src="/favicon.svg" alt="" width={40} height={40} />
          <div>
            <h1>Atrium</h1>
            <p>Interactive computing on the cluster</p>
          </div>
        </div>
        {methodsError && (
          <p className="alert alert-bad" role="alert">
            The gateway cannot be reached ({methodsError}).
          </p>
        )}
        {ssoError && !error && (
          <p className="alert alert-bad" role="alert">
            {ssoError}
          </p>
        )}
        {error && (
          <p className="alert alert-bad" role="alert" id={errorId}>
            {error.message}
          </p>
        )}
        {(methods === null || methods.local) && (
          <form className="login-form" onSubmit={submit} noValidate>
            <label htmlFor="login-username">User name</label>
            <input
              ref={userRef}
              id="login-username"
              name="username"
              autoComplete="username"
              autoCapitalize="none"
              spellCheck={false}
              // biome-ignore lint/a11y/noAutofocus: the only thing to do on this page
              autoFocus
              value={username}
              onChange={(e) => setUsername(e.target.value)}
              aria-invalid={invalid('username')}
              aria-describedby={error ? errorId : undefined}
            />
            <label htmlFor="login-password">Password</label>
            <input
              ref={passRef}
              id="login-password"
              name="password"
              type="password"
              autoComplete="current-password"
              value={password}
              onChange={(e) => setPassword(e.target.value)}
              aria-invalid={invalid('password')}
              aria-describedby={error ? errorId : undefined}
            />
            <button type="submit" className="btn btn-primary btn-block" disabled={busy}>
              {busy ? 'Signing in…' : methods?.passwordLabel || 'Sign in'}
            </button>
          </form>
        )}
        {methods?.oidc && (
          <>
            {methods.local && <div className="login-or">or</div>}
            <button
              type="button"
              className="btn btn-block"
              onClick={() => {
                if (methods.oidc) location.assign(oidcStartUrl(methods.oidc.url));
              }}
            >
              {methods.oidc.label}
            </button>
          </>
        )}
        {methods && !methods.local && !methods.oidc && (
          <p className="alert alert-warn">
            No sign-in method is configured on this gateway; contact the administrators.
          </p>
        )}
      </div>
    </div>
  );
}

/** The single sign-on start address, passing on where to go afterwards (the server checks it again). */
function oidcStartUrl(url: string): string {
  const next = safeNext(new URLSearchParams(location.search).get('next'));
  if (next === '/') return url;
  const u = new URL(url, location.origin);
  u.searchParams.set('next', next);
  return u.origin === location.origin ? u.pathname + u.search : u.href;
}
