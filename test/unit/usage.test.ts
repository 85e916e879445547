// Usage and quotas: sshare's associations (captured on the test cluster), a user's accounts with the
// limit that binds first, warning levels, the fair share in words, the storage quota parsers on fixtures
// of `quota -w` and `lfs quota -u`, the parser registry, and the usage service's copy (one sshare for
// any number of page views; a failing, slow or garbled quota command is "quota unavailable", logged).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { UsageConfig } from '../../src/config/schema.ts';
import {
  type AssociationUsage,
  accountsOfUser,
  fairShareSentence,
  percentOf,
  usageLevel,
} from '../../src/core/usage.ts';
import type { User } from '../../src/db/users.ts';
import { QuotaParseError, quotaParser, registerQuotaParser } from '../../src/quotas/parsers.ts';
import { fillPlaceholders, storageQuotaView, UsageService } from '../../src/quotas/service.ts';
import type { CommandRunner } from '../../src/scheduler/slurm/runner.ts';
import { parseSshare, SshareParseError, sshareArgv, tresCpu } from '../../src/scheduler/slurm/sshare.ts';
import type { SchedulerAdapter } from '../../src/scheduler/types.ts';
import { FakeRunner } from '../helpers/fake-runner.ts';

const fixture = (p: string) => fs.readFileSync(path.join(import.meta.dirname, '..', 'fixtures', p), 'utf8');
const T = { warnPercent: 80, criticalPercent: 95 };

describe('sshare', () => {
  it('asks for every association in one call, parsable', () => {
    expect(sshareArgv({ binDir: '/opt/slurm/bin' })).toEqual([
      '/opt/slurm/bin/sshare',
      '-a',
      '-P',
      '-o',
      'Account,User,RawShares,FairShare,GrpTRESMins,GrpTRESRaw,TRESRunMins',
    ]);
  });

  it('reads the captured output: accounts with parents, users with fair shares, cpu limits and usage', () => {
    const rows = parseSshare(fixture('slurm/sshare-usage.txt'));
    expect(rows.find((r) => r.account === 'quotalab' && r.user === '')).toEqual({
      account: 'quotalab',
      user: '',
      parent: 'research',
      cpuLimitMinutes: 1,
      cpuUsedMinutes: 1,
      cpuRunningMinutes: 0,
    });
    expect(rows.find((r) => r.account === 'research' && r.user === '')).toMatchObject({
      parent: 'root',
      cpuLimitMinutes: 2,
      cpuUsedMinutes: 1,
    });
    expect(rows.find((r) => r.account === 'research' && r.user === 'alice')).toMatchObject({
      fairShare: 0.25,
      cpuUsedMinutes: 0,
    });
    expect(rows.find((r) => r.account === 'root' && r.user === '')?.parent).toBeUndefined();
    expect(rows.filter((r) => r.user === 'carol').map((r) => r.account)).toEqual(['research', 'quotalab']);
  });

  it('refuses output it cannot read', () => {
    expect(() => parseSshare('')).toThrow(SshareParseError);
    expect(() => parseSshare('Account|User\nresearch|alice|extra\n')).toThrow(/unreadable/);
    expect(tresCpu('cpu=12,mem=400')).toBe(12);
    expect(tresCpu('mem=400,cpu=N')).toBeUndefined();
    expect(tresCpu('')).toBeUndefined();
  });
});

describe("a user's accounts", () => {
  const rows = parseSshare(fixture('slurm/sshare-usage.txt'));

  it('shows each account with the limit that binds first, its level and the fair share in words', () => {
    const carol = accountsOfUser(rows, 'carol', T);
    expect(carol.map((a) => a.account)).toEqual(['quotalab', 'research']);
    // quotalab: 1 of its own 1 (100 %) binds before research's 1 of 2 (50 %).
    expect(carol[0]).toMatchObject({
      usedCpuMinutes: 1,
      limitCpuMinutes: 1,
      limitOf: 'quotalab',
      percent: 100,
      level: 'critical',
      fairShare: 0,
    });
    expect(carol[1]).toMatchObject({ limitCpuMinutes: 2, limitOf: 'research', percent: 50, level: 'ok' });
    expect(carol[1]!.fairShareText).toBe(
      'Your fair share is 0.50: you have used less than your share lately, so your jobs start before those of users who have used more.',
    );
    // No limit anywhere above physics.
    expect(accountsOfUser(rows, 'bob', T)).toEqual([
      expect.objectContaining({ account: 'physics', limitCpuMinutes: null, percent: null, level: 'ok' }),
    ]);
    expect(accountsOfUser(rows, 'nobody', T)).toEqual([]);
  });

  it("a limit on the user's own association counts too", () => {
    const own: AssociationUsage[] = [
      { account: 'lab', user: '', cpuLimitMinutes: 1000, cpuUsedMinutes: 100 },
      { account: 'lab', user: 'dora', cpuLimitMinutes: 50, cpuUsedMinutes: 45, fairShare: 0.31 },
    ];
    expect(accountsOfUser(own, 'dora', T)[0]).toMatchObject({ limitOf: 'you', percent: 90, level: 'warn' });
    expect(accountsOfUser(own, 'dora', T)[0]!.fairShareText).toBe(
      'Your fair share is 0.31: your jobs start after those of users who have used less than their share.',
    );
  });

  it('levels at 80 % and 95 %', () => {
    expect([0, 79.9, 80, 94.9, 95, 250].map((p) => usageLevel(p, T))).toEqual([
      'ok',
      'ok',
      'warn',
      'warn',
      'critical',
      'critical',
    ]);
    expect(usageLevel(null, T)).toBe('ok');
    expect(percentOf(1, 3)).toBe(33.3);
    expect(percentOf(5, null)).toBeNull();
    // GrpTRESMins=cpu=0 blocks the account: full, even with nothing used yet.
    expect(percentOf(0, 0)).toBe(100);
    expect(usageLevel(percentOf(0, 0), T)).toBe('critical');
    const blocked = [
      { account: 'old', user: '', cpuLimitMinutes: 0, cpuUsedMinutes: 0 },
      { account: 'old', user: 'dora', parent: 'root', cpuLimitMinutes: 1000, cpuUsedMinutes: 10 },
    ];
    expect(accountsOfUser(blocked, 'dora', T)[0]).toMatchObject({
      limitOf: 'old',
      limitCpuMinutes: 0,
      percent: 100,
      level: 'critical',
    });
    expect(fairShareSentence(0)).toMatch(/^Your fair share is 0.00: /);
  });
});

describe('storage quota parsers', () => {
  const quotaW = quotaParser('quota-w')!;
  const lfs = quotaParser('lfs-quota')!;

  it('quota -w: blocks of 1 KiB, a grace after a line over its limit, file limits', () => {
    expect(quotaW(fixture('quota/quota-w.txt'))).toEqual([
      {
        filesystem: '/dev/mapper/vg0-home',
        usedBytes: 4300000 * 1024,
        softBytes: 4000000 * 1024,
        hardBytes: 5000000 * 1024,
        files: 1234,
        grace: '6days',
        over: true,
      },
      {
        filesystem: '/dev/sdb1',
        usedBytes: 120 * 1024,
        files: 3,
        filesSoft: 100,
        filesHard: 200,
        over: false,
      },
    ]);
  });

  it('quota -w -s: units, and "none" for a user without quotas', () => {
    expect(quotaW(fixture('quota/quota-w-s.txt'))).toEqual([
      {
        filesystem: '/dev/sda1',
        usedBytes: 4096 * 1024 ** 2,
        softBytes: 5120 * 1024 ** 2,
        hardBytes: 6144 * 1024 ** 2,
        files: 1_234_000,
        over: false,
      },
    ]);
    expect(quotaW(fixture('quota/quota-w-none.txt'))).toEqual([]);
  });

  it('lfs quota -u, with -h and a long mount point on its own line', () => {
    expect(lfs(fixture('quota/lfs-quota.txt'))).toEqual([
      {
        filesystem: '/lustre',
        usedBytes: 8808038 * 1024,
        softBytes: 10485760 * 1024,
        hardBytes: 12582912 * 1024,
        files: 20000,
        filesSoft: 100000,
        filesHard: 120000,
        over: false,
      },
    ]);
    expect(lfs(fixture('quota/lfs-quota-h.txt'))).toEqual([
      {
        filesystem: '/lustre/a/very/long/mount/point',
        usedBytes: Math.round(9.8 * 1024 ** 3),
        softBytes: 10 * 1024 ** 3,
        hardBytes: 12 * 1024 ** 3,
        files: 20000,
        over: false,
      },
    ]);
  });

  it('refuses garbage rather than guess', () => {
    for (const bad of [
      '',
      'hello world',
      'Disk quotas for user alice (uid 1001):\n     Filesystem  blocks\n   /home  lots  0 0 1 0 0\n',
      'Disk quotas for user alice (uid 1001):\n     Filesystem  blocks   quota   limit   grace   files   quota   limit   grace\n/home 1 2 3 4 5 6 7 8 9\n',
      'Disk quotas for usr alice (uid 1001):\nSome errors happened when getting quota info.\n',
      'Disk quotas for user alice (uid 1001):\n     Filesystem  blocks   quota   limit   grace   files   quota   limit   grace\n/a/long/one\n',
    ]) {
      expect(() => quotaW(bad), bad).toThrow(QuotaParseError);
    }
  });

  it('a site adds a parser by name', () => {
    registerQuotaParser('test-json', (out) => [
      { ...(JSON.parse(out) as { filesystem: string; usedBytes: number }), over: false },
    ]);
    expect(quotaParser('test-json')!('{"filesystem":"/x","usedBytes":5}')).toEqual([
      { filesystem: '/x', usedBytes: 5, over: false },
    ]);
  });

  it('as shown: the larger of space and files against the soft limit', () => {
    const [home, sdb] = quotaW(fixture('quota/quota-w.txt'));
    expect(storageQuotaView(home!, T)).toMatchObject({ percent: 107.5, level: 'critical', grace: '6days' });
    expect(storageQuotaView(sdb!, T)).toMatchObject({ percent: 3, level: 'ok', softBytes: null });
    expect(
      fillPlaceholders('/lustre/{user}/{uid}{home}', {
        user: 'al',
        uid: 7,
        gid: 7,
        home: '/h/al',
        shell: '/bin/sh',
      }),
    ).toBe('/lustre/al/7/h/al');
  });
});

describe('the usage service', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-usage-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const script = (name: string, body: string) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    return p;
  };
  const logged: Record<string, unknown>[] = [];
  const log = pino({ level: 'warn' }, { write: (s: string) => logged.push(JSON.parse(s)) });
  const me = os.userInfo();
  // runAs 'none': the commands run as this process; only the identity's uid must not be root's.
  const identity = { user: me.username, uid: me.uid || 65534, gid: me.gid, home: dir, shell: '/bin/sh' };
  const user = { id: 1, username: 'u', unixUser: me.username, groups: [] } as unknown as User;
  const cfg = (storage: UsageConfig['storage']): UsageConfig => ({
    refreshSeconds: 3600,
    warnPercent: 80,
    criticalPercent: 95,
    storage,
    storageRefreshSeconds: 3600,
    activeUserMinutes: 60,
  });

  it('one sshare serves every page view until the next refresh', async () => {
    let calls = 0;
    const adapter = {
      accountUsage: async () => {
        calls++;
        return parseSshare(fixture('slurm/sshare-usage.txt'));
      },
    } as unknown as SchedulerAdapter;
    const cluster = { name: 'hpc', title: 'HPC', adapter, userMayUse: () => true };
    const svc = new UsageService({ cfg: cfg([]), filesRunAs: 'none', clusters: () => [cluster], log });
    const views = await Promise.all(
      Array.from({ length: 50 }, () => svc.forUser({ ...user, unixUser: 'carol' })),
    );
    expect(calls).toBe(1);
    expect(views[49]!.clusters[0]!.accounts.map((a) => a.account)).toEqual(['quotalab', 'research']);
  });

  it('a failing, slow or garbled quota command is "quota unavailable", logged with its output; a good one is read once', async () => {
    const runs = path.join(dir, 'runs');
    const good = script(
      'good.sh',
      `echo run >>${runs}\ncat ${path.join(import.meta.dirname, '..', 'fixtures', 'quota', 'lfs-quota.txt')}`,
    );
    const failing = script('failing.sh', 'echo "quota: cannot stat /nope" >&2\nexit 3');
    const garbled = script('garbled.sh', 'echo "<html>500 internal error</html>"');
    const slow = script('slow.sh', 'sleep 30');
    const over = script(
      'over.sh',
      `cat ${path.join(import.meta.dirname, '..', 'fixtures', 'quota', 'quota-w.txt')}\nexit 1`,
    );
    const svc = new UsageService({
      cfg: cfg([
        { name: 'Lustre', command: [good, '{user}'], parser: 'lfs-quota', timeoutSeconds: 10 },
        { name: 'Failing', command: [failing], parser: 'quota-w', timeoutSeconds: 10 },
        { name: 'Garbled', command: [garbled], parser: 'quota-w', timeoutSeconds: 10 },
        { name: 'Slow', command: [slow], parser: 'quota-w', timeoutSeconds: 0.5 },
        { name: 'Over', command: [over], parser: 'quota-w', timeoutSeconds: 10 },
        { name: 'Unknown', command: [good], parser: 'no-such-parser', timeoutSeconds: 10 },
      ]),
      filesRunAs: 'none',
      clusters: () => [],
      log,
      lookup: async () => identity,
    });
    const first = await svc.forUser(user);
    const byName = Object.fromEntries(first.storage.map((s) => [s.name, s]));
    expect(byName.Lustre).toMatchObject({
      available: true,
      quotas: [{ filesystem: '/lustre', level: 'warn' }],
    });
    for (const name of ['Failing', 'Garbled', 'Slow', 'Unknown'])
      expect(byName[name], name).toMatchObject({
        available: false,
        message: 'quota unavailable',
        quotas: [],
      });
    // quota's exit 1 with a line over its limit is an answer, not a failure.
    expect(byName.Over).toMatchObject({ available: true, quotas: [{ level: 'critical' }, { level: 'ok' }] });
    const why = logged.filter((l) => l.msg === 'storage quota unavailable');
    expect(why.find((l) => l.quota === 'Failing')).toMatchObject({ stderr: 'quota: cannot stat /nope\n' });
    expect(why.find((l) => l.quota === 'Garbled')).toMatchObject({
      stdout: '<html>500 internal error</html>\n',
    });
    expect(String(why.find((l) => l.quota === 'Slow')?.why)).toMatch(/timed out/);
    await Promise.all(Array.from({ length: 10 }, () => svc.forUser(user)));
    expect(fs.readFileSync(runs, 'utf8')).toBe('run\n');
  });

  it('first views arriving together run at most 4 users’ quota commands at once; none start after stop()', async () => {
    let running = 0;
    let most = 0;
    const release: (() => void)[] = [];
    const runner = new FakeRunner(() => ({ stdout: 'Disk quotas for user x (uid 1000): none\n' }));
    const held: CommandRunner = {
      get calls() {
        return runner.calls;
      },
      callsOf: (l) => runner.callsOf(l),
      run: async (argv, opts) => {
        running++;
        most = Math.max(most, running);
        await new Promise<void>((r) => release.push(r));
        running--;
        return runner.run(argv, opts);
      },
    };
    const svc = new UsageService({
      cfg: cfg([{ name: 'Home', command: ['quota', '-w'], parser: 'quota-w', timeoutSeconds: 10 }]),
      filesRunAs: 'none',
      clusters: () => [],
      log,
      lookup: async (u) => ({ ...identity, user: u }),
      runner: held,
    });
    const views = Array.from({ length: 10 }, (_, i) => svc.forUser({ ...user, unixUser: `u${i}` }));
    await vi.waitFor(() => expect(release.length).toBe(4));
    while (runner.calls < 10) {
      await vi.waitFor(() => expect(release.length).toBeGreaterThan(0));
      for (const r of release.splice(0)) r();
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(views);
    expect(most).toBe(4);
    svc.stop();
    await svc.forUser({ ...user, unixUser: 'late' });
    expect(runner.calls).toBe(10);
    expect(release.length).toBe(0);
  });
});
