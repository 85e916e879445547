// Saved settings of the new-session form, the pure parts: a preset's values checked with the form's own
// rules for the fields it holds (site presets keep a course's account and reservation), the last-used
// values per cluster and app, and on the web side the values as the form holds them, what the form opens
// with, and a filled value that no longer fits kept on the form with its field named.
import { describe, expect, it } from 'vitest';
import type { RequestLimits } from '../../src/api/clusters.ts';
import {
  checkPresetName,
  cleanValues,
  lastUsedOf,
  presetProblems,
  type RecentSession,
} from '../../src/core/presets.ts';
import { filledFor, validateForm } from '../../src/web/form.ts';
import { formValuesOf, presetsOn, presetValuesOf, recallFor } from '../../src/web/presets.ts';
import type { ClusterView, PresetsReply, PresetView } from '../../src/web/types.ts';

const limits: RequestLimits = {
  maxCores: 16,
  maxMemoryGb: 64,
  maxGpus: 2,
  maxHours: 8,
  apps: ['jupyter', 'desktop'],
  environments: ['system'],
  partitions: ['interactive', 'small'],
  perPartition: { small: { maxCores: 8, maxMemoryGb: 32, maxGpus: 0, maxHours: 4 } },
  accounts: ['research'],
  reservations: ['course1'],
};

const cluster: ClusterView = {
  name: 'hpc',
  title: 'HPC cluster',
  backend: 'slurm',
  drained: false,
  reachable: true,
  defaultHours: 2,
  limits,
  defaultPartition: 'interactive',
  apps: [
    { id: 'jupyter', name: 'Jupyter', description: '', icon: null },
    { id: 'desktop', name: 'Remote desktop', description: '', icon: null },
  ],
  environments: [{ id: 'system', name: 'System software', description: '' }],
  free: { cluster: 'hpc', at: 0, rows: [], fresh: false },
};

describe('a preset checked against the cluster', () => {
  it('passes values that fit, checking only the fields it holds', () => {
    expect(presetProblems('hpc', { cores: 4, partition: 'small' }, limits)).toEqual([]);
    expect(presetProblems('hpc', { reservation: 'course1', account: 'research' }, limits)).toEqual([]);
    expect(presetProblems('hpc', {}, limits)).toEqual([]);
  });

  it('names each field out of range with the form words', () => {
    expect(
      presetProblems('hpc', { cores: 12, partition: 'small', gpus: -1, hours: 99, app: 'matlab' }, limits),
    ).toEqual([
      { field: 'app', message: 'User interface: unknown choice "matlab"' },
      { field: 'cores', message: 'Cores: at most 8 per node on this cluster' },
      { field: 'gpus', message: 'GPUs: a whole number, 0 or more' },
      { field: 'hours', message: 'Hours: at most 4 on this cluster' },
    ]);
    expect(presetProblems('hpc', { partition: 'gone' }, limits)).toEqual([
      { field: 'partition', message: 'Partition: "gone" is not a partition you can use here' },
    ]);
    expect(presetProblems('hpc', { reservation: 'x;rm' }, limits)[0]?.field).toBe('reservation');
  });

  it("keeps a site preset's account and reservation (the course's), still checking their form", () => {
    const course = { account: 'course-hpc101', reservation: 'hpc101' };
    expect(presetProblems('hpc', course, limits).map((p) => p.field)).toEqual(['account', 'reservation']);
    expect(presetProblems('hpc', course, limits, { site: true })).toEqual([]);
    expect(presetProblems('hpc', { account: '-x' }, limits, { site: true })[0]?.field).toBe('account');
  });

  it('drops empty fields and trims names', () => {
    expect(cleanValues({ partition: ' ', extraApps: [], cores: 2, label: ' a ' })).toEqual({
      cores: 2,
      label: 'a',
    });
    expect(checkPresetName('  GPU work ')).toEqual({ name: 'GPU work' });
    expect(checkPresetName('')).toHaveProperty('error.field', 'name');
    expect(checkPresetName('<script>')).toHaveProperty('error.field', 'name');
  });
});

describe('last-used values', () => {
  const req = (app: string, cores: number, label?: string) => ({
    cluster: 'hpc',
    app,
    cores,
    memoryGb: 4,
    gpus: 0,
    hours: 1,
    ...(label ? { label } : {}),
  });
  it('takes the newest session per cluster and app, without its name', () => {
    const recent: RecentSession[] = [
      { id: 's3', cluster: 'hpc', app: 'jupyter', createdAt: 3, request: req('jupyter', 3, 'thesis') },
      { id: 's2', cluster: 'hpc', app: 'desktop', createdAt: 2, request: req('desktop', 2) },
      { id: 's1', cluster: 'hpc', app: 'jupyter', createdAt: 1, request: req('jupyter', 1) },
      {
        id: 's0',
        cluster: 'local',
        app: 'jupyter',
        createdAt: 0,
        request: { ...req('jupyter', 9), cluster: 'local' },
      },
    ];
    const last = lastUsedOf(recent);
    expect(last.map((l) => [l.cluster, l.app, l.sessionId, l.values.cores])).toEqual([
      ['hpc', 'jupyter', 's3', 3],
      ['hpc', 'desktop', 's2', 2],
      ['local', 'jupyter', 's0', 9],
    ]);
    expect(last[0]!.values).toEqual({ app: 'jupyter', cores: 3, memoryGb: 4, gpus: 0, hours: 1 });
  });
});

describe('the form side', () => {
  const preset = (over: Partial<PresetView>): PresetView => ({
    id: 1,
    name: 'p',
    cluster: 'hpc',
    values: {},
    isDefault: false,
    site: false,
    updatedAt: 0,
    ...over,
  });

  it("turns a preset's values into the form's strings and back", () => {
    const v = { app: 'jupyter', cores: 4, memoryGb: 1.5, hours: 0.5, partition: 'small' };
    const form = filledFor(cluster, formValuesOf(v));
    expect(form).toMatchObject({ cores: '4', memoryGb: '1.5', hours: '0.5', partition: 'small', gpus: '0' });
    expect(presetValuesOf(form)).toEqual({ ...v, environment: 'system', gpus: 0 });
  });

  it('keeps a filled value the cluster no longer offers, and the checks name its field', () => {
    const form = filledFor(cluster, formValuesOf({ partition: 'gone', cores: 64 }));
    expect(form.partition).toBe('gone');
    expect(form.cores).toBe('64');
    expect(validateForm(form, cluster)).toEqual({
      partition: 'Partition: "gone" is not a partition you can use here',
      cores: 'Cores: at most 16 per node on this cluster',
    });
  });

  it('opens with the default preset, else the newest session there (of the app chosen)', () => {
    const saved: PresetsReply = {
      presets: [
        preset({ id: 1, name: 'big', values: { cores: 8 } }),
        preset({ id: 2, name: 'site', site: true, isDefault: true, values: { cores: 2 } }),
      ],
      lastUsed: [
        { cluster: 'hpc', app: 'desktop', values: { app: 'desktop', cores: 3 }, sessionId: 'b', at: 2 },
        { cluster: 'hpc', app: 'jupyter', values: { app: 'jupyter', cores: 5 }, sessionId: 'a', at: 1 },
      ],
    };
    expect(recallFor(saved, 'hpc')).toMatchObject({ kind: 'recall', values: { app: 'desktop', cores: '3' } });
    expect(recallFor(saved, 'hpc', 'jupyter')?.values.cores).toBe('5');
    expect(recallFor(saved, 'other')).toBeNull();
    saved.presets[0]!.isDefault = true;
    expect(recallFor(saved, 'hpc')).toMatchObject({ kind: 'preset', presetId: 1, values: { cores: '8' } });
    expect(recallFor(saved, 'hpc', 'jupyter')?.kind).toBe('recall');
    expect(presetsOn(saved, 'hpc')).toEqual({ mine: [saved.presets[0]], site: [saved.presets[1]] });
  });
});
