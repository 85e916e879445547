// Walltime extension: whether a running session or batch job may have more time, by the site's policy
// (per cluster, per partition) and the reservations ahead of it. Pure: the caller brings the job as the
// poll sees it, the policy from the config and the reservations as the scheduler lists them now.

/** The site's policy for one cluster (`clusters[].extension` in the config). */
export interface ExtensionPolicy {
  /** Longest total time limit a job may reach by extensions, in minutes. */
  maxTotalMinutes: number;
  /** Most one request may add, in minutes. */
  maxPerRequestMinutes: number;
  /** Per partition: other limits, or `enabled: false` to allow none there. */
  partitions?: Record<string, { enabled?: boolean; maxTotalMinutes?: number; maxPerRequestMinutes?: number }>;
}

/** A reservation as the scheduler lists it (times in epoch seconds, like ReservationInfo). */
export interface ExtensionReservation {
  name: string;
  nodes: string[];
  flags?: string[];
  startTime?: number;
  endTime?: number;
}

/** The job to extend, as the latest poll and the database know it. Times in epoch milliseconds. */
export interface ExtensionJob {
  running: boolean;
  startedAt: number;
  timeLimitMinutes: number;
  partition?: string;
  /** The nodes it runs on (expanded). */
  nodes: string[];
  /** The reservation it runs in, if any. */
  reservation?: string;
}

export type ExtensionDecision =
  | { ok: true; newLimitMinutes: number; newEnd: number }
  | {
      ok: false;
      /** input: the amount is malformed; state: not running; policy: the site's limits; reservation: one ahead cuts it. */
      kind: 'input' | 'state' | 'policy' | 'reservation';
      field?: 'minutes';
      reason: string;
    };

/** Largest amount the API reads at all (a year); the policy's own maximum is far lower. */
export const EXTENSION_MINUTES_CAP = 525_600;

/** Why an amount of minutes is not one (a whole number from 1), or undefined. */
export function checkExtensionMinutes(minutes: unknown): string | undefined {
  if (typeof minutes !== 'number' || !Number.isInteger(minutes))
    return 'minutes must be a whole number of minutes';
  if (minutes < 1) return 'minutes must be at least 1';
  if (minutes > EXTENSION_MINUTES_CAP) return `minutes must be at most ${EXTENSION_MINUTES_CAP}`;
  return undefined;
}

/** The policy that applies in a partition; undefined when extensions are off there. */
export function policyFor(
  policy: ExtensionPolicy | undefined,
  partition: string | undefined,
): { maxTotalMinutes: number; maxPerRequestMinutes: number } | undefined {
  if (!policy) return undefined;
  const p = partition !== undefined ? policy.partitions?.[partition] : undefined;
  if (p?.enabled === false) return undefined;
  return {
    maxTotalMinutes: p?.maxTotalMinutes ?? policy.maxTotalMinutes,
    maxPerRequestMinutes: p?.maxPerRequestMinutes ?? policy.maxPerRequestMinutes,
  };
}

/**
 * Most minutes one request may add now (what "add time" offers), or null when none may: not running,
 * no policy here, or already at the maximum total. Reservations are checked when asked, not here.
 */
export function extensionOffer(
  policy: ExtensionPolicy | undefined,
  job: { running: boolean; partition?: string | undefined; timeLimitMinutes: number | null },
): number | null {
  const p = policyFor(policy, job.partition);
  if (!p || !job.running || job.timeLimitMinutes === null) return null;
  const most = Math.min(p.maxPerRequestMinutes, p.maxTotalMinutes - job.timeLimitMinutes);
  return most >= 1 ? most : null;
}

function hhmm(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

function hours(minutes: number): string {
  if (minutes % 60 === 0) return `${minutes / 60} h`;
  return minutes < 60 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/**
 * A reservation that would cut the job if it ran until `newEnd`: the one the job runs in when it ends
 * before `newEnd` (Slurm ends the job with its reservation), or one that starts after now and before
 * `newEnd` on one of the job's nodes and is a maintenance window or one the job does not run in.
 * Other reservations already under way are not: the job was placed beside them (a core reservation, or
 * one made to ignore running jobs), so they take nothing from it that they had not taken at its start.
 */
export function cuttingReservation(
  job: Pick<ExtensionJob, 'nodes' | 'reservation'>,
  reservations: readonly ExtensionReservation[],
  now: number,
  newEnd: number,
): ExtensionReservation | undefined {
  const own =
    job.reservation !== undefined ? reservations.find((r) => r.name === job.reservation) : undefined;
  if (own?.endTime !== undefined && own.endTime * 1000 < newEnd) return own;
  const mine = new Set(job.nodes);
  return reservations.find((r) => {
    if (r.startTime === undefined) return false;
    const start = r.startTime * 1000;
    if (start <= now || start >= newEnd) return false;
    if (r.endTime !== undefined && r.endTime * 1000 <= now) return false;
    if (!r.nodes.some((n) => mine.has(n))) return false;
    const maint = (r.flags ?? []).some((f) => f.toUpperCase() === 'MAINT');
    return maint || r.name !== job.reservation;
  });
}

/** Whether `minutes` more may be granted, and the new total and end when so. */
export function decideExtension(input: {
  minutes: unknown;
  job: ExtensionJob;
  policy: ExtensionPolicy | undefined;
  reservations: readonly ExtensionReservation[];
  now: number;
}): ExtensionDecision {
  const { job, now } = input;
  const bad = checkExtensionMinutes(input.minutes);
  if (bad) return { ok: false, kind: 'input', field: 'minutes', reason: bad };
  const minutes = input.minutes as number;
  if (!job.running) return { ok: false, kind: 'state', reason: 'only a running job can be given more time' };
  const policy = policyFor(input.policy, job.partition);
  if (!policy) {
    const where = input.policy && job.partition ? ` in partition ${job.partition}` : ' on this cluster';
    return { ok: false, kind: 'policy', reason: `the site allows no time extensions${where}` };
  }
  if (minutes > policy.maxPerRequestMinutes)
    return {
      ok: false,
      kind: 'policy',
      field: 'minutes',
      reason: `at most ${hours(policy.maxPerRequestMinutes)} can be added at a time`,
    };
  const newLimitMinutes = job.timeLimitMinutes + minutes;
  if (newLimitMinutes > policy.maxTotalMinutes) {
    const room = Math.max(0, policy.maxTotalMinutes - job.timeLimitMinutes);
    return {
      ok: false,
      kind: 'policy',
      field: 'minutes',
      reason: `the site allows at most ${hours(policy.maxTotalMinutes)} in total${job.partition ? ` in partition ${job.partition}` : ''}; ${room > 0 ? `at most ${hours(room)} more` : 'no more time'} can be added`,
    };
  }
  const newEnd = job.startedAt + newLimitMinutes * 60_000;
  const cut = cuttingReservation(job, input.reservations, now, newEnd);
  if (cut && cut.name === job.reservation && cut.endTime !== undefined && cut.endTime * 1000 < newEnd)
    return {
      ok: false,
      kind: 'reservation',
      field: 'minutes',
      reason: `the reservation ${cut.name} this job runs in ends at ${hhmm(cut.endTime * 1000)}: the job cannot run past it`,
    };
  if (cut) {
    const maint = (cut.flags ?? []).some((f) => f.toUpperCase() === 'MAINT');
    return {
      ok: false,
      kind: 'reservation',
      field: 'minutes',
      reason: `${maint ? 'a maintenance window' : 'the reservation'} ${cut.name} starts at ${hhmm((cut.startTime ?? 0) * 1000)} on this job's nodes: the job cannot run past it`,
    };
  }
  return { ok: true, newLimitMinutes, newEnd };
}
