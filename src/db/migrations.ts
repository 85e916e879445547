// Inline migrations, applied in order at start. Add new ones at the end; never edit a shipped one
// (001-005 learnt PostgreSQL's types through `types()`; their SQLite DDL stayed byte for byte the same).
import {
  type CreateTableBuilder,
  type Kysely,
  type Migration,
  type MigrationProvider,
  Migrator,
  sql,
} from 'kysely';
import { engineOf } from './engine.ts';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists
type AnyDb = Kysely<any>;

/**
 * Column types that differ by engine. On SQLite they are what the first release shipped (its
 * `integer` is 64 bits); PostgreSQL's `integer` is 32 bits, too small for epoch milliseconds, and
 * its auto-numbered ids are `serial` columns. Flags stay `integer` (0/1) on both.
 */
function types(db: AnyDb) {
  const pg = engineOf(db) === 'postgres';
  return {
    /** Epoch milliseconds. */
    ms: pg ? ('bigint' as const) : ('integer' as const),
    /** An auto-numbered `id` primary key. */
    autoId: <T extends CreateTableBuilder<string, never>>(t: T): T =>
      (pg
        ? t.addColumn('id', 'serial', (c) => c.primaryKey())
        : t.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())) as T,
  };
}

const m001: Migration = {
  async up(db: AnyDb) {
    const t = types(db);
    await db.schema
      .createTable('users')
      .$call(t.autoId)
      .addColumn('username', 'text', (c) => c.notNull().unique())
      .addColumn('unix_user', 'text', (c) => c.notNull())
      .addColumn('display_name', 'text')
      .addColumn('email', 'text')
      .addColumn('password_hash', 'text')
      .addColumn('source', 'text', (c) => c.notNull().defaultTo('local'))
      .addColumn('is_admin', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('groups', 'text', (c) => c.notNull().defaultTo('[]'))
      .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('created_at', t.ms, (c) => c.notNull())
      .addColumn('last_login_at', t.ms)
      .execute();

    await db.schema
      .createTable('web_sessions')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id').onDelete('cascade'))
      .addColumn('csrf_token', 'text', (c) => c.notNull())
      .addColumn('created_at', t.ms, (c) => c.notNull())
      .addColumn('expires_at', t.ms, (c) => c.notNull())
      .addColumn('last_seen_at', t.ms, (c) => c.notNull())
      .addColumn('data', 'text', (c) => c.notNull().defaultTo('{}'))
      .execute();
    await db.schema.createIndex('web_sessions_user').on('web_sessions').column('user_id').execute();

    await db.schema
      .createTable('sessions')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id'))
      .addColumn('cluster', 'text', (c) => c.notNull())
      .addColumn('app', 'text', (c) => c.notNull())
      .addColumn('environment', 'text')
      .addColumn('label', 'text')
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('reason', 'text')
      .addColumn('request', 'text', (c) => c.notNull())
      .addColumn('job_id', 'text')
      .addColumn('host', 'text')
      .addColumn('port', 'integer')
      .addColumn('socket_path', 'text')
      .addColumn('app_token', 'text', (c) => c.notNull())
      .addColumn('agent_secret_hash', 'text')
      .addColumn('heartbeat_token_hash', 'text')
      .addColumn('last_heartbeat_at', t.ms)
      .addColumn('time_limit_min', 'integer', (c) => c.notNull())
      .addColumn('created_at', t.ms, (c) => c.notNull())
      .addColumn('submitted_at', t.ms)
      .addColumn('started_at', t.ms)
      .addColumn('ready_at', t.ms)
      .addColumn('ended_at', t.ms)
      .addColumn('expires_at', t.ms)
      .addColumn('warned_at', t.ms)
      .addColumn('queue_info', 'text')
      .addColumn('updated_at', t.ms, (c) => c.notNull())
      .execute();
    await db.schema.createIndex('sessions_user').on('sessions').columns(['user_id', 'state']).execute();
    await db.schema.createIndex('sessions_state').on('sessions').column('state').execute();

    await db.schema
      .createTable('session_events')
      .$call(t.autoId)
      .addColumn('session_id', 'text', (c) => c.notNull().references('sessions.id').onDelete('cascade'))
      .addColumn('at', t.ms, (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('message', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('session_events_session').on('session_events').column('session_id').execute();

    await db.schema
      .createTable('jobs')
      .$call(t.autoId)
      .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id'))
      .addColumn('cluster', 'text', (c) => c.notNull())
      .addColumn('job_id', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('partition', 'text')
      .addColumn('account', 'text')
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('reason', 'text')
      .addColumn('exit_code', 'integer')
      .addColumn('source', 'text', (c) => c.notNull())
      .addColumn('script_path', 'text')
      .addColumn('work_dir', 'text')
      .addColumn('stdout_path', 'text')
      .addColumn('stderr_path', 'text')
      .addColumn('submitted_at', t.ms, (c) => c.notNull())
      .addColumn('started_at', t.ms)
      .addColumn('ended_at', t.ms)
      .addColumn('time_limit_min', 'integer')
      .addColumn('nodes', 'text')
      .addColumn('info', 'text')
      .addColumn('updated_at', t.ms, (c) => c.notNull())
      .addUniqueConstraint('jobs_cluster_job', ['cluster', 'job_id'])
      .execute();
    await db.schema.createIndex('jobs_user').on('jobs').columns(['user_id', 'state']).execute();

    await db.schema
      .createTable('notifications')
      .$call(t.autoId)
      .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id'))
      .addColumn('at', t.ms, (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('title', 'text', (c) => c.notNull())
      .addColumn('body', 'text', (c) => c.notNull())
      .addColumn('link', 'text')
      .addColumn('read_at', t.ms)
      .execute();
    await db.schema
      .createIndex('notifications_user')
      .on('notifications')
      .columns(['user_id', 'at'])
      .execute();

    await db.schema
      .createTable('notification_prefs')
      .addColumn('user_id', 'integer', (c) => c.primaryKey().references('users.id'))
      .addColumn('prefs', 'text', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('audit_log')
      .$call(t.autoId)
      .addColumn('at', t.ms, (c) => c.notNull())
      .addColumn('actor_user_id', 'integer')
      .addColumn('actor', 'text')
      .addColumn('action', 'text', (c) => c.notNull())
      .addColumn('target', 'text')
      .addColumn('ip', 'text')
      .addColumn('ok', 'integer', (c) => c.notNull())
      .addColumn('details', 'text', (c) => c.notNull().defaultTo('{}'))
      .execute();
    await db.schema.createIndex('audit_log_at').on('audit_log').column('at').execute();

    await db.schema
      .createTable('api_tokens')
      .$call(t.autoId)
      .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id'))
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('token_hash', 'text', (c) => c.notNull().unique())
      .addColumn('scopes', 'text', (c) => c.notNull())
      .addColumn('created_at', t.ms, (c) => c.notNull())
      .addColumn('expires_at', t.ms)
      .addColumn('last_used_at', t.ms)
      .addColumn('revoked_at', t.ms)
      .execute();

    await db.schema
      .createTable('announcements')
      .$call(t.autoId)
      .addColumn('at', t.ms, (c) => c.notNull())
      .addColumn('author_user_id', 'integer')
      .addColumn('message', 'text', (c) => c.notNull())
      .addColumn('level', 'text', (c) => c.notNull().defaultTo('info'))
      .addColumn('expires_at', t.ms)
      .addColumn('active', 'integer', (c) => c.notNull().defaultTo(1))
      .execute();

    await db.schema
      .createTable('settings')
      .addColumn('key', 'text', (c) => c.primaryKey())
      .addColumn('value', 'text', (c) => c.notNull())
      .execute();
  },
};

// Sign-in security: single-use OIDC login states, when each browser session's provider tokens are due
// for refresh, and indexes for the audit filters and token lists.
const m002: Migration = {
  async up(db: AnyDb) {
    const t = types(db);
    await db.schema
      .createTable('oidc_login_states')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('browser_hash', 'text', (c) => c.notNull())
      .addColumn('nonce', 'text', (c) => c.notNull())
      .addColumn('code_verifier', 'text', (c) => c.notNull())
      .addColumn('next', 'text', (c) => c.notNull())
      .addColumn('created_at', t.ms, (c) => c.notNull())
      .addColumn('expires_at', t.ms, (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('oidc_login_states_expires')
      .on('oidc_login_states')
      .column('expires_at')
      .execute();
    await db.schema.alterTable('web_sessions').addColumn('refresh_at', t.ms).execute();
    await db.schema.createIndex('web_sessions_refresh').on('web_sessions').column('refresh_at').execute();
    await db.schema.createIndex('audit_log_action').on('audit_log').columns(['action', 'at']).execute();
    await db.schema.createIndex('api_tokens_user').on('api_tokens').column('user_id').execute();
  },
};

/** Endpoints of a session's extra apps (several apps on one allocation), JSON. */
const m003: Migration = {
  async up(db: AnyDb) {
    await db.schema.alterTable('sessions').addColumn('apps', 'text').execute();
  },
};

/** Batch-job history: the job's Unix owner, the last state notified, where the exit code came from. */
const m004: Migration = {
  async up(db: AnyDb) {
    const t = types(db);
    await db.schema.alterTable('jobs').addColumn('unix_user', 'text').execute();
    await db.schema.alterTable('jobs').addColumn('notified_state', 'text').execute();
    await db.schema.alterTable('jobs').addColumn('exit_source', 'text').execute();
    await db.schema.alterTable('jobs').addColumn('seen_at', t.ms).execute();
    await db.schema.createIndex('jobs_owner').on('jobs').columns(['unix_user', 'submitted_at']).execute();
  },
};

/**
 * Which of a session's apps were started on a Unix socket (JSON list of app ids), fixed when the session
 * is created: a reported port of such an app is the agent's relay. The route must not follow later
 * catalogue changes (the built-in Jupyter moved from TCP to a socket while sessions ran).
 */
const m005: Migration = {
  async up(db: AnyDb) {
    await db.schema.alterTable('sessions').addColumn('socket_apps', 'text').execute();
  },
};

/**
 * Several gateways on one PostgreSQL (docs/deploy.md): which gateways are alive, each cluster's poll
 * lease and its latest snapshot, events too large for a NOTIFY, and the gateway that took each session
 * (a `requested` session whose gateway died is settled at once, not after the sbatch timeout). On
 * PostgreSQL, triggers tell every gateway about changed routes, ended browser sessions, changed users
 * and notification preferences. The tables exist on SQLite too (one schema), where a single gateway never uses them.
 */
const m006: Migration = {
  async up(db: AnyDb) {
    const t = types(db);
    await db.schema.alterTable('sessions').addColumn('gateway', 'text').execute();
    await db.schema
      .createTable('gateways')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('host', 'text', (c) => c.notNull())
      .addColumn('pid', 'integer', (c) => c.notNull())
      .addColumn('url', 'text', (c) => c.notNull())
      .addColumn('started_at', t.ms, (c) => c.notNull())
      .addColumn('seen_at', t.ms, (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('poll_leases')
      .addColumn('cluster', 'text', (c) => c.primaryKey())
      .addColumn('holder', 'text', (c) => c.notNull())
      .addColumn('expires_at', t.ms, (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('poll_snapshots')
      .addColumn('cluster', 'text', (c) => c.primaryKey())
      .addColumn('version', t.ms, (c) => c.notNull())
      .addColumn('holder', 'text', (c) => c.notNull())
      .addColumn('taken_at', t.ms, (c) => c.notNull())
      .addColumn('data', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('live_messages')
      .$call(t.autoId)
      .addColumn('at', t.ms, (c) => c.notNull())
      .addColumn('body', 'text', (c) => c.notNull())
      .execute();
    if (engineOf(db) !== 'postgres') return;
    // Only what changes a route, a browser session or a user's rights is told (not every heartbeat).
    await sql`
      create function atrium_session_changed() returns trigger language plpgsql as $$
      begin
        if new.state is distinct from old.state or new.host is distinct from old.host
           or new.port is distinct from old.port or new.socket_path is distinct from old.socket_path
           or new.apps is distinct from old.apps then
          perform pg_notify('atrium_session', new.id);
        end if;
        return null;
      end $$`.execute(db);
    await sql`create trigger sessions_changed after update on sessions
      for each row execute function atrium_session_changed()`.execute(db);
    await sql`
      create function atrium_web_session_changed() returns trigger language plpgsql as $$
      begin
        if tg_op = 'DELETE' then
          perform pg_notify('atrium_web_session', json_build_object('id', old.id, 'user', old.user_id, 'ended', true)::text);
        elsif new.data is distinct from old.data or new.expires_at is distinct from old.expires_at then
          perform pg_notify('atrium_web_session', json_build_object('id', new.id, 'user', new.user_id, 'ended', false)::text);
        end if;
        return null;
      end $$`.execute(db);
    await sql`create trigger web_sessions_changed after update or delete on web_sessions
      for each row execute function atrium_web_session_changed()`.execute(db);
    await sql`
      create function atrium_user_changed() returns trigger language plpgsql as $$
      begin
        if tg_op = 'DELETE' then
          perform pg_notify('atrium_user', old.id::text);
        elsif row(new.username, new.unix_user, new.display_name, new.email, new.source, new.is_admin,
                  new.groups, new.disabled)
              is distinct from row(old.username, old.unix_user, old.display_name, old.email, old.source,
                  old.is_admin, old.groups, old.disabled) then
          perform pg_notify('atrium_user', new.id::text);
        end if;
        return null;
      end $$`.execute(db);
    await sql`create trigger users_changed after update or delete on users
      for each row execute function atrium_user_changed()`.execute(db);
    await sql`
      create function atrium_prefs_changed() returns trigger language plpgsql as $$
      begin
        perform pg_notify('atrium_prefs', coalesce(new.user_id, old.user_id)::text);
        return null;
      end $$`.execute(db);
    await sql`create trigger notification_prefs_changed after insert or update or delete on notification_prefs
      for each row execute function atrium_prefs_changed()`.execute(db);
  },
};

/** Named presets of the new-session form, a user's own and the site's (src/presets/). */
const m007: Migration = {
  async up(db: AnyDb) {
    const t = types(db);
    await db.schema
      .createTable('session_presets')
      .$call(t.autoId)
      .addColumn('user_id', 'integer', (c) => c.references('users.id').onDelete('cascade'))
      .addColumn('cluster', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('form_values', 'text', (c) => c.notNull())
      .addColumn('is_default', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('created_at', t.ms, (c) => c.notNull())
      .addColumn('updated_at', t.ms, (c) => c.notNull())
      .execute();
    await db.schema.createIndex('session_presets_user').on('session_presets').column('user_id').execute();
  },
};

/** One-time desktop links (src/server/features/desktop-links.ts), kept as hashes. */
const m008: Migration = {
  async up(db: AnyDb) {
    const t = types(db);
    await db.schema
      .createTable('desktop_links')
      .$call(t.autoId)
      .addColumn('session_id', 'text', (c) => c.notNull().references('sessions.id'))
      .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id'))
      .addColumn('token_hash', 'text', (c) => c.notNull().unique())
      .addColumn('grant_hash', 'text', (c) => c.unique())
      .addColumn('view_only', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('created_at', t.ms, (c) => c.notNull())
      .addColumn('expires_at', t.ms, (c) => c.notNull())
      .addColumn('used_at', t.ms)
      .addColumn('used_ip', 'text')
      .addColumn('ended_at', t.ms)
      .addColumn('ended_by', 'text')
      .execute();
    await db.schema.createIndex('desktop_links_session').on('desktop_links').column('session_id').execute();
    await db.schema.createIndex('desktop_links_user').on('desktop_links').column('user_id').execute();
  },
};

/**
 * What accounting (sacct) says an ended session or job used (src/history/), read once after its end so the
 * history neither calls sacct per page view nor loses its figures at a restart.
 */
const m009: Migration = {
  async up(db: AnyDb) {
    const t = types(db);
    await db.schema
      .createTable('job_usage')
      .addColumn('cluster', 'text', (c) => c.notNull())
      .addColumn('job_id', 'text', (c) => c.notNull())
      .addColumn('source', 'text', (c) => c.notNull())
      .addColumn('state', 'text')
      .addColumn('cores', 'integer')
      .addColumn('elapsed_s', t.ms)
      .addColumn('total_cpu_ms', t.ms)
      .addColumn('max_rss_kb', t.ms)
      .addColumn('req_mem_mb', t.ms)
      .addColumn('limit_min', 'integer')
      .addColumn('read_at', t.ms, (c) => c.notNull())
      .addPrimaryKeyConstraint('job_usage_pk', ['cluster', 'job_id'])
      .execute();
    // The reader's look at each poll for recent ends without figures, without scanning every row.
    await db.schema.createIndex('jobs_cluster_ended').on('jobs').columns(['cluster', 'ended_at']).execute();
    await db.schema
      .createIndex('sessions_cluster_ended')
      .on('sessions')
      .columns(['cluster', 'ended_at'])
      .execute();
  },
};

export const migrations: Record<string, Migration> = {
  '001_initial': m001,
  '002_auth_security': m002,
  '003_session_apps': m003,
  '004_jobs_history': m004,
  '005_session_socket_apps': m005,
  '006_shared_gateways': m006,
  '007_session_presets': m007,
  '008_desktop_links': m008,
  '009_job_usage': m009,
};

class InlineProvider implements MigrationProvider {
  async getMigrations(): Promise<Record<string, Migration>> {
    return migrations;
  }
}

export async function migrate(db: AnyDb): Promise<void> {
  const migrator = new Migrator({ db, provider: new InlineProvider() });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    throw new Error(`database migration ${failed?.migrationName ?? ''} failed: ${String(error)}`);
  }
}

export { sql };
