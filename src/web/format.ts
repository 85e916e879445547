// Pure formatting helpers for the pages (no React, no DOM): easy to unit-test.
import type { SessionView } from './types.ts';

const MINUTE = 60_000;

/** "1 h 59 min left", "12 min left", "less than a minute left", "time is up". */
export function formatTimeLeft(msLeft: number): string {
  if (!Number.isFinite(msLeft) || msLeft <= 0) return 'time is up';
  const minutes = Math.floor(msLeft / MINUTE);
  if (minutes < 1) return 'less than a minute left';
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  if (h === 0) return `${m} min left`;
  return m === 0 ? `${h} h left` : `${h} h ${m} min left`;
}

/** Under this many minutes the countdown is shown as a warning. */
export const WARN_MINUTES = 15;

export function timeLeftIsShort(msLeft: number): boolean {
  return msLeft < WARN_MINUTES * MINUTE;
}

/** Local wall-clock time, "HH:MM" (24 h). */
export function formatClock(ms: number): string {
  const d = new Date(ms);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

/** "HH:MM" today, "Mon 3 Jun HH:MM" otherwise. */
export function formatWhen(ms: number, now = Date.now()): string {
  const d = new Date(ms);
  const n = new Date(now);
  if (d.toDateString() === n.toDateString()) return formatClock(ms);
  const day = d.toLocaleDateString('en-GB', { weekday: 'short', day: 'numeric', month: 'short' });
  return `${day} ${formatClock(ms)}`;
}

const FULL_DATE = new Intl.DateTimeFormat('en-GB', { dateStyle: 'full', timeStyle: 'short' });

/** "Monday 3 June 2024 at 14:02", local time: the tooltip of a short time. */
export function formatFullDate(ms: number): string {
  return FULL_DATE.format(new Date(ms));
}

/**
 * When a session began, to tell apart sessions of the same app: "started 14:02" once its job runs,
 * "requested 14:02" before; `at` is that moment and `full` its full date.
 */
export function sessionSince(
  s: Pick<SessionView, 'createdAt' | 'startedAt'>,
  now = Date.now(),
): { text: string; at: number; full: string } {
  const at = s.startedAt ?? s.createdAt;
  return {
    text: `${s.startedAt ? 'started' : 'requested'} ${formatWhen(at, now)}`,
    at,
    full: formatFullDate(at),
  };
}

/** "1 h", "30 min", "1 h 30 min" for a duration in hours. */
export function formatHours(hours: number): string {
  const minutes = Math.max(1, Math.round(hours * 60));
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  if (h === 0) return `${m} min`;
  return m === 0 ? `${h} h` : `${h} h ${m} min`;
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Memory in GB for tables: whole numbers as is, else one decimal. */
export function formatGb(mb: number): string {
  return String(Math.round((mb / 1024) * 10) / 10);
}

/** "2 cores · 4 GB · 1 GPU · 2 h" */
export function formatResources(s: Pick<SessionView, 'request' | 'timeLimitMinutes'>): string {
  const r = s.request;
  const parts = [plural(r.cores, 'core'), `${r.memoryGb} GB`];
  if (r.gpus > 0) parts.push(plural(r.gpus, 'GPU'));
  parts.push(formatHours(s.timeLimitMinutes / 60));
  return parts.join(' · ');
}

export type Tone = 'neutral' | 'info' | 'ok' | 'warn' | 'bad';

export interface Badge {
  label: string;
  tone: Tone;
}

/** A state's badge from the table of known states; any other state is shown as itself, in grey. */
export function badgeOf(known: Record<string, Badge>, state: string): Badge {
  return known[state] ?? { label: state, tone: 'neutral' };
}

export const STATE_LABELS: Record<string, Badge> = {
  requested: { label: 'requested', tone: 'info' },
  queued: { label: 'queued', tone: 'info' },
  starting: { label: 'starting', tone: 'info' },
  running: { label: 'running', tone: 'ok' },
  ending: { label: 'stopping', tone: 'warn' },
  ended: { label: 'ended', tone: 'neutral' },
  failed: { label: 'failed', tone: 'bad' },
  unknown: { label: 'unknown (scheduler unreachable)', tone: 'warn' },
  reconnecting: { label: 'reconnecting', tone: 'warn' },
};

export function stateBadge(displayState: string): Badge {
  return badgeOf(STATE_LABELS, displayState);
}

/** "not responding since 14:05" (local time) for a running session whose agent is silent, else null. */
export function notRespondingText(
  s: Pick<SessionView, 'state' | 'displayState' | 'notRespondingSince'>,
): string | null {
  if (s.state !== 'running' || s.displayState === 'unknown' || !s.notRespondingSince) return null;
  return `not responding since ${formatClock(s.notRespondingSince)}`;
}

export function isFinished(s: Pick<SessionView, 'state'>): boolean {
  return s.state === 'ended' || s.state === 'failed';
}

/** Details of a pending job: "Priority · position 2 of 5 · expected start 14:30". */
export function queueDetails(s: Pick<SessionView, 'queue'>, now = Date.now()): string[] {
  const q = s.queue;
  if (!q) return [];
  const out: string[] = [];
  if (q.reason && q.reason !== 'None') out.push(`pending reason: ${q.reason}`);
  if (q.position) out.push(`position ${q.position} of ${q.pendingInPartition ?? '?'}`);
  if (q.expectedStart && q.expectedStart > 0)
    out.push(`expected start ${formatWhen(q.expectedStart * 1000, now)}`);
  return out;
}

/** The name a session is shown under: its label, else its app's name. */
export function sessionTitle(s: Pick<SessionView, 'label' | 'appName'>): string {
  return s.label?.trim() || s.appName;
}

const STATE_ORDER: Record<string, number> = {
  requested: 0,
  queued: 1,
  starting: 2,
  running: 3,
  ending: 4,
  ended: 5,
  failed: 5,
};

/**
 * The list with `s` added or replacing its older copy (newest sessions first). States only move
 * forward, so a late copy (an API answer overtaken by a live event) never undoes a newer state.
 */
export function mergeSession(list: SessionView[], s: SessionView): SessionView[] {
  const i = list.findIndex((x) => x.id === s.id);
  if (i === -1) return [s, ...list].sort((a, b) => b.createdAt - a.createdAt);
  const old = list[i]!;
  if ((STATE_ORDER[s.state] ?? 0) < (STATE_ORDER[old.state] ?? 0)) return list;
  const copy = list.slice();
  copy[i] = s;
  return copy;
}

/** Same-origin relative paths only ("/x", not "//host" or "/\\host" or "https://..."). */
export function safeNext(next: string | null | undefined): string {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return '/';
  // Browsers drop tabs and newlines from URLs ("/\t/evil" is "//evil"): refuse any control character.
  for (let i = 0; i < next.length; i++)
    if (next.charCodeAt(i) < 0x20 || next.charCodeAt(i) === 0x7f) return '/';
  return next;
}
