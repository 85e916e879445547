// Saved settings of the new-session form, in headless Chromium on the local backend with a small echo
// app: the form reopens with the last-used values; a preset is saved, applied, changed, renamed and made
// the default; "Launch again" on an ended session starts an identical one; after the site lowers a limit,
// the default preset's value that no longer fits is shown with its field named and nothing is sent.
// Through the API: a preset with an unknown field or a value out of range is refused naming the field,
// and an administrator's site preset is seen by every user and read-only for them.
import fs from 'node:fs';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ensureWebBuilt,
  keepFailureEvidence,
  launchBrowser,
  signIn,
  type TestBrowser,
  textOf,
  visible,
} from '../helpers/browser.ts';
import { Client, type SessionView, waitForState } from '../helpers/client.ts';
import { echoApps } from '../helpers/echo-app.ts';
import { createTestGateway, type TestGateway } from '../helpers/gateway.ts';

const echo = echoApps();
let gw: TestGateway;
let browser: TestBrowser;
let page: Page;
let alice: Client;
let adm: Client;
const started: string[] = [];

interface Preset {
  id: number;
  name: string;
  cluster: string;
  values: Record<string, unknown>;
  isDefault: boolean;
  site: boolean;
}
type Saved = { presets: Preset[]; lastUsed: { app: string; values: Record<string, unknown> }[] };
type Full = SessionView & { request: Record<string, unknown>; label: string | null };

const saved = async () => (await alice.get('/api/presets')).body as Saved;
const mine = async (name: string) => (await saved()).presets.find((p) => p.name === name && !p.site);
const sessions = async () => ((await alice.get('/api/sessions')).body as { sessions: Full[] }).sessions;
const field = (label: string) => page.getByLabel(label, { exact: true });
const formValues = async () => ({
  app: await field('User interface').inputValue(),
  cores: await field('Cores').inputValue(),
  memoryGb: await field('Memory (GB)').inputValue(),
  hours: await field('Hours').inputValue(),
  label: await field('Name (optional)').inputValue(),
});

/** Starts a session with the form as it is; the one alice did not have before. */
async function startFromForm(): Promise<Full> {
  const before = new Set((await sessions()).map((s) => s.id));
  await page.getByRole('button', { name: 'Start session' }).click();
  const fresh = async () => (await sessions()).filter((s) => !before.has(s.id));
  await expect.poll(async () => (await fresh()).length).toBe(1);
  const s = (await fresh())[0]!;
  started.push(s.id);
  return s;
}

beforeAll(async () => {
  ensureWebBuilt();
  gw = await createTestGateway({
    name: 'presets',
    users: [{ name: 'alice' }, { name: 'adm', unixUser: 'nobody', admin: true }],
    yaml: `clusters:
  - name: local
    backend: local
    title: This machine
    limits:
      maxCores: 4
      maxMemoryGb: 8
${echo.yaml}`,
  });
  await gw.start();
  alice = new Client(gw.url);
  adm = new Client(gw.url);
  expect((await alice.login('alice', gw.passwords.alice!)).status).toBe(200);
  expect((await adm.login('adm', gw.passwords.adm!)).status).toBe(200);
  browser = await launchBrowser({ name: 'presets' });
  page = browser.page;
});

keepFailureEvidence(() => ({ browser, gw }));

afterAll(async () => {
  for (const id of started) await alice?.del(`/api/sessions/${id}`).catch(() => undefined);
  for (const id of started) await waitForState(alice, id, ['ended', 'failed'], 30_000).catch(() => undefined);
  await browser?.close();
  await gw?.stop();
  if (gw?.dir) fs.rmSync(gw.dir, { recursive: true, force: true });
  fs.rmSync(echo.dir, { recursive: true, force: true });
});

describe('saved settings and relaunch', () => {
  it('refuses a preset with an unknown field or a value out of range, naming the field', async () => {
    const base = { name: 'bad', cluster: 'local' };
    const tries: [unknown, string][] = [
      [{ ...base, values: { cores: 64 } }, 'values.cores'],
      [{ ...base, values: { hours: -1 } }, 'values.hours'],
      [{ ...base, values: { app: 'matlab' } }, 'values.app'],
      [{ ...base, values: { nodes: 2 } }, 'values.nodes'],
      [{ ...base, values: {}, owner: 'bob' }, 'owner'],
      [{ ...base, name: '<b>', values: {} }, 'name'],
      [{ ...base, cluster: 'elsewhere', values: {} }, 'cluster'],
    ];
    for (const [body, name] of tries) {
      const r = await alice.post('/api/presets', body);
      expect(r.status, JSON.stringify(r.body)).toBe(400);
      expect((r.body as { field?: string }).field, JSON.stringify(r.body)).toBe(name);
    }
    expect((await saved()).presets).toEqual([]);
  });

  it("shows an administrator's site preset to every user, read-only for them", async () => {
    const course = { name: 'Course HPC101', cluster: 'local', values: { cores: 1, label: 'HPC101 lab' } };
    expect((await alice.post('/api/admin/presets', course)).status).toBe(403);
    const r = await adm.post('/api/admin/presets', course);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const id = (r.body as { preset: Preset }).preset.id;
    expect((await saved()).presets).toMatchObject([{ id, name: 'Course HPC101', site: true }]);
    expect((await alice.json('PATCH', `/api/presets/${id}`, { name: 'mine now' })).status).toBe(404);
    expect((await alice.del(`/api/presets/${id}`)).status).toBe(404);
    expect((await alice.json('PATCH', `/api/admin/presets/${id}`, { name: 'mine now' })).status).toBe(403);
    expect((await saved()).presets).toMatchObject([{ id, name: 'Course HPC101', site: true }]);
  });

  it('reopens the form with the last-used values of the cluster and app', async () => {
    await signIn(page, gw, 'alice');
    await visible(page.getByRole('button', { name: 'Start session' }));
    await field('User interface').selectOption('echo');
    await field('Cores').fill('2');
    await field('Memory (GB)').fill('1.5');
    await field('Hours').fill('0.5');
    await field('Name (optional)').fill('first run');
    const first = await startFromForm();
    expect(first.request).toMatchObject({
      app: 'echo',
      cores: 2,
      memoryGb: 1.5,
      hours: 0.5,
      label: 'first run',
    });
    await page.reload();
    await visible(page.getByRole('button', { name: 'Start session' }));
    await expect
      .poll(formValues)
      .toEqual({ app: 'echo', cores: '2', memoryGb: '1.5', hours: '0.5', label: '' });
  });

  it('saves a preset, applies it, changes and renames it, and makes it the default', async () => {
    await field('Cores').fill('3');
    await page.getByRole('button', { name: 'Save as preset…' }).click();
    await field('Name of the new preset').fill('Big echo');
    await page.getByRole('button', { name: 'Save preset' }).click();
    await expect
      .poll(async () => (await mine('Big echo'))?.values)
      .toMatchObject({
        app: 'echo',
        cores: 3,
        memoryGb: 1.5,
        gpus: 0,
        hours: 0.5,
      });
    expect((await mine('Big echo'))?.values.label).toBeUndefined();
    // Other values on the form, then the preset chosen: its values come back.
    await field('Cores').fill('1');
    await field('Hours').fill('2');
    await field('Preset').selectOption({ label: 'Course HPC101' });
    await expect.poll(async () => (await formValues()).label).toBe('HPC101 lab');
    await field('Preset').selectOption({ label: 'Big echo' });
    await expect
      .poll(formValues)
      .toEqual({ app: 'echo', cores: '3', memoryGb: '1.5', hours: '0.5', label: '' });
    // Changed and saved.
    await field('Hours').fill('0.25');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await expect.poll(async () => (await mine('Big echo'))?.values.hours).toBe(0.25);
    await page.getByRole('button', { name: 'Rename…' }).click();
    await field('New name').fill('Bigger echo');
    await page.getByRole('button', { name: 'Rename', exact: true }).click();
    await expect.poll(async () => (await mine('Bigger echo'))?.values.cores).toBe(3);
    await page.getByRole('button', { name: 'Make default' }).click();
    await expect.poll(async () => (await mine('Bigger echo'))?.isDefault).toBe(true);
    // The default wins over the last-used values when the form opens.
    await page.reload();
    await visible(page.getByRole('button', { name: 'Start session' }));
    await expect
      .poll(formValues)
      .toEqual({ app: 'echo', cores: '3', memoryGb: '1.5', hours: '0.25', label: '' });
    expect(await field('Preset').inputValue()).toBe(String((await mine('Bigger echo'))!.id));
  });

  it('"Launch again" on an ended session fills the form with its values and starts an identical one', async () => {
    const first = (await sessions()).find((s) => s.label === 'first run')!;
    await waitForState(alice, first.id, ['running']);
    expect((await alice.del(`/api/sessions/${first.id}`)).status).toBe(200);
    await waitForState(alice, first.id, ['ended'], 30_000);
    await page.locator('details.recent summary').click();
    // On a phone too: the preset's buttons wrap within the screen, "Launch again" is on it.
    await page.setViewportSize({ width: 420, height: 860 });
    await visible(page.getByRole('button', { name: 'Delete', exact: true }));
    const launch = page.getByRole('button', { name: 'Launch first run again' });
    await launch.scrollIntoViewIfNeeded();
    const box = await launch.boundingBox();
    expect(box!.x + box!.width).toBeLessThanOrEqual(420);
    expect(
      await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth),
    ).toBeLessThanOrEqual(0);
    await launch.click();
    await page.setViewportSize({ width: 1280, height: 800 });
    await expect
      .poll(formValues)
      .toEqual({ app: 'echo', cores: '2', memoryGb: '1.5', hours: '0.5', label: 'first run' });
    const again = await startFromForm();
    expect(again.request).toEqual(first.request);
    await waitForState(alice, again.id, ['running']);
  });

  it('names the field of a default preset that no longer fits, and sends nothing', async () => {
    for (const id of started) await alice.del(`/api/sessions/${id}`);
    for (const id of started) await waitForState(alice, id, ['ended'], 30_000);
    // The site lowers the limit under the preset's 3 cores.
    fs.writeFileSync(
      gw.configFile,
      fs.readFileSync(gw.configFile, 'utf8').replace('maxCores: 4', 'maxCores: 2'),
    );
    await gw.restart();
    expect((await alice.get('/api/clusters')).body).toMatchObject({
      clusters: [{ limits: { maxCores: 2 } }],
    });
    await page.reload();
    const alert = page.locator('.card').filter({ hasText: 'New session' }).getByRole('alert');
    await expect
      .poll(() => textOf(alert))
      .toBe(
        'Your default preset “Bigger echo”: a value no longer fits This machine; see the field marked below.',
      );
    expect(await field('Cores').inputValue()).toBe('3');
    expect(await field('Cores').getAttribute('aria-invalid')).toBe('true');
    expect(await textOf(page.locator('#f-cores-error'))).toBe('Cores: at most 2 per node on this cluster');
    const before = (await sessions()).length;
    await page.getByRole('button', { name: 'Start session' }).click();
    await expect.poll(() => textOf(alert)).toBe('Please correct the fields marked below.');
    expect((await sessions()).length).toBe(before);
    expect(await field('Cores').inputValue()).toBe('3');
  });
});
