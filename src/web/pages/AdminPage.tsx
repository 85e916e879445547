// The admin page: every session (with Stop), batch jobs, clusters (drain switch, free table, queue),
// announcements (post, take down) and the audit log. Administrators only (the API says 403 otherwise).
import { type FormEvent, useEffect, useRef, useState } from 'react';
import type {
  AdminClusterView as AdminCluster,
  AdminJob,
  AdminSession,
  AuditEntry,
} from '../../api/admin.ts';
import { errorText, post } from '../api.ts';
import type { AnnouncementView } from '../components/Announcements.tsx';
import { Card } from '../components/Card.tsx';
import { DataTable } from '../components/DataTable.tsx';
import { FreeNow } from '../components/FreeNow.tsx';
import { RowButton } from '../components/RowButton.tsx';
import { StopSessionDialog } from '../components/SessionList.tsx';
import { ACTIONS, num, TableHead } from '../components/TableHead.tsx';
import { type ToastInput, useToasts } from '../components/Toasts.tsx';
import { formatResources, formatWhen, plural, sessionTitle, stateBadge } from '../format.ts';
import { useGet, useNow } from '../hooks.ts';
import { type IdleStatus, idleText } from '../idle.ts';
import { useLiveEvent } from '../live.ts';
import type { PageProps } from '../types.ts';
import '../components/admin.css';

const TABS = [
  ['sessions', 'Sessions'],
  ['jobs', 'Jobs'],
  ['clusters', 'Clusters'],
  ['announcements', 'Announcements'],
  ['audit', 'Audit log'],
] as const;
type Tab = (typeof TABS)[number][0];

export function AdminPage(_props: PageProps) {
  const [tab, setTab] = useState<Tab>(() => {
    const h = location.hash.slice(1);
    return (TABS.find(([id]) => id === h)?.[0] ?? 'sessions') as Tab;
  });
  const choose = (t: Tab) => {
    setTab(t);
    history.replaceState(null, '', `#${t}`);
  };
  return (
    <div className="admin">
      <h1 className="visually-hidden">Administration</h1>
      <div className="admin-tabs" role="tablist" aria-label="Administration">
        {TABS.map(([id, label]) => (
          <button
            key={id}
            type="button"
            role="tab"
            id={`admin-tab-${id}`}
            aria-selected={tab === id}
            aria-controls={`admin-panel-${id}`}
            className="admin-tab"
            onClick={() => choose(id)}
          >
            {label}
          </button>
        ))}
      </div>
      <div role="tabpanel" id={`admin-panel-${tab}`} aria-labelledby={`admin-tab-${tab}`}>
        {tab === 'sessions' && <SessionsTab />}
        {tab === 'jobs' && <JobsTab />}
        {tab === 'clusters' && <ClustersTab />}
        {tab === 'announcements' && <AnnouncementsTab />}
        {tab === 'audit' && <AuditTab />}
      </div>
    </div>
  );
}

function LoadError({ error }: { error: string | null }) {
  return error ? (
    <p className="alert alert-bad" role="alert">
      {error}
    </p>
  ) : null;
}

/**
 * An administrator's action on the tab: POST to `path`, tell `done` (if any) and re-read the tab; a failure
 * is a toast titled `failed`.
 */
function useAction(reload: () => Promise<void>) {
  const { notify } = useToasts();
  return async (path: string, failed: string, done?: Omit<ToastInput, 'tone'>) => {
    try {
      await post(path);
      if (done) notify({ tone: 'ok', ...done });
      await reload();
    } catch (e) {
      notify({ tone: 'bad', title: failed, message: errorText(e) });
    }
  };
}

function SessionsTab() {
  const [all, setAll] = useState(false);
  const { data, error, reload } = useGet<{ sessions: AdminSession[] }>(
    `/api/admin/sessions${all ? '' : '?state=active'}`,
  );
  const idle = useGet<{ enabled: boolean; sessions: IdleStatus[] }>('/api/admin/idle');
  const idleById = new Map((idle.data?.sessions ?? []).map((x) => [x.id, x]));
  // Activity is not an event: the idle times are read again now and then.
  const reloadIdle = idle.reload;
  useEffect(() => {
    const t = setInterval(() => void reloadIdle(), 30_000);
    return () => clearInterval(t);
  }, [reloadIdle]);
  const [stopping, setStopping] = useState<AdminSession | null>(null);
  const act = useAction(reload);
  const now = useNow(10_000);
  // Any session change anywhere: re-read the list (admins get these events), at most once a second.
  const pending = useRef<ReturnType<typeof setTimeout> | null>(null);
  useLiveEvent('admin.session', () => {
    pending.current ??= setTimeout(() => {
      pending.current = null;
      void reload();
      void idle.reload();
    }, 1000);
  });
  useEffect(() => () => clearTimeout(pending.current ?? undefined), []);

  const stop = async (s: AdminSession) => {
    setStopping(null);
    await act(`/api/admin/sessions/${encodeURIComponent(s.id)}/stop`, 'The session could not be stopped', {
      title: `Stopping ${s.user}'s ${sessionTitle(s)}`,
      message: 'The user is told an administrator stopped it.',
    });
  };

  const sessions = data?.sessions ?? [];
  return (
    <section className="card" aria-labelledby="admin-sessions-title">
      <div className="card-head">
        <h2 id="admin-sessions-title">{all ? 'All sessions' : 'Active sessions'}</h2>
        <label className="small">
          <input type="checkbox" checked={all} onChange={(e) => setAll(e.target.checked)} /> include ended
        </label>
      </div>
      <LoadError error={error} />
      {data && sessions.length === 0 && <p className="empty">No sessions.</p>}
      {sessions.length > 0 && (
        <DataTable
          className="stack"
          labelledBy="admin-sessions-title"
          columns={['User', 'Session', 'Cluster', 'State', 'Resources', 'Started', 'Idle', ACTIONS]}
        >
          {sessions.map((s) => {
            const badge = stateBadge(s.displayState);
            const active = !['ended', 'failed'].includes(s.state);
            return (
              <tr key={s.id} data-session={s.id} data-state={s.state}>
                <td className="strong">{s.user}</td>
                <td data-label="Session">
                  {sessionTitle(s)}
                  <span className="sub">
                    {s.id}
                    {s.jobId ? ` · job ${s.jobId}` : ''}
                  </span>
                </td>
                <td data-label="Cluster">{s.cluster}</td>
                <td data-label="State">
                  <span className={`badge badge-${badge.tone}`}>{badge.label}</span>
                  {s.reason && <span className="sub">{s.reason}</span>}
                </td>
                <td data-label="Resources">{formatResources(s)}</td>
                <td className="nowrap" data-label="Started">
                  {formatWhen(s.startedAt ?? s.createdAt, now)}
                </td>
                <td className="nowrap" data-label="Idle">
                  {s.state === 'running' ? idleText(idleById.get(s.id), now) : '—'}
                </td>
                <td className="actions">
                  {active && (
                    <RowButton
                      danger
                      label={`Stop ${s.user}'s session ${s.id}`}
                      disabled={s.state === 'ending'}
                      onClick={() => setStopping(s)}
                    >
                      {s.state === 'ending' ? 'Stopping…' : 'Stop'}
                    </RowButton>
                  )}
                </td>
              </tr>
            );
          })}
        </DataTable>
      )}
      {stopping && (
        <StopSessionDialog
          title={`Stop ${stopping.user}'s ${sessionTitle(stopping)}?`}
          onStop={() => void stop(stopping)}
          onKeep={() => setStopping(null)}
        >
          The job is cancelled. {stopping.user} sees that an administrator stopped it; anything unsaved in the
          session is lost.
        </StopSessionDialog>
      )}
    </section>
  );
}

function JobsTab() {
  const { data, error } = useGet<{ jobs: AdminJob[] }>('/api/admin/jobs');
  const now = useNow(30_000);
  const jobs = data?.jobs ?? [];
  return (
    <Card
      titleId="admin-jobs-title"
      title="Batch jobs"
      aside={<span className="muted">submitted through the gateway; the clusters tab shows each queue</span>}
    >
      <LoadError error={error} />
      {data && jobs.length === 0 && <p className="empty">No batch jobs.</p>}
      {jobs.length > 0 && (
        <DataTable
          className="table-compact"
          labelledBy="admin-jobs-title"
          columns={['User', 'Cluster', 'Job', 'Name', 'State', 'Submitted', num('Exit')]}
        >
          {jobs.map((j) => (
            <tr key={j.id}>
              <td>{j.user}</td>
              <td>{j.cluster}</td>
              <td>{j.jobId}</td>
              <td>{j.name}</td>
              <td>
                {j.state}
                {j.reason && <span className="sub">{j.reason}</span>}
              </td>
              <td className="nowrap">{formatWhen(j.submittedAt, now)}</td>
              <td className="num">{j.exitCode ?? '—'}</td>
            </tr>
          ))}
        </DataTable>
      )}
    </Card>
  );
}

function ClustersTab() {
  const { data, error, reload } = useGet<{ clusters: AdminCluster[] }>('/api/admin/clusters');
  const act = useAction(reload);
  useLiveEvent('resources', () => void reload());
  useLiveEvent('cluster', () => void reload());
  const toggle = (c: AdminCluster) =>
    act(
      `/api/admin/clusters/${encodeURIComponent(c.name)}/${c.drained ? 'undrain' : 'drain'}`,
      'The cluster could not be changed',
      {
        title: c.drained ? `${c.title} is open again` : `${c.title} is drained`,
        message: c.drained ? 'Users may start sessions there.' : 'No new sessions; running ones continue.',
      },
    );
  return (
    <div className="admin-clusters">
      <LoadError error={error} />
      {(data?.clusters ?? []).map((c) => (
        <section
          key={c.name}
          className="card"
          aria-labelledby={`admin-cluster-${c.name}`}
          data-cluster={c.name}
        >
          <div className="card-head">
            <h2 id={`admin-cluster-${c.name}`}>
              {c.title}{' '}
              <span className="muted small">
                ({c.name}, {c.backend})
              </span>
            </h2>
            <span className={`badge badge-${c.drained ? 'warn' : c.reachable ? 'ok' : 'bad'}`}>
              {c.drained ? 'drained' : c.reachable ? 'open' : 'unreachable'}
            </span>
          </div>
          {c.error && <p className="alert alert-bad">{c.error}</p>}
          <p>
            <button
              type="button"
              className={`btn btn-small ${c.drained ? 'btn-primary' : 'btn-danger-outline'}`}
              onClick={() => void toggle(c)}
            >
              {c.drained ? `Open ${c.title} for new sessions` : `Drain ${c.title}`}
            </button>{' '}
            <span className="muted small">
              {c.drainedByConfig ? 'drained in the configuration; ' : ''}
              {c.allowGroups.length > 0 ? `only for ${c.allowGroups.join(', ')}` : 'open to every user'}
            </span>
          </p>
          <div className="split">
            <div className="table-wrap">
              <table className="table table-compact">
                <caption>Queue ({plural(c.jobs.length, 'job')})</caption>
                <TableHead
                  columns={['Job', 'User', 'State', 'Partition', 'Nodes', num('Cores'), num('GPUs')]}
                />
                <tbody>
                  {c.jobs.map((j) => (
                    <tr key={j.jobId}>
                      <td>
                        {j.jobId}
                        <span className="sub">{j.session ? `session ${j.session}` : j.name}</span>
                      </td>
                      <td>{j.user}</td>
                      <td>
                        {j.state}
                        {j.reason && <span className="sub">{j.reason}</span>}
                      </td>
                      <td>{j.partition ?? '—'}</td>
                      <td>{j.nodes ?? '—'}</td>
                      <td className="num">{j.cpus ?? '—'}</td>
                      <td className="num">{j.gpus ?? 0}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <FreeNow title={c.title} table={c.free} />
          </div>
        </section>
      ))}
    </div>
  );
}

function AnnouncementsTab() {
  const { data, error, reload } = useGet<{
    announcements: (AnnouncementView & { active: boolean; author: string | null })[];
  }>('/api/admin/announcements');
  const { notify } = useToasts();
  const [text, setText] = useState('');
  const [level, setLevel] = useState('info');
  const [hours, setHours] = useState('');
  const [formError, setFormError] = useState<string | null>(null);
  const now = useNow(30_000);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    try {
      await post('/api/admin/announcements', { message: text, level, hours: hours || undefined });
      setText('');
      setHours('');
      setFormError(null);
      notify({ tone: 'ok', title: 'Announcement posted', message: 'Every signed-in user sees it now.' });
      await reload();
    } catch (err) {
      setFormError(errorText(err));
    }
  };
  const act = useAction(reload);
  const expire = (id: number) => act(`/api/admin/announcements/${id}/expire`, 'Could not take it down');
  const list = data?.announcements ?? [];
  return (
    <>
      <section className="card admin-announce" aria-labelledby="admin-announce-title">
        <h2 id="admin-announce-title">Post an announcement</h2>
        <form onSubmit={(e) => void submit(e)}>
          <div className="field">
            <label htmlFor="announce-text">Message</label>
            <textarea
              id="announce-text"
              value={text}
              maxLength={1000}
              required
              onChange={(e) => setText(e.target.value)}
              aria-invalid={formError ? true : undefined}
            />
          </div>
          <div className="admin-toolbar">
            <div className="field">
              <label htmlFor="announce-level">Level</label>
              <select id="announce-level" value={level} onChange={(e) => setLevel(e.target.value)}>
                <option value="info">Information</option>
                <option value="warning">Warning</option>
                <option value="critical">Critical</option>
              </select>
            </div>
            <div className="field">
              <label htmlFor="announce-hours">Hours shown (empty: until taken down)</label>
              <input
                id="announce-hours"
                type="number"
                min="0.1"
                step="0.1"
                value={hours}
                onChange={(e) => setHours(e.target.value)}
              />
            </div>
            <button type="submit" className="btn btn-primary">
              Post
            </button>
          </div>
          {formError && (
            <p className="field-error" role="alert">
              {formError}
            </p>
          )}
        </form>
      </section>
      <section className="card" aria-labelledby="admin-announcements-title">
        <h2 id="admin-announcements-title">Announcements</h2>
        <LoadError error={error} />
        {data && list.length === 0 && <p className="empty">None yet.</p>}
        {list.length > 0 && (
          <table className="table table-compact stack" aria-labelledby="admin-announcements-title">
            <TableHead columns={['Message', 'Level', 'Posted', 'Until', ACTIONS]} />
            <tbody>
              {list.map((a) => {
                const shown = a.active && (!a.expiresAt || a.expiresAt > now);
                return (
                  <tr key={a.id}>
                    <td>{a.message}</td>
                    <td data-label="Level">{a.level}</td>
                    <td className="nowrap" data-label="Posted">
                      {formatWhen(a.at, now)}
                      {a.author ? ` by ${a.author}` : ''}
                    </td>
                    <td className="nowrap" data-label="Until">
                      {a.expiresAt ? new Date(a.expiresAt).toLocaleString() : '—'}
                    </td>
                    <td className="actions">
                      {shown ? (
                        <button type="button" className="btn btn-small" onClick={() => void expire(a.id)}>
                          Take down
                        </button>
                      ) : (
                        <span className="muted">not shown</span>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </section>
    </>
  );
}

function AuditTab() {
  const { data, error } = useGet<{ entries: AuditEntry[] }>('/api/admin/audit?limit=200');
  const now = useNow(30_000);
  return (
    <section className="card" aria-labelledby="admin-audit-title">
      <h2 id="admin-audit-title">Audit log</h2>
      <LoadError error={error} />
      {(data?.entries ?? []).length > 0 && (
        <DataTable
          className="table-compact"
          labelledBy="admin-audit-title"
          columns={['When', 'Who', 'Action', 'Target', 'Address', 'Result']}
        >
          {data!.entries.map((e) => (
            <tr key={e.id}>
              <td className="nowrap">{formatWhen(e.at, now)}</td>
              <td>{e.actor ?? '—'}</td>
              <td>{e.action}</td>
              <td>{e.target ?? ''}</td>
              <td>{e.ip ?? ''}</td>
              <td>{e.ok ? 'ok' : 'refused'}</td>
            </tr>
          ))}
        </DataTable>
      )}
    </section>
  );
}
