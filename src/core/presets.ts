// Saved settings of the new-session form, the pure part: a preset's values checked with the form's own
// rules (src/core/request.ts) against a cluster's limits, and the last-used values per cluster and app
// taken from the user's sessions. The server refuses a preset that does not fit when it is saved; one
// saved earlier that no longer fits (a partition gone, a limit lowered) is shown on the form with the
// field named, by the same checks.
import type { RequestLimits } from '../api/clusters.ts';
import type { LastUsed, PresetValues } from '../api/presets.ts';
import type { SessionRequest } from '../api/sessions.ts';
import { FIELD_LABELS, type FieldError, validateRequest } from './request.ts';

/** Presets one user may keep (all clusters together). */
export const MAX_PRESETS = 50;

const PRESET_NAME_RE = /^[\p{L}\p{N} _.,:()+-]{1,64}$/u;

/** The fields a preset may hold, in the form's order: every field of the form but the cluster. */
export const PRESET_FIELDS = Object.keys(FIELD_LABELS).filter(
  (f) => f !== 'cluster',
) as (keyof PresetValues)[];

/** A preset's name, trimmed, or what is wrong with it (the message names the field). */
export function checkPresetName(name: string): { name: string } | { error: FieldError } {
  const n = name.trim();
  if (!PRESET_NAME_RE.test(n))
    return { error: { field: 'name', message: 'Name: 1 to 64 letters, digits, spaces and . , : ( ) + - _' } };
  return { name: n };
}

/** The values with empty text and empty lists left out (an empty field means "the form's default"). */
export function cleanValues(v: PresetValues): PresetValues {
  const out: Record<string, unknown> = {};
  for (const f of PRESET_FIELDS) {
    const x = v[f];
    if (x === undefined || x === null) continue;
    if (typeof x === 'string' && x.trim() === '') continue;
    if (Array.isArray(x) && x.length === 0) continue;
    out[f] = typeof x === 'string' ? x.trim() : x;
  }
  return out as PresetValues;
}

/**
 * Every problem of a preset's values on a cluster, for the fields it holds only: the request's checks
 * run with harmless stand-ins for the fields it leaves to the form. `site`: a preset the administrators
 * define for every user, whose account and reservation are the course's, not the administrator's own,
 * so only their form is checked there (the scheduler checks each user's right to them at submit).
 */
export function presetProblems(
  cluster: string,
  values: PresetValues,
  limits: RequestLimits,
  opts: { site?: boolean } = {},
): FieldError[] {
  const v = cleanValues(values);
  const l: RequestLimits = opts.site
    ? {
        ...limits,
        accounts: undefined,
        reservations: [...(limits.reservations ?? []), ...(v.reservation ? [v.reservation] : [])],
      }
    : limits;
  const extras = v.extraApps ?? [];
  const req: SessionRequest = {
    cluster,
    app: v.app ?? l.apps.find((a) => !extras.includes(a)) ?? '',
    extraApps: v.extraApps,
    environment: v.environment,
    cores: v.cores ?? 1,
    memoryGb: v.memoryGb ?? Math.min(1, l.maxMemoryGb),
    gpus: v.gpus ?? 0,
    hours: v.hours ?? Math.min(1, l.maxHours),
    partition: v.partition,
    account: v.account,
    reservation: v.reservation,
    label: v.label,
  };
  const held = new Set<string>(Object.keys(v));
  return validateRequest(req, l).filter((e) => held.has(e.field));
}

/** What a session asked for, as a preset's values (without the cluster; without its name unless `label`). */
export function valuesOfRequest(req: SessionRequest, opts: { label?: boolean } = {}): PresetValues {
  const { cluster: _, label, ...rest } = req;
  return cleanValues({ ...rest, ...(opts.label && label ? { label } : {}) });
}

/** A session as the last-used values need it. */
export interface RecentSession {
  id: string;
  cluster: string;
  app: string;
  createdAt: number;
  request: SessionRequest;
}

/** The newest session per cluster and app (input newest first), its name left out: a name is per session. */
export function lastUsedOf(recent: readonly RecentSession[]): LastUsed[] {
  const seen = new Set<string>();
  const out: LastUsed[] = [];
  for (const s of recent) {
    const key = `${s.cluster}\u0000${s.app}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({
      cluster: s.cluster,
      app: s.app,
      values: valuesOfRequest({ ...s.request, app: s.app }),
      sessionId: s.id,
      at: s.createdAt,
    });
  }
  return out;
}
