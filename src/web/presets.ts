// Saved settings on the form, as plain data: a preset's values as the form's strings and back, and what
// the form opens with on a cluster (the user's default preset, else their newest session there).
import { type FormValues, toRequest } from './form.ts';
import type {
  LastUsed,
  PresetsReply,
  PresetValues,
  PresetView,
  SessionRequest,
  SessionView,
} from './types.ts';

/** Values to put on the form, and where they come from (named when one no longer fits). */
export interface Fill {
  /** Changes with every new fill, so the same values can be applied twice. */
  seq: number;
  values: Partial<FormValues>;
  /** "Your last Jupyter session", "Preset “GPU work”", ... */
  from: string;
  kind: 'preset' | 'session' | 'recall';
  presetId?: number;
}

const text = (n: number | undefined) => (n === undefined ? undefined : String(n));

/** A preset's (or a request's) values as the form holds them; fields it leaves out stay unset. */
export function formValuesOf(v: PresetValues | SessionRequest): Partial<FormValues> {
  const out: Partial<FormValues> = {
    app: v.app,
    extraApps: v.extraApps ? [...v.extraApps] : undefined,
    environment: v.environment,
    cores: text(v.cores),
    memoryGb: text(v.memoryGb),
    gpus: text(v.gpus),
    hours: text(v.hours),
    partition: v.partition,
    account: v.account,
    reservation: v.reservation,
    label: v.label,
  };
  return Object.fromEntries(Object.entries(out).filter(([, x]) => x !== undefined));
}

/** The form's values as a preset's: empty fields left out (the form's default then applies). */
export function presetValuesOf(v: FormValues): PresetValues {
  const { cluster: _, ...r } = toRequest(v);
  return Object.fromEntries(
    Object.entries(r).filter(([, x]) => x !== undefined && !(typeof x === 'number' && Number.isNaN(x))),
  ) as PresetValues;
}

let seq = 0;
export const nextSeq = () => ++seq;

export function presetFill(p: PresetView): Fill {
  return {
    seq: nextSeq(),
    values: formValuesOf(p.values),
    from: `Preset “${p.name}”`,
    kind: 'preset',
    presetId: p.id,
  };
}

/** "Launch again": the ended session's own request, its name included. */
export function sessionFill(s: SessionView): Fill {
  return {
    seq: nextSeq(),
    values: formValuesOf({ ...s.request, app: s.app }),
    from: `The session “${s.label ?? s.appName}”`,
    kind: 'session',
  };
}

/**
 * What the form opens with on a cluster: the user's default preset there, else the values of their
 * newest session there (of `app` when given: switching the app recalls that app's). Null: the
 * cluster's defaults.
 */
export function recallFor(
  saved: PresetsReply | null,
  cluster: string,
  app?: string,
  appName: (id: string) => string = (id) => id,
): Fill | null {
  if (!saved) return null;
  if (app === undefined) {
    const def = saved.presets.find((p) => p.cluster === cluster && p.isDefault && !p.site);
    if (def) return { ...presetFill(def), from: `Your default preset “${def.name}”` };
  }
  const last: LastUsed | undefined = saved.lastUsed.find(
    (l) => l.cluster === cluster && (app === undefined || l.app === app),
  );
  if (!last) return null;
  return {
    seq: nextSeq(),
    values: formValuesOf({ ...last.values, app: last.app }),
    from: `Your last ${appName(last.app)} session`,
    kind: 'recall',
  };
}

/** The presets the form offers on a cluster: the user's own first, then the site's, each by name. */
export function presetsOn(
  saved: PresetsReply | null,
  cluster: string,
): { mine: PresetView[]; site: PresetView[] } {
  const on = (saved?.presets ?? []).filter((p) => p.cluster === cluster);
  const byName = (a: PresetView, b: PresetView) => a.name.localeCompare(b.name);
  return { mine: on.filter((p) => !p.site).sort(byName), site: on.filter((p) => p.site).sort(byName) };
}
