// History: the user's own ended sessions and batch jobs, each with what it asked for against what
// accounting says it used (CPU, memory, time) as numbers and a small bar, with filters and a CSV download
// of the same list. The figures are read once after each end by the gateway (never per page view).
import { useCallback, useEffect, useState } from 'react';
import type { HistoryEntry, HistoryReply, UsageRatio } from '../../api/history.ts';
import { get, sentence } from '../api.ts';
import { FilterSelect } from '../components/Field.tsx';
import { TableHead } from '../components/TableHead.tsx';
import { formatFullDate, formatGb, formatWhen, plural } from '../format.ts';
import { useLiveEvent } from '../live.ts';
import type { ClusterView, PageProps } from '../types.ts';
import './history.css';
import './jobs.css';

/** Looks every 5 s while figures are pending: 5 minutes. */
const PENDING_POLLS = 60;

const KINDS: [string, string][] = [
  ['', 'Sessions and jobs'],
  ['session', 'Sessions'],
  ['job', 'Jobs'],
];

const STATES: [string, string][] = [
  ['', 'Any'],
  ['completed', 'Completed'],
  ['failed', 'Failed'],
  ['cancelled', 'Cancelled'],
  ['timeout', 'Timed out'],
  ['out_of_memory', 'Out of memory'],
  ['ended', 'Session ended'],
];

/** "0.6 s", "42 s", "3 min 5 s", "15 min", "2 h 30 min", "168 h": zeros left out. */
function seconds(s: number): string {
  if (s < 10) return `${Math.round(s * 10) / 10} s`;
  if (s < 60) return `${Math.round(s)} s`;
  const join = (a: number, au: string, b: number, bu: string) =>
    b === 0 ? `${a} ${au}` : `${a} ${au} ${b} ${bu}`;
  if (s < 3600) return join(Math.floor(s / 60), 'min', Math.round(s % 60), 's');
  return join(Math.floor(s / 3600), 'h', Math.round((s % 3600) / 60), 'min');
}

const memory = (mb: number) => (mb < 1024 ? `${Math.round(mb)} MB` : `${formatGb(mb)} GB`);

/** "12 %" and a bar; amber when much is left unused, red when over. */
function Bar({ r, what, words }: { r: UsageRatio | null; what: string; words: (r: UsageRatio) => string }) {
  if (!r) return <span className="muted">—</span>;
  const pct = r.fraction === null ? null : Math.round(r.fraction * 100);
  const tone = pct === null ? '' : pct > 100 ? 'over' : pct < 25 ? 'low' : 'fine';
  return (
    <span className="eff" data-eff={what} title={`${what}: ${words(r)}`}>
      <span className="eff-num">{pct === null ? '—' : `${pct} %`}</span>
      {/* The share is read out as the number before it: the bar is for the eye. */}
      <span className={`eff-bar ${tone}`} aria-hidden="true">
        <span style={{ width: `${Math.min(100, pct ?? 0)}%` }} />
      </span>
      <span className="eff-words muted small">{words(r)}</span>
    </span>
  );
}

function Figures({ e }: { e: HistoryEntry }) {
  if (e.accounting === 'none')
    return (
      <td colSpan={3} className="muted">
        no accounting data
      </td>
    );
  if (e.accounting === 'pending')
    return (
      <td colSpan={3} className="muted">
        reading accounting…
      </td>
    );
  const { cpu, memory: mem, time } = e.efficiency;
  return (
    <>
      <td data-label="CPU">
        <Bar r={cpu} what="CPU" words={(r) => `${seconds(r.used)} of ${seconds(r.requested)} CPU time`} />
      </td>
      <td data-label="Memory">
        <Bar r={mem} what="Memory" words={(r) => `${memory(r.used)} of ${memory(r.requested)}`} />
      </td>
      <td data-label="Time">
        <Bar r={time} what="Time" words={(r) => `${seconds(r.used)} of ${seconds(r.requested)}`} />
      </td>
    </>
  );
}

export function HistoryPage(_: PageProps) {
  const [clusters, setClusters] = useState<ClusterView[]>([]);
  const [cluster, setCluster] = useState('');
  const [state, setState] = useState('');
  const [kind, setKind] = useState('');
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const [entries, setEntries] = useState<HistoryEntry[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    get<{ clusters: ClusterView[] }>('/api/clusters')
      .then((r) => setClusters(r.clusters))
      .catch(() => undefined);
  }, []);

  const query = new URLSearchParams();
  if (cluster) query.set('cluster', cluster);
  if (state) query.set('state', state);
  if (kind) query.set('kind', kind);
  if (from) query.set('from', from);
  if (to) query.set('to', to);
  const qs = query.toString();

  const load = useCallback(async () => {
    try {
      const r = await get<HistoryReply>(`/api/history${qs ? `?${qs}` : ''}`);
      setEntries(r.entries);
      setError(null);
    } catch (e) {
      setError(sentence(e instanceof Error ? e.message : String(e)));
    }
  }, [qs]);
  useEffect(() => {
    void load();
  }, [load]);
  // Sessions and jobs that end, and figures read after an end, show up without a reload.
  useLiveEvent('session', () => void load());
  useLiveEvent('job', () => void load());
  // Figures are read within a poll of an end: look again while some are still on their way, for a few
  // minutes at most (accounting may take its time; an open tab must not ask every 5 s for ever).
  const pending = entries?.some((e) => e.accounting === 'pending') ?? false;
  useEffect(() => {
    if (!pending) return;
    let left = PENDING_POLLS;
    const t = setInterval(() => {
      if (--left <= 0) clearInterval(t);
      void load();
    }, 5_000);
    return () => clearInterval(t);
  }, [pending, load]);

  return (
    <div className="dashboard history">
      <h1 className="visually-hidden">History</h1>
      {error && (
        <p className="alert alert-bad" role="alert">
          {error}
        </p>
      )}
      <section className="card" aria-labelledby="history-title">
        <div className="card-head">
          <h2 id="history-title">History</h2>
          <a
            className="btn btn-small"
            href={`/api/history/export${qs ? `?${qs}` : ''}`}
            download="atrium-history.csv"
          >
            Download CSV
          </a>
        </div>
        <p className="muted small">
          Your ended sessions and jobs: what each asked for against what it used, from the scheduler's
          accounting. CPU is CPU time against cores × run time; memory the peak against the request; time the
          run time against the limit.
        </p>
        <form className="filters" onSubmit={(e) => e.preventDefault()} aria-label="Filters">
          {clusters.length > 1 && (
            <FilterSelect
              label="Cluster"
              name="cluster"
              value={cluster}
              onChange={setCluster}
              choices={[['', 'All'], ...clusters.map((c) => [c.name, c.title] as const)]}
            />
          )}
          <FilterSelect label="Kind" name="kind" value={kind} onChange={setKind} choices={KINDS} />
          <FilterSelect label="State" name="state" value={state} onChange={setState} choices={STATES} />
          <label>
            From
            <input type="date" value={from} onChange={(e) => setFrom(e.target.value)} name="from" />
          </label>
          <label>
            To
            <input type="date" value={to} onChange={(e) => setTo(e.target.value)} name="to" />
          </label>
        </form>
        {entries && entries.length === 0 && <p className="empty">Nothing has ended that matches.</p>}
        {entries && entries.length > 0 && (
          <div className="table-wrap">
            <table className="table table-compact history-table stack">
              <caption className="visually-hidden">Ended sessions and jobs</caption>
              <TableHead columns={['Session or job', 'State', 'Ended', 'Asked', 'CPU', 'Memory', 'Time']} />
              <tbody>
                {entries.map((e) => (
                  <tr key={`${e.kind}:${e.cluster}:${e.id}`} data-entry={e.id} data-kind={e.kind}>
                    <td>
                      {e.name}{' '}
                      <span className="muted small">{e.kind === 'job' ? `job ${e.id}` : 'session'}</span>
                      {clusters.length > 1 && <span className="muted small"> · {e.cluster}</span>}
                    </td>
                    <td data-label="State">{e.schedulerState ?? e.state}</td>
                    <td data-label="Ended" title={e.endedAt ? formatFullDate(e.endedAt) : undefined}>
                      {e.endedAt ? formatWhen(e.endedAt) : '—'}
                    </td>
                    <td data-label="Asked" className="small">
                      {[
                        e.requested.cores !== null ? plural(e.requested.cores, 'core') : null,
                        e.requested.memoryMb !== null ? memory(e.requested.memoryMb) : null,
                        e.requested.minutes !== null ? seconds(e.requested.minutes * 60) : null,
                      ]
                        .filter(Boolean)
                        .join(' · ')}
                    </td>
                    <Figures e={e} />
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </div>
  );
}
