// Access only for members of an active project (issue 17, point 2): which associations count (removed
// and expired ones do not), the decision and its words, the config's checks naming the key, and the
// cluster's background reading (one sacctmgr listing per refresh period, none per page view or start).
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/load.ts';
import {
  accessRefusal,
  accountUnderRule,
  activeAccountsByUser,
  projectAccess,
  projectNeeded,
} from '../../src/core/project-access.ts';
import type { User } from '../../src/db/users.ts';
import { SlurmAdapter } from '../../src/scheduler/slurm/adapter.ts';
import { parseAssociations } from '../../src/scheduler/slurm/parse.ts';
import type { ClusterInfo, PollSnapshot, SchedulerAdapter } from '../../src/scheduler/types.ts';
import { Cluster } from '../../src/sessions/clusters.ts';
import { FakeRunner } from '../helpers/fake-runner.ts';

const SITE = 'Apply for a project at https://portal.example.org.';

// `sacctmgr -nP show assoc where cluster=proj format=User,Account,GrpJobs,GrpSubmit,MaxJobs,MaxSubmit`
// on the test cluster, after `modify user carol where account=research set MaxSubmitJobs=0` and with
// an account "old" closed as a whole (GrpSubmit=0 on the account's own association).
const LISTING = [
  '|root||||',
  'root|root||||',
  '|physics||||',
  'bob|physics||||',
  '|research||||',
  'alice|research||||',
  'carol|research||||0',
  '|old||0||',
  'alice|old||||',
  'dave|old||||',
  'erin|physics|4||10|',
  'erin|research|0|||',
].join('\n');

describe('which associations count', () => {
  it('lists each user’s active accounts; expired ones (a job limit of 0, on the user or the account) count as none', () => {
    expect(parseAssociations(LISTING)).toEqual({
      root: ['root'],
      bob: ['physics'],
      alice: ['research'],
      erin: ['physics'],
    });
  });

  it('reads the old two-column listing as before', () => {
    expect(parseAssociations('alice|research\n|research\nalice|physics\nalice|research\n')).toEqual({
      alice: ['physics', 'research'],
    });
  });

  it('counts only the associations of the adapter’s own cluster (its ClusterName) when slurmdbd serves several', async () => {
    // `sacctmgr -nP show assoc format=...,Cluster` on the test cluster "fix" after `sacctmgr add cluster
    // other`, `add account physics cluster=other`, `add user alice account=physics cluster=other`.
    const listing = fs.readFileSync(
      path.join(import.meta.dirname, '..', 'fixtures', 'slurm', 'sacctmgr-assoc-clusters.txt'),
      'utf8',
    );
    const own = { root: ['root'], bob: ['physics'], alice: ['research'], carol: ['research'] };
    expect(parseAssociations(listing, 'fix')).toEqual(own);
    expect(parseAssociations(listing, 'other')).toEqual({ root: ['root'], alice: ['physics'] });
    const runner = new FakeRunner((argv) => {
      if (argv[0] === 'sacctmgr') return { stdout: listing };
      if (argv.includes('config'))
        return { stdout: 'ClusterName             = fix\nPrivateData             = jobs\n' };
      return { stdout: '' };
    });
    const a = new SlurmAdapter({ name: 'JURECA', runAs: 'runuser', commandTimeoutMs: 1000 }, runner);
    const info = await a.clusterInfo();
    expect(info.accountsByUser).toEqual(own);
    expect(runner.log.find((c) => c.argv[0] === 'sacctmgr')?.argv.at(-1)).toBe(
      'format=User,Account,GrpJobs,GrpSubmit,MaxJobs,MaxSubmit,Cluster',
    );
    // Without the ClusterName nothing can be told apart: an error, not every cluster's accounts.
    const blind = new FakeRunner((argv) => ({ stdout: argv[0] === 'sacctmgr' ? listing : '' }));
    await expect(
      new SlurmAdapter({ name: 'JURECA', runAs: 'runuser', commandTimeoutMs: 1000 }, blind).clusterInfo(),
    ).rejects.toThrow(/ClusterName/);
  });

  it('a removed association is simply not listed', () => {
    const rows = [
      { user: 'alice', account: 'research' },
      { user: 'bob', account: 'physics' },
    ];
    expect(activeAccountsByUser(rows).bob).toEqual(['physics']);
    expect(activeAccountsByUser(rows.slice(0, 1)).bob).toBeUndefined();
  });
});

describe('the decision', () => {
  const rule = { message: SITE };

  it('admits a user with an active association, with their accounts', () => {
    expect(projectAccess(rule, 'JURECA', ['research'])).toEqual({ ok: true, accounts: ['research'] });
  });

  it('refuses a user without one, naming the field, what is needed and the site’s words', () => {
    const d = projectAccess(rule, 'JURECA', []);
    expect(d).toEqual({
      ok: false,
      status: 403,
      field: 'account',
      message: `Account: you need an active project (Slurm account) on JURECA to start sessions and jobs there. ${SITE}`,
    });
    expect(accessRefusal(d)).toEqual({ accessRefused: (d as { message: string }).message });
    expect(accessRefusal(projectAccess(rule, 'JURECA', ['x']))).toEqual({});
    expect(accessRefusal(null)).toEqual({});
  });

  it('with named projects, counts only those and names them', () => {
    const only = { projects: ['training2601', 'exa'], message: SITE };
    expect(projectAccess(only, 'JURECA', ['research', 'exa'])).toEqual({ ok: true, accounts: ['exa'] });
    const d = projectAccess(only, 'JURECA', ['research']);
    expect(d.ok).toBe(false);
    expect(projectNeeded(only, 'JURECA')).toBe(
      `Account: you need an active project (one of training2601, exa) on JURECA to start sessions and jobs there. ${SITE}`,
    );
    expect(projectNeeded({ projects: ['exa'], message: SITE }, 'X')).toContain('active project (exa) on X');
  });

  it('with named projects, an empty account is the first qualifying one, not Slurm’s default for the user', () => {
    const only = { projects: ['training2601', 'exa'], message: SITE };
    const d = projectAccess(only, 'JURECA', ['alpha', 'exa', 'training2601']);
    expect(accountUnderRule(only, d, undefined)).toBe('exa');
    expect(accountUnderRule(only, d, 'training2601')).toBe('training2601');
    // Any active project will do: Slurm's default is left to Slurm.
    expect(accountUnderRule(rule, projectAccess(rule, 'JURECA', ['alpha']), undefined)).toBeUndefined();
    expect(accountUnderRule(undefined, null, undefined)).toBeUndefined();
  });

  it('refuses while the associations were never read: nothing can be checked, nothing is submitted', () => {
    expect(projectAccess(rule, 'JURECA', undefined)).toMatchObject({
      ok: false,
      status: 503,
      field: 'cluster',
    });
  });
});

function problems(yaml: string) {
  try {
    parseConfig(yaml);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems.map((p) => `${p.key}: ${p.message}`);
    throw e;
  }
  return [];
}

describe('atrium config check', () => {
  const slurm = (rule: string) =>
    `clusters:\n  - name: hpc\n    backend: slurm\n    slurm: { runAs: runuser }\n    projectAccess: ${rule}\n`;

  it('takes a rule, with its default refresh period', () => {
    const c = parseConfig(slurm(`{ message: "${SITE}" }`)).clusters[0]!;
    expect(c.projectAccess).toEqual({ message: SITE, refreshSeconds: 300 });
  });

  it('names the key of a bad value', () => {
    expect(problems(slurm(`{ message: x, refreshSeconds: 0 }`))).toEqual([
      expect.stringMatching(/^clusters\[0\]\.projectAccess\.refreshSeconds: /),
    ]);
    expect(problems(slurm('{ refreshSeconds: 60 }'))).toEqual([
      'clusters[0].projectAccess: missing required key "message"',
    ]);
    expect(problems(slurm('{ message: x, projects: ["bad name!"] }'))).toEqual([
      expect.stringMatching(/^clusters\[0\]\.projectAccess\.projects\[0\]: /),
    ]);
    expect(problems(slurm('{ message: x, sacctmgr: true }'))).toEqual([
      'clusters[0].projectAccess.sacctmgr: unknown key',
    ]);
    expect(
      problems('clusters:\n  - name: here\n    backend: local\n    projectAccess: { message: x }\n'),
    ).toEqual([expect.stringMatching(/^clusters\[0\]\.projectAccess: needs a Slurm cluster/)]);
  });
});

class CountingAdapter implements SchedulerAdapter {
  readonly kind = 'slurm' as const;
  readonly cluster = 'hpc';
  infoCalls = 0;
  accounts: Record<string, string[]> = { alice: ['research'] };
  async submitSession(): Promise<{ jobId: string }> {
    return { jobId: '1' };
  }
  async cancel(): Promise<void> {}
  async poll(): Promise<PollSnapshot> {
    return { ok: true, at: 0, jobs: [], nodes: [], calls: 0 };
  }
  async clusterInfo(): Promise<ClusterInfo> {
    this.infoCalls++;
    return {
      name: 'hpc',
      partitions: [],
      reservations: [],
      hasAccounting: true,
      accountsByUser: structuredClone(this.accounts),
    };
  }
}

describe('the cluster’s associations, read in the background', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  const user = (name: string) => ({ id: 1, username: name, unixUser: name, groups: [] }) as unknown as User;

  it('are read once per refresh period for every user, and a change takes effect at the next read', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] });
    const cfg = parseConfig(
      'clusters:\n  - name: hpc\n    backend: slurm\n    slurm: { runAs: runuser }\n' +
        `    projectAccess: { message: "${SITE}", refreshSeconds: 30, projects: [research, exa] }\n`,
    ).clusters[0]!;
    const adapter = new CountingAdapter();
    adapter.accounts = { alice: ['physics', 'research'] };
    const c = new Cluster(cfg, '/tmp', pino({ level: 'silent' }), adapter);
    try {
      expect(await c.projectAccess(user('alice'))).toEqual({ ok: true, accounts: ['research'] });
      expect(await c.projectAccess(user('bob'))).toMatchObject({ ok: false, field: 'account' });
      // The form offers only the rule's projects among the user's accounts.
      await c.poller.pollNow();
      expect((await c.limitsFor(user('alice'), [], [])).accounts).toEqual(['research']);
      expect((await c.limitsFor(user('bob'), [], [])).accounts).toEqual([]);
      for (let i = 0; i < 20; i++) await c.projectAccess(user('alice'));
      expect(adapter.infoCalls).toBe(1);

      adapter.accounts = { bob: ['exa'] };
      await vi.advanceTimersByTimeAsync(30_000);
      expect(adapter.infoCalls).toBe(2);
      expect(await c.projectAccess(user('alice'))).toMatchObject({ ok: false, status: 403 });
      expect(await c.projectAccess(user('bob'))).toEqual({ ok: true, accounts: ['exa'] });
      expect(adapter.infoCalls).toBe(2);
    } finally {
      c.close();
    }
    await vi.advanceTimersByTimeAsync(60_000);
    expect(adapter.infoCalls).toBe(2);
  });

  it('a cluster without the rule admits everyone and reads nothing on a timer', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] });
    const cfg = parseConfig('clusters:\n  - name: hpc\n    backend: slurm\n    slurm: { runAs: runuser }\n')
      .clusters[0]!;
    const adapter = new CountingAdapter();
    const c = new Cluster(cfg, '/tmp', pino({ level: 'silent' }), adapter);
    expect(await c.projectAccess(user('bob'))).toBeNull();
    await vi.advanceTimersByTimeAsync(600_000);
    expect(adapter.infoCalls).toBe(0);
    c.close();
  });
});
