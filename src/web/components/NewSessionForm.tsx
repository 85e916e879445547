// "New session": cluster, user interface, environment, resources, time, and (on Slurm) partition,
// account and reservation. Checked here with the server's own rules before anything is sent; the
// server's answer, if it still refuses, is shown on the same fields.
import { type FormEvent, useEffect, useRef, useState } from 'react';
import { ApiError, post, sentence } from '../api.ts';
import {
  byField,
  defaultsFor,
  effectiveLimits,
  extraAppChoices,
  FIELDS,
  type FieldErrors,
  type FieldName,
  type FormValues,
  type TextField,
  toRequest,
  validateForm,
} from '../form.ts';
import { formatHours } from '../format.ts';
import type { ClusterView, SessionView } from '../types.ts';
import { Field, Options } from './Field.tsx';

interface Props {
  clusters: ClusterView[];
  cluster: ClusterView;
  onClusterChange(name: string): void;
  onStarted(s: SessionView): void;
  /** Values to start from (from the page's address); kept only where valid on this cluster. */
  initial?: Partial<FormValues>;
}

export function NewSessionForm({ clusters, cluster, onClusterChange, onStarted, initial }: Props) {
  const [values, setValues] = useState<FormValues>(() => defaultsFor(cluster, initial));
  const [errors, setErrors] = useState<FieldErrors>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [submitted, setSubmitted] = useState(false);
  const [busy, setBusy] = useState(false);
  const formRef = useRef<HTMLFormElement>(null);

  // Another cluster (or fresh limits for this one): keep what is still valid there.
  useEffect(() => {
    setValues((v) => defaultsFor(cluster, v));
  }, [cluster]);

  const l = cluster.limits;
  const eff = effectiveLimits(cluster, values.partition);
  const hasPartitions = (l.partitions?.length ?? 0) > 0;
  const hasAccounts = (l.accounts?.length ?? 0) > 0;
  const hasReservations = (l.reservations?.length ?? 0) > 0;
  const extraChoices = extraAppChoices(cluster, values.app);
  // Cluster, app and environment take half a row each: the extras fill the free half, if there is one.
  const halfRowFree =
    [clusters.length > 1, true, cluster.environments.length > 0].filter(Boolean).length % 2 === 1;
  const visible: Record<FieldName, boolean> = {
    cluster: clusters.length > 1,
    app: true,
    extraApps: extraChoices.length > 0,
    environment: cluster.environments.length > 0,
    cores: true,
    memoryGb: true,
    gpus: l.maxGpus > 0,
    hours: true,
    partition: hasPartitions,
    account: hasAccounts,
    reservation: hasReservations,
    label: true,
  };

  const set = (name: TextField, value: string) => {
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
    const next = {
      ...values,
      extraApps: on ? [...values.extraApps, id] : values.extraApps.filter((a) => a !== id),
    };
    setValues(next);
    if (submitted || errors.extraApps) checkOne(next, 'extraApps');
  };

  const inputProps = (name: TextField) => ({
    value: values[name],
    onChange: (e: { target: { value: string } }) => set(name, e.target.value),
    onBlur: () => checkOne(values, name),
  });

  const selectedApp = cluster.apps.find((a) => a.id === values.app);
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
      <form ref={formRef} className="form" onSubmit={submit} noValidate aria-labelledby="new-session-title">
        <div className="form-grid">
          {visible.cluster && (
            <Field name="cluster" label="Cluster" error={errors.cluster} className="span-2">
              {(p) => (
                <select {...p} {...inputProps('cluster')}>
                  {clusters.map((c) => (
                    <option key={c.name} value={c.name}>
                      {c.title}
                      {c.drained ? ' (closed)' : ''}
                    </option>
                  ))}
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
          <Field name="cores" label="Cores" error={errors.cores} hint={`at most ${eff.maxCores} per node`}>
            {(p) => (
              <input
                {...p}
                {...inputProps('cores')}
                type="number"
                inputMode="numeric"
                min={1}
                max={eff.maxCores}
                step={1}
              />
            )}
          </Field>
          <Field
            name="memoryGb"
            label="Memory (GB)"
            error={errors.memoryGb}
            hint={`at most ${eff.maxMemoryGb} GB per node`}
          >
            {(p) => (
              <input
                {...p}
                {...inputProps('memoryGb')}
                type="number"
                inputMode="decimal"
                min={1}
                max={eff.maxMemoryGb}
                step="any"
              />
            )}
          </Field>
          {visible.gpus && (
            <Field name="gpus" label="GPUs" error={errors.gpus} hint={`at most ${eff.maxGpus} per node`}>
              {(p) => (
                <input
                  {...p}
                  {...inputProps('gpus')}
                  type="number"
                  inputMode="numeric"
                  min={0}
                  max={eff.maxGpus}
                  step={1}
                />
              )}
            </Field>
          )}
          <Field
            name="hours"
            label="Hours"
            error={errors.hours}
            hint={`at most ${formatHours(eff.maxHours)}`}
          >
            {(p) => (
              <input
                {...p}
                {...inputProps('hours')}
                type="number"
                inputMode="decimal"
                min={0.25}
                max={eff.maxHours}
                step="any"
              />
            )}
          </Field>
          {visible.partition && (
            <Field name="partition" label="Partition" error={errors.partition}>
              {(p) => (
                <select {...p} {...inputProps('partition')}>
                  <Options
                    empty={cluster.defaultPartition ? `automatic (${cluster.defaultPartition})` : 'automatic'}
                    values={l.partitions ?? []}
                  />
                </select>
              )}
            </Field>
          )}
          {visible.account && (
            <Field name="account" label="Account" error={errors.account}>
              {(p) => (
                <select {...p} {...inputProps('account')}>
                  <Options empty="default" values={l.accounts ?? []} />
                </select>
              )}
            </Field>
          )}
          {visible.reservation && (
            <Field name="reservation" label="Reservation" error={errors.reservation}>
              {(p) => (
                <select {...p} {...inputProps('reservation')}>
                  <Options empty="none" values={l.reservations ?? []} />
                </select>
              )}
            </Field>
          )}
          <Field
            name="label"
            label="Name (optional)"
            error={errors.label}
            className="span-2"
            hint="Shown in your list of sessions."
          >
            {(p) => (
              <input
                {...p}
                {...inputProps('label')}
                type="text"
                maxLength={80}
                autoComplete="off"
                placeholder="e.g. thesis analysis"
              />
            )}
          </Field>
        </div>
        <div className="form-actions">
          <button type="submit" className="btn btn-primary" disabled={busy || cluster.drained}>
            {busy ? 'Starting…' : 'Start session'}
          </button>
        </div>
      </form>
    </section>
  );
}
