// Queue: the partitions' queues as far as the user may see them (with PrivateData=jobs, their own jobs
// plus counts per partition), with filters, and the cluster status: nodes by state, load per partition,
// GPUs in use. Everything comes from the gateway's one shared poll; the page refreshes after each poll.
import { useCallback, useEffect, useRef, useState } from 'react';
import { get, sentence } from '../api.ts';
import { DataTable } from '../components/DataTable.tsx';
import { ClusterOptions, FilterSelect } from '../components/Field.tsx';
import { num } from '../components/TableHead.tsx';
import { formatWhen } from '../format.ts';
import { useNow } from '../hooks.ts';
import { type ClusterStatus, formatLimit, formatMemory, jobBadge, type QueueView } from '../jobs-format.ts';
import { useLiveEvent, useLiveReconnect } from '../live.ts';
import { Link } from '../router.tsx';
import type { ClusterView, PageProps } from '../types.ts';
import './jobs.css';

const STATES: [string, string][] = [
  ['active', 'Pending and running'],
  ['pending', 'Pending'],
  ['running', 'Running'],
  ['finished', 'Recently finished'],
  ['all', 'All'],
];

export function QueuePage({ me }: PageProps) {
  const [clusters, setClusters] = useState<ClusterView[] | null>(null);
  const [cluster, setCluster] = useState('');
  const [partition, setPartition] = useState('');
  const [state, setState] = useState('active');
  const [mine, setMine] = useState(false);
  const [user, setUser] = useState('');
  const [queue, setQueue] = useState<QueueView | null>(null);
  const [status, setStatus] = useState<ClusterStatus | null>(null);
  const [error, setError] = useState<string | null>(null);
  const now = useNow(15_000);

  useEffect(() => {
    void (async () => {
      try {
        const r = await get<{ clusters: ClusterView[] }>('/api/clusters');
        setClusters(r.clusters);
        setCluster((c) => c || (r.clusters[0]?.name ?? ''));
      } catch (e) {
        setError(sentence(e instanceof Error ? e.message : String(e)));
      }
    })();
  }, []);

  const load = useCallback(async () => {
    if (!cluster) return;
    const qs = new URLSearchParams({ cluster, state });
    if (partition) qs.set('partition', partition);
    if (mine) qs.set('mine', '1');
    if (user.trim()) qs.set('user', user.trim());
    try {
      const [q, s] = await Promise.all([
        get<QueueView>(`/api/queue?${qs}`),
        get<ClusterStatus>(`/api/clusters/${encodeURIComponent(cluster)}/status`),
      ]);
      setQueue(q);
      setStatus(s);
      setError(null);
    } catch (e) {
      setError(sentence(e instanceof Error ? e.message : String(e)));
    }
  }, [cluster, partition, state, mine, user]);
  useEffect(() => {
    void load();
  }, [load]);
  useLiveReconnect(() => void load());
  // The server announces every poll (the free-resources table): read the new view, at most every 3 s.
  const last = useRef(0);
  useLiveEvent<{ cluster?: string }>('resources', (d) => {
    if (d?.cluster !== cluster || Date.now() - last.current < 3_000) return;
    last.current = Date.now();
    void load();
  });

  const partitions = status?.partitions.map((p) => p.name) ?? [];
  return (
    <div className="dashboard queue">
      <h1 className="visually-hidden">Queue</h1>
      {error && (
        <p className="alert alert-bad" role="alert">
          {error}
        </p>
      )}
      <section className="card" aria-labelledby="queue-title">
        <div className="card-head">
          <h2 id="queue-title">Queue</h2>
          {queue && (
            <span className="muted">
              {queue.at > 0 ? `as of ${formatWhen(queue.at * 1000, now)}` : 'waiting for the first look'}
              {!queue.fresh && queue.at > 0 ? ' (the scheduler does not answer right now)' : ''}
            </span>
          )}
        </div>
        <form className="filters" onSubmit={(e) => e.preventDefault()} aria-label="Filters">
          {clusters && clusters.length > 1 && (
            <label>
              Cluster
              <select value={cluster} onChange={(e) => setCluster(e.target.value)}>
                <ClusterOptions clusters={clusters} />
              </select>
            </label>
          )}
          <FilterSelect
            label="Partition"
            name="partition"
            value={partition}
            onChange={setPartition}
            choices={[['', 'All'], ...partitions.map((p) => [p, p] as const)]}
          />
          <FilterSelect label="State" name="state" value={state} onChange={setState} choices={STATES} />
          {!queue?.privateJobs && (
            <label>
              User
              <input
                type="text"
                value={user}
                onChange={(e) => setUser(e.target.value)}
                placeholder="any"
                size={10}
                name="user"
              />
            </label>
          )}
          <label className="check">
            <input type="checkbox" checked={mine} onChange={(e) => setMine(e.target.checked)} name="mine" />{' '}
            Only mine
          </label>
        </form>
        {queue?.privateJobs && (
          <p className="muted small">
            This cluster keeps jobs private: you see your own jobs, and how many jobs of everybody wait or run
            in each partition.
          </p>
        )}
        {queue && queue.partitions.length > 0 && (
          <ul className="counts" aria-label="Jobs per partition">
            {queue.partitions.map((p) => (
              <li key={p.partition}>
                <strong>{p.partition}</strong> {p.running} running · {p.pending} pending
                {p.other > 0 ? ` · ${p.other} other` : ''}
              </li>
            ))}
          </ul>
        )}
        {queue && queue.jobs.length === 0 && <p className="empty">No jobs match.</p>}
        {queue && queue.jobs.length > 0 && (
          <DataTable
            className="table-compact queue-table stack"
            caption="Jobs in the queue"
            columns={[
              'Job',
              'User',
              'State',
              'Partition',
              num('Cores'),
              'Memory',
              num('GPUs'),
              'Nodes / start',
              'Limit',
            ]}
          >
            {queue.jobs.map((j) => {
              const b = jobBadge(j.state);
              return (
                <tr key={j.jobId} data-job={j.jobId} className={j.mine ? 'mine' : undefined}>
                  <td>
                    {j.mine ? (
                      <Link
                        href={`/jobs/${encodeURIComponent(queue.cluster)}/${encodeURIComponent(j.jobId)}`}
                      >
                        {j.jobId}
                      </Link>
                    ) : (
                      j.jobId
                    )}{' '}
                    <span className="muted">{j.name}</span>
                  </td>
                  <td data-label="User">{j.user === me.unixUser ? <strong>{j.user}</strong> : j.user}</td>
                  <td data-label="State">
                    <span className={`badge badge-${b.tone}`}>{b.label}</span>
                    {j.state === 'pending' && (
                      <span className="sub">
                        {[j.reason, j.position ? `${j.position} of ${j.pendingInPartition}` : null]
                          .filter(Boolean)
                          .join(' · ')}
                      </span>
                    )}
                  </td>
                  <td data-label="Partition">{j.partition ?? '—'}</td>
                  <td className="num" data-label="Cores">
                    {j.cpus ?? '—'}
                  </td>
                  <td data-label="Memory">{formatMemory(j.memoryMb)}</td>
                  <td className="num" data-label="GPUs">
                    {j.gpus ?? 0}
                  </td>
                  <td data-label="Nodes / start">
                    {j.state === 'pending'
                      ? j.startTime
                        ? `expected ${formatWhen(j.startTime * 1000, now)}`
                        : '—'
                      : (j.nodes ?? '—')}
                  </td>
                  <td className="nowrap" data-label="Limit">
                    {formatLimit(j.timeLimitMinutes)}
                  </td>
                </tr>
              );
            })}
          </DataTable>
        )}
        {queue?.truncated && (
          <p className="muted small">
            Showing {queue.jobs.length} of {queue.matched} jobs.
          </p>
        )}
      </section>
      {status && <StatusCard status={status} />}
    </div>
  );
}

function StatusCard({ status }: { status: ClusterStatus }) {
  const t = status.totals;
  return (
    <section className="card" aria-labelledby="status-title">
      <div className="card-head">
        <h2 id="status-title">Cluster status</h2>
        <span className="muted">
          {t.nodes} nodes · {t.allocCpus} of {t.cpus} cores in use
          {t.gpus > 0 ? ` · ${t.allocGpus} of ${t.gpus} GPUs in use` : ''}
        </span>
      </div>
      <ul className="counts" aria-label="Nodes by state">
        {Object.entries(status.nodesByState)
          .sort((a, b) => b[1] - a[1])
          .map(([s, n]) => (
            <li key={s} data-node-state={s}>
              <strong>{n}</strong> {s}
            </li>
          ))}
      </ul>
      <DataTable
        className="table-compact stack"
        caption="Load per partition"
        columns={['Partition', 'Cores in use', 'GPUs in use', num('Running'), num('Pending'), 'Longest job']}
      >
        {status.partitions.map((p) => (
          <tr key={p.name} data-partition={p.name}>
            <th scope="row">
              {p.name}
              {p.isDefault ? <span className="muted"> (default)</span> : null}
            </th>
            <td data-label="Cores in use">
              <meter
                min={0}
                max={Math.max(1, p.cpus)}
                value={p.allocCpus}
                aria-label={`cores in use in ${p.name}`}
              />{' '}
              {p.allocCpus} / {p.cpus}
            </td>
            <td data-label="GPUs in use">
              {p.gpus > 0 ? (
                <>
                  <meter min={0} max={p.gpus} value={p.allocGpus} aria-label={`GPUs in use in ${p.name}`} />{' '}
                  {p.allocGpus} / {p.gpus}
                </>
              ) : (
                <span className="muted">none</span>
              )}
            </td>
            <td className="num" data-label="Running">
              {p.running}
            </td>
            <td className="num" data-label="Pending">
              {p.pending}
            </td>
            <td data-label="Longest job">{formatLimit(p.maxTimeMinutes)}</td>
          </tr>
        ))}
      </DataTable>
      {status.nodes && (
        <details className="recent">
          <summary>Nodes ({status.nodes.length})</summary>
          <DataTable
            className="table-compact"
            caption="Nodes"
            columns={['Node', 'State', 'Partitions', 'Cores in use', 'Memory in use', 'GPUs in use']}
          >
            {status.nodes.map((n) => (
              <tr key={n.name}>
                <th scope="row">{n.name}</th>
                <td>{n.state}</td>
                <td>{n.partitions.join(', ')}</td>
                <td>
                  {n.allocCpus} / {n.cpus}
                </td>
                <td>
                  {formatMemory(n.allocMemoryMb)} / {formatMemory(n.memoryMb)}
                </td>
                <td>{n.gpus > 0 ? `${n.allocGpus} / ${n.gpus}${n.gpuType ? ` ${n.gpuType}` : ''}` : '—'}</td>
              </tr>
            ))}
          </DataTable>
        </details>
      )}
    </section>
  );
}
