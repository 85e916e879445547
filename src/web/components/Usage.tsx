// Usage and quotas: each account's CPU time against its limit with the user's fair share in words, and
// the storage quotas, on the dashboard (UsagePanel) and beside the form's account field (AccountUsage).
// One copy per page, refreshed every minute from the gateway's own copy (never the scheduler's).
import { type ReactNode, useEffect, useState } from 'react';
import type { AccountUsageView, UsageReply } from '../../api/usage.ts';
import { get } from '../api.ts';
import { accountLine, levelClass, storageLine } from '../usage-format.ts';
import { Card } from './Card.tsx';
import './usage.css';

const REFRESH_MS = 60_000;
let current: { usage: UsageReply | null; error: string | null; at: number } = {
  usage: null,
  error: null,
  at: 0,
};
let loading: Promise<void> | null = null;
const listeners = new Set<() => void>();

function load(): Promise<void> {
  loading ??= get<UsageReply>('/api/usage')
    .then(
      (usage) => {
        current = { usage, error: null, at: Date.now() };
      },
      (e: unknown) => {
        current = { ...current, error: e instanceof Error ? e.message : String(e), at: Date.now() };
      },
    )
    .finally(() => {
      loading = null;
      for (const f of listeners) f();
    });
  return loading;
}

export function useUsage(): { usage: UsageReply | null; error: string | null } {
  const [, setTick] = useState(0);
  useEffect(() => {
    const f = () => setTick((n) => n + 1);
    listeners.add(f);
    if (Date.now() - current.at > REFRESH_MS / 2) void load();
    const t = setInterval(() => void load(), REFRESH_MS);
    return () => {
      listeners.delete(f);
      clearInterval(t);
    };
  }, []);
  return { usage: current.usage, error: current.error };
}

function Bar({
  percent,
  level,
  label,
}: {
  percent: number | null;
  level: AccountUsageView['level'];
  label: string;
}) {
  if (percent === null) return null;
  return (
    <span
      className={`usage-bar ${levelClass(level)}`}
      // The figures beside it say the same in words.
      aria-hidden="true"
      title={label}
    >
      <span className="usage-fill" style={{ width: `${Math.min(100, percent)}%` }} />
    </span>
  );
}

/** The dashboard's card; nothing when there is nothing to show. */
export function UsagePanel() {
  const { usage, error } = useUsage();
  if (!usage && !error) return null;
  const clusters = usage?.clusters ?? [];
  const storage = usage?.storage ?? [];
  if (usage && clusters.length === 0 && storage.length === 0) return null;
  return (
    <Card titleId="usage-title" title="Usage and quotas" className="usage-panel">
      {error && !usage && <p className="alert alert-warn">Usage could not be loaded: {error}</p>}
      {clusters.map((c) => (
        <div key={c.cluster} className="usage-group">
          {clusters.length > 1 && <h3>{c.title}</h3>}
          {c.message && <p className="muted">{c.message}</p>}
          {c.available && c.accounts.length === 0 && (
            <p className="muted">You have no account on {c.title}.</p>
          )}
          <ul className="usage-list">
            {c.accounts.map((a) => (
              <li key={a.account} className={`usage-item ${levelClass(a.level)}`} data-account={a.account}>
                <span className="usage-name">Account {a.account}</span>
                <Bar percent={a.percent} level={a.level} label={`CPU time used by account ${a.account}`} />
                <span className="usage-figures">{accountLine(a)}</span>
                {a.fairShareText && <span className="usage-note">{a.fairShareText}</span>}
              </li>
            ))}
          </ul>
        </div>
      ))}
      {storage.length > 0 && (
        <div className="usage-group">
          <h3>Storage</h3>
          <ul className="usage-list">
            {storage.map((s) =>
              !s.available ? (
                <li key={s.name} className="usage-item usage-unavailable" data-quota={s.name}>
                  <span className="usage-name">{s.name}</span>
                  <span className="usage-figures">{s.message ?? 'quota unavailable'}</span>
                </li>
              ) : s.quotas.length === 0 ? (
                <li key={s.name} className="usage-item" data-quota={s.name}>
                  <span className="usage-name">{s.name}</span>
                  <span className="usage-figures">no quota</span>
                </li>
              ) : (
                s.quotas.map((q) => (
                  <li
                    key={`${s.name} ${q.filesystem}`}
                    className={`usage-item ${levelClass(q.level)}`}
                    data-quota={s.name}
                  >
                    <span className="usage-name">
                      {s.name} <span className="muted">{q.filesystem}</span>
                    </span>
                    <Bar percent={q.percent} level={q.level} label={`${s.name} used`} />
                    <span className="usage-figures">{storageLine(q)}</span>
                  </li>
                ))
              ),
            )}
          </ul>
        </div>
      )}
    </Card>
  );
}

/**
 * Beside the account field: the chosen account's usage (the first accounts' when "default" is chosen);
 * undefined when there is none to show, so the field keeps no empty hint.
 */
export function useAccountUsage(cluster: string, account: string): ReactNode | undefined {
  const { usage } = useUsage();
  const c = usage?.clusters.find((x) => x.cluster === cluster);
  const shown = !c ? [] : account ? c.accounts.filter((a) => a.account === account) : c.accounts.slice(0, 3);
  if (shown.length === 0) return undefined;
  return (
    <span className="usage-inline" data-testid="account-usage">
      {shown.map((a) => (
        <span key={a.account} className={`usage-inline-item ${levelClass(a.level)}`}>
          <Bar percent={a.percent} level={a.level} label={`CPU time used by account ${a.account}`} />
          {account ? '' : `${a.account}: `}
          {accountLine(a)}
          {a.fairShare !== null ? `; fair share ${a.fairShare.toFixed(2)}` : ''}
        </span>
      ))}
    </span>
  );
}
