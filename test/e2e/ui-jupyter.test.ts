// The web UI in a real browser: sign in, start Jupyter from the dashboard form, watch the row go
// live to "running", Connect, create a notebook in Jupyter's own UI and run print(6*7) there, then
// stop the session from the dashboard. Chromium (Debian's) is driven by playwright-core.
import fs from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ensureWebBuilt,
  gone,
  keepFailureEvidence,
  launchBrowser,
  submitLogin,
  type TestBrowser,
  textOf,
  visible,
} from '../helpers/browser.ts';
import { Client } from '../helpers/client.ts';
import { createTestGateway, ROOT, type TestGateway } from '../helpers/gateway.ts';

const SCREENSHOT = path.join(ROOT, 'docs', 'screenshot.png');

let gw: TestGateway;
let browser: TestBrowser;
let page: Page;
let sessionId: string | undefined;
let notebookPath: string | undefined;
const sessionPosts: string[] = [];

/** PIDs of processes that belong to a session (its app and agent name the session in argv or env). */
function pidsOfSession(id: string): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'latin1');
      const env = fs.readFileSync(`/proc/${d}/environ`, 'latin1');
      if (cmd.includes(`/${id}/`) || env.includes(`ATRIUM_SESSION_ID=${id}\0`)) out.push(Number(d));
    } catch {
      // gone, or a kernel thread
    }
  }
  return out;
}

async function waitFor(
  cond: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

beforeAll(async () => {
  ensureWebBuilt();
  gw = await createTestGateway({ name: 'ui', users: [{ name: 'alice' }] });
  await gw.start();
  browser = await launchBrowser({ name: 'ui' });
  page = browser.page;
  page.on('request', (r) => {
    if (r.method() === 'POST' && new URL(r.url()).pathname === '/api/sessions') sessionPosts.push(r.url());
  });
});

// On a failure, keep a picture of every open page and the end of the gateway's log.
keepFailureEvidence(() => ({ browser, gw }));

afterAll(async () => {
  // Whatever happened above, leave nothing running: the session (through the API), the browser,
  // the gateway, and any process of our session that outlived it.
  if (sessionId && gw?.proc) {
    const c = new Client(gw.url);
    if ((await c.login('alice', gw.passwords.alice!)).ok) {
      if (notebookPath)
        await c.del(`/user/alice/${sessionId}/api/contents/${encodeURIComponent(notebookPath)}`);
      const r = await c.get(`/api/sessions/${sessionId}`);
      const state = (r.body as { session?: { state: string } }).session?.state;
      if (state && state !== 'ended' && state !== 'failed') await c.del(`/api/sessions/${sessionId}`);
    }
  }
  await browser?.close();
  if (sessionId) {
    const id = sessionId;
    await waitFor(() => pidsOfSession(id).length === 0, 20_000, 'the session processes to exit').catch(() => {
      for (const pid of pidsOfSession(id)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    });
  }
  await gw?.stop();
  if (gw?.dir) fs.rmSync(gw.dir, { recursive: true, force: true });
});

describe('web UI: sign in, start Jupyter, run a notebook cell, stop', () => {
  it('sends a signed-out visitor to the login page and refuses a wrong password', async () => {
    await page.goto(`${gw.url}/`);
    await page.waitForURL(/\/login$/);
    await visible(page.getByLabel('User name'));
    await submitLogin(page, 'alice', 'not-the-password');
    await expect.poll(() => textOf(page.getByRole('alert'))).toBe('Wrong user name or password.');
    expect(await page.getByLabel('Password').getAttribute('aria-invalid')).toBe('true');
  });

  it('signs in and shows the dashboard', async () => {
    await submitLogin(page, 'alice', gw.passwords.alice!);
    await page.waitForURL(`${gw.url}/`);
    await visible(page.getByRole('heading', { name: 'My sessions' }));
    await visible(page.getByRole('heading', { name: 'New session' }));
    await visible(page.getByText('No active sessions'));
    await visible(page.getByRole('button', { name: 'Account menu for alice' }));
    // One cluster: no cluster choice; the free-resources table of this machine is shown.
    expect(await page.getByLabel('Cluster').count()).toBe(0);
    const free = page.getByRole('table', { name: /Free resources/ });
    await visible(free.getByRole('columnheader', { name: 'Free cores' }));
    await visible(free.getByRole('rowheader', { name: 'no free GPU' }));
  });

  it('checks the form in the browser and sends nothing when it is wrong', async () => {
    const cores = page.getByLabel('Cores');
    await cores.fill('999');
    await page.getByRole('button', { name: 'Start session' }).click();
    const message = page.getByText(/^Cores: at most \d+ per node on this cluster$/);
    await visible(message);
    expect(await cores.getAttribute('aria-invalid')).toBe('true');
    const describedBy = (await cores.getAttribute('aria-describedby')) ?? '';
    const messageId = await message.getAttribute('id');
    expect(messageId).toBeTruthy();
    expect(describedBy.split(' ')).toContain(messageId);
    expect(await cores.evaluate((el) => el === document.activeElement)).toBe(true);
    await page.waitForTimeout(500);
    expect(sessionPosts).toEqual([]);
    await visible(page.getByText('No active sessions'));
    // Corrected, the message goes away as the user types.
    await cores.fill('1');
    await gone(message);
    expect(await cores.getAttribute('aria-invalid')).toBeNull();
  });

  it('starts Jupyter and shows the session reaching "running" live', async () => {
    await page.getByLabel('User interface').selectOption({ label: 'Jupyter' });
    await page.getByLabel('Cores').fill('1');
    await page.getByLabel('Memory (GB)').fill('1');
    await page.getByLabel('Hours').fill('1');
    await page.getByLabel('Name').fill('UI test');
    await page.getByRole('button', { name: 'Start session' }).click();
    await waitFor(() => sessionPosts.length === 1, 10_000, 'the POST');

    const row = page.getByRole('row').filter({ hasText: 'UI test' });
    await visible(row);
    sessionId = (await row.getAttribute('data-session')) ?? undefined;
    expect(sessionId).toMatch(/^[a-z0-9]{4,32}$/);
    // No reload and no polling: the row follows the live events.
    await visible(row.getByText('running', { exact: true }), 90_000);
    expect(await row.textContent()).toContain('1 core · 1 GB · 1 h');
    expect(await row.textContent()).toMatch(/(59 min|1 h) left/);
    const connect = row.getByRole('link', { name: /Connect/ });
    const api = (await (await page.request.get(`${gw.url}/api/sessions/${sessionId}`)).json()) as {
      session: { openUrl: string };
    };
    expect(api.session.openUrl.startsWith(`/user/alice/${sessionId}/`)).toBe(true);
    expect(await connect.getAttribute('href')).toBe(api.session.openUrl);
    // Let the "requested" toast go, then record what the dashboard looks like.
    const dismiss = page.getByRole('button', { name: 'Dismiss' });
    while ((await dismiss.count()) > 0) await dismiss.first().click();
    fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    // From the top (the header and the list), wherever the form's focus left the page.
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: SCREENSHOT });
  });

  it('connects to Jupyter, creates a notebook and runs print(6*7) in it', async () => {
    const row = page.getByRole('row').filter({ hasText: 'UI test' });
    await row.getByRole('link', { name: /Connect/ }).click();
    await page.waitForURL(new RegExp(`/user/alice/${sessionId}/tree`), { timeout: 60_000 });
    const newButton = page.locator('#new-dropdown-button');
    await visible(newButton, 60_000);
    await newButton.click();
    const python = page.locator('#new-menu').getByText(/^Python 3/);
    const [nb] = await Promise.all([
      browser.context.waitForEvent('page', { timeout: 30_000 }),
      python.click(),
    ]);
    await nb.waitForURL(new RegExp(`/user/alice/${sessionId}/notebooks/.+\\.ipynb`), { timeout: 60_000 });
    notebookPath = decodeURIComponent(new URL(nb.url()).pathname.split('/notebooks/')[1]!);
    // The kernel indicator turns idle once the kernel is up (a cell run earlier would be queued anyway).
    await nb
      .locator('#kernel_indicator_icon.kernel_idle_icon')
      .waitFor({ state: 'attached', timeout: 60_000 });
    const cell = nb.locator('.cell.code_cell').first();
    await cell.locator('.CodeMirror').click();
    await nb.keyboard.type('print(6*7)');
    await nb.keyboard.press('Shift+Enter');
    const output = cell.locator('.output_area .output_text');
    await visible(output, 60_000);
    expect((await output.textContent())?.trim()).toBe('42');
    await nb.close();
  });

  it('signs out, and a session link signed out leads through the login page into the session', async () => {
    await page.goto(`${gw.url}/`);
    await page.getByRole('button', { name: 'Account menu for alice' }).click();
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await page.waitForURL(/\/login$/);
    expect((await page.request.get(`${gw.url}/api/me`)).status()).toBe(401);

    // The proxy sends a signed-out visitor of a session to /login?next=<session address>.
    await page.goto(`${gw.url}/user/alice/${sessionId}/tree`);
    await page.waitForURL(/\/login\?next=/);
    await submitLogin(page, 'alice', gw.passwords.alice!);
    await page.waitForURL(new RegExp(`/user/alice/${sessionId}/tree`), { timeout: 30_000 });
    await visible(page.locator('#new-dropdown-button'), 60_000);
  });

  it('stops the session from the dashboard and lists it under Recent', async () => {
    // Remove the notebook the test made (Jupyter answers through the gateway with the browser's cookie).
    const del = await page.request.delete(
      `${gw.url}/user/alice/${sessionId}/api/contents/${encodeURIComponent(notebookPath!)}`,
    );
    expect(del.status()).toBe(204);
    notebookPath = undefined;

    await page.goto(`${gw.url}/`);
    const row = page.getByRole('row').filter({ hasText: 'UI test' });
    await visible(row.getByText('running', { exact: true }));
    await row.getByRole('button', { name: /^Stop/ }).click();
    const dialog = page.getByRole('dialog');
    await visible(dialog);
    await dialog.getByRole('button', { name: 'Stop session' }).click();
    await visible(page.getByText('No active sessions'), 30_000);
    await page.getByText(/^Recent \(\d+\)$/).click();
    const ended = page.getByRole('row').filter({ hasText: 'UI test' });
    await visible(ended);
    expect(await ended.textContent()).toContain('ended');
    expect(await ended.textContent()).toContain('stopped by you');
    // Its whole log opens from the card (the owner's, as text).
    const logLink = ended.getByRole('link', { name: /^Log of/ });
    expect(await logLink.getAttribute('href')).toBe(`/api/sessions/${sessionId}/log`);
    const log = await page.request.get(`${gw.url}/api/sessions/${sessionId}/log`);
    expect(log.status()).toBe(200);
    expect(await log.text()).toContain(`==> ~/.atrium/sessions/${sessionId}/app.log <==`);
    const id = sessionId!;
    await waitFor(() => pidsOfSession(id).length === 0, 20_000, 'the session processes to exit');
  });
});
