// Several gateways on one PostgreSQL behind HAProxy (docs/deploy.md, "Several gateways"): two real
// gateway processes on a PostgreSQL of their own (so that it can be stopped), Debian's HAProxy running
// the shipped deploy/haproxy/haproxy.cfg, sessions on the Slurm test cluster whose commands go through
// wrappers that log each call, and Chromium as the browser. Gateways die by SIGKILL, as a host does.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { launchBrowser, shareSession, type TestBrowser } from '../helpers/browser.ts';
import { Client, type SessionView, waitForState } from '../helpers/client.ts';
import { scancelTestUsers, slurm, testCluster } from '../helpers/cluster.ts';
import { echoApps } from '../helpers/echo-app.ts';
import { readEvents } from '../helpers/events.ts';
import { createTestGateway, freePort, ROOT, type TestGateway } from '../helpers/gateway.ts';
import { haproxyMissing, startHaproxy, type TestHaproxy } from '../helpers/haproxy.ts';
import { createKernel } from '../helpers/jupyter.ts';
import { sleep, until } from '../helpers/wait.ts';

const cluster = testCluster('ha', { dbd: true });
const missing =
  haproxyMissing() ??
  (fs.existsSync('/usr/lib/postgresql')
    ? undefined
    : 'PostgreSQL is not installed (Debian package postgresql)');
if (cluster && missing) console.warn(`[ha e2e] SKIPPED: ${missing}`);

/** The clusters' poll period in this file (seconds). */
const POLL_S = 2;
const SLURM_COMMANDS = ['squeue', 'sinfo', 'sbatch', 'scancel', 'scontrol', 'sacctmgr', 'sacct'];

// ---- a PostgreSQL of this file's own (scripts/postgres.sh), stopped and started by the outage test --

const pgEnv = {
  POSTGRES_BASE: `/tmp/atrium-postgres-ha-${crypto.randomBytes(3).toString('hex')}`,
  POSTGRES_PORT: '',
};
const postgres = (cmd: 'up' | 'down' | 'stop' | 'start' | 'url') =>
  execFileSync('bash', [path.join(ROOT, 'scripts', 'postgres.sh'), cmd], {
    env: { ...process.env, ...pgEnv },
    encoding: 'utf8',
    timeout: 120_000,
  }).trim();

// ---- Slurm commands through wrappers that log who called them (the gateways poll as root) ----------

let binDir = '';
let callLog = '';

function makeWrappers(): void {
  binDir = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-ha-bin-'));
  fs.chmodSync(binDir, 0o755);
  callLog = path.join(binDir, 'calls.log');
  fs.writeFileSync(callLog, '', { mode: 0o666 });
  fs.chmodSync(callLog, 0o666);
  for (const cmd of SLURM_COMMANDS) {
    const real = execFileSync('bash', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim();
    // The poll's commands are counted (time, calling gateway's pid); the users' (sbatch...) only pass
    // through. A gateway's commands are forked by its spawn helper (src/system/spawn.ts): the gateway
    // is the parent of the wrapper's parent.
    const log = cmd === 'squeue' || cmd === 'sinfo';
    const caller = "$(cut -d' ' -f4 /proc/$PPID/stat)";
    fs.writeFileSync(
      path.join(binDir, cmd),
      `#!/bin/sh\n${log ? `echo "$(date +%s%3N) ${caller} ${cmd}" >> ${callLog}\n` : ''}exec ${real} "$@"\n`,
      { mode: 0o755 },
    );
  }
}

interface Call {
  at: number;
  pid: number;
  cmd: string;
}

function calls(): Call[] {
  return fs
    .readFileSync(callLog, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [at, pid, cmd] = l.split(' ');
      return { at: Number(at), pid: Number(pid), cmd: cmd! };
    });
}

// ---- the gateways and HAProxy ---------------------------------------------------------------------

let databaseUrl = '';
let A: TestGateway;
let B: TestGateway;
let lb: TestHaproxy;
let browser: TestBrowser | undefined;
const echo = echoApps();
/** alice through HAProxy, and the same browser session straight on each gateway. */
let alice: Client;
let aliceA: Client;
let aliceB: Client;
/** The jupyter sessions of the first tests, started in beforeAll. */
let s1: SessionView;
let s2: SessionView;

function yaml(): string {
  return [
    'sessions:',
    '  heartbeatSeconds: 3',
    // 30 s: a 20 s database outage is not taken for silent agents.
    '  heartbeatMissed: 10',
    '  maxPerUser: 30',
    'clusters:',
    '  - name: hpc',
    '    backend: slurm',
    `    slurm: { conf: ${cluster!.slurmConf}, runAs: runuser, pollSeconds: ${POLL_S}, commandTimeoutSeconds: 8, partition: interactive, binDir: ${binDir} }`,
    echo.yaml,
  ].join('\n');
}

/** Behind HAProxy: users and agents reach the gateways through it; X-Forwarded-For from it is trusted. */
function behind(gw: TestGateway, lbPort: number): void {
  const url = `http://127.0.0.1:${lbPort}`;
  fs.writeFileSync(
    gw.configFile,
    fs
      .readFileSync(gw.configFile, 'utf8')
      .replace('server:\n', `server:\n  publicUrl: ${url}\n  agentUrl: ${url}\n  trustProxy: true\n`),
  );
}

const asClient = (base: string, from: Client) =>
  Object.assign(new Client(base), { cookie: from.cookie, csrf: from.csrf });

async function metricsOf(gw: TestGateway): Promise<string> {
  return (await fetch(`${gw.url}/metrics`)).text();
}

function metric(text: string, name: string, labels = ''): number {
  const m = new RegExp(`^${name}${labels ? `\\{${labels}\\}` : ''} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

const leads = async (gw: TestGateway) =>
  metric(await metricsOf(gw), 'atrium_scheduler_poll_leader', 'cluster="hpc"') === 1;

async function bothUp(): Promise<void> {
  await until(
    'both gateways up in HAProxy',
    async () => {
      const s = await lb.status();
      return s.gwa === 'UP' && s.gwb === 'UP';
    },
    30_000,
  );
}

/** kill -9, as when its host dies. */
async function killHard(gw: TestGateway): Promise<void> {
  const p = gw.proc!;
  const exited = new Promise((r) => p.once('exit', r));
  p.kill('SIGKILL');
  await exited;
  gw.proc = null;
}

async function create(c: Client, body: Record<string, unknown>): Promise<SessionView> {
  const r = await c.post('/api/sessions', body);
  if (r.status !== 201) throw new Error(`create: HTTP ${r.status} ${JSON.stringify(r.body)}`);
  return (r.body as { session: SessionView }).session;
}

const jupyter = { cluster: 'hpc', app: 'jupyter', cores: 1, memoryGb: 1, hours: 1 };

// ---- a kernel WebSocket that stays open (the test kills the gateway under it) ----------------------

class KernelChannel {
  private ws!: WebSocket;
  private readonly waiting = new Map<string, { out: string; done: (out: string) => void }>();
  /** Every stream output line, with when it came. */
  readonly lines: { at: number; text: string }[] = [];
  closed = false;

  constructor(
    private readonly url: string,
    private readonly cookie: string,
  ) {}

  open(): Promise<void> {
    this.closed = false;
    const ws = new WebSocket(this.url, { headers: { cookie: this.cookie } });
    this.ws = ws;
    ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as {
        msg_type: string;
        parent_header: { msg_id?: string };
        content: Record<string, unknown>;
      };
      const w = this.waiting.get(m.parent_header?.msg_id ?? '');
      if (m.msg_type === 'stream') {
        const text = String(m.content.text ?? '');
        for (const t of text.split('\n').filter(Boolean)) this.lines.push({ at: Date.now(), text: t });
        if (w) w.out += text;
      }
      if (w && m.msg_type === 'status' && m.content.execution_state === 'idle') {
        this.waiting.delete(m.parent_header.msg_id!);
        w.done(w.out);
      }
    });
    ws.on('close', () => {
      this.closed = true;
    });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) =>
        reject(new Error(`websocket refused: HTTP ${res.statusCode}`)),
      );
    });
  }

  /** Runs `code`; resolves with what it printed once the kernel is idle again. */
  run(code: string): Promise<string> {
    const id = crypto.randomUUID();
    const p = new Promise<string>((done) => this.waiting.set(id, { out: '', done }));
    this.ws.send(
      JSON.stringify({
        header: {
          msg_id: id,
          username: 'test',
          session: crypto.randomUUID(),
          msg_type: 'execute_request',
          version: '5.3',
          date: new Date().toISOString(),
        },
        parent_header: {},
        metadata: {},
        content: { code, silent: false, store_history: false, user_expressions: {}, allow_stdin: false },
        channel: 'shell',
        buffers: [],
      }),
    );
    return p;
  }

  close(): void {
    this.ws?.close();
  }
}

const channelsUrl = (base: string, s: SessionView, kernel: string) =>
  `${base.replace(/^http/, 'ws')}${s.url}api/kernels/${kernel}/channels?session_id=${crypto.randomUUID()}`;

describe.skipIf(!cluster || missing)('several gateways on one PostgreSQL behind HAProxy', () => {
  beforeAll(async () => {
    pgEnv.POSTGRES_PORT = String(await freePort());
    postgres('up');
    const base = new URL(postgres('url'));
    const admin = new pg.Client({ connectionString: base.toString() });
    await admin.connect();
    await admin.query('create database ha');
    await admin.end();
    base.pathname = '/ha';
    databaseUrl = base.toString();
    makeWrappers();
    const lbPort = await freePort();
    A = await createTestGateway({
      name: 'ha-a',
      databaseUrl,
      users: [{ name: 'alice' }, { name: 'bob' }, { name: 'ops', unixUser: 'carol', admin: true }],
      yaml: yaml(),
    });
    B = await createTestGateway({ name: 'ha-b', databaseUrl, yaml: yaml() });
    Object.assign(B.passwords, A.passwords);
    behind(A, lbPort);
    behind(B, lbPort);
    await Promise.all([A.start(), B.start()]);
    lb = await startHaproxy(
      [
        { name: 'gwa', port: A.port },
        { name: 'gwb', port: B.port },
      ],
      lbPort,
    );
    await bothUp();
    alice = new Client(lb.url);
    expect((await alice.login('alice', A.passwords.alice!)).status).toBe(200);
    aliceA = asClient(A.url, alice);
    aliceB = asClient(B.url, alice);
    // Both started now, so that their waits overlap.
    [s1, s2] = await Promise.all([create(aliceA, jupyter), create(aliceB, jupyter)]);
    [s1, s2] = await Promise.all([
      waitForState(alice, s1.id, ['running'], 120_000),
      waitForState(alice, s2.id, ['running'], 120_000),
    ]);
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    if (cluster) scancelTestUsers(cluster);
    await Promise.all([A?.stop(), B?.stop()]);
    lb?.stop();
    try {
      postgres('down');
    } catch {
      // already down
    }
    if (binDir) fs.rmSync(binDir, { recursive: true, force: true });
    fs.rmSync(echo.dir, { recursive: true, force: true });
  });

  it('a session started through A answers through B and through HAProxy; stopped on B, its route is gone on A within a second', async () => {
    // One sign-in (made through HAProxy) is good on every gateway: browser sessions are in the database.
    for (const base of [A.url, B.url, lb.url]) {
      const kernel = await createKernel(base + s1.url, alice.cookie);
      const ch = new KernelChannel(channelsUrl(base, s1, kernel), alice.cookie);
      await ch.open();
      expect((await ch.run('print(6*7)')).trim()).toBe('42');
      ch.close();
    }
    // A page on A hears what B does (live events fan out through the database).
    const events: { type: string; data: { id?: string; state?: string } }[] = [];
    const ac = new AbortController();
    const opened = new Promise<void>((resolve) => {
      void readEvents(
        `${A.url}/api/events`,
        { cookie: alice.cookie },
        ac.signal,
        (type, data) => events.push({ type, data: JSON.parse(data) }),
        resolve,
      ).catch(() => undefined);
    });
    await opened;
    const status = async (gw: TestGateway) => {
      const r = await fetch(`${gw.url}${s1.url}api/status`, { headers: { cookie: alice.cookie } });
      return { status: r.status, json: (r.headers.get('content-type') ?? '').includes('json') };
    };
    expect(await status(A)).toEqual({ status: 200, json: true });
    const stopped = await aliceB.del(`/api/sessions/${s1.id}`);
    expect(stopped.status).toBe(200);
    await until('A to drop the route', async () => !(await status(A)).json, 1000, 20);
    await until('the stop on B to reach the page on A', () =>
      events.some((e) => e.type === 'session' && e.data.id === s1.id && e.data.state !== 'running'),
    );
    ac.abort();
    await waitForState(alice, s1.id, ['ended'], 60_000);
  });

  it('kill -9 of gateway A under an open kernel WebSocket and event stream: both resume on B, nothing changes state', async () => {
    // What this test opens goes to A: B takes no new connections meanwhile (HAProxy's drain).
    await lb.admin('set server atrium_gateways/gwb state drain');
    const kernel = await createKernel(lb.url + s2.url, alice.cookie);
    const ch = new KernelChannel(channelsUrl(lb.url, s2, kernel), alice.cookie);
    await ch.open();
    expect((await ch.run('x = 6*7\nprint(x)')).trim()).toBe('42');
    browser = await launchBrowser({ name: 'ha' });
    await shareSession(browser.context, lb.url, alice.cookie);
    const page = browser.page;
    await page.goto(`${lb.url}/`);
    // The page's own EventSource, as the UI's: it reconnects by itself.
    await page.evaluate(() => {
      const w = window as unknown as { heard: string[]; opens: number };
      w.heard = [];
      w.opens = 0;
      const es = new EventSource('/api/events');
      es.onopen = () => {
        w.opens++;
      };
      es.addEventListener('announcement', (e) => w.heard.push((e as MessageEvent).data));
    });
    const opens = () => page.evaluate(() => (window as unknown as { opens: number }).opens);
    await until('the event stream to open', async () => (await opens()) === 1);
    expect(metric(await metricsOf(A), 'atrium_proxy_open_websockets')).toBeGreaterThanOrEqual(1);
    await lb.admin('set server atrium_gateways/gwb state ready');
    await bothUp();
    const eventsBefore = await B.query<{ n: number }>(
      'select count(*) n from session_events where session_id = ?',
      [s2.id],
    );

    await killHard(A);
    await until('the kernel WebSocket to close with A', () => ch.closed, 10_000);
    // The client reconnects (through HAProxy, so to B) and the same kernel still has x.
    await until('a new kernel WebSocket', () => ch.open().then(() => true), 20_000, 500);
    expect((await ch.run('print(x)')).trim()).toBe('42');
    ch.close();
    await until('the event stream to reopen on B', async () => (await opens()) >= 2, 20_000);
    const ops = new Client(B.url);
    expect((await ops.login('ops', A.passwords.ops!)).status).toBe(200);
    const text = `ha-${crypto.randomBytes(3).toString('hex')}`;
    expect((await ops.post('/api/admin/announcements', { message: text, hours: 1 })).status).toBe(201);
    await until('the announcement to reach the page through B', () =>
      page.evaluate((t) => (window as unknown as { heard: string[] }).heard.some((h) => h.includes(t)), text),
    );
    // The session noticed nothing: same state, no new event, nobody thinks its agent is silent.
    const after = (
      (await aliceB.get(`/api/sessions/${s2.id}`)).body as {
        session: SessionView & { notRespondingSince: number | null };
      }
    ).session;
    expect(after.state).toBe('running');
    expect(after.notRespondingSince).toBeNull();
    expect(
      await B.query<{ n: number }>('select count(*) n from session_events where session_id = ?', [s2.id]),
    ).toEqual(eventsBefore);
    await A.start();
    await bothUp();
  });

  it('20 concurrent session starts through HAProxy with A killed in the middle: each answered, one job per session, none left requested', async () => {
    const bodies = Array.from({ length: 20 }, (_, i) => ({
      cluster: 'hpc',
      app: 'echoslow',
      cores: 1,
      memoryGb: 0.1,
      hours: 1,
      label: `burst-${i}`,
    }));
    let answered = 0;
    const outcomes = bodies.map((b) =>
      alice.post('/api/sessions', b).finally(() => {
        answered++;
      }),
    );
    await until('a few answers', () => answered >= 4, 60_000, 20);
    await killHard(A);
    const results = await Promise.all(outcomes);
    const created: string[] = [];
    for (const r of results) {
      if (r.status === 201) created.push((r.body as { session: SessionView }).session.id);
      else {
        // A clear error: the gateway's or HAProxy's, never an empty answer.
        expect(r.status).toBeGreaterThanOrEqual(400);
        expect(JSON.stringify(r.body).length).toBeGreaterThan(10);
      }
    }
    console.info(
      `[ha e2e] 20 starts with A killed: ${created.length} created, others ${JSON.stringify(results.filter((r) => r.status !== 201).map((r) => r.status))}`,
    );
    // B knows A is gone and polls; after two more of its polls nothing waits in `requested`.
    await until(
      'B to see A gone and to poll',
      async () => {
        const m = await metricsOf(B);
        return (
          metric(m, 'atrium_gateways_alive') === 1 &&
          metric(m, 'atrium_scheduler_poll_leader', 'cluster="hpc"') === 1
        );
      },
      30_000,
    );
    // A request A took but did not submit is settled once no sbatch A started can still create a job
    // (src/db/gateways.ts: 30 s after A's last beat), by B's next poll.
    type Row = { id: string; state: string; job_id: string | null; reason: string | null };
    const burst = () =>
      B.query<Row>("select id, state, job_id, reason from sessions where label like 'burst-%'");
    await until(
      'no burst session left requested',
      async () => (await burst()).every((r) => r.state !== 'requested'),
      90_000,
      500,
    );
    const rows = await burst();
    console.info(
      `[ha e2e] the burst's sessions: ${JSON.stringify(rows.map((r) => `${r.state}${r.reason ? ` (${r.reason})` : ''}`))}`,
    );
    expect(rows.filter((r) => r.state === 'requested')).toEqual([]);
    for (const id of created) expect(rows.find((r) => r.id === id)?.state).not.toBe('failed');
    // Exactly one Slurm job per session (found by its tag), none for one that failed before submitting.
    const tags = slurm(cluster!, 'squeue', ['-h', '-a', '-t', 'all', '-u', 'alice', '-o', '%k'])
      .split('\n')
      .map((l) => l.trim());
    for (const r of rows) {
      const jobs = tags.filter((t) => t === r.id).length;
      expect({ id: r.id, state: r.state, jobs }).toEqual({
        id: r.id,
        state: r.state,
        jobs: r.state === 'failed' ? 0 : 1,
      });
    }
    await Promise.all(
      rows.filter((r) => r.state !== 'failed').map((r) => alice.del(`/api/sessions/${r.id}`)),
    );
    await until(
      'the burst to end',
      async () => {
        const left = await B.query<{ n: number }>(
          "select count(*) n from sessions where label like 'burst-%' and state not in ('ended', 'failed')",
        );
        return left[0]?.n === 0;
      },
      60_000,
    );
    await until(
      'its jobs to be gone',
      () =>
        slurm(cluster!, 'squeue', ['-h', '-a', '-u', 'alice', '-t', 'PD,R,CG', '-o', '%k'])
          .split('\n')
          .every((t) => !rows.some((r) => r.id === t.trim())),
      60_000,
    );
    await A.start();
    await bothUp();
  });

  it('one squeue and one sinfo per poll period across both gateways; when the poller dies, the other polls within two periods', async () => {
    const leader = (await leads(A)) ? A : (await leads(B)) ? B : undefined;
    expect(leader).toBeDefined();
    const other = leader === A ? B : A;
    const polls = async () =>
      metric(await metricsOf(leader!), 'atrium_scheduler_polls_total', 'cluster="hpc"');
    const p0 = await polls();
    const t0 = Date.now();
    await sleep(5 * POLL_S * 1000);
    const t1 = Date.now();
    const p1 = await polls();
    const window = calls().filter((c) => c.at >= t0 && c.at < t1);
    const count = (cmd: string) => window.filter((c) => c.cmd === cmd).length;
    console.info(
      `[ha e2e] in 5 poll periods (${t1 - t0} ms): ${p1 - p0} polls, ${count('squeue')} squeue, ${count('sinfo')} sinfo`,
    );
    // Every call is the poller's; each of its polls is one squeue and one sinfo (a poll under way at
    // either end of the window may count on one side only); a poll takes its period plus its own time.
    expect(new Set(window.map((c) => c.pid))).toEqual(new Set([leader!.proc!.pid]));
    expect(Math.abs(count('squeue') - (p1 - p0))).toBeLessThanOrEqual(1);
    expect(Math.abs(count('sinfo') - count('squeue'))).toBeLessThanOrEqual(1);
    expect(count('squeue')).toBeGreaterThanOrEqual(3);
    expect(count('squeue')).toBeLessThanOrEqual(6);

    const killedAt = Date.now();
    await killHard(leader!);
    const first = await until(
      'the other gateway to poll',
      () => calls().find((c) => c.at > killedAt && c.pid === other.proc!.pid && c.cmd === 'squeue'),
      30_000,
      50,
    );
    console.info(`[ha e2e] the other gateway polled ${first.at - killedAt} ms after the poller died`);
    expect(first.at - killedAt).toBeLessThanOrEqual(2 * POLL_S * 1000);
    await leader!.start();
    await bothUp();
  });

  it('PostgreSQL stopped for 20 s under light load: 503s naming the database, no 5xx 5 s after, nothing lost or duplicated', async () => {
    const bob = new Client(lb.url);
    expect((await bob.login('bob', A.passwords.bob!)).status).toBe(200);
    const sessionsBefore = await B.query('select id, state from sessions order by id');
    const jobsBefore = slurm(cluster!, 'squeue', ['-h', '-a', '-u', 'alice,bob', '-o', '%i %k']).trim();
    // One proxied stream: a kernel printing through HAProxy all along.
    const kernel = await createKernel(lb.url + s2.url, alice.cookie);
    const ch = new KernelChannel(channelsUrl(lb.url, s2, kernel), alice.cookie);
    await ch.open();
    const printing = ch.run(
      'import time\nfor i in range(200):\n    print(i, flush=True)\n    time.sleep(0.25)',
    );
    // A few users' pages, through HAProxy.
    const answers: { at: number; status: number; body: string }[] = [];
    let loading = true;
    const load = async (c: Client, paths: string[]) => {
      while (loading) {
        for (const p of paths) {
          const r = await c.req('GET', p).catch(() => null);
          answers.push({ at: Date.now(), status: r?.status ?? 0, body: r ? await r.text() : 'no answer' });
        }
        await sleep(250);
      }
    };
    const loads = [
      load(alice, ['/api/sessions', '/api/me']),
      load(bob, ['/api/sessions', '/api/clusters']),
      load(asClient(lb.url, bob), ['/api/jobs']),
    ];
    await sleep(2000);
    const downAt = Date.now();
    postgres('stop');
    await sleep(10_000);
    // The load balancer's check says why each gateway is not ready.
    for (const gw of [A, B]) {
      const h = await fetch(`${gw.url}/api/health`);
      expect(h.status).toBe(503);
      expect(((await h.json()) as { error: string }).error).toMatch(/^database unavailable: /);
    }
    await sleep(10_000);
    postgres('start');
    const upAt = Date.now();
    await sleep(10_000);
    loading = false;
    await Promise.all(loads);
    const during = answers.filter((a) => a.at > downAt + 1000 && a.at < upAt);
    const bad = (a: (typeof answers)[number]) => a.status >= 500 || a.status === 0;
    expect(during.filter((a) => a.status === 503).length).toBeGreaterThan(0);
    const statuses: Record<number, number> = {};
    for (const a of during) statuses[a.status] = (statuses[a.status] ?? 0) + 1;
    console.info(`[ha e2e] answers while PostgreSQL was down: ${JSON.stringify(statuses)}`);
    for (const a of answers.filter(bad).filter((a) => a.at < upAt + 5000)) {
      // One line naming the database, no stack.
      expect({ status: a.status, body: a.body }).toEqual({
        status: 503,
        body: expect.stringMatching(/^\{"error":"database unavailable: [^\n]*"\}$/),
      });
    }
    expect(answers.filter((a) => a.at > upAt + 5000).filter(bad)).toEqual([]);
    // The proxied stream went on while the database was down.
    expect(ch.lines.filter((l) => l.at > downAt + 1000 && l.at < upAt - 1000).length).toBeGreaterThan(20);
    ch.close();
    void printing;
    // Both gateways lived through it and are ready again.
    expect([A.proc?.exitCode, B.proc?.exitCode]).toEqual([null, null]);
    for (const gw of [A, B]) expect((await fetch(`${gw.url}/api/health`)).status).toBe(200);
    // Nothing lost or duplicated: the same sessions in the same states, the same jobs.
    expect(await B.query('select id, state from sessions order by id')).toEqual(sessionsBefore);
    expect(slurm(cluster!, 'squeue', ['-h', '-a', '-u', 'alice,bob', '-o', '%i %k']).trim()).toBe(jobsBefore);
  });
});
