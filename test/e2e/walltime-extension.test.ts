// Walltime extension (issue 18, point 4) on the real Slurm test cluster: the gateway (root, so a Slurm
// operator) runs `scontrol update TimeLimit=` for a running session or batch job within the cluster's
// `extension` policy (here 1 h per request, 2 h in total). Checked with scontrol as the test: "add 30
// minutes" changes Slurm's TimeLimit, the session shows its new end at once and its time-left warning
// (45 min before the end here, so due at once for a 30-minute session) falls due again; a bad amount, a
// request past the policy, one for bob's session by alice, one that would run into a maintenance
// reservation (made here as root, deleted after) and one for a session that ended are refused with their
// reasons and change nothing; the batch job gets its time too; Chromium's "Add time" moves the time left;
// the audit log lists every grant and refusal.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ensureWebBuilt,
  keepFailureEvidence,
  launchBrowser,
  shareSession,
  type TestBrowser,
  visible,
} from '../helpers/browser.ts';
import { Client, type SessionView, waitForState } from '../helpers/client.ts';
import { cancelAll, slurm, testCluster } from '../helpers/cluster.ts';
import { echoApps } from '../helpers/echo-app.ts';
import { createTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { until } from '../helpers/wait.ts';

const cluster = testCluster('walltime-extension', { up: 'nodes', partition: 'interactive' });
const echo = echoApps();
const MAINT = 'ext_maint';
const start = { cluster: 'ext', app: 'echo', cores: 1, memoryGb: 1, hours: 0.5 };

type View = SessionView & { timeLimitMinutes: number; addTimeMinutes: number | null };
let gw: TestGateway;
let browser: TestBrowser | undefined;
const as: Record<'alice' | 'bob', Client> = {} as never;
let mine: View;
let bobs: View;
let jobId = '';

/** Slurm's TimeLimit of a job, as root. */
const timeLimit = (id: string) =>
  /TimeLimit=(\S+)/.exec(slurm(cluster!, 'scontrol', ['-o', 'show', 'job', id]))?.[1];
const sessionOf = async (who: Client, id: string) =>
  ((await who.get(`/api/sessions/${id}`)).body as { session: View }).session;
const warnedAt = async (id: string) =>
  (await gw.query<{ warned_at: number | null }>('SELECT warned_at FROM sessions WHERE id = ?', [id]))[0]
    ?.warned_at;

describe.skipIf(!cluster)('walltime extension within policy', () => {
  const c = cluster!;
  keepFailureEvidence(() => ({ browser, gw }));

  beforeAll(async () => {
    ensureWebBuilt();
    await cancelAll(c);
    gw = await createTestGateway({
      name: 'walltime-extension',
      users: [{ name: 'alice' }, { name: 'bob' }],
      yaml: [
        'sessions:',
        '  warnMinutesBeforeEnd: 45',
        'clusters:',
        '  - name: ext',
        '    backend: slurm',
        '    extension: { maxTotalMinutes: 120, maxPerRequestMinutes: 60 }',
        '    slurm:',
        `      conf: ${c.slurmConf}`,
        '      runAs: runuser',
        '      partition: interactive',
        '      pollSeconds: 1',
        ...echo.yaml.trimEnd().split('\n'),
      ].join('\n'),
    });
    await gw.start();
    for (const name of ['alice', 'bob'] as const) {
      as[name] = new Client(gw.url);
      expect((await as[name].login(name, gw.passwords[name]!)).status).toBe(200);
    }
    const made = await Promise.all([
      as.alice.post('/api/sessions', start),
      as.bob.post('/api/sessions', start),
    ]);
    for (const r of made) expect(r.status, JSON.stringify(r.body)).toBe(201);
    const job = await as.alice.post('/api/jobs', {
      cluster: 'ext',
      source: 'text',
      script: '#!/bin/bash\nsleep 900\n',
      cores: 1,
      memoryGb: 1,
      hours: 0.25,
    });
    expect(job.status, JSON.stringify(job.body)).toBe(201);
    jobId = (job.body as { job: { jobId: string } }).job.jobId;
    const [a, b] = made.map((r) => (r.body as { session: View }).session);
    await waitForState(as.alice, a!.id, ['running'], 60_000);
    await waitForState(as.bob, b!.id, ['running'], 60_000);
    mine = await sessionOf(as.alice, a!.id);
    bobs = await sessionOf(as.bob, b!.id);
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await gw?.stop();
    await cancelAll(c);
    fs.rmSync(echo.dir, { recursive: true, force: true });
  }, 60_000);

  it('"add 30 minutes" changes Slurm\'s TimeLimit, shows the new end at once and makes the warning due again', async () => {
    expect(timeLimit(mine.jobId!)).toBe('00:30:00');
    expect(mine.addTimeMinutes).toBe(60);
    // 30 minutes left, warned 45 before the end: the warning was given at the first poll.
    await until('the time-left warning', async () => (await warnedAt(mine.id)) != null, 15_000);
    const r = await as.alice.post(`/api/sessions/${mine.id}/extend`, { minutes: 30 });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const s = (r.body as { session: View }).session;
    expect(s.timeLimitMinutes).toBe(60);
    expect(s.expiresAt).toBe(mine.expiresAt! + 30 * 60_000);
    expect(s.addTimeMinutes).toBe(60);
    expect(timeLimit(mine.jobId!)).toBe('01:00:00');
    expect((await sessionOf(as.alice, mine.id)).expiresAt).toBe(s.expiresAt);
    // 60 minutes left now: the warning is due again, 45 minutes before the new end.
    expect(await warnedAt(mine.id)).toBeNull();
    mine = s;
  });

  it('a bad amount is refused with a 400 naming the field, and nothing changes', async () => {
    for (const minutes of [-30, 0, 1.5, '30', 10_000_000]) {
      const r = await as.alice.post(`/api/sessions/${mine.id}/extend`, { minutes });
      expect(r.status, `${minutes}: ${JSON.stringify(r.body)}`).toBe(400);
      expect((r.body as { field: string }).field).toBe('minutes');
    }
    expect((await as.alice.post(`/api/sessions/${mine.id}/extend`, {})).status).toBe(400);
    expect(timeLimit(mine.jobId!)).toBe('01:00:00');
  });

  it("past the policy, or for bob's session by alice: refused with the reason, nothing changes", async () => {
    const past = await as.alice.post(`/api/sessions/${mine.id}/extend`, { minutes: 90 });
    expect(past.status).toBe(403);
    expect(past.body).toMatchObject({ field: 'minutes', error: 'at most 1 h can be added at a time' });
    const other = await as.alice.post(`/api/sessions/${bobs.id}/extend`, { minutes: 30 });
    expect(other.status).toBe(404);
    expect(other.body).toMatchObject({ error: 'no such session' });
    expect(timeLimit(mine.jobId!)).toBe('01:00:00');
    expect(timeLimit(bobs.jobId!)).toBe('00:30:00');
    expect((await sessionOf(as.bob, bobs.id)).timeLimitMinutes).toBe(30);
  });

  it('one that would run into a maintenance reservation is refused, naming it', async () => {
    // The session now ends in about 59 minutes; maintenance from 75 minutes on, on every node.
    slurm(c, 'scontrol', [
      'create',
      'reservation',
      `ReservationName=${MAINT}`,
      'StartTime=now+75minutes',
      'Duration=60',
      'Users=root',
      'Nodes=ALL',
      'Flags=MAINT,IGNORE_JOBS',
    ]);
    try {
      const r = await as.alice.post(`/api/sessions/${mine.id}/extend`, { minutes: 30 });
      expect(r.status, JSON.stringify(r.body)).toBe(409);
      expect((r.body as { error: string }).error).toMatch(
        new RegExp(
          `^a maintenance window ${MAINT} starts at .* on this job's nodes: the job cannot run past it$`,
        ),
      );
      expect(timeLimit(mine.jobId!)).toBe('01:00:00');
    } finally {
      slurm(c, 'scontrol', ['delete', `ReservationName=${MAINT}`]);
    }
  });

  it('a running batch job gets its time too; a session that ended gets none', async () => {
    await until(
      'the batch job running',
      async () => {
        const j = (await as.alice.get(`/api/jobs/ext/${jobId}`)).body as { job: { state: string } };
        return j.job.state === 'running';
      },
      30_000,
    );
    const r = await as.alice.post(`/api/jobs/ext/${jobId}/extend`, { minutes: 30 });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect((r.body as { job: { timeLimitMinutes: number } }).job.timeLimitMinutes).toBe(45);
    expect(timeLimit(jobId)).toBe('00:45:00');

    await as.bob.del(`/api/sessions/${bobs.id}`);
    await waitForState(as.bob, bobs.id, ['ended'], 30_000);
    const ended = await as.bob.post(`/api/sessions/${bobs.id}/extend`, { minutes: 30 });
    expect(ended.status).toBe(409);
    expect(ended.body).toMatchObject({ error: 'only a running job can be given more time' });
  });

  it('in Chromium, "Add time" on the session card moves the time left', async () => {
    browser = await launchBrowser({ name: 'walltime-extension' });
    await shareSession(browser.context, gw.url, as.alice.cookie);
    const page = browser.page;
    await page.goto(`${gw.url}/`);
    const left = page.locator(`tr[data-session="${mine.id}"] .timeleft`);
    await visible(left);
    expect(await left.textContent()).toMatch(/^(59|58) min left$/);
    await page.getByRole('button', { name: /^Add time to / }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Add time' }).click();
    await until(
      'the time left to move',
      async () => /^1 h (29|28) min left$/.test((await left.textContent()) ?? ''),
      10_000,
    );
    expect(timeLimit(mine.jobId!)).toBe('01:30:00');
  });

  it('the audit log lists every grant and refusal, with its reason', async () => {
    const rows = await gw.query<{ action: string; target: string; ok: number; details: string }>(
      "SELECT action, target, ok, details FROM audit_log WHERE action IN ('session.extend', 'job.extend') ORDER BY id",
    );
    const seen = rows.map((r) => ({
      action: r.action,
      target: r.target,
      ok: Boolean(r.ok),
      reason: (JSON.parse(r.details) as { reason?: string }).reason,
    }));
    const granted = seen.filter((r) => r.ok);
    expect(granted.map((r) => `${r.action} ${r.target}`)).toEqual([
      `session.extend ${mine.id}`,
      `job.extend ext/${jobId}`,
      `session.extend ${mine.id}`,
    ]);
    const refused = seen.filter((r) => !r.ok);
    expect(refused).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ target: mine.id, reason: 'at most 1 h can be added at a time' }),
        expect.objectContaining({ target: bobs.id, reason: 'no such session' }),
        expect.objectContaining({
          target: mine.id,
          reason: expect.stringContaining(`maintenance window ${MAINT}`),
        }),
        expect.objectContaining({ target: bobs.id, reason: 'only a running job can be given more time' }),
        expect.objectContaining({ target: mine.id, reason: 'minutes must be at least 1' }),
      ]),
    );
  });
});
