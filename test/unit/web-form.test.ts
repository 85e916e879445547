// The new-session form's data side: defaults per cluster, the request it sends, the checks it makes
// before sending (the server's own rules and wording), and which page a path shows.
import { describe, expect, it } from 'vitest';
import {
  byField,
  defaultsFor,
  effectiveLimits,
  extraAppChoices,
  toRequest,
  validateForm,
} from '../../src/web/form.ts';
import { pageFor, pagesFor } from '../../src/web/pages.ts';
import type { ClusterView, Me } from '../../src/web/types.ts';

function cluster(over: Partial<ClusterView> = {}): ClusterView {
  return {
    name: 'hpc',
    title: 'HPC cluster',
    backend: 'slurm',
    drained: false,
    reachable: true,
    defaultHours: 2,
    limits: {
      maxCores: 16,
      maxMemoryGb: 64,
      maxGpus: 2,
      maxHours: 8,
      apps: ['jupyter', 'desktop'],
      environments: ['system'],
      partitions: ['interactive', 'small'],
      perPartition: { small: { maxCores: 8, maxMemoryGb: 32, maxGpus: 0, maxHours: 4 } },
      accounts: ['research'],
      reservations: [],
    },
    defaultPartition: 'interactive',
    apps: [
      { id: 'jupyter', name: 'Jupyter', description: '', icon: null },
      {
        id: 'desktop',
        name: 'Remote desktop',
        description: '',
        icon: null,
        available: false,
        missing: ['Xvnc'],
      },
    ],
    environments: [{ id: 'system', name: 'System software', description: '' }],
    free: { cluster: 'hpc', at: 0, rows: [], fresh: false },
    ...over,
  };
}

describe('defaults and request', () => {
  it('starts from the cluster defaults and an installed app', () => {
    const v = defaultsFor(cluster());
    expect(v).toMatchObject({
      cluster: 'hpc',
      app: 'jupyter',
      environment: 'system',
      cores: '1',
      memoryGb: '4',
      gpus: '0',
      hours: '2',
    });
    expect(v.partition).toBe('');
  });

  it('keeps choices still valid on another cluster and drops the others', () => {
    const v = defaultsFor(cluster(), { app: 'desktop', partition: 'gone', account: 'research', cores: '3' });
    expect(v.app).toBe('jupyter');
    expect(v.partition).toBe('');
    expect(v.account).toBe('research');
    expect(v.cores).toBe('3');
  });

  it('turns strings into the request the API takes (empty optional fields left out)', () => {
    const r = toRequest({ ...defaultsFor(cluster()), cores: ' 2 ', memoryGb: '1.5', hours: '', label: '' });
    expect(r).toEqual({
      cluster: 'hpc',
      app: 'jupyter',
      environment: 'system',
      cores: 2,
      memoryGb: 1.5,
      gpus: 0,
      hours: Number.NaN,
      partition: undefined,
      account: undefined,
      reservation: undefined,
      label: undefined,
    });
  });
});

describe('extra apps', () => {
  const c = cluster({
    apps: [
      { id: 'jupyter', name: 'Jupyter', description: '', icon: null, available: true, extra: true },
      { id: 'terminal', name: 'Terminal', description: '', icon: null, available: true, extra: true },
      { id: 'desktop', name: 'Remote desktop', description: '', icon: null, available: false, extra: true },
      { id: 'rstudio', name: 'RStudio', description: '', icon: null, available: true, extra: false },
    ],
    limits: { ...cluster().limits, apps: ['jupyter', 'terminal', 'desktop', 'rstudio'] },
  });

  it('offers installed apps that may be extras, never the main app', () => {
    expect(extraAppChoices(c, 'jupyter').map((a) => a.id)).toEqual(['terminal']);
    expect(extraAppChoices(c, 'rstudio').map((a) => a.id)).toEqual(['jupyter', 'terminal']);
    // A server that does not say `extra` offers none.
    expect(extraAppChoices(cluster(), 'jupyter')).toEqual([]);
  });

  it('sends the ticked ones and drops those the cluster does not offer', () => {
    const v = defaultsFor(c, { app: 'jupyter', extraApps: ['terminal', 'desktop', 'jupyter'] });
    expect(v.extraApps).toEqual(['terminal']);
    expect(toRequest(v).extraApps).toEqual(['terminal']);
    expect(toRequest({ ...v, extraApps: [] }).extraApps).toBeUndefined();
  });
});

describe('validateForm', () => {
  it('accepts the defaults', () => {
    expect(validateForm(defaultsFor(cluster()), cluster())).toEqual({});
  });

  it('uses the server wording, one message per field', () => {
    const c = cluster();
    const errs = validateForm(
      { ...defaultsFor(c), cores: '999', memoryGb: '0', hours: '', gpus: '3', label: 'a$b' },
      c,
    );
    expect(errs).toEqual({
      cores: 'Cores: at most 16 per node on this cluster',
      memoryGb: 'Memory: a number of GB above 0',
      gpus: 'GPUs: at most 2 per node on this cluster',
      hours: 'Hours: more than 0',
      label: 'Name: use letters, digits, spaces and . , : ( ) + - _ only (at most 80)',
    });
  });

  it('applies the limits of the chosen partition', () => {
    const c = cluster();
    const v = { ...defaultsFor(c), partition: 'small', cores: '12', hours: '6' };
    expect(validateForm(v, c)).toMatchObject({
      cores: 'Cores: at most 8 per node on this cluster',
      hours: 'Hours: at most 4 on this cluster',
    });
    expect(effectiveLimits(c, 'small')).toEqual({ maxCores: 8, maxMemoryGb: 32, maxGpus: 0, maxHours: 4 });
    expect(effectiveLimits(c, '')).toEqual({ maxCores: 16, maxMemoryGb: 64, maxGpus: 2, maxHours: 8 });
  });

  it('refuses an app that is not installed, and a drained cluster', () => {
    const c = cluster({ drained: true });
    expect(validateForm({ ...defaultsFor(c), app: 'desktop' }, c)).toEqual({
      app: 'User interface: Remote desktop is not installed on HPC cluster (missing Xvnc)',
      cluster: 'Cluster: HPC cluster is closed for new sessions at the moment',
    });
  });

  it('maps server errors onto fields and keeps the rest', () => {
    expect(
      byField([
        { field: 'cores', message: 'Cores: first' },
        { field: 'cores', message: 'Cores: second' },
        { field: 'somethingNew', message: 'Something new: x' },
      ]),
    ).toEqual({ fields: { cores: 'Cores: first' }, other: ['Something new: x'] });
  });
});

describe('pages', () => {
  const me = (isAdmin: boolean): Me => ({
    id: 1,
    username: 'alice',
    unixUser: 'alice',
    displayName: null,
    isAdmin,
    groups: [],
    source: 'local',
  });

  it('finds the page of a path, sub-paths included', () => {
    const pages = [
      ...pagesFor(me(false)),
      { path: '/jobs', label: 'Jobs', component: () => null },
      { path: '/admin', label: 'Admin', component: () => null, admin: true },
    ];
    expect(pageFor('/', pages)?.label).toBe('Sessions');
    expect(pageFor('/jobs', pages)?.label).toBe('Jobs');
    expect(pageFor('/jobs/123', pages)?.label).toBe('Jobs');
    expect(pageFor('/nothing', pages)).toBeUndefined();
  });
});
