// npm run bench:scale — the gateway at a centre's scale, on a Slurm test cluster of its own
// (scripts/cluster.sh, started and stopped by the PIDs it records), everything on loopback:
//   jobs:  N jobs of U users in slurmctld (held arrays, arrays pending until a begin time a week
//          away, a few running jobs, and one user with H single jobs), a gateway following them all;
//          reports the poll's duration (the scheduler's part, and the gateway's work with it), the
//          gateway's RSS and CPU per poll, the scheduler commands per poll period (counted by a
//          wrapper directory the gateway's binDir points at, beside the gateway's own counters), and
//          the latency of My jobs, the queue page and the session list for the user with H jobs;
//   events: K open live-event streams (SSE) of that user; a job of theirs is cancelled through the
//          API and the time from Slurm's answer (the API's reply) to the job's event in every stream
//          is measured (p50, p99): the early poll, squeue and sinfo, the diff and the fan-out;
//   ws:    W WebSockets held open through the proxy to a running app (an echo server), a message on
//          each every few seconds: the gateway's RSS, per-connection memory, event-loop delay p99
//          while they are open, and that none is left after they close.
//   users: U simulated users (users.ts, on Node's fetch) arriving a few per second sign in with a password, load the
//          dashboard's calls, hold the event stream a few seconds, load the form, start a session and
//          stop it at once, submit a batch job and read its output once: req/s, p50, p99, errors per
//          step and overall; then our session list, /api/me and the dashboard's calls under the same
//          concurrency (one request in flight per user) as JupyterHub 3.0's users API and home page
//          (jupyterhub.ts, its U users created through its REST API), in rounds that alternate
//          which goes first, and batchspawner's documented polling cost (one squeue per session per
//          30 s) against our counted calls, computed; all users signing in at the same moment, ours
//          and JupyterHub's (sign-ins per second);
//   soak:  BENCH_SOAK_MINUTES of WebSocket churn, session starts and stops and page loads: the
//          gateway's RSS and open file descriptors at the start and the end, and its RSS, heap and
//          handles after full GCs (its IPC probe) at the start, every tenth of the soak and the end;
//   ha:    the same users clicking through two gateways on one PostgreSQL behind HAProxy (Debian's,
//          the shipped deploy/haproxy/haproxy.cfg), both following the same 10,000 jobs.
//
// Scale: BENCH_SCALE_FACTOR (1: 10,000 jobs, 200 users, 500 jobs for the busy user, 200 SSE streams,
// 5,000 WebSockets); each count can be set alone: BENCH_JOBS, BENCH_USERS, BENCH_USER_JOBS, BENCH_SSE,
// BENCH_WS. BENCH_SECONDS (10) per measured cell, BENCH_POLL_SECONDS (5, the gateway's pollSeconds),
// BENCH_ARRAY_TASKS (25: tasks per array; squeue shows a pending array as one line, 1 makes every job
// its own line), BENCH_EVENT_SAMPLES (20), BENCH_EVENT_HOLD_SECONDS (3: each simulated user's event
// stream), BENCH_JOB_WAIT_SECONDS (2 polls + 20: for a batch job to finish before its output is read),
// BENCH_JUPYTERHUB (1; 0 skips JupyterHub, which is installed when missing and run as root),
// BENCH_SOAK_MINUTES (30; 0 skips the soak), BENCH_SOAK_WS (20 WebSocket cycles in flight),
// BENCH_WS_MESSAGE_SECONDS (3: each open WebSocket's message period), BENCH_ARRIVALS_PER_SECOND (2:
// users starting their click-through per second; 0: all at once), BENCH_ROUNDS (3: same-load rounds),
// BENCH_HA (1; 0 skips the two gateways behind HAProxy: they need Debian's haproxy and postgresql,
// installed when missing; PostgreSQL is $ATRIUM_TEST_POSTGRES_URL's server or a throwaway one).
// BENCH_PROFILE_DIR: where the gateway's CPU profile over the 200 users' click-through is written.
// CI's smoke: BENCH_SCALE_FACTOR=0.02 BENCH_SECONDS=1 BENCH_JUPYTERHUB=0 BENCH_SOAK_MINUTES=0.1.
// Cluster: BENCH_CLUSTER_NAME (atriumscale), BENCH_CLUSTER_PORT (6867; it uses 7 ports from there),
// BENCH_CLUSTER_BASE (/tmp/atrium-slurm-<name>). Users benchu001... are created (useradd, no home)
// and kept. Needs root (jobs are submitted as their users); scripts/cluster.sh installs Slurm.
// Output: tables, the JSON summary as the last line and in BENCH_OUT when set; at full scale (factor 1)
// also bench/results/scale-<date>.json and scale-latest.json unless BENCH_NO_SAVE=1.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import { ensurePackages, type PackageNeed } from '../../src/system/packages.ts';
import { haproxyMissing, startHaproxy } from '../../test/helpers/haproxy.ts';
import { createTestDatabase, ensurePostgres, POSTGRES_NEED } from '../../test/helpers/postgres.ts';
import {
  ask,
  type Child,
  cpuMicros,
  envNumber,
  fdCount,
  median,
  nodeArgv,
  probe,
  ROOT,
  round,
  rssOf,
  sleep,
  start,
  stop,
  stopAll,
  waitForJson,
} from '../proxy/lib.ts';
import { JUPYTERHUB_NEED } from '../spawn/jupyterhub.ts';
import { EventStream, freePort } from '../spawn/lib.ts';
import { CPU_GROUPS, cpuBetween, sampleCpu } from './cpu.ts';
import type { ScaleGatewayOptions } from './gateway.ts';
import { type HubSide, startHubSide } from './jupyterhub.ts';
import {
  batchspawnerModel,
  type ClickThroughResult,
  clickThrough,
  DASHBOARD_CALLS,
  hammer,
  pct,
  pool,
  type StepStats,
  signInBurst,
  soak,
  type Target,
} from './users.ts';

const run = promisify(execFile);
const log = (s: string) => process.stdout.write(`${s}\n`);

const FACTOR = envNumber(process.env.BENCH_SCALE_FACTOR, 1);
const scaled = (env: string | undefined, full: number, min: number) =>
  Math.max(min, Math.round(envNumber(env, full * FACTOR)));
const USERS = scaled(process.env.BENCH_USERS, 200, 10);
const JOBS = scaled(process.env.BENCH_JOBS, 10_000, 100);
const USER_JOBS = Math.min(scaled(process.env.BENCH_USER_JOBS, 500, 10), Math.floor(JOBS / 2));
const SSE = scaled(process.env.BENCH_SSE, 200, 10);
const WS = scaled(process.env.BENCH_WS, 5000, 10);
const SECONDS = envNumber(process.env.BENCH_SECONDS, 10);
const POLL_SECONDS = envNumber(process.env.BENCH_POLL_SECONDS, 5);
const ARRAY_TASKS = Math.max(1, envNumber(process.env.BENCH_ARRAY_TASKS, 25));
const EVENT_SAMPLES = scaled(process.env.BENCH_EVENT_SAMPLES, 20, 3);
const RUNNING = Math.min(40, Math.max(2, Math.round(40 * FACTOR)));
const EVENT_HOLD_S = envNumber(process.env.BENCH_EVENT_HOLD_SECONDS, 3);
const JOB_WAIT_S = envNumber(process.env.BENCH_JOB_WAIT_SECONDS, 2 * POLL_SECONDS + 20);
const WITH_JUPYTERHUB = process.env.BENCH_JUPYTERHUB !== '0';
const SOAK_MINUTES = envNumber(process.env.BENCH_SOAK_MINUTES, 30);
const SOAK_WS = envNumber(process.env.BENCH_SOAK_WS, 20);
const WS_MESSAGE_S = envNumber(process.env.BENCH_WS_MESSAGE_SECONDS, 3);
/** 2 a second: the rate at which JupyterHub's hub saturates a core (about 2 logins/s, issue 20). */
const ARRIVALS = envNumber(process.env.BENCH_ARRIVALS_PER_SECOND, 2);
const ROUNDS = Math.max(1, envNumber(process.env.BENCH_ROUNDS, 3));
const WITH_HA = process.env.BENCH_HA !== '0';
/** The simulated users' password (their accounts exist only in the benchmark's gateway). */
const PASSWORD = 'bench-scale-password';
const FULL_SCALE = FACTOR >= 1;

const CLUSTER_NAME = process.env.BENCH_CLUSTER_NAME ?? 'atriumscale';
const CLUSTER_PORT = envNumber(process.env.BENCH_CLUSTER_PORT, 6867);
const CLUSTER_BASE = process.env.BENCH_CLUSTER_BASE ?? `/tmp/atrium-slurm-${CLUSTER_NAME}`;
const SLURM_CONF = path.join(CLUSTER_BASE, 'etc', 'slurm.conf');
const CLUSTER_ENV = {
  ...process.env,
  CLUSTER_NAME,
  CLUSTER_BASE,
  CLUSTER_PORT: String(CLUSTER_PORT),
  NODE_PREFIX: `${CLUSTER_NAME}n`,
  // No accounting: any Unix user may submit (no association per benchmark user).
  WITH_DBD: '0',
  // A pending array is one job record; room for every job, the busy user's single ones and the samples.
  EXTRA_CONF: `MaxJobCount=${Math.max(20_000, 3 * JOBS)}`,
};
const SLURM_ENV = { ...process.env, SLURM_CONF };
/** The commands the gateway runs, each counted by its wrapper. */
const COMMANDS = ['squeue', 'sinfo', 'sbatch', 'scancel', 'scontrol', 'sacct', 'sacctmgr'];

const userName = (i: number) => `benchu${String(i + 1).padStart(3, '0')}`;

function clusterScript(sub: 'up' | 'down'): void {
  execFileSync('bash', [path.join(ROOT, 'scripts', 'cluster.sh'), sub], {
    env: CLUSTER_ENV,
    stdio: ['ignore', 'inherit', 'inherit'],
    timeout: 300_000,
  });
}

function ensureUsers(names: string[]): number {
  let made = 0;
  for (const u of names) {
    if (spawnSync('id', [u], { stdio: 'ignore' }).status === 0) continue;
    // No home: the jobs write nowhere (-o /dev/null, -D /tmp) and never log in.
    execFileSync('useradd', ['-M', '-d', '/nonexistent', '-s', '/usr/sbin/nologin', u]);
    made++;
  }
  return made;
}

/** A wrapper per Slurm command that counts its calls in `<dir>/<command>.calls` (one line per call). */
function countingBinDir(dir: string): string {
  const bin = path.join(dir, 'bin');
  const counts = path.join(dir, 'counts');
  fs.mkdirSync(bin, { recursive: true });
  fs.mkdirSync(counts, { recursive: true });
  fs.chmodSync(dir, 0o755);
  fs.chmodSync(bin, 0o755);
  // Commands run as the users (sbatch, scancel) count too.
  fs.chmodSync(counts, 0o1777);
  for (const c of COMMANDS) {
    const real =
      spawnSync('sh', ['-c', `command -v ${c}`], { encoding: 'utf8' }).stdout.trim() || `/usr/bin/${c}`;
    const file = path.join(counts, `${c}.calls`);
    fs.writeFileSync(file, '');
    fs.chmodSync(file, 0o666);
    fs.writeFileSync(path.join(bin, c), `#!/bin/sh\necho >>'${file}'\nexec '${real}' "$@"\n`, {
      mode: 0o755,
    });
  }
  return bin;
}

function readCounts(dir: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of COMMANDS) {
    const f = path.join(dir, 'counts', `${c}.calls`);
    out[c] = fs.existsSync(f) ? fs.statSync(f).size : 0;
  }
  return out;
}

function callsIn(before: Record<string, number>, after: Record<string, number>): number {
  return COMMANDS.reduce((n, c) => n + (after[c] ?? 0) - (before[c] ?? 0), 0);
}

async function sbatch(user: string, args: string[]): Promise<string> {
  const { stdout } = await run(
    'runuser',
    ['-u', user, '--', 'sbatch', '--parsable', '-o', '/dev/null', '-D', '/tmp', '-t', '60', ...args],
    { env: SLURM_ENV },
  );
  return stdout.trim().split(';')[0]!;
}

interface Submitted {
  busyJobs: string[];
  tasks: number;
  sbatchCalls: number;
  seconds: number;
}

/**
 * The busy user (the first) gets USER_JOBS single held jobs and the running ones; the others share
 * the rest as arrays, alternately held and pending until a begin time a week away.
 */
async function submitJobs(users: string[]): Promise<Submitted> {
  const t0 = Date.now();
  const busy = users[0]!;
  const others = users.slice(1);
  const wrap = ['--wrap', 'sleep 3600'];
  const single: (() => Promise<string>)[] = [];
  for (let i = 0; i < USER_JOBS; i++)
    single.push(() => sbatch(busy, ['--hold', '-J', 'scale-mine', ...wrap]));
  for (let i = 0; i < RUNNING; i++)
    single.push(() =>
      sbatch(others[i % others.length]!, ['-J', 'scale-running', '-c', '1', '--mem=64M', ...wrap]),
    );
  let left = JOBS - USER_JOBS - RUNNING;
  const arrays: (() => Promise<string>)[] = [];
  for (let i = 0; left > 0; i++) {
    const n = Math.min(ARRAY_TASKS, left);
    left -= n;
    const user = others[i % others.length]!;
    const when = i % 2 === 0 ? ['--hold'] : ['--begin=now+7days'];
    arrays.push(() => sbatch(user, [...when, `--array=0-${n - 1}`, '-J', 'scale-array', ...wrap]));
  }
  const ids = await pool(single, 8);
  await pool(arrays, 8);
  return {
    busyJobs: ids.slice(0, USER_JOBS),
    tasks: JOBS,
    sbatchCalls: single.length + arrays.length,
    seconds: round((Date.now() - t0) / 1000, 1),
  };
}

// ---- the benchmark's gateways ------------------------------------------------------------------------

interface ScaleGateway {
  child: Child;
  port: number;
  pid: number;
  cookie: string;
  csrf: string;
  username: string;
  session: string;
}

/** gateway.ts in a process of its own, with an IPC channel for memory probes after full GCs. */
async function startScaleGateway(name: string, opts: ScaleGatewayOptions): Promise<ScaleGateway> {
  const child = start(
    name,
    [
      process.execPath,
      '--expose-gc',
      '--import',
      'tsx',
      path.join(ROOT, 'bench', 'scale', 'gateway.ts'),
      JSON.stringify(opts),
    ],
    { ipc: true },
  );
  const info = await waitForJson<Omit<ScaleGateway, 'child'>>(child, 'ready', 120_000);
  return { ...info, child };
}

// ---- the gateway's /metrics ---------------------------------------------------------------------------

type Samples = Map<string, number>;

function parseMetrics(text: string): Samples {
  const out: Samples = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/** The sum of every series of `name` whose labels include `match` (e.g. 'cluster="hpc"'). */
function metric(m: Samples, name: string, match = ''): number {
  let sum = 0;
  for (const [k, v] of m) {
    const base = k.includes('{') ? k.slice(0, k.indexOf('{')) : k;
    if (base === name && k.includes(match)) sum += v;
  }
  return sum;
}

/** The bucket bound (s) under which `q` of a histogram's observations between two scrapes fall. */
function bucketQuantile(before: Samples, after: Samples, name: string, q: number): number | null {
  const bounds: { le: number; n: number }[] = [];
  for (const [k, v] of after) {
    const m = new RegExp(`^${name}_bucket\\{(?:.*,)?le="([^"]+)"`).exec(k);
    if (m)
      bounds.push({
        le: m[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(m[1]),
        n: v - (before.get(k) ?? 0),
      });
  }
  bounds.sort((a, b) => a.le - b.le);
  const total = bounds.at(-1)?.n ?? 0;
  if (total === 0) return null;
  return bounds.find((b) => b.n >= q * total)?.le ?? null;
}

// ---- measuring --------------------------------------------------------------------------------------

/** Sequential GETs of `url` for at least `seconds` and 5 requests: p50, p99 (ms), the reply's size. */
async function latency(url: string, headers: Record<string, string>, seconds: number) {
  const times: number[] = [];
  let bytes = 0;
  let errors = 0;
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end || times.length < 5) {
    const t = performance.now();
    const r = await fetch(url, { headers });
    const body = await r.arrayBuffer();
    times.push(performance.now() - t);
    bytes = body.byteLength;
    if (!r.ok) errors++;
  }
  return { requests: times.length, p50_ms: pct(times, 50), p99_ms: pct(times, 99), bytes, errors };
}

/** A printed table of request figures, one row each. */
function table(first: string, rows: Record<string, StepStats>): void {
  const pad = (v: unknown, n: number) => String(v ?? '-').padStart(n);
  log(
    `${first.padEnd(24)} ${pad('requests', 9)} ${pad('req/s', 8)} ${pad('p50 ms', 8)} ${pad('p99 ms', 8)} ${pad('errors', 7)}`,
  );
  for (const [k, v] of Object.entries(rows))
    log(
      `${k.padEnd(24)} ${pad(v.requests, 9)} ${pad(v.req_per_s, 8)} ${pad(v.p50_ms, 8)} ${pad(v.p99_ms, 8)} ${pad(v.errors, 7)}` +
        (v.statuses ? `  ${JSON.stringify(v.statuses)}` : ''),
    );
}

function reportClicks(label: string, c: ClickThroughResult): void {
  log(
    `${label}: ${c.signed_in.length}/${c.users} signed in (${c.arrivals_per_s ?? 'all at once'}/s), ` +
      `${c.sessions_started} sessions started (${c.sessions_stopped} stopped), ${c.jobs_submitted} jobs submitted, ` +
      `in ${c.seconds}s; ${c.jobs_finished} seen finished, ${c.outputs_read} outputs read ` +
      `(output answers by status ${JSON.stringify(c.job_output_answers)})`,
  );
  table('step', { ...c.steps, overall: c.overall });
}

/** Per cell the median over the rounds; ours/JupyterHub as the median of each round's ratio. */
function sameLoadSummary(rounds: Record<string, StepStats>[], concurrency: number) {
  const names = Object.keys(rounds[0] ?? {});
  const med = (xs: (number | null)[]) => {
    const m = median(xs.filter((x): x is number => x !== null));
    return Number.isNaN(m) ? null : round(m, 1);
  };
  const cells: Record<string, StepStats & { req_per_s_rounds: number[] }> = {};
  for (const n of names) {
    const rs = rounds.map((r) => r[n]!);
    cells[n] = {
      requests: rs.reduce((a, r) => a + r.requests, 0),
      errors: rs.reduce((a, r) => a + r.errors, 0),
      req_per_s: med(rs.map((r) => r.req_per_s)) ?? 0,
      p50_ms: med(rs.map((r) => r.p50_ms)),
      p99_ms: med(rs.map((r) => r.p99_ms)),
      req_per_s_rounds: rs.map((r) => r.req_per_s),
    };
  }
  const ratio = (a: string, b: string) => {
    if (!names.includes(a) || !names.includes(b)) return null;
    const each = rounds.map((r) => (r[b]!.req_per_s > 0 ? r[a]!.req_per_s / r[b]!.req_per_s : Number.NaN));
    const m = median(each);
    return Number.isNaN(m) ? null : round(m, 2);
  };
  return {
    concurrency,
    seconds_per_cell: SECONDS,
    rounds: rounds.length,
    cells,
    ratios: {
      dashboard_vs_users_api: ratio('ours_dashboard', 'jupyterhub_users_api'),
      sessions_vs_users_api: ratio('ours_sessions', 'jupyterhub_users_api'),
      me_vs_users_api: ratio('ours_me', 'jupyterhub_users_api'),
      sessions_vs_home: ratio('ours_sessions', 'jupyterhub_home'),
    },
  };
}

const HAPROXY_NEED: PackageNeed = {
  packages: ['haproxy'],
  why: 'two gateways behind HAProxy',
  present: () => haproxyMissing() === undefined,
};

/**
 * Two gateways (gateway.ts) on a new database of one PostgreSQL behind HAProxy running the shipped
 * configuration, following the same jobs (one polls, by the lease); the click-through through HAProxy.
 */
async function twoGateways(
  gwOpts: ScaleGatewayOptions,
  click: Omit<Parameters<typeof clickThrough>[0], 'base'>,
  procs: { stop: () => Promise<void> }[],
) {
  const stopPg = ensurePostgres('/tmp/atrium-postgres-scale', await freePort(), log);
  try {
    const databaseUrl = await createTestDatabase('scale');
    const lbPort = await freePort();
    const publicUrl = `http://127.0.0.1:${lbPort}`;
    const t0 = Date.now();
    // One after the other: the first creates the users' accounts, the second finds them.
    const a = await startScaleGateway('gateway-a', { ...gwOpts, databaseUrl, publicUrl });
    procs.push({ stop: () => stop(a.child, 10_000) });
    const b = await startScaleGateway('gateway-b', { ...gwOpts, databaseUrl, publicUrl });
    procs.push({ stop: () => stop(b.child, 10_000) });
    const lb = await startHaproxy(
      [
        { name: 'gwa', port: a.port },
        { name: 'gwb', port: b.port },
      ],
      lbPort,
    );
    procs.push({ stop: async () => lb.stop() });
    const upEnd = Date.now() + 60_000;
    for (;;) {
      const st = await lb.status();
      if (st.gwa === 'UP' && st.gwb === 'UP') break;
      if (Date.now() > upEnd) throw new Error(`HAProxy: gateways not both up: ${JSON.stringify(st)}`);
      await sleep(250);
    }
    // A new database: the busy user's held jobs that are left (the cancelled ones may be gone, and
    // the click-through's sessions and jobs are another database's).
    const listed = execFileSync(
      'squeue',
      ['-h', '-a', '-t', 'PD', '-n', 'scale-mine', '-u', a.username, '-o', '%i'],
      {
        env: SLURM_ENV,
        encoding: 'utf8',
      },
    )
      .split('\n')
      .filter(Boolean).length;
    await waitTracked(publicUrl, { cookie: a.cookie }, listed);
    const setupS = round((Date.now() - t0) / 1000, 1);
    const statsBefore = await lb.admin('show stat');
    const cpuBefore = sampleCpu();
    const users = await clickThrough({ ...click, base: publicUrl });
    const cpu = cpuBetween(
      cpuBefore,
      sampleCpu(),
      { gwa: a.pid, gwb: b.pid, load_generator: process.pid },
      CPU_GROUPS,
    );
    const statsAfter = await lb.admin('show stat');
    // HAProxy's total sessions per server (field 8, stot) over the click-through.
    const stot = (csv: string) =>
      Object.fromEntries(
        csv
          .split('\n')
          .map((l) => l.split(','))
          .filter((f) => f[0] === 'atrium_gateways' && f[1] && f[1] !== 'BACKEND')
          .map((f) => [f[1]!, Number(f[7] ?? 0)]),
      ) as Record<string, number>;
    const before = stot(statsBefore);
    const perGateway = Object.fromEntries(
      Object.entries(stot(statsAfter)).map(([k, v]) => [k, v - (before[k] ?? 0)]),
    );
    const rss = {
      gwa: round((rssOf(a.pid) ?? 0) / 1024 / 1024, 1),
      gwb: round((rssOf(b.pid) ?? 0) / 1024 / 1024, 1),
    };
    lb.stop();
    await stop(a.child, 10_000);
    await stop(b.child, 10_000);
    return {
      gateways: 2,
      database: 'postgresql',
      setup_s: setupS,
      users,
      requests_per_gateway: perGateway,
      rss_mb: rss,
      cpu_s: cpu,
    };
  } finally {
    stopPg();
  }
}

/** Waits until the gateway at `base` lists `expected` jobs of the busy user (it follows them all). */
async function waitTracked(
  base: string,
  headers: Record<string, string>,
  expected = USER_JOBS,
): Promise<void> {
  const end = Date.now() + Number(process.env.BENCH_TRACK_WAIT_MS ?? 120_000 + JOBS * 20);
  for (;;) {
    const r = await fetch(`${base}/api/jobs?state=all&limit=${USER_JOBS + 100}`, { headers });
    const body = await r.text();
    const n = r.ok ? (JSON.parse(body) as { jobs: unknown[] }).jobs.length : 0;
    if (n >= expected) return;
    if (Date.now() > end)
      throw new Error(
        `the gateway at ${base} lists ${n} of the busy user\u2019s ${expected} jobs (HTTP ${r.status}${r.ok ? '' : `: ${body.slice(0, 200)}`})`,
      );
    await sleep(200);
  }
}

async function main(): Promise<Record<string, unknown>> {
  if (process.getuid?.() !== 0) throw new Error('run as root (jobs are submitted as their users)');
  const startedAt = new Date();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-bench-scale-'));
  const users = Array.from({ length: USERS }, (_, i) => userName(i));
  log(
    `scale benchmark: ${JOBS} jobs of ${USERS} users (${USER_JOBS} for ${users[0]}), ${SSE} event streams, ` +
      `${WS} WebSockets, ${SECONDS}s per cell, poll every ${POLL_SECONDS}s; cluster ${CLUSTER_NAME} on port ${CLUSTER_PORT}`,
  );
  const t0 = Date.now();
  clusterScript('up');
  const clusterUpS = round((Date.now() - t0) / 1000, 1);
  const gatewayProcs: { stop: () => Promise<void> }[] = [];
  try {
    const madeUsers = ensureUsers(users);
    const binDir = countingBinDir(work);
    const submitted = await submitJobs(users);
    const squeueLines = execFileSync('squeue', ['-h', '-a', '-t', 'all', '-o', '%i'], {
      env: SLURM_ENV,
      encoding: 'utf8',
    })
      .trim()
      .split('\n').length;
    log(
      `submitted ${submitted.tasks} jobs in ${submitted.sbatchCalls} sbatch calls (${submitted.seconds}s; ` +
        `${madeUsers} users created); squeue lists ${squeueLines} lines`,
    );

    const app = start('app', nodeArgv('upstream.ts'));
    gatewayProcs.push({ stop: () => stop(app) });
    const { port: appPort } = await waitForJson<{ port: number }>(app, 'port');
    const gwOpts: ScaleGatewayOptions = {
      slurmConf: SLURM_CONF,
      binDir,
      pollSeconds: POLL_SECONDS,
      users,
      appPort,
      password: PASSWORD,
    };
    const gwT0 = Date.now();
    const gw = await startScaleGateway('gateway', gwOpts);
    const stopGw = () => stop(gw.child, 10_000);
    gatewayProcs.push({ stop: stopGw });
    const base = `http://127.0.0.1:${gw.port}`;
    const headers = { cookie: gw.cookie };
    const scrape = async () => parseMetrics(await (await fetch(`${base}/metrics`)).text());

    // Every job of the busy user in the database, i.e. the gateway follows them.
    await waitTracked(base, headers);
    const trackedS = round((Date.now() - gwT0) / 1000, 1);
    log(
      `gateway on port ${gw.port} (pid ${gw.pid}) lists all ${USER_JOBS} of ${gw.username}'s jobs ${trackedS}s after its start`,
    );

    // ---- jobs: polls, calls, RSS, CPU -------------------------------------------------------------
    const pollCellS = Math.max(SECONDS, 3 * POLL_SECONDS);
    const m0 = await scrape();
    const c0 = readCounts(work);
    const cpu0 = cpuMicros(gw.pid) ?? 0;
    await sleep(pollCellS * 1000);
    const m1 = await scrape();
    const c1 = readCounts(work);
    const cpu1 = cpuMicros(gw.pid) ?? 0;
    const d = (name: string, match = '') => metric(m1, name, match) - metric(m0, name, match);
    const polls = d('atrium_scheduler_polls_total', 'cluster="hpc"');
    const jobsCell = {
      seconds: pollCellS,
      polls,
      poll_ms_mean: polls
        ? round((1000 * d('atrium_scheduler_poll_duration_seconds_sum', 'cluster="hpc"')) / polls, 1)
        : null,
      poll_ms_p99_bucket: ((q) => (q === null ? null : q * 1000))(
        bucketQuantile(m0, m1, 'atrium_scheduler_poll_duration_seconds', 0.99),
      ),
      apply_ms_mean: polls
        ? round((1000 * d('atrium_scheduler_poll_apply_duration_seconds_sum', 'cluster="hpc"')) / polls, 1)
        : null,
      calls_counted: Object.fromEntries(COMMANDS.map((c) => [c, (c1[c] ?? 0) - (c0[c] ?? 0)])),
      // Nothing else runs in this cell: every call counted is a poll's.
      calls_per_poll: polls ? round(callsIn(c0, c1) / polls, 2) : null,
      poll_period_s: polls ? round(pollCellS / polls, 1) : null,
      gateway_calls_counter: d('atrium_scheduler_calls_total', 'cluster="hpc"'),
      cpu_ms_per_poll: polls ? round((cpu1 - cpu0) / 1000 / polls, 1) : null,
      rss_mb: round((rssOf(gw.pid) ?? 0) / 1024 / 1024, 1),
      jobs_in_last_poll: metric(m1, 'atrium_jobs', 'cluster="hpc"'),
    };
    log(
      `jobs: ${polls} polls in ${pollCellS}s, poll ${jobsCell.poll_ms_mean} ms (mean; p99 <= ${jobsCell.poll_ms_p99_bucket} ms), ` +
        `apply ${jobsCell.apply_ms_mean} ms, calls ${JSON.stringify(jobsCell.calls_counted)}, ` +
        `CPU ${jobsCell.cpu_ms_per_poll} ms/poll, RSS ${jobsCell.rss_mb} MB`,
    );

    // ---- pages of the busy user ------------------------------------------------------------------
    const pages = {
      my_jobs: await latency(`${base}/api/jobs?limit=200`, headers, SECONDS),
      my_jobs_all: await latency(`${base}/api/jobs?state=all&limit=${USER_JOBS}`, headers, SECONDS),
      queue: await latency(`${base}/api/queue`, headers, SECONDS),
      queue_mine: await latency(`${base}/api/queue?mine=1`, headers, SECONDS),
      sessions: await latency(`${base}/api/sessions`, headers, SECONDS),
    };
    for (const [k, v] of Object.entries(pages))
      log(
        `page ${k}: p50 ${v.p50_ms} ms, p99 ${v.p99_ms} ms, ${v.requests} requests, ${v.bytes} bytes, ${v.errors} errors`,
      );

    // ---- live events: Slurm's change to the event in K streams ----------------------------------
    const streams = Array.from({ length: SSE }, () => new EventStream(`${base}/api/events`, headers));
    await Promise.all(streams.map((s) => s.opened));
    const sseClients = metric(await scrape(), 'atrium_sse_clients');
    const delays: number[] = [];
    let missed = 0;
    const victims = submitted.busyJobs.slice(0, EVENT_SAMPLES);
    for (const jobId of victims) {
      const r = await fetch(`${base}/api/jobs/hpc/${jobId}/cancel`, {
        method: 'POST',
        headers: { ...headers, 'x-csrf-token': gw.csrf },
      });
      const answered = Date.now();
      if (!r.ok) throw new Error(`cancel ${jobId}: ${r.status} ${await r.text()}`);
      const got = await Promise.allSettled(
        streams.map((s) =>
          s.next(
            (e) => e.type === 'job' && e.data.jobId === jobId && e.data.state === 'cancelled',
            2 * POLL_SECONDS * 1000 + 10_000,
            answered - 50,
          ),
        ),
      );
      for (const g of got) {
        if (g.status === 'fulfilled') delays.push(Math.max(0, g.value.at - answered));
        else missed++;
      }
    }
    for (const s of streams) s.close();
    const events = {
      streams: SSE,
      sse_clients_metric: sseClients,
      samples: victims.length,
      deliveries: delays.length,
      missed,
      p50_ms: pct(delays, 50),
      p99_ms: pct(delays, 99),
    };
    log(
      `events: ${victims.length} cancels to ${SSE} streams: p50 ${events.p50_ms} ms, p99 ${events.p99_ms} ms, ${missed} missed`,
    );

    // ---- WebSockets held open through the proxy -------------------------------------------------
    const wsUrl = `ws://127.0.0.1:${gw.port}/user/${gw.username}/${gw.session}/ws`;
    const rssBefore = rssOf(gw.pid) ?? 0;
    const fdsBefore = fdCount(gw.pid) ?? 0;
    const sockets: WebSocket[] = [];
    let wsErrors = 0;
    const open = () =>
      new Promise<void>((resolve) => {
        const ws = new WebSocket(wsUrl, { headers, perMessageDeflate: false });
        ws.on('error', () => undefined);
        ws.once('open', () => {
          sockets.push(ws);
          resolve();
        });
        ws.once('unexpected-response', () => {
          wsErrors++;
          resolve();
        });
        ws.once('close', () => resolve());
      });
    const openT0 = Date.now();
    await pool(
      Array.from({ length: WS }, () => open),
      100,
    );
    const openS = round((Date.now() - openT0) / 1000, 1);
    const mOpen0 = await scrape();
    // Held open for the cell (at least two message periods): a message on each every WS_MESSAGE_S,
    // the sockets' phases spread over the period; every echo counted.
    const holdS = Math.max(SECONDS, 2 * WS_MESSAGE_S);
    let sent = 0;
    let echoed = 0;
    for (const ws of sockets) ws.on('message', () => echoed++);
    const holdEnd = Date.now() + holdS * 1000;
    const timers = sockets.map((ws, i) => {
      const send = () => {
        if (Date.now() < holdEnd && ws.readyState === WebSocket.OPEN) {
          ws.send('x'.repeat(64));
          sent++;
        }
      };
      let every: NodeJS.Timeout | undefined;
      const first = setTimeout(
        () => {
          send();
          every = setInterval(send, WS_MESSAGE_S * 1000);
        },
        (i / sockets.length) * WS_MESSAGE_S * 1000,
      );
      return () => {
        clearTimeout(first);
        clearInterval(every);
      };
    });
    await sleep(holdS * 1000);
    for (const t of timers) t();
    // The last echoes.
    const echoEnd = Date.now() + 10_000;
    while (echoed < sent && Date.now() < echoEnd) await sleep(50);
    const mOpen1 = await scrape();
    const rssOpen = rssOf(gw.pid) ?? 0;
    const openMetric = metric(mOpen1, 'atrium_proxy_open_websockets');
    const closeT0 = Date.now();
    for (const ws of sockets) ws.close();
    let left = openMetric;
    const closeEnd = Date.now() + 30_000;
    while (Date.now() < closeEnd) {
      left = metric(await scrape(), 'atrium_proxy_open_websockets');
      if (left === 0) break;
      await sleep(100);
    }
    await sleep(500);
    const lagP99 = metric(mOpen1, 'atrium_process_nodejs_eventloop_lag_p99_seconds');
    const ws = {
      requested: WS,
      opened: sockets.length,
      errors: wsErrors,
      open_seconds: openS,
      hold_seconds: holdS,
      message_every_s: WS_MESSAGE_S,
      sent,
      echoed,
      open_metric: openMetric,
      left_open_after_close: left,
      close_seconds: round((Date.now() - closeT0) / 1000, 1),
      rss_mb_before: round(rssBefore / 1024 / 1024, 1),
      rss_mb_open: round(rssOpen / 1024 / 1024, 1),
      rss_mb_after: round((rssOf(gw.pid) ?? 0) / 1024 / 1024, 1),
      kb_per_connection: sockets.length ? round((rssOpen - rssBefore) / 1024 / sockets.length, 1) : null,
      fds_before: fdsBefore,
      fds_after: fdCount(gw.pid),
      // perf_hooks' histogram since the scrape before the cell, less its 10 ms sampling resolution.
      event_loop_p99_ms: round(Math.max(0, lagP99 - 0.01) * 1000, 1),
      event_loop_max_ms: round(
        Math.max(0, metric(mOpen1, 'atrium_process_nodejs_eventloop_lag_max_seconds') - 0.01) * 1000,
        1,
      ),
      // The 50 ms sampler of atrium_event_loop_delay_seconds has fewer samples: one stall weighs more.
      event_loop_p99_bucket_ms: ((q) => (q === null ? null : q * 1000))(
        bucketQuantile(mOpen0, mOpen1, 'atrium_event_loop_delay_seconds', 0.99),
      ),
    };
    log(
      `ws: ${ws.opened}/${WS} open in ${openS}s, RSS ${ws.rss_mb_before} -> ${ws.rss_mb_open} MB ` +
        `(${ws.kb_per_connection} KB each), event loop p99 ${ws.event_loop_p99_ms} ms, ${left} left after close`,
    );

    // ---- 200 users clicking through ----------------------------------------------------------------
    // The batch jobs' output goes here and is removed with the work directory.
    const jobDir = path.join(work, 'jobs');
    fs.mkdirSync(jobDir);
    fs.chmodSync(jobDir, 0o1777);
    const clickOpts = {
      users,
      password: PASSWORD,
      cluster: 'hpc',
      eventSeconds: EVENT_HOLD_S,
      jobWaitSeconds: JOB_WAIT_S,
      jobDir,
      arrivalsPerSecond: ARRIVALS,
    };
    // BENCH_PROFILE_DIR: the gateway's CPU profile over the click-through (a .cpuprofile for Chrome's
    // DevTools or speedscope).
    const profileDir = process.env.BENCH_PROFILE_DIR;
    if (profileDir) await ask(gw.child, { type: 'profile-start' });
    const cpuBefore = sampleCpu();
    const clicks = await clickThrough({ ...clickOpts, base });
    if (profileDir) {
      fs.mkdirSync(profileDir, { recursive: true });
      const file = path.join(profileDir, `scale-users-${Date.now()}.cpuprofile`);
      await ask(gw.child, { type: 'profile-stop', file }, 60_000);
      log(`users: the gateway's CPU profile is ${file}`);
    }
    const clicksCpu = cpuBetween(
      cpuBefore,
      sampleCpu(),
      { gateway: gw.pid, load_generator: process.pid },
      CPU_GROUPS,
    );
    reportClicks('users', clicks);
    log(`users: CPU seconds ${JSON.stringify(clicksCpu)}`);

    // ---- the same concurrency: our pages and JupyterHub's, in interleaved rounds ------------------
    const signed = clicks.signed_in;
    let hub: HubSide | null = null;
    let hubSkipped = 'BENCH_JUPYTERHUB=0';
    if (WITH_JUPYTERHUB) {
      if (ensurePackages([JUPYTERHUB_NEED], log)) hub = await startHubSide(users);
      else hubSkipped = 'jupyterhub is not installed (see above)';
    }
    let compare: ReturnType<typeof sameLoadSummary>;
    try {
      const ours = (path: (i: number) => string): Target[] =>
        signed.map((u, i) => ({ url: `${base}${path(i)}`, headers: { cookie: u.cookie } }));
      const cells: Record<string, Target[]> = {
        ours_sessions: ours(() => '/api/sessions'),
        ours_me: ours(() => '/api/me'),
        // The dashboard's calls, each user on one of them in turn.
        ours_dashboard: ours((i) => DASHBOARD_CALLS[i % DASHBOARD_CALLS.length]!),
        ...(hub ? { jupyterhub_users_api: hub.usersApi, jupyterhub_home: hub.home } : {}),
      };
      const rounds: Record<string, StepStats>[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        // Ours first in even rounds, JupyterHub's first in odd ones: a burst of other work on the
        // machine weighs on both sides alike.
        const names = Object.keys(cells);
        const order = r % 2 === 0 ? names : [...names].reverse();
        const got: Record<string, StepStats> = {};
        for (const name of order) got[name] = await hammer(cells[name]!, SECONDS);
        rounds.push(got);
      }
      compare = sameLoadSummary(rounds, signed.length);
    } finally {
      await hub?.stop();
    }
    const hubInfo = hub
      ? {
          version: hub.version,
          proxy: hub.proxy,
          users: hub.users,
          setup_s: hub.setup_s,
          signed_in: hub.signed_in,
          sign_ins_per_s: hub.sign_ins_per_s,
        }
      : { skipped: hubSkipped };
    table(`same load (${ROUNDS} rounds)`, compare.cells);
    log(
      `ours/JupyterHub req/s (median of the rounds' ratios): ${JSON.stringify(compare.ratios)}${hub ? '' : ' (JupyterHub skipped)'}`,
    );

    // ---- everyone signing in at the same moment: a capacity figure ------------------------------
    const burst = await signInBurst(base, users, PASSWORD);
    log(
      `sign-in burst: ${burst.signed_in}/${burst.users} in ${burst.seconds}s, ${burst.sign_ins_per_s}/s ` +
        `(p50 ${burst.p50_ms} ms, p99 ${burst.p99_ms} ms); JupyterHub's login form (no password check): ` +
        `${hub ? `${hub.sign_ins_per_s}/s` : 'skipped'}`,
    );

    // ---- batchspawner's polling, as its documented cost model -----------------------------------
    const polling = batchspawnerModel(USERS, jobsCell.poll_period_s ?? POLL_SECONDS, jobsCell.calls_per_poll);
    log(
      `polling at ${USERS} sessions (model): batchspawner ${polling.batchspawner_calls_per_our_poll_period} squeue ` +
        `per ${polling.poll_period_s}s, ours ${polling.ours_calls_per_poll_period} calls (counted)`,
    );

    // ---- soak --------------------------------------------------------------------------------------
    let soaked: Awaited<ReturnType<typeof soak>> | { skipped: string } = { skipped: 'BENCH_SOAK_MINUTES=0' };
    if (SOAK_MINUTES > 0 && signed.length > 0) {
      log(
        `soak: ${SOAK_MINUTES} min of WebSocket churn (${SOAK_WS} at a time), session starts and stops, page loads`,
      );
      soaked = await soak({
        base,
        gatewayPid: gw.pid,
        users: signed,
        cluster: 'hpc',
        app: clicks.app,
        wsUrl,
        wsHeaders: headers,
        minutes: SOAK_MINUTES,
        wsConcurrency: SOAK_WS,
        memory: () => probe(gw.child, 30_000),
      });
      log(`soak: ${JSON.stringify(soaked)}`);
    }

    const finalRss = round((rssOf(gw.pid) ?? 0) / 1024 / 1024, 1);
    await stopGw();

    // ---- two gateways on one PostgreSQL behind HAProxy ------------------------------------------
    let ha: Awaited<ReturnType<typeof twoGateways>> | { skipped: string } = { skipped: 'BENCH_HA=0' };
    if (WITH_HA) {
      const needs = [HAPROXY_NEED, ...(process.env.ATRIUM_TEST_POSTGRES_URL ? [] : [POSTGRES_NEED])];
      if (ensurePackages(needs, log)) {
        ha = await twoGateways(gwOpts, { ...clickOpts, users }, gatewayProcs);
        reportClicks('ha users', ha.users);
        log(`ha: requests per gateway ${JSON.stringify(ha.requests_per_gateway)}`);
        log(`ha: CPU seconds ${JSON.stringify(ha.cpu_s)}`);
      } else ha = { skipped: 'haproxy or postgresql is not installed (see above)' };
    }
    const haClicks = 'users' in ha ? ha.users : null;

    const goals = {
      one_squeue_one_sinfo_per_poll:
        polls > 0 && jobsCell.calls_counted.squeue === polls && jobsCell.calls_counted.sinfo === polls,
      poll_to_event_p99_under_1s: events.p99_ms !== null && events.p99_ms < 1000 && missed === 0,
      rss_under_400mb: jobsCell.rss_mb < 400,
      my_jobs_under_200ms: (pages.my_jobs_all.p99_ms ?? Number.POSITIVE_INFINITY) < 200,
      ws_rss_under_300mb: ws.rss_mb_open < 300,
      ws_event_loop_p99_under_50ms: ws.event_loop_p99_ms < 50,
      ws_none_left_after_close: left === 0,
      users_no_errors: clicks.overall.errors === 0 && clicks.signed_in.length === USERS,
      users_p99_under_1s: (clicks.overall.p99_ms ?? Number.POSITIVE_INFINITY) < 1000,
      dashboard_3x_jupyterhub_users_api:
        compare.ratios.dashboard_vs_users_api === null ? null : compare.ratios.dashboard_vs_users_api >= 3,
      // After full GCs when the probe answered (RSS as found swings by tens of MB with the collector).
      soak_rss_within_10pct:
        'minutes' in soaked
          ? (soaked.gc?.rss_end_vs_start ?? soaked.rss_end_vs_start ?? Number.POSITIVE_INFINITY) <= 1.1
          : null,
      soak_handles_within_10pct:
        'minutes' in soaked
          ? (soaked.gc?.handles_end_vs_start ?? soaked.fds_end_vs_start ?? Number.POSITIVE_INFINITY) <= 1.1
          : null,
      ha_users_no_errors: haClicks
        ? haClicks.overall.errors === 0 && haClicks.signed_in.length === USERS
        : null,
      ha_users_p99_under_1s: haClicks ? (haClicks.overall.p99_ms ?? Number.POSITIVE_INFINITY) < 1000 : null,
    };
    return {
      bench: 'scale',
      date: startedAt.toISOString(),
      machine: {
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model ?? '',
        memoryGb: Math.round(os.totalmem() / 1024 ** 3),
        node: process.version,
        load1: round(os.loadavg()[0] ?? 0, 2),
      },
      scale: {
        factor: FACTOR,
        jobs: JOBS,
        users: USERS,
        busy_user_jobs: USER_JOBS,
        running_jobs: RUNNING,
        array_tasks: ARRAY_TASKS,
        squeue_lines: squeueLines,
        sse_streams: SSE,
        websockets: WS,
        seconds_per_cell: SECONDS,
        event_hold_s: EVENT_HOLD_S,
        soak_minutes: SOAK_MINUTES,
        poll_seconds: POLL_SECONDS,
        arrivals_per_s: ARRIVALS,
        same_load_rounds: ROUNDS,
        ws_message_every_s: WS_MESSAGE_S,
      },
      setup: { cluster_up_s: clusterUpS, submit_s: submitted.seconds, gateway_tracks_all_s: trackedS },
      jobs: jobsCell,
      pages,
      events,
      ws,
      users: { ...clicks, signed_in: clicks.signed_in.length, cpu_s: clicksCpu },
      sign_in_burst: { ours: burst, jupyterhub_sign_ins_per_s: hub?.sign_ins_per_s ?? null },
      same_load: { ...compare, jupyterhub: hubInfo },
      polling_model: polling,
      soak: soaked,
      gateway_rss_mb_end: finalRss,
      ha: 'users' in ha ? { ...ha, users: { ...ha.users, signed_in: ha.users.signed_in.length } } : ha,
      goals,
    };
  } finally {
    for (const p of gatewayProcs.reverse()) await p.stop().catch(() => undefined);
    await stopAll();
    // cluster.sh down cancels every job (by the PIDs it recorded, it stops exactly its daemons).
    try {
      clusterScript('down');
    } catch (e) {
      log(`cluster down failed: ${(e as Error).message}`);
    }
    fs.rmSync(work, { recursive: true, force: true });
  }
}

const summary = await main();
const text = JSON.stringify(summary);
if (process.env.BENCH_OUT) fs.writeFileSync(process.env.BENCH_OUT, `${text}\n`);
if (FULL_SCALE && process.env.BENCH_NO_SAVE !== '1') {
  const dir = path.join(ROOT, 'bench', 'results');
  const stamp = (summary.date as string).replace(/:/g, '-').slice(0, 19);
  fs.writeFileSync(path.join(dir, `scale-${stamp}.json`), `${JSON.stringify(summary, null, 2)}\n`);
  fs.writeFileSync(path.join(dir, 'scale-latest.json'), `${JSON.stringify(summary, null, 2)}\n`);
}
log(
  `goals: ${Object.entries(summary.goals as Record<string, boolean>)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')}`,
);
log(text);
