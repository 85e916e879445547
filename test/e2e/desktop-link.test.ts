// One-time desktop links, end to end on the local backend: alice makes a view-only link from her desktop
// session's card ("Share link"), a second, signed-out Chromium opens it and sees the desktop in noVNC;
// the grant it got reaches nothing but that desktop (no API, not her other session, not the session's
// other app); a second use, an expired link and a revoked one are refused with their page, and a
// revoke ends a grant in use; stopping the session ends the link. Every step is in the audit log.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ensureWebBuilt,
  keepFailureEvidence,
  launchBrowser,
  shareSession,
  type TestBrowser,
} from '../helpers/browser.ts';
import { Client, type SessionView, waitForState } from '../helpers/client.ts';
import { createTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { wsStatus } from '../helpers/jupyter.ts';

let gw: TestGateway;
let alice: Client;
let bob: Client;
let owner: TestBrowser;
let guest: TestBrowser;
/** alice's desktop (with a terminal beside it) and her terminal session. */
let D: SessionView;
let T: SessionView;
let link = '';
/** The grant cookie the guest's browser got (`name=value`). */
let grant = '';

const base = { cluster: 'local', cores: 1, memoryGb: 1, hours: 1 };

keepFailureEvidence(() => ({ browser: guest, gw }));

async function start(body: Record<string, unknown>): Promise<SessionView> {
  const r = await alice.post('/api/sessions', { ...base, ...body });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return (r.body as { session: SessionView }).session;
}

/** GET or POST a path with only the given cookie (no sign-in): status, body and Set-Cookie. */
async function asGuest(method: string, path: string, cookie = grant) {
  const r = await fetch(gw.url + path, {
    method,
    headers: { ...(cookie ? { cookie } : {}), origin: gw.url, accept: 'text/html' },
    redirect: 'manual',
  });
  return { status: r.status, text: await r.text(), setCookie: r.headers.get('set-cookie') ?? '' };
}

async function newLink(body: Record<string, unknown>) {
  const r = await alice.post(`/api/sessions/${D.id}/desktop-links`, body);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body as { url: string; link: { id: number; expiresAt: number; state: string } };
}

async function audit(action: string) {
  return gw.query<{ ok: number; target: string | null; details: string }>(
    'select ok, target, details from audit_log where action = ? order by id',
    [action],
  );
}

beforeAll(async () => {
  ensureWebBuilt();
  gw = await createTestGateway({
    name: 'desktop-link',
    users: [{ name: 'alice' }, { name: 'bob' }],
    yaml: 'sessions:\n  desktopLinkMaxMinutes: 5\n',
  });
  await gw.start();
  alice = new Client(gw.url);
  bob = new Client(gw.url);
  expect((await alice.login('alice', gw.passwords.alice!)).status).toBe(200);
  expect((await bob.login('bob', gw.passwords.bob!)).status).toBe(200);
  D = await start({ app: 'desktop', extraApps: ['terminal'] });
  T = await start({ app: 'terminal' });
  [owner, guest] = await Promise.all([
    launchBrowser({ name: 'link-owner' }),
    launchBrowser({ name: 'link-guest' }),
  ]);
  D = await waitForState(alice, D.id, ['running'], 60_000);
  T = await waitForState(alice, T.id, ['running'], 60_000);
}, 120_000);

afterAll(async () => {
  await Promise.all([owner?.close(), guest?.close()]);
  for (const s of [D, T]) if (s) await alice.del(`/api/sessions/${s.id}`).catch(() => undefined);
  await gw?.stop();
});

describe('one-time desktop link', () => {
  it('made from the card, opened once in a signed-out browser: the desktop, view-only', async () => {
    await shareSession(owner.context, gw.url, alice.cookie);
    const page = owner.page;
    await page.goto(`${gw.url}/`);
    await page
      .locator(`tr[data-session="${D.id}"]`)
      .getByRole('button', { name: /^Share link/ })
      .click();
    // Only the desktop's card offers it.
    expect(
      await page
        .locator(`tr[data-session="${T.id}"]`)
        .getByRole('button', { name: /^Share link/ })
        .count(),
    ).toBe(0);
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel(/^Valid for/).fill('5');
    expect(await dialog.getByLabel(/View only/).isChecked()).toBe(true);
    await dialog.getByRole('button', { name: 'Create link' }).click();
    const input = dialog.getByLabel('One-time link');
    await input.waitFor();
    link = await input.inputValue();
    expect(link).toMatch(new RegExp(`^${gw.url}/desktop-link/[A-Za-z0-9_-]{43}$`));
    await dialog.getByText(/not opened yet/).waitFor();

    const g = guest.page;
    await g.goto(link);
    expect(await g.locator('h1').textContent()).toBe('A shared desktop (view only)');
    await g.getByRole('button', { name: 'Open the desktop' }).click();
    await g.waitForURL(`${gw.url}${D.url}`);
    await g.waitForSelector('body[data-state=connected][data-guest=view-only]', { timeout: 20_000 });
    expect(await g.locator('#bar strong').textContent()).toBe('Shared desktop (view only)');
    // The desktop's pixels arrived (its X root colour is on the canvas).
    await expect
      .poll(() =>
        g.evaluate(() => {
          const c = document.querySelector('#screen canvas') as HTMLCanvasElement | null;
          if (!c) return false;
          const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
          for (let i = 0; i < d.length; i += 4 * 97)
            if (((d[i]! << 16) | (d[i + 1]! << 8) | d[i + 2]!) === 0x2f4f6f) return true;
          return false;
        }),
      )
      .toBe(true);
    // A cookie for this session's address only, and no sign-in.
    const cookies = await guest.context.cookies();
    expect(cookies.map((c) => `${c.name} ${c.path} ${c.httpOnly} ${c.sameSite}`)).toEqual([
      `atrium_desktop_link ${D.url} true Strict`,
    ]);
    grant = `atrium_desktop_link=${cookies[0]!.value}`;
    const mine = (await alice.get('/api/desktop-links')).body as { links: { state: string }[] };
    expect(mine.links.map((l) => l.state)).toEqual(['in use']);
    const used = await audit('desktop_link.use');
    expect(used.map((a) => [a.ok, a.target])).toEqual([[1, D.id]]);
  }, 60_000);

  it('the grant reaches that desktop and nothing else', async () => {
    const ws = (p: string) =>
      wsStatus(`${gw.url.replace('http', 'ws')}${p}`, { cookie: grant, origin: gw.url });
    expect((await asGuest('GET', D.url)).status).toBe(200);
    expect(await ws(`${D.url}websockify`)).toBe(101);
    // No API: it is no sign-in.
    for (const p of ['/api/me', '/api/sessions', `/api/sessions/${D.id}`, '/api/desktop-links'])
      expect((await asGuest('GET', p)).status, p).toBe(401);
    // Not alice's other session, not the desktop session's terminal, not another spelling of the owner.
    expect((await asGuest('GET', T.url)).status).toBe(302);
    expect(await ws(`${T.url}pty`)).toBe(401);
    const terminal = D.url.replace(/\/$/, '.terminal/');
    expect((await asGuest('GET', terminal)).status).toBe(404);
    expect(await ws(`${terminal}pty`)).toBe(404);
    expect((await asGuest('GET', D.url.replace('/user/alice/', '/user/bob/'))).status).toBe(302);
    // bob's own sign-in does not make alice's grant his, nor a link of his for her session.
    expect((await bob.post(`/api/sessions/${D.id}/desktop-links`, { minutes: 1 })).status).toBe(404);
    // Only a running desktop session has links, for at most the site's minutes.
    expect((await alice.post(`/api/sessions/${T.id}/desktop-links`, { minutes: 1 })).status).toBe(409);
    const long = await alice.post(`/api/sessions/${D.id}/desktop-links`, { minutes: 6 });
    expect([long.status, (long.body as { field?: string }).field]).toEqual([400, 'minutes']);
  });

  it('refuses a second use, an expired link and a revoked one; a revoke ends a grant in use', async () => {
    await guest.page.goto(link);
    expect(await guest.page.locator('h1').textContent()).toBe('This link has already been used');
    expect((await asGuest('POST', link.slice(gw.url.length), '')).status).toBe(410);

    const short = await newLink({ minutes: 0.002 });
    while (Date.now() <= short.link.expiresAt) await new Promise((r) => setTimeout(r, 20));
    const expired = await asGuest('GET', short.url.slice(gw.url.length), '');
    expect([expired.status, expired.text.includes('This link has expired')]).toEqual([410, true]);
    expect((await asGuest('POST', short.url.slice(gw.url.length), '')).status).toBe(410);

    const revoked = await newLink({ minutes: 1 });
    expect((await alice.del(`/api/desktop-links/${revoked.link.id}`)).status).toBe(200);
    const r = await asGuest('POST', revoked.url.slice(gw.url.length), '');
    expect([r.status, r.text.includes('This link was revoked'), r.setCookie]).toEqual([410, true, '']);
    expect((await asGuest('GET', '/desktop-link/not-a-link', '')).status).toBe(404);

    // A full-access link opened (here by a script), then revoked: its grant no longer gets in.
    const full = await newLink({ minutes: 1, viewOnly: false });
    const opened = await asGuest('POST', full.url.slice(gw.url.length), '');
    expect([opened.status, opened.setCookie]).toEqual([303, expect.stringContaining(`Path=${D.url};`)]);
    const fullGrant = opened.setCookie.split(';')[0]!;
    expect((await asGuest('GET', D.url, fullGrant)).text).toContain('data-guest="full"');
    expect((await alice.del(`/api/desktop-links/${full.link.id}`)).status).toBe(200);
    expect((await asGuest('GET', D.url, fullGrant)).status).toBe(410);

    const refusals = (await audit('desktop_link.use')).filter((a) => a.ok === 0);
    expect(refusals.map((a) => (JSON.parse(a.details) as { reason: string }).reason)).toEqual([
      'in use',
      'in use',
      'expired',
      'expired',
      'revoked',
      'no such link',
    ]);
    expect((await audit('desktop_link.create')).length).toBe(4);
    expect((await audit('desktop_link.revoke')).length).toBe(2);
  });

  it('stopping the session ends the link: the guest loses the desktop', async () => {
    const g = guest.page;
    await g.goto(`${gw.url}${D.url}`);
    await g.waitForSelector('body[data-state=connected]');
    expect((await alice.del(`/api/sessions/${D.id}`)).status).toBe(200);
    await g.waitForSelector('body[data-state=disconnected]');
    await waitForState(alice, D.id, ['ended'], 30_000);
    const after = await g.goto(`${gw.url}${D.url}`);
    expect(after?.status()).toBe(410);
    expect(await g.locator('h1').textContent()).toBe('This desktop link has ended');
    const ends = await audit('desktop_link.end');
    expect(ends.map((a) => a.target)).toEqual([D.id]);
    const mine = (await alice.get('/api/desktop-links')).body as { links: { id: number; state: string }[] };
    expect(mine.links.at(-1)?.state).toBe('ended');
  }, 45_000);
});
