// The Atrium side of the spawn benchmark: one gateway process (bin/atrium serve) per database engine
// (SQLite in its data directory, or PostgreSQL), with a `local` cluster and, when the test cluster is
// up, a `slurm` one. One sample = form submit -> session running (live event) -> kernel created and
// print(6*7) answered through the gateway's proxy, split with the gateway's own time stamps
// (database), the agent's log and Slurm's job record.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { queryDatabase } from '../../test/helpers/gateway.ts';
import { kernelRoundTrip } from '../../test/helpers/jupyter.ts';
import { type Child, EventStream, freePort, ROOT, start, stop, until } from './lib.ts';

const ATRIUM = path.join(ROOT, 'bin', 'atrium');

export interface AtriumGateway {
  url: string;
  dir: string;
  child: Child;
  cookie: string;
  csrf: string;
  events: EventStream;
  user: string;
  home: string;
  slurmConf?: string;
  /** Its `database.url`. */
  databaseUrl: string;
}

export async function startAtrium(opts: {
  user: string;
  slurmConf?: string;
  slurmPartition?: string;
  /** PostgreSQL (postgres://...); SQLite in the data directory when absent. */
  databaseUrl?: string;
}): Promise<AtriumGateway> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-bench-spawn-'));
  fs.chmodSync(dir, 0o755);
  const port = await freePort();
  const configFile = path.join(dir, 'atrium.yaml');
  const clusters = ['clusters:', '  - name: local', '    backend: local', '    title: This machine'];
  if (opts.slurmConf) {
    // Production defaults otherwise (pollSeconds 10): the agent's callback then usually triggers the
    // poll that confirms its node, and that cost is counted as gateway time.
    clusters.push(
      '  - name: hpc',
      '    backend: slurm',
      `    slurm: { conf: ${opts.slurmConf}, runAs: runuser, partition: ${opts.slurmPartition ?? 'interactive'} }`,
    );
  }
  fs.writeFileSync(
    configFile,
    [
      'server:',
      '  host: 127.0.0.1',
      `  port: ${port}`,
      `dataDir: ${dir}/data`,
      'installPackages: false',
      ...(opts.databaseUrl ? ['database:', `  url: ${JSON.stringify(opts.databaseUrl)}`] : []),
      ...clusters,
      '',
    ].join('\n'),
  );
  const env = { ...process.env, ATRIUM_ADMIN_UNIX_USER: 'nobody' };
  const password = `bench-${Math.random().toString(36).slice(2)}`;
  execFileSync(
    ATRIUM,
    ['user', 'add', opts.user, '--unix-user', opts.user, '--password-stdin', '-c', configFile],
    {
      input: password,
      env,
      stdio: ['pipe', 'ignore', 'inherit'],
    },
  );
  const child = start('atrium', [ATRIUM, 'serve', '-c', configFile], {
    env,
    logFile: path.join(dir, 'gateway.log'),
  });
  const url = `http://127.0.0.1:${port}`;
  await until(
    'the gateway',
    async () => {
      if (child.proc.exitCode !== null)
        throw new Error(`gateway exited: ${fs.readFileSync(child.logFile, 'utf8').slice(-2000)}`);
      return (await fetch(`${url}/api/health`)).ok;
    },
    30_000,
  );
  const r = await fetch(`${url}/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: opts.user, password }),
  });
  if (!r.ok) throw new Error(`login: HTTP ${r.status}`);
  const cookie = (r.headers.get('set-cookie') ?? '').split(';')[0]!;
  const csrf = ((await r.json()) as { csrfToken: string }).csrfToken;
  const events = new EventStream(`${url}/api/events`, { cookie });
  await events.opened;
  const home = execFileSync('getent', ['passwd', opts.user], { encoding: 'utf8' }).split(':')[5]!;
  const databaseUrl = opts.databaseUrl ?? `sqlite:${path.join(dir, 'data', 'atrium.db')}`;
  return {
    url,
    dir,
    child,
    cookie,
    csrf,
    events,
    user: opts.user,
    home,
    slurmConf: opts.slurmConf,
    databaseUrl,
  };
}

export async function stopAtrium(gw: AtriumGateway): Promise<void> {
  gw.events.close();
  await stop(gw.child);
}

async function api(gw: AtriumGateway, method: string, p: string, body?: unknown) {
  const r = await fetch(`${gw.url}${p}`, {
    method,
    headers: {
      cookie: gw.cookie,
      'x-csrf-token': gw.csrf,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
}

/** Milliseconds of one Atrium sample. */
export interface AtriumSample {
  /** Form submit to the kernel's reply. */
  total: number;
  /** Submit request in the gateway, until sbatch (or the local start) returned: created..submitted. */
  submit: number;
  /** The POST as the browser sees it (includes submit). */
  post: number;
  /** Submitted until the agent process started on the node (Slurm's queue + job launch). */
  scheduler: number;
  /** Slurm's own StartTime - SubmitTime (whole seconds), slurm only. */
  slurmQueueSeconds?: number;
  /** Agent start until the app answered and the agent reported (app start). */
  app: number;
  /** Agent's report until the gateway recorded the session running (callback handling + route add). */
  callback: number;
  /** Running recorded until the browser's live event arrived. */
  notify: number;
  /** Kernel created and print(6*7) answered, through the proxy. */
  kernel: number;
  /** Gateway-added time: submit (minus nothing) + callback. */
  gateway: number;
}

function agentTimes(home: string, id: string): { agentStart: number; report: number } {
  const text = fs.readFileSync(path.join(home, '.atrium', 'sessions', id, 'app.log'), 'utf8');
  const at = (re: RegExp) => {
    const line = text.split('\n').find((l) => re.test(l));
    if (!line) throw new Error(`agent log of ${id} has no line matching ${re}`);
    return Date.parse(line.slice(0, line.indexOf(' ')));
  };
  return {
    agentStart: at(/atrium-agent: session \S+: starting/),
    report: at(/atrium-agent: ready: .*reporting to the gateway/),
  };
}

function slurmTimes(conf: string, jobId: string): { submit: number; start: number } | undefined {
  const out = execFileSync('squeue', ['-h', '-a', '-t', 'all', '-j', jobId, '-o', '%V|%S'], {
    env: { ...process.env, SLURM_CONF: conf, SLURM_TIME_FORMAT: '%s' },
    encoding: 'utf8',
  }).trim();
  const [submit, startT] = out.split('|').map(Number);
  return submit && startT ? { submit, start: startT } : undefined;
}

/** One click-to-kernel sample on `cluster`, then the session is stopped and gone. */
export async function atriumSample(gw: AtriumGateway, cluster: 'local' | 'hpc'): Promise<AtriumSample> {
  const t0 = Date.now();
  const created = await api(gw, 'POST', '/api/sessions', {
    cluster,
    app: 'jupyter',
    cores: 1,
    memoryGb: 1,
    hours: 1,
  });
  const tPost = Date.now();
  if (created.status !== 201)
    throw new Error(`create: HTTP ${created.status} ${JSON.stringify(created.body)}`);
  const s = created.body.session as { id: string; url: string };
  try {
    const running = gw.events.next(
      (e) =>
        e.type === 'session' &&
        e.data.id === s.id &&
        ['running', 'failed', 'ended'].includes(String(e.data.state)),
      120_000,
      t0,
    );
    const ev = await running;
    if (ev.data.state !== 'running')
      throw new Error(`session ${s.id} ${String(ev.data.state)}: ${String(ev.data.reason)}`);
    const tSeen = ev.at;
    const out = (await kernelRoundTrip(gw.url + s.url, { cookie: gw.cookie })).stdout;
    const tReply = Date.now();
    if (out.trim() !== '42') throw new Error(`kernel printed ${JSON.stringify(out)}`);

    const [row] = await queryDatabase<{
      created_at: number;
      submitted_at: number;
      ready_at: number;
      job_id: string;
    }>(gw.databaseUrl, 'select created_at, submitted_at, ready_at, job_id from sessions where id = ?', [
      s.id,
    ]);
    const [event] = await queryDatabase<{ at: number }>(
      gw.databaseUrl,
      "select at from session_events where session_id = ? and state = 'running'",
      [s.id],
    );
    if (!row || !event) throw new Error(`session ${s.id}: no row or no running event in the database`);
    const runningAt = event.at;
    const a = agentTimes(gw.home, s.id);
    const sample: AtriumSample = {
      total: tReply - t0,
      post: tPost - t0,
      submit: row.submitted_at - t0,
      scheduler: a.agentStart - row.submitted_at,
      app: a.report - a.agentStart,
      callback: runningAt - a.report,
      notify: tSeen - runningAt,
      kernel: tReply - tSeen,
      gateway: row.submitted_at - t0 + (runningAt - a.report),
    };
    if (cluster === 'hpc' && gw.slurmConf) {
      const st = slurmTimes(gw.slurmConf, row.job_id);
      if (st) sample.slurmQueueSeconds = st.start - st.submit;
    }
    return sample;
  } finally {
    await api(gw, 'DELETE', `/api/sessions/${s.id}`);
    await until(
      `session ${s.id} to end`,
      async () => {
        const v = (await api(gw, 'GET', `/api/sessions/${s.id}`)).body.session as { state: string };
        return v.state === 'ended' || v.state === 'failed';
      },
      60_000,
      100,
    );
  }
}
