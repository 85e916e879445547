// Access only for members of an active project (issue 17, point 2), on the real Slurm test cluster with
// slurmdbd: a cluster with `projectAccess` reads every user's associations with sacctmgr in the
// background (every 2 s here). alice (account research) starts a session; bob's association, removed
// with sacctmgr while the gateway runs, stops his starts within a refresh period: he gets the named
// refusal on the form (Chromium) and from the API, for sessions and jobs, and nothing reaches Slurm.
// alice's association expired (MaxSubmitJobs=0: Slurm refuses to remove an association with a running
// job) stops her new starts while her running session stays RUNNING and reachable. Restored after.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ensureWebBuilt,
  keepFailureEvidence,
  launchBrowser,
  shareSession,
  type TestBrowser,
  visible,
} from '../helpers/browser.ts';
import { Client, type SessionView, waitForState } from '../helpers/client.ts';
import { type ClusterJson, slurm, testCluster } from '../helpers/cluster.ts';
import { echoApps } from '../helpers/echo-app.ts';
import { createTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { until } from '../helpers/wait.ts';

const cluster = testCluster('project-access', { up: 'nodes', partition: 'interactive', dbd: true });
const SITE = 'Ask for a computing project at https://portal.example.org/projects.';
const REFRESH_SECONDS = 2;
const echo = echoApps();
const start = { cluster: 'proj', app: 'echo', cores: 1, memoryGb: 1, hours: 1 };

let gw: TestGateway;
let browser: TestBrowser | undefined;
const clients: Record<'alice' | 'bob', Client> = {} as never;
let running: SessionView;

/** sacctmgr as root on the test cluster; `-i`: no confirmation. */
function sacctmgr(c: ClusterJson, args: string[]): string {
  return execFileSync('sacctmgr', ['-i', ...args], {
    env: { ...process.env, SLURM_CONF: c.slurmConf },
    encoding: 'utf8',
    timeout: 30_000,
  });
}

interface ClusterJ {
  name: string;
  accessRefused?: string;
  limits: { accounts?: string[] };
}

async function formCluster(who: Client): Promise<ClusterJ> {
  const r = await who.get('/api/clusters');
  expect(r.status).toBe(200);
  return (r.body as { clusters: ClusterJ[] }).clusters.find((c) => c.name === 'proj')!;
}

/** Polls the form's view of the cluster until the user is refused there (or admitted again). */
const refusedSoon = (who: Client, refused: boolean) =>
  until(
    `${refused ? 'a refusal' : 'admission'} on the form`,
    async () => ((await formCluster(who)).accessRefused !== undefined) === refused,
    (REFRESH_SECONDS + 10) * 1000,
  );

/** The named refusal: 403, the account field, which project is needed and the site's words. */
function expectRefusal(r: { status: number; body: unknown }): void {
  expect(r.status, JSON.stringify(r.body)).toBe(403);
  const b = r.body as { field: string; error: string };
  expect(b.field).toBe('account');
  expect(b.error).toContain('you need an active project (Slurm account) on Project cluster');
  expect(b.error).toContain(SITE);
}

/** The user's jobs in squeue: every state (`all`, recent ended ones too), or pending and running ones. */
const jobsOf = (c: ClusterJson, user: string, states = 'all') =>
  slurm(c, 'squeue', ['-h', '-t', states, '-u', user, '-o', '%i %T']).trim();

const jobIds = (c: ClusterJson, user: string) =>
  slurm(c, 'squeue', ['-h', '-t', 'all', '-u', user, '-o', '%i']).split('\n').filter(Boolean);

describe.skipIf(!cluster)('access only for members of an active project', () => {
  const c = cluster!;
  keepFailureEvidence(() => ({ browser, gw }));

  beforeAll(async () => {
    ensureWebBuilt();
    gw = await createTestGateway({
      name: 'project-access',
      users: [{ name: 'alice' }, { name: 'bob' }],
      yaml: [
        'clusters:',
        '  - name: proj',
        '    title: Project cluster',
        '    backend: slurm',
        '    projectAccess:',
        `      message: ${JSON.stringify(SITE)}`,
        `      refreshSeconds: ${REFRESH_SECONDS}`,
        '    slurm:',
        `      conf: ${c.slurmConf}`,
        '      runAs: runuser',
        '      partition: interactive',
        '      pollSeconds: 1',
        ...echo.yaml.trimEnd().split('\n'),
      ].join('\n'),
    });
    await gw.start();
    for (const name of ['alice', 'bob'] as const) {
      clients[name] = new Client(gw.url);
      expect((await clients[name].login(name, gw.passwords[name]!)).status).toBe(200);
    }
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    if (running) await clients.alice.del(`/api/sessions/${running.id}`).catch(() => undefined);
    await gw?.stop();
    // The cluster as scripts/cluster.sh made it.
    sacctmgr(c, ['modify', 'user', 'alice', 'where', 'account=research', 'set', 'MaxSubmitJobs=-1']);
    if (!slurm(c, 'sacctmgr', ['-nP', 'show', 'assoc', 'format=User,Account']).includes('bob|physics'))
      sacctmgr(c, ['add', 'user', 'bob', 'Account=physics', 'DefaultAccount=physics']);
    fs.rmSync(echo.dir, { recursive: true, force: true });
  }, 60_000);

  it('a user with an association starts a session, charged to one of their accounts', async () => {
    const mine = await formCluster(clients.alice);
    expect(mine.accessRefused).toBeUndefined();
    expect(mine.limits.accounts).toEqual(['research']);
    const r = await clients.alice.post('/api/sessions', { ...start, account: 'research' });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    running = (r.body as { session: SessionView }).session;
    running = await waitForState(clients.alice, running.id, ['running'], 60_000);
    expect(jobsOf(c, 'alice', 'PD,R').split('\n')).toContain(`${running.jobId} RUNNING`);
  });

  it('an association removed in Slurm stops starts within a refresh period: the named refusal on the form and from the API, nothing submitted', async () => {
    expect((await formCluster(clients.bob)).limits.accounts).toEqual(['physics']);
    // Jobs an earlier test file left (ended, still listed for MinJobAge) are not this test's.
    const earlier = new Set(jobIds(c, 'bob'));
    sacctmgr(c, ['delete', 'user', 'bob', 'where', 'account=physics']);
    await refusedSoon(clients.bob, true);
    const form = await formCluster(clients.bob);
    expect(form.limits.accounts).toEqual([]);
    expect(form.accessRefused).toContain(SITE);
    expectRefusal(await clients.bob.post('/api/sessions', start));
    expectRefusal(
      await clients.bob.post('/api/jobs', {
        cluster: 'proj',
        source: 'text',
        script: '#!/bin/bash\necho hi\n',
        cores: 1,
        memoryGb: 1,
        hours: 0.1,
      }),
    );
    expect(jobIds(c, 'bob').filter((id) => !earlier.has(id))).toEqual([]);
    expect(((await clients.bob.get('/api/sessions')).body as { sessions: unknown[] }).sessions).toEqual([]);

    browser = await launchBrowser({ name: 'project-access' });
    await shareSession(browser.context, gw.url, clients.bob.cookie);
    const page = browser.page;
    page.on('pageerror', (e) => console.error('[project-access e2e] page error:', e.message));
    await page.goto(`${gw.url}/`);
    const alert = page.getByTestId('access-refused');
    await visible(alert);
    expect(await alert.textContent()).toBe(form.accessRefused);
    expect(await page.getByRole('button', { name: 'Start session' }).isDisabled()).toBe(true);
  });

  it('an expired association stops new starts while the running session continues; restored, starts come back', async () => {
    // Slurm keeps an association with a running job, so alice's expires instead.
    sacctmgr(c, ['modify', 'user', 'alice', 'where', 'account=research', 'set', 'MaxSubmitJobs=0']);
    await refusedSoon(clients.alice, true);
    expectRefusal(await clients.alice.post('/api/sessions', start));
    expect(jobsOf(c, 'alice', 'PD,R').split('\n')).toContain(`${running.jobId} RUNNING`);
    const view = ((await clients.alice.get(`/api/sessions/${running.id}`)).body as { session: SessionView })
      .session;
    expect(view.state).toBe('running');
    const app = await clients.alice.req('GET', `${running.url}hello`, undefined, {
      accept: 'application/json',
    });
    expect(app.status).toBe(200);
    expect(JSON.parse(await app.text())).toMatchObject({ app: 'echo', tokenOk: true });

    sacctmgr(c, ['add', 'user', 'bob', 'Account=physics', 'DefaultAccount=physics']);
    await refusedSoon(clients.bob, false);
  });
});
