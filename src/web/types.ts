// Shapes of what the API returns. The server's own types are reused (type-only imports are erased
// from the bundle), so a change on the server side shows up here at type-check time.
import type { RequestLimits, SessionRequest } from '../core/request.ts';
import type { FreeRow, FreeTable } from '../core/resources.ts';
import type { SessionView } from '../sessions/service.ts';

export type { FreeRow, FreeTable, RequestLimits, SessionRequest, SessionView };

export interface Me {
  id: number;
  username: string;
  unixUser: string;
  displayName: string | null;
  isAdmin: boolean;
  groups: string[];
  source: string;
}

export interface AuthMethods {
  local: boolean;
  passwordLabel: string;
  oidc: { label: string; url: string } | null;
}

export interface AppChoice {
  id: string;
  name: string;
  description: string;
  icon: string | null;
  /** false when the app is not installed where sessions run (the form offers it disabled). */
  available?: boolean;
  /** What is missing when not available (commands or paths). */
  missing?: string[];
  /** May run as an extra app next to a session's main app. */
  extra?: boolean;
}

export interface EnvironmentChoice {
  id: string;
  name: string;
  description: string;
}

export interface ClusterView {
  name: string;
  title: string;
  backend: string;
  drained: boolean;
  reachable: boolean;
  defaultHours: number;
  limits: RequestLimits;
  defaultPartition: string | null;
  apps: AppChoice[];
  environments: EnvironmentChoice[];
  free: FreeTable;
}

export interface SessionEventRow {
  at: number;
  state: string;
  message: string;
}
