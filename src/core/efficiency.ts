// Job history with efficiency: what an ended session or job asked for against what accounting says it
// used (CPU, memory, time), the form's right-size hint from the user's own recent sessions, and the CSV
// of the history. Pure: the figures come from sacct (src/scheduler/slurm/parse.ts) through the database.
import type { JobState } from './cluster-state.ts';

/** What accounting says one ended job used, its steps folded in. */
export interface JobUsage {
  jobId: string;
  state: JobState;
  /** Allocated CPUs. */
  cores?: number;
  elapsedSeconds?: number;
  /** User + system CPU time of all steps, ms. */
  totalCpuMs?: number;
  /** Largest MaxRSS of any step (batch, extern, 0, ...), KiB; undefined when no step reported one. */
  maxRssKb?: number;
  /** Requested memory of the whole job, MB. */
  reqMemMb?: number;
  limitMinutes?: number;
}

/** One resource: used against what was asked, and the share used (0..1, more when over). */
export interface UsageRatio {
  used: number;
  requested: number;
  /** used / requested; null when nothing was asked (or nothing ran). */
  fraction: number | null;
}

/** The three figures of the history: CPU seconds, memory MB, time seconds. null where accounting is silent. */
export interface Efficiency {
  /** TotalCPU against cores x elapsed, in CPU seconds. */
  cpu: UsageRatio | null;
  /** Peak MaxRSS against requested memory, in MB. */
  memory: UsageRatio | null;
  /** Elapsed against the time limit, in seconds. */
  time: UsageRatio | null;
}

function ratio(used: number, requested: number): UsageRatio {
  return { used, requested, fraction: requested > 0 ? used / requested : null };
}

const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

/**
 * The history's figures from one usage record. Requested values fall back on what the gateway asked for
 * (`asked`) when accounting has none (an old Slurm, an unlimited time limit).
 */
export function efficiencyOf(
  u: Omit<JobUsage, 'jobId' | 'state'>,
  asked: { cores?: number | null; memoryMb?: number | null; limitMinutes?: number | null } = {},
): Efficiency {
  const cores = u.cores ?? asked.cores ?? undefined;
  const memory = u.reqMemMb ?? asked.memoryMb ?? undefined;
  const limit = u.limitMinutes ?? asked.limitMinutes ?? undefined;
  const elapsed = u.elapsedSeconds;
  return {
    cpu:
      u.totalCpuMs !== undefined && elapsed !== undefined && cores !== undefined
        ? ratio(round(u.totalCpuMs / 1000, 3), cores * elapsed)
        : null,
    memory: u.maxRssKb !== undefined && memory !== undefined ? ratio(round(u.maxRssKb / 1024), memory) : null,
    time: elapsed !== undefined && limit !== undefined ? ratio(elapsed, limit * 60) : null,
  };
}

/**
 * Ends older than this are not looked up any more (accounting had its chance), and read as having no
 * data when they have no figures; the reader's first look after start goes this far back.
 */
export const USAGE_LOOKBACK_MS = 7 * 24 * 3600_000;
/** How long after its end a job may stay unknown to accounting before it is recorded as having none. */
export const USAGE_GIVE_UP_MS = 3600_000;

/** Whether accounting's silence on a job that ended at `endedAt` (ms) is final by `now`. */
export function usageGivenUp(endedAt: number | null, now: number): boolean {
  return (endedAt ?? 0) < now - USAGE_GIVE_UP_MS;
}

/**
 * What the history says of an entry's figures: accounting's, none, or pending. With no stored read, an
 * end older than USAGE_LOOKBACK_MS will never get one (the reader no longer looks: it did not run then).
 */
export function accountingOf(
  source: string | null,
  endedAt: number | null,
  now: number,
): 'sacct' | 'none' | 'pending' {
  if (source === 'sacct') return 'sacct';
  if (source === 'none' || (endedAt ?? 0) < now - USAGE_LOOKBACK_MS) return 'none';
  return 'pending';
}

/** "3 GB", "1.5 GB", "512 MB": memory for sentences. */
export function memoryWords(mb: number): string {
  if (mb < 1024) return `${Math.max(0, Math.round(mb))} MB`;
  const gb = mb / 1024;
  return `${gb >= 10 ? Math.round(gb) : Math.round(gb * 10) / 10} GB`;
}

/** One of the user's ended sessions of an app, newest first, as the hint reads it. */
export interface PastSession {
  maxRssKb: number | null;
  /** What the session asked for, MB. */
  requestedMb: number;
}

export interface RightSizeHint {
  /** How many sessions the hint is about (those with a memory figure, at most `HINT_SESSIONS`). */
  sessions: number;
  maxUsedMb: number;
  /** The largest request among them, MB. */
  requestedMb: number;
  message: string;
}

export const HINT_SESSIONS = 5;

/**
 * "Your last 5 Jupyter sessions used at most 3 GB of the 16 GB asked." from the user's newest ended
 * sessions of the app that accounting measured; null when there is none, or when they used more than
 * half of what they asked (nothing to suggest).
 */
export function rightSizeHint(appName: string, past: readonly PastSession[]): RightSizeHint | null {
  const measured = past.filter((p) => p.maxRssKb !== null && p.requestedMb > 0).slice(0, HINT_SESSIONS);
  if (measured.length === 0) return null;
  const maxUsedMb = Math.max(...measured.map((p) => (p.maxRssKb ?? 0) / 1024));
  const requestedMb = Math.max(...measured.map((p) => p.requestedMb));
  if (maxUsedMb > requestedMb / 2) return null;
  const what =
    measured.length === 1
      ? `Your last ${appName} session`
      : `Your last ${measured.length} ${appName} sessions`;
  const message = `${what} used at most ${memoryWords(maxUsedMb)} of the ${memoryWords(requestedMb)} asked.`;
  return { sessions: measured.length, maxUsedMb: Math.round(maxUsedMb), requestedMb, message };
}

/**
 * One CSV cell (RFC 4180): quoted when it holds a comma, quote or line break. Text that a spreadsheet
 * would run as a formula (=, +, -, @, tab, CR first) gets a leading apostrophe: job names are the user's.
 */
export function csvCell(v: string | number | null | undefined): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : '';
  const s = /^[=+\-@\t\r]/.test(v) ? `'${v}` : v;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** A CSV document: a header row, then the rows, CRLF line ends. */
export function toCsv(
  header: readonly string[],
  rows: readonly (readonly (string | number | null)[])[],
): string {
  return [header, ...rows].map((r) => r.map(csvCell).join(',')).join('\r\n') + '\r\n';
}
