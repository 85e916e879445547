// The small button at the end of a row (Stop, Revoke, Rename, …): its visible text is one word, so its
// accessible name says what it acts on ("Revoke laptop").
import type { ReactNode } from 'react';

interface Props {
  /** The accessible name, e.g. `Revoke ${name}`. */
  label: string;
  /** A destructive action: outlined in red. */
  danger?: boolean;
  disabled?: boolean;
  onClick(): void;
  children: ReactNode;
}

export function RowButton({ label, danger, disabled, onClick, children }: Props) {
  return (
    <button
      type="button"
      className={danger ? 'btn btn-small btn-danger-outline' : 'btn btn-small'}
      disabled={disabled}
      onClick={onClick}
      aria-label={label}
    >
      {children}
    </button>
  );
}
