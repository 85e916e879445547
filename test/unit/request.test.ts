import { describe, expect, it } from 'vitest';
import {
  minutesOf,
  type RequestLimits,
  type SessionRequest,
  validateRequest,
} from '../../src/core/request.ts';

const limits: RequestLimits = {
  maxCores: 16,
  maxMemoryGb: 64,
  maxGpus: 2,
  maxHours: 8,
  apps: ['jupyter', 'vscode'],
  environments: ['system', 'torch'],
  partitions: ['interactive', 'batch'],
  accounts: ['research'],
  reservations: ['alice_res'],
  perPartition: { batch: { maxCores: 8, maxMemoryGb: 32, maxGpus: 0 } },
};
const ok: SessionRequest = { cluster: 'c', app: 'jupyter', cores: 2, memoryGb: 4, gpus: 1, hours: 2 };

function fields(req: Partial<SessionRequest>) {
  return validateRequest({ ...ok, ...req }, limits);
}

describe('session request validation', () => {
  it('accepts a valid request', () => {
    expect(fields({})).toEqual([]);
    expect(
      fields({
        partition: 'interactive',
        account: 'research',
        reservation: 'alice_res',
        environment: 'torch',
        label: 'My run (2)',
      }),
    ).toEqual([]);
  });

  it('names the field and the limit', () => {
    expect(fields({ gpus: 3 })).toEqual([
      { field: 'gpus', message: 'GPUs: at most 2 per node on this cluster' },
    ]);
    expect(fields({ cores: 17 })[0]!.message).toBe('Cores: at most 16 per node on this cluster');
    expect(fields({ memoryGb: 65 })[0]!.message).toBe('Memory: at most 64 GB per node on this cluster');
    expect(fields({ hours: 9 })[0]!.message).toBe('Hours: at most 8 on this cluster');
    expect(fields({ hours: 0 })[0]!.field).toBe('hours');
    expect(fields({ hours: 0.001 })[0]!.message).toBe('Hours: at least one minute');
  });

  it('uses the limits of the chosen partition', () => {
    const errs = fields({ partition: 'batch', cores: 12, gpus: 1 });
    expect(errs.map((e) => e.field).sort()).toEqual(['cores', 'gpus']);
    expect(errs.find((e) => e.field === 'gpus')!.message).toBe('GPUs: this cluster has no GPUs');
  });

  it("refuses unknown choices and other people's reservations", () => {
    expect(fields({ app: 'rstudio' })[0]!.field).toBe('app');
    expect(fields({ environment: 'nope' })[0]!.field).toBe('environment');
    expect(fields({ partition: 'gpu' })[0]!.field).toBe('partition');
    expect(fields({ account: 'physics' })[0]!.message).toContain('is not one of your accounts');
    expect(fields({ reservation: 'bob_res' })[0]!.field).toBe('reservation');
  });

  it('refuses shell metacharacters in every text field', () => {
    for (const bad of ['a;b', '$(id)', '`id`', 'a b', 'a|b', 'a&b', '../x', '-x', "a'b", 'a\nb', 'a>b']) {
      for (const f of ['partition', 'account', 'reservation'] as const) {
        expect(
          fields({ [f]: bad }).map((e) => e.field),
          `${f}=${bad}`,
        ).toContain(f);
      }
    }
    expect(fields({ label: '<img src=x onerror=alert(1)>' })[0]!.field).toBe('label');
    expect(fields({ label: 'a\u0000b' })[0]!.field).toBe('label');
  });

  it('rejects non-numbers', () => {
    expect(fields({ cores: Number.NaN })[0]!.field).toBe('cores');
    expect(fields({ cores: 1.5 })[0]!.field).toBe('cores');
    expect(fields({ memoryGb: Number.POSITIVE_INFINITY })[0]!.field).toBe('memoryGb');
  });

  it('has no accounts check where the cluster has no accounting', () => {
    expect(validateRequest({ ...ok, account: 'anything' }, { ...limits, accounts: undefined })).toEqual([]);
  });

  it('rounds hours to whole minutes', () => {
    expect(minutesOf({ hours: 1 / 60 })).toBe(1);
    expect(minutesOf({ hours: 1.5 })).toBe(90);
  });
});
