// The session lifecycle as a pure state machine. Every persisted state change goes through `next`,
// so the rules live in one place and can be tested without I/O.

export const SESSION_STATES = [
  'requested',
  'queued',
  'starting',
  'running',
  'ending',
  'ended',
  'failed',
] as const;
export type SessionState = (typeof SESSION_STATES)[number];

export const ACTIVE_STATES: ReadonlySet<SessionState> = new Set([
  'requested',
  'queued',
  'starting',
  'running',
  'ending',
]);

export function isActive(state: SessionState): boolean {
  return ACTIVE_STATES.has(state);
}

export function isTerminal(state: SessionState): boolean {
  return state === 'ended' || state === 'failed';
}

/** Why a session stopped, in words a user can read. */
export const REASONS = {
  stoppedByUser: 'stopped by you',
  stoppedByAdmin: 'stopped by an administrator',
  timeLimit: 'time limit reached',
  appExited: 'the app exited',
  jobVanished: 'the job is no longer known to the scheduler',
  startTimeout: 'the app did not become ready in time',
  cancelledOutside: 'the job was cancelled outside the gateway',
  nodeFailure: 'the node running the session failed',
  outOfMemory: 'the session ran out of memory',
  preempted: 'the job was preempted by the scheduler',
  agentDied: 'the agent died',
  requeued: 'the scheduler put the job back in the queue; the app was lost',
} as const;

/** "node n12 failed" when the node is known (users and admins look for its name), else the generic words. */
export function nodeFailedReason(node: string | undefined): string {
  return node ? `node ${node} failed` : REASONS.nodeFailure;
}

/**
 * The agent's job ended without the agent saying why (it reports an app's exit itself): it was killed or
 * crashed, and its apps with it. `signal` names the signal when the exit status tells one.
 */
export function agentDiedReason(signal: string | undefined): string {
  return signal ? `${REASONS.agentDied} (killed by ${signal})` : REASONS.agentDied;
}

/** How often agents report and how many missed reports make a running session "not responding". */
export interface HeartbeatPolicy {
  intervalMs: number;
  missed: number;
}

/**
 * Since when a session's agent has been silent, or null while it reports in time. Only a running session
 * has an agent that reports. Silence is a flag on a running session, not a state: the app may still
 * answer, and one late heartbeat makes it plain `running` again; only the scheduler's word (job gone,
 * node down) ends it. `floor` is when the gateway started: heartbeats sent while it was down were lost,
 * so silence is counted from then at the earliest.
 */
export function notRespondingSince(
  s: { state: SessionState; lastHeartbeatAt: number | null },
  now: number,
  policy: HeartbeatPolicy,
  floor = 0,
): number | null {
  if (s.state !== 'running' || s.lastHeartbeatAt === null) return null;
  const heard = Math.max(s.lastHeartbeatAt, floor);
  return now - heard > policy.intervalMs * policy.missed ? s.lastHeartbeatAt : null;
}

export type SessionEvent =
  | { type: 'submitted'; jobId: string }
  | { type: 'submit_failed'; reason: string }
  | { type: 'job_pending' }
  | { type: 'job_running' }
  | { type: 'agent_ready' }
  | { type: 'stop_requested'; reason: string }
  /** The job is gone or finished; `reason` explains why in user terms. */
  | { type: 'job_finished'; reason: string }
  | { type: 'error'; reason: string };

export interface Transition {
  state: SessionState;
  /** Set when the session is (or becomes) ended or failed, or is ending for a reason. */
  reason?: string;
}

export class InvalidTransition extends Error {
  constructor(
    readonly from: SessionState,
    readonly event: SessionEvent['type'],
  ) {
    super(`a session that is ${from} cannot take '${event}'`);
    this.name = 'InvalidTransition';
  }
}

/**
 * The next state for `event` in `state`; `null` when the event changes nothing (repeats are normal:
 * every poll reports "running" again). Throws InvalidTransition for events that make no sense there.
 */
export function next(state: SessionState, event: SessionEvent): Transition | null {
  if (isTerminal(state)) {
    // Late news about a finished session (a poll that raced a stop) changes nothing.
    if (event.type === 'job_finished' || event.type === 'stop_requested' || event.type === 'job_running') {
      return null;
    }
    throw new InvalidTransition(state, event.type);
  }
  switch (event.type) {
    case 'submitted':
      if (state === 'requested') return { state: 'queued' };
      if (state === 'ending') return null;
      throw new InvalidTransition(state, event.type);
    case 'submit_failed':
      if (state === 'requested') return { state: 'failed', reason: event.reason };
      throw new InvalidTransition(state, event.type);
    case 'job_pending':
      return null;
    case 'job_running':
      if (state === 'queued' || state === 'requested') return { state: 'starting' };
      return null;
    case 'agent_ready':
      if (state === 'queued' || state === 'starting' || state === 'requested') return { state: 'running' };
      if (state === 'running') return null;
      throw new InvalidTransition(state, event.type);
    case 'stop_requested':
      if (state === 'ending') return null;
      return { state: 'ending', reason: event.reason };
    case 'job_finished':
      if (state === 'ending') return { state: 'ended' };
      // A session that was usable ends (whatever the cause); the reason says why.
      if (state === 'running') return { state: 'ended', reason: event.reason };
      // The job ended before the app was ever reachable: the user got nothing, so it failed.
      return { state: 'failed', reason: event.reason };
    case 'error':
      return { state: 'failed', reason: event.reason };
  }
}
