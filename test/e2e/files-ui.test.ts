// The Files page in headless Chromium, with the real Slurm test cluster for batch jobs: alice uploads
// three files (one of 50 MB, whose progress bar is seen moving), lists and sorts them, renames one,
// edits a script in the editor (CodeMirror, with highlighting), submits it as a batch job and reads its
// output, downloads a folder as an archive and checks what is in it, deletes (after confirming). Every
// file she made is hers on disk. The page fits a 420 px wide phone screen. With ATRIUM_SCREENSHOTS=1 it
// also writes the pictures of docs/files.md to docs/screenshots/.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CHROMIUM,
  ensureWebBuilt,
  gone,
  keepFailureEvidence,
  launchBrowser,
  signIn,
  type TestBrowser,
  visible,
} from '../helpers/browser.ts';
import { type ClusterJson, cancelAll, testCluster } from '../helpers/cluster.ts';
import { createTestGateway, ROOT, type TestGateway } from '../helpers/gateway.ts';
import { gatewayYaml, homeOf } from '../helpers/jobs-cluster.ts';
import { until } from '../helpers/wait.ts';

const cluster = testCluster('files-ui', { up: 'nodes' });
const noBrowser = !fs.existsSync(CHROMIUM);
if (cluster && noBrowser) console.warn(`[files-ui e2e] SKIPPED: no ${CHROMIUM}`);

const BIG = 50 * 1024 * 1024;
const SHOTS = process.env.ATRIUM_SCREENSHOTS === '1' ? path.join(ROOT, 'docs', 'screenshots') : null;

async function shot(page: Page, name: string): Promise<void> {
  if (!SHOTS) return;
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
}

describe.skipIf(!cluster || noBrowser)('the Files page in a browser', () => {
  const c = cluster as ClusterJson;
  let gw: TestGateway;
  let browser: TestBrowser;
  let page: Page;
  const run = randomBytes(3).toString('hex');
  const dir = path.join(homeOf('alice'), `files-ui-${run}`);
  let local: string;
  let bigData: Buffer;
  const aliceUid = Number(execFileSync('id', ['-u', 'alice'], { encoding: 'utf8' }));
  const row = (name: string) => page.locator(`tr[data-entry="${name}"]`);

  beforeAll(async () => {
    ensureWebBuilt();
    await cancelAll(c);
    execFileSync('runuser', ['-u', 'alice', '--', 'mkdir', '-p', dir]);
    // What alice has on her own computer.
    local = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-files-ui-'));
    fs.writeFileSync(
      path.join(local, 'job.sh'),
      [
        '#!/bin/bash',
        `#SBATCH --job-name=files-ui-${run}`,
        'echo "rows: $(wc -l < measurements.csv)"',
        '',
      ].join('\n'),
    );
    fs.writeFileSync(path.join(local, 'data.csv'), 'x,y\n1,2\n3,4\n');
    bigData = randomBytes(BIG);
    fs.writeFileSync(path.join(local, 'big.bin'), bigData);
    gw = await createTestGateway({
      name: 'files-ui',
      users: [{ name: 'alice' }],
      yaml: gatewayYaml(c, 'files:\n  maxUploadMb: 64\n'),
    });
    await gw.start();
    browser = await launchBrowser({
      name: 'files-ui',
      viewport: { width: 1280, height: 900 },
      timeout: 30_000,
    });
    page = browser.page;
  });

  keepFailureEvidence(() => ({ browser, gw }));

  afterAll(async () => {
    await browser?.close();
    await gw?.stop();
    if (c) await cancelAll(c).catch(() => undefined);
    for (const d of [dir, local, gw?.dir]) if (d) fs.rmSync(d, { recursive: true, force: true });
  });

  it('opens Files from the navigation, at the home folder', async () => {
    await signIn(page, gw, 'alice');
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Files' }).click();
    await page.waitForURL(`${gw.url}/files`);
    await visible(page.locator('#files-title').getByText('Home'));
    await page.goto(`${gw.url}/files?path=${encodeURIComponent(dir)}`);
    await visible(page.getByText('This folder is empty.'));
  });

  it('uploads three files, one of 50 MB, with a progress bar that moves', async () => {
    // A slower link, so the progress of the big file can be seen on the way.
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false,
      latency: 0,
      downloadThroughput: -1,
      uploadThroughput: 12 * 1024 * 1024,
    });
    await page
      .locator('input[type=file]')
      .setInputFiles(['job.sh', 'data.csv', 'big.bin'].map((f) => path.join(local, f)));
    const bar = page.getByRole('progressbar', { name: 'Upload of big.bin' });
    const midway = await until(
      'the big upload to be on its way',
      async () => {
        const v = await bar.evaluate((p: HTMLProgressElement) => ({ value: p.value, max: p.max }));
        return v.value > 0 && v.value < v.max ? v : undefined;
      },
      60_000,
      50,
    );
    expect(midway.max).toBe(BIG);
    for (const f of ['job.sh', 'data.csv', 'big.bin'])
      await visible(page.locator(`li[data-upload="${f}"][data-state="done"]`), 90_000);
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false,
      latency: 0,
      downloadThroughput: -1,
      uploadThroughput: -1,
    });
    await cdp.detach();
    for (const f of ['job.sh', 'data.csv', 'big.bin']) await visible(row(f));
    await shot(page, 'files');
    expect(fs.readFileSync(path.join(dir, 'big.bin')).equals(bigData)).toBe(true);
    expect(await bar.evaluate((p: HTMLProgressElement) => p.value)).toBe(BIG);
  });

  it('lists and sorts; renames a file', async () => {
    const names = () =>
      page.locator('tr[data-entry]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-entry')));
    expect(await names()).toEqual(['big.bin', 'data.csv', 'job.sh']);
    await page.getByRole('button', { name: 'Size' }).click();
    expect(await page.locator('th[aria-sort]').textContent()).toContain('Size');
    expect(await names()).toEqual(
      ['data.csv', 'job.sh', 'big.bin'].sort(
        (a, b) => fs.statSync(path.join(dir, a)).size - fs.statSync(path.join(dir, b)).size,
      ),
    );
    await page.getByRole('button', { name: 'Size' }).click();
    expect((await names())[0]).toBe('big.bin');
    await page.getByRole('button', { name: 'Rename data.csv' }).click();
    const dialog = page.getByRole('dialog', { name: 'Rename "data.csv"' });
    await dialog.getByLabel('New name').fill('measurements.csv');
    await dialog.getByRole('button', { name: 'Rename' }).click();
    await visible(row('measurements.csv'));
    await gone(row('data.csv'));
    expect(fs.existsSync(path.join(dir, 'measurements.csv'))).toBe(true);
  });

  it('edits a script in the editor, submits it as a batch job and reads its output', async () => {
    await page.getByRole('link', { name: 'Edit job.sh' }).click();
    const editor = page.getByRole('textbox', { name: 'Contents of job.sh' });
    await visible(editor);
    await visible(page.getByText(/Shell · saved/));
    // Laid out and highlighted (CodeMirror's styles are in force under the page's CSP): the line numbers
    // beside the text, and the comment and keywords in colours of their own.
    const look = await page.locator('.cm-editor').evaluate((ed) => {
      const g = ed.querySelector('.cm-gutters')!.getBoundingClientRect();
      const c = ed.querySelector('.cm-content')!.getBoundingClientRect();
      const base = getComputedStyle(ed.querySelector('.cm-content')!).color;
      const colours = new Set(
        [...ed.querySelectorAll('.cm-line span')].map((x) => getComputedStyle(x).color),
      );
      colours.delete(base);
      return { beside: g.right <= c.left + 1 && Math.abs(g.top - c.top) < 8, colours: colours.size };
    });
    expect(look).toMatchObject({ beside: true });
    expect(look.colours).toBeGreaterThan(1);
    await editor.click();
    await page.keyboard.press('Control+End');
    await page.keyboard.type('echo edited-in-the-browser\n');
    await visible(page.getByText(/unsaved changes/));
    await shot(page, 'files-editor');
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await visible(page.getByText(/Shell · saved/));
    expect(fs.readFileSync(path.join(dir, 'job.sh'), 'utf8')).toContain('echo edited-in-the-browser\n');
    await page.getByRole('button', { name: 'Submit as a batch job' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Submit' }).click();
    await page.waitForURL(/\/jobs\/hpc\/\d+$/);
    const out = page.locator('pre.output-text');
    await visible(out.getByText('edited-in-the-browser'), 90_000);
    expect(await out.textContent()).toContain('rows: 3');
  });

  it('downloads a folder as an archive with what it holds', async () => {
    await page.goto(`${gw.url}/files?path=${encodeURIComponent(dir)}`);
    await page.getByRole('button', { name: 'New folder' }).click();
    const mk = page.getByRole('dialog', { name: 'New folder' });
    await mk.getByLabel('Folder name').fill('results');
    await mk.getByRole('button', { name: 'Create' }).click();
    await visible(row('results'));
    await page.getByRole('button', { name: 'Move measurements.csv' }).click();
    const mv = page.getByRole('dialog', { name: 'Move "measurements.csv"' });
    await mv.getByLabel('To the folder').fill(path.join(dir, 'results'));
    await mv.getByRole('button', { name: 'Move' }).click();
    await gone(row('measurements.csv'));
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Download results as an archive' }).click(),
    ]);
    expect(download.suggestedFilename()).toBe('results.tar.gz');
    const archive = path.join(local, 'results.tar.gz');
    await download.saveAs(archive);
    expect(execFileSync('tar', ['-tzf', archive], { encoding: 'utf8' }).trim().split('\n').sort()).toEqual([
      'results/',
      'results/measurements.csv',
    ]);
    const out = path.join(local, 'x');
    fs.mkdirSync(out);
    execFileSync('tar', ['-xzf', archive, '-C', out]);
    expect(fs.readFileSync(path.join(out, 'results', 'measurements.csv'), 'utf8')).toBe('x,y\n1,2\n3,4\n');
  });

  it('deletes after confirming; everything alice made belongs to her', async () => {
    for (const name of ['big.bin', 'results']) {
      await page.getByRole('button', { name: `Delete ${name}` }).click();
      const dialog = page.getByRole('dialog', { name: `Delete "${name}"?` });
      await dialog.getByRole('button', { name: 'Delete' }).click();
      await gone(row(name));
      expect(fs.existsSync(path.join(dir, name))).toBe(false);
    }
    const left = fs.readdirSync(dir);
    expect(left).toContain('job.sh');
    for (const f of left) expect(fs.statSync(path.join(dir, f)).uid, f).toBe(aliceUid);
  });

  it('fits a 420 px wide phone screen', async () => {
    await page.setViewportSize({ width: 420, height: 860 });
    await page.reload();
    await visible(row('job.sh'));
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(420);
    await shot(page, 'phone-files');
    await row('job.sh').getByRole('button', { name: 'Delete job.sh' }).scrollIntoViewIfNeeded();
    expect(await row('job.sh').getByRole('button', { name: 'Delete job.sh' }).isVisible()).toBe(true);
  });
});
