// Table types for kysely. Times are epoch milliseconds (integers) unless the name says otherwise.
import type { Generated } from 'kysely';

export interface UsersTable {
  id: Generated<number>;
  username: string;
  unix_user: string;
  display_name: string | null;
  email: string | null;
  password_hash: string | null;
  /** 'local' | 'oidc' | 'ldap' */
  source: string;
  is_admin: number;
  /** JSON array of group names from the identity provider or directory. */
  groups: string;
  disabled: number;
  created_at: number;
  last_login_at: number | null;
}

export interface WebSessionsTable {
  /** sha256 of the cookie token: the token itself is never stored. */
  id: string;
  user_id: number;
  csrf_token: string;
  created_at: number;
  expires_at: number;
  last_seen_at: number;
  /** JSON: provider tokens etc. */
  data: string;
  /** When the provider tokens in `data` are next due for a refresh (null: nothing to refresh). */
  refresh_at: number | null;
}

/** An OpenID Connect sign-in under way: created at the redirect to the provider, deleted at its use. */
export interface OidcLoginStatesTable {
  /** sha256 of the `state` parameter. */
  id: string;
  /** sha256 of the cookie that binds the attempt to the browser that started it. */
  browser_hash: string;
  nonce: string;
  code_verifier: string;
  /** Local path to return to after sign-in. */
  next: string;
  created_at: number;
  expires_at: number;
}

export interface SessionsTable {
  id: string;
  user_id: number;
  cluster: string;
  app: string;
  environment: string | null;
  label: string | null;
  state: string;
  reason: string | null;
  /** JSON of the validated SessionRequest. */
  request: string;
  job_id: string | null;
  host: string | null;
  port: number | null;
  /** Unix socket path when the app listens on one instead of a port. */
  socket_path: string | null;
  /** Token the gateway adds upstream (e.g. Jupyter's); never sent to the browser. */
  app_token: string;
  /** sha256 of the one-time callback secret; null once used. */
  agent_secret_hash: string | null;
  heartbeat_token_hash: string | null;
  last_heartbeat_at: number | null;
  time_limit_min: number;
  created_at: number;
  submitted_at: number | null;
  started_at: number | null;
  ready_at: number | null;
  ended_at: number | null;
  /** When the session must end (set when the job starts running). */
  expires_at: number | null;
  warned_at: number | null;
  /** JSON: pending reason, queue position, expected start, etc. */
  queue_info: string | null;
  updated_at: number;
  /** JSON [{id, port, socket?}]: the session's extra apps once they are ready (migration 003). */
  apps: string | null;
  /**
   * JSON [app id]: the apps of the session started on a Unix socket (migration 005); a port reported
   * for one of them is the agent's relay. Null for sessions created before it.
   */
  socket_apps: string | null;
  /** The gateway that took the request (`gateways.id`; migration 006). Null on SQLite and before it. */
  gateway: string | null;
}

export interface SessionEventsTable {
  id: Generated<number>;
  session_id: string;
  at: number;
  state: string;
  message: string;
}

export interface JobsTable {
  id: Generated<number>;
  user_id: number;
  cluster: string;
  job_id: string;
  name: string;
  partition: string | null;
  account: string | null;
  state: string;
  reason: string | null;
  exit_code: number | null;
  /** 'path' | 'text' */
  source: string;
  script_path: string | null;
  work_dir: string | null;
  stdout_path: string | null;
  stderr_path: string | null;
  submitted_at: number;
  started_at: number | null;
  ended_at: number | null;
  time_limit_min: number | null;
  nodes: string | null;
  /** JSON: last seen JobInfo. */
  info: string | null;
  updated_at: number;
  /** The job's Unix owner as the scheduler reports it (migration 004). */
  unix_user: string | null;
  /** Last state a notification was sent for (no repeats across restarts). */
  notified_state: string | null;
  /** Where exit_code came from: 'squeue' (last seen) or 'sacct' (accounting). */
  exit_source: string | null;
  /** Last poll that saw the job. */
  seen_at: number | null;
}

export interface NotificationsTable {
  id: Generated<number>;
  user_id: number;
  at: number;
  /** e.g. 'job.completed', 'session.ready', 'session.ending_soon' */
  kind: string;
  title: string;
  body: string;
  /** '/jobs/123' etc. */
  link: string | null;
  read_at: number | null;
}

export interface NotificationPrefsTable {
  user_id: number;
  /** JSON: { [kind]: boolean }, plus 'browser' and 'email' switches. */
  prefs: string;
}

export interface AuditLogTable {
  id: Generated<number>;
  at: number;
  actor_user_id: number | null;
  actor: string | null;
  action: string;
  target: string | null;
  ip: string | null;
  ok: number;
  /** JSON details. */
  details: string;
}

export interface ApiTokensTable {
  id: Generated<number>;
  user_id: number;
  name: string;
  /** sha256 of the token. */
  token_hash: string;
  /** JSON array of scopes. */
  scopes: string;
  created_at: number;
  expires_at: number | null;
  last_used_at: number | null;
  revoked_at: number | null;
}

export interface AnnouncementsTable {
  id: Generated<number>;
  at: number;
  author_user_id: number | null;
  message: string;
  level: string;
  expires_at: number | null;
  active: number;
}

export interface SettingsTable {
  key: string;
  value: string;
}

/** A running gateway sharing the database (PostgreSQL): it renews `seen_at` every second. */
export interface GatewaysTable {
  /** Random per process start. */
  id: string;
  host: string;
  pid: number;
  url: string;
  started_at: number;
  /** The database's clock (ms), like every time below: gateways' clocks may differ. */
  seen_at: number;
}

/** Which gateway polls a cluster (compare-and-set on expiry; renewed while it polls). */
export interface PollLeasesTable {
  cluster: string;
  holder: string;
  expires_at: number;
}

/** The latest snapshot of a cluster's poll, for the gateways that do not poll it. */
export interface PollSnapshotsTable {
  cluster: string;
  version: number;
  holder: string;
  taken_at: number;
  /** JSON PollSnapshot. */
  data: string;
}

/** A live event too large for a NOTIFY payload, read by id by the other gateways; kept a minute. */
export interface LiveMessagesTable {
  id: Generated<number>;
  at: number;
  body: string;
}

/**
 * A named preset of the new-session form (migration 007): a user's own, or the site's (no owner),
 * which every user of the cluster sees and only administrators change.
 */
export interface SessionPresetsTable {
  id: Generated<number>;
  /** The owner; null for a site preset. */
  user_id: number | null;
  cluster: string;
  name: string;
  /** JSON PresetValues (src/api/presets.ts). */
  form_values: string;
  /** The form opens with it on its cluster (at most one per owner and cluster; never a site preset). */
  is_default: number;
  created_at: number;
  updated_at: number;
}

/**
 * A one-time desktop link (migration 008): the owner of a running desktop session lets one other browser
 * see or use it. Only hashes are kept: of the link, and of the grant the browser that opened it holds.
 */
export interface DesktopLinksTable {
  id: Generated<number>;
  session_id: string;
  /** The session's owner, who made the link. */
  user_id: number;
  token_hash: string;
  /** Set when a browser opened the link: the hash of the cookie it was given. */
  grant_hash: string | null;
  view_only: number;
  created_at: number;
  expires_at: number;
  used_at: number | null;
  used_ip: string | null;
  ended_at: number | null;
  /** 'owner' (revoked) or 'session' (the session stopped). */
  ended_by: string | null;
}

/**
 * What accounting says an ended session or job used (migration 009), keyed by the scheduler's job.
 * `source` 'none': the cluster keeps no accounting (or sacct never knew the job); the figures are null.
 */
export interface JobUsageTable {
  cluster: string;
  job_id: string;
  /** 'sacct' | 'none' */
  source: string;
  /** The job's end state as accounting has it. */
  state: string | null;
  /** Allocated CPUs. */
  cores: number | null;
  elapsed_s: number | null;
  /** TotalCPU (user + system) of all steps, milliseconds. */
  total_cpu_ms: number | null;
  /** Largest MaxRSS over the job's steps, KiB. */
  max_rss_kb: number | null;
  /** Requested memory of the whole job, MB. */
  req_mem_mb: number | null;
  limit_min: number | null;
  read_at: number;
}

export interface Database {
  users: UsersTable;
  web_sessions: WebSessionsTable;
  oidc_login_states: OidcLoginStatesTable;
  sessions: SessionsTable;
  session_events: SessionEventsTable;
  jobs: JobsTable;
  notifications: NotificationsTable;
  notification_prefs: NotificationPrefsTable;
  audit_log: AuditLogTable;
  api_tokens: ApiTokensTable;
  announcements: AnnouncementsTable;
  settings: SettingsTable;
  desktop_links: DesktopLinksTable;
  job_usage: JobUsageTable;
  session_presets: SessionPresetsTable;
  gateways: GatewaysTable;
  poll_leases: PollLeasesTable;
  poll_snapshots: PollSnapshotsTable;
  live_messages: LiveMessagesTable;
}
