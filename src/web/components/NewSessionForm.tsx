// "New session": cluster, user interface, environment, resources, time, and (on Slurm) partition,
// account and reservation. Checked here with the server's own rules before anything is sent; the
// server's answer, if it still refuses, is shown on the same fields. It opens with the user's default
// preset or last-used values for the cluster; presets and "launch again" fill it too, and a filled value
// that no longer fits the cluster stays on the form with its field named, never replaced silently.
import { type FormEvent, type ReactNode, useEffect, useRef, useState } from 'react';
import type { RightSizeReply } from '../../api/history.ts';
import { ApiError, get, post, sentence } from '../api.ts';
import {
  byField,
  defaultsFor,
  effectiveLimits,
  extraAppChoices,
  FIELDS,
  type FieldErrors,
  type FieldName,
  type FormValues,
  filledFor,
  type TextField,
  toRequest,
  validateForm,
} from '../form.ts';
import { formatHours } from '../format.ts';
import { type Fill, presetFill, presetValuesOf } from '../presets.ts';
import type { ClusterView, PresetsReply, PresetValues, PresetView, SessionView } from '../types.ts';
import { ClusterOptions, Field, InputField, Options } from './Field.tsx';
import { PresetBar } from './PresetBar.tsx';
import { useAccountUsage } from './Usage.tsx';

interface Props {
  clusters: ClusterView[];
  cluster: ClusterView;
  onClusterChange(name: string): void;
  onStarted(s: SessionView): void;
  /** Values to put on the form (its first ones, a preset, "launch again"), applied once per `seq`. */
  fill: Fill | null;
  /** The user's presets and last-used values (null: they could not be read). */
  saved: PresetsReply | null;
  isAdmin: boolean;
  /** What the form takes on a cluster the user switches to, or for an app chosen there. */
  recall(cluster: string, app?: string): Fill | null;
  /** A preset was saved, changed or deleted. */
  onPresetsChanged(): void;
}

/** Where the form's values came from: the app a user picks recalls its own last values only over defaults. */
interface Origin {
  kind: Fill['kind'] | 'defaults';
  presetId: number | null;
}

export function NewSessionForm(props: Props) {
  const { clusters, cluster, onClusterChange, onStarted, fill, saved, isAdmin, recall } = props;
  const [values, setValues] = useState<FormValues>(() => defaultsFor(cluster));
  const [errors, setErrors] = useState<FieldErrors>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [submitted, setSubmitted] = useState(false);
  const [busy, setBusy] = useState(false);
  const [origin, setOrigin] = useState<Origin>({ kind: 'defaults', presetId: null });
  const formRef = useRef<HTMLFormElement>(null);
  /** The user changed a value since the form was last filled. */
  const edited = useRef(false);
  const shown = useRef({ cluster: cluster.name, seq: 0 });

  /** Puts values on the form as they are, and names every one that does not fit this cluster. */
  const applyFill = (f: Fill, c: ClusterView) => {
    const v = filledFor(c, f.values);
    setValues(v);
    setOrigin({ kind: f.kind, presetId: f.presetId ?? null });
    edited.current = false;
    setSubmitted(false);
    const given = new Set(Object.keys(f.values));
    const errs: FieldErrors = Object.fromEntries(
      Object.entries(validateForm(v, c)).filter(([k]) => given.has(k)),
    );
    setErrors(errs);
    const n = Object.keys(errs).length;
    setFormError(
      n === 0
        ? null
        : `${f.from}: ${n === 1 ? 'a value no longer fits' : `${n} values no longer fit`} ${c.title}; see the field${n === 1 ? '' : 's'} marked below.`,
    );
  };

  // A new fill, or another cluster (the one the user switched to opens with its own recalled values).
  // Fresh limits for the same cluster change no value: the checks name what no longer fits.
  // biome-ignore lint/correctness/useExhaustiveDependencies: runs for a new fill or cluster only
  useEffect(() => {
    if (fill && fill.seq !== shown.current.seq) {
      shown.current = { cluster: cluster.name, seq: fill.seq };
      applyFill(fill, cluster);
    } else if (cluster.name !== shown.current.cluster) {
      shown.current = { ...shown.current, cluster: cluster.name };
      const r = recall(cluster.name);
      if (r) applyFill(r, cluster);
      else {
        setValues((v) => defaultsFor(cluster, v));
        setOrigin({ kind: 'defaults', presetId: null });
      }
    }
  }, [cluster, fill]);

  const l = cluster.limits;
  const eff = effectiveLimits(cluster, values.partition);
  const hasPartitions = (l.partitions?.length ?? 0) > 0;
  const hasAccounts = (l.accounts?.length ?? 0) > 0;
  const hasReservations = (l.reservations?.length ?? 0) > 0;
  const extraChoices = extraAppChoices(cluster, values.app);
  // Cluster, app and environment take half a row each: the extras fill the free half, if there is one.
  const halfRowFree =
    [clusters.length > 1, true, cluster.environments.length > 0].filter(Boolean).length % 2 === 1;
  // A field with a value is shown even when the cluster offers nothing for it any more, so that the
  // value is seen (and named as not fitting) rather than sent unseen.
  const visible: Record<FieldName, boolean> = {
    cluster: clusters.length > 1,
    app: true,
    extraApps: extraChoices.length > 0,
    environment: cluster.environments.length > 0 || values.environment !== '',
    cores: true,
    memoryGb: true,
    gpus: l.maxGpus > 0 || values.gpus.trim() !== '0',
    hours: true,
    partition: hasPartitions || values.partition !== '',
    account: hasAccounts || values.account !== '',
    reservation: hasReservations || values.reservation !== '',
    label: true,
  };

  const set = (name: TextField, value: string) => {
    // Choosing the app over recalled or default values recalls that app's own last values.
    if (name === 'app' && !edited.current && (origin.kind === 'recall' || origin.kind === 'defaults')) {
      const r = recall(cluster.name, value);
      if (r) {
        applyFill({ ...r, values: { ...r.values, app: value } }, cluster);
        return;
      }
    }
    if (name !== 'cluster' && name !== 'app') edited.current = true;
    const next = { ...values, [name]: value };
    // The main app cannot also be an extra one.
    if (name === 'app') next.extraApps = values.extraApps.filter((a) => a !== value);
    setValues(next);
    if (name === 'cluster') {
      // Limits differ per cluster: start checking afresh there.
      onClusterChange(value);
      setErrors({});
      setSubmitted(false);
      setFormError(null);
      return;
    }
    // Once the user has tried to submit, messages follow the input as it is corrected.
    if (submitted) setErrors(validateForm(next, cluster));
    else if (errors[name]) checkOne(next, name);
  };

  // Leaving a field checks it alone (no messages about fields not reached yet).
  const checkOne = (v: FormValues, name: FieldName) => {
    const now = validateForm(v, cluster);
    setErrors((old) => {
      const out = { ...old };
      if (now[name]) out[name] = now[name];
      else delete out[name];
      return out;
    });
  };

  const focusFirstInvalid = (errs: FieldErrors) => {
    const first = FIELDS.find((f) => errs[f] && visible[f]);
    if (first) formRef.current?.querySelector<HTMLElement>(`#f-${first}`)?.focus();
  };

  /** Messages for fields the form does not show (e.g. the cluster when there is only one). */
  const hiddenMessages = (errs: FieldErrors) =>
    FIELDS.filter((f) => errs[f] && !visible[f]).map((f) => errs[f]!);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (busy) return;
    setSubmitted(true);
    const errs = validateForm(values, cluster);
    setErrors(errs);
    if (Object.keys(errs).length > 0) {
      const hidden = hiddenMessages(errs);
      setFormError(hidden.length > 0 ? hidden.join(' ') : 'Please correct the fields marked below.');
      focusFirstInvalid(errs);
      return;
    }
    setFormError(null);
    setBusy(true);
    try {
      const r = await post<{ session: SessionView }>('/api/sessions', toRequest(values));
      onStarted(r.session);
      setSubmitted(false);
      setErrors({});
      setValues((v) => ({ ...v, label: '' }));
    } catch (err) {
      if (err instanceof ApiError && err.errors.length > 0) {
        const { fields, other } = byField(err.errors);
        setErrors(fields);
        const hidden = [...hiddenMessages(fields), ...other];
        setFormError(
          hidden.length > 0 ? hidden.join(' ') : 'The session was not started; see the fields marked below.',
        );
        focusFirstInvalid(fields);
      } else {
        setFormError(
          `The session was not started: ${sentence(err instanceof Error ? err.message : String(err))}`,
        );
      }
    } finally {
      setBusy(false);
    }
  };

  const toggleExtra = (id: string, on: boolean) => {
    edited.current = true;
    const next = {
      ...values,
      extraApps: on ? [...values.extraApps, id] : values.extraApps.filter((a) => a !== id),
    };
    setValues(next);
    if (submitted || errors.extraApps) checkOne(next, 'extraApps');
  };

  /** The form's values for a preset; null, with every problem shown, when they do not pass. */
  const presetValues = (): PresetValues | null => {
    const errs = validateForm(values, cluster);
    if (Object.keys(errs).length === 0) return presetValuesOf(values);
    setSubmitted(true);
    setErrors(errs);
    focusFirstInvalid(errs);
    return null;
  };

  const applyPreset = (p: PresetView | null) => {
    if (p) applyFill(presetFill(p), cluster);
    else setOrigin((o) => ({ ...o, presetId: null }));
  };

  const presetChanged = (p: PresetView | null) => {
    setOrigin((o) => ({ kind: p ? 'preset' : o.kind, presetId: p?.id ?? null }));
    props.onPresetsChanged();
  };

  const inputProps = (name: TextField) => ({
    value: values[name],
    onChange: (e: { target: { value: string } }) => set(name, e.target.value),
    onBlur: () => checkOne(values, name),
  });
  // A number of the request, within the cluster's limit: whole (cores, GPUs) or not (memory, hours).
  const numberField = (
    name: TextField,
    label: string,
    hint: ReactNode,
    min: number,
    max: number,
    whole: boolean,
  ) => (
    <InputField
      name={name}
      label={label}
      error={errors[name]}
      hint={hint}
      {...inputProps(name)}
      type="number"
      inputMode={whole ? 'numeric' : 'decimal'}
      min={min}
      max={max}
      step={whole ? 1 : 'any'}
    />
  );

  const selectedApp = cluster.apps.find((a) => a.id === values.app);
  const accountUsage = useAccountUsage(cluster.name, values.account);
  const rightSize = useRightSize(cluster.name, values.app);
  const selectedEnv = cluster.environments.find((x) => x.id === values.environment);

  return (
    <section className="card" aria-labelledby="new-session-title">
      <div className="card-head">
        <h2 id="new-session-title">New session</h2>
        {!visible.cluster && <span className="muted">{cluster.title}</span>}
      </div>
      {cluster.drained && (
        <p className="alert alert-warn">{cluster.title} is closed for new sessions at the moment.</p>
      )}
      {cluster.accessRefused && (
        <p className="alert alert-warn" data-testid="access-refused">
          {cluster.accessRefused}
        </p>
      )}
      {!cluster.reachable && !cluster.drained && (
        <p className="alert alert-warn">
          The scheduler of {cluster.title} does not answer right now; a new session may wait until it is back.
        </p>
      )}
      {formError && (
        <p className="alert alert-bad" role="alert">
          {formError}
        </p>
      )}
      <PresetBar
        cluster={cluster}
        saved={saved}
        selected={origin.presetId}
        isAdmin={isAdmin}
        current={presetValues}
        onApply={applyPreset}
        onChanged={presetChanged}
      />
      <form ref={formRef} className="form" onSubmit={submit} noValidate aria-labelledby="new-session-title">
        <div className="form-grid">
          {visible.cluster && (
            <Field name="cluster" label="Cluster" error={errors.cluster} className="span-2">
              {(p) => (
                <select {...p} {...inputProps('cluster')}>
                  <ClusterOptions clusters={clusters} note={(c) => (c.drained ? ' (closed)' : '')} />
                </select>
              )}
            </Field>
          )}
          <Field
            name="app"
            label="User interface"
            error={errors.app}
            hint={selectedApp?.description}
            className="span-2"
          >
            {(p) => (
              <select {...p} {...inputProps('app')}>
                {cluster.apps.length === 0 && <option value="">(none available)</option>}
                {values.app !== '' && !cluster.apps.some((a) => a.id === values.app) && (
                  <option value={values.app}>{values.app} (not offered here)</option>
                )}
                {cluster.apps.map((a) => (
                  <option key={a.id} value={a.id} disabled={a.available === false}>
                    {a.name}
                    {a.available === false ? ' (not installed)' : ''}
                  </option>
                ))}
              </select>
            )}
          </Field>
          {visible.environment && (
            <Field
              name="environment"
              label="Environment"
              error={errors.environment}
              hint={selectedEnv?.description}
              className="span-2"
            >
              {(p) => (
                <select {...p} {...inputProps('environment')}>
                  {values.environment !== '' &&
                    !cluster.environments.some((x) => x.id === values.environment) && (
                      <option value={values.environment}>{values.environment} (not offered here)</option>
                    )}
                  {cluster.environments.map((x) => (
                    <option key={x.id} value={x.id}>
                      {x.name}
                    </option>
                  ))}
                </select>
              )}
            </Field>
          )}
          {visible.extraApps && (
            <fieldset
              className={`field checks ${halfRowFree ? 'span-2' : 'span-4'}`}
              aria-invalid={errors.extraApps ? true : undefined}
              aria-describedby={errors.extraApps ? 'f-extraApps-error' : 'f-extraApps-hint'}
            >
              <legend>Also start (optional)</legend>
              <div className="checks-list">
                {extraChoices.map((a, i) => (
                  <label key={a.id} className="check">
                    <input
                      type="checkbox"
                      id={i === 0 ? 'f-extraApps' : undefined}
                      checked={values.extraApps.includes(a.id)}
                      onChange={(e) => toggleExtra(a.id, e.target.checked)}
                    />
                    {a.name}
                  </label>
                ))}
              </div>
              {errors.extraApps ? (
                <p className="field-error" id="f-extraApps-error">
                  {errors.extraApps}
                </p>
              ) : (
                <p className="field-hint" id="f-extraApps-hint">
                  In the same session, sharing its cores, memory and time.
                </p>
              )}
            </fieldset>
          )}
          {numberField('cores', 'Cores', `at most ${eff.maxCores} per node`, 1, eff.maxCores, true)}
          {numberField(
            'memoryGb',
            'Memory (GB)',
            <>
              at most {eff.maxMemoryGb} GB per node
              {rightSize && (
                <>
                  <br />
                  <span className="right-size" data-testid="right-size">
                    {rightSize}
                  </span>
                </>
              )}
            </>,
            1,
            eff.maxMemoryGb,
            false,
          )}
          {visible.gpus &&
            numberField('gpus', 'GPUs', `at most ${eff.maxGpus} per node`, 0, eff.maxGpus, true)}
          {numberField('hours', 'Hours', `at most ${formatHours(eff.maxHours)}`, 0.25, eff.maxHours, false)}
          {visible.partition && (
            <Field name="partition" label="Partition" error={errors.partition}>
              {(p) => (
                <select {...p} {...inputProps('partition')}>
                  <Options
                    empty={cluster.defaultPartition ? `automatic (${cluster.defaultPartition})` : 'automatic'}
                    values={l.partitions ?? []}
                    current={values.partition}
                  />
                </select>
              )}
            </Field>
          )}
          {visible.account && (
            <Field name="account" label="Account" error={errors.account} hint={accountUsage}>
              {(p) => (
                <select {...p} {...inputProps('account')}>
                  <Options empty="default" values={l.accounts ?? []} current={values.account} />
                </select>
              )}
            </Field>
          )}
          {visible.reservation && (
            <Field name="reservation" label="Reservation" error={errors.reservation}>
              {(p) => (
                <select {...p} {...inputProps('reservation')}>
                  <Options empty="none" values={l.reservations ?? []} current={values.reservation} />
                </select>
              )}
            </Field>
          )}
          <InputField
            name="label"
            label="Name (optional)"
            error={errors.label}
            className="span-2"
            hint="Shown in your list of sessions."
            {...inputProps('label')}
            type="text"
            maxLength={80}
            autoComplete="off"
            placeholder="e.g. thesis analysis"
          />
        </div>
        <div className="form-actions">
          <button
            type="submit"
            className="btn btn-primary"
            disabled={busy || cluster.drained || !!cluster.accessRefused}
          >
            {busy ? 'Starting…' : 'Start session'}
          </button>
        </div>
      </form>
    </section>
  );
}

/** The right-size hint of the user's own recent sessions of the app (computed by the gateway), or null. */
function useRightSize(cluster: string, app: string): string | null {
  const [hint, setHint] = useState<{ key: string; message: string | null } | null>(null);
  const key = `${cluster}\n${app}`;
  useEffect(() => {
    if (!app) return;
    let live = true;
    const qs = new URLSearchParams({ cluster, app });
    get<RightSizeReply>(`/api/history/right-size?${qs}`)
      .then((r) => live && setHint({ key, message: r.hint?.message ?? null }))
      .catch(() => undefined);
    return () => {
      live = false;
    };
  }, [cluster, app, key]);
  return hint?.key === key ? hint.message : null;
}
