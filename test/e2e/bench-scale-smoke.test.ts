// `npm run bench:scale` at 1/50 of its load (200 jobs of 10 users, 10 event streams, 100 WebSockets,
// 1 s per cell; the simulated users' click-through, two rounds of the same-load cells, the sign-in
// burst, a 6 s soak, and the click-through again on two gateways on PostgreSQL behind HAProxy when
// both are installed; JupyterHub only with ATRIUM_TEST_SCALE_JUPYTERHUB=1): it starts its own Slurm cluster (own ClusterName and
// ports, WITH_DBD=0, stopped by PID at the end), runs every part and writes its JSON summary. Nothing about speed is asserted: the
// figures are the benchmark's, and docs/benchmarks.md says what they mean.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLUSTER_BASE, readCluster } from '../helpers/cluster.ts';
import { ROOT } from '../helpers/gateway.ts';
import { haproxyMissing } from '../helpers/haproxy.ts';
import { postgresMissing } from '../helpers/postgres.ts';

const isRoot = process.getuid?.() === 0;
if (!isRoot)
  console.warn('[bench-scale-smoke e2e] SKIPPED: must run as root (jobs are submitted as their users)');

// Ports well away from the CI cluster's (a cluster uses 7 from its port on).
const mainPort = fs.existsSync(path.join(CLUSTER_BASE, 'cluster.json')) ? readCluster().port : 6817;
const cluster = {
  name: process.env.ATRIUM_TEST_SCALE_CLUSTER_NAME ?? 'atriumscale',
  port: Number(process.env.ATRIUM_TEST_SCALE_CLUSTER_PORT ?? mainPort + 50),
};
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-bench-scale-smoke-'));
const out = path.join(dir, 'scale.json');

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function runBench(): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench', 'scale', 'run.ts')], {
      cwd: ROOT,
      env: {
        ...process.env,
        BENCH_SCALE_FACTOR: '0.02',
        BENCH_SECONDS: '1',
        BENCH_POLL_SECONDS: '1',
        BENCH_EVENT_HOLD_SECONDS: '1',
        BENCH_SOAK_MINUTES: '0.1',
        BENCH_ROUNDS: '2',
        BENCH_WS_MESSAGE_SECONDS: '0.5',
        // JupyterHub side by side is opt-in here (Debian's jupyterhub, and ~10 s more).
        BENCH_JUPYTERHUB: process.env.ATRIUM_TEST_SCALE_JUPYTERHUB ?? '0',
        BENCH_OUT: out,
        BENCH_NO_SAVE: '1',
        BENCH_CLUSTER_NAME: cluster.name,
        BENCH_CLUSTER_PORT: String(cluster.port),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.on('exit', (code) => resolve({ code, output }));
  });
}

describe.runIf(isRoot)('bench:scale smoke (1/50)', () => {
  it('runs every part and writes its JSON summary', async () => {
    const { code, output } = await runBench();
    expect(code, output.slice(-4000)).toBe(0);
    const s = JSON.parse(fs.readFileSync(out, 'utf8'));
    expect(s.bench).toBe('scale');
    expect(s.scale).toMatchObject({ jobs: 200, users: 10, websockets: 100, seconds_per_cell: 1 });
    // The gateway followed the jobs and polled with counted commands.
    expect(s.jobs.polls).toBeGreaterThan(0);
    expect(s.jobs.calls_counted.squeue).toBeGreaterThan(0);
    expect(s.jobs.jobs_in_last_poll).toBeGreaterThanOrEqual(s.scale.squeue_lines);
    for (const page of ['my_jobs', 'my_jobs_all', 'queue', 'queue_mine', 'sessions']) {
      expect(s.pages[page].requests, page).toBeGreaterThan(0);
      expect(s.pages[page].errors, page).toBe(0);
    }
    // Every cancelled job's event reached every stream.
    expect(s.events.sse_clients_metric).toBe(s.events.streams);
    expect(s.events.missed).toBe(0);
    expect(s.events.deliveries).toBe(s.events.samples * s.events.streams);
    // Every WebSocket opened, each message was echoed, and none is left after they closed.
    expect(s.ws.opened).toBe(100);
    // At least one message on each (a second one lands in the 1 s hold unless timers run late).
    expect(s.ws.sent).toBeGreaterThanOrEqual(100);
    expect(s.ws.echoed).toBe(s.ws.sent);
    expect(s.ws.left_open_after_close).toBe(0);
    // The simulated users clicked through every step, the same-load cells and the soak ran.
    expect(s.users.signed_in).toBe(10);
    for (const step of [
      'sign_in',
      'dashboard',
      'event_stream_open',
      'form',
      'session_start',
      'session_stop',
      'job_submit',
      'job_status',
      'job_output',
    ])
      expect(s.users.steps[step]?.requests, step).toBeGreaterThan(0);
    expect(s.users.overall.requests).toBeGreaterThan(0);
    expect(s.same_load.rounds).toBe(2);
    for (const cell of ['ours_sessions', 'ours_me', 'ours_dashboard']) {
      expect(s.same_load.cells[cell].requests, cell).toBeGreaterThan(0);
      expect(s.same_load.cells[cell].req_per_s_rounds, cell).toHaveLength(2);
    }
    expect(s.same_load.jupyterhub).toBeDefined();
    expect(s.sign_in_burst.ours.signed_in).toBe(10);
    expect(s.polling_model.batchspawner_calls_per_our_poll_period).toBeGreaterThan(0);
    expect(s.soak.rss_mb_start).toBeGreaterThan(0);
    expect(s.soak.fds_end).toBeGreaterThan(0);
    expect(s.soak.ws_cycles).toBeGreaterThan(0);
    // Memory after full GCs through the gateway's probe.
    expect(s.soak.gc.heap_mb_start).toBeGreaterThan(0);
    expect(s.soak.gc.handles_end).toBeGreaterThan(0);
    // Two gateways behind HAProxy: every user through, both gateways served some of it.
    if (!haproxyMissing() && !postgresMissing()) {
      expect(s.ha.users.signed_in).toBe(10);
      expect(s.ha.users.overall.errors).toBe(0);
      expect(s.ha.users.sessions_started).toBe(10);
      expect(s.ha.requests_per_gateway.gwa).toBeGreaterThan(0);
      expect(s.ha.requests_per_gateway.gwb).toBeGreaterThan(0);
    }
    expect(Object.keys(s.goals).length).toBeGreaterThan(0);
  }, 300_000);
});
