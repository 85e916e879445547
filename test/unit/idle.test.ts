// Idle culling's rules and clock (src/sessions/idle.ts) with stand-ins for the apps and the session
// service: which policy applies, what counts as activity for each app, the warning, the reset, the stop.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { AppDefinition } from '../../src/apps/types.ts';
import type { IdleConfig } from '../../src/config/schema.ts';
import type { SessionRow } from '../../src/db/sessions.ts';
import type { Route } from '../../src/proxy/routes.ts';
import {
  ActivityBoard,
  describeMinutes,
  IdleCuller,
  type IdleStatus,
  idleMinutesFor,
  idleReason,
  type ProbeResult,
  partitionOf,
  signalOf,
} from '../../src/sessions/idle.ts';

const cfg = (over: Partial<IdleConfig> = {}): IdleConfig => ({
  minutes: 10,
  warnMinutes: 3,
  checkSeconds: 30,
  rules: [],
  appSignals: {},
  ...over,
});

function row(
  over: Partial<Omit<SessionRow, 'request'>> & { request?: Record<string, unknown> } = {},
): SessionRow {
  const { request, ...rest } = over;
  return {
    id: 'sess0001',
    user_id: 1,
    cluster: 'hpc',
    app: 'jupyter',
    state: 'running',
    ready_at: 0,
    started_at: 0,
    queue_info: null,
    request: JSON.stringify({ cluster: 'hpc', app: over.app ?? 'jupyter', ...request }),
    ...rest,
  } as unknown as SessionRow;
}

describe('the policy', () => {
  it('takes the first matching rule, else idle.minutes', () => {
    const c = cfg({
      minutes: 0,
      rules: [
        { partition: 'gpu', minutes: 30 },
        { app: 'desktop', minutes: 120 },
        { cluster: 'hpc', app: 'jupyter', minutes: 60 },
      ],
    });
    expect(idleMinutesFor(c, { cluster: 'hpc', partition: 'gpu', app: 'desktop' })).toBe(30);
    expect(idleMinutesFor(c, { cluster: 'x', partition: null, app: 'desktop' })).toBe(120);
    expect(idleMinutesFor(c, { cluster: 'hpc', partition: 'cpu', app: 'jupyter' })).toBe(60);
    expect(idleMinutesFor(c, { cluster: 'other', partition: 'cpu', app: 'jupyter' })).toBe(0);
  });

  it('knows the partition from the request, the queue, or the cluster default', () => {
    expect(partitionOf(row({ request: { partition: 'gpu' } }), 'cpu')).toBe('gpu');
    expect(partitionOf(row({ queue_info: JSON.stringify({ partition: 'big' }) }), 'cpu')).toBe('big');
    expect(partitionOf(row(), 'cpu')).toBe('cpu');
  });

  it('judges each app by its own signal', () => {
    const c = cfg({ appSignals: { vscode: 'none' } });
    expect(signalOf(c, 'jupyter', undefined)).toBe('jupyter');
    expect(signalOf(c, 'terminal', undefined)).toBe('terminal');
    expect(signalOf(c, 'desktop', { transport: 'rfb' } as AppDefinition)).toBe('vnc');
    expect(signalOf(c, 'shiny', { transport: 'http' } as AppDefinition)).toBe('traffic');
    expect(signalOf(c, 'vscode', undefined)).toBe('none');
  });

  it('says how long in words', () => {
    expect(idleReason(1)).toBe('stopped after 1 minute idle');
    expect(idleReason(30)).toBe('stopped after 30 minutes idle');
    expect(idleReason(0.4)).toBe('stopped after 24 seconds idle');
    expect(describeMinutes(2.5)).toBe('2.5 minutes');
  });
});

/** A culler over one session, with a clock the test moves and apps that say what the test wants. */
function harness(opts: {
  config?: Partial<IdleConfig>;
  session?: SessionRow;
  apps?: Record<string, AppDefinition>;
}) {
  let now = 0;
  const s = opts.session ?? row();
  const board = new ActivityBoard();
  const probes: Record<string, ProbeResult> = {};
  const events: string[] = [];
  let state = s.state;
  const route = {
    sessionId: s.id,
    prefix: '/user/alice/sess0001/',
    subRoutes: new Map([['terminal', { prefix: 'x' }]]),
  };
  const culler = new IdleCuller({
    cfg: cfg(opts.config),
    app: (id) => opts.apps?.[id],
    defaultPartition: () => null,
    running: async () => (state === 'running' ? [{ ...s, state }] : []),
    route: () => route as unknown as Route,
    board,
    probe: async (ep, signal) =>
      probes[ep.prefix === 'x' ? 'terminal' : signal] ?? { busy: false, last: null },
    warn: async (_r, st: IdleStatus) => {
      events.push(`warn@${now / 60_000}`);
      expect(st.warnedAt).toBe(now);
    },
    changed: () => events.push(`reset@${now / 60_000}`),
    stop: async (_r, reason) => {
      events.push(`stop@${now / 60_000}: ${reason}`);
      state = 'ending';
    },
    log: pino({ level: 'silent' }),
    now: () => now,
  });
  const at = async (minutes: number) => {
    now = minutes * 60_000;
    await culler.check();
  };
  return { culler, board, probes, events, at, setNow: (m: number) => (now = m * 60_000) };
}

describe('the culler', () => {
  it('warns warnMinutes before, then stops with the reason', async () => {
    const h = harness({});
    for (const m of [1, 6, 7, 8, 9.5, 10]) await h.at(m);
    expect(h.events).toEqual(['warn@7', 'stop@10: stopped after 10 minutes idle']);
  });

  it('never stops a session whose kernel is busy', async () => {
    const h = harness({});
    h.probes.jupyter = { busy: true, last: 0 };
    for (let m = 1; m <= 60; m += 5) await h.at(m);
    expect(h.events).toEqual([]);
    expect(h.culler.status('sess0001')).toMatchObject({ busy: true, idleSeconds: 0 });
  });

  it('any activity after the warning starts the clock again', async () => {
    const h = harness({ session: row({ request: { extraApps: ['terminal'] } }) });
    await h.at(7);
    // Keys in the session's terminal (an extra app) at minute 8.
    h.probes.terminal = { busy: false, last: 8 * 60_000 };
    await h.at(8.5);
    await h.at(14.9);
    await h.at(15);
    await h.at(18);
    expect(h.events).toEqual(['warn@7', 'reset@8.5', 'warn@15', 'stop@18: stopped after 10 minutes idle']);
  });

  it('counts VNC input for desktops and proxy traffic for other apps, not the other way round', async () => {
    const desk = harness({
      session: row({ app: 'desktop' }),
      apps: { desktop: { transport: 'rfb' } as AppDefinition },
    });
    desk.board.touch('sess0001', undefined, 'read', 5 * 60_000);
    desk.board.touch('sess0001', undefined, 'ws', 5 * 60_000);
    await desk.at(9);
    expect(desk.culler.status('sess0001')?.lastActivityAt).toBe(0);
    desk.board.touch('sess0001', undefined, 'input', 9 * 60_000);
    await desk.at(10);
    expect(desk.events).toEqual(['warn@9']);
    expect(desk.culler.status('sess0001')?.lastActivityAt).toBe(9 * 60_000);

    const shiny = harness({ session: row({ app: 'shiny' }) });
    shiny.board.touchPrefix('/user/alice/sess0001/', 'ws', 5 * 60_000);
    await shiny.at(10);
    expect(shiny.culler.status('sess0001')?.lastActivityAt).toBe(5 * 60_000);
  });

  it('for Jupyter, writes through the gateway count; its polling reads do not', async () => {
    const h = harness({});
    h.board.touch('sess0001', undefined, 'read', 6 * 60_000);
    await h.at(6.5);
    expect(h.culler.status('sess0001')?.lastActivityAt).toBe(0);
    h.board.touch('sess0001', undefined, 'write', 6.5 * 60_000);
    await h.at(7);
    expect(h.culler.status('sess0001')?.lastActivityAt).toBe(6.5 * 60_000);
  });

  it('without a policy it stops nothing but still shows idle time', async () => {
    const h = harness({ config: { minutes: 0 } });
    await h.at(120);
    expect(h.events).toEqual([]);
    expect(h.culler.status('sess0001')).toMatchObject({ minutes: 0, idleSeconds: 7200, stopsAt: null });
  });
});
