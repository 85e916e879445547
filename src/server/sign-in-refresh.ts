// Keeps the state of sign-ins that expire (OIDC tokens) fresh: a browser session whose state is due is
// refreshed through its method (src/auth/sign-in.ts), its account judged again by the access rules when
// the method names the user anew, and signed out when the method says the sign-in is over.
import { readmit } from '../auth/accounts.ts';
import type { SignInMethod } from '../auth/sign-in.ts';
import { findUserById } from '../db/users.ts';
import type { AppContext } from './context.ts';
import { endWebSessions } from './routes/auth.ts';

const REFRESH_TICK_MS = 5_000;

export interface SignInRefresher {
  start(): void;
  stop(): void;
  /**
   * Refreshes one browser session's state (one refresh at a time per session): the state to use, or
   * null when the sign-in has ended (the browser is signed out too).
   */
  refreshSession(sessionId: string): Promise<unknown>;
}

/** The refresher, or null when no configured method's sign-ins expire. */
export function signInRefresher(ctx: AppContext): SignInRefresher | null {
  const methods = ctx.signInMethods.filter((m) => m.expires);
  if (methods.length === 0) return null;
  const log = ctx.log.child({ part: 'sign-in' });
  const inflight = new Map<string, Promise<unknown>>();

  function refreshSession(sessionId: string): Promise<unknown> {
    let p = inflight.get(sessionId);
    if (!p) {
      p = doRefresh(sessionId).finally(() => inflight.delete(sessionId));
      inflight.set(sessionId, p);
    }
    return p;
  }

  async function doRefresh(sessionId: string): Promise<unknown> {
    const row = (await ctx.webSessions.rows({ id: sessionId }))[0];
    if (!row) return null;
    const data = JSON.parse(row.data) as Record<string, unknown>;
    const method: SignInMethod | undefined = methods.find((m) => data[m.name] !== undefined);
    const state = method ? data[method.name] : undefined;
    const r = method ? await method.refresh(state) : ({ outcome: 'unchanged' } as const);
    const end = async (why: string) => {
      const u = await findUserById(ctx.db, row.user_id);
      await endWebSessions(ctx, row.user_id, sessionId);
      await ctx.audit.record({
        actorUserId: row.user_id,
        actor: u?.username ?? null,
        action: 'signout',
        ok: true,
        details: { method: method?.name, why },
      });
      log.info({ user: u?.username, why }, 'signed out');
      return null;
    };
    switch (r.outcome) {
      case 'unchanged':
        await ctx.webSessions.setRefreshAt(sessionId, null);
        return state ?? null;
      case 'ended':
        return end(r.why);
      case 'retry':
        await ctx.webSessions.setRefreshAt(sessionId, r.retryAt);
        return state;
      case 'renewed': {
        if (r.identity) {
          // The source may have changed the groups: apply the access rules again.
          const judged = await readmit(ctx.db, ctx.cfg.auth, row.user_id, r.identity);
          if (!judged.ok) return end(judged.why);
          ctx.webSessions.invalidateUser(row.user_id);
        }
        await ctx.webSessions.updateData(
          sessionId,
          { ...data, [method!.name]: r.state },
          method!.refreshAt(r.state),
        );
        return r.state;
      }
    }
  }

  let timer: NodeJS.Timeout | undefined;
  let ticking = false;
  const tick = async () => {
    if (ticking) return;
    ticking = true;
    try {
      for (const s of await ctx.webSessions.dueForRefresh()) await refreshSession(s.id);
    } catch (e) {
      log.error({ err: (e as Error).message }, 'token refresh pass failed');
    } finally {
      ticking = false;
    }
  };

  return {
    start() {
      timer = setInterval(() => void tick(), REFRESH_TICK_MS);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
    },
    refreshSession,
  };
}
