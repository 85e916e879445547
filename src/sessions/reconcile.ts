// Reconciliation with the scheduler: every poll snapshot of a cluster (one shared poll per cluster,
// src/scheduler/poller.ts) is laid against its active sessions. The job's state moves the session
// (queued, starting, ended with the reason); a job gone from the poll, a node DOWN, a requeue, the start
// timeout and the time limit end it. A failed poll changes nothing: sessions show as unknown until the
// next good one (silence is never taken for an end).
import os from 'node:os';
import { failedNode, queuePosition } from '../core/resources.ts';
import { agentDiedReason, nodeFailedReason, REASONS } from '../core/session-machine.ts';
import { SETUP_FAILED } from '../core/telling-line.ts';
import { listActiveSessions, type QueueInfo, type SessionRow, updateSession } from '../db/sessions.ts';
import { FINISHED_JOB_STATES, type JobInfo, type PollSnapshot } from '../scheduler/types.ts';
import type { SessionServiceDeps } from './deps.ts';
import type { SessionLauncher } from './launch.ts';
import type { SessionOwners } from './owners.ts';
import type { SessionLogs } from './session-log.ts';
import { findJob, nodesOf } from './snapshot.ts';
import type { SessionStates } from './states.ts';
import type { SessionStopper } from './stop.ts';

export interface ReconcileDeps extends Pick<SessionServiceDeps, 'db' | 'cfg' | 'bus' | 'log' | 'onWarning'> {
  owners: SessionOwners;
  states: SessionStates;
  launcher: Pick<SessionLauncher, 'settleRequested'>;
  stopper: SessionStopper;
  logs: Pick<SessionLogs, 'tellingLine'>;
}

const UNKNOWN_GRACE_MS = 5_000;

export class Reconciler {
  /** Clusters whose last poll failed: their sessions are shown as unknown. */
  private readonly unreachable = new Set<string>();

  constructor(private readonly deps: ReconcileDeps) {}

  async onSnapshot(cluster: string, snap: PollSnapshot): Promise<void> {
    const rows = (await listActiveSessions(this.deps.db)).filter((r) => r.cluster === cluster);
    if (!snap.ok) {
      // Unknown is not gone: keep every route and state; pages show "unknown" (told once, not per poll).
      if (!this.unreachable.has(cluster)) {
        this.unreachable.add(cluster);
        for (const r of rows) if (r.state !== 'requested') await this.deps.states.publish(r);
      }
      return;
    }
    const wasUnreachable = this.unreachable.delete(cluster);
    const now = Date.now();
    for (const row of rows) {
      try {
        await this.reconcileOne(row, snap, now);
      } catch (e) {
        this.deps.log.error({ err: e, session: row.id }, 'reconcile failed');
      }
    }
    if (wasUnreachable) {
      // Back from unknown: pages get every session's real state again, changed or not.
      for (const r of await listActiveSessions(this.deps.db))
        if (r.cluster === cluster && r.state !== 'requested') await this.deps.states.publish(r);
    }
  }

  private async reconcileOne(row: SessionRow, snap: PollSnapshot, now: number): Promise<void> {
    const job = findJob(snap, row, await this.deps.owners.unixUser(row.user_id));
    if (row.state === 'requested') {
      await this.deps.launcher.settleRequested(row, job, now);
      return;
    }
    if (!job) {
      // Freshly submitted jobs may miss the poll that was already under way.
      // `now` (ms), not snap.at: backends report the poll's time in their own unit (Slurm and ssh in seconds).
      if (row.submitted_at && now - row.submitted_at < UNKNOWN_GRACE_MS) return;
      // Sites with a short MinJobAge forget finished jobs fast: one gone after its end time timed out.
      const timedOut = row.state === 'running' && row.expires_at !== null && now >= row.expires_at - 5_000;
      const down = failedNode(nodesOf(row), snap.nodes);
      await this.deps.states.apply(row, {
        type: 'job_finished',
        reason: await this.explained(
          row,
          row.state === 'ending'
            ? (row.reason ?? REASONS.stoppedByUser)
            : timedOut
              ? REASONS.timeLimit
              : down
                ? nodeFailedReason(down)
                : REASONS.jobVanished,
        ),
      });
      return;
    }
    // The node the job runs on is DOWN: whatever the job's state says yet, the session's app is lost.
    const down = failedNode(nodesOf(row, job), snap.nodes);
    if (FINISHED_JOB_STATES.has(job.state)) {
      const reason =
        down && !(row.state === 'ending' && row.reason) ? nodeFailedReason(down) : finishedReason(job, row);
      await this.deps.states.apply(row, { type: 'job_finished', reason: await this.explained(row, reason) });
      return;
    }
    if (row.state === 'ending') {
      // Still there after a stop: ask again (the cancel may have failed while the scheduler was down).
      if (now - row.updated_at > 15_000) await this.deps.stopper.cancelAgain(row, job.jobId);
      return;
    }
    if (down && (row.state === 'starting' || row.state === 'running')) {
      // Ends now rather than when the scheduler gets to it (Slurm needs SlurmdTimeout, then kills the
      // job): the route goes at once, and the cancel makes sure the job does not linger.
      await this.deps.stopper.stop(row, nodeFailedReason(down));
      return;
    }
    if (job.state === 'pending') {
      if (row.state === 'starting' || row.state === 'running') {
        // The scheduler requeued the job (an admin's `scontrol requeue`, or a site that requeues despite
        // --no-requeue): its processes were killed, and a restarted agent could not report with a used
        // secret. The session ends, naming the node when the poll shows it failed.
        const lost = failedNode(nodesOf(row), snap.nodes);
        await this.deps.stopper.stop(row, lost ? nodeFailedReason(lost) : REASONS.requeued);
        return;
      }
      const pos = queuePosition(job, snap.jobs);
      const info: QueueInfo = {
        reason: job.reason,
        position: pos?.position,
        pendingInPartition: pos?.pendingInPartition,
        expectedStart: job.startTime,
        partition: job.partition,
      };
      const json = JSON.stringify(info);
      if (json !== row.queue_info)
        await this.deps.states.apply(row, { type: 'job_pending' }, { queue_info: json });
      return;
    }
    if (job.state === 'running' || job.state === 'completing') {
      if (row.state === 'queued') {
        const startedAt = job.startTime ? job.startTime * 1000 : now;
        await this.deps.states.apply(
          row,
          { type: 'job_running' },
          {
            started_at: startedAt,
            expires_at: startedAt + (job.timeLimitMinutes ?? row.time_limit_min) * 60_000,
            queue_info: JSON.stringify({ nodes: job.nodes, partition: job.partition } satisfies QueueInfo),
          },
        );
        return;
      }
      if (
        row.state === 'starting' &&
        row.started_at &&
        now - row.started_at > this.deps.cfg.sessions.startTimeoutSeconds * 1000
      ) {
        await this.deps.stopper.stop(row, REASONS.startTimeout);
        return;
      }
      if (row.state === 'running') await this.checkTimeLimit(row, now);
    }
  }

  private async checkTimeLimit(row: SessionRow, now: number): Promise<void> {
    if (!row.expires_at) return;
    const left = row.expires_at - now;
    const warnMs = this.deps.cfg.sessions.warnMinutesBeforeEnd * 60_000;
    if (!row.warned_at && left <= warnMs && left > 0) {
      await updateSession(this.deps.db, row.id, { warned_at: now });
      this.deps.onWarning?.(row, Math.max(1, Math.round(left / 60_000)));
      this.deps.bus.publish(
        { userId: row.user_id },
        { type: 'session.warning', data: { id: row.id, minutesLeft: Math.round(left / 60_000) } },
      );
    }
    // At the limit the session ends, without waiting for the scheduler's own enforcement (Slurm checks
    // time limits about every 30 s, then signals the job): the route goes now, the job is cancelled,
    // and the reason stays "time limit reached" whatever state word the job ends with.
    if (left <= 0) await this.deps.stopper.stop(row, REASONS.timeLimit);
  }

  /**
   * A session whose job ended before its app was ready: the reason gets the line of its log that says
   * why (a setup line that failed, Node.js that could not load the agent...), read as the owner.
   */
  private async explained(row: SessionRow, reason: string): Promise<string> {
    if (!['queued', 'starting'].includes(row.state)) return reason;
    if (reason !== ENDED_BEFORE_READY && reason !== REASONS.jobVanished) return reason;
    try {
      const line = await this.deps.logs.tellingLine(row);
      if (!line) return reason;
      // The job's own words about a failed setup line say it all.
      return line.startsWith(SETUP_FAILED.slice('atrium: '.length)) ? line : `${reason}: ${line}`;
    } catch (e) {
      this.deps.log.warn({ session: row.id, err: (e as Error).message }, 'could not read the session log');
      return reason;
    }
  }
}

/** The signal a job's exit code tells (128+N, as shells and the schedulers' adapters report it). */
function signalOf(exitCode: number | undefined): string | undefined {
  if (exitCode === undefined || exitCode <= 128 || exitCode > 128 + 64) return undefined;
  const n = exitCode - 128;
  return Object.entries(os.constants.signals).find(([, v]) => v === n)?.[0] ?? `signal ${n}`;
}

const ENDED_BEFORE_READY = 'the job ended before the app was ready';

function finishedReason(job: JobInfo, row: SessionRow): string {
  if (row.state === 'ending' && row.reason) return row.reason;
  switch (job.state) {
    case 'timeout':
      return REASONS.timeLimit;
    case 'cancelled':
      return REASONS.cancelledOutside;
    case 'node_fail':
      return nodeFailedReason(nodesOf(row, job)[0]);
    case 'out_of_memory':
      return REASONS.outOfMemory;
    case 'preempted':
      return REASONS.preempted;
    default:
      // A job that ends after its time limit was stopped by it, whatever state word the scheduler used.
      if (row.expires_at && Date.now() >= row.expires_at - 5_000) return REASONS.timeLimit;
      // An agent reports its app's exit before it ends itself (that report ends the session first) and
      // never exits with a signal's status: a job killed by a signal without a report lost its agent.
      if (row.state === 'running' || row.state === 'starting') {
        const signal = signalOf(job.exitCode);
        if (signal) return agentDiedReason(signal);
      }
      return row.state === 'running' ? REASONS.appExited : ENDED_BEFORE_READY;
  }
}
