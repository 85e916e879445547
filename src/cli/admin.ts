// `atrium admin ...`: the admin page's tools for a shell. They work on the database directly (no
// gateway credentials needed: whoever can read the config and write the database is an admin); a
// running gateway applies drain flags, announcements and stop requests within a few seconds
// (src/admin/feature.ts), so stopping a session always goes through the gateway's one code path.
import os from 'node:os';
import { type Command, Option } from 'commander';
import {
  allAnnouncements,
  allJobs,
  checkAnnouncement,
  createAnnouncement,
  drainFlags,
  expireAnnouncement,
  requestStop,
  setDrained,
} from '../admin/store.ts';
import { ANNOUNCEMENT_LEVELS, type AnnouncementLevel } from '../api/admin.ts';
import type { LoadedConfig } from '../config/load.ts';
import { isActive, type SessionState } from '../core/session-machine.ts';
import { AuditLog } from '../db/audit.ts';
import type { Db } from '../db/index.ts';
import { getSession, listAllSessions } from '../db/sessions.ts';
import { type CliConfigOptions, cliConfig, configOption, dataDirOption, openCliDb } from './options.ts';

function fail(msg: string): never {
  process.stderr.write(`${msg}\n`);
  process.exit(2);
}

/** Runs `f` on the database; commands that change it (`writes`) say which file, on stderr. */
async function withDb<T>(
  opts: CliConfigOptions,
  f: (db: Db, cfg: LoadedConfig) => Promise<T>,
  writes = false,
): Promise<T> {
  const cfg = cliConfig(opts);
  const db = await openCliDb(
    cfg,
    writes ? (l) => process.stderr.write(`atrium: database ${l}\n`) : undefined,
  );
  try {
    return await f(db, cfg);
  } finally {
    await db.destroy();
  }
}

/** Who is acting, for the audit log: the Unix account running the command. */
function actor(): string {
  return `cli:${process.env.ATRIUM_CLI_ACTOR || process.env.SUDO_USER || os.userInfo().username}`;
}

async function audit(
  db: Db,
  action: string,
  target: string,
  details: Record<string, unknown> = {},
): Promise<void> {
  // The audit log also writes a log line; the CLI's goes nowhere (its output is for the operator).
  const silent = { info() {} } as unknown as ConstructorParameters<typeof AuditLog>[1];
  await new AuditLog(db, silent).record({
    actor: actor(),
    action,
    target,
    ok: true,
    details: { via: 'cli', ...details },
  });
}

function when(ms: number | null | undefined): string {
  return ms ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) : '-';
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function print(s: string): void {
  process.stdout.write(`${s}\n`);
}

/** Parses --until: an ISO time, or a duration like 30m, 2h, 3d. */
export function parseUntil(v: string, now = Date.now()): number | null {
  const m = /^(\d+(?:\.\d+)?)\s*([mhd])$/.exec(v.trim());
  if (m) return now + Number(m[1]) * { m: 60_000, h: 3600_000, d: 86_400_000 }[m[2] as 'm' | 'h' | 'd'];
  const t = Date.parse(v);
  return Number.isFinite(t) ? t : null;
}

export function registerAdminCommands(program: Command): void {
  const admin = program
    .command('admin')
    .description('administration: sessions, jobs, drain clusters, announcements (works on the database)');

  admin
    .command('sessions')
    .description('list sessions of every user (active ones; --all for recent ended ones too)')
    .addOption(configOption())
    .addOption(dataDirOption())
    .option('--all', 'include ended and failed sessions')
    .option('--json', 'as JSON')
    .action((opts: CliConfigOptions & { all?: boolean; json?: boolean }) =>
      withDb(opts, async (db) => {
        const rows = (await listAllSessions(db, 1000)).filter(
          (r) => opts.all || isActive(r.state as SessionState),
        );
        if (opts.json)
          return print(
            JSON.stringify(
              rows.map(({ app_token: _t, agent_secret_hash: _a, heartbeat_token_hash: _h, ...r }) => r),
              null,
              2,
            ),
          );
        if (rows.length === 0) return print('no sessions');
        print(
          table([
            ['ID', 'USER', 'CLUSTER', 'APP', 'STATE', 'JOB', 'CREATED', 'REASON'],
            ...rows.map((r) => [
              r.id,
              r.username,
              r.cluster,
              r.app,
              r.state,
              r.job_id ?? '-',
              when(r.created_at),
              r.reason ?? '',
            ]),
          ]),
        );
      }),
    );

  admin
    .command('jobs')
    .description('list batch jobs of every user')
    .addOption(configOption())
    .addOption(dataDirOption())
    .option('--json', 'as JSON')
    .action((opts: CliConfigOptions & { json?: boolean }) =>
      withDb(opts, async (db) => {
        const jobs = await allJobs(db);
        if (opts.json) return print(JSON.stringify(jobs, null, 2));
        if (jobs.length === 0) return print('no jobs');
        print(
          table([
            ['CLUSTER', 'JOB', 'USER', 'NAME', 'STATE', 'SUBMITTED', 'EXIT'],
            ...jobs.map((j) => [
              j.cluster,
              j.job_id,
              j.username,
              j.name,
              j.state,
              when(j.submitted_at),
              j.exit_code === null ? '-' : String(j.exit_code),
            ]),
          ]),
        );
      }),
    );

  admin
    .command('stop')
    .description('stop a session (its owner sees "stopped by an administrator"); the running gateway does it')
    .argument('<session>', 'session id')
    .addOption(configOption())
    .addOption(dataDirOption())
    .option('--no-wait', 'do not wait for the gateway to take the request')
    .action((id: string, opts: CliConfigOptions & { wait?: boolean }) =>
      withDb(
        opts,
        async (db) => {
          const row = /^[a-z0-9]{4,32}$/.test(id) ? await getSession(db, id) : undefined;
          if (!row) fail(`session: no session "${id}"`);
          if (!isActive(row.state as SessionState)) return print(`session ${id} is already ${row.state}`);
          await requestStop(db, id, actor());
          if (opts.wait === false)
            return print(`stop of ${id} requested; the gateway carries it out within seconds`);
          const deadline = Date.now() + 15_000;
          while (Date.now() < deadline) {
            const cur = await getSession(db, id);
            if (cur && (cur.state === 'ending' || !isActive(cur.state as SessionState))) {
              return print(`session ${id} is ${cur.state}: ${cur.reason ?? ''}`);
            }
            await new Promise((r) => setTimeout(r, 300));
          }
          print(`stop of ${id} requested; no running gateway took it yet (it will when it runs)`);
        },
        true,
      ),
    );

  for (const [name, drained] of [
    ['drain', true],
    ['undrain', false],
  ] as const) {
    admin
      .command(name)
      .description(
        drained ? 'close a cluster for new sessions (running ones continue)' : 'open a drained cluster again',
      )
      .argument('<cluster>', 'cluster name')
      .addOption(configOption())
      .addOption(dataDirOption())
      .action((cluster: string, opts: CliConfigOptions) =>
        withDb(
          opts,
          async (db, cfg) => {
            if (!cfg.clusters.some((c) => c.name === cluster))
              fail(
                `cluster: no cluster "${cluster}" (configured: ${cfg.clusters.map((c) => c.name).join(', ')})`,
              );
            await setDrained(db, cluster, drained);
            await audit(db, drained ? 'admin.cluster.drain' : 'admin.cluster.undrain', cluster);
            print(`${cluster}: ${drained ? 'drained (closed for new sessions)' : 'open for new sessions'}`);
          },
          true,
        ),
      );
  }

  admin
    .command('clusters')
    .description('list clusters and whether they are drained')
    .addOption(configOption())
    .addOption(dataDirOption())
    .action((opts: CliConfigOptions) =>
      withDb(opts, async (db, cfg) => {
        const flags = await drainFlags(db);
        print(
          table([
            ['CLUSTER', 'BACKEND', 'DRAINED'],
            ...cfg.clusters.map((c) => {
              const f = flags.get(c.name);
              return [
                c.name,
                c.backend,
                f === undefined ? `${c.drained ? 'yes' : 'no'} (config)` : f ? 'yes' : 'no',
              ];
            }),
          ]),
        );
      }),
    );

  admin
    .command('announce')
    .description("post an announcement on every user's dashboard")
    .argument('<text>', 'the message')
    .addOption(configOption())
    .addOption(dataDirOption())
    .option('--until <when>', 'take it down then: an ISO time or a duration (30m, 2h, 3d)')
    .addOption(
      new Option('--level <level>', 'how it is shown').choices([...ANNOUNCEMENT_LEVELS]).default('info'),
    )
    .action((text: string, opts: CliConfigOptions & { until?: string; level: AnnouncementLevel }) =>
      withDb(
        opts,
        async (db) => {
          const expiresAt = opts.until === undefined ? null : parseUntil(opts.until);
          if (opts.until !== undefined && expiresAt === null)
            fail('until: an ISO time or a duration like 2h');
          const problem = checkAnnouncement(text, opts.level, expiresAt);
          if (problem) fail(problem);
          const id = await createAnnouncement(db, {
            message: text,
            level: opts.level,
            expiresAt,
            authorUserId: null,
          });
          await audit(db, 'admin.announcement.create', String(id), { level: opts.level, expiresAt });
          print(`announcement ${id} posted${expiresAt ? ` until ${when(expiresAt)} UTC` : ''}`);
        },
        true,
      ),
    );

  admin
    .command('announcements')
    .description('list announcements (active and past)')
    .addOption(configOption())
    .addOption(dataDirOption())
    .action((opts: CliConfigOptions) =>
      withDb(opts, async (db) => {
        const list = await allAnnouncements(db);
        if (list.length === 0) return print('no announcements');
        const now = Date.now();
        print(
          table([
            ['ID', 'LEVEL', 'SHOWN', 'UNTIL', 'MESSAGE'],
            ...list.map((a) => [
              String(a.id),
              a.level,
              a.active && (!a.expiresAt || a.expiresAt > now) ? 'yes' : 'no',
              when(a.expiresAt),
              a.message.length > 60 ? `${a.message.slice(0, 57)}...` : a.message,
            ]),
          ]),
        );
      }),
    );

  admin
    .command('expire')
    .description('take an announcement down')
    .argument('<id>', 'announcement id')
    .addOption(configOption())
    .addOption(dataDirOption())
    .action((id: string, opts: CliConfigOptions) =>
      withDb(
        opts,
        async (db) => {
          if (!/^\d+$/.test(id) || !(await expireAnnouncement(db, Number(id))))
            fail(`id: no announcement ${id}`);
          await audit(db, 'admin.announcement.expire', id);
          print(`announcement ${id} taken down`);
        },
        true,
      ),
    );
}
