// Jobs: my batch jobs (live from the shared poll), the submit form (a script file on the cluster or a
// pasted script), and at /jobs/<cluster>/<id> one job with its output (followed while it runs, paged
// when large), cancel, and a link from its working directory to a Jupyter session.
import { type FormEvent, useCallback, useEffect, useRef, useState } from 'react';
import { type BatchRequest, validateBatchRequest } from '../../api/forms.ts';
import type { JobOutputPage } from '../../api/jobs.ts';
import { ApiError, del, errorText, get, post, sentence } from '../api.ts';
import { AddTimeButton } from '../components/AddTimeButton.tsx';
import { Card } from '../components/Card.tsx';
import { ConfirmDialog } from '../components/ConfirmDialog.tsx';
import { DataTable } from '../components/DataTable.tsx';
import { ClusterOptions, Field, InputField, Options } from '../components/Field.tsx';
import { ListState, NoCluster } from '../components/LoadState.tsx';
import { useToasts } from '../components/Toasts.tsx';
import { formatWhen, plural } from '../format.ts';
import { useLoader, useNow } from '../hooks.ts';
import {
  type BatchClusterView,
  formatBytes,
  formatElapsed,
  formatLimit,
  formatMemory,
  isActiveJob,
  type JobDetail,
  type JobView,
  jobBadge,
  jobKey,
  mergeJob,
  pendingDetails,
  restartText,
  sourceLabel,
} from '../jobs-format.ts';
import { useLiveEvent, useLiveReconnect } from '../live.ts';
import { Link, usePath } from '../router.tsx';
import type { PageProps } from '../types.ts';
import './jobs.css';

/** Elapsed time as of `now` for jobs still running (the server's value is from when it answered). */
function withNow<T extends JobView>(j: T, now: number): T {
  if (j.finished || j.startedAt === null) return j;
  return { ...j, elapsedSeconds: Math.max(0, Math.round((now - j.startedAt) / 1000)) };
}

export function JobsPage(_props: PageProps) {
  const path = usePath();
  const m = /^\/jobs\/([^/]+)\/([^/]+)\/?$/.exec(path);
  if (m) return <JobDetailPage cluster={decodeURIComponent(m[1]!)} jobId={decodeURIComponent(m[2]!)} />;
  return <JobsDashboard />;
}

// ---- the list and the form ----------------------------------------------------------------------

function JobsDashboard() {
  const [jobs, setJobs] = useState<JobView[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [clusters, setClusters] = useState<BatchClusterView[] | null>(null);
  const [clustersError, setClustersError] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      const r = await get<{ jobs: JobView[] }>('/api/jobs?limit=200');
      setJobs(r.jobs);
      setError(null);
    } catch (e) {
      setError(errorText(e));
    }
  }, []);
  const loadClusters = useCallback(async () => {
    try {
      setClusters((await get<{ clusters: BatchClusterView[] }>('/api/jobs/clusters')).clusters);
      setClustersError(null);
    } catch (e) {
      setClustersError(errorText(e));
    }
  }, []);
  useEffect(() => {
    void load();
    void loadClusters();
  }, [load, loadClusters]);
  useLiveReconnect(() => void load());
  useLiveEvent<JobView>('job', (j) => {
    if (j && typeof j.jobId === 'string') setJobs((list) => mergeJob(list ?? [], j));
  });

  return (
    <div className="dashboard jobs">
      <h1 className="visually-hidden">Jobs</h1>
      <JobList jobs={jobs} error={error} />
      <NoCluster error={clustersError} clusters={clusters} title="Submit a job">
        <p className="empty">No cluster open to your account runs batch jobs.</p>
      </NoCluster>
      {clusters !== null && clusters.length > 0 && (
        <SubmitJobForm clusters={clusters} onSubmitted={(j) => setJobs((list) => mergeJob(list ?? [], j))} />
      )}
    </div>
  );
}

function JobList({ jobs, error }: { jobs: JobView[] | null; error: string | null }) {
  const now = useNow(5_000);
  const active = (jobs ?? []).filter(isActiveJob);
  const finished = (jobs ?? []).filter((j) => !isActiveJob(j));
  return (
    <Card
      titleId="my-jobs-title"
      title="My jobs"
      aside={jobs !== null && <span className="muted">{active.length} active</span>}
    >
      <ListState what="Your jobs" error={error} items={jobs}>
        No jobs yet. Submit one with the form below.
      </ListState>
      {active.length > 0 && <JobTable jobs={active} now={now} label="Active jobs" />}
      {finished.length > 0 && (
        <details className="recent" open={active.length === 0}>
          <summary>Finished ({finished.length})</summary>
          <JobTable jobs={finished} now={now} label="Finished jobs" />
        </details>
      )}
    </Card>
  );
}

function JobTable({ jobs, now, label }: { jobs: JobView[]; now: number; label: string }) {
  return (
    <DataTable
      className="jobs-table stack"
      caption={label}
      columns={['Job', 'State', 'Time', 'Nodes', 'Submitted']}
    >
      {jobs.map((j0) => {
        const j = withNow(j0, now);
        const badge = jobBadge(j.displayState);
        const details = pendingDetails(j, now);
        return (
          <tr key={jobKey(j)} data-job={j.jobId} data-state={j.state}>
            <td className="col-session">
              <Link
                href={`/jobs/${encodeURIComponent(j.cluster)}/${encodeURIComponent(j.jobId)}`}
                className="strong"
              >
                {j.name || `job ${j.jobId}`}
              </Link>
              <span className="sub">
                job {j.jobId} · {j.cluster}
                {j.partition ? ` · ${j.partition}` : ''}
              </span>
            </td>
            <td data-label="State">
              <span className={`badge badge-${badge.tone}${j.state === 'pending' ? ' badge-busy' : ''}`}>
                {badge.label}
              </span>
              {details.length > 0 && <span className="sub">{details.join(' · ')}</span>}
              {restartText(j) && (
                <span className="sub" data-restarts={j.restarts}>
                  {restartText(j)}
                </span>
              )}
              {j.finished && j.exitCode !== null && j.state !== 'cancelled' && (
                <span className="sub" data-exit={j.exitCode}>
                  exit code {j.exitCode}
                </span>
              )}
            </td>
            <td className="nowrap" data-label="Time">
              {formatElapsed(j)}
            </td>
            <td data-label="Nodes">{j.nodes ?? <span className="muted">—</span>}</td>
            <td className="nowrap" data-label="Submitted">
              {formatWhen(j.submittedAt, now)}
            </td>
          </tr>
        );
      })}
    </DataTable>
  );
}

interface FormValues {
  cluster: string;
  source: 'path' | 'text';
  scriptPath: string;
  script: string;
  jobName: string;
  partition: string;
  account: string;
  cores: string;
  memoryGb: string;
  gpus: string;
  hours: string;
  workDir: string;
}

const EMPTY: Omit<FormValues, 'cluster'> = {
  source: 'path',
  scriptPath: '',
  script:
    '#!/bin/bash\n#SBATCH --job-name=my-job\n#SBATCH --time=01:00:00\n\necho "Hello from $(hostname)"\n',
  jobName: '',
  partition: '',
  account: '',
  cores: '',
  memoryGb: '',
  gpus: '',
  hours: '',
  workDir: '',
};

function toRequest(v: FormValues): BatchRequest {
  const num = (s: string) => (s.trim() === '' ? undefined : Number(s.trim()));
  const text = (s: string) => (s.trim() === '' ? undefined : s.trim());
  const req: BatchRequest = { cluster: v.cluster, source: v.source };
  if (v.source === 'path') req.scriptPath = v.scriptPath.trim();
  else req.script = v.script;
  const opt = {
    jobName: text(v.jobName),
    partition: text(v.partition),
    account: text(v.account),
    cores: num(v.cores),
    memoryGb: num(v.memoryGb),
    gpus: num(v.gpus),
    hours: num(v.hours),
    workDir: text(v.workDir),
  };
  for (const [k, val] of Object.entries(opt))
    if (val !== undefined) (req as unknown as Record<string, unknown>)[k] = val;
  return req;
}

type Errors = Partial<Record<keyof FormValues, string>>;

/** Where the script comes from, as the form offers it. */
const SOURCES: [FormValues['source'], string][] = [
  ['path', 'A file on the cluster'],
  ['text', 'Paste a script'],
];

function byField(list: { field: string; message: string }[]): { fields: Errors; other: string[] } {
  const fields: Errors = {};
  const other: string[] = [];
  for (const e of list) {
    if (e.field in EMPTY || e.field === 'cluster') {
      const k = e.field as keyof FormValues;
      if (!fields[k]) fields[k] = e.message;
    } else other.push(e.message);
  }
  return { fields, other };
}

function SubmitJobForm({
  clusters,
  onSubmitted,
}: {
  clusters: BatchClusterView[];
  onSubmitted(j: JobView): void;
}) {
  const [v, setV] = useState<FormValues>(() => ({ cluster: clusters[0]!.name, ...EMPTY }));
  const [errors, setErrors] = useState<Errors>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const { notify } = useToasts();
  const cluster = clusters.find((c) => c.name === v.cluster) ?? clusters[0]!;
  const l = cluster.limits;

  const set = (k: keyof FormValues, value: string) => {
    setV((old) => ({ ...old, [k]: value }));
    if (errors[k]) setErrors((old) => ({ ...old, [k]: undefined }));
  };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (busy) return;
    const req = toRequest(v);
    const { fields, other } = byField(validateBatchRequest(req, l));
    setErrors(fields);
    if (Object.keys(fields).length > 0 || other.length > 0) {
      setFormError(other.length > 0 ? other.join(' ') : 'Please correct the fields marked below.');
      return;
    }
    setFormError(null);
    setBusy(true);
    try {
      const r = await post<{ job: JobView }>('/api/jobs', req);
      onSubmitted(r.job);
      notify({
        tone: 'ok',
        title: `Job ${r.job.jobId} submitted`,
        message: `On ${cluster.title}; follow it under My jobs.`,
        action: {
          label: 'Open',
          href: `/jobs/${encodeURIComponent(r.job.cluster)}/${encodeURIComponent(r.job.jobId)}`,
        },
      });
    } catch (err) {
      if (err instanceof ApiError && err.errors.length > 0) {
        const { fields: f, other: o } = byField(err.errors);
        setErrors(f);
        setFormError(o.length > 0 ? o.join(' ') : 'The job was not submitted; see the fields marked below.');
      } else setFormError(`The job was not submitted: ${errorText(err)}`);
    } finally {
      setBusy(false);
    }
  };

  /** A field for a whole number from `wholeFrom` (cores, GPUs), or without it for any amount from 0. */
  // What an InputField of the form takes from the form's state: its name, error, value and onChange.
  const bound = (k: Exclude<keyof FormValues, 'source'>) => ({
    name: k,
    error: errors[k],
    value: v[k],
    onChange: (e: { target: { value: string } }) => set(k, e.target.value),
  });

  const numberField = (k: 'cores' | 'memoryGb' | 'gpus' | 'hours', label: string, wholeFrom?: number) => (
    <InputField
      {...bound(k)}
      label={label}
      type="number"
      min={wholeFrom ?? 0}
      step={wholeFrom === undefined ? 'any' : undefined}
      inputMode={wholeFrom === undefined ? undefined : 'numeric'}
    />
  );

  const partitions = l.partitions ?? [];
  return (
    <section className="card" aria-labelledby="submit-job-title">
      <div className="card-head">
        <h2 id="submit-job-title">Submit a job</h2>
        {clusters.length === 1 && <span className="muted">{cluster.title}</span>}
      </div>
      {cluster.accessRefused && (
        <p className="alert alert-warn" data-testid="access-refused">
          {cluster.accessRefused}
        </p>
      )}
      {formError && (
        <p className="alert alert-bad" role="alert">
          {formError}
        </p>
      )}
      <form className="form" onSubmit={submit} noValidate aria-labelledby="submit-job-title">
        <div className="form-grid">
          {clusters.length > 1 && (
            <Field name="cluster" label="Cluster" error={errors.cluster} className="span-4">
              {(p) => (
                <select {...p} value={v.cluster} onChange={(e) => set('cluster', e.target.value)}>
                  <ClusterOptions clusters={clusters} />
                </select>
              )}
            </Field>
          )}
          <fieldset className="choice span-4">
            <legend>Script</legend>
            <div className="segmented">
              {SOURCES.map(([source, text]) => (
                <label key={source} className={v.source === source ? 'on' : ''}>
                  <input
                    type="radio"
                    name="source"
                    value={source}
                    checked={v.source === source}
                    onChange={() => set('source', source)}
                  />
                  {text}
                </label>
              ))}
            </div>
          </fieldset>
          {v.source === 'path' ? (
            <InputField
              {...bound('scriptPath')}
              label="Script path"
              className="span-4"
              hint="The full path on the cluster. It is opened with your own permissions."
              type="text"
              spellCheck={false}
              placeholder="/home/you/project/job.sh"
            />
          ) : (
            <Field
              name="script"
              label="Script"
              error={errors.script}
              className="span-4"
              hint="Starts with #! and an interpreter; #SBATCH lines are honoured. At most 256 KiB."
            >
              {(p) => (
                <textarea
                  {...p}
                  className="script"
                  rows={10}
                  spellCheck={false}
                  value={v.script}
                  onChange={(e) => set('script', e.target.value)}
                />
              )}
            </Field>
          )}
          <p className="span-4 muted small form-note">
            Leave an option empty and the script's <code>#SBATCH</code> lines (or the cluster's defaults)
            decide; a value here overrides them.
          </p>
          <InputField {...bound('jobName')} label="Job name" className="span-2" type="text" />
          <InputField
            {...bound('workDir')}
            label="Working directory"
            className="span-2"
            hint={v.source === 'path' ? "Default: the script's directory" : 'Default: your home directory'}
            type="text"
            spellCheck={false}
          />
          {partitions.length > 0 && (
            <Field name="partition" label="Partition" error={errors.partition}>
              {(p) => (
                <select {...p} value={v.partition} onChange={(e) => set('partition', e.target.value)}>
                  <Options
                    empty={`From the script${cluster.defaultPartition ? ` (else ${cluster.defaultPartition})` : ''}`}
                    values={partitions}
                  />
                </select>
              )}
            </Field>
          )}
          {l.accounts && l.accounts.length > 0 && (
            <Field name="account" label="Account" error={errors.account}>
              {(p) => (
                <select {...p} value={v.account} onChange={(e) => set('account', e.target.value)}>
                  <Options empty="From the script or default" values={l.accounts!} />
                </select>
              )}
            </Field>
          )}
          {numberField('cores', 'Cores', 1)}
          {numberField('memoryGb', 'Memory (GB)')}
          {(l.maxGpus ?? 0) > 0 && numberField('gpus', 'GPUs', 0)}
          {numberField('hours', 'Time limit (hours)')}
        </div>
        <div className="form-actions">
          <button type="submit" className="btn btn-primary" disabled={busy || !!cluster.accessRefused}>
            {busy ? 'Submitting…' : 'Submit job'}
          </button>
          {cluster.mail && <span className="muted small">E-mail follows your notification settings.</span>}
        </div>
      </form>
    </section>
  );
}

// ---- one job ------------------------------------------------------------------------------------

function JobDetailPage({ cluster, jobId }: { cluster: string; jobId: string }) {
  const [job, setJob] = useState<JobDetail | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [cancelling, setCancelling] = useState(false);
  const { notify } = useToasts();
  const now = useNow(5_000);
  const url = `/api/jobs/${encodeURIComponent(cluster)}/${encodeURIComponent(jobId)}`;

  const load = useCallback(async () => {
    try {
      setJob((await get<{ job: JobDetail }>(url)).job);
      setError(null);
    } catch (e) {
      setError(
        e instanceof ApiError && e.status === 404 ? 'There is no such job among yours.' : errorText(e),
      );
    }
  }, [url]);
  useEffect(() => {
    void load();
  }, [load]);
  useLiveReconnect(() => void load());
  useLiveEvent<JobView>('job', (j) => {
    if (j?.cluster === cluster && j.jobId === jobId) {
      setJob((old) => (old ? { ...old, ...j } : old));
      // The link to a session may have changed with the working directory: ask again once it is known.
      if (j.finished || j.state === 'running') void load();
    }
  });

  const cancel = async () => {
    setCancelling(false);
    try {
      const r = await del<{ job: JobView }>(url);
      setJob((old) => (old ? { ...old, ...r.job } : old));
      notify({ tone: 'info', title: `Job ${jobId} is being cancelled` });
    } catch (e) {
      notify({ tone: 'bad', title: `Job ${jobId} could not be cancelled`, message: errorText(e) });
    }
  };

  if (error)
    return (
      <div className="dashboard jobs">
        <p>
          <Link href="/jobs">← My jobs</Link>
        </p>
        <p className="alert alert-bad" role="alert">
          {error}
        </p>
      </div>
    );
  if (!job) return <p className="muted">Loading…</p>;
  const j = withNow(job, now);
  const badge = jobBadge(j.displayState);
  const details = pendingDetails(j, now);
  return (
    <div className="dashboard jobs">
      <p className="back">
        <Link href="/jobs">← My jobs</Link>
      </p>
      <section className="card" aria-labelledby="job-title">
        <div className="card-head">
          <h1 id="job-title" className="job-title">
            {j.name || `Job ${j.jobId}`} <span className="muted">job {j.jobId}</span>
          </h1>
          <div className="actions">
            <AddTimeButton<{ job: JobView }>
              most={j.addTimeMinutes ?? null}
              title={`job ${j.jobId}`}
              url={`${url}/extend`}
              onDone={(r) => setJob((old) => (old ? { ...old, ...r.job } : old))}
            />
            {isActiveJob(j) && (
              <button
                type="button"
                className="btn btn-small btn-danger-outline"
                onClick={() => setCancelling(true)}
              >
                Cancel job
              </button>
            )}
          </div>
        </div>
        <dl className="facts job-facts">
          <dt>State</dt>
          <dd data-state={j.state}>
            <span className={`badge badge-${badge.tone}`}>{badge.label}</span>
            {details.length > 0 && <span className="muted"> {details.join(' · ')}</span>}
            {restartText(j) && (
              <span className="muted" data-restarts={j.restarts}>
                {' '}
                {restartText(j)}
              </span>
            )}
            {j.finished && j.exitCode !== null && (
              <span className="muted">
                {' '}
                exit code <strong data-exit={j.exitCode}>{j.exitCode}</strong>
                {j.exitSource === 'sacct' ? ' (accounting)' : ''}
              </span>
            )}
          </dd>
          <dt>Cluster</dt>
          <dd>
            {j.cluster}
            {j.partition ? ` · partition ${j.partition}` : ''}
            {j.account ? ` · account ${j.account}` : ''}
          </dd>
          <dt>Resources</dt>
          <dd>
            {[
              j.cpus ? plural(j.cpus, 'core') : null,
              j.memoryMb ? formatMemory(j.memoryMb) : null,
              j.gpus ? plural(j.gpus, 'GPU') : null,
            ]
              .filter(Boolean)
              .join(' · ') || '—'}
            {j.nodes ? ` on ${j.nodes}` : ''}
          </dd>
          <dt>Time</dt>
          <dd>
            {formatElapsed(j)}
            {j.finished || j.elapsedSeconds === null ? ` · limit ${formatLimit(j.timeLimitMinutes)}` : ''}
          </dd>
          <dt>Submitted</dt>
          <dd>
            {formatWhen(j.submittedAt, now)} · {sourceLabel(j.source)}
            {j.scriptPath ? (
              <>
                {' '}
                <code>{j.scriptPath}</code>
              </>
            ) : null}
          </dd>
          {j.startedAt !== null && (
            <>
              <dt>Started</dt>
              <dd>{formatWhen(j.startedAt, now)}</dd>
            </>
          )}
          {j.endedAt !== null && (
            <>
              <dt>Ended</dt>
              <dd>{formatWhen(j.endedAt, now)}</dd>
            </>
          )}
          <dt>Working directory</dt>
          <dd>
            {j.workDir ? <code>{j.workDir}</code> : <span className="muted">not known yet</span>}
            <SessionLink job={j} />
          </dd>
        </dl>
      </section>
      <OutputViewer job={j} />
      {cancelling && (
        <ConfirmDialog
          title={`Cancel job ${j.jobId}?`}
          confirmLabel="Cancel job"
          cancelLabel="Keep it"
          danger
          onConfirm={() => void cancel()}
          onCancel={() => setCancelling(false)}
        >
          <p>Slurm stops the job; what it wrote so far stays in its output files.</p>
        </ConfirmDialog>
      )}
    </div>
  );
}

function SessionLink({ job }: { job: JobDetail }) {
  const [busy, setBusy] = useState(false);
  const { notify } = useToasts();
  const links = job.links;
  if (!links || !job.workDir) return null;
  if (links.browse) {
    return (
      <div className="job-link">
        <a className="btn btn-small btn-primary" href={links.browse.url} target="_blank" rel="noopener">
          Open in Jupyter
        </a>{' '}
        <span className="muted small">in your session {links.browse.sessionName}</span>
      </div>
    );
  }
  const start = async () => {
    setBusy(true);
    try {
      const c = (
        await get<{ clusters: { name: string; defaultHours: number; limits: { maxMemoryGb: number } }[] }>(
          '/api/clusters',
        )
      ).clusters.find((x) => x.name === job.cluster);
      await post('/api/sessions', {
        cluster: job.cluster,
        app: 'jupyter',
        cores: 1,
        memoryGb: Math.min(4, c?.limits.maxMemoryGb ?? 4),
        hours: c?.defaultHours ?? 2,
        label: `Job ${job.jobId}`,
      });
      notify({
        tone: 'ok',
        title: 'Jupyter session requested',
        message: 'The link to this directory appears here once it runs.',
        action: { label: 'My sessions', href: '/' },
      });
    } catch (e) {
      notify({ tone: 'bad', title: 'The session was not started', message: errorText(e) });
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="job-link">
      <span className="muted small">{links.why ? `${sentence(links.why)} ` : ''}</span>
      <button type="button" className="btn btn-small" disabled={busy} onClick={() => void start()}>
        Start Jupyter here
      </button>{' '}
      <a className="small" href={links.newSession}>
        or choose the resources
      </a>
    </div>
  );
}

// ---- output ---------------------------------------------------------------------------------------

type OutPage = JobOutputPage;

const PAGE = 64 * 1024;

/** The view shows the end of the text (so new lines keep it scrolled down). */
function atBottom(el: HTMLElement | null): boolean {
  return !el || el.scrollHeight - el.scrollTop - el.clientHeight < 40;
}

function scrollDown(el: HTMLElement | null): void {
  requestAnimationFrame(() => {
    if (el) el.scrollTop = el.scrollHeight;
  });
}
/** At most this much text is kept on the page (older text is dropped while following). */
const KEEP = 2 * 1024 * 1024;

function OutputViewer({ job }: { job: JobView }) {
  const same = job.stdoutPath !== null && job.stdoutPath === job.stderrPath;
  const [stream, setStream] = useState<'stdout' | 'stderr'>('stdout');
  return (
    <section className="card" aria-labelledby="output-title">
      <div className="card-head">
        <h2 id="output-title">Output</h2>
        {!same && (
          <div className="segmented" role="tablist" aria-label="Stream">
            {(['stdout', 'stderr'] as const).map((s) => (
              <button
                key={s}
                type="button"
                role="tab"
                aria-selected={stream === s}
                className={stream === s ? 'on' : ''}
                onClick={() => setStream(s)}
              >
                {s === 'stdout' ? 'Standard output' : 'Standard error'}
              </button>
            ))}
          </div>
        )}
      </div>
      <OutputStream key={`${jobKey(job)}:${stream}`} job={job} stream={stream} />
    </section>
  );
}

function OutputStream({ job, stream }: { job: JobView; stream: 'stdout' | 'stderr' }) {
  // The text shown and the byte offset of its start in the file.
  const [buf, setBuf] = useState({ text: '', start: 0 });
  const { text, start } = buf;
  const [next, setNext] = useState<number | null>(null);
  const [info, setInfo] = useState<{
    size: number;
    path: string | null;
    message?: string;
    exists: boolean;
  } | null>(null);
  const [follow, setFollow] = useState(true);
  const pre = useRef<HTMLPreElement>(null);
  const nextRef = useRef<number | null>(null);
  const base = `/api/jobs/${encodeURIComponent(job.cluster)}/${encodeURIComponent(job.jobId)}/output?stream=${stream}`;
  const active = isActiveJob(job);

  // First look: the end of the file.
  const {
    error,
    setError,
    reload: loadEnd,
  } = useLoader(
    useCallback(async () => {
      const p = await get<OutPage>(`${base}&from=end&limit=${PAGE}`);
      setBuf({ text: p.data, start: p.offset });
      setNext(p.nextOffset);
      nextRef.current = p.nextOffset;
      setInfo({ size: p.size, path: p.path, message: p.message, exists: p.exists });
      scrollDown(pre.current);
    }, [base]),
  );

  // Following: ask for what was written since, every 2 s while the job runs (and once after it ends).
  const poll = useCallback(async () => {
    const from = nextRef.current;
    if (from === null) return;
    try {
      const p = await get<OutPage>(`${base}&offset=${from}&limit=${PAGE}`);
      setInfo({ size: p.size, path: p.path, message: p.message, exists: p.exists });
      if (p.nextOffset < from) {
        // The file shrank (rewritten): start over from its end.
        void loadEnd();
        return;
      }
      if (p.data) {
        const stick = atBottom(pre.current);
        setBuf((b) => {
          const all = b.text + p.data;
          if (all.length <= KEEP) return { text: all, start: b.start };
          const cut = all.length - KEEP;
          return {
            text: all.slice(cut),
            start: b.start + new TextEncoder().encode(all.slice(0, cut)).length,
          };
        });
        if (stick) scrollDown(pre.current);
      }
      nextRef.current = p.nextOffset;
      setNext(p.nextOffset);
      setError(null);
    } catch (e) {
      setError(errorText(e));
    }
  }, [base, loadEnd, setError]);
  useEffect(() => {
    if (!follow || !active) return;
    const t = setInterval(() => void poll(), 2_000);
    return () => clearInterval(t);
  }, [follow, active, poll]);
  const wasActive = useRef(active);
  useEffect(() => {
    if (wasActive.current && !active) void poll();
    wasActive.current = active;
  }, [active, poll]);

  const earlier = async () => {
    const from = Math.max(0, start - PAGE);
    try {
      const p = await get<OutPage>(`${base}&offset=${from}&limit=${start - from}`);
      const el = pre.current;
      const before = el ? el.scrollHeight - el.scrollTop : 0;
      setBuf((b) => ({ text: p.data + b.text, start: p.offset }));
      requestAnimationFrame(() => {
        if (el) el.scrollTop = el.scrollHeight - before;
      });
    } catch (e) {
      setError(errorText(e));
    }
  };

  const size = info?.size ?? 0;
  return (
    <div className="output" data-stream={stream}>
      <div className="output-bar">
        <span className="muted small">
          {info?.path ? <code>{info.path}</code> : null}
          {info?.exists ? ` · ${formatBytes(size)}` : ''}
        </span>
        <span className="output-actions">
          {start > 0 && (
            <button type="button" className="btn btn-small" onClick={() => void earlier()}>
              Show earlier
            </button>
          )}
          {active && (
            <label className="check small">
              <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} /> Follow
            </label>
          )}
          <button type="button" className="btn btn-small" onClick={() => void loadEnd()}>
            Reload
          </button>
        </span>
      </div>
      {error && (
        <p className="alert alert-bad" role="alert">
          {error}
        </p>
      )}
      {info?.message && !text && <p className="empty">{sentence(info.message)}</p>}
      <pre ref={pre} className="output-text" data-next={next ?? ''}>
        {start > 0 && (
          <span className="muted">
            … {start.toLocaleString('en-GB')} earlier bytes …{'\n'}
          </span>
        )}
        {text}
      </pre>
    </div>
  );
}
