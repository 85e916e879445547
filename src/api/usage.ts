// Usage and quotas: each of the user's accounts on each cluster (CPU time used against the account's
// limit, the user's fair share and what it means for their queue time) and their storage quotas, all
// from the gateway's cache (read in the background, never per page view).
import Type, { type Static } from 'typebox';

/** ok below `usage.warnPercent`, warn from it, critical from `usage.criticalPercent`. */
export const UsageLevel = Type.Union([Type.Literal('ok'), Type.Literal('warn'), Type.Literal('critical')], {
  title: 'UsageLevel',
});
export type UsageLevel = Static<typeof UsageLevel>;

const Num = (description: string) => Type.Union([Type.Number(), Type.Null()], { description });

export const AccountUsageView = Type.Object(
  {
    account: Type.String(),
    usedCpuMinutes: Num(
      "CPU minutes counted against the limit (Slurm's decayed usage, sshare's GrpTRESRaw).",
    ),
    limitCpuMinutes: Num('The limit that binds first (GrpTRESMins cpu=N); null: no limit.'),
    limitOf: Type.Union([Type.String(), Type.Null()], {
      description:
        'Whose limit it is: the account itself, a parent account (its name), or `you` for a limit on your own association.',
    }),
    percent: Num('Used against the limit, in percent (null without a limit).'),
    level: UsageLevel,
    runningCpuMinutes: Num('CPU minutes the running jobs of the account may still use (TRESRunMins).'),
    fairShare: Num("Your fair share in this account (sshare's FairShare, 0 to 1; higher starts sooner)."),
    fairShareText: Type.Union([Type.String(), Type.Null()], {
      description: 'What the fair share means for your queue time, in one sentence.',
    }),
  },
  { title: 'AccountUsageView', additionalProperties: false },
);
export type AccountUsageView = Static<typeof AccountUsageView>;

export const ClusterUsageView = Type.Object(
  {
    cluster: Type.String(),
    title: Type.String(),
    available: Type.Boolean({ description: 'false: the usage could not be read (see message).' }),
    message: Type.Optional(Type.String()),
    updatedAt: Num('When the usage was read (ms since the epoch); null: not yet.'),
    accounts: Type.Array(AccountUsageView),
  },
  { title: 'ClusterUsageView', additionalProperties: false },
);
export type ClusterUsageView = Static<typeof ClusterUsageView>;

export const StorageQuotaView = Type.Object(
  {
    filesystem: Type.String(),
    usedBytes: Type.Number(),
    softBytes: Num('Soft limit (null: none).'),
    hardBytes: Num('Hard limit (null: none).'),
    files: Num('Files (inodes) used.'),
    filesSoft: Num('Soft limit on files (null: none).'),
    filesHard: Num('Hard limit on files (null: none).'),
    grace: Type.Union([Type.String(), Type.Null()], {
      description: 'Time left to get back under the soft limit, as the command prints it.',
    }),
    percent: Num('The larger of space and files used against their soft limit (else the hard one).'),
    level: UsageLevel,
  },
  { title: 'StorageQuotaView', additionalProperties: false },
);
export type StorageQuotaView = Static<typeof StorageQuotaView>;

export const StorageView = Type.Object(
  {
    name: Type.String({ description: "The quota command's name in the site's configuration." }),
    available: Type.Boolean({
      description:
        'false: "quota unavailable" (the command failed, timed out or printed something unreadable).',
    }),
    message: Type.Optional(Type.String()),
    updatedAt: Num('When the command ran (ms since the epoch).'),
    quotas: Type.Array(StorageQuotaView),
  },
  { title: 'StorageView', additionalProperties: false },
);
export type StorageView = Static<typeof StorageView>;

export const UsageReply = Type.Object(
  {
    clusters: Type.Array(ClusterUsageView),
    storage: Type.Array(StorageView),
    warnPercent: Type.Number(),
    criticalPercent: Type.Number(),
  },
  { title: 'UsageReply', additionalProperties: false },
);
export type UsageReply = Static<typeof UsageReply>;
