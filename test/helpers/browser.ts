// Headless Chromium (Debian's, driven by playwright-core) for the browser tests: one launch with the
// same flags everywhere, its profile and TMPDIR in a temporary directory that close() removes; the web
// build the gateway serves; sign-in through the login page (or with an API client's session cookie);
// evidence of a failed test; and small waits (playwright-core has no web-first assertions: those are
// @playwright/test's, so the tests wait, then assert).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type BrowserContext, chromium, type Locator, type Page } from 'playwright-core';
import { beforeEach, onTestFailed } from 'vitest';
import { ROOT } from './gateway.ts';

export const CHROMIUM = '/usr/bin/chromium';

const ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface TestBrowser {
  context: BrowserContext;
  /** The page the browser opened with. */
  page: Page;
  /** The temporary directory: the profile (profile/) and Chromium's TMPDIR (tmp/). */
  dir: string;
  /** Closes the browser and removes its directory. */
  close(): Promise<void>;
}

export interface BrowserOptions {
  /** Part of the temporary directory's name (atrium-chromium-<name>-XXXXXX). */
  name?: string;
  /** Default 1280 × 800. */
  viewport?: { width: number; height: number };
  /** Default timeout of every action and wait, ms (default 20 s). */
  timeout?: number;
}

/** Starts headless Chromium with a fresh profile (en-GB, UTC). */
export async function launchBrowser(opts: BrowserOptions = {}): Promise<TestBrowser> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `atrium-chromium-${opts.name ?? 'test'}-`));
  const tmp = path.join(dir, 'tmp');
  fs.mkdirSync(tmp);
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(path.join(dir, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      env: { ...process.env, TMPDIR: tmp },
      viewport: opts.viewport ?? { width: 1280, height: 800 },
      locale: 'en-GB',
      timezoneId: 'UTC',
    });
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  context.setDefaultTimeout(opts.timeout ?? 20_000);
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    dir,
    async close() {
      await context.close().catch(() => undefined);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Newest modification time under `p` (ms). */
function newest(p: string): number {
  const st = fs.statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  let m = st.mtimeMs;
  for (const e of fs.readdirSync(p)) m = Math.max(m, newest(path.join(p, e)));
  return m;
}

/** The gateway serves dist/web: builds it when missing or older than its sources. */
export function ensureWebBuilt(): void {
  const index = path.join(ROOT, 'dist', 'web', 'index.html');
  const sources = Math.max(
    newest(path.join(ROOT, 'src', 'web')),
    newest(path.join(ROOT, 'src', 'core')),
    newest(path.join(ROOT, 'vite.config.ts')),
  );
  if (fs.existsSync(index) && fs.statSync(index).mtimeMs >= sources) return;
  execFileSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts', 'build.mjs'), '--web-only'], {
    cwd: ROOT,
    stdio: 'inherit',
  });
}

/** Fills the login form the page shows and submits it. */
export async function submitLogin(page: Page, user: string, password: string): Promise<void> {
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

/** Signs in through the login page and waits for the dashboard. */
export async function signIn(
  page: Page,
  gw: { url: string; passwords: Record<string, string> },
  user: string,
): Promise<void> {
  await page.goto(`${gw.url}/login`);
  await submitLogin(page, user, gw.passwords[user]!);
  await page.waitForURL(`${gw.url}/`);
}

/** Signs the browser in with an API client's session: its cookie (`name=value`). */
export async function shareSession(context: BrowserContext, url: string, cookie: string): Promise<void> {
  const [name, value] = cookie.split('=') as [string, string];
  await context.addCookies([{ name, value, url }]);
}

/**
 * On each failed test of the file (or describe block), keeps a screenshot of every page open in the
 * browser and the gateway's log in a new temporary directory, and says where. `state` gives both as
 * they are when the test fails.
 */
export function keepFailureEvidence(state: () => { browser?: TestBrowser; gw?: { log(): string } }): void {
  beforeEach(({ task }) => {
    onTestFailed(async () => {
      const { browser, gw } = state();
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-ui-failure-'));
      for (const [i, p] of (browser?.context.pages() ?? []).entries()) {
        await p.screenshot({ path: path.join(dir, `page-${i}.png`), fullPage: true }).catch(() => undefined);
      }
      fs.writeFileSync(path.join(dir, 'gateway.log'), gw?.log() ?? '');
      console.error(`"${task.name}" failed: screenshots and gateway log in ${dir}`);
    });
  });
}

export const visible = (l: Locator, timeout?: number) => l.waitFor({ state: 'visible', timeout });
export const gone = (l: Locator, timeout?: number) => l.waitFor({ state: 'detached', timeout });
export const textOf = (l: Locator) => l.textContent({ timeout: 1_000 }).catch(() => '');
