import { describe, expect, it } from 'vitest';
import {
  InvalidTransition,
  isActive,
  next,
  REASONS,
  SESSION_STATES,
} from '../../src/core/session-machine.ts';

describe('session state machine', () => {
  it('follows the happy path requested → queued → starting → running → ending → ended', () => {
    expect(next('requested', { type: 'submitted', jobId: '1' })).toEqual({ state: 'queued' });
    expect(next('queued', { type: 'job_running' })).toEqual({ state: 'starting' });
    expect(next('starting', { type: 'agent_ready' })).toEqual({ state: 'running' });
    expect(next('running', { type: 'stop_requested', reason: REASONS.stoppedByUser })).toEqual({
      state: 'ending',
      reason: 'stopped by you',
    });
    expect(next('ending', { type: 'job_finished', reason: 'x' })).toEqual({ state: 'ended' });
  });

  it('reports repeated news as no change', () => {
    expect(next('running', { type: 'job_running' })).toBeNull();
    expect(next('queued', { type: 'job_pending' })).toBeNull();
    expect(next('running', { type: 'agent_ready' })).toBeNull();
    expect(next('ending', { type: 'stop_requested', reason: 'again' })).toBeNull();
  });

  it('a job that ends before the app was ready is a failure with a reason', () => {
    expect(next('queued', { type: 'job_finished', reason: REASONS.timeLimit })).toEqual({
      state: 'failed',
      reason: 'time limit reached',
    });
    expect(next('starting', { type: 'job_finished', reason: 'boom' })).toEqual({
      state: 'failed',
      reason: 'boom',
    });
    expect(next('requested', { type: 'submit_failed', reason: 'no such account' })).toEqual({
      state: 'failed',
      reason: 'no such account',
    });
  });

  it('a running session that stops ends with the reason', () => {
    expect(next('running', { type: 'job_finished', reason: REASONS.timeLimit })).toEqual({
      state: 'ended',
      reason: 'time limit reached',
    });
  });

  it('the app may report ready before the poll saw the job running', () => {
    expect(next('queued', { type: 'agent_ready' })).toEqual({ state: 'running' });
  });

  it('finished sessions ignore late scheduler news but refuse nonsense', () => {
    expect(next('ended', { type: 'job_finished', reason: 'late' })).toBeNull();
    expect(next('failed', { type: 'stop_requested', reason: 'late' })).toBeNull();
    expect(() => next('ended', { type: 'agent_ready' })).toThrow(InvalidTransition);
    expect(() => next('running', { type: 'submitted', jobId: '2' })).toThrow(InvalidTransition);
    expect(() => next('running', { type: 'submit_failed', reason: 'x' })).toThrow(InvalidTransition);
  });

  it('every failure carries a reason', () => {
    for (const s of SESSION_STATES) {
      if (!isActive(s)) continue;
      const t = next(s, { type: 'error', reason: 'disk full' });
      expect(t).toEqual({ state: 'failed', reason: 'disk full' });
    }
  });
});
