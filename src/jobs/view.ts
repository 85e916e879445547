// Pure pieces of the jobs service: the view of a job, what changed between two looks, which
// notification a change means, Slurm mail types from preferences, and the link from a job's working
// directory to the user's Jupyter session.
import path from 'node:path';
import type { JobView } from '../api/jobs.ts';
import { type ExtensionPolicy, extensionOffer } from '../core/extension.ts';
import { failedNode, jobById, queuePosition } from '../core/resources.ts';
import type { JobsTable } from '../db/schema.ts';
import type { NotificationKind, NotificationPrefs } from '../notifications/service.ts';
import { expandHostlist } from '../scheduler/slurm/parse.ts';
import {
  FINISHED_JOB_STATES,
  type JobInfo,
  type JobState,
  type NodeInfo,
  type PollSnapshot,
} from '../scheduler/types.ts';
import { expandOutputPattern } from './output.ts';

export type JobRow = Omit<JobsTable, 'id'> & { id: number };

/** A job's record as kept (`info`): what the scheduler said, and why it was last restarted, when known. */
export type StoredJobInfo = JobInfo & { restartedAfter?: string };

// A batch job as shown to its owner: a type of the API contract.
export type { JobView };

const s2ms = (v: number | undefined): number | null => (v === undefined ? null : v * 1000);

/** Resolved stdout/stderr paths of a job (squeue prints --output patterns unexpanded). */
export function outputPaths(job: JobInfo): { stdout: string | null; stderr: string | null } {
  const firstNode = job.nodes ? expandHostlist(job.nodes)[0] : undefined;
  const pj = { jobId: job.jobId, name: job.name, user: job.user, ...(firstNode ? { firstNode } : {}) };
  const one = (p: string | undefined) => {
    if (!p || !p.startsWith('/')) return null;
    return expandOutputPattern(p, pj) ?? null;
  };
  return { stdout: one(job.stdoutPath), stderr: one(job.stderrPath) };
}

/** The columns a poll sets on a job's row. */
export function rowPatchFrom(job: JobInfo, now: number): Partial<JobRow> {
  const out = outputPaths(job);
  const finished = FINISHED_JOB_STATES.has(job.state);
  const patch: Partial<JobRow> = {
    name: job.name,
    partition: job.partition ?? null,
    account: job.account ?? null,
    state: job.state,
    reason: job.reason ?? null,
    nodes: job.nodes ?? null,
    started_at: s2ms(job.startTime),
    ended_at: finished ? (s2ms(job.endTime) ?? now) : null,
    time_limit_min: job.timeLimitMinutes ?? null,
    work_dir: job.workDir ?? null,
    stdout_path: out.stdout,
    stderr_path: out.stderr,
    info: JSON.stringify(job),
    seen_at: now,
    updated_at: now,
  };
  // A job that has not started has no real start time (squeue shows the expected one).
  if (job.state === 'pending') patch.started_at = null;
  if (finished && job.exitCode !== undefined) {
    patch.exit_code = job.exitCode;
    patch.exit_source = 'squeue';
  }
  return patch;
}

/**
 * Why a job seen again was last restarted: the cause kept from before while its restart count stays,
 * or, when the count grew, the node it last ran on (`lastNodes`) if the poll shows that node failed.
 */
export function restartCause(
  job: JobInfo,
  before: StoredJobInfo | null,
  lastNodes: string | null,
  nodes: readonly NodeInfo[],
): string | undefined {
  if ((job.restarts ?? 0) <= (before?.restarts ?? 0)) return before?.restartedAfter;
  const lost = lastNodes ? failedNode(expandHostlist(lastNodes), nodes) : undefined;
  return lost ? `node ${lost} failed` : undefined;
}

/** What of a job is worth a database write and a live event (priority changes alone are not). */
export function signatureOf(job: JobInfo): string {
  return JSON.stringify([
    job.restarts,
    job.state,
    job.reason,
    job.nodes,
    job.startTime,
    job.endTime,
    job.exitCode,
    job.partition,
    job.timeLimitMinutes,
    job.name,
    job.workDir,
    job.stdoutPath,
    job.stderrPath,
  ]);
}

/** A session's job (name atrium-<id>, comment <id>): those belong to the sessions page. */
export function isSessionJob(job: Pick<JobInfo, 'name' | 'comment'>): boolean {
  return job.comment !== undefined && job.comment !== '' && job.name === `atrium-${job.comment}`;
}

export function parseInfo(row: Pick<JobRow, 'info'>): StoredJobInfo | null {
  if (!row.info) return null;
  try {
    return JSON.parse(row.info) as StoredJobInfo;
  } catch {
    return null;
  }
}

export function toJobView(
  row: JobRow,
  live: {
    snap: PollSnapshot | null;
    reachable: boolean;
    /** The cluster's walltime extension policy, where its backend can extend. */
    extension?: ExtensionPolicy | undefined;
  },
  now = Date.now(),
): JobView {
  const state = row.state as JobState;
  const finished = FINISHED_JOB_STATES.has(state) || state === 'unknown';
  const info = parseInfo(row);
  let queue: JobView['queue'] = null;
  if (state === 'pending') {
    const job = (live.snap && jobById(live.snap.jobs, row.job_id)) ?? info ?? undefined;
    const pos = job && live.snap ? queuePosition(job, live.snap.jobs) : null;
    queue = {
      position: pos?.position ?? null,
      pendingInPartition: pos?.pendingInPartition ?? null,
      expectedStart: s2ms(job?.startTime),
    };
  }
  const elapsed =
    row.started_at === null
      ? null
      : Math.max(0, Math.round(((finished ? (row.ended_at ?? now) : now) - row.started_at) / 1000));
  return {
    cluster: row.cluster,
    jobId: row.job_id,
    name: row.name,
    user: row.unix_user ?? info?.user ?? '',
    state,
    displayState: !finished && !live.reachable ? 'unknown' : state,
    finished,
    reason: row.reason,
    partition: row.partition,
    account: row.account,
    nodes: row.nodes,
    cpus: info?.cpus ?? null,
    memoryMb: info?.memoryMb ?? null,
    gpus: info?.gpus ?? null,
    submittedAt: row.submitted_at,
    startedAt: row.started_at,
    endedAt: finished ? row.ended_at : null,
    timeLimitMinutes: row.time_limit_min,
    addTimeMinutes: extensionOffer(live.extension, {
      running: state === 'running',
      partition: row.partition ?? undefined,
      timeLimitMinutes: row.time_limit_min,
    }),
    elapsedSeconds: elapsed,
    exitCode: finished ? row.exit_code : null,
    exitSource: finished ? row.exit_source : null,
    source: row.source,
    scriptPath: row.script_path,
    workDir: row.work_dir,
    stdoutPath: row.stdout_path,
    stderrPath: row.stderr_path,
    queue,
    restarts: info?.restarts ?? 0,
    restartedAfter: info?.restartedAfter ?? null,
  };
}

/** The notification a state change means (none for unchanged or intermediate states). */
export function notificationFor(
  state: JobState,
  alreadyNotified: string | null,
): { kind: NotificationKind; title: string; verb: string } | null {
  if (state === alreadyNotified) return null;
  if (alreadyNotified && FINISHED_JOB_STATES.has(alreadyNotified as JobState)) return null;
  switch (state) {
    case 'running':
      return { kind: 'job.started', title: 'Job started', verb: 'started' };
    case 'completed':
      return { kind: 'job.completed', title: 'Job completed', verb: 'completed' };
    case 'failed':
      return { kind: 'job.failed', title: 'Job failed', verb: 'failed' };
    case 'out_of_memory':
      return { kind: 'job.failed', title: 'Job failed', verb: 'ran out of memory' };
    case 'node_fail':
      return { kind: 'job.failed', title: 'Job failed', verb: 'failed (node failure)' };
    case 'preempted':
      return { kind: 'job.cancelled', title: 'Job preempted', verb: 'was preempted' };
    case 'timeout':
      return { kind: 'job.timeout', title: 'Job timed out', verb: 'reached its time limit' };
    case 'cancelled':
      return { kind: 'job.cancelled', title: 'Job cancelled', verb: 'was cancelled' };
    default:
      return null;
  }
}

/** Slurm --mail-type values for the kinds of job notifications the user wants. */
export function mailTypesFor(prefs: Pick<NotificationPrefs, 'kinds'>): string[] {
  const on = (k: string) => prefs.kinds[k] !== false;
  const types: string[] = [];
  if (on('job.started')) types.push('BEGIN');
  // END is mailed for every end (completed, failed, cancelled, timeout); FAIL and TIME_LIMIT only for those.
  if (on('job.completed')) types.push('END');
  else {
    if (on('job.failed') || on('job.cancelled')) types.push('FAIL');
    if (on('job.timeout')) types.push('TIME_LIMIT');
  }
  return types;
}

/**
 * Link from a job's working directory to a Jupyter session: `<session url><template with {path}>`,
 * the path relative to the home (Jupyter's root). Undefined when the directory is not under the home.
 */
export function browseLink(
  sessionUrl: string,
  home: string,
  workDir: string,
  template = 'tree/{path}',
): string | undefined {
  const h = path.posix.normalize(home).replace(/\/+$/, '');
  const w = path.posix.normalize(workDir);
  if (!h || !w.startsWith('/') || (w !== h && !w.startsWith(`${h}/`))) return undefined;
  const rel = path.posix.relative(h, w);
  if (rel.startsWith('..')) return undefined;
  const encoded = rel
    .split('/')
    .filter(Boolean)
    .map((s) => encodeURIComponent(s))
    .join('/');
  const base = sessionUrl.endsWith('/') ? sessionUrl : `${sessionUrl}/`;
  return base + template.replace('{path}', encoded);
}
