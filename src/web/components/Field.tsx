// One labelled form control with its hint and error, wired for assistive technology: the input gets
// aria-invalid and aria-describedby pointing at the hint and the error message.
import type { InputHTMLAttributes, ReactNode } from 'react';

export interface ControlProps {
  id: string;
  name: string;
  'aria-invalid': true | undefined;
  'aria-describedby': string | undefined;
}

interface Props {
  name: string;
  label: string;
  hint?: ReactNode;
  error?: string;
  className?: string;
  children(props: ControlProps): ReactNode;
}

export function Field({ name, label, hint, error, className, children }: Props) {
  const id = `f-${name}`;
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  const describedBy = [error ? errorId : null, hint ? hintId : null].filter(Boolean).join(' ') || undefined;
  return (
    <div className={`field${error ? ' field-invalid' : ''}${className ? ` ${className}` : ''}`}>
      <label htmlFor={id}>{label}</label>
      {children({ id, name, 'aria-invalid': error ? true : undefined, 'aria-describedby': describedBy })}
      {error && (
        <p className="field-error" id={errorId}>
          {error}
        </p>
      )}
      {hint && !error && (
        <p className="field-hint" id={hintId}>
          {hint}
        </p>
      )}
    </div>
  );
}

/** A Field whose control is an <input>: the attributes beyond the Field's own go to the input. */
export function InputField({
  name,
  label,
  hint,
  error,
  className,
  ...input
}: Omit<Props, 'children'> & Omit<InputHTMLAttributes<HTMLInputElement>, 'name' | 'className'>) {
  return (
    <Field name={name} label={label} hint={hint} error={error} className={className}>
      {(p) => <input {...p} {...input} />}
    </Field>
  );
}

/**
 * The options of a <select> of plain values: first `empty` (the value ""), then each value as itself;
 * `current`, when it is none of them (a saved value the cluster no longer offers), is shown as such.
 */
export function Options({
  empty,
  values,
  current,
}: {
  empty: ReactNode;
  values: readonly string[];
  current?: string;
}) {
  return (
    <>
      <option value="">{empty}</option>
      {current && !values.includes(current) && <option value={current}>{current} (no longer offered)</option>}
      {values.map((x) => (
        <option key={x} value={x}>
          {x}
        </option>
      ))}
    </>
  );
}

/** The options of a cluster <select>: each cluster by its title, with `note` after it where it says one. */
export function ClusterOptions<C extends { name: string; title: string }>({
  clusters,
  note,
}: {
  clusters: readonly C[];
  note?(c: C): string;
}) {
  return (
    <>
      {clusters.map((c) => (
        <option key={c.name} value={c.name}>
          {c.title}
          {note?.(c)}
        </option>
      ))}
    </>
  );
}

/** A labelled <select> in a list page's filter bar, its choices as [value, label] pairs. */
export function FilterSelect({
  label,
  name,
  value,
  onChange,
  choices,
}: {
  label: string;
  name: string;
  value: string;
  onChange(value: string): void;
  choices: readonly (readonly [string, string])[];
}) {
  return (
    <label>
      {label}
      <select value={value} onChange={(e) => onChange(e.target.value)} name={name}>
        {choices.map(([v, l]) => (
          <option key={v} value={v}>
            {l}
          </option>
        ))}
      </select>
    </label>
  );
}
