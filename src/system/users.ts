import type { UnixIdentity } from '../scheduler/types.ts';
import { runCommand } from './spawn.ts';

/** stdout of an NSS query (getent, id), or null when it failed or found nothing. */
async function nss(file: string, args: string[]): Promise<string | null> {
  const r = await runCommand({
    file,
    args,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8' },
    cwd: '/',
    timeoutMs: 5000,
    maxOutputBytes: 1024 * 1024,
    stdoutEncoding: 'utf8',
  });
  return r.code === 0 && !r.timedOut && r.error === undefined ? r.stdout : null;
}
const UNIX_NAME_RE = /^[a-z_][a-z0-9_.-]{0,31}\$?$/i;

export function isValidUnixName(name: string): boolean {
  return UNIX_NAME_RE.test(name);
}

/**
 * How long an NSS answer is reused. Every job page, output read, submit and sign-in needs the user's
 * passwd entry or groups, and each lookup is a process (getent, id): at 200 users clicking through, the
 * gateway spent half of its CPU forking them (bench:scale, docs/benchmarks.md). A minute is far
 * shorter than SSSD's own cache (90 minutes by default), so a change in the directory shows as soon as
 * it would anyway. Only found entries are kept: an unknown user is asked again every time.
 */
export const NSS_CACHE_MS = 60_000;

/** Answers of `lookup` by key for NSS_CACHE_MS; concurrent askers of one key share one process. */
function cachedLookup<T>(lookup: (name: string) => Promise<T>, keep: (v: T) => boolean) {
  const cache = new Map<string, { at: number; value: Promise<T> }>();
  return (name: string): Promise<T> => {
    const now = Date.now();
    const hit = cache.get(name);
    if (hit && now - hit.at < NSS_CACHE_MS) return hit.value;
    const value = lookup(name);
    cache.set(name, { at: now, value });
    void value.then((v) => {
      if (!keep(v) && cache.get(name)?.value === value) cache.delete(name);
    });
    // Bounded by the site's users; stale entries go as they are met, and all of them now and then.
    if (cache.size > 10_000) for (const [k, e] of cache) if (now - e.at >= NSS_CACHE_MS) cache.delete(k);
    return value;
  };
}

/** Looks a user up through NSS (so LDAP/SSSD users work too). Null when unknown. */
export const lookupUnixUser = cachedLookup(
  async (name: string): Promise<UnixIdentity | null> => {
    if (!isValidUnixName(name)) return null;
    const f = (await nss('getent', ['passwd', name]))?.trim().split(':') ?? [];
    if (f.length < 7) return null;
    return { user: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5]!, shell: f[6]! };
  },
  (v) => v !== null,
);

/** The user's groups through NSS; empty when unknown. */
export const groupsOf = cachedLookup(
  async (name: string): Promise<string[]> => {
    if (!isValidUnixName(name)) return [];
    return (await nss('id', ['-nG', name]))?.trim().split(/\s+/).filter(Boolean) ?? [];
  },
  (v) => v.length > 0,
);
