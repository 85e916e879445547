// The web UI on a phone: headless Chromium 420 px wide, signed in as an administrator with two Jupyter
// sessions on the local backend (and a batch job when the Slurm test cluster is up). Every page fits the
// screen's width (no sideways scroll), the header's tabs and user menu are on screen, each session's
// Connect and Stop can be scrolled to and clicked, each card says when its session started, and the
// "ready" notice names the app and the cluster as the page does. With ATRIUM_SCREENSHOTS=1 it also
// writes docs/screenshots/phone-*.png, the pictures the README and docs/ui.md show.
import fs from 'node:fs';
import path from 'node:path';
import type { Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CHROMIUM,
  ensureWebBuilt,
  gone,
  keepFailureEvidence,
  launchBrowser,
  submitLogin,
  type TestBrowser,
  textOf,
  visible,
} from '../helpers/browser.ts';
import { Client, type SessionView, waitForState } from '../helpers/client.ts';
import { type ClusterJson, cancelAll, testCluster } from '../helpers/cluster.ts';
import { createTestGateway, ROOT, type TestGateway } from '../helpers/gateway.ts';

const WIDTH = 420;
const SHOTS = process.env.ATRIUM_SCREENSHOTS === '1' ? path.join(ROOT, 'docs', 'screenshots') : null;
const noBrowser = !fs.existsSync(CHROMIUM);
if (noBrowser) console.warn(`[ui-phone e2e] SKIPPED: no ${CHROMIUM}`);
// The jobs and queue pages have rows only with a batch cluster; without one they are checked empty.
const slurm = testCluster('ui-phone (jobs and queue with rows)', { up: 'nodes' });

let gw: TestGateway;
let browser: TestBrowser;
let page: Page;
let alice: Client;
const sessions: string[] = [];
let jobId: string | undefined;

async function shot(name: string, fullPage = false): Promise<void> {
  if (!SHOTS) return;
  // The pictures show the page, not the passing toasts over it.
  await dismissToasts();
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `phone-${name}.png`), fullPage });
}

/** The page is no wider than the screen: nothing to scroll to sideways. */
async function expectNoSidewaysScroll(where: string): Promise<void> {
  const { scroll, client, wide } = await page.evaluate(() => {
    const root = document.documentElement;
    // Names the elements that stick out, so that a failure says where to look.
    const wide = [...document.body.querySelectorAll('*')]
      .filter((e) => e.getBoundingClientRect().right > root.clientWidth + 0.5)
      .filter((e) => !e.closest('.table-wrap, .visually-hidden, .usermenu-panel'))
      .slice(0, 5)
      .map((e) => `${e.tagName.toLowerCase()}.${[...e.classList].join('.')}`);
    return { scroll: root.scrollWidth, client: root.clientWidth, wide };
  });
  expect(client, where).toBe(WIDTH);
  expect(scroll, `${where}: scrollWidth ${scroll} > ${client} (${wide.join(', ')})`).toBeLessThanOrEqual(
    client,
  );
}

/** Scrolled into view, the element lies within the screen's width, and a click would reach it. */
async function expectReachable(l: Locator, what: string): Promise<void> {
  // A toast of another test's event (a job started) may lie over the element, as it would for a user,
  // who would dismiss it; info toasts also go by themselves after 8 s.
  await dismissToasts();
  await l.scrollIntoViewIfNeeded();
  const box = await l.boundingBox();
  expect(box, what).not.toBeNull();
  expect(box!.x, what).toBeGreaterThanOrEqual(0);
  expect(box!.x + box!.width, what).toBeLessThanOrEqual(WIDTH);
  // trial: waits until the element is visible, stable, enabled and the topmost at its centre; no click.
  await l.click({ trial: true, timeout: 5_000 });
}

async function dismissToasts(): Promise<void> {
  const close = page.locator('.toasts').getByRole('button', { name: 'Dismiss' });
  while ((await close.count()) > 0) await close.first().click();
}

async function expectHeaderReachable(tabs: string[]): Promise<void> {
  await page.evaluate(() => window.scrollTo(0, 0));
  const nav = page.getByRole('navigation', { name: 'Main' });
  for (const t of tabs) await expectReachable(nav.getByRole('link', { name: t, exact: true }), `tab ${t}`);
  await expectReachable(page.getByRole('button', { name: 'Account menu for alice' }), 'the user menu');
}

async function goTo(tab: string, url: RegExp): Promise<void> {
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: tab, exact: true }).click();
  await page.waitForURL(url);
}

beforeAll(async () => {
  if (noBrowser) return;
  ensureWebBuilt();
  const batch = slurm
    ? [
        '  - name: hpc',
        '    backend: slurm',
        '    title: Test cluster',
        '    slurm:',
        `      conf: ${slurm.slurmConf}`,
        '      runAs: runuser',
        '      partition: interactive',
        '      pollSeconds: 1',
      ]
    : [];
  gw = await createTestGateway({
    name: 'phone',
    users: [{ name: 'alice', admin: true }],
    yaml: ['clusters:', '  - name: local', '    backend: local', '    title: This machine', ...batch].join(
      '\n',
    ),
  });
  await gw.start();
  alice = new Client(gw.url);
  expect((await alice.login('alice', gw.passwords.alice!)).status).toBe(200);
  browser = await launchBrowser({ name: 'phone', viewport: { width: WIDTH, height: 860 } });
  page = browser.page;
});

keepFailureEvidence(() => ({ browser, gw }));

afterAll(async () => {
  for (const id of sessions) {
    const s = ((await alice?.get(`/api/sessions/${id}`))?.body as { session?: SessionView })?.session;
    if (s && s.state !== 'ended' && s.state !== 'failed') await alice.del(`/api/sessions/${id}`);
  }
  for (const id of sessions)
    await waitForState(alice, id, ['ended', 'failed'], 30_000).catch(() => undefined);
  if (jobId) await alice.del(`/api/jobs/hpc/${jobId}`).catch(() => undefined);
  await browser?.close();
  await gw?.stop();
  if (slurm) await cancelAll(slurm as ClusterJson).catch(() => undefined);
  if (gw?.dir) fs.rmSync(gw.dir, { recursive: true, force: true });
});

describe.skipIf(noBrowser)('web UI at 420 px wide', () => {
  it('the login page fits the screen', async () => {
    await page.goto(`${gw.url}/login`);
    await visible(page.getByLabel('User name'));
    await expectNoSidewaysScroll('login');
    await expectReachable(page.getByRole('button', { name: 'Sign in', exact: true }), 'Sign in');
    await shot('login');
    await submitLogin(page, 'alice', gw.passwords.alice!);
    await page.waitForURL(`${gw.url}/`);
  });

  it('the header shows every tab and the user menu, whose panel opens on screen', async () => {
    await visible(page.getByRole('heading', { name: 'My sessions' }));
    await expectHeaderReachable(['Sessions', 'Jobs', 'Queue', 'Admin', 'Settings']);
    await page.getByRole('button', { name: 'Account menu for alice' }).click();
    await expectReachable(page.getByRole('button', { name: 'Sign out', exact: true }), 'Sign out');
    await expectReachable(page.getByRole('button', { name: 'Sign out everywhere' }), 'Sign out everywhere');
    await shot('menu');
    await page.keyboard.press('Escape');
    await gone(page.getByRole('button', { name: 'Sign out everywhere' }));
    await expectNoSidewaysScroll('sessions, none yet');
  });

  it('starts Jupyter from the form; the ready notice names the app and the cluster', async () => {
    const start = page.getByRole('button', { name: 'Start session' });
    await expectReachable(start, 'Start session');
    await page.getByLabel('User interface').selectOption({ label: 'Jupyter' });
    await page.getByLabel('Cores').fill('1');
    await page.getByLabel('Memory (GB)').fill('1');
    await page.getByLabel('Hours').fill('1');
    await expectNoSidewaysScroll('the new-session form');
    await page.getByRole('heading', { name: 'New session' }).evaluate((e) => e.scrollIntoView());
    await shot('form');
    await start.click();
    const row = page.locator('tr[data-session]');
    await visible(row.first());
    sessions.push((await row.first().getAttribute('data-session'))!);
    // A second one through the API: two sessions of the same app, told apart by when they started.
    const r = await alice.post('/api/sessions', {
      cluster: 'local',
      app: 'jupyter',
      cores: 1,
      memoryGb: 1,
      hours: 1,
    });
    expect(r.status).toBe(201);
    sessions.push((r.body as { session: SessionView }).session.id);
    for (const id of sessions) await waitForState(alice, id, ['running']);
    const toast = page.locator('.toast').filter({ hasText: 'Session ready' }).first();
    await visible(toast, 30_000);
    expect(await textOf(toast)).toContain('Your session Jupyter on This machine is ready.');
    const notes = (await alice.get('/api/notifications')).body as {
      notifications: { kind: string; body: string }[];
    };
    const ready = notes.notifications.filter((n) => n.kind === 'session.ready').map((n) => n.body);
    expect(ready).toEqual([
      'Your session Jupyter on This machine is ready.',
      'Your session Jupyter on This machine is ready.',
    ]);
  });

  it('each session card says when it started, and its Connect and Stop are on screen', async () => {
    await dismissToasts();
    for (const id of sessions) {
      const row = page.locator(`tr[data-session="${id}"][data-state="running"]`);
      await visible(row, 30_000);
      const s = ((await alice.get(`/api/sessions/${id}`)).body as { session: { startedAt: number } }).session;
      // The browser runs in UTC (test/helpers/browser.ts).
      const at = new Date(s.startedAt);
      const hhmm = at.toISOString().slice(11, 16);
      const time = row.locator('time');
      // The day is named too when the session started before today (a run across midnight).
      expect(await textOf(time)).toMatch(new RegExp(`^started (\\w{3} \\d{1,2} \\w{3} )?${hhmm}$`));
      expect(await time.getAttribute('datetime')).toBe(at.toISOString());
      const title = (await time.getAttribute('title')) ?? '';
      expect(title).toContain(String(at.getUTCFullYear()));
      expect(title).toContain(hhmm);
      await expectReachable(row.getByRole('link', { name: 'Connect to Jupyter' }), `Connect of ${id}`);
      await expectReachable(row.getByRole('button', { name: 'Stop Jupyter' }), `Stop of ${id}`);
    }
    await expectNoSidewaysScroll('sessions, two running');
    await page.evaluate(() => window.scrollTo(0, 0));
    await shot('sessions');
  });

  it('stops a session from its card through the confirmation dialog', async () => {
    const id = sessions[1]!;
    // The active list's row (an ended session moves to the collapsed "Recent" list).
    const row = page.locator(`table.sessions tr[data-session="${id}"]`);
    await row.getByRole('button', { name: 'Stop Jupyter' }).click();
    const dialog = page.getByRole('dialog');
    await expectReachable(dialog.getByRole('button', { name: 'Stop session' }), 'the dialog');
    await expectReachable(dialog.getByRole('button', { name: 'Keep it running' }), 'the dialog');
    await dialog.getByRole('button', { name: 'Stop session' }).click();
    await gone(row, 30_000);
    await expectNoSidewaysScroll('sessions, one ended');
  });

  it('the jobs page fits the screen', async () => {
    if (slurm) {
      await cancelAll(slurm as ClusterJson);
      const r = await alice.post('/api/jobs', {
        cluster: 'hpc',
        source: 'text',
        script: '#!/bin/bash\n#SBATCH --job-name=phone-test\n#SBATCH --output=/dev/null\nsleep 300\n',
      });
      expect(r.status, JSON.stringify(r.body)).toBeLessThan(300);
      jobId = (r.body as { job: { jobId: string } }).job.jobId;
    }
    await goTo('Jobs', /\/jobs$/);
    await visible(page.getByRole('heading', { name: 'My jobs' }));
    if (jobId) {
      const row = page.locator(`tr[data-job="${jobId}"]`);
      await visible(row);
      await expectReachable(row.getByRole('link', { name: 'phone-test' }), 'the job link');
    }
    await expectHeaderReachable(['Sessions', 'Jobs', 'Queue', 'Admin', 'Settings']);
    await expectNoSidewaysScroll('jobs');
    await shot('jobs', true);
    if (jobId) {
      // The job's own page: its facts and its output.
      await page.locator(`tr[data-job="${jobId}"]`).getByRole('link', { name: 'phone-test' }).click();
      await page.waitForURL(new RegExp(`/jobs/hpc/${jobId}$`));
      await visible(page.getByRole('heading', { name: 'Output' }));
      await expectReachable(page.getByRole('button', { name: 'Cancel job' }), 'Cancel job');
      await expectNoSidewaysScroll('a job');
    }
  });

  it('the queue page fits the screen', async () => {
    await goTo('Queue', /\/queue$/);
    await visible(page.getByRole('heading', { name: 'Cluster status' }));
    if (slurm) {
      await page
        .getByRole('form', { name: 'Filters' })
        .getByLabel('Cluster')
        .selectOption({ label: 'Test cluster' });
      await visible(page.locator('tr[data-partition="batch"]'));
      await visible(page.locator(`tr[data-job="${jobId}"]`));
    }
    await expectHeaderReachable(['Sessions', 'Jobs', 'Queue', 'Admin', 'Settings']);
    await expectNoSidewaysScroll('queue');
    await shot('queue', true);
  });

  it('the settings page fits the screen, and a token can be revoked from it', async () => {
    const t = await alice.post('/api/tokens', { name: 'phone-token', scopes: ['read'] });
    expect(t.status, JSON.stringify(t.body)).toBeLessThan(300);
    await goTo('Settings', /\/settings$/);
    const row = page.getByRole('row').filter({ hasText: 'phone-token' });
    await visible(row);
    await expectReachable(row.getByRole('button', { name: 'Revoke phone-token' }), 'Revoke');
    await expectHeaderReachable(['Sessions', 'Jobs', 'Queue', 'Admin', 'Settings']);
    await expectNoSidewaysScroll('settings');
    await shot('settings');
  });

  it('every tab of the admin page fits the screen; Stop of each session is on screen', async () => {
    const a = await alice.post('/api/admin/announcements', {
      message: 'Maintenance on Friday from 08:00: sessions stop then.',
      level: 'warning',
    });
    expect(a.status, JSON.stringify(a.body)).toBeLessThan(300);
    await goTo('Admin', /\/admin/);
    const row = page.locator(`tr[data-session="${sessions[0]}"]`);
    await visible(row);
    await expectReachable(row.getByRole('button', { name: /^Stop alice's session/ }), 'admin Stop');
    await expectHeaderReachable(['Sessions', 'Jobs', 'Queue', 'Admin', 'Settings']);
    await expectNoSidewaysScroll('admin, sessions');
    await shot('admin', true);
    for (const tab of ['Jobs', 'Clusters', 'Announcements', 'Audit log']) {
      await page.evaluate(() => window.scrollTo(0, 0));
      const button = page.getByRole('tab', { name: tab });
      await expectReachable(button, `admin tab ${tab}`);
      await button.click();
      await visible(page.locator(`[role=tabpanel][aria-labelledby="${await button.getAttribute('id')}"]`));
      if (tab === 'Announcements')
        await expectReachable(page.getByRole('button', { name: 'Take down' }), 'Take down');
      await expectNoSidewaysScroll(`admin, ${tab}`);
    }
  });

  it('the dashboard with an announcement still fits the screen', async () => {
    await goTo('Sessions', /\/$/);
    await visible(page.getByText('Maintenance on Friday'));
    await expectNoSidewaysScroll('sessions with an announcement');
  });
});
