// Idle culling on real activity signals (local backend, real Jupyter, Xvnc, Chromium), with a short
// policy (idle.minutes 0.4: 24 s; warned 12 s before; looked at every second): a Jupyter session whose
// kernel runs time.sleep(300) is never idle; a desktop that gets mouse input through the gateway's bridge
// is kept. Without input the desktop is stopped with the idle reason; the Jupyter session, once its
// kernel is interrupted, is warned in the page and as a browser notification, typing in its terminal
// starts its clock again, and then it is stopped too. The admin API shows idle times; /metrics counts
// the stops.
import fs from 'node:fs';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CHROMIUM,
  ensureWebBuilt,
  keepFailureEvidence,
  launchBrowser,
  shareSession,
  type TestBrowser,
  visible,
} from '../helpers/browser.ts';
import { Client, type SessionView, waitForState } from '../helpers/client.ts';
import { createTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { createKernel, runInKernel } from '../helpers/jupyter.ts';
import { sleep, until } from '../helpers/wait.ts';

const asRoot = process.getuid?.() === 0;
const haveApps = ['/usr/bin/jupyter-notebook', '/usr/bin/Xvnc', CHROMIUM].every((p) => fs.existsSync(p));
if (!asRoot || !haveApps)
  console.warn(
    '[idle e2e] SKIPPED: needs root, jupyter-notebook, Xvnc and Chromium (scripts/test.sh installs them)',
  );

const POLICY_MS = 24_000; // idle.minutes: 0.4
const REASON = 'stopped after 24 seconds idle';

// Records every browser notification the page creates (headless Chromium shows none on screen).
const RECORD_NOTIFICATIONS = `(() => {
  const Orig = window.Notification;
  if (!Orig) return;
  window.__atriumNotes = [];
  function Recorded(title, options) {
    window.__atriumNotes.push({ title: String(title), body: options && options.body });
    return new Orig(title, options);
  }
  Recorded.prototype = Orig.prototype;
  Object.defineProperty(Recorded, 'permission', { get: () => Orig.permission });
  Recorded.requestPermission = (...a) => Orig.requestPermission(...a);
  window.Notification = Recorded;
})();`;

interface Idle {
  id: string;
  busy: boolean;
  warnedAt: number | null;
  checkedAt: number;
  lastActivityAt: number;
  idleSeconds: number;
  minutes: number;
}

type View = SessionView & { readyAt: number; apps: { id: string; openUrl: string }[] };

describe.skipIf(!asRoot || !haveApps)('idle culling', () => {
  let gw: TestGateway;
  let alice: Client;
  let admin: Client;
  let browser: TestBrowser;
  let page: Page;
  let jupyter: View;
  let desktop: View;
  let kernel: string;
  let sleeping: Promise<string>;
  let moving = true;
  let mover: Promise<void> = Promise.resolve();

  const idleOf = async (id: string): Promise<Idle | undefined> =>
    ((await alice.get('/api/sessions/idle')).body as { sessions: Idle[] }).sessions.find((s) => s.id === id);

  const start = async (body: Record<string, unknown>): Promise<View> => {
    const r = await alice.post('/api/sessions', {
      cluster: 'local',
      cores: 1,
      memoryGb: 1,
      hours: 1,
      ...body,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return (await waitForState(
      alice,
      (r.body as { session: View }).session.id,
      ['running'],
      120_000,
    )) as View;
  };

  beforeAll(async () => {
    ensureWebBuilt();
    gw = await createTestGateway({
      name: 'idle',
      users: [{ name: 'alice' }, { name: 'idle-admin', unixUser: 'carol', admin: true }],
      yaml: ['idle:', '  minutes: 0.4', '  warnMinutes: 0.2', '  checkSeconds: 1'].join('\n'),
    });
    await gw.start();
    alice = new Client(gw.url);
    expect((await alice.login('alice', gw.passwords.alice!)).status).toBe(200);
    admin = new Client(gw.url);
    expect((await admin.login('idle-admin', gw.passwords['idle-admin']!)).status).toBe(200);
    browser = await launchBrowser({ name: 'idle', timeout: 30_000 });
    await browser.context.grantPermissions(['notifications'], { origin: gw.url });
    await browser.context.addInitScript(RECORD_NOTIFICATIONS);
    await shareSession(browser.context, gw.url, alice.cookie);
    page = browser.page;
    await page.goto(gw.url);
    await visible(page.getByRole('heading', { name: 'My sessions' }));
  });

  keepFailureEvidence(() => ({ browser, gw }));

  afterAll(async () => {
    moving = false;
    await mover;
    await browser?.close();
    for (const s of [jupyter, desktop]) {
      if (!s) continue;
      const r = await alice.get(`/api/sessions/${s.id}`).catch(() => null);
      const state = (r?.body as { session?: SessionView } | undefined)?.session?.state;
      if (state && state !== 'ended' && state !== 'failed') {
        await alice.del(`/api/sessions/${s.id}`);
        await waitForState(alice, s.id, ['ended'], 30_000).catch(() => undefined);
      }
    }
    await gw?.stop();
    if (gw?.dir) fs.rmSync(gw.dir, { recursive: true, force: true });
  });

  it('keeps a Jupyter session whose kernel runs time.sleep(300), and a desktop that gets mouse input', async () => {
    [jupyter, desktop] = await Promise.all([
      start({ app: 'jupyter', extraApps: ['terminal'] }),
      start({ app: 'desktop' }),
    ]);
    // Someone at the desktop: the mouse moves over noVNC's canvas every second.
    const desk = await browser.context.newPage();
    await desk.goto(gw.url + desktop.openUrl);
    await desk.waitForSelector('body[data-state=connected]', { timeout: 30_000 });
    mover = (async () => {
      for (let i = 0; moving; i++) {
        await desk.mouse.move(200 + (i % 40) * 10, 300 + (i % 2) * 20);
        await sleep(1000);
      }
      await desk.close();
    })();
    // A long computation in the kernel.
    const url = gw.url + jupyter.url;
    kernel = await createKernel(url, alice.cookie);
    // The kernel answers first: a "busy" seen while it still starts (which counts as busy) would
    // otherwise pass for the computation, and code sent before its channels are up can be lost.
    await runInKernel(url, alice.cookie, kernel, 'print(1)');
    sleeping = runInKernel(url, alice.cookie, kernel, 'import time\ntime.sleep(300)\n', 600_000).catch(
      (e: Error) => e.message,
    );
    await until('the kernel to be busy', async () => (await idleOf(jupyter.id))?.busy, 60_000);
    // Both are looked at after their idle time has passed since they started: still running, not warned.
    await until(
      'a look at both sessions after their idle time',
      async () => {
        const j = await idleOf(jupyter.id);
        const d = await idleOf(desktop.id);
        return (
          j &&
          d &&
          j.checkedAt > jupyter.readyAt + POLICY_MS + 2000 &&
          d.checkedAt > desktop.readyAt + POLICY_MS + 2000
        );
      },
      120_000,
    );
    const j = (await idleOf(jupyter.id))!;
    const d = (await idleOf(desktop.id))!;
    expect(j).toMatchObject({ busy: true, warnedAt: null, minutes: 0.4 });
    expect(d).toMatchObject({ busy: false, warnedAt: null });
    expect(d.idleSeconds).toBeLessThan(POLICY_MS / 1000 / 2);
    for (const s of [jupyter, desktop])
      expect(
        ((await alice.get(`/api/sessions/${s.id}`)).body as { session: SessionView }).session.state,
      ).toBe('running');
    // Administrators see every session's idle time.
    const all = (await admin.get('/api/admin/idle')).body as { enabled: boolean; sessions: Idle[] };
    expect(all.enabled).toBe(true);
    expect(all.sessions.map((s) => s.id).sort()).toEqual([jupyter.id, desktop.id].sort());
    expect((await alice.get('/api/admin/idle')).status).toBe(403);
  });

  it('stops the desktop once its input stops, with the idle reason; warns and stops the Jupyter session whose terminal input reset its clock', async () => {
    moving = false;
    await mover;
    // The kernel is interrupted: from now on the Jupyter session is idle too.
    const intr = await alice.req('POST', `${jupyter.url}api/kernels/${kernel}/interrupt`);
    expect(intr.status).toBe(204);
    expect(await sleeping).toContain('KeyboardInterrupt');

    // The warning comes to the page (a toast) and to the browser.
    const toast = page.locator('.toast').filter({ hasText: 'Idle session will be stopped' });
    await visible(toast.first(), 60_000);
    await until('a browser notification', () =>
      page.evaluate(() =>
        ((window as unknown as { __atriumNotes?: { title: string }[] }).__atriumNotes ?? []).some(
          (n) => n.title === 'Idle session will be stopped',
        ),
      ),
    );
    const warned = await until('the Jupyter session to be warned', async () => {
      const j = await idleOf(jupyter.id);
      return j?.warnedAt ? j : undefined;
    });

    // Typing in its terminal: the clock starts again and the warning is withdrawn.
    const term = await browser.context.newPage();
    await term.goto(gw.url + jupyter.apps[0]!.openUrl);
    await term.waitForSelector('body[data-state=open]');
    await term.keyboard.type('echo still-here\n');
    const reset = await until('the clock to start again', async () => {
      const j = await idleOf(jupyter.id);
      return j && j.warnedAt === null && j.lastActivityAt > warned.warnedAt! ? j : undefined;
    });
    expect(reset.idleSeconds).toBeLessThan(12);
    await term.close();

    // The desktop, without input, is stopped with the idle reason.
    const d = await waitForState(alice, desktop.id, ['ended'], 120_000);
    expect(d.reason).toBe(REASON);
    // The Jupyter session, idle again, is warned again and then stopped.
    const j = await waitForState(alice, jupyter.id, ['ended'], 120_000);
    expect(j.reason).toBe(REASON);
    const notes = (await alice.get('/api/notifications')).body as {
      notifications: { kind: string; body: string }[];
    };
    const idleNotes = notes.notifications.filter((n) => n.kind === 'session.idle');
    expect(idleNotes.length).toBeGreaterThanOrEqual(3);
    expect(idleNotes.some((n) => n.body.includes('Remote desktop on This machine'))).toBe(true);
    // The page says why they ended.
    await page.getByText(/^Recent \(/).click();
    for (const s of [jupyter, desktop])
      await visible(page.locator(`tr[data-session="${s.id}"]`).getByText(REASON), 30_000);

    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(/atrium_sessions_culled_total\{cluster="local",app="desktop"\} 1/);
    expect(metrics).toMatch(/atrium_sessions_culled_total\{cluster="local",app="jupyter"\} 1/);
    const audit = (await admin.get('/api/admin/audit?action=session.idle_stop')).body as {
      entries: { target: string }[];
    };
    expect(audit.entries.map((e) => e.target).sort()).toEqual([jupyter.id, desktop.id].sort());
  });
});
