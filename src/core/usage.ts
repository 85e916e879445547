// Usage against limits, as users are shown it: the warning level of a percentage, what a fair share
// means for their queue time, and a user's accounts worked out from one read of every association of a
// cluster (sshare), so that one scheduler call serves every user.
import type { AccountUsageView, UsageLevel } from '../api/usage.ts';

/** One association as the scheduler reports it (Slurm: one line of sshare). */
export interface AssociationUsage {
  account: string;
  /** Empty for the account's own association. */
  user: string;
  /** The parent account (undefined for the root). */
  parent?: string;
  /** sshare's FairShare (user associations). */
  fairShare?: number;
  /** GrpTRESMins cpu=N. */
  cpuLimitMinutes?: number;
  /** GrpTRESRaw cpu=N: the decayed usage Slurm compares with GrpTRESMins. */
  cpuUsedMinutes?: number;
  /** TRESRunMins cpu=N: what the running jobs may still use. */
  cpuRunningMinutes?: number;
}

export interface Thresholds {
  warnPercent: number;
  criticalPercent: number;
}

export function usageLevel(percent: number | null | undefined, t: Thresholds): UsageLevel {
  if (percent === null || percent === undefined || !Number.isFinite(percent)) return 'ok';
  if (percent >= t.criticalPercent) return 'critical';
  if (percent >= t.warnPercent) return 'warn';
  return 'ok';
}

/**
 * used / limit in percent, one decimal; null without a limit. A limit of 0 (GrpTRESMins=cpu=0) is how
 * an account is blocked: 100 %, whatever was used.
 */
export function percentOf(used: number | null | undefined, limit: number | null | undefined): number | null {
  if (used === null || used === undefined || limit === null || limit === undefined) return null;
  if (limit <= 0) return 100;
  return Math.round((used / limit) * 1000) / 10;
}

/**
 * One plain sentence on what a fair share (0 to 1, Slurm's FairShare: higher starts sooner) means for
 * the user's queue time.
 */
export function fairShareSentence(f: number): string {
  const v = f.toFixed(2);
  if (f >= 0.5)
    return `Your fair share is ${v}: you have used less than your share lately, so your jobs start before those of users who have used more.`;
  if (f > 0)
    return `Your fair share is ${v}: your jobs start after those of users who have used less than their share.`;
  return `Your fair share is ${v}: you have used well over your share lately, so your jobs start after almost everyone else's.`;
}

/**
 * The user's accounts on a cluster with their usage. The limit shown is the one that binds first among
 * the user's own association, the account's and its parents' (the highest share used).
 */
export function accountsOfUser(
  rows: readonly AssociationUsage[],
  user: string,
  t: Thresholds,
): AccountUsageView[] {
  const accounts = new Map<string, AssociationUsage>();
  for (const r of rows) if (r.user === '') accounts.set(r.account, r);
  const out: AccountUsageView[] = [];
  for (const mine of rows) {
    if (mine.user !== user) continue;
    const own = accounts.get(mine.account);
    type Candidate = { limit: number; used: number; of: string };
    const candidates: Candidate[] = [];
    const add = (r: AssociationUsage | undefined, of: string) => {
      if (r?.cpuLimitMinutes !== undefined)
        candidates.push({ limit: r.cpuLimitMinutes, used: r.cpuUsedMinutes ?? 0, of });
    };
    add(mine, 'you');
    const seen = new Set<string>();
    for (let a = own; a && !seen.has(a.account); a = a.parent ? accounts.get(a.parent) : undefined) {
      seen.add(a.account);
      add(a, a.account);
    }
    // A limit of 0 blocks the account: it binds before any other.
    const share = (c: Candidate) => (c.limit > 0 ? c.used / c.limit : Infinity);
    const binding = candidates.sort((a, b) => share(b) - share(a))[0];
    const used = binding?.used ?? own?.cpuUsedMinutes ?? mine.cpuUsedMinutes ?? null;
    const percent = binding ? percentOf(binding.used, binding.limit) : null;
    out.push({
      account: mine.account,
      usedCpuMinutes: used,
      limitCpuMinutes: binding?.limit ?? null,
      limitOf: binding?.of ?? null,
      percent,
      level: usageLevel(percent, t),
      runningCpuMinutes: own?.cpuRunningMinutes ?? null,
      fairShare: mine.fairShare ?? null,
      fairShareText: mine.fairShare !== undefined ? fairShareSentence(mine.fairShare) : null,
    });
  }
  return out.sort((a, b) => a.account.localeCompare(b.account));
}
