// What the gateway gives the session services. Each part of the data path takes the few of these it
// uses (a `Pick` of this interface) plus the other parts it calls, by name.
import type { Logger } from 'pino';
import type { LoadedConfig } from '../config/load.ts';
import type { SessionState } from '../core/session-machine.ts';
import type { AuditLog } from '../db/audit.ts';
import type { Db } from '../db/index.ts';
import type { SessionRow } from '../db/sessions.ts';
import type { EventBus } from '../events/bus.ts';
import type { RouteTable } from '../proxy/routes.ts';
import type { Cluster } from './clusters.ts';

export interface SessionServiceDeps {
  db: Db;
  cfg: LoadedConfig;
  clusters: Map<string, Cluster>;
  routes: RouteTable;
  bus: EventBus;
  log: Logger;
  audit: AuditLog;
  /** Base URL agents call back on. */
  hubUrl: () => string;
  agentArgv: string[];
  /**
   * The gateways sharing the database (PostgreSQL; src/db/gateways.ts): this one's id, recorded on the
   * sessions it takes, and which are gone. Absent with a single gateway (SQLite).
   */
  gateways?: { readonly id: string; goneBefore(id: string, t: number): boolean };
  /** Hooks for other modules (notifications, metrics). */
  onTransition?: (s: SessionRow, from: SessionState, to: SessionState) => void;
  onWarning?: (s: SessionRow, minutesLeft: number) => void;
}
