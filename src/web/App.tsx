// The shell: who is signed in, the login page for everybody else, and the signed-in layout (header,
// current page, live events, toasts).
import { type ReactNode, useCallback, useContext, useEffect, useMemo, useRef, useState } from 'react';
import { ApiError, get, post, setCsrfToken, setUnauthorizedHandler } from './api.ts';
import { BrowserNotifications } from './components/BrowserNotifications.tsx';
import { Header } from './components/Header.tsx';
import { ToastProvider, useToasts } from './components/Toasts.tsx';
import { safeNext } from './format.ts';
import { LiveConnection, LiveContext } from './live.ts';
import { LIVE_TOASTS } from './live-toasts.ts';
import { LoginPage } from './pages/LoginPage.tsx';
import { NotFoundPage } from './pages/NotFoundPage.tsx';
import { pageFor, pagesFor } from './pages.ts';
import { navigate, usePath } from './router.tsx';
import { SessionsProvider, useSessions } from './sessions-store.tsx';
import type { Me } from './types.ts';

type Auth =
  | { state: 'loading' }
  | { state: 'out' }
  | { state: 'error'; message: string }
  | { state: 'in'; me: Me };

function loginUrlFor(path: string): string {
  const here = path + location.search;
  return here === '/' || path === '/login' ? '/login' : `/login?next=${encodeURIComponent(here)}`;
}

export function App() {
  const [auth, setAuth] = useState<Auth>({ state: 'loading' });
  const path = usePath();

  const checkMe = useCallback(async () => {
    try {
      const r = await get<{ user: Me; csrfToken: string | null }>('/api/me');
      setCsrfToken(r.csrfToken);
      setAuth({ state: 'in', me: r.user });
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        setCsrfToken(null);
        setAuth({ state: 'out' });
      } else {
        setAuth({ state: 'error', message: e instanceof Error ? e.message : String(e) });
      }
    }
  }, []);

  useEffect(() => {
    void checkMe();
  }, [checkMe]);

  useEffect(() => {
    setUnauthorizedHandler(() => {
      setCsrfToken(null);
      setAuth({ state: 'out' });
    });
    return () => setUnauthorizedHandler(null);
  }, []);

  // Signed out (or never signed in) anywhere but the login page: go there, remembering where we were.
  useEffect(() => {
    if (auth.state === 'out' && path !== '/login') navigate(loginUrlFor(path), { replace: true });
  }, [auth.state, path]);

  // The live stream failed for good: if the sign-in has ended, go to the login page.
  const streamFailed = useCallback(async () => {
    try {
      await get('/api/me');
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        setCsrfToken(null);
        setAuth({ state: 'out' });
      }
    }
  }, []);

  const signedIn = useCallback((me: Me, csrf: string) => {
    setCsrfToken(csrf);
    const next = safeNext(new URLSearchParams(location.search).get('next'));
    if (isAppPath(next)) {
      setAuth({ state: 'in', me });
      navigate(next, { replace: true });
    } else {
      // A session's address (the proxy sent us here) or another server page: load it for real.
      location.replace(next);
    }
  }, []);

  const signOut = useCallback(async (everywhere: boolean) => {
    let logoutUrl: string | null = null;
    try {
      logoutUrl = (await post<{ ok: boolean; logoutUrl: string | null }>('/api/logout', { everywhere }))
        .logoutUrl;
    } catch {
      // Signed out or not, the browser forgets it.
    }
    setCsrfToken(null);
    if (logoutUrl) {
      location.assign(logoutUrl);
      return;
    }
    setAuth({ state: 'out' });
    navigate('/login', { replace: true });
  }, []);

  if (auth.state === 'loading') return <Splash text="Loading…" />;
  if (auth.state === 'error') {
    return (
      <Splash text={`The gateway cannot be reached: ${auth.message}`}>
        <button type="button" className="btn" onClick={() => void checkMe()}>
          Try again
        </button>
      </Splash>
    );
  }
  if (auth.state === 'out' || path === '/login') {
    if (auth.state === 'in') {
      // Already signed in: the login page just passes on.
      return <Redirect to={safeNext(new URLSearchParams(location.search).get('next'))} />;
    }
    return <LoginPage onSignedIn={signedIn} />;
  }
  return (
    <SignedIn key={auth.me.id} me={auth.me} path={path} onSignOut={signOut} onStreamFailed={streamFailed} />
  );
}

/** Paths this single-page app shows itself; anything else (e.g. /user/... sessions) is the server's. */
function isAppPath(p: string): boolean {
  const path = p.split(/[?#]/)[0] ?? '/';
  return !path.startsWith('/user/') && !path.startsWith('/api/') && !path.startsWith('/static/');
}

function Redirect({ to }: { to: string }) {
  useEffect(() => {
    if (isAppPath(to)) navigate(to, { replace: true });
    else location.replace(to);
  }, [to]);
  return null;
}

function Splash({ text, children }: { text: string; children?: ReactNode }) {
  return (
    <div className="splash">
      <img src="/favicon.svg" alt="" width={40} height={40} />
      <p>{text}</p>
      {children}
    </div>
  );
}

interface SignedInProps {
  me: Me;
  path: string;
  onSignOut(everywhere: boolean): void;
  onStreamFailed(): void;
}

function SignedIn({ me, path, onSignOut, onStreamFailed }: SignedInProps) {
  const live = useMemo(() => new LiveConnection('/api/events', onStreamFailed), [onStreamFailed]);
  useEffect(() => {
    live.start();
    return () => live.close();
  }, [live]);

  const pages = pagesFor(me);
  const page = pageFor(path, pages);
  const Page = page?.component;

  useEffect(() => {
    document.title = page ? `${page.label} · Atrium` : 'Not found · Atrium';
  }, [page]);

  return (
    <LiveContext.Provider value={live}>
      <ToastProvider>
        <SessionsProvider>
          <LiveToasts />
          <BrowserNotifications />
          <a className="skip" href="#main">
            Skip to content
          </a>
          <Header me={me} pages={pages} current={page} onSignOut={onSignOut} />
          <main id="main" className="main">
            {Page ? <Page me={me} /> : <NotFoundPage />}
          </main>
          <footer className="footer">Atrium · interactive computing on the cluster</footer>
        </SessionsProvider>
      </ToastProvider>
    </LiveContext.Provider>
  );
}

/** Turns the live events listed in LIVE_TOASTS into toasts. */
function LiveToasts() {
  const { notify } = useToasts();
  const { sessions } = useSessions();
  const live = useContext(LiveContext);
  const sessionsRef = useRef(sessions);
  useEffect(() => {
    sessionsRef.current = sessions;
  }, [sessions]);
  useEffect(() => {
    if (!live) return;
    const lookups = { session: (id: string) => sessionsRef.current?.find((s) => s.id === id) };
    const offs = Object.entries(LIVE_TOASTS).map(([type, make]) =>
      live.on(type, (data) => {
        const t = make(data, lookups);
        if (t) notify(t);
      }),
    );
    return () => {
      for (const off of offs) off();
    };
  }, [live, notify]);
  return null;
}
