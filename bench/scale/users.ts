// The scale benchmark's load generator (issue 20): simulated users on Node's own fetch (undici), each
// clicking through the gateway as the web UI does; the same-concurrency loops that compare our pages
// with JupyterHub's; and the soak (WebSocket churn, session starts and stops, page loads).
import WebSocket from 'ws';
import { fdCount, type ProbeReport, round, rssOf, sleep } from '../proxy/lib.ts';
import { EventStream } from '../spawn/lib.ts';

/** p-th percentile (nearest rank), ms with one decimal. */
export function pct(xs: number[], p: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return round(s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!, 1);
}

/** Runs `tasks` at most `width` at a time. */
export async function pool<T>(tasks: (() => Promise<T>)[], width: number): Promise<T[]> {
  const out: T[] = new Array(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, tasks.length) }, async () => {
      while (next < tasks.length) {
        const i = next++;
        out[i] = await tasks[i]!();
      }
    }),
  );
  return out;
}

export interface StepStats {
  requests: number;
  errors: number;
  req_per_s: number;
  p50_ms: number | null;
  p99_ms: number | null;
  /** HTTP statuses other than 2xx (and 0: no answer), with their counts. */
  statuses?: Record<string, number>;
}

/** Latencies and errors per step; a step's rate is its requests over the whole phase's wall time. */
export class Recorder {
  private readonly steps = new Map<
    string,
    { times: number[]; errors: number; statuses: Map<number, number> }
  >();

  record(step: string, ms: number, status: number): void {
    let s = this.steps.get(step);
    if (!s) {
      s = { times: [], errors: 0, statuses: new Map() };
      this.steps.set(step, s);
    }
    s.times.push(ms);
    if (status < 200 || status >= 300) {
      s.errors++;
      s.statuses.set(status, (s.statuses.get(status) ?? 0) + 1);
    }
  }

  /** `fetch` timed under `step`; network failures count as status 0. */
  async timed(step: string, url: string, init: RequestInit = {}): Promise<{ status: number; body: string }> {
    const t = performance.now();
    try {
      const r = await fetch(url, { redirect: 'manual', ...init });
      const body = await r.text();
      this.record(step, performance.now() - t, r.status);
      return { status: r.status, body };
    } catch {
      this.record(step, performance.now() - t, 0);
      return { status: 0, body: '' };
    }
  }

  summary(seconds: number): { steps: Record<string, StepStats>; overall: StepStats } {
    const steps: Record<string, StepStats> = {};
    const all: number[] = [];
    let errors = 0;
    for (const [name, s] of this.steps) {
      all.push(...s.times);
      errors += s.errors;
      steps[name] = {
        requests: s.times.length,
        errors: s.errors,
        req_per_s: round(s.times.length / seconds, 1),
        p50_ms: pct(s.times, 50),
        p99_ms: pct(s.times, 99),
        ...(s.statuses.size ? { statuses: Object.fromEntries(s.statuses) } : {}),
      };
    }
    return {
      steps,
      overall: {
        requests: all.length,
        errors,
        req_per_s: round(all.length / seconds, 1),
        p50_ms: pct(all, 50),
        p99_ms: pct(all, 99),
      },
    };
  }
}

export interface SignedIn {
  username: string;
  cookie: string;
  csrf: string;
}

const json = (body: string): Record<string, unknown> => {
  try {
    return JSON.parse(body) as Record<string, unknown>;
  } catch {
    return {};
  }
};

/** The calls the dashboard (SessionsPage and the app around it) makes when it loads. */
export const DASHBOARD_CALLS = ['/api/me', '/api/sessions', '/api/presets', '/api/announcements'];

export interface ClickThroughOptions {
  base: string;
  users: string[];
  password: string;
  cluster: string;
  /** How long each user keeps the event stream open. */
  eventSeconds: number;
  /** How long a user waits for the batch job to finish before reading its output anyway. */
  jobWaitSeconds: number;
  /** The batch jobs' working directory (their output lands there), writable by every user. */
  jobDir: string;
  /**
   * Users arrive at this rate (user i starts at i / rate seconds), as people come in, not in one
   * millisecond; 0 or absent: all at once.
   */
  arrivalsPerSecond?: number;
}

export interface ClickThroughResult {
  users: number;
  seconds: number;
  arrivals_per_s: number | null;
  signed_in: SignedIn[];
  steps: Record<string, StepStats>;
  overall: StepStats;
  sessions_started: number;
  sessions_stopped: number;
  jobs_submitted: number;
  /** The app the sessions started (the form's first for the cluster). */
  app: string;
  /** Jobs seen finished (their status asked every second) within jobWaitSeconds of the submit. */
  jobs_finished: number;
  /** Output reads that showed the script's line. */
  outputs_read: number;
  /** What the output endpoint answered, by HTTP status. */
  job_output_answers: Record<string, number>;
  event_streams_opened: number;
}

/** Signs `username` in with a password: the browser session's cookie and CSRF token, or null. */
async function signIn(
  rec: Recorder,
  base: string,
  username: string,
  password: string,
): Promise<SignedIn | null> {
  const t = performance.now();
  try {
    const r = await fetch(`${base}/api/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: base },
      body: JSON.stringify({ username, password }),
    });
    const body = json(await r.text());
    rec.record('sign_in', performance.now() - t, r.status);
    if (!r.ok) return null;
    const cookie = r.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .join('; ');
    return { username, cookie, csrf: String(body.csrfToken ?? '') };
  } catch {
    rec.record('sign_in', performance.now() - t, 0);
    return null;
  }
}

/**
 * Every user signs in at the same moment (a capacity figure, not what users do): each password is
 * verified (scrypt), so the rate is bounded by the cores; reported as sign-ins per second.
 */
export async function signInBurst(base: string, users: string[], password: string) {
  const rec = new Recorder();
  const t0 = performance.now();
  const got = await Promise.all(users.map((u) => signIn(rec, base, u, password)));
  const seconds = (performance.now() - t0) / 1000;
  const { overall } = rec.summary(seconds);
  return {
    users: users.length,
    seconds: round(seconds, 1),
    signed_in: got.filter(Boolean).length,
    sign_ins_per_s: round(got.filter(Boolean).length / seconds, 1),
    ...overall,
  };
}

/**
 * Every user (arriving at `arrivalsPerSecond`): sign in with a password, load the dashboard's calls (in parallel, as the page),
 * open the live event stream for `eventSeconds`, load the new-session form, start a session and stop
 * it as soon as the start answered, submit a batch job, ask for its status every second until it has
 * finished (at most `jobWaitSeconds`) and read its output.
 */
export async function clickThrough(o: ClickThroughOptions): Promise<ClickThroughResult> {
  const rec = new Recorder();
  const signedIn: SignedIn[] = [];
  let started = 0;
  let stopped = 0;
  let submitted = 0;
  let streams = 0;
  let firstApp = '';
  let finished = 0;
  let outputsRead = 0;
  const outputAnswers: Record<string, number> = {};
  const origin = o.base;
  const t0 = performance.now();
  const rate = o.arrivalsPerSecond && o.arrivalsPerSecond > 0 ? o.arrivalsPerSecond : null;
  await Promise.all(
    o.users.map(async (username, i) => {
      if (rate) await sleep((i / rate) * 1000);
      const login = await signIn(rec, o.base, username, o.password);
      if (!login) return;
      signedIn.push(login);
      const get = { headers: { cookie: login.cookie, accept: 'application/json' } };
      const write = {
        cookie: login.cookie,
        'x-csrf-token': login.csrf,
        'content-type': 'application/json',
        origin,
      };
      await Promise.all(DASHBOARD_CALLS.map((p) => rec.timed('dashboard', `${o.base}${p}`, get)));

      const tEv = performance.now();
      const stream = new EventStream(`${o.base}/api/events`, { cookie: login.cookie });
      const opened = await Promise.race([
        stream.opened.then(() => true),
        sleep(10_000).then(() => false),
      ]).catch(() => false);
      rec.record('event_stream_open', performance.now() - tEv, opened ? 200 : 0);
      if (opened) {
        streams++;
        await sleep(o.eventSeconds * 1000);
      }
      stream.close();

      const form = await rec.timed('form', `${o.base}/api/clusters`, get);
      const clusters = (json(form.body).clusters ?? []) as { name: string; apps?: { id: string }[] }[];
      const app = clusters.find((c) => c.name === o.cluster)?.apps?.[0]?.id ?? 'jupyter';
      firstApp ||= app;
      const s = await rec.timed('session_start', `${o.base}/api/sessions`, {
        method: 'POST',
        headers: write,
        body: JSON.stringify({ cluster: o.cluster, app, hours: 1, cores: 1, memoryGb: 1 }),
      });
      const sessionId = (json(s.body).session as { id?: string } | undefined)?.id;
      if (sessionId) {
        started++;
        const st = await rec.timed('session_stop', `${o.base}/api/sessions/${sessionId}`, {
          method: 'DELETE',
          headers: { cookie: login.cookie, 'x-csrf-token': login.csrf, origin },
        });
        if (st.status === 200) stopped++;
      }

      const j = await rec.timed('job_submit', `${o.base}/api/jobs`, {
        method: 'POST',
        headers: write,
        body: JSON.stringify({
          cluster: o.cluster,
          source: 'text',
          script: `#!/bin/sh\necho hello from ${username}\n`,
          jobName: 'scale-click',
          hours: 0.1,
          cores: 1,
          memoryGb: 1,
          workDir: o.jobDir,
        }),
      });
      const jobId = (json(j.body).job as { jobId?: string } | undefined)?.jobId;
      if (jobId) {
        submitted++;
        // As the job's page: its status until it has finished, then its output.
        const until = Date.now() + o.jobWaitSeconds * 1000;
        for (;;) {
          const st = await rec.timed('job_status', `${o.base}/api/jobs/${o.cluster}/${jobId}`, get);
          if ((json(st.body).job as { finished?: boolean } | undefined)?.finished) {
            finished++;
            break;
          }
          if (Date.now() > until) break;
          await sleep(1000);
        }
        const out = await rec.timed(
          'job_output',
          `${o.base}/api/jobs/${o.cluster}/${jobId}/output?from=end&limit=4096`,
          get,
        );
        outputAnswers[out.status] = (outputAnswers[out.status] ?? 0) + 1;
        if (String(json(out.body).data ?? '').includes(`hello from ${username}`)) outputsRead++;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  return {
    users: o.users.length,
    seconds: round(seconds, 1),
    arrivals_per_s: rate,
    signed_in: signedIn,
    ...rec.summary(seconds),
    sessions_started: started,
    sessions_stopped: stopped,
    jobs_submitted: submitted,
    app: firstApp,
    jobs_finished: finished,
    outputs_read: outputsRead,
    job_output_answers: outputAnswers,
    event_streams_opened: streams,
  };
}

export interface Target {
  url: string;
  headers: Record<string, string>;
}

/**
 * One worker per target, all at once, each GETting its target back to back for `seconds`: the same
 * concurrency for every system compared (one request in flight per simulated user).
 */
export async function hammer(targets: Target[], seconds: number): Promise<StepStats> {
  const rec = new Recorder();
  const end = Date.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    targets.map(async (t) => {
      while (Date.now() < end) await rec.timed('get', t.url, { headers: t.headers });
    }),
  );
  return rec.summary((performance.now() - t0) / 1000).overall;
}

export interface SoakOptions {
  base: string;
  gatewayPid: number;
  users: SignedIn[];
  cluster: string;
  app: string;
  /** The proxied app's WebSocket URL and the cookie that may open it. */
  wsUrl: string;
  wsHeaders: Record<string, string>;
  minutes: number;
  /** WebSocket open → message → echo → close cycles in flight at once. */
  wsConcurrency: number;
  /** The gateway's memory after full GCs (its IPC probe); without it only RSS as found is read. */
  memory?: () => Promise<ProbeReport>;
}

export interface SoakResult {
  minutes: number;
  ws_cycles: number;
  ws_errors: number;
  sessions_started: number;
  session_errors: number;
  page_loads: number;
  page_errors: number;
  rss_mb_start: number;
  rss_mb_end: number;
  fds_start: number;
  fds_end: number;
  rss_end_vs_start: number | null;
  fds_end_vs_start: number | null;
  /** After full GCs (null without a probe): what a leak would grow, without the collector's swings. */
  gc?: {
    rss_mb_start: number;
    rss_mb_end: number;
    heap_mb_start: number;
    heap_mb_end: number;
    handles_start: number;
    handles_end: number;
    rss_end_vs_start: number;
    heap_end_vs_start: number;
    handles_end_vs_start: number;
  };
  /** RSS and heap after full GCs every few minutes of the soak (minute, MB), to see a trend. */
  gc_trend?: { minute: number; rss_mb: number; heap_mb: number; handles: number }[];
}

function wsCycle(url: string, headers: Record<string, string>): Promise<boolean> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers, perMessageDeflate: false });
    const timer = setTimeout(() => {
      ws.terminate();
      resolve(false);
    }, 10_000);
    const done = (ok: boolean) => {
      clearTimeout(timer);
      resolve(ok);
    };
    ws.on('error', () => done(false));
    ws.once('unexpected-response', () => done(false));
    ws.once('open', () => {
      ws.once('message', () => {
        ws.once('close', () => done(true));
        ws.close();
      });
      ws.send('x'.repeat(64));
    });
  });
}

/**
 * For `minutes`: WebSocket churn through the proxy, a session started and stopped about every 2 s by
 * the users in turn, and a dashboard load every 100 ms. The gateway's RSS and open file descriptors
 * are read after a short warm-up and again after everything stopped, each 3 s after the churn.
 */
export async function soak(o: SoakOptions): Promise<SoakResult> {
  const warmEnd = Date.now() + 2000;
  const cycles = { n: 0, errors: 0 };
  const churn = async (until: number) => {
    await Promise.all(
      Array.from({ length: o.wsConcurrency }, async () => {
        while (Date.now() < until) {
          if (await wsCycle(o.wsUrl, o.wsHeaders)) cycles.n++;
          else cycles.errors++;
        }
      }),
    );
  };
  await churn(warmEnd);
  // The same settle as before the end's reading: closed connections leave their descriptors.
  await sleep(3000);
  const rssStart = rssOf(o.gatewayPid) ?? 0;
  const fdsStart = fdCount(o.gatewayPid) ?? 0;
  const memStart = await o.memory?.();
  cycles.n = 0;
  cycles.errors = 0;
  const end = Date.now() + o.minutes * 60_000;
  const sessions = { n: 0, errors: 0 };
  const pages = { n: 0, errors: 0 };
  let turn = 0;
  const next = () => o.users[turn++ % o.users.length]!;
  const startsAndStops = async () => {
    while (Date.now() < end) {
      const u = next();
      const h = { cookie: u.cookie, 'x-csrf-token': u.csrf, origin: o.base };
      try {
        const r = await fetch(`${o.base}/api/sessions`, {
          method: 'POST',
          headers: { ...h, 'content-type': 'application/json' },
          body: JSON.stringify({ cluster: o.cluster, app: o.app, hours: 1, cores: 1, memoryGb: 1 }),
        });
        const id = ((await r.json()) as { session?: { id: string } }).session?.id;
        if (!id) sessions.errors++;
        else {
          const s = await fetch(`${o.base}/api/sessions/${id}`, { method: 'DELETE', headers: h });
          await s.arrayBuffer();
          if (s.ok) sessions.n++;
          else sessions.errors++;
        }
      } catch {
        sessions.errors++;
      }
      await sleep(2000);
    }
  };
  const pageLoads = async () => {
    while (Date.now() < end) {
      const u = next();
      const got = await Promise.all(
        DASHBOARD_CALLS.map((p) =>
          fetch(`${o.base}${p}`, { headers: { cookie: u.cookie } })
            .then(async (r) => {
              await r.arrayBuffer();
              return r.ok;
            })
            .catch(() => false),
        ),
      );
      if (got.every(Boolean)) pages.n++;
      else pages.errors++;
      await sleep(100);
    }
  };
  const soakStart = Date.now();
  const trend: NonNullable<SoakResult['gc_trend']> = [];
  const mb = (n: number) => round(n / 1024 / 1024, 1);
  // A GC'd reading now and then (it pauses the gateway for a moment, like any full GC).
  const sampleTrend = async () => {
    const every = Math.max(30_000, (o.minutes * 60_000) / 10);
    while (o.memory && Date.now() + every < end) {
      await sleep(every);
      const m = await o.memory().catch(() => null);
      if (m)
        trend.push({
          minute: round((Date.now() - soakStart) / 60_000, 1),
          rss_mb: mb(m.rss),
          heap_mb: mb(m.heapUsed),
          handles: m.handles,
        });
    }
  };
  await Promise.all([churn(end), startsAndStops(), pageLoads(), sampleTrend()]);
  // Closed connections and stopped sessions settle (sockets, timers, sbatch/scancel children).
  await sleep(3000);
  const rssEnd = rssOf(o.gatewayPid) ?? 0;
  const fdsEnd = fdCount(o.gatewayPid) ?? 0;
  const memEnd = await o.memory?.();
  const gc =
    memStart && memEnd
      ? {
          rss_mb_start: mb(memStart.rss),
          rss_mb_end: mb(memEnd.rss),
          heap_mb_start: mb(memStart.heapUsed),
          heap_mb_end: mb(memEnd.heapUsed),
          handles_start: memStart.handles,
          handles_end: memEnd.handles,
          rss_end_vs_start: round(memEnd.rss / memStart.rss, 3),
          heap_end_vs_start: round(memEnd.heapUsed / memStart.heapUsed, 3),
          handles_end_vs_start: round(memEnd.handles / Math.max(1, memStart.handles), 3),
        }
      : undefined;
  return {
    minutes: o.minutes,
    ws_cycles: cycles.n,
    ws_errors: cycles.errors,
    sessions_started: sessions.n,
    session_errors: sessions.errors,
    page_loads: pages.n,
    page_errors: pages.errors,
    rss_mb_start: round(rssStart / 1024 / 1024, 1),
    rss_mb_end: round(rssEnd / 1024 / 1024, 1),
    fds_start: fdsStart,
    fds_end: fdsEnd,
    rss_end_vs_start: rssStart ? round(rssEnd / rssStart, 3) : null,
    fds_end_vs_start: fdsStart ? round(fdsEnd / fdsStart, 3) : null,
    ...(gc ? { gc, gc_trend: trend } : {}),
  };
}

/** batchspawner's documented polling (one `squeue` per session per poll interval, 30 s by default), in calls. */
export function batchspawnerModel(sessions: number, pollPeriodS: number, oursPerPoll: number | null) {
  const BATCHSPAWNER_POLL_S = 30;
  const perPeriod = (sessions * pollPeriodS) / BATCHSPAWNER_POLL_S;
  return {
    what: 'computed from batchspawner\u2019s documented cost model, not a run of batchspawner',
    sessions,
    batchspawner_poll_interval_s: BATCHSPAWNER_POLL_S,
    batchspawner_squeue_per_minute: round((sessions * 60) / BATCHSPAWNER_POLL_S, 1),
    ours_calls_per_minute: oursPerPoll === null ? null : round((oursPerPoll * 60) / pollPeriodS, 1),
    poll_period_s: pollPeriodS,
    batchspawner_calls_per_our_poll_period: round(perPeriod, 1),
    ours_calls_per_poll_period: oursPerPoll,
    ratio_batchspawner_vs_ours: oursPerPoll ? round(perPeriod / oursPerPoll, 1) : null,
  };
}
