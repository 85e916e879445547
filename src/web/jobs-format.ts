// Pure helpers for the jobs and queue pages (no React, no DOM): state badges, durations, what a pending
// job waits for, and merging live updates into a list. Shapes are the API contract's types.

import type { ClusterStatus } from '../api/clusters.ts';
import type { BatchClusterView, JobDetail, JobView, QueueRow, QueueView } from '../api/jobs.ts';
import { type Badge, badgeOf, formatWhen } from './format.ts';

export type { BatchClusterView, ClusterStatus, JobDetail, JobView, QueueRow, QueueView };

export const JOB_STATES: Record<string, Badge> = {
  pending: { label: 'pending', tone: 'info' },
  running: { label: 'running', tone: 'ok' },
  completing: { label: 'completing', tone: 'ok' },
  suspended: { label: 'suspended', tone: 'warn' },
  completed: { label: 'completed', tone: 'neutral' },
  failed: { label: 'failed', tone: 'bad' },
  cancelled: { label: 'cancelled', tone: 'warn' },
  timeout: { label: 'timed out', tone: 'bad' },
  node_fail: { label: 'node failure', tone: 'bad' },
  out_of_memory: { label: 'out of memory', tone: 'bad' },
  preempted: { label: 'preempted', tone: 'warn' },
  unknown: { label: 'unknown', tone: 'warn' },
};

export function jobBadge(state: string): Badge {
  return badgeOf(JOB_STATES, state);
}

const ACTIVE = new Set(['pending', 'running', 'completing', 'suspended']);

export function isActiveJob(j: Pick<JobView, 'state'>): boolean {
  return ACTIVE.has(j.state);
}

/** "45 s", "12 min", "3 h 05 min", "2 d 4 h". */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return '—';
  const s = Math.floor(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h} h ${String(m % 60).padStart(2, '0')} min`;
  const d = Math.floor(h / 24);
  return h % 24 === 0 ? `${d} d` : `${d} d ${h % 24} h`;
}

/** A time limit in minutes: "30 min", "2 h", "1 d 12 h", "no limit". */
export function formatLimit(minutes: number | null | undefined): string {
  if (minutes === null || minutes === undefined) return 'no limit';
  return formatDuration(minutes * 60).replace(/ 00 min$/, '');
}

/** "12 min of 2 h" for a running job, the total for a finished one. */
export function formatElapsed(j: Pick<JobView, 'elapsedSeconds' | 'timeLimitMinutes' | 'finished'>): string {
  if (j.elapsedSeconds === null)
    return j.timeLimitMinutes !== null ? `limit ${formatLimit(j.timeLimitMinutes)}` : '—';
  if (j.finished) return formatDuration(j.elapsedSeconds);
  return `${formatDuration(j.elapsedSeconds)} of ${formatLimit(j.timeLimitMinutes)}`;
}

/** What a pending job waits for: "waiting: Priority · 3rd of 12 · expected 14:30". */
export function pendingDetails(j: Pick<JobView, 'state' | 'reason' | 'queue'>, now = Date.now()): string[] {
  if (j.state !== 'pending') return [];
  const out: string[] = [];
  if (j.reason && j.reason !== 'None') out.push(`waiting: ${j.reason}`);
  if (j.queue?.position) out.push(`position ${j.queue.position} of ${j.queue.pendingInPartition ?? '?'}`);
  if (j.queue?.expectedStart && j.queue.expectedStart > 0)
    out.push(`expected start ${formatWhen(j.queue.expectedStart, now)}`);
  return out;
}

/** "restarted after node n12 failed", "restarted 2 times (last after node n12 failed)", or null. */
export function restartText(j: Pick<JobView, 'restarts' | 'restartedAfter'>): string | null {
  if (!j.restarts) return null;
  if (j.restarts === 1) return j.restartedAfter ? `restarted after ${j.restartedAfter}` : 'restarted once';
  return `restarted ${j.restarts} times${j.restartedAfter ? ` (last after ${j.restartedAfter})` : ''}`;
}

export const jobKey = (j: Pick<JobView, 'cluster' | 'jobId'>) => `${j.cluster}/${j.jobId}`;

/**
 * The list with `j` added or replacing its older copy (newest first). A finished job never becomes
 * active again, so a late copy (an API answer overtaken by a live event) cannot undo its end.
 */
export function mergeJob(list: JobView[], j: JobView): JobView[] {
  const i = list.findIndex((x) => jobKey(x) === jobKey(j));
  if (i === -1) return [j, ...list].sort((a, b) => b.submittedAt - a.submittedAt);
  const old = list[i]!;
  if (old.finished && !j.finished) return list;
  const copy = list.slice();
  copy[i] = j;
  return copy;
}

/** "4 GB", "512 MB". */
export function formatMemory(mb: number | null | undefined): string {
  if (mb === null || mb === undefined) return '—';
  if (mb < 1024) return `${mb} MB`;
  return `${Math.round((mb / 1024) * 10) / 10} GB`;
}

/** "512 B", "12.3 KB", "4.5 MB" (1024-based). */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Math.round(v * 10) / 10} ${units[i]}`;
}

/** How a job was submitted, in words. */
export function sourceLabel(source: string): string {
  if (source === 'session') return 'submitted from a session';
  return source === 'path' ? 'script file' : source === 'text' ? 'pasted script' : 'submitted outside Atrium';
}
