// The jobs pages in headless Chromium against the real Slurm test cluster: submit a pasted script from
// the form, watch it go to "completed" live in My jobs, get an in-page and a browser notification when
// it completes, follow its output on the job page, and see the queue page.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CHROMIUM,
  ensureWebBuilt,
  keepFailureEvidence,
  launchBrowser,
  signIn,
  type TestBrowser,
  visible,
} from '../helpers/browser.ts';
import { type ClusterJson, cancelAll, testCluster } from '../helpers/cluster.ts';
import { createTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { gatewayYaml, homeOf, writeAs } from '../helpers/jobs-cluster.ts';

const SHOTS = path.join(os.tmpdir(), 'atrium-jobs-ui');

const cluster = testCluster('jobs-ui', { up: 'nodes' });
const noBrowser = !fs.existsSync(CHROMIUM);
if (cluster && noBrowser) console.warn(`[jobs-ui e2e] SKIPPED: no ${CHROMIUM}`);

// Records every browser notification the page creates (headless Chromium shows none on screen).
const RECORD_NOTIFICATIONS = `(() => {
  const Orig = window.Notification;
  if (!Orig) return;
  window.__atriumNotes = [];
  function Recorded(title, options) {
    window.__atriumNotes.push({ title: String(title), body: options && options.body, tag: options && options.tag });
    return new Orig(title, options);
  }
  Recorded.prototype = Orig.prototype;
  Object.defineProperty(Recorded, 'permission', { get: () => Orig.permission });
  Recorded.requestPermission = (...a) => Orig.requestPermission(...a);
  window.Notification = Recorded;
})();`;

describe.skipIf(!cluster || noBrowser)('jobs pages in a browser', () => {
  const c = cluster as ClusterJson;
  let gw: TestGateway;
  let browser: TestBrowser;
  let page: Page;
  const dir = path.join(homeOf('alice'), 'atrium-jobs-ui');
  // Unique names: alice's jobs of earlier runs are still in the queue's recent history (MinJobAge).
  const run = randomBytes(3).toString('hex');
  const jobName = `ui-job-${run}`;
  const followName = `ui-follow-${run}`;

  beforeAll(async () => {
    ensureWebBuilt();
    await cancelAll(c);
    fs.rmSync(dir, { recursive: true, force: true });
    writeAs('alice', path.join(dir, '.keep'), '');
    gw = await createTestGateway({ name: 'jobsui', users: [{ name: 'alice' }], yaml: gatewayYaml(c) });
    await gw.start();
    browser = await launchBrowser({ name: 'jobs-ui', viewport: { width: 1280, height: 900 } });
    await browser.context.grantPermissions(['notifications'], { origin: gw.url });
    await browser.context.addInitScript(RECORD_NOTIFICATIONS);
    page = browser.page;
  });

  keepFailureEvidence(() => ({ browser, gw }));

  afterAll(async () => {
    await browser?.close();
    await gw?.stop();
    if (c) await cancelAll(c).catch(() => undefined);
    if (gw?.dir) fs.rmSync(gw.dir, { recursive: true, force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('signs in and opens the Jobs page from the navigation', async () => {
    await signIn(page, gw, 'alice');
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Jobs' }).click();
    await page.waitForURL(`${gw.url}/jobs`);
    await visible(page.getByRole('heading', { name: 'My jobs' }));
    await visible(page.getByRole('heading', { name: 'Submit a job' }));
    expect(await page.evaluate(() => Notification.permission)).toBe('granted');
  });

  it('checks the form in the browser: a relative path is refused before anything is sent', async () => {
    await page.getByLabel('Script path').fill('job.sh');
    await page.getByRole('button', { name: 'Submit job' }).click();
    await visible(page.getByText('Script path: an absolute path, starting with /'));
    expect(await page.getByLabel('Script path').getAttribute('aria-invalid')).toBe('true');
  });

  it('submits a pasted script; My jobs follows it live to "completed"; a notification appears in the page and in the browser', async () => {
    await page.getByText('Paste a script').click();
    const script = [
      '#!/bin/bash',
      `#SBATCH --job-name=${jobName}`,
      `#SBATCH --output=${dir}/ui-%j.out`,
      'for i in 1 2 3 4 5 6; do echo "ui line $i"; sleep 1; done',
      '',
    ].join('\n');
    await page.getByLabel('Script', { exact: true }).fill(script);
    await page.getByLabel('Working directory').fill(dir);
    await page.getByRole('button', { name: 'Submit job' }).click();
    const row = page.locator('tr[data-job]').filter({ hasText: jobName });
    await visible(row);
    const jobId = await row.getAttribute('data-job');
    expect(jobId).toMatch(/^\d+$/);
    await visible(row.getByText('running', { exact: true }), 60_000);
    fs.mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, 'jobs-running.png'), fullPage: true });
    // No reload: the live events move the row to "completed" with its exit code.
    const done = page.locator(`tr[data-job="${jobId}"][data-state="completed"]`);
    await visible(done, 60_000);
    await visible(done.getByText('exit code 0'));
    // The in-page notification (a toast) ...
    const toast = page.locator('.toast').filter({ hasText: 'Job completed' });
    await visible(toast, 15_000);
    expect(await toast.textContent()).toContain(`Job ${jobId} "${jobName}"`);
    // ... and the browser notification.
    await expect
      .poll(
        () =>
          page.evaluate(() => (window as unknown as { __atriumNotes: { title: string }[] }).__atriumNotes),
        {
          timeout: 15_000,
        },
      )
      .toContainEqual(expect.objectContaining({ title: 'Job completed' }));
    const notes = await page.evaluate(
      () => (window as unknown as { __atriumNotes: { title: string; body: string }[] }).__atriumNotes,
    );
    expect(notes.find((n) => n.title === 'Job completed')?.body).toContain(`Job ${jobId}`);
    await page.screenshot({ path: path.join(SHOTS, 'jobs-completed.png'), fullPage: true });
  });

  it('the job page follows the output of a running job as it writes it, and cancel works', async () => {
    await page
      .getByRole('button', { name: 'Dismiss' })
      .first()
      .click()
      .catch(() => undefined);
    await page.getByText('Paste a script').click();
    const script = [
      '#!/bin/bash',
      `#SBATCH --job-name=${followName}`,
      `#SBATCH --output=${dir}/follow-%j.out`,
      'for i in $(seq 1 60); do echo "tick $i"; sleep 1; done',
      '',
    ].join('\n');
    await page.getByLabel('Script', { exact: true }).fill(script);
    await page.getByRole('button', { name: 'Submit job' }).click();
    const row = page.locator('tr[data-job]').filter({ hasText: followName });
    await visible(row);
    await row.getByRole('link', { name: followName }).click();
    await page.waitForURL(/\/jobs\/hpc\/\d+$/);
    await visible(page.getByRole('heading', { name: new RegExp(followName) }));
    const out = page.locator('pre.output-text');
    await visible(out.getByText(/tick 2/), 30_000);
    // Later lines arrive without a reload.
    await visible(out.getByText(/tick 5/), 30_000);
    await page.screenshot({ path: path.join(SHOTS, 'job-output.png'), fullPage: true });
    await page.getByRole('button', { name: 'Cancel job' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel job' }).click();
    await visible(page.locator('dd[data-state="cancelled"]'), 30_000);
  });

  it('shows the queue and the cluster status', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Queue' }).click();
    await page.waitForURL(`${gw.url}/queue`);
    await visible(page.getByRole('heading', { name: 'Cluster status' }));
    await visible(page.getByText('This cluster keeps jobs private'));
    await visible(page.locator('tr[data-partition="batch"]'));
    await page.screenshot({ path: path.join(SHOTS, 'queue.png'), fullPage: true });
  });

  it('offers notification preferences with the browser permission in Settings', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings' }).click();
    await visible(page.getByText('Your browser allows notifications from this site.'));
    const box = page.getByLabel('A job completed');
    expect(await box.isChecked()).toBe(true);
    await box.uncheck();
    await expect
      .poll(async () => {
        const r = await page.request.get(`${gw.url}/api/notifications/prefs`);
        return ((await r.json()) as { kinds: Record<string, boolean> }).kinds['job.completed'];
      })
      .toBe(false);
  });
});
