// Usage and quotas, read in the background and kept: each Slurm cluster's associations (usage, limits,
// fair share) with one sshare per `usage.refreshSeconds`, whatever the number of users and pages; each
// recently seen user's storage quotas with the site's commands, run as that user on a schedule. A page
// view reads the copy; only a user's very first view waits for their quota commands (once).
import type { Logger } from 'pino';
import type {
  AccountUsageView,
  ClusterUsageView,
  StorageQuotaView,
  StorageView,
  UsageReply,
} from '../api/usage.ts';
import type { FilesConfig, UsageConfig } from '../config/schema.ts';
import { orNull } from '../core/nullable.ts';
import {
  type AssociationUsage,
  accountsOfUser,
  percentOf,
  type Thresholds,
  usageLevel,
} from '../core/usage.ts';
import type { User } from '../db/users.ts';
import { runAsFor, userArgv } from '../files/service.ts';
import { type CommandRunner, describeFailure, ExecRunner, succeeded } from '../scheduler/slurm/runner.ts';
import type { SchedulerAdapter, UnixIdentity } from '../scheduler/types.ts';
import { lookupUnixUser } from '../system/users.ts';
import { QuotaParseError, quotaParser, type StorageQuota } from './parsers.ts';

export const QUOTA_UNAVAILABLE = 'quota unavailable';
/** Users whose quota commands run at the same time (first views arriving together). */
const QUOTA_USERS_AT_ONCE = 4;

/** What the service needs of a cluster (src/sessions/clusters.ts's Cluster). */
export interface UsageCluster {
  name: string;
  title: string;
  adapter: SchedulerAdapter;
  userMayUse(user: User): boolean;
}

export interface UsageServiceDeps {
  cfg: UsageConfig;
  /** How commands run as the user: the Files page's way (`files.runAs`). */
  filesRunAs: FilesConfig['runAs'];
  clusters: () => Iterable<UsageCluster>;
  log: Logger;
  lookup?: (unixUser: string) => Promise<UnixIdentity | null>;
  runner?: CommandRunner;
}

interface ComputeEntry {
  at: number | null;
  rows: AssociationUsage[];
  error?: string;
  pending?: Promise<void>;
}

interface StorageEntry {
  at: number;
  views: StorageView[];
}

/** {user}, {uid} and {home} in one argv element. */
export function fillPlaceholders(arg: string, who: UnixIdentity): string {
  return arg.replace(/\{(user|uid|home)\}/g, (_, k: string) =>
    k === 'user' ? who.user : k === 'uid' ? String(who.uid) : who.home,
  );
}

/** One file system's quota as shown: the larger of space and files against their soft (else hard) limit. */
export function storageQuotaView(q: StorageQuota, t: Thresholds): StorageQuotaView {
  const space = percentOf(q.usedBytes, q.softBytes ?? q.hardBytes);
  const files = percentOf(q.files, q.filesSoft ?? q.filesHard);
  const percent = space === null ? files : files === null ? space : Math.max(space, files);
  return {
    filesystem: q.filesystem,
    usedBytes: q.usedBytes,
    ...orNull(q, ['softBytes', 'hardBytes', 'files', 'filesSoft', 'filesHard', 'grace']),
    percent,
    level: usageLevel(percent, t),
  };
}

export class UsageService {
  private readonly compute = new Map<string, ComputeEntry>();
  private readonly storage = new Map<string, StorageEntry>();
  private readonly storagePending = new Map<string, Promise<StorageEntry>>();
  /** Unix user -> when a page last asked (ms). */
  private readonly seen = new Map<string, number>();
  private readonly timers: NodeJS.Timeout[] = [];
  /** A background pass over the recent users runs; the next timer tick skips rather than overlaps. */
  private storagePass = false;
  private stopped = false;
  /** Users whose quota commands run now, and the ones waiting for a turn. */
  private quotaRunning = 0;
  private readonly quotaWaiting: (() => void)[] = [];
  private readonly runner: CommandRunner;
  private readonly lookup: (unixUser: string) => Promise<UnixIdentity | null>;

  constructor(private readonly deps: UsageServiceDeps) {
    this.runner = deps.runner ?? new ExecRunner({ maxOutputBytes: 1024 * 1024 });
    this.lookup = deps.lookup ?? lookupUnixUser;
  }

  private get thresholds(): Thresholds {
    const { warnPercent, criticalPercent } = this.deps.cfg;
    return { warnPercent, criticalPercent: Math.max(warnPercent, criticalPercent) };
  }

  private usageClusters(): UsageCluster[] {
    return [...this.deps.clusters()].filter((c) => typeof c.adapter.accountUsage === 'function');
  }

  start(): void {
    const refreshAll = () => {
      for (const c of this.usageClusters()) void this.refreshCompute(c);
    };
    refreshAll();
    const every = (seconds: number, f: () => void) => {
      const t = setInterval(f, seconds * 1000);
      t.unref();
      this.timers.push(t);
    };
    every(this.deps.cfg.refreshSeconds, refreshAll);
    if (this.deps.cfg.storage.length > 0)
      every(this.deps.cfg.storageRefreshSeconds, () => void this.refreshRecentStorage());
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.splice(0)) clearInterval(t);
  }

  /** One sshare for the cluster, shared by every user until the next one. */
  private refreshCompute(c: UsageCluster): Promise<void> {
    const entry = this.compute.get(c.name) ?? { at: null, rows: [] };
    this.compute.set(c.name, entry);
    if (entry.pending) return entry.pending;
    entry.pending = (async () => {
      try {
        entry.rows = (await c.adapter.accountUsage!()) ?? [];
        entry.at = Date.now();
        delete entry.error;
      } catch (e) {
        entry.error = (e as Error).message;
        this.deps.log.warn({ cluster: c.name, err: entry.error }, 'account usage unavailable');
      } finally {
        delete entry.pending;
      }
    })();
    return entry.pending;
  }

  private async refreshRecentStorage(): Promise<void> {
    // Many users with slow commands may outlast the period: one pass at a time.
    if (this.storagePass || this.stopped) return;
    this.storagePass = true;
    try {
      const since = Date.now() - this.deps.cfg.activeUserMinutes * 60_000;
      for (const [user, at] of this.seen) {
        if (this.stopped) return;
        if (at < since) {
          this.seen.delete(user);
          this.storage.delete(user);
          continue;
        }
        await this.refreshStorage(user);
      }
    } finally {
      this.storagePass = false;
    }
  }

  /** Runs `f` when fewer than QUOTA_USERS_AT_ONCE users' commands run (a crowd of first views waits). */
  private async quotaTurn<T>(f: () => Promise<T>): Promise<T> {
    // A finished turn is handed to the next waiter as it is, so a newcomer cannot slip in between.
    if (this.quotaRunning >= QUOTA_USERS_AT_ONCE)
      await new Promise<void>((resolve) => this.quotaWaiting.push(resolve));
    else this.quotaRunning++;
    try {
      return await f();
    } finally {
      const next = this.quotaWaiting.shift();
      if (next) next();
      else this.quotaRunning--;
    }
  }

  /** The user's quota commands, one after the other, as the user; deduplicated while one runs. */
  private refreshStorage(unixUser: string): Promise<StorageEntry> {
    const running = this.storagePending.get(unixUser);
    if (running) return running;
    const p = this.quotaTurn(async () => {
      const who = await this.lookup(unixUser);
      const views: StorageView[] = [];
      for (const cmd of this.deps.cfg.storage) {
        // Stopped: no new command (the views so far answer a page still waiting).
        if (this.stopped) return { at: Date.now(), views };
        views.push(await this.runQuota(cmd, unixUser, who));
      }
      const entry = { at: Date.now(), views };
      this.storage.set(unixUser, entry);
      return entry;
    }).finally(() => this.storagePending.delete(unixUser));
    this.storagePending.set(unixUser, p);
    return p;
  }

  private async runQuota(
    cmd: UsageConfig['storage'][number],
    unixUser: string,
    who: UnixIdentity | null,
  ): Promise<StorageView> {
    const at = Date.now();
    const unavailable = (why: string, details: Record<string, unknown> = {}): StorageView => {
      this.deps.log.warn({ quota: cmd.name, user: unixUser, why, ...details }, 'storage quota unavailable');
      return { name: cmd.name, available: false, message: QUOTA_UNAVAILABLE, updatedAt: at, quotas: [] };
    };
    const parse = quotaParser(cmd.parser);
    if (!parse) return unavailable(`no quota parser named "${cmd.parser}"`);
    if (!who) return unavailable('no such Unix user');
    if (who.uid === 0) return unavailable('quota commands never run as root');
    const runAs = runAsFor(this.deps.filesRunAs, process.getuid?.() ?? -1, who.uid);
    const argv = userArgv(
      runAs,
      who,
      cmd.command.map((a) => fillPlaceholders(a, who)),
    );
    const r = await this.runner.run(argv, {
      label: 'quota',
      timeoutMs: cmd.timeoutSeconds * 1000,
      env: { HOME: who.home, USER: who.user, LOGNAME: who.user },
    });
    const output = { argv: cmd.command, stdout: r.stdout.slice(0, 4000), stderr: r.stderr.slice(0, 4000) };
    let quotas: StorageQuota[];
    try {
      quotas = parse(r.stdout);
    } catch (e) {
      if (!succeeded(r)) return unavailable(describeFailure(r), output);
      return unavailable(e instanceof QuotaParseError ? e.message : String(e), output);
    }
    // quota exits 1 when a user is over a limit; any other failure is a failure.
    const overExplains = r.code === 1 && !r.timedOut && r.error === undefined && quotas.some((q) => q.over);
    if (!succeeded(r) && !overExplains) return unavailable(describeFailure(r), output);
    return {
      name: cmd.name,
      available: true,
      updatedAt: at,
      quotas: quotas.map((q) => storageQuotaView(q, this.thresholds)),
    };
  }

  /** The user's usage and quotas from the copy (the first view of a user or cluster waits for a read). */
  async forUser(user: User): Promise<UsageReply> {
    const t = this.thresholds;
    const clusters: ClusterUsageView[] = [];
    for (const c of this.usageClusters()) {
      if (!c.userMayUse(user)) continue;
      let entry = this.compute.get(c.name);
      if (!entry || (entry.at === null && entry.error === undefined)) {
        await this.refreshCompute(c);
        entry = this.compute.get(c.name)!;
      }
      // A cluster without accounting has no associations: nothing to show there.
      if (entry.at !== null && entry.rows.length === 0) continue;
      const accounts: AccountUsageView[] =
        entry.at !== null ? accountsOfUser(entry.rows, user.unixUser, t) : [];
      const view: ClusterUsageView = {
        cluster: c.name,
        title: c.title,
        available: entry.at !== null,
        updatedAt: entry.at,
        accounts,
      };
      if (entry.at === null) view.message = 'usage unavailable: the scheduler could not tell';
      else if (entry.error) view.message = 'the latest read failed: this is the one before';
      clusters.push(view);
    }
    let storage: StorageView[] = [];
    if (this.deps.cfg.storage.length > 0) {
      this.seen.set(user.unixUser, Date.now());
      const have = this.storage.get(user.unixUser);
      const stale = !have || Date.now() - have.at > 2 * this.deps.cfg.storageRefreshSeconds * 1000;
      storage = (stale ? await this.refreshStorage(user.unixUser) : have).views;
    }
    return { clusters, storage, warnPercent: t.warnPercent, criticalPercent: t.criticalPercent };
  }
}
