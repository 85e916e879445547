// Job history with efficiency on the Slurm test cluster (slurmdbd, jobacct_gather/linux sampling every
// 2 s): a batch job that touches 200 MB of a 1 GB request shows CPU, memory and time figures equal to
// sacct's own; a session's figures feed the form's right-size hint; the history filters and its CSV;
// a cluster without accounting (the local backend) says "no accounting data"; bob sees none of alice's.
// Chromium renders the bars and the form's hint.
import fs from 'node:fs';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ensureWebBuilt,
  keepFailureEvidence,
  launchBrowser,
  signIn,
  type TestBrowser,
} from '../helpers/browser.ts';
import { Client, waitForState } from '../helpers/client.ts';
import { type ClusterJson, cancelAll, slurm, testCluster } from '../helpers/cluster.ts';
import { echoApps } from '../helpers/echo-app.ts';
import { createTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { gatewayYaml } from '../helpers/jobs-cluster.ts';
import { until } from '../helpers/wait.ts';

const cluster = testCluster('history', { up: 'nodes', dbd: true });

interface Ratio {
  used: number;
  requested: number;
  fraction: number | null;
}
interface Entry {
  kind: 'session' | 'job';
  id: string;
  cluster: string;
  jobId: string | null;
  name: string;
  state: string;
  schedulerState: string | null;
  accounting: 'sacct' | 'none' | 'pending';
  requested: { cores: number | null; memoryMb: number | null; minutes: number | null };
  efficiency: { cpu: Ratio | null; memory: Ratio | null; time: Ratio | null };
}

const TOUCH_200MB = `#!/bin/bash
python3 -c "
import time
b = bytearray(200 * 1024 * 1024)
for i in range(0, len(b), 4096): b[i] = 1
time.sleep(4)
"
`;

describe.skipIf(!cluster)('job history with efficiency', () => {
  const c = cluster as ClusterJson;
  const echo = echoApps();
  let gw: TestGateway;
  let alice: Client;
  let bob: Client;
  let browser: TestBrowser | undefined;
  let touchJob = '';
  let failJob = '';
  let slurmSession = '';
  let localSession = '';

  const history = async (cl: Client, qs = '') => {
    const r = await cl.get(`/api/history${qs}`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return (r.body as { entries: Entry[] }).entries;
  };
  const entry = (id: string, accounting: Entry['accounting'] = 'sacct') =>
    until(
      `history entry ${id} (${accounting})`,
      async () => (await history(alice)).find((e) => e.id === id && e.accounting === accounting),
      45_000,
      300,
    );

  beforeAll(async () => {
    // Before the gateway starts: it serves the bundle it found at its start.
    ensureWebBuilt();
    await cancelAll(c);
    gw = await createTestGateway({
      name: 'history',
      users: [{ name: 'alice' }, { name: 'bob' }],
      yaml: [
        gatewayYaml(c),
        '  - name: local',
        '    backend: local',
        '    title: This machine',
        echo.yaml,
      ].join('\n'),
    });
    await gw.start();
    alice = new Client(gw.url);
    bob = new Client(gw.url);
    expect((await alice.login('alice', gw.passwords.alice!)).status).toBe(200);
    expect((await bob.login('bob', gw.passwords.bob!)).status).toBe(200);
  }, 60_000);

  keepFailureEvidence(() => ({ browser, gw }));

  afterAll(async () => {
    await browser?.close();
    await cancelAll(c);
    await gw?.stop();
    if (gw) fs.rmSync(gw.dir, { recursive: true, force: true });
    fs.rmSync(echo.dir, { recursive: true, force: true });
    for (const id of [touchJob, failJob]) if (id) fs.rmSync(`/tmp/slurm-${id}.out`, { force: true });
  });

  it('starts a batch job touching 200 MB of 1 GB, a failing one, and a session on each cluster', async () => {
    const submit = async (body: Record<string, unknown>) => {
      const r = await alice.post('/api/jobs', { cluster: 'hpc', source: 'text', workDir: '/tmp', ...body });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      return (r.body as { job: { jobId: string } }).job.jobId;
    };
    touchJob = await submit({
      script: TOUCH_200MB,
      jobName: 'touch 200MB',
      cores: 1,
      memoryGb: 1,
      hours: 0.25,
    });
    failJob = await submit({
      script: '#!/bin/bash\nexit 3\n',
      jobName: '=quick, "fail"',
      cores: 1,
      memoryGb: 1,
    });
    const start = async (clusterName: string) => {
      const r = await alice.post('/api/sessions', {
        cluster: clusterName,
        app: 'echo',
        cores: 1,
        memoryGb: 1,
        hours: 1,
      });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      return (r.body as { session: { id: string } }).session.id;
    };
    [slurmSession, localSession] = await Promise.all([start('hpc'), start('local')]);
    await Promise.all([
      waitForState(alice, slurmSession, ['running'], 45_000),
      waitForState(alice, localSession, ['running'], 45_000),
    ]);
    // Run past one accounting sample (every 2 s) of the session's job.
    await new Promise((r) => setTimeout(r, 2500));
    for (const id of [slurmSession, localSession])
      expect((await alice.del(`/api/sessions/${id}`)).status).toBe(200);
  }, 60_000);

  it("shows the batch job's CPU, memory and time against what it asked, equal to sacct's own figures", async () => {
    const e = await entry(touchJob);
    // sacct itself, as root: the job line and its steps (MaxRSS is per step). --noconvert: MaxRSS in
    // bytes; without it sacct writes an exact multiple of 1024 KiB in M ("211.50M"), else in K.
    const lines = slurm(c, 'sacct', [
      '-a',
      '-P',
      '-n',
      '--noconvert',
      '-j',
      touchJob,
      '-o',
      'JobID,TotalCPU,MaxRSS,ElapsedRaw,NCPUS,ReqMem,TimelimitRaw',
    ])
      .trim()
      .split('\n')
      .map((l) => l.split('|'));
    const job = lines.find((l) => l[0] === touchJob)!;
    const maxRssKb = Math.max(
      ...lines.filter((l) => l[0] !== touchJob).map((l) => Math.floor((Number(l[2]) || 0) / 1024)),
    );
    const cpuSeconds = (() => {
      const [mmss = '0:0', ms = '0'] = (job[1] ?? '').split('.');
      const parts = mmss.split(':').map(Number);
      const s = parts.reduce((acc, n) => acc * 60 + n, 0);
      return s + Number(`0.${ms}`);
    })();
    const elapsed = Number(job[3]);
    const cores = Number(job[4]);
    expect(lines.find((l) => l[0] !== touchJob)?.[2]).toMatch(/^\d+$/);
    // It touched 200 MB: the peak is at least that, well under the 1 GB asked.
    expect(maxRssKb / 1024).toBeGreaterThanOrEqual(200);
    expect(e.efficiency.memory).toEqual({
      used: Math.round((maxRssKb / 1024) * 10) / 10,
      requested: 1024,
      fraction: Math.round((maxRssKb / 1024) * 10) / 10 / 1024,
    });
    expect(e.efficiency.cpu?.used).toBeCloseTo(cpuSeconds, 3);
    expect(e.efficiency.cpu?.requested).toBe(cores * elapsed);
    expect(e.efficiency.time).toEqual({
      used: elapsed,
      requested: Number(job[6]) * 60,
      fraction: elapsed / (Number(job[6]) * 60),
    });
    expect(elapsed).toBeGreaterThanOrEqual(4);
    expect(e).toMatchObject({
      kind: 'job',
      cluster: 'hpc',
      name: 'touch 200MB',
      state: 'completed',
      schedulerState: 'completed',
    });
  }, 50_000);

  it('the ended sessions: measured on Slurm, "no accounting data" on the local backend; the form hint follows', async () => {
    const s = await entry(slurmSession);
    expect(s).toMatchObject({
      kind: 'session',
      cluster: 'hpc',
      requested: { cores: 1, memoryMb: 1024, minutes: 60 },
    });
    expect(s.efficiency.memory?.used).toBeGreaterThan(0);
    const l = await entry(localSession, 'none');
    expect(l.efficiency).toEqual({ cpu: null, memory: null, time: null });
    const hint = await alice.get('/api/history/right-size?cluster=hpc&app=echo');
    expect(hint.body).toEqual({
      hint: {
        sessions: 1,
        maxUsedMb: expect.any(Number),
        requestedMb: 1024,
        message: expect.stringMatching(
          /^Your last Echo echo session used at most \d+ MB of the 1 GB asked\.$/,
        ),
      },
    });
    expect((await alice.get('/api/history/right-size?cluster=local&app=echo')).body).toEqual({ hint: null });
    expect((await bob.get('/api/history/right-size?cluster=hpc&app=echo')).body).toEqual({ hint: null });
  }, 50_000);

  it('filters by cluster, state, kind and dates; only the caller’s own entries', async () => {
    await entry(failJob);
    const all = [touchJob, failJob, slurmSession, localSession].sort();
    // Only this file's: alice's jobs of earlier runs still in slurmctld are hers too.
    const ids = (list: Entry[]) =>
      list
        .map((e) => e.id)
        .filter((id) => all.includes(id))
        .sort();
    expect(ids(await history(alice))).toEqual(all);
    expect(ids(await history(alice, '?kind=job'))).toEqual([touchJob, failJob].sort());
    expect(ids(await history(alice, '?kind=session'))).toEqual([slurmSession, localSession].sort());
    expect(ids(await history(alice, '?cluster=local'))).toEqual([localSession]);
    expect(ids(await history(alice, '?state=failed'))).toEqual([failJob]);
    expect(ids(await history(alice, '?state=completed&kind=job'))).toEqual([touchJob]);
    const today = new Date().toISOString().slice(0, 10);
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    expect(ids(await history(alice, `?from=${today}&to=${today}`))).toEqual(all);
    expect(await history(alice, `?from=${tomorrow}`)).toEqual([]);
    expect((await history(bob)).filter((e) => all.includes(e.id))).toEqual([]);
    const bad = await alice.get('/api/history?from=yesterday');
    expect(bad.status).toBe(400);
    expect((bad.body as { field?: string }).field).toBe('from');
  });

  it('exports the same list as CSV, escaped', async () => {
    const r = await alice.req('GET', '/api/history/export?kind=job');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(r.headers.get('content-disposition')).toContain('attachment');
    const lines = (await r.text()).split('\r\n');
    expect(lines[0]).toBe(
      'kind,id,cluster,job_id,name,state,scheduler_state,submitted,started,ended,cores,memory_mb,time_limit_min,accounting,elapsed_s,cpu_used_s,cpu_available_s,cpu_efficiency_pct,max_rss_mb,memory_efficiency_pct,time_efficiency_pct',
    );
    // A formula is defused, the comma and the quotes quoted.
    expect(lines.find((l) => l.startsWith(`job,${failJob},`))).toContain(`,"'=quick, ""fail""",failed,`);
    const touch = (await history(alice)).find((e) => e.id === touchJob)!;
    const row = lines.find((l) => l.startsWith(`job,${touchJob},`))!.split(',');
    expect(row[4]).toBe('touch 200MB');
    expect(Number(row[18])).toBe(touch.efficiency.memory!.used);
    expect(Number(row[19])).toBe(Math.round(touch.efficiency.memory!.fraction! * 1000) / 10);
    expect(lines.at(-1)).toBe('');
    expect(lines.filter((l) => l.startsWith('session,'))).toEqual([]);
  });

  it('renders the bars on the history page and the hint on the form (Chromium)', async () => {
    browser = await launchBrowser({ name: 'history' });
    const page: Page = browser.page;
    await signIn(page, gw, 'alice');
    await page.goto(`${gw.url}/history`);
    const row = page.locator(`tr[data-entry="${touchJob}"]`);
    await row.waitFor();
    const pct = Math.round(
      (await history(alice)).find((e) => e.id === touchJob)!.efficiency.memory!.fraction! * 100,
    );
    await expect.poll(() => row.locator('[data-eff="Memory"] .eff-num').textContent()).toBe(`${pct} %`);
    expect(await row.locator('[data-eff="Memory"] .eff-bar > span').getAttribute('style')).toContain(
      `width: ${pct}%`,
    );
    expect(await page.locator(`tr[data-entry="${localSession}"]`).textContent()).toContain(
      'no accounting data',
    );
    // On a phone: the page fits the screen's width (the table scrolls inside its own box).
    const size = page.viewportSize();
    await page.setViewportSize({ width: 420, height: 900 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(420);
    if (size) await page.setViewportSize(size);
    await page.getByLabel('Kind').selectOption('session');
    await expect.poll(() => page.locator(`tr[data-entry="${touchJob}"]`).count()).toBe(0);
    await page.goto(`${gw.url}/`);
    await page.getByLabel('Cluster', { exact: true }).selectOption('hpc');
    await page.getByLabel('User interface', { exact: true }).selectOption('echo');
    await expect
      .poll(() => page.getByTestId('right-size').textContent())
      .toContain('Your last Echo echo session used at most');
  }, 40_000);
});
