// The presets of the new-session form: choose one to fill the form, save the form as a new one, and
// for the user's own (an administrator's also for the site's) save changes, rename, make default and
// delete. Site presets are read-only for users.
import { type KeyboardEvent, useState } from 'react';
import { ApiError, del, patch, post, sentence } from '../api.ts';
import { presetsOn } from '../presets.ts';
import type { ClusterView, PresetReply, PresetsReply, PresetValues, PresetView } from '../types.ts';
import { ConfirmDialog } from './ConfirmDialog.tsx';

interface Props {
  cluster: ClusterView;
  saved: PresetsReply | null;
  /** The preset the form's values came from, if any. */
  selected: number | null;
  isAdmin: boolean;
  /** The form's values as a preset's, or null when they do not pass the form's checks (then shown). */
  current(): PresetValues | null;
  onApply(p: PresetView | null): void;
  /** A preset was saved, changed or deleted (null): the list is read again. */
  onChanged(p: PresetView | null): void;
}

type Naming = { mode: 'new' | 'rename'; name: string; site: boolean } | null;

export function PresetBar({ cluster, saved, selected, isAdmin, current, onApply, onChanged }: Props) {
  const [naming, setNaming] = useState<Naming>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [deleting, setDeleting] = useState<PresetView | null>(null);
  const { mine, site } = presetsOn(saved, cluster.name);
  const chosen = [...mine, ...site].find((p) => p.id === selected) ?? null;
  const editable = chosen !== null && (!chosen.site || isAdmin);
  const base = (p: { site: boolean }) => (p.site ? '/api/admin/presets' : '/api/presets');

  const run = async (work: () => Promise<PresetView | null>) => {
    setBusy(true);
    setError(null);
    try {
      onChanged(await work());
      setNaming(null);
    } catch (e) {
      setError(sentence(e instanceof ApiError || e instanceof Error ? e.message : String(e)));
    } finally {
      setBusy(false);
    }
  };

  const values = (): PresetValues | null => {
    const v = current();
    if (!v) setError('Correct the fields marked below first: a preset is saved only with values that fit.');
    return v;
  };

  const saveNamed = () => {
    if (!naming) return;
    if (naming.mode === 'rename') {
      if (!chosen) return;
      void run(
        async () => (await patch<PresetReply>(`${base(chosen)}/${chosen.id}`, { name: naming.name })).preset,
      );
      return;
    }
    const v = values();
    if (!v) return;
    void run(
      async () =>
        (
          await post<PresetReply>(naming.site ? '/api/admin/presets' : '/api/presets', {
            name: naming.name,
            cluster: cluster.name,
            values: v,
          })
        ).preset,
    );
  };

  const saveChanges = () => {
    if (!chosen) return;
    const v = values();
    if (!v) return;
    void run(async () => (await patch<PresetReply>(`${base(chosen)}/${chosen.id}`, { values: v })).preset);
  };

  const toggleDefault = () => {
    if (!chosen) return;
    void run(
      async () =>
        (await patch<PresetReply>(`/api/presets/${chosen.id}`, { isDefault: !chosen.isDefault })).preset,
    );
  };

  const remove = (p: PresetView) => {
    setDeleting(null);
    void run(async () => {
      await del(`${base(p)}/${p.id}`);
      return null;
    });
  };

  // Enter names the preset; it must not submit the session form around it.
  const onNameKey = (e: KeyboardEvent) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      saveNamed();
    } else if (e.key === 'Escape') {
      setNaming(null);
    }
  };

  return (
    <div className="presets">
      <div className="presets-row">
        <label htmlFor="f-preset">Preset</label>
        <select
          id="f-preset"
          value={selected ?? ''}
          onChange={(e) => {
            const id = Number(e.target.value);
            setError(null);
            onApply([...mine, ...site].find((p) => p.id === id) ?? null);
          }}
        >
          <option value="">{mine.length + site.length > 0 ? 'none chosen' : 'none saved yet'}</option>
          {mine.length > 0 && (
            <optgroup label="Yours">
              {mine.map((p) => (
                <option key={p.id} value={p.id}>
                  {p.name}
                  {p.isDefault ? ' (default)' : ''}
                </option>
              ))}
            </optgroup>
          )}
          {site.length > 0 && (
            <optgroup label="From the administrators">
              {site.map((p) => (
                <option key={p.id} value={p.id}>
                  {p.name}
                </option>
              ))}
            </optgroup>
          )}
        </select>
        <div className="presets-actions">
          <button
            type="button"
            className="btn btn-small"
            disabled={busy}
            onClick={() => {
              setError(null);
              setNaming({ mode: 'new', name: '', site: false });
            }}
          >
            Save as preset…
          </button>
          {editable && chosen && (
            <>
              <button type="button" className="btn btn-small" disabled={busy} onClick={saveChanges}>
                Save changes
              </button>
              <button
                type="button"
                className="btn btn-small"
                disabled={busy}
                onClick={() => setNaming({ mode: 'rename', name: chosen.name, site: chosen.site })}
              >
                Rename…
              </button>
              {!chosen.site && (
                <button
                  type="button"
                  className="btn btn-small"
                  disabled={busy}
                  aria-pressed={chosen.isDefault}
                  onClick={toggleDefault}
                >
                  {chosen.isDefault ? 'Default ✓' : 'Make default'}
                </button>
              )}
              <button
                type="button"
                className="btn btn-small btn-danger-outline"
                disabled={busy}
                onClick={() => setDeleting(chosen)}
              >
                Delete
              </button>
            </>
          )}
        </div>
      </div>
      {chosen?.site && !isAdmin && (
        <p className="field-hint">Set by the administrators for everyone on {cluster.title}.</p>
      )}
      {naming && (
        <div className="presets-name">
          <label htmlFor="f-preset-name">
            {naming.mode === 'new' ? 'Name of the new preset' : 'New name'}
          </label>
          <input
            id="f-preset-name"
            type="text"
            maxLength={64}
            autoComplete="off"
            // biome-ignore lint/a11y/noAutofocus: the user just asked to type a name here
            autoFocus
            value={naming.name}
            onChange={(e) => setNaming({ ...naming, name: e.target.value })}
            onKeyDown={onNameKey}
          />
          {isAdmin && naming.mode === 'new' && (
            <label className="check">
              <input
                type="checkbox"
                checked={naming.site}
                onChange={(e) => setNaming({ ...naming, site: e.target.checked })}
              />
              For every user of {cluster.title}
            </label>
          )}
          <div className="presets-actions">
            <button type="button" className="btn btn-small btn-primary" disabled={busy} onClick={saveNamed}>
              {naming.mode === 'new' ? 'Save preset' : 'Rename'}
            </button>
            <button type="button" className="btn btn-small" onClick={() => setNaming(null)}>
              Cancel
            </button>
          </div>
        </div>
      )}
      {error && (
        <p className="field-error" role="alert">
          {error}
        </p>
      )}
      {deleting && (
        <ConfirmDialog
          title={`Delete the preset “${deleting.name}”?`}
          confirmLabel="Delete preset"
          cancelLabel="Keep it"
          danger
          onConfirm={() => remove(deleting)}
          onCancel={() => setDeleting(null)}
        >
          <p>Sessions started with it are not affected.</p>
        </ConfirmDialog>
      )}
    </div>
  );
}
