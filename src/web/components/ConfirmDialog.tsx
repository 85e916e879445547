// A modal yes/no question on the native <dialog> (focus trap, Escape and backdrop for free).
import { type ReactNode, useEffect, useId, useRef, useState } from 'react';

interface Props {
  title: string;
  children: ReactNode;
  confirmLabel: string;
  cancelLabel?: string;
  danger?: boolean;
  onConfirm(): void;
  onCancel(): void;
}

export function ConfirmDialog({
  title,
  children,
  confirmLabel,
  cancelLabel = 'Cancel',
  danger,
  onConfirm,
  onCancel,
}: Props) {
  const titleId = useId();
  return (
    <Modal labelledBy={titleId} onCancel={onCancel}>
      <h2 id={titleId}>{title}</h2>
      <div className="dialog-body">{children}</div>
      <div className="dialog-actions">
        <button type="button" className="btn" onClick={onCancel}>
          {cancelLabel}
        </button>
        <button type="button" className={`btn ${danger ? 'btn-danger' : 'btn-primary'}`} onClick={onConfirm}>
          {confirmLabel}
        </button>
      </div>
    </Modal>
  );
}

/**
 * A modal <dialog>, open while it is mounted. Escape calls `onCancel` instead of closing it behind React's
 * back, so that the owner unmounts it.
 */
export function Modal({
  labelledBy,
  onCancel,
  children,
}: {
  /** The id of its title. */
  labelledBy: string;
  onCancel(): void;
  children: ReactNode;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    return () => d?.close();
  }, []);
  return (
    <dialog
      ref={ref}
      className="dialog"
      aria-labelledby={labelledBy}
      onCancel={(e) => {
        e.preventDefault();
        onCancel();
      }}
    >
      {children}
    </dialog>
  );
}

/** A small button that opens a dialog; `dialog` gets the function that closes it again. */
export function DialogButton({
  label,
  ariaLabel,
  dialog,
}: {
  label: string;
  ariaLabel: string;
  dialog(close: () => void): ReactNode;
}) {
  const [open, setOpen] = useState(false);
  return (
    <>
      <button type="button" className="btn btn-small" onClick={() => setOpen(true)} aria-label={ariaLabel}>
        {label}
      </button>
      {open && dialog(() => setOpen(false))}
    </>
  );
}
