// Administration end to end (local backend): every admin route refuses non-admins (403) and
// strangers (401), enumerated from the gateway's own route table; drain and announcements through the
// API and the CLI (the running gateway picks CLI changes up); and, in Chromium, an admin stops alice's
// session from the admin page while alice's dashboard shows it ended "stopped by an administrator".
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, shareSession, type TestBrowser } from '../helpers/browser.ts';
import { Client, type SessionView, waitForState } from '../helpers/client.ts';
import { createTestGateway, type TestGateway } from '../helpers/gateway.ts';

const jupyter = { cluster: 'local', app: 'jupyter', cores: 1, memoryGb: 1, hours: 1 };

let gw: TestGateway;
let admin: Client;
let alice: Client;
let bob: Client;
let adminBrowser: TestBrowser;
let aliceBrowser: TestBrowser;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, f: () => Promise<T | undefined | false>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

/** A browser signed in with an API client's session. */
async function browserOf(name: string, c: Client): Promise<TestBrowser> {
  const b = await launchBrowser({ name: `admin-${name}`, viewport: { width: 1280, height: 900 } });
  await shareSession(b.context, gw.url, c.cookie);
  return b;
}

beforeAll(async () => {
  gw = await createTestGateway({
    name: 'admin',
    users: [{ name: 'root-admin', unixUser: 'carol', admin: true }, { name: 'alice' }, { name: 'bob' }],
  });
  await gw.start();
  admin = new Client(gw.url);
  alice = new Client(gw.url);
  bob = new Client(gw.url);
  expect((await admin.login('root-admin', gw.passwords['root-admin']!)).status).toBe(200);
  expect((await alice.login('alice', gw.passwords.alice!)).status).toBe(200);
  expect((await bob.login('bob', gw.passwords.bob!)).status).toBe(200);
});

afterAll(async () => {
  await adminBrowser?.close();
  await aliceBrowser?.close();
  for (const c of [alice, bob]) {
    const list = ((await c?.get('/api/sessions'))?.body as { sessions?: SessionView[] })?.sessions ?? [];
    for (const s of list)
      if (s.state !== 'ended' && s.state !== 'failed') await c.del(`/api/sessions/${s.id}`);
  }
  await sleep(1500);
  await gw?.stop();
});

describe('admin routes', () => {
  it('lists every admin route; a non-admin gets 403 and a stranger 401 on each of them', async () => {
    const r = await admin.get('/api/admin/routes');
    expect(r.status).toBe(200);
    const routes = (r.body as { routes: { method: string; path: string }[] }).routes;
    const names = routes.map((x) => `${x.method} ${x.path}`);
    // The enumeration is real: it holds the routes of this feature and of the auth feature.
    for (const must of [
      'GET /api/admin/sessions',
      'POST /api/admin/sessions/:id/stop',
      'GET /api/admin/jobs',
      'GET /api/admin/clusters',
      'POST /api/admin/clusters/:name/drain',
      'POST /api/admin/clusters/:name/undrain',
      'GET /api/admin/announcements',
      'POST /api/admin/announcements',
      'POST /api/admin/announcements/:id/expire',
      'GET /api/admin/audit',
      'GET /api/admin/routes',
    ])
      expect(names).toContain(must);
    const stranger = new Client(gw.url);
    for (const { method, path: p } of routes) {
      const url = p.replace(/:([A-Za-z]+)/g, (_m, k: string) =>
        k === 'name' ? 'local' : k === 'id' ? '1' : 'x',
      );
      const body = method === 'GET' ? undefined : { message: 'hi', level: 'info' };
      const asBob = await bob.json(method, url, body);
      expect(asBob.status, `${method} ${url} as bob`).toBe(403);
      const asNobody = await stranger.json(method, url, body);
      expect([401, 403], `${method} ${url} signed out`).toContain(asNobody.status);
    }
    console.info(`[admin e2e] ${routes.length} admin routes refuse non-admins`);
  });
});

describe('drain and announcements, from the API and from the CLI', () => {
  it('a drained cluster refuses new sessions with a cluster error; the CLI opens it again', async () => {
    expect((await admin.post('/api/admin/clusters/local/drain')).status).toBe(200);
    const clusters = (await bob.get('/api/clusters')).body as {
      clusters: { name: string; drained: boolean }[];
    };
    expect(clusters.clusters.find((c) => c.name === 'local')?.drained).toBe(true);
    const refused = await bob.post('/api/sessions', jupyter);
    expect(refused.status).toBe(409);
    expect((refused.body as { field: string }).field).toBe('cluster');
    // The CLI writes the database; the running gateway applies it within seconds.
    expect(gw.cli(['admin', 'undrain', 'local'])).toMatch(/open for new sessions/);
    await until('the gateway to reopen local', async () => {
      const b = (await bob.get('/api/clusters')).body as { clusters: { name: string; drained: boolean }[] };
      return b.clusters.find((c) => c.name === 'local')?.drained === false;
    });
    expect(gw.cli(['admin', 'clusters'])).toMatch(/local\s+local\s+no/);
  });

  it('announcements: posted by API or CLI, seen by every user, taken down again', async () => {
    const posted = await admin.post('/api/admin/announcements', {
      message: 'Maintenance on Friday',
      level: 'warning',
      hours: 2,
    });
    expect(posted.status).toBe(201);
    const id = (posted.body as { announcement: { id: number } }).announcement.id;
    const seen = (await alice.get('/api/announcements')).body as { announcements: { message: string }[] };
    expect(seen.announcements.map((a) => a.message)).toContain('Maintenance on Friday');
    expect((await admin.post('/api/admin/announcements', { message: '', level: 'info' })).status).toBe(400);
    gw.cli(['admin', 'announce', 'New GPUs in partition gpu', '--until', '1h']);
    await until('the CLI announcement', async () => {
      const b = (await bob.get('/api/announcements')).body as { announcements: { message: string }[] };
      return b.announcements.some((a) => a.message === 'New GPUs in partition gpu');
    });
    expect((await admin.post(`/api/admin/announcements/${id}/expire`)).status).toBe(200);
    const after = (await alice.get('/api/announcements')).body as { announcements: { message: string }[] };
    expect(after.announcements.map((a) => a.message)).not.toContain('Maintenance on Friday');
    const listed = gw.cli(['admin', 'announcements']);
    expect(listed).toMatch(/New GPUs in partition gpu/);
    const cliId = /^(\d+)\s+info\s+yes/m.exec(listed)?.[1];
    expect(cliId).toBeDefined();
    gw.cli(['admin', 'expire', cliId!]);
  });

  it('the CLI stops a session through the running gateway', async () => {
    const r = await bob.post('/api/sessions', jupyter);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const s = (r.body as { session: SessionView }).session;
    await waitForState(bob, s.id, ['running'], 90_000);
    expect(gw.cli(['admin', 'sessions'])).toContain(s.id);
    const out = gw.cli(['admin', 'stop', s.id]);
    expect(out).toMatch(/ending|ended/);
    const ended = await waitForState(bob, s.id, ['ended'], 30_000);
    expect(ended.reason).toBe('stopped by an administrator');
  });
});

describe('the admin page (Chromium)', () => {
  it("an admin stops alice's session from the admin page; alice sees why it ended", async () => {
    const r = await alice.post('/api/sessions', jupyter);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const s = (r.body as { session: SessionView }).session;
    await waitForState(alice, s.id, ['running'], 90_000);

    aliceBrowser = await browserOf('alice', alice);
    const alicePage = await aliceBrowser.context.newPage();
    await alicePage.goto(`${gw.url}/`);
    await alicePage.locator(`tr[data-session="${s.id}"][data-state="running"]`).waitFor();
    // An announcement reaches alice's open dashboard live.
    await admin.post('/api/admin/announcements', { message: 'Admin page test notice', level: 'info' });
    await alicePage.getByText('Admin page test notice').waitFor();

    adminBrowser = await browserOf('admin', admin);
    const page = await adminBrowser.context.newPage();
    await page.goto(`${gw.url}/admin`);
    await page.getByRole('tab', { name: 'Sessions' }).waitFor();
    const row = page.locator(`tr[data-session="${s.id}"]`);
    await row.waitFor();
    await row.getByRole('button', { name: /Stop alice's session/ }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Stop session' }).click();

    const ended = await waitForState(alice, s.id, ['ended'], 30_000);
    expect(ended.reason).toBe('stopped by an administrator');
    // Alice's open page shows it under Recent with the reason.
    await alicePage.locator('details.recent summary').click();
    await alicePage
      .locator(`details.recent tr[data-session="${s.id}"]`)
      .getByText('stopped by an administrator')
      .waitFor();
    await page.screenshot({ path: path.join(adminBrowser.dir, 'admin-page.png') });
    // The other tabs render for the admin.
    for (const tab of ['Jobs', 'Clusters', 'Announcements', 'Audit log']) {
      await page.getByRole('tab', { name: tab }).click();
      await page.getByRole('tabpanel').waitFor();
    }
    await page.getByRole('tab', { name: 'Audit log' }).click();
    await page.getByRole('cell', { name: 'admin.session.stop' }).first().waitFor();
    // A non-admin has no Admin tab, and the page's data is refused to her.
    await alicePage.goto(`${gw.url}/`);
    expect(await alicePage.getByRole('link', { name: 'Admin' }).count()).toBe(0);
  });
});
