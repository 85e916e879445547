// Walltime extension, the pure parts: the amount, the site's policy per cluster and partition, the
// reservations ahead (src/core/extension.ts), and the adapter's `scontrol update` argv.
import { describe, expect, it } from 'vitest';
import {
  checkExtensionMinutes,
  cuttingReservation,
  decideExtension,
  type ExtensionJob,
  type ExtensionPolicy,
  extensionOffer,
  policyFor,
} from '../../src/core/extension.ts';
import { SlurmAdapter } from '../../src/scheduler/slurm/adapter.ts';
import { SchedulerError } from '../../src/scheduler/types.ts';
import { FakeRunner } from '../helpers/fake-runner.ts';

const NOW = Date.UTC(2026, 11, 6, 12, 0, 0);
const policy: ExtensionPolicy = {
  maxTotalMinutes: 240,
  maxPerRequestMinutes: 60,
  partitions: {
    gpu: { maxTotalMinutes: 120 },
    debug: { enabled: false },
    long: { maxPerRequestMinutes: 600, maxTotalMinutes: 2880 },
  },
};
/** Started an hour ago with two hours: ends at NOW + 1 h. */
const job: ExtensionJob = {
  running: true,
  startedAt: NOW - 3600_000,
  timeLimitMinutes: 120,
  partition: 'interactive',
  nodes: ['n1'],
};
const decide = (over: Partial<Parameters<typeof decideExtension>[0]> = {}) =>
  decideExtension({ minutes: 30, job, policy, reservations: [], now: NOW, ...over });
const s = (ms: number) => Math.floor(ms / 1000);

describe('the amount', () => {
  it('is a whole number of minutes from 1 up to a cap', () => {
    expect(checkExtensionMinutes(30)).toBeUndefined();
    for (const bad of [0, -5, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '30', null, 10_000_000])
      expect(checkExtensionMinutes(bad)).toMatch(/minutes/);
  });
  it('refuses a bad amount before anything else, naming the field', () => {
    expect(decide({ minutes: -30, job: { ...job, running: false } })).toMatchObject({
      ok: false,
      kind: 'input',
      field: 'minutes',
    });
  });
});

describe('the policy', () => {
  it('grants within the limits: the new total and end', () => {
    expect(decide()).toEqual({ ok: true, newLimitMinutes: 150, newEnd: NOW - 3600_000 + 150 * 60_000 });
  });
  it('refuses a job that is not running', () => {
    expect(decide({ job: { ...job, running: false } })).toMatchObject({ ok: false, kind: 'state' });
  });
  it('refuses more than one request may add, and past the maximum total, saying how much is left', () => {
    expect(decide({ minutes: 90 })).toMatchObject({
      ok: false,
      kind: 'policy',
      field: 'minutes',
      reason: 'at most 1 h can be added at a time',
    });
    const r = decide({ minutes: 60, job: { ...job, timeLimitMinutes: 200 } });
    expect(r).toMatchObject({ ok: false, kind: 'policy', field: 'minutes' });
    expect(!r.ok && r.reason).toContain('at most 40 min more');
    expect(decide({ minutes: 40, job: { ...job, timeLimitMinutes: 200 } }).ok).toBe(true);
  });
  it('per partition: other limits, or none at all; no policy: no extensions', () => {
    expect(policyFor(policy, 'gpu')).toEqual({ maxTotalMinutes: 120, maxPerRequestMinutes: 60 });
    expect(policyFor(policy, 'nope')).toEqual({ maxTotalMinutes: 240, maxPerRequestMinutes: 60 });
    expect(decide({ job: { ...job, partition: 'gpu' } })).toMatchObject({ ok: false, kind: 'policy' });
    expect(decide({ minutes: 500, job: { ...job, partition: 'long' } }).ok).toBe(true);
    const off = decide({ job: { ...job, partition: 'debug' } });
    expect(!off.ok && off.reason).toBe('the site allows no time extensions in partition debug');
    const none = decide({ policy: undefined });
    expect(!none.ok && none.reason).toBe('the site allows no time extensions on this cluster');
  });
  it('offers the most one request may add now, or nothing', () => {
    expect(extensionOffer(policy, { running: true, partition: 'interactive', timeLimitMinutes: 120 })).toBe(
      60,
    );
    expect(extensionOffer(policy, { running: true, partition: 'interactive', timeLimitMinutes: 220 })).toBe(
      20,
    );
    expect(
      extensionOffer(policy, { running: true, partition: 'interactive', timeLimitMinutes: 240 }),
    ).toBeNull();
    expect(extensionOffer(policy, { running: false, timeLimitMinutes: 60 })).toBeNull();
    expect(extensionOffer(policy, { running: true, partition: 'debug', timeLimitMinutes: 60 })).toBeNull();
    expect(extensionOffer(undefined, { running: true, timeLimitMinutes: 60 })).toBeNull();
  });
});

describe('reservations ahead', () => {
  // The job now ends at NOW + 1 h; +30 min would end at NOW + 1 h 30.
  const maint = {
    name: 'maint',
    nodes: ['n1', 'n2'],
    flags: ['MAINT', 'SPEC_NODES'],
    startTime: s(NOW + 75 * 60_000),
    endTime: s(NOW + 135 * 60_000),
  };
  it('a maintenance window on its nodes before the new end refuses, naming it and its start', () => {
    const r = decide({ reservations: [maint] });
    expect(r).toMatchObject({ ok: false, kind: 'reservation', field: 'minutes' });
    expect(!r.ok && r.reason).toBe(
      "a maintenance window maint starts at 2026-12-06 13:15 UTC on this job's nodes: the job cannot run past it",
    );
    // Up to its start is fine.
    expect(decide({ minutes: 15, reservations: [maint] }).ok).toBe(true);
  });
  it('even when the job runs in it; another reservation only when the job is not in it', () => {
    expect(decide({ reservations: [maint], job: { ...job, reservation: 'maint' } }).ok).toBe(false);
    const course = { ...maint, name: 'course', flags: ['SPEC_NODES'] };
    expect(decide({ reservations: [course] })).toMatchObject({ ok: false, kind: 'reservation' });
    expect(decide({ reservations: [course], job: { ...job, reservation: 'course' } }).ok).toBe(true);
  });
  it('others do not: on other nodes, already under way (the job was placed beside it), or after the new end', () => {
    const elsewhere = { ...maint, nodes: ['n3'] };
    const underWay = { ...maint, startTime: s(NOW - 60_000), flags: ['SPEC_NODES'] };
    const later = { ...maint, startTime: s(NOW + 200 * 60_000), endTime: s(NOW + 300 * 60_000) };
    expect(cuttingReservation(job, [elsewhere, underWay, later], NOW, NOW + 90 * 60_000)).toBeUndefined();
    expect(decide({ reservations: [elsewhere, underWay, later] }).ok).toBe(true);
  });
  it('the reservation the job runs in, under way, refuses an end past its own end (Slurm ends the job there)', () => {
    const course = {
      name: 'course',
      nodes: ['n1'],
      startTime: s(NOW - 7200_000),
      endTime: s(NOW + 80 * 60_000),
    };
    const inIt = { ...job, reservation: 'course' };
    const r = decide({ reservations: [course], job: inIt });
    expect(r).toMatchObject({ ok: false, kind: 'reservation', field: 'minutes' });
    expect(!r.ok && r.reason).toBe(
      'the reservation course this job runs in ends at 2026-12-06 13:20 UTC: the job cannot run past it',
    );
    expect(decide({ minutes: 20, reservations: [course], job: inIt }).ok).toBe(true);
    // A job beside it (not in it) is not cut by its end.
    expect(decide({ reservations: [course] }).ok).toBe(true);
  });
});

describe('SlurmAdapter.setTimeLimit', () => {
  it('runs scontrol update with the total in minutes, as the gateway, argv only', async () => {
    const runner = new FakeRunner({ scontrol: {} });
    const a = new SlurmAdapter(
      { name: 'c', slurmConf: '/x/slurm.conf', runAs: 'runuser', commandTimeoutMs: 1000 },
      runner,
    );
    await a.setTimeLimit('42', 150);
    expect(runner.log[0]?.argv).toEqual(['scontrol', 'update', 'JobId=42', 'TimeLimit=150']);
    expect(runner.log[0]?.opts.env?.SLURM_CONF).toBe('/x/slurm.conf');
  });
  it('refuses odd ids and amounts before running anything; says when the gateway is no operator', async () => {
    const runner = new FakeRunner({
      scontrol: { code: 1, stderr: 'slurm_update error: Access/permission denied\n' },
    });
    const a = new SlurmAdapter({ name: 'c', runAs: 'runuser', commandTimeoutMs: 1000 }, runner);
    await expect(a.setTimeLimit('42; rm', 10)).rejects.toBeInstanceOf(SchedulerError);
    await expect(a.setTimeLimit('42', 0)).rejects.toBeInstanceOf(SchedulerError);
    expect(runner.calls).toBe(0);
    await expect(a.setTimeLimit('42', 10)).rejects.toThrow(/Slurm operator/);
  });
});
