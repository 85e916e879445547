// The route table's entries for running sessions: made from the database row (the agent's report), so
// the same code serves a fresh ready callback, another gateway's change and a restart.
import { appTokenFor, relaySecretFor } from '../apps/secrets.ts';
import { type AppDefinition, extraAppBase } from '../apps/types.ts';
import type { LoadedConfig } from '../config/load.ts';
import type { SessionRequest } from '../core/request.ts';
import { getSession, listActiveSessions, type SessionRow } from '../db/sessions.ts';
import { type RouteEndpoint, type RouteTarget, sessionPrefix } from '../proxy/routes.ts';
import type { SessionServiceDeps } from './deps.ts';
import type { SessionOwners } from './owners.ts';

export interface RoutingDeps extends Pick<SessionServiceDeps, 'db' | 'cfg' | 'routes' | 'log'> {
  owners: SessionOwners;
}

/** One extra app's endpoint as recorded in `sessions.apps` (`stopped` once its agent reported its exit). */
export interface ExtraAppEndpoint {
  id: string;
  port: number;
  socket?: string;
  stopped?: boolean;
}

/** The catalogue's app of that id. */
export function appOf(cfg: LoadedConfig, id: string): AppDefinition | undefined {
  return cfg.appCatalogue.find((a) => a.id === id);
}

/**
 * The apps of a session that were started on a Unix socket, as recorded when it was created. Sessions
 * created before that record existed (migration 005) follow the catalogue, except Jupyter: the
 * built-in Jupyter listened on a TCP port then, so its port is Jupyter's own, not a relay.
 */
export function socketAppsOf(
  row: Pick<SessionRow, 'app' | 'request' | 'socket_apps'>,
  appOf: (id: string) => AppDefinition | undefined,
): Set<string> {
  if (row.socket_apps !== null) return new Set(JSON.parse(row.socket_apps) as string[]);
  const ids = [row.app, ...((JSON.parse(row.request) as SessionRequest).extraApps ?? [])];
  return new Set(ids.filter((id) => id !== 'jupyter' && appOf(id)?.unixSocket));
}

export class SessionRouting {
  constructor(private readonly deps: RoutingDeps) {}

  /** The session's route (its main app and its extra apps) as its row records them. */
  async add(row: SessionRow): Promise<void> {
    const username = await this.deps.owners.username(row.user_id);
    const app = appOf(this.deps.cfg, row.app);
    // Dial-out clusters: every app is reached through the agent's tunnel, and the row has no address.
    const tunnel =
      this.deps.cfg.clusters.find((c) => c.name === row.cluster)?.connection === 'dial-out'
        ? this.deps.routes.tunnels
        : undefined;
    if (!app || !row.host || (!row.port && !row.socket_path && !tunnel)) return;
    const prefix = sessionPrefix(username, row.id);
    const host = row.host;
    const owner = await this.deps.owners.socketOwner(row.user_id);
    const extraSockets = (row.apps ? (JSON.parse(row.apps) as { socket?: string }[]) : []).map(
      (e) => e.socket,
    );
    if (!owner && [row.socket_path, ...extraSockets].some(Boolean)) {
      // Never connect to a user's socket with the gateway's own rights.
      this.deps.log.warn({ session: row.id }, 'the Unix user of the session is unknown; no route');
      return;
    }
    const socketApps = socketAppsOf(row, (id) => appOf(this.deps.cfg, id));
    const endpoint = (a: AppDefinition, base: string, port: number, socket: string | null): RouteEndpoint => {
      const token = appTokenFor(row.app_token, a.id, a.id === row.app);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(a.upstreamHeaders ?? {}))
        headers[k] = v.replaceAll('{token}', token);
      const target: RouteTarget = { host, port, socketPath: socket ?? undefined };
      // A socket is reached with its owner's rights; an app recorded as such (on a socket, or any app
      // on a relay cluster) that reported a port is behind the agent's relay.
      if (tunnel) target.tunnel = { hub: tunnel, sessionId: row.id, app: a.id };
      else if (socket) target.owner = owner ?? undefined;
      else if (socketApps.has(a.id)) target.relaySecret = relaySecretFor(row.app_token, a.id);
      return {
        prefix: base,
        target,
        stripPrefix: a.prefix === 'strip',
        headers,
        transport: a.transport ?? 'http',
      };
    };
    const subRoutes = new Map<string, RouteEndpoint>();
    const stoppedApps = new Set<string>();
    for (const e of row.apps ? (JSON.parse(row.apps) as ExtraAppEndpoint[]) : []) {
      const a = appOf(this.deps.cfg, e.id);
      if (e.stopped) stoppedApps.add(e.id);
      else if (a) subRoutes.set(e.id, endpoint(a, extraAppBase(prefix, e.id), e.port, e.socket ?? null));
    }
    this.deps.routes.set({
      sessionId: row.id,
      userId: row.user_id,
      username,
      cluster: row.cluster,
      ...endpoint(app, prefix, row.port ?? 0, row.socket_path),
      subRoutes: subRoutes.size > 0 ? subRoutes : undefined,
      stoppedApps: stoppedApps.size > 0 ? stoppedApps : undefined,
    });
  }

  /**
   * The route of one session as the database has it now: another gateway sharing the database made it
   * running, moved an app, or ended it (src/server/shared.ts). Callers serialize calls per session.
   */
  async refresh(id: string): Promise<void> {
    const row = await getSession(this.deps.db, id);
    if (row?.state !== 'running') {
      this.deps.routes.delete(id);
      return;
    }
    const before = this.deps.routes.get(id);
    await this.add(row);
    const after = this.deps.routes.get(id);
    if (after && before?.notRespondingSince !== undefined)
      after.notRespondingSince = before.notRespondingSince;
  }

  /** Every route rebuilt from the database (what other gateways changed meanwhile was not heard). */
  async resync(): Promise<void> {
    const running = (await listActiveSessions(this.deps.db)).filter((r) => r.state === 'running');
    const ids = new Set(running.map((r) => r.id));
    for (const r of [...this.deps.routes.all()])
      if (!ids.has(r.sessionId)) this.deps.routes.delete(r.sessionId);
    for (const row of running) await this.refresh(row.id);
  }

  /** After a restart: routes for every running session, from the database (the agents keep running). */
  async restore(): Promise<number> {
    let n = 0;
    for (const row of await listActiveSessions(this.deps.db)) {
      if (row.state === 'running') {
        await this.add(row);
        n++;
      }
    }
    return n;
  }
}
