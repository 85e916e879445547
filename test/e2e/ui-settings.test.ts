// The web UI's sign-in messages and Settings page in a real browser: single sign-on errors on the login
// page (and the SSO button passing ?next= on), then an API token made in the UI with the `read` scope,
// shown once, used from Node (GET allowed, POST refused), revoked in the UI (then refused), and
// "Sign out everywhere". Chromium (Debian's) is driven by playwright-core.
import fs from 'node:fs';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ensureWebBuilt,
  gone,
  keepFailureEvidence,
  launchBrowser,
  signIn,
  submitLogin,
  type TestBrowser,
  textOf,
  visible,
} from '../helpers/browser.ts';
import { Client } from '../helpers/client.ts';
import { createTestGateway, freePort, type TestGateway } from '../helpers/gateway.ts';

let gw: TestGateway;
let browser: TestBrowser;
let page: Page;
let token = '';

/** A request from a script, with the token and nothing of the browser's. */
function withToken(method: string, p: string, body?: unknown): Promise<Response> {
  return fetch(`${gw.url}${p}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

beforeAll(async () => {
  ensureWebBuilt();
  // Single sign-on is configured at an address where nothing answers: starting it fails at once and
  // sends the browser back to /login?error=unavailable, which is what the login page test needs.
  const deadPort = await freePort();
  gw = await createTestGateway({
    name: 'ui-settings',
    users: [{ name: 'alice' }],
    yaml: `auth:
  oidc:
    issuer: http://127.0.0.1:${deadPort}
    clientId: atrium
    label: Sign in with Test IdP
    allowInsecure: true
`,
  });
  await gw.start();
  browser = await launchBrowser({ name: 'ui-settings', timeout: 15_000 });
  await browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: gw.url });
  page = browser.page;
});

keepFailureEvidence(() => ({ browser, gw }));

afterAll(async () => {
  await browser?.close();
  await gw?.stop();
  if (gw?.dir) fs.rmSync(gw.dir, { recursive: true, force: true });
});

describe('web UI: sign-in messages, API tokens, sign out everywhere', () => {
  it('explains single sign-on errors on the login page, and drops the code from the address', async () => {
    await page.goto(`${gw.url}/login?error=not_allowed&next=${encodeURIComponent('/settings')}`);
    await expect
      .poll(() => textOf(page.getByRole('alert')))
      .toBe('Your account is not allowed to use this gateway. Ask the administrators to give you access.');
    await page.waitForURL(`${gw.url}/login?next=%2Fsettings`);

    await page.goto(`${gw.url}/login?error=something-new`);
    await expect
      .poll(() => textOf(page.getByRole('alert')))
      .toBe('Single sign-on did not work. Please try again.');
  });

  it('passes ?next= to the single sign-on start, and shows the error it comes back with', async () => {
    const starts: string[] = [];
    const onRequest = (r: { url(): string }) => {
      if (new URL(r.url()).pathname === '/api/auth/oidc/start') starts.push(r.url());
    };
    page.on('request', onRequest);
    try {
      await page.goto(`${gw.url}/login?next=${encodeURIComponent('/settings?x=1')}`);
      await page.getByRole('button', { name: 'Sign in with Test IdP' }).click();
      // Nothing answers at the issuer: the gateway sends the browser back with error=unavailable.
      await expect
        .poll(() => textOf(page.getByRole('alert')))
        .toBe('The identity provider cannot be reached right now. Try again in a few minutes.');
      expect(starts).toHaveLength(1);
      expect(new URL(starts[0]!).searchParams.get('next')).toBe('/settings?x=1');
    } finally {
      page.off('request', onRequest);
    }
  });

  it('signs in and opens Settings from the tabs', async () => {
    await signIn(page, gw, 'alice');
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings' }).click();
    await page.waitForURL(`${gw.url}/settings`);
    await visible(page.getByRole('heading', { level: 1, name: 'Settings' }));
    await visible(page.getByRole('heading', { name: 'API tokens' }));
    await visible(page.getByText('You have no active tokens.'));
    expect(await page.title()).toBe('Settings · Atrium');
  });

  it('checks the new-token form before sending it', async () => {
    const posts: string[] = [];
    const onRequest = (r: { method(): string; url(): string }) => {
      if (r.method() === 'POST' && new URL(r.url()).pathname === '/api/tokens') posts.push(r.url());
    };
    page.on('request', onRequest);
    try {
      await page.getByRole('button', { name: 'Create token' }).click();
      await visible(page.getByText('Give the token a name, e.g. the script or machine that uses it.'));
      await visible(page.getByText('Choose at least one scope.'));
      const name = page.getByLabel('Name', { exact: true });
      expect(await name.getAttribute('aria-invalid')).toBe('true');
      expect(await name.evaluate((el) => el === document.activeElement)).toBe(true);
      await page.waitForTimeout(300);
      expect(posts).toEqual([]);
    } finally {
      page.off('request', onRequest);
    }
  });

  it('creates a read-only token and shows it once, with a copy button', async () => {
    await page.getByLabel('Name', { exact: true }).fill('ci script');
    await page.getByRole('checkbox', { name: /^read\b/ }).check();
    await page.getByLabel('Expires in (days)').fill('7');
    await page.getByRole('button', { name: 'Create token' }).click();

    const value = page.getByLabel('New API token');
    await visible(value);
    token = await value.inputValue();
    expect(token).toMatch(/^atr_[A-Za-z0-9_-]{20,}$/);
    await visible(page.getByText('Copy it now: this is the only time it is shown.'));
    await page.getByRole('button', { name: 'Copy', exact: true }).click();
    await visible(page.getByText('Copied to the clipboard.'));
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(token);

    const row = page.getByRole('row').filter({ hasText: 'ci script' });
    await visible(row);
    expect((await row.locator('td').first().textContent())?.trim()).toBe('read');
    expect(await row.textContent()).toContain('never'); // last used

    // Once dismissed, it is gone from the page for good.
    await page.getByRole('button', { name: 'Done, I have saved it' }).click();
    await gone(value);
    expect(await page.content()).not.toContain(token);
    await page.reload();
    await visible(page.getByRole('row').filter({ hasText: 'ci script' }));
    expect(await page.content()).not.toContain(token);
  });

  it('the token reads (GET) but cannot start a session (POST), nor make more tokens', async () => {
    const list = await withToken('GET', '/api/sessions');
    expect(list.status).toBe(200);
    expect(Array.isArray(((await list.json()) as { sessions?: unknown }).sessions)).toBe(true);

    const start = await withToken('POST', '/api/sessions', {
      app: 'jupyter',
      cores: 1,
      memoryGb: 1,
      hours: 1,
    });
    expect(start.status).toBe(403);
    expect(((await start.json()) as { error: string }).error).toMatch(/scope/);

    const more = await withToken('POST', '/api/tokens', { name: 'more', scopes: ['read'] });
    expect(more.status).toBe(403);

    // The list shows that it was used.
    await page.reload();
    const row = page.getByRole('row').filter({ hasText: 'ci script' });
    await visible(row);
    await expect.poll(async () => (await row.locator('td').nth(3).textContent())?.trim()).not.toBe('never');
  });

  it('revokes the token after a confirmation, and then the token is refused', async () => {
    const row = page.getByRole('row').filter({ hasText: 'ci script' });
    await row.getByRole('button', { name: 'Revoke ci script' }).click();
    const dialog = page.getByRole('dialog');
    await visible(dialog);
    // Cancelling keeps it.
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await gone(dialog);
    expect((await withToken('GET', '/api/sessions')).status).toBe(200);

    await row.getByRole('button', { name: 'Revoke ci script' }).click();
    await visible(dialog);
    await dialog.getByRole('button', { name: 'Revoke token' }).click();
    await visible(page.getByText('You have no active tokens.'));
    await page.getByText('Revoked and expired (1)').click();
    const revoked = page.getByRole('table', { name: 'Revoked and expired API tokens' }).getByRole('row', {
      name: /ci script/,
    });
    await visible(revoked);
    expect(await revoked.textContent()).toContain('revoked');

    const after = await withToken('GET', '/api/sessions');
    expect(after.status).toBe(401);
  });

  it("signs out everywhere: this browser and the others, then on to the provider's logout address", async () => {
    const other = new Client(gw.url);
    expect((await other.login('alice', gw.passwords.alice!)).ok).toBe(true);
    expect((await other.get('/api/me')).status).toBe(200);

    // As with single sign-on, the gateway's answer names the provider's end-session address (stood
    // in for by a page of the gateway): the browser must go there.
    const bodies: unknown[] = [];
    await page.route('**/api/logout', async (route) => {
      bodies.push(route.request().postDataJSON());
      const response = await route.fetch();
      const json = { ...((await response.json()) as object), logoutUrl: `${gw.url}/login?at=provider` };
      await route.fulfill({ response, json });
    });
    try {
      await page.getByRole('button', { name: 'Sign out everywhere' }).click();
      await page.waitForURL(`${gw.url}/login?at=provider`);
    } finally {
      await page.unroute('**/api/logout');
    }
    expect(bodies).toEqual([{ everywhere: true }]);
    await visible(page.getByLabel('User name'));
    expect((await page.request.get(`${gw.url}/api/me`)).status()).toBe(401);
    expect((await other.get('/api/me')).status).toBe(401);
  });

  it("signs out from the menu, also on to the provider's logout address", async () => {
    await submitLogin(page, 'alice', gw.passwords.alice!);
    await page.waitForURL(`${gw.url}/`);
    const bodies: unknown[] = [];
    await page.route('**/api/logout', async (route) => {
      bodies.push(route.request().postDataJSON());
      const response = await route.fetch();
      const json = { ...((await response.json()) as object), logoutUrl: `${gw.url}/login?at=provider-2` };
      await route.fulfill({ response, json });
    });
    try {
      await page.getByRole('button', { name: 'Account menu for alice' }).click();
      await page.getByRole('button', { name: 'Sign out', exact: true }).click();
      await page.waitForURL(`${gw.url}/login?at=provider-2`);
    } finally {
      await page.unroute('**/api/logout');
    }
    expect(bodies).toEqual([{ everywhere: false }]);
    expect((await page.request.get(`${gw.url}/api/me`)).status()).toBe(401);
  });
});
