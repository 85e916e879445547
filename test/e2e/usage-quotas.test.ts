// Usage and quotas on the Slurm test cluster (slurmdbd, AccountingStorageEnforce=limits, multifactor
// priority: scripts/cluster.sh): an account of carol's with a tiny GrpTRESMins set by sacctmgr, one short
// job, and the dashboard's API shows its use past the limit in the critical level, with carol's fair
// share as sshare tells it; the site's quota commands (small scripts printing `quota -w` and
// `lfs quota -u` output, run as carol) are parsed and shown, a failing one is "quota unavailable" and
// logged with its output. In Chromium: the usage card's bar in the critical colour, and the usage
// beside the form's account field.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UsageReply } from '../../src/api/usage.ts';
import {
  ensureWebBuilt,
  keepFailureEvidence,
  launchBrowser,
  signIn,
  type TestBrowser,
  visible,
} from '../helpers/browser.ts';
import { Client } from '../helpers/client.ts';
import { type ClusterJson, cancelAll, slurm, testCluster } from '../helpers/cluster.ts';
import { createTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { gatewayYaml } from '../helpers/jobs-cluster.ts';
import { until } from '../helpers/wait.ts';

const found = testCluster('usage-quotas', { up: 'nodes', dbd: true });
const ACCOUNT = 'usagelab';

/** Why the cluster cannot show usage (made by an older cluster.sh), or undefined. */
function whyNot(c: ClusterJson): string | undefined {
  const conf = slurm(c, 'scontrol', ['show', 'config']);
  if (!/^PriorityType\s*=\s*priority\/multifactor/m.test(conf))
    return 'PriorityType is not priority/multifactor';
  if (!/^AccountingStorageEnforce\s*=.*limits/m.test(conf)) return 'AccountingStorageEnforce lacks limits';
  return undefined;
}
const why = found ? whyNot(found) : undefined;
if (why)
  console.warn(
    `[usage-quotas e2e] SKIPPED: ${why}. Restart the test cluster: bash scripts/cluster.sh down; up`,
  );
const cluster = why ? undefined : found;

const sacctmgr = (c: ClusterJson, ...args: string[]) => slurm(c, 'sacctmgr', ['-i', ...args]);
function dropAccount(c: ClusterJson): void {
  try {
    sacctmgr(c, 'delete', 'user', 'carol', `account=${ACCOUNT}`);
  } catch {
    // not there
  }
  try {
    sacctmgr(c, 'delete', 'account', ACCOUNT);
  } catch {
    // not there
  }
}

describe.skipIf(!cluster)('usage and quotas on the Slurm test cluster', () => {
  const c = cluster as ClusterJson;
  let gw: TestGateway;
  let carol: Client;
  let browser: TestBrowser;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-usage-'));
  const usage = async () => (await carol.get('/api/usage')).body as UsageReply;
  /** One field of sshare's line for the account's association of `user` ('' for the account's own). */
  const sshare = (user: string, field: string) =>
    slurm(c, 'sshare', ['-a', '-P', '-n', '-o', `Account,User,${field}`])
      .split('\n')
      .find((l) => l.trim().startsWith(`${ACCOUNT}|${user}|`))
      ?.split('|')[2] ?? '';
  const mine = async () =>
    (await usage()).clusters.find((x) => x.cluster === 'hpc')?.accounts.find((a) => a.account === ACCOUNT);

  beforeAll(async () => {
    fs.chmodSync(dir, 0o755);
    const script = (name: string, body: string) => {
      fs.writeFileSync(path.join(dir, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
      return path.join(dir, name);
    };
    // The file system's name says who ran it: the commands run as the user.
    const home = script(
      'home-quota',
      [
        'echo "Disk quotas for user $(id -un) (uid $(id -u)): "',
        'echo "     Filesystem  blocks   quota   limit   grace   files   quota   limit   grace"',
        'echo "     /home/$(id -un)  850000  1000000 1200000            4000   10000   12000        "',
      ].join('\n'),
    );
    const lustre = script(
      'lustre-quota',
      [
        'echo "Disk quotas for usr $1 (uid $(id -u)):"',
        'echo "     Filesystem  kbytes   quota   limit   grace   files   quota   limit   grace"',
        'echo "        /lustre  1048576  10485760 12582912       -   20000  100000  120000       -"',
      ].join('\n'),
    );
    const broken = script('broken-quota', 'echo "quota: Cannot stat /dev/sdz9: No such device" >&2\nexit 2');
    dropAccount(c); // left by a run that was cut short
    sacctmgr(c, 'add', 'account', ACCOUNT, `Cluster=${c.name}`, 'Description=atrium', 'Organization=atrium');
    sacctmgr(c, 'add', 'user', 'carol', `account=${ACCOUNT}`);
    // One CPU minute: one short job of 8 cores crosses it.
    sacctmgr(c, 'modify', 'account', ACCOUNT, 'set', 'GrpTRESMins=cpu=1');
    ensureWebBuilt();
    gw = await createTestGateway({
      name: 'usage',
      users: [{ name: 'carol' }],
      yaml: `${gatewayYaml(c)}
usage:
  refreshSeconds: 1
  storage:
    - name: Home
      command: [${home}]
      parser: quota-w
    - name: Scratch
      command: [${lustre}, '{user}']
      parser: lfs-quota
    - name: Project
      command: [${broken}]
      parser: quota-w
`,
    });
    await gw.start();
    carol = new Client(gw.url);
    expect((await carol.login('carol', gw.passwords.carol!)).status).toBe(200);
  });

  keepFailureEvidence(() => ({ browser, gw }));

  afterAll(async () => {
    await browser?.close();
    await gw?.stop();
    if (gw?.dir) fs.rmSync(gw.dir, { recursive: true, force: true });
    if (c) {
      await cancelAll(c).catch(() => undefined);
      dropAccount(c);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("shows an account's CPU time against its GrpTRESMins, critical past the limit, and the fair share sshare gives", async () => {
    const before = await until('the account in the usage', mine, 20_000);
    expect(before).toMatchObject({ limitCpuMinutes: 1, limitOf: ACCOUNT, level: 'ok' });
    const r = await carol.post('/api/jobs', {
      cluster: 'hpc',
      source: 'text',
      script: '#!/bin/sh\nsleep 10\n',
      jobName: 'usage-e2e',
      account: ACCOUNT,
      cores: 8,
      memoryGb: 1,
      hours: 0.1,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const after = await until(
      'the job to count against the limit',
      async () => {
        const a = await mine();
        // The gateway's figure is sshare's GrpTRESRaw for the account, the usage Slurm enforces.
        const raw = Number(/(?:^|,)cpu=(\d+)/.exec(sshare('', 'GrpTRESRaw'))?.[1]);
        return a && raw >= 1 && a.usedCpuMinutes === raw ? a : undefined;
      },
      45_000,
      500,
    );
    expect(after.percent).toBeGreaterThanOrEqual(95);
    expect(after.level).toBe('critical');
    // The fair share is sshare's own figure, with its meaning in words.
    const fair = await until(
      'the same fair share as sshare',
      async () => {
        const a = await mine();
        const share = Number(sshare('carol', 'FairShare'));
        return a && a.fairShare !== null && Math.abs(a.fairShare - share) < 1e-6 ? a : undefined;
      },
      20_000,
      500,
    );
    expect(fair.fairShareText).toMatch(/^Your fair share is \d\.\d\d: .*your jobs start /);
  });

  it('parses the site\'s quota -w and lfs quota -u commands, run as the user; a failing one is "quota unavailable", logged', async () => {
    const { storage } = await usage();
    const by = Object.fromEntries(storage.map((s) => [s.name, s]));
    expect(by.Home).toMatchObject({
      available: true,
      quotas: [
        {
          filesystem: '/home/carol',
          usedBytes: 850000 * 1024,
          softBytes: 1000000 * 1024,
          hardBytes: 1200000 * 1024,
          files: 4000,
          percent: 85,
          level: 'warn',
        },
      ],
    });
    expect(by.Scratch).toMatchObject({
      available: true,
      quotas: [{ filesystem: '/lustre', usedBytes: 1024 ** 3, percent: 20, level: 'ok' }],
    });
    expect(by.Project).toMatchObject({ available: false, message: 'quota unavailable', quotas: [] });
    expect(gw.log()).toMatch(
      /storage quota unavailable.*Cannot stat \/dev\/sdz9|Cannot stat \/dev\/sdz9.*storage quota unavailable/,
    );
  });

  it('in Chromium: the usage card with the bar in the critical colour, and the usage beside the account field', async () => {
    browser = await launchBrowser({ name: 'usage' });
    const page = browser.page;
    await signIn(page, gw, 'carol');
    const item = page.locator(`.usage-panel [data-account="${ACCOUNT}"]`);
    await visible(item);
    expect(await item.getAttribute('class')).toContain('usage-critical');
    await visible(item.locator('.usage-bar'));
    await visible(page.locator('.usage-panel [data-quota="Project"]', { hasText: 'quota unavailable' }));
    await visible(page.locator('.usage-panel [data-quota="Home"].usage-warn'));
    await page.getByLabel('Account', { exact: true }).selectOption(ACCOUNT);
    await visible(page.locator('[data-testid="account-usage"] .usage-critical', { hasText: '100 %' }));
  });
});
