// "API tokens": the user's tokens (name, scopes, dates), a form to create one (shown once, with a copy
// button), and revoking with a confirmation. Only a signed-in browser may create tokens; the server
// keeps only a hash, so a lost token cannot be shown again.
import { type FormEvent, useEffect, useId, useRef, useState } from 'react';
import type { ApiScope, TokenView } from '../../api/tokens.ts';
import { ApiError, del, errorText, post, sentence } from '../api.ts';
import { plural } from '../format.ts';
import { useGet, useNow } from '../hooks.ts';
import { Card } from './Card.tsx';
import { ConfirmDialog } from './ConfirmDialog.tsx';
import { DataTable } from './DataTable.tsx';
import { InputField } from './Field.tsx';
import { ListState } from './LoadState.tsx';
import { RowButton } from './RowButton.tsx';
import { ACTIONS } from './TableHead.tsx';
import { useToasts } from './Toasts.tsx';

export type { TokenView };

/** Every scope the server knows, least powerful first (the type makes a new server scope show up here). */
const SCOPES: Record<ApiScope, { label: string; hint: string }> = {
  read: { label: 'read', hint: 'look only: list sessions and jobs, follow live updates' },
  sessions: { label: 'sessions', hint: 'start, list and stop interactive sessions' },
  jobs: { label: 'jobs', hint: 'submit, list and cancel batch jobs' },
  files: { label: 'files', hint: 'list, download, upload and change your files' },
};
const SCOPE_IDS = Object.keys(SCOPES) as ApiScope[];

// The server's rules (src/auth/tokens.ts), checked here first so nothing wrong is sent.
const NAME_RE = /^[\p{L}\p{N} _.,:()+-]{1,64}$/u;
const DEFAULT_DAYS = 90;

type FormField = 'name' | 'scopes' | 'expiresInDays';
type FormErrors = Partial<Record<FormField, string>>;
const FORM_FIELDS: FormField[] = ['name', 'scopes', 'expiresInDays'];
/** The element to focus for each field (Field names its input f-<name>). */
const FIELD_IDS: Record<FormField, string> = {
  name: 'f-token-name',
  scopes: 'f-token-scope-first',
  expiresInDays: 'f-token-days',
};

interface FormValues {
  name: string;
  scopes: ApiScope[];
  days: string;
}

function validate(v: FormValues): FormErrors {
  const errors: FormErrors = {};
  const name = v.name.trim();
  if (!name) errors.name = 'Give the token a name, e.g. the script or machine that uses it.';
  else if (!NAME_RE.test(name))
    errors.name = 'At most 64 letters, digits, spaces and . , : ( ) + - _ characters.';
  if (v.scopes.length === 0) errors.scopes = 'Choose at least one scope.';
  const days = Number(v.days);
  if (v.days.trim() === '' || !Number.isInteger(days) || days < 1)
    errors.expiresInDays = 'A whole number of days, 1 or more.';
  return errors;
}

/** "Expires in: a whole number of days from 1 to 365" → "A whole number of days from 1 to 365." */
function fieldMessage(message: string): string {
  return sentence(message.replace(/^(Name|Scopes|Expires in): /, ''));
}

const DAY_FORMAT = new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'short', year: 'numeric' });
const FULL_FORMAT = new Intl.DateTimeFormat('en-GB', { dateStyle: 'full', timeStyle: 'short' });

function When({ ms, empty }: { ms: number | null; empty: string }) {
  if (ms === null) return <span className="muted">{empty}</span>;
  const d = new Date(ms);
  return (
    <time dateTime={d.toISOString()} title={FULL_FORMAT.format(d)}>
      {DAY_FORMAT.format(d)}
    </time>
  );
}

function isActiveToken(t: TokenView, now = Date.now()): boolean {
  return t.revokedAt === null && (t.expiresAt === null || t.expiresAt > now);
}

export function ApiTokens() {
  const [created, setCreated] = useState<{ token: string; info: TokenView } | null>(null);
  const [revoking, setRevoking] = useState<TokenView | null>(null);
  const { notify } = useToasts();
  const now = useNow(60_000);

  const { data, error: loadError, reload: load } = useGet<{ tokens: TokenView[] }>('/api/tokens');
  const tokens = data?.tokens ?? null;

  const revoke = async (t: TokenView) => {
    setRevoking(null);
    try {
      await del(`/api/tokens/${encodeURIComponent(String(t.id))}`);
      notify({ tone: 'ok', title: `Token “${t.name}” revoked`, message: 'It no longer works.' });
      if (created?.info.id === t.id) setCreated(null);
    } catch (e) {
      notify({
        tone: 'bad',
        title: `Token “${t.name}” could not be revoked`,
        message: errorText(e),
      });
    }
    await load();
  };

  const active = (tokens ?? []).filter((t) => isActiveToken(t, now));
  const inactive = (tokens ?? []).filter((t) => !isActiveToken(t, now));

  return (
    <Card
      titleId="tokens-title"
      title="API tokens"
      aside={active.length > 0 && <span className="muted">{active.length} active</span>}
    >
      <p className="muted">
        Scripts and programs use a token instead of your password, sent as{' '}
        <code>Authorization: Bearer &lt;token&gt;</code>. A token can do only what its scopes allow, and never
        administration.
      </p>
      {created && <NewToken token={created.token} info={created.info} onDone={() => setCreated(null)} />}
      <ListState what="Your tokens" error={loadError} items={tokens && active}>
        You have no active tokens.
      </ListState>
      {active.length > 0 && (
        <TokenTable
          tokens={active}
          caption="Active API tokens"
          onRevoke={(t) => setRevoking(t)}
          status={false}
          now={now}
        />
      )}
      {inactive.length > 0 && (
        <details className="recent">
          <summary>Revoked and expired ({inactive.length})</summary>
          <TokenTable tokens={inactive} caption="Revoked and expired API tokens" status now={now} />
        </details>
      )}
      <NewTokenForm
        onCreated={(token, info) => {
          setCreated({ token, info });
          void load();
        }}
      />
      {revoking && (
        <ConfirmDialog
          title={`Revoke the token “${revoking.name}”?`}
          confirmLabel="Revoke token"
          danger
          onConfirm={() => void revoke(revoking)}
          onCancel={() => setRevoking(null)}
        >
          <p>Scripts that use it stop working at once. This cannot be undone.</p>
        </ConfirmDialog>
      )}
    </Card>
  );
}

interface TableProps {
  tokens: TokenView[];
  caption: string;
  status: boolean;
  now: number;
  onRevoke?(t: TokenView): void;
}

function TokenTable({ tokens, caption, status, now, onRevoke }: TableProps) {
  return (
    <DataTable
      className="tokens stack"
      caption={caption}
      columns={['Name', 'Scopes', 'Created', status ? 'Ended' : 'Expires', 'Last used', onRevoke && ACTIONS]}
    >
      {tokens.map((t) => (
        <tr key={t.id} data-token={t.id}>
          <th scope="row">{t.name}</th>
          <td data-label="Scopes">
            <span className="scopes">
              {t.scopes.map((s) => (
                <span key={s} className="scope">
                  {s}
                </span>
              ))}
            </span>
          </td>
          <td data-label="Created">
            <When ms={t.createdAt} empty="—" />
          </td>
          <td data-label={status ? 'Ended' : 'Expires'}>
            {status ? (
              t.revokedAt !== null ? (
                <>
                  revoked <When ms={t.revokedAt} empty="" />
                </>
              ) : (
                <>
                  expired <When ms={t.expiresAt} empty="" />
                </>
              )
            ) : (
              <>
                <When ms={t.expiresAt} empty="never" />
                {t.expiresAt !== null && t.expiresAt - now < 7 * 86_400_000 && (
                  <span className="sub">soon: in {plural(daysLeft(t.expiresAt, now), 'day')}</span>
                )}
              </>
            )}
          </td>
          <td data-label="Last used">
            <When ms={t.lastUsedAt} empty="never" />
          </td>
          {onRevoke && (
            <td className="actions">
              <RowButton danger label={`Revoke ${t.name}`} onClick={() => onRevoke(t)}>
                Revoke
              </RowButton>
            </td>
          )}
        </tr>
      ))}
    </DataTable>
  );
}

function daysLeft(expiresAt: number, now: number): number {
  return Math.max(0, Math.ceil((expiresAt - now) / 86_400_000));
}

/** The new token, shown this once, with a copy button. */
function NewToken({ token, info, onDone }: { token: string; info: TokenView; onDone(): void }) {
  const [copied, setCopied] = useState<'yes' | 'no' | null>(null);
  const input = useRef<HTMLInputElement>(null);
  const titleId = useId();
  const box = useRef<HTMLElement>(null);

  // Bring the token into view and focus (the form that made it is further down).
  useEffect(() => {
    box.current?.scrollIntoView({ block: 'nearest' });
    input.current?.focus();
    input.current?.select();
  }, []);

  const copy = async () => {
    try {
      await navigator.clipboard.writeText(token);
      setCopied('yes');
    } catch {
      // No clipboard access (an insecure origin, or refused): select it for Ctrl+C.
      input.current?.focus();
      input.current?.select();
      setCopied('no');
    }
  };

  return (
    <section className="token-once" ref={box} aria-labelledby={titleId}>
      <h3 id={titleId}>Your new token “{info.name}”</h3>
      <p className="alert alert-warn">
        <strong>Copy it now: this is the only time it is shown.</strong> Only a hash of it is kept, so it
        cannot be shown again; if you lose it, revoke it and create a new one. Keep it secret like a password.
      </p>
      <div className="token-copy">
        <label className="visually-hidden" htmlFor="new-token-value">
          New API token
        </label>
        <input
          ref={input}
          id="new-token-value"
          className="token-value"
          readOnly
          value={token}
          spellCheck={false}
          autoComplete="off"
          onFocus={(e) => e.currentTarget.select()}
        />
        <button type="button" className="btn btn-primary" onClick={() => void copy()}>
          Copy
        </button>
      </div>
      <p className="small token-copy-status" aria-live="polite">
        {copied === 'yes' && 'Copied to the clipboard.'}
        {copied === 'no' && 'The browser does not allow copying here: the token is selected, press Ctrl+C.'}
      </p>
      <p className="small muted">
        Scopes: {info.scopes.join(', ')} · expires <When ms={info.expiresAt} empty="never" />. For example:{' '}
        <code>{`curl -H "Authorization: Bearer $TOKEN" ${location.origin}/api/sessions`}</code>
      </p>
      <button type="button" className="btn" onClick={onDone}>
        Done, I have saved it
      </button>
    </section>
  );
}

function NewTokenForm({ onCreated }: { onCreated(token: string, info: TokenView): void }) {
  const [values, setValues] = useState<FormValues>({ name: '', scopes: [], days: String(DEFAULT_DAYS) });
  const [errors, setErrors] = useState<FormErrors>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [submitted, setSubmitted] = useState(false);
  const [busy, setBusy] = useState(false);
  const formRef = useRef<HTMLFormElement>(null);

  const change = (next: FormValues) => {
    setValues(next);
    // After a first try, the messages follow the input as it is corrected.
    if (submitted) setErrors(validate(next));
  };

  const focusFirst = (errs: FormErrors) => {
    const first = FORM_FIELDS.find((f) => errs[f]);
    if (first) formRef.current?.querySelector<HTMLElement>(`#${FIELD_IDS[first]}`)?.focus();
  };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (busy) return;
    setSubmitted(true);
    const errs = validate(values);
    setErrors(errs);
    if (Object.keys(errs).length > 0) {
      setFormError(null);
      focusFirst(errs);
      return;
    }
    setFormError(null);
    setBusy(true);
    try {
      const r = await post<{ token: string; info: TokenView }>('/api/tokens', {
        name: values.name.trim(),
        scopes: values.scopes,
        expiresInDays: Number(values.days),
      });
      setValues({ name: '', scopes: [], days: String(DEFAULT_DAYS) });
      setSubmitted(false);
      setErrors({});
      onCreated(r.token, r.info);
    } catch (err) {
      const field = err instanceof ApiError ? err.field : undefined;
      if (
        err instanceof ApiError &&
        err.status === 400 &&
        field &&
        FORM_FIELDS.includes(field as FormField)
      ) {
        const errs2 = { [field]: fieldMessage(err.message) } as FormErrors;
        setErrors(errs2);
        focusFirst(errs2);
      } else {
        setFormError(`The token was not created: ${errorText(err)}`);
      }
    } finally {
      setBusy(false);
    }
  };

  const toggleScope = (s: ApiScope, on: boolean) =>
    change({
      ...values,
      scopes: on
        ? SCOPE_IDS.filter((x) => x === s || values.scopes.includes(x))
        : values.scopes.filter((x) => x !== s),
    });

  return (
    <form ref={formRef} className="token-form" onSubmit={submit} noValidate aria-labelledby="new-token-title">
      <h3 id="new-token-title">New token</h3>
      {formError && (
        <p className="alert alert-bad" role="alert">
          {formError}
        </p>
      )}
      <div className="form-grid">
        <InputField
          name="token-name"
          label="Name"
          error={errors.name}
          hint="What uses it, e.g. “laptop scripts”."
          className="span-2"
          type="text"
          maxLength={64}
          autoComplete="off"
          value={values.name}
          onChange={(e) => change({ ...values, name: e.target.value })}
        />
        <InputField
          name="token-days"
          label="Expires in (days)"
          error={errors.expiresInDays}
          hint={`Default ${DEFAULT_DAYS}; the site sets a maximum.`}
          className="span-2"
          type="number"
          inputMode="numeric"
          min={1}
          step={1}
          value={values.days}
          onChange={(e) => change({ ...values, days: e.target.value })}
        />
        <fieldset
          className="field checks span-4"
          aria-invalid={errors.scopes ? true : undefined}
          aria-describedby={errors.scopes ? 'f-token-scopes-error' : undefined}
        >
          <legend>Scopes</legend>
          <div className="scope-list">
            {SCOPE_IDS.map((s, i) => (
              <label key={s} className="check">
                <input
                  type="checkbox"
                  id={i === 0 ? FIELD_IDS.scopes : undefined}
                  name="scopes"
                  value={s}
                  checked={values.scopes.includes(s)}
                  onChange={(e) => toggleScope(s, e.target.checked)}
                />
                <span>
                  <span className="scope">{SCOPES[s].label}</span>{' '}
                  <span className="muted">{SCOPES[s].hint}</span>
                </span>
              </label>
            ))}
          </div>
          {errors.scopes && (
            <p className="field-error" id="f-token-scopes-error">
              {errors.scopes}
            </p>
          )}
        </fieldset>
      </div>
      <div className="form-actions">
        <button type="submit" className="btn btn-primary" disabled={busy}>
          {busy ? 'Creating…' : 'Create token'}
        </button>
      </div>
    </form>
  );
}
