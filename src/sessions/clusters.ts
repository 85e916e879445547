// One Cluster per configured cluster: its adapter, its single poller, cached static facts, and what
// the form may offer a given user there.
import os from 'node:os';
import type { Logger } from 'pino';
import { missingRequirements } from '../apps/requires.ts';
import type { AppDefinition } from '../apps/types.ts';
import type { ClusterConfig, EnvironmentConfig } from '../config/schema.ts';
import { type ProjectDecision, projectAccess } from '../core/project-access.ts';
import type { RequestLimits } from '../core/request.ts';
import { type FreeTable, freeResources } from '../core/resources.ts';
import type { User } from '../db/users.ts';
import { ClusterPoller } from '../scheduler/poller.ts';
import { backendOf, createAdapter } from '../scheduler/registry.ts';
import { expandHostlist } from '../scheduler/slurm/parse.ts';
import type { ClusterInfo, NodeInfo, PollSnapshot, SchedulerAdapter } from '../scheduler/types.ts';
import { groupsOf } from '../system/users.ts';

const INFO_TTL_MS = 60_000;
const INFO_RETRY_MS = 10_000;

const unixGroupCache = new Map<string, { groups: string[]; at: number }>();

/** A user's Unix groups, cached for a minute (cluster access is checked on every form load). */
async function unixGroupsOf(unixUser: string): Promise<string[]> {
  const hit = unixGroupCache.get(unixUser);
  if (hit && Date.now() - hit.at < 60_000) return hit.groups;
  const groups = await groupsOf(unixUser);
  if (unixGroupCache.size > 10_000) unixGroupCache.clear();
  unixGroupCache.set(unixUser, { groups, at: Date.now() });
  return groups;
}
/** How long a form waits for the first poll after a start (the live limits come from it). */
const FIRST_POLL_WAIT_MS = 5_000;

export class Cluster {
  readonly adapter: SchedulerAdapter;
  readonly poller: ClusterPoller;
  private info: ClusterInfo | null = null;
  private infoAt = 0;
  private infoPending: Promise<ClusterInfo> | null = null;
  /** The free table of the latest poll: built once per poll, whatever the number of pages asking. */
  private free: { snap: PollSnapshot; fresh: boolean; table: FreeTable } | null = null;
  /** The sessions run on this host (the backend's `sameHost`): sockets, software and size are local. */
  readonly sameHost: boolean;
  /** Nodes this cluster's sessions may use (slurm.nodelist); undefined: all. */
  private readonly nodeSet: ReadonlySet<string> | undefined;
  /** Reads the cluster's facts, associations included, every `projectAccess.refreshSeconds`. */
  private accessTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly cfg: ClusterConfig,
    dataDir: string,
    private readonly log: Logger,
    adapter?: SchedulerAdapter,
  ) {
    this.adapter = adapter ?? createAdapter(cfg, dataDir, log);
    this.sameHost = backendOf(cfg.backend)?.sameHost ?? false;
    const seconds = this.sameHost ? 2 : (cfg.slurm?.pollSeconds ?? cfg.ssh?.pollSeconds ?? 10);
    this.poller = new ClusterPoller(this.adapter, seconds * 1000, log);
    const list = cfg.slurm?.nodelist;
    this.nodeSet = list ? new Set(expandHostlist(list)) : undefined;
    // Fetch the cluster's facts once the scheduler answers, before the first form asks for them.
    if (!this.sameHost) {
      this.poller.onSnapshot((_name, snap) => {
        if (snap.ok && !this.info && !this.infoPending) this.refreshInfo().catch(() => undefined);
      });
    }
    // On a timer, not on page views: a change in Slurm takes effect within one period, whoever asks.
    const rule = cfg.projectAccess;
    if (rule && !this.sameHost) {
      this.accessTimer = setInterval(() => {
        if (!this.infoPending) this.refreshInfo().catch(() => undefined);
      }, rule.refreshSeconds * 1000);
      this.accessTimer.unref();
    }
  }

  close(): void {
    clearInterval(this.accessTimer);
  }

  /** The nodes of a poll that sessions here may run on. */
  nodesOf(snap: PollSnapshot | null): NodeInfo[] {
    const nodes = snap?.nodes ?? [];
    const set = this.nodeSet;
    return set ? nodes.filter((n) => set.has(n.name)) : nodes;
  }

  get name(): string {
    return this.cfg.name;
  }

  get title(): string {
    return this.cfg.title ?? this.cfg.name;
  }

  /** Partitions, reservations, accounts: cached, refreshed at most once a minute. */
  async clusterInfo(force = false): Promise<ClusterInfo> {
    if (!force && this.info && Date.now() - this.infoAt < INFO_TTL_MS) return this.info;
    const pending = this.infoPending ?? this.refreshInfo();
    // Known but old: answer with it and refresh in the background, so a form or a submit never waits
    // for scontrol and sacctmgr once the cluster has been seen.
    if (!force && this.info) {
      pending.catch(() => undefined);
      return this.info;
    }
    return pending;
  }

  private refreshInfo(): Promise<ClusterInfo> {
    this.infoPending = this.adapter
      .clusterInfo()
      .then((i) => {
        this.info = i;
        this.infoAt = Date.now();
        return i;
      })
      .catch((e: Error) => {
        this.log.warn({ cluster: this.name, err: e.message }, 'cluster info unavailable');
        if (!this.info) throw e;
        this.infoAt = Date.now() - INFO_TTL_MS + INFO_RETRY_MS; // keep the old facts; try again soon
        return this.info;
      })
      .finally(() => {
        this.infoPending = null;
      });
    return this.infoPending;
  }

  /**
   * The accounts this user may charge here: their active associations (under `projectAccess`, only
   * the rule's projects), or the configured list on a cluster without accounting; undefined: any.
   */
  accountsFor(user: User, info: ClusterInfo | null): string[] | undefined {
    const rule = this.cfg.projectAccess;
    if (!info?.hasAccounting) return rule ? [] : this.cfg.slurm?.accounts;
    const mine = info.accountsByUser?.[user.unixUser] ?? [];
    const projects = rule?.projects;
    return projects ? mine.filter((a) => projects.includes(a)) : mine;
  }

  /** Under `projectAccess`, whether this user may start sessions and jobs here (from the cached associations); null: no rule. */
  async projectAccess(user: User): Promise<ProjectDecision | null> {
    const rule = this.cfg.projectAccess;
    if (!rule) return null;
    const info = await this.clusterInfo().catch(() => null);
    const accounts = info?.hasAccounting ? (info.accountsByUser?.[user.unixUser] ?? []) : undefined;
    return projectAccess(rule, this.title, accounts);
  }

  userMayUse(user: User): boolean {
    return this.cfg.allowGroups.length === 0 || this.cfg.allowGroups.some((g) => user.groups.includes(g));
  }

  /** userMayUse, also counting the Unix groups of the user's account (local accounts have no others). */
  async mayUse(user: User): Promise<boolean> {
    if (this.userMayUse(user)) return true;
    const groups = await unixGroupsOf(user.unixUser);
    return this.cfg.allowGroups.some((g) => groups.includes(g));
  }

  /** Set by administrators at run time (persisted by the admin feature); null: the config decides. */
  drainedOverride: boolean | null = null;

  /** Closed for new sessions (running ones continue). */
  get drained(): boolean {
    return this.drainedOverride ?? this.cfg.drained;
  }

  /** Free resources of the default partition, from the latest good poll (cached per poll). */
  freeTable(): FreeTable {
    const snap = this.poller.latestGood;
    const fresh = this.poller.latest?.ok ?? false;
    if (!snap) return { cluster: this.name, at: 0, rows: [], fresh: false };
    if (this.free?.snap === snap && this.free.fresh === fresh) return this.free.table;
    const rows = freeResources(this.nodesOf(snap), this.cfg.slurm?.partition);
    const table: FreeTable = { cluster: this.name, at: snap.at, rows, fresh };
    this.free = { snap, fresh, table };
    return table;
  }

  appsFor(catalogue: AppDefinition[]): AppDefinition[] {
    return catalogue.filter((a) => !a.clusters || a.clusters.includes(this.name));
  }

  /** How the gateway reaches apps on Unix sockets: directly (nodes are this host) or via the agent's relay. */
  get appSockets(): 'unix' | 'relay' {
    return this.cfg.appSockets ?? (this.sameHost ? 'unix' : 'relay');
  }

  /** Whether the gateway connects to the nodes (inbound) or the agents dial the gateway (dial-out). */
  get connection(): 'inbound' | 'dial-out' {
    return this.cfg.connection ?? 'inbound';
  }

  /** What an app lacks to run here ([] when it is installed, or when this host cannot tell). */
  missingFor(app: AppDefinition): string[] {
    const check = this.cfg.checkInstalled ?? this.sameHost;
    return check ? missingRequirements(app.requires) : [];
  }

  environmentsFor(envs: EnvironmentConfig[]): EnvironmentConfig[] {
    return envs.filter((e) => !e.clusters || e.clusters.includes(this.name));
  }

  /** What this user may ask for here; for Slurm from the live nodes, for `local` from config and the machine. */
  async limitsFor(user: User, catalogue: AppDefinition[], envs: EnvironmentConfig[]): Promise<RequestLimits> {
    const appDefs = this.appsFor(catalogue);
    const apps = appDefs.map((a) => a.id);
    const extraApps = appDefs.filter((a) => a.extra !== false).map((a) => a.id);
    const environments = this.environmentsFor(envs).map((e) => e.id);
    const maxHours = this.cfg.maxHours;
    const l = this.cfg.limits ?? {};
    if (this.sameHost) {
      return {
        maxCores: l.maxCores ?? os.cpus().length,
        maxMemoryGb: l.maxMemoryGb ?? Math.max(1, Math.floor(os.totalmem() / 1024 ** 3)),
        maxGpus: l.maxGpus ?? 0,
        maxHours,
        apps,
        extraApps,
        environments,
      };
    }
    // Right after a start the first poll may still be under way: wait for it (briefly).
    if (!this.poller.latestGood) await this.poller.whenPolled(FIRST_POLL_WAIT_MS);
    const nodes = this.nodesOf(this.poller.latestGood);
    const info = await this.clusterInfo().catch(() => null);
    const offered = this.cfg.slurm?.partitions;
    // Unknown (Slurm never answered yet): the partition is left for Slurm to check, not refused here.
    const partitions = info
      ? info.partitions.map((p) => p.name).filter((p) => !offered || offered.includes(p))
      : offered;
    const perPartition: RequestLimits['perPartition'] = {};
    for (const p of partitions ?? []) {
      const pn = nodes.filter((n) => n.partitions.includes(p));
      if (pn.length === 0) continue;
      const pinfo = info?.partitions.find((x) => x.name === p);
      perPartition[p] = {
        maxCores: Math.min(l.maxCores ?? Number.POSITIVE_INFINITY, Math.max(...pn.map((n) => n.cpus))),
        maxMemoryGb: Math.min(
          l.maxMemoryGb ?? Number.POSITIVE_INFINITY,
          Math.floor(Math.max(...pn.map((n) => n.memoryMb)) / 1024),
        ),
        maxGpus: Math.min(l.maxGpus ?? Number.POSITIVE_INFINITY, Math.max(...pn.map((n) => n.gpus))),
        maxHours: pinfo?.maxTimeMinutes ? pinfo.maxTimeMinutes / 60 : undefined,
      };
    }
    const all = nodes.length > 0 ? nodes : [];
    const accounts = this.accountsFor(user, info);
    const reservations = (info?.reservations ?? [])
      .filter((r) => r.users.includes(user.unixUser) || (accounts ?? []).some((a) => r.accounts.includes(a)))
      .map((r) => r.name);
    return {
      maxCores: Math.min(l.maxCores ?? Number.POSITIVE_INFINITY, Math.max(1, ...all.map((n) => n.cpus))),
      maxMemoryGb: Math.min(
        l.maxMemoryGb ?? Number.POSITIVE_INFINITY,
        Math.max(1, Math.floor(Math.max(0, ...all.map((n) => n.memoryMb)) / 1024)),
      ),
      maxGpus: Math.min(l.maxGpus ?? Number.POSITIVE_INFINITY, Math.max(0, ...all.map((n) => n.gpus))),
      maxHours,
      apps,
      extraApps,
      environments,
      partitions,
      perPartition,
      accounts,
      reservations,
    };
  }

  /** The partition for a request: the user's choice, else the first matching rule, else the default. */
  choosePartition(req: {
    partition?: string;
    gpus: number;
    cores: number;
    hours: number;
  }): string | undefined {
    if (req.partition) return req.partition;
    for (const r of this.cfg.slurm?.partitionRules ?? []) {
      if (r.minGpus !== undefined && req.gpus < r.minGpus) continue;
      if (r.maxCores !== undefined && req.cores > r.maxCores) continue;
      if (r.maxHours !== undefined && req.hours > r.maxHours) continue;
      return r.partition;
    }
    return this.cfg.slurm?.partition;
  }
}
