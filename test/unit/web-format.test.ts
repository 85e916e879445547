// Pure helpers of the web UI: countdowns, labels, merging live session updates, safe redirects.
import { describe, expect, it } from 'vitest';
import {
  formatFullDate,
  formatGb,
  formatHours,
  formatResources,
  formatTimeLeft,
  mergeSession,
  queueDetails,
  safeNext,
  sessionSince,
  sessionTitle,
  stateBadge,
  timeLeftIsShort,
} from '../../src/web/format.ts';
import { LIVE_TOASTS } from '../../src/web/live-toasts.ts';
import type { SessionView } from '../../src/web/types.ts';

const MIN = 60_000;

function session(over: Partial<SessionView> = {}): SessionView {
  // Cast: fields the server adds later need not be listed here.
  return {
    id: 's1',
    cluster: 'local',
    app: 'jupyter',
    appName: 'Jupyter',
    environment: null,
    label: null,
    state: 'queued',
    displayState: 'queued',
    reason: null,
    request: { cluster: 'local', app: 'jupyter', cores: 2, memoryGb: 4, gpus: 0, hours: 2 },
    jobId: '42',
    url: '/user/alice/s1/',
    openUrl: '/user/alice/s1/tree',
    createdAt: 1_000,
    startedAt: null,
    readyAt: null,
    endedAt: null,
    expiresAt: null,
    timeLimitMinutes: 120,
    queue: null,
    lastHeartbeatAt: null,
    ...over,
  } as SessionView;
}

describe('formatTimeLeft', () => {
  it('counts down in hours and minutes, rounding down', () => {
    expect(formatTimeLeft(2 * 60 * MIN - 1)).toBe('1 h 59 min left');
    expect(formatTimeLeft(2 * 60 * MIN)).toBe('2 h left');
    expect(formatTimeLeft(61 * MIN + 30_000)).toBe('1 h 1 min left');
    expect(formatTimeLeft(14 * MIN + 59_000)).toBe('14 min left');
    expect(formatTimeLeft(59_000)).toBe('less than a minute left');
    expect(formatTimeLeft(0)).toBe('time is up');
    expect(formatTimeLeft(-5 * MIN)).toBe('time is up');
  });

  it('warns under 15 minutes', () => {
    expect(timeLeftIsShort(15 * MIN)).toBe(false);
    expect(timeLeftIsShort(15 * MIN - 1)).toBe(true);
    expect(timeLeftIsShort(-1)).toBe(true);
  });
});

describe('labels', () => {
  it('formats durations, memory and resources', () => {
    expect(formatHours(1)).toBe('1 h');
    expect(formatHours(0.5)).toBe('30 min');
    expect(formatHours(1.25)).toBe('1 h 15 min');
    expect(formatGb(32768)).toBe('32');
    expect(formatGb(23_552)).toBe('23');
    expect(formatGb(24_100)).toBe('23.5');
    expect(formatResources(session())).toBe('2 cores · 4 GB · 2 h');
    expect(
      formatResources(
        session({ request: { ...session().request, cores: 1, gpus: 1 }, timeLimitMinutes: 60 }),
      ),
    ).toBe('1 core · 4 GB · 1 GPU · 1 h');
  });

  it('names states readably, unknown included', () => {
    expect(stateBadge('running')).toEqual({ label: 'running', tone: 'ok' });
    expect(stateBadge('unknown').label).toBe('unknown (scheduler unreachable)');
    expect(stateBadge('ending').label).toBe('stopping');
    expect(stateBadge('something-new')).toEqual({ label: 'something-new', tone: 'neutral' });
  });

  it('describes a pending job', () => {
    const s = session({ queue: { reason: 'Priority', position: 2, pendingInPartition: 5 } });
    expect(queueDetails(s)).toEqual(['pending reason: Priority', 'position 2 of 5']);
    expect(queueDetails(session({ queue: { reason: 'None' } }))).toEqual([]);
    const start = new Date(2030, 0, 1, 14, 30).getTime();
    expect(queueDetails(session({ queue: { expectedStart: start / 1000 } }), start - MIN)).toEqual([
      'expected start 14:30',
    ]);
  });

  it('shows a session under its label, else its app', () => {
    expect(sessionTitle(session())).toBe('Jupyter');
    expect(sessionTitle(session({ label: 'thesis' }))).toBe('thesis');
    expect(sessionTitle(session({ label: '  ' }))).toBe('Jupyter');
  });

  it('tells two sessions of the same app apart by when they started, with the full date as a tooltip', () => {
    // Local times, as the page shows them.
    const requested = new Date(2030, 5, 3, 13, 58).getTime();
    const started = new Date(2030, 5, 3, 14, 2).getTime();
    const later = new Date(2030, 5, 3, 16, 0).getTime();
    expect(sessionSince(session({ createdAt: requested }), later)).toEqual({
      text: 'requested 13:58',
      at: requested,
      full: formatFullDate(requested),
    });
    const running = sessionSince(session({ createdAt: requested, startedAt: started }), later);
    expect(running.text).toBe('started 14:02');
    expect(running.at).toBe(started);
    expect(running.full).toMatch(/^Monday,? 3 June 2030,? (at )?14:02$/);
    // On another day the day is named too.
    const nextDay = new Date(2030, 5, 4, 9, 0).getTime();
    expect(sessionSince(session({ createdAt: requested, startedAt: started }), nextDay).text).toBe(
      'started Mon 3 Jun 14:02',
    );
  });
});

describe('mergeSession', () => {
  it('adds new sessions newest first and replaces by id', () => {
    const a = session({ id: 'a', createdAt: 1 });
    const b = session({ id: 'b', createdAt: 2 });
    let list = mergeSession([], a);
    list = mergeSession(list, b);
    expect(list.map((s) => s.id)).toEqual(['b', 'a']);
    list = mergeSession(list, { ...a, state: 'running', displayState: 'running' });
    expect(list.map((s) => [s.id, s.state])).toEqual([
      ['b', 'queued'],
      ['a', 'running'],
    ]);
  });

  it('never moves a session back to an earlier state (a late API answer after a live event)', () => {
    const running = session({ state: 'running', displayState: 'running' });
    const list = mergeSession([running], session({ state: 'queued' }));
    expect(list[0]!.state).toBe('running');
    const unknown = mergeSession(list, { ...running, displayState: 'unknown' });
    expect(unknown[0]!.displayState).toBe('unknown');
  });
});

describe('safeNext', () => {
  it('keeps same-origin paths only', () => {
    expect(safeNext('/user/alice/abc/tree?x=1')).toBe('/user/alice/abc/tree?x=1');
    expect(safeNext(null)).toBe('/');
    expect(safeNext('')).toBe('/');
    expect(safeNext('https://evil.example/')).toBe('/');
    expect(safeNext('//evil.example/')).toBe('/');
    expect(safeNext('/\\evil.example/')).toBe('/');
    expect(safeNext('/\t/evil.example/')).toBe('/');
    expect(safeNext('javascript:alert(1)')).toBe('/');
  });
});

describe('live toasts', () => {
  const lookups = { session: (id: string) => (id === 's1' ? session({ label: 'thesis' }) : undefined) };

  it('turns a time warning into a warning toast naming the session', () => {
    const t = LIVE_TOASTS['session.warning']!({ id: 's1', minutesLeft: 15 }, lookups);
    expect(t).toMatchObject({ tone: 'warn', title: 'thesis (Jupyter) ends soon', key: 'warning:s1' });
    expect(t?.message).toContain('15 minutes left');
    expect(LIVE_TOASTS['session.warning']!({}, lookups)).toBeNull();
  });

  it('shows generic notifications and ignores empty ones', () => {
    expect(LIVE_TOASTS.notification!('Maintenance tonight', lookups)).toEqual({
      title: 'Maintenance tonight',
    });
    expect(
      LIVE_TOASTS.notification!(
        { title: 'Job done', message: 'job 7 completed', level: 'success', url: '/jobs' },
        lookups,
      ),
    ).toMatchObject({ tone: 'ok', title: 'Job done', message: 'job 7 completed', action: { href: '/jobs' } });
    expect(
      LIVE_TOASTS.notification!({ title: 'x', url: 'https://evil.example' }, lookups)?.action,
    ).toBeUndefined();
    expect(LIVE_TOASTS.notification!({}, lookups)).toBeNull();
  });

  it('shows the server notifications of sessions, an ending-soon one in place of the warning toast', () => {
    const ready = LIVE_TOASTS.notification!(
      {
        id: 3,
        kind: 'session.ready',
        title: 'Session ready',
        body: 'Your session is ready.',
        link: '/user/alice/s1/',
      },
      lookups,
    );
    expect(ready).toMatchObject({
      tone: 'ok',
      title: 'Session ready',
      message: 'Your session is ready.',
      action: { label: 'Open the session', href: '/user/alice/s1/' },
      key: 'notification:3',
    });
    const soon = LIVE_TOASTS.notification!(
      {
        id: 4,
        kind: 'session.ending_soon',
        title: 'Session ending soon',
        body: '…',
        link: '/user/alice/s1/',
      },
      lookups,
    );
    expect(soon).toMatchObject({ tone: 'warn', key: 'warning:s1' });
    expect(
      LIVE_TOASTS.notification!({ id: 5, kind: 'session.failed', title: 'Session failed' }, lookups)?.tone,
    ).toBe('bad');
  });
});
