// GET /api/health, for load balancers and service managers: 200 when this gateway can serve, else a 503
// that says why in one line. Ready means: the database answers, and every cluster has a current
// snapshot (polled here, or shared by the gateway that polls it).
import { sql } from 'kysely';
import { isDatabaseUnavailable, unavailableReply } from '../db/index.ts';
import type { AppContext } from './context.ts';

/** One database probe answers the health checks of this long (a load balancer may check often). */
const PROBE_REUSE_MS = 500;
const PROBE_TIMEOUT_MS = 2000;

/**
 * A snapshot older than this is not current. Generous: while the scheduler is down polls back off
 * (up to five periods plus the commands' timeouts), and when the polling gateway dies another takes over
 * within two periods; neither is a reason to take every gateway out of the load balancer.
 */
export function staleAfterMs(intervalMs: number): number {
  return Math.max(30_000, 8 * intervalMs);
}

export type Health = { ok: true } | { ok: false; error: string };

export function healthCheck(ctx: AppContext): () => Promise<Health> {
  let last: { at: number; error: string | null } | null = null;
  let probing: Promise<string | null> | null = null;

  const probe = async (): Promise<string | null> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<string>((r) => {
      timer = setTimeout(
        () => r('database unavailable: PostgreSQL did not answer in time; try again in a moment'),
        PROBE_TIMEOUT_MS,
      );
    });
    try {
      return await Promise.race([sql`select 1`.execute(ctx.db).then(() => null), timeout]);
    } catch (e) {
      return isDatabaseUnavailable(e) ? unavailableReply(e) : `database unavailable: ${(e as Error).message}`;
    } finally {
      clearTimeout(timer);
    }
  };

  const database = async (): Promise<string | null> => {
    if (last && Date.now() - last.at < PROBE_REUSE_MS) return last.error;
    probing ??= probe().then((error) => {
      last = { at: Date.now(), error };
      probing = null;
      return error;
    });
    return probing;
  };

  return async () => {
    const db = await database();
    if (db) return { ok: false, error: db };
    for (const c of ctx.clusters.values()) {
      const age = c.poller.ageMs;
      if (!c.poller.latest || age === Number.POSITIVE_INFINITY)
        return { ok: false, error: `scheduler: no poll of cluster "${c.name}" yet` };
      if (age > staleAfterMs(c.poller.intervalMs))
        return {
          ok: false,
          error: `scheduler: the latest poll of cluster "${c.name}" is ${Math.round(age / 1000)} s old`,
        };
    }
    return { ok: true };
  };
}
