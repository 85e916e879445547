// Signing out from a page (the header's menu has its own, in App.tsx, which does the same): end the
// browser session on the gateway, then follow the identity provider's end-session address when the
// gateway returns one (single sign-on), or load the login page afresh (dropping all signed-in state).
import { post, setCsrfToken } from './api.ts';

/** Only an http(s) address is followed (never javascript: or the like). */
export function followableLogoutUrl(url: unknown): string | null {
  if (typeof url !== 'string' || url === '') return null;
  try {
    const u = new URL(url, location.origin);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : null;
  } catch {
    return null;
  }
}

export async function signOut(everywhere: boolean): Promise<void> {
  let logoutUrl: string | null = null;
  try {
    const r = await post<{ ok: boolean; logoutUrl?: string | null }>('/api/logout', { everywhere });
    logoutUrl = followableLogoutUrl(r.logoutUrl);
  } catch {
    // Signed out or not, this browser forgets it.
  }
  setCsrfToken(null);
  location.assign(logoutUrl ?? '/login');
}
