// "Add time" on a running session's card and a running job's page: a small dialog with the amounts the
// site's policy allows now (the view's `addTimeMinutes`), sent to the extend route. The reply is the
// session or job with its new end, shown at once; a refusal (policy, a reservation ahead) is shown with
// its reason in the dialog.
import { useId, useState } from 'react';
import { ApiError, post, sentence } from '../api.ts';
import { DialogButton, Modal } from './ConfirmDialog.tsx';
import { useToasts } from './Toasts.tsx';

const STEPS = [15, 30, 60, 120, 240, 480];

/** The amounts offered: the usual steps up to `most`, and `most` itself. */
export function addTimeChoices(most: number): number[] {
  const list = STEPS.filter((m) => m < most);
  return [...list, most];
}

/** "30 min", "1 h", "1 h 30 min". */
export function amount(minutes: number): string {
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  if (h === 0) return `${m} min`;
  return m === 0 ? `${h} h` : `${h} h ${m} min`;
}

export function AddTimeButton<T>({
  most,
  title,
  url,
  onDone,
}: {
  /** Most minutes one request may add now; null: no button. */
  most: number | null;
  title: string;
  /** The extend route. */
  url: string;
  onDone(reply: T): void;
}) {
  if (most === null || most < 1) return null;
  return (
    <DialogButton
      label="Add time"
      ariaLabel={`Add time to ${title}`}
      dialog={(close) => (
        <AddTimeDialog most={most} title={title} url={url} onDone={onDone} onClose={close} />
      )}
    />
  );
}

function AddTimeDialog<T>({
  most,
  title,
  url,
  onDone,
  onClose,
}: {
  most: number;
  title: string;
  url: string;
  onDone(reply: T): void;
  onClose(): void;
}) {
  const titleId = useId();
  const selectId = useId();
  const choices = addTimeChoices(most);
  const [minutes, setMinutes] = useState(choices.includes(30) ? 30 : choices[0]!);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const { notify } = useToasts();
  const send = async () => {
    setBusy(true);
    setError('');
    try {
      const r = await post<T>(url, { minutes });
      onDone(r);
      notify({ tone: 'ok', title: `${amount(minutes)} added to ${title}` });
      onClose();
    } catch (e) {
      setError(sentence(e instanceof ApiError || e instanceof Error ? e.message : String(e)));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Modal labelledBy={titleId} onCancel={onClose}>
      <h2 id={titleId}>Add time to {title}</h2>
      <div className="dialog-body">
        <p>
          <label htmlFor={selectId}>Add </label>
          <select id={selectId} value={minutes} onChange={(e) => setMinutes(Number(e.target.value))}>
            {choices.map((m) => (
              <option key={m} value={m}>
                {amount(m)}
              </option>
            ))}
          </select>
        </p>
        <p className="muted">
          The site allows at most {amount(most)} more now, and never past a maintenance window.
        </p>
        {error && (
          <p className="alert alert-bad" role="alert">
            {error}
          </p>
        )}
      </div>
      <div className="dialog-actions">
        <button type="button" className="btn" onClick={onClose}>
          Cancel
        </button>
        <button type="button" className="btn btn-primary" disabled={busy} onClick={() => void send()}>
          Add time
        </button>
      </div>
    </Modal>
  );
}
