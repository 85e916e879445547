// Access only for members of an active project (a cluster's `projectAccess` rule): which of a user's
// Slurm associations count, and whether a user may start sessions and jobs on the cluster. Pure: the
// associations come from the cluster's cached sacctmgr listing, read in the background.

/** One line of `sacctmgr show assoc`: a user's association with an account (user '' for the account's own). */
export interface AssociationRow {
  user: string;
  account: string;
  /** Job-count limits of the association; undefined when unset. */
  grpJobs?: number;
  grpSubmit?: number;
  maxJobs?: number;
  maxSubmit?: number;
}

/** The site's rule, as configured on the cluster. */
export interface ProjectRule {
  /** Only associations with these accounts count; absent: any account. */
  projects?: readonly string[];
  /** The site's words: where to ask for a project. */
  message: string;
}

export type ProjectDecision =
  | { ok: true; accounts: string[] }
  | { ok: false; status: 403 | 503; field: 'account' | 'cluster'; message: string };

// A limit of 0 jobs is how a site closes an expired project while keeping its records: Slurm lists the
// association, but it may run nothing.
const closed = (r: AssociationRow): boolean =>
  r.grpJobs === 0 || r.grpSubmit === 0 || r.maxJobs === 0 || r.maxSubmit === 0;

/**
 * Each user's active accounts, sorted. Removed associations are not listed by sacctmgr; an association
 * counts as expired when it, or its account's own association, allows no job.
 */
export function activeAccountsByUser(rows: readonly AssociationRow[]): Record<string, string[]> {
  const closedAccounts = new Set(rows.filter((r) => r.user === '' && closed(r)).map((r) => r.account));
  const res: Record<string, string[]> = {};
  for (const r of rows) {
    if (!r.user || !r.account || closed(r) || closedAccounts.has(r.account)) continue;
    const list = res[r.user] ?? [];
    if (!list.includes(r.account)) list.push(r.account);
    res[r.user] = list;
  }
  for (const list of Object.values(res)) list.sort();
  return res;
}

/** The words a user without a qualifying project reads, on the form and in the API's refusal. */
export function projectNeeded(rule: ProjectRule, clusterTitle: string): string {
  const which =
    rule.projects && rule.projects.length > 0
      ? `an active project (${rule.projects.length === 1 ? '' : 'one of '}${rule.projects.join(', ')})`
      : 'an active project (Slurm account)';
  return `Account: you need ${which} on ${clusterTitle} to start sessions and jobs there. ${rule.message}`;
}

/**
 * Whether a user may start sessions and jobs on a cluster with this rule, and with which accounts.
 * `accounts`: the user's active accounts there; undefined when the association list could not be read
 * yet (the rule cannot be checked: refused, nothing is submitted).
 */
export function projectAccess(
  rule: ProjectRule,
  clusterTitle: string,
  accounts: readonly string[] | undefined,
): ProjectDecision {
  if (accounts === undefined) {
    return {
      ok: false,
      status: 503,
      field: 'cluster',
      message: `Cluster: the project memberships on ${clusterTitle} cannot be read at the moment, nothing was submitted`,
    };
  }
  const allowed = rule.projects;
  const usable = allowed ? accounts.filter((a) => allowed.includes(a)) : [...accounts];
  if (usable.length === 0) {
    return { ok: false, status: 403, field: 'account', message: projectNeeded(rule, clusterTitle) };
  }
  return { ok: true, accounts: usable };
}

/**
 * The account a submission names: the user's own choice, or under a rule with named `projects` their
 * first qualifying one (Slurm's default account for the user may be none of the projects); undefined:
 * none named, Slurm's default.
 */
export function accountUnderRule(
  rule: ProjectRule | undefined,
  decision: ProjectDecision | null,
  given: string | undefined,
): string | undefined {
  if (given) return given;
  return rule?.projects && decision?.ok ? decision.accounts[0] : undefined;
}

/** A form's `accessRefused` field: the refusal's words when the user may not start anything there. */
export function accessRefusal(d: ProjectDecision | null): { accessRefused?: string } {
  return d && !d.ok ? { accessRefused: d.message } : {};
}
