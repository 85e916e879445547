// Validation of a new-session request against what a cluster offers. Pure: the limits come from the
// caller (config for the local backend, the live poll for Slurm). Every error names its form field.
import type { RequestLimits } from '../api/clusters.ts';
import type { FieldProblem } from '../api/common.ts';
import type { SessionRequest } from '../api/sessions.ts';

// The request and the limits travel between the form and the gateway: they are types of the API
// contract (src/api/), checked here.
export type { RequestLimits, SessionRequest };

/** One problem with one field; the message starts with the field's label. */
export type FieldError = FieldProblem;

/** Apps one session may run next to its main app. */
export const MAX_EXTRA_APPS = 4;

/** Names that reach a scheduler's argv: letters, digits and . _ - only, so no shell or option tricks. */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** A label is shown in pages only (escaped there), but we still keep it printable and short. */
const LABEL_RE = /^[\p{L}\p{N} _.,:()+-]{0,80}$/u;

export const FIELD_LABELS: Record<string, string> = {
  cluster: 'Cluster',
  app: 'User interface',
  extraApps: 'Extra apps',
  environment: 'Environment',
  cores: 'Cores',
  memoryGb: 'Memory',
  gpus: 'GPUs',
  hours: 'Hours',
  partition: 'Partition',
  account: 'Account',
  reservation: 'Reservation',
  label: 'Name',
};

function err(field: string, message: string): FieldError {
  return { field, message: `${FIELD_LABELS[field] ?? field}: ${message}` };
}

function checkName(field: string, value: string | undefined, errors: FieldError[]): boolean {
  if (value === undefined || value === '') return true;
  if (typeof value !== 'string' || !NAME_RE.test(value)) {
    errors.push(err(field, 'only letters, digits, ".", "_" and "-" are allowed (at most 64)'));
    return false;
  }
  return true;
}

/** Checks a request; returns every problem at once so a form can show them all. */
export function validateRequest(req: SessionRequest, limits: RequestLimits): FieldError[] {
  const errors: FieldError[] = [];
  if (!limits.apps.includes(req.app))
    errors.push(err('app', `unknown choice "${String(req.app).slice(0, 40)}"`));
  if (req.extraApps !== undefined) {
    const offered = limits.extraApps ?? limits.apps;
    if (!Array.isArray(req.extraApps) || req.extraApps.some((a) => typeof a !== 'string')) {
      errors.push(err('extraApps', 'a list of app names'));
    } else if (req.extraApps.length > MAX_EXTRA_APPS) {
      errors.push(err('extraApps', `at most ${MAX_EXTRA_APPS}`));
    } else {
      const seen = new Set<string>([req.app]);
      for (const a of req.extraApps) {
        if (seen.has(a)) errors.push(err('extraApps', `"${a.slice(0, 40)}" is already in the session`));
        else if (!offered.includes(a)) errors.push(err('extraApps', `unknown choice "${a.slice(0, 40)}"`));
        seen.add(a);
      }
    }
  }
  if (req.environment && !limits.environments.includes(req.environment)) {
    errors.push(err('environment', `unknown choice "${String(req.environment).slice(0, 40)}"`));
  }
  if (typeof req.label === 'string' && !LABEL_RE.test(req.label)) {
    errors.push(err('label', 'use letters, digits, spaces and . , : ( ) + - _ only (at most 80)'));
  }
  const partOk = checkName('partition', req.partition, errors);
  const acctOk = checkName('account', req.account, errors);
  const resOk = checkName('reservation', req.reservation, errors);

  let { maxCores, maxMemoryGb, maxGpus, maxHours } = limits;
  if (partOk && req.partition) {
    if (limits.partitions && !limits.partitions.includes(req.partition)) {
      errors.push(err('partition', `"${req.partition}" is not a partition you can use here`));
    } else if (limits.perPartition?.[req.partition]) {
      const p = limits.perPartition[req.partition]!;
      maxCores = p.maxCores;
      maxMemoryGb = p.maxMemoryGb;
      maxGpus = p.maxGpus;
      if (p.maxHours !== undefined) maxHours = Math.min(maxHours, p.maxHours);
    }
  }
  if (acctOk && req.account) {
    if (limits.accounts === undefined) {
      // No accounting on this cluster: any valid name is passed on and the scheduler decides.
    } else if (!limits.accounts.includes(req.account)) {
      errors.push(
        err(
          'account',
          `"${req.account}" is not one of your accounts (${limits.accounts.join(', ') || 'none'})`,
        ),
      );
    }
  }
  if (resOk && req.reservation && !(limits.reservations ?? []).includes(req.reservation)) {
    errors.push(err('reservation', `"${req.reservation}" is not a reservation you may use`));
  }

  if (!Number.isInteger(req.cores) || req.cores < 1) errors.push(err('cores', 'a whole number, at least 1'));
  else if (req.cores > maxCores) errors.push(err('cores', `at most ${maxCores} per node on this cluster`));

  if (typeof req.memoryGb !== 'number' || !Number.isFinite(req.memoryGb) || req.memoryGb <= 0) {
    errors.push(err('memoryGb', 'a number of GB above 0'));
  } else if (req.memoryGb > maxMemoryGb) {
    errors.push(err('memoryGb', `at most ${maxMemoryGb} GB per node on this cluster`));
  }

  if (!Number.isInteger(req.gpus) || req.gpus < 0) errors.push(err('gpus', 'a whole number, 0 or more'));
  else if (req.gpus > maxGpus) {
    errors.push(
      err('gpus', maxGpus === 0 ? 'this cluster has no GPUs' : `at most ${maxGpus} per node on this cluster`),
    );
  }

  if (typeof req.hours !== 'number' || !Number.isFinite(req.hours) || req.hours <= 0) {
    errors.push(err('hours', 'more than 0'));
  } else if (Math.round(req.hours * 60) < 1) {
    errors.push(err('hours', 'at least one minute'));
  } else if (req.hours > maxHours) {
    errors.push(err('hours', `at most ${maxHours} on this cluster`));
  }
  return errors;
}

export function minutesOf(req: Pick<SessionRequest, 'hours'>): number {
  return Math.max(1, Math.round(req.hours * 60));
}
