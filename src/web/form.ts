// The new-session form as plain data: defaults for a cluster, the request it makes, and its checks.
// Validation is the server's own (src/core/request.ts, through the API contract), so messages match
// word for word.
import { type FieldError, validateRequest } from '../api/forms.ts';
import type { ClusterView, SessionRequest } from './types.ts';

/** What the inputs hold: strings, as typed (and the ticked extra apps). */
export interface FormValues {
  cluster: string;
  app: string;
  /** Apps to run next to the main one in the same session. */
  extraApps: string[];
  environment: string;
  cores: string;
  memoryGb: string;
  gpus: string;
  hours: string;
  partition: string;
  account: string;
  reservation: string;
  label: string;
}

export type FieldName = keyof FormValues;
/** The fields typed or chosen as one string. */
export type TextField = Exclude<FieldName, 'extraApps'>;

export const FIELDS: readonly FieldName[] = [
  'cluster',
  'app',
  'extraApps',
  'environment',
  'cores',
  'memoryGb',
  'gpus',
  'hours',
  'partition',
  'account',
  'reservation',
  'label',
];

export function isFieldName(f: string): f is FieldName {
  return (FIELDS as readonly string[]).includes(f);
}

const DEFAULT_MEMORY_GB = 4;

/**
 * Apps that may be added to a session of `mainApp`: installed, allowed as extras, not the main app.
 * Only servers that support extra apps say `extra` per app; older ones offer none.
 */
export function extraAppChoices(c: ClusterView, mainApp: string) {
  const allowed = c.limits.extraApps ?? c.limits.apps;
  return c.apps.filter(
    (a) => a.extra === true && a.available !== false && a.id !== mainApp && allowed.includes(a.id),
  );
}

/** Starting values for a cluster; `keep` carries over what the user already chose where still valid. */
export function defaultsFor(c: ClusterView, keep?: Partial<FormValues>): FormValues {
  const l = c.limits;
  const pick = (v: string | undefined, allowed: readonly string[], fallback: string) =>
    v !== undefined && allowed.includes(v) ? v : fallback;
  const installed = c.apps.filter((a) => a.available !== false).map((a) => a.id);
  const app = pick(keep?.app, installed, installed[0] ?? c.apps[0]?.id ?? '');
  const extras = new Set(extraAppChoices(c, app).map((a) => a.id));
  return {
    cluster: c.name,
    app,
    extraApps: (keep?.extraApps ?? []).filter((a) => extras.has(a)),
    environment: pick(keep?.environment, l.environments, c.environments[0]?.id ?? ''),
    cores: keep?.cores ?? '1',
    memoryGb: keep?.memoryGb ?? String(Math.min(DEFAULT_MEMORY_GB, Math.max(1, l.maxMemoryGb))),
    gpus: l.maxGpus > 0 ? (keep?.gpus ?? '0') : '0',
    hours: keep?.hours ?? String(c.defaultHours),
    partition: pick(keep?.partition, l.partitions ?? [], ''),
    account: pick(keep?.account, l.accounts ?? [], ''),
    reservation: pick(keep?.reservation, l.reservations ?? [], ''),
    label: keep?.label ?? '',
  };
}

/**
 * The form filled with `given` exactly, even where a value no longer fits the cluster (a partition
 * gone, a limit lowered): the checks then name that field, and nothing is replaced behind the user's
 * back. What `given` leaves out takes the cluster's defaults.
 */
export function filledFor(c: ClusterView, given: Partial<FormValues>): FormValues {
  const kept = Object.entries(given).filter(([f, v]) => v !== undefined && isFieldName(f));
  return { ...defaultsFor(c), ...Object.fromEntries(kept), cluster: c.name };
}

function num(v: string): number {
  const t = v.trim();
  return t === '' ? Number.NaN : Number(t);
}

function opt(v: string): string | undefined {
  const t = v.trim();
  return t === '' ? undefined : t;
}

/** The JSON body for POST /api/sessions. */
export function toRequest(v: FormValues): SessionRequest {
  return {
    cluster: v.cluster,
    app: v.app,
    extraApps: v.extraApps.length > 0 ? [...v.extraApps] : undefined,
    environment: opt(v.environment),
    cores: num(v.cores),
    memoryGb: num(v.memoryGb),
    gpus: v.gpus.trim() === '' ? 0 : num(v.gpus),
    hours: num(v.hours),
    partition: opt(v.partition),
    account: opt(v.account),
    reservation: opt(v.reservation),
    label: opt(v.label),
  };
}

export type FieldErrors = Partial<Record<FieldName, string>>;

/** Problems by field (the first per field); `other` collects messages for fields the form does not show. */
export function byField(errors: readonly FieldError[]): { fields: FieldErrors; other: string[] } {
  const fields: FieldErrors = {};
  const other: string[] = [];
  for (const e of errors) {
    if (isFieldName(e.field)) {
      if (!fields[e.field]) fields[e.field] = e.message;
    } else {
      other.push(e.message);
    }
  }
  return { fields, other };
}

/** Every problem the server would report for these values on this cluster. */
export function validateForm(v: FormValues, c: ClusterView): FieldErrors {
  const errs = validateRequest(toRequest(v), c.limits);
  const app = c.apps.find((a) => a.id === v.app);
  if (app && app.available === false && !errs.some((e) => e.field === 'app')) {
    const missing = app.missing?.length ? ` (missing ${app.missing.join(', ')})` : '';
    errs.push({
      field: 'app',
      message: `User interface: ${app.name} is not installed on ${c.title}${missing}`,
    });
  }
  if (c.drained) {
    errs.unshift({
      field: 'cluster',
      message: `Cluster: ${c.title} is closed for new sessions at the moment`,
    });
  }
  return byField(errs).fields;
}

/** The limits in force for the chosen partition (a partition may have smaller nodes). */
export function effectiveLimits(c: ClusterView, partition: string) {
  const l = c.limits;
  const p = partition ? l.perPartition?.[partition] : undefined;
  return {
    maxCores: p?.maxCores ?? l.maxCores,
    maxMemoryGb: p?.maxMemoryGb ?? l.maxMemoryGb,
    maxGpus: p?.maxGpus ?? l.maxGpus,
    maxHours: p?.maxHours !== undefined ? Math.min(l.maxHours, p.maxHours) : l.maxHours,
  };
}
