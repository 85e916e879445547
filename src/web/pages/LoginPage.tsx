// Sign-in: user name and password (local accounts or LDAP), and/or the site's single sign-on.
import { type FormEvent, useEffect, useId, useRef, useState } from 'react';
import { ApiError, get, post, sentence } from '../api.ts';
import type { AuthMethods, Me } from '../types.ts';

interface Props {
  onSignedIn(me: Me, csrfToken: string): void;
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
  const userRef = useRef<HTMLInputElement>(null);
  const passRef = useRef<HTMLInputElement>(null);
  const errorId = useId();

  useEffect(() => {
    document.title = 'Sign in · Atrium';
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
                if (methods.oidc) location.assign(methods.oidc.url);
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
