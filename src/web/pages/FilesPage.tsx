// Files: the folders the site configures (home, project, scratch), worked on as the signed-in user by
// the gateway's file helper. /files?path=<folder> lists a folder (sortable, hidden files on request),
// uploads (several files, each with its progress bar, within the site's limit), downloads files and
// folders (as .tar.gz), creates folders, renames, moves and deletes (confirmed); /files?edit=<file>
// opens a text file in the editor (CodeMirror, loaded on demand), whose save is refused when the file
// changed on disk since it was opened. From a folder: open a terminal there or open it in Jupyter
// (a running session, or the form); from a script: submit it as a batch job.
import {
  type DragEvent,
  type FormEvent,
  type ReactNode,
  useCallback,
  useEffect,
  useId,
  useRef,
  useState,
} from 'react';
import { ApiError, csrfHeaders, del, errorText, get, post, sentence } from '../api.ts';
import { ConfirmDialog, Modal } from '../components/ConfirmDialog.tsx';
import { DataTable } from '../components/DataTable.tsx';
import { ClusterOptions } from '../components/Field.tsx';
import { RowButton } from '../components/RowButton.tsx';
import { useToasts } from '../components/Toasts.tsx';
import {
  baseName,
  crumbs,
  type FileEntry,
  type FileRoot,
  isBatchScript,
  joinPath,
  jupyterPath,
  linkTarget,
  looksLikeText,
  parentOf,
  rootOf,
  type SortKey,
  type SortOrder,
  sortEntries,
  terminalHere,
} from '../files/model.ts';
import { formatWhen } from '../format.ts';
import { useLoader } from '../hooks.ts';
import { type BatchClusterView, formatBytes } from '../jobs-format.ts';
import { Link, navigate, useSearch } from '../router.tsx';
import { useSessions } from '../sessions-store.tsx';
import type { PageProps, SessionView } from '../types.ts';
import './files.css';

interface RootsAnswer {
  available: boolean;
  why?: string | null;
  home?: string;
  roots: FileRoot[];
  clusters: { name: string; title: string; filesHere: boolean }[];
  limits: { maxUploadBytes: number; maxEditBytes: number } | null;
}

interface Listing {
  path: string;
  entries: FileEntry[];
  truncated: boolean;
}

const filesUrl = (path: string) => `/files?path=${encodeURIComponent(path)}`;
const editUrl = (path: string) => `/files?edit=${encodeURIComponent(path)}`;
const downloadUrl = (path: string) => `/api/files/download?path=${encodeURIComponent(path)}`;

export function FilesPage(_props: PageProps) {
  const search = useSearch();
  const [info, setInfo] = useState<RootsAnswer | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    get<RootsAnswer>('/api/files/roots').then(setInfo, (e) => setError(errorText(e)));
  }, []);

  if (error)
    return (
      <p className="alert alert-bad" role="alert">
        Your folders could not be loaded: {error}
      </p>
    );
  if (!info) return <p className="muted">Loading…</p>;
  if (!info.available)
    return (
      <section className="card">
        <h1>Files</h1>
        <p>{info.why ? sentence(info.why) : 'The Files page is not available on this site.'}</p>
      </section>
    );
  const edit = search.get('edit');
  if (edit) return <EditorPanel info={info} path={edit} />;
  const first = info.roots.find((r) => r.ok) ?? info.roots[0];
  const path = search.get('path') ?? first?.path ?? '/';
  return <Browser info={info} path={path} />;
}

// ---- the folder view -------------------------------------------------------------------------------

interface Upload {
  id: number;
  name: string;
  size: number;
  loaded: number;
  state: 'sending' | 'done' | 'failed';
  error?: string;
}

type Dialog =
  | { kind: 'mkdir' }
  | { kind: 'rename'; entry: FileEntry }
  | { kind: 'move'; entry: FileEntry }
  | { kind: 'delete'; entry: FileEntry }
  | { kind: 'submit'; entry: FileEntry; clusters: BatchClusterView[] };

function Browser({ info, path }: { info: RootsAnswer; path: string }) {
  const { notify } = useToasts();
  const { sessions } = useSessions();
  const [listing, setListing] = useState<Listing | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [order, setOrder] = useState<SortOrder>({ key: 'name', dir: 'asc' });
  const [showHidden, setShowHidden] = useState(false);
  const [uploads, setUploads] = useState<Upload[]>([]);
  const [dialog, setDialog] = useState<Dialog | null>(null);
  const [dragging, setDragging] = useState(false);
  const uploadId = useRef(1);
  const fileInput = useRef<HTMLInputElement>(null);
  const root = rootOf(path, info.roots);

  const load = useCallback(async () => {
    try {
      setListing(await get<Listing>(`/api/files/list?path=${encodeURIComponent(path)}`));
      setError(null);
    } catch (e) {
      setListing(null);
      setError(errorText(e));
    }
  }, [path]);

  useEffect(() => {
    setListing(null);
    void load();
  }, [load]);

  const act = async (what: () => Promise<unknown>, done: string) => {
    try {
      await what();
      notify({ tone: 'ok', title: done });
      setDialog(null);
      await load();
    } catch (e) {
      notify({ tone: 'bad', title: 'Not done', message: errorText(e) });
    }
  };

  const upload = (files: FileList | File[]) => {
    const max = info.limits?.maxUploadBytes ?? Number.POSITIVE_INFINITY;
    for (const file of Array.from(files)) {
      const id = uploadId.current++;
      const item: Upload = { id, name: file.name, size: file.size, loaded: 0, state: 'sending' };
      if (file.size > max) {
        item.state = 'failed';
        item.error = `${formatBytes(file.size)}: over this site's limit of ${formatBytes(max)}`;
        setUploads((u) => [...u, item]);
        continue;
      }
      setUploads((u) => [...u, item]);
      const set = (patch: Partial<Upload>) =>
        setUploads((u) => u.map((x) => (x.id === id ? { ...x, ...patch } : x)));
      // XMLHttpRequest, not fetch: only it reports an upload's progress. The body is the file itself,
      // streamed by the browser.
      const xhr = new XMLHttpRequest();
      xhr.open(
        'PUT',
        `/api/files/upload?path=${encodeURIComponent(path)}&name=${encodeURIComponent(file.name)}`,
      );
      for (const [k, v] of Object.entries(csrfHeaders())) xhr.setRequestHeader(k, v);
      xhr.setRequestHeader('content-type', 'application/octet-stream');
      xhr.upload.onprogress = (e) => set({ loaded: e.loaded });
      xhr.onload = () => {
        if (xhr.status >= 200 && xhr.status < 300) {
          set({ loaded: file.size, state: 'done' });
          void load();
        } else {
          let msg = `HTTP ${xhr.status}`;
          try {
            msg = (JSON.parse(xhr.responseText) as { error?: string }).error ?? msg;
          } catch {
            // not JSON
          }
          set({ state: 'failed', error: sentence(msg) });
        }
      };
      xhr.onerror = () => set({ state: 'failed', error: 'The connection was lost.' });
      xhr.send(file);
    }
  };

  const drop = (e: DragEvent) => {
    e.preventDefault();
    setDragging(false);
    if (e.dataTransfer.files.length > 0) upload(e.dataTransfer.files);
  };

  const submitScript = async (entry: FileEntry) => {
    const here = new Set(info.clusters.filter((c) => c.filesHere).map((c) => c.name));
    try {
      const clusters = (await get<{ clusters: BatchClusterView[] }>('/api/jobs/clusters')).clusters.filter(
        (c) => here.has(c.name),
      );
      if (clusters.length === 0) {
        notify({ tone: 'bad', title: 'No cluster takes batch jobs from these folders' });
        return;
      }
      setDialog({ kind: 'submit', entry, clusters });
    } catch (e) {
      notify({ tone: 'bad', title: 'Not done', message: errorText(e) });
    }
  };

  const sortBy = (key: SortKey) =>
    setOrder((o) => ({
      key,
      dir: o.key === key && o.dir === 'asc' ? 'desc' : key === 'mtime' ? 'desc' : 'asc',
    }));

  const elsewhere = info.clusters.filter((c) => !c.filesHere);
  const running = (sessions ?? []).filter((s) => s.state === 'running' && here(info, s.cluster));
  const terminal = terminalOf(running);
  const jupyter = running.find((s) => s.app === 'jupyter');
  const jupyterHere = jupyter && info.home ? jupyterPath(jupyter.url, info.home, path, true) : null;
  const entries = listing ? sortEntries(listing.entries, order, showHidden) : [];
  const hiddenCount = listing ? listing.entries.filter((e) => e.name.startsWith('.')).length : 0;

  return (
    <div className="files">
      <h1 className="visually-hidden">Files</h1>
      {info.roots.length > 1 && (
        <nav className="roots" aria-label="Folders">
          {info.roots.map((r) => (
            <Link
              key={r.id}
              href={filesUrl(r.path)}
              className={`btn btn-small${root?.id === r.id ? ' btn-primary' : ''}`}
              aria-current={root?.id === r.id ? 'page' : undefined}
              title={r.ok ? r.path : r.error}
            >
              {r.name}
              {!r.ok && ' (missing)'}
            </Link>
          ))}
        </nav>
      )}
      {elsewhere.length > 0 && (
        <p className="alert alert-warn">
          These are the files of this gateway's host. {elsewhere.map((c) => c.title).join(', ')}{' '}
          {elsewhere.length === 1 ? 'has' : 'have'} file systems of {elsewhere.length === 1 ? 'its' : 'their'}{' '}
          own, not shown here.
        </p>
      )}
      <section
        className={`card files-card${dragging ? ' dragging' : ''}`}
        aria-labelledby="files-title"
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={drop}
      >
        <div className="card-head files-head">
          <h2 id="files-title" className="crumbs">
            {root
              ? crumbs(path, root).map((c, i, all) => (
                  <span key={c.path}>
                    {i > 0 && <span className="sep">/</span>}
                    {i === all.length - 1 ? (
                      <span aria-current="location">{c.label}</span>
                    ) : (
                      <Link href={filesUrl(c.path)}>{c.label}</Link>
                    )}
                  </span>
                ))
              : path}
          </h2>
        </div>
        <div className="toolbar">
          <button type="button" className="btn btn-small" onClick={() => fileInput.current?.click()}>
            Upload files
          </button>
          <input
            ref={fileInput}
            type="file"
            multiple
            hidden
            aria-label="Files to upload"
            onChange={(e) => {
              if (e.target.files) upload(e.target.files);
              e.target.value = '';
            }}
          />
          <button type="button" className="btn btn-small" onClick={() => setDialog({ kind: 'mkdir' })}>
            New folder
          </button>
          <a className="btn btn-small" href={downloadUrl(path)} download>
            Download folder
          </a>
          {terminal ? (
            <a className="btn btn-small" href={terminalHere(terminal, path)} target="_blank" rel="noopener">
              Open a terminal here
            </a>
          ) : (
            <Link className="btn btn-small" href="/?app=terminal" title="Start a terminal session first">
              Open a terminal here…
            </Link>
          )}
          {jupyterHere ? (
            <a className="btn btn-small" href={jupyterHere} target="_blank" rel="noopener">
              Open in Jupyter
            </a>
          ) : (
            <Link className="btn btn-small" href="/?app=jupyter" title="Start a Jupyter session first">
              Open in Jupyter…
            </Link>
          )}
          <label className="check">
            <input type="checkbox" checked={showHidden} onChange={(e) => setShowHidden(e.target.checked)} />{' '}
            Show hidden files{hiddenCount > 0 && !showHidden ? ` (${hiddenCount})` : ''}
          </label>
        </div>
        {uploads.length > 0 && (
          <ul className="uploads" aria-label="Uploads">
            {uploads.map((u) => (
              <li key={u.id} data-upload={u.name} data-state={u.state}>
                <span className="upload-name">{u.name}</span>
                <progress
                  max={Math.max(1, u.size)}
                  value={u.state === 'done' ? Math.max(1, u.size) : u.loaded}
                  aria-label={`Upload of ${u.name}`}
                />
                <span className="muted">
                  {u.state === 'failed'
                    ? u.error
                    : u.state === 'done'
                      ? `${formatBytes(u.size)}, done`
                      : `${formatBytes(u.loaded)} of ${formatBytes(u.size)}`}
                </span>
              </li>
            ))}
            <li className="uploads-clear">
              <button
                type="button"
                className="btn btn-small"
                onClick={() => setUploads((u) => u.filter((x) => x.state === 'sending'))}
              >
                Clear finished
              </button>
            </li>
          </ul>
        )}
        {error && (
          <p className="alert alert-bad" role="alert">
            {error}
          </p>
        )}
        {listing === null && !error && <p className="muted">Loading…</p>}
        {listing && entries.length === 0 && <p className="empty">This folder is empty.</p>}
        {listing?.truncated && <p className="alert alert-warn">Only the first 20,000 entries are listed.</p>}
        {entries.length > 0 && (
          <DataTable
            className="stack files-table"
            labelledBy="files-title"
            head={
              <thead>
                <tr>
                  <SortHead label="Name" k="name" order={order} onSort={sortBy} />
                  <SortHead label="Size" k="size" order={order} onSort={sortBy} num />
                  <SortHead label="Modified" k="mtime" order={order} onSort={sortBy} />
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
            }
          >
            {entries.map((e) => (
              <EntryRow
                key={e.name}
                dir={path}
                entry={e}
                info={info}
                jupyter={jupyter}
                onDialog={setDialog}
                onSubmit={() => void submitScript(e)}
              />
            ))}
          </DataTable>
        )}
        <p className="muted files-foot">
          Drop files here or use Upload (up to {info.limits ? formatBytes(info.limits.maxUploadBytes) : '—'}{' '}
          each). Everything here is done as your own Unix account.
        </p>
      </section>
      {dialog?.kind === 'mkdir' && (
        <NameDialog
          title="New folder"
          label="Folder name"
          confirm="Create"
          initial=""
          onCancel={() => setDialog(null)}
          onSubmit={(name) => act(() => post('/api/files/mkdir', { path, name }), `Folder "${name}" created`)}
        />
      )}
      {dialog?.kind === 'rename' && (
        <NameDialog
          title={`Rename "${dialog.entry.name}"`}
          label="New name"
          confirm="Rename"
          initial={dialog.entry.name}
          onCancel={() => setDialog(null)}
          onSubmit={(name) =>
            act(
              () => post('/api/files/move', { path: joinPath(path, dialog.entry.name), name }),
              `Renamed to "${name}"`,
            )
          }
        />
      )}
      {dialog?.kind === 'move' && (
        <NameDialog
          title={`Move "${dialog.entry.name}"`}
          label="To the folder"
          confirm="Move"
          initial={path}
          onCancel={() => setDialog(null)}
          onSubmit={(to) =>
            act(
              () => post('/api/files/move', { path: joinPath(path, dialog.entry.name), to }),
              `Moved to ${to}`,
            )
          }
        />
      )}
      {dialog?.kind === 'delete' && (
        <ConfirmDialog
          title={`Delete "${dialog.entry.name}"?`}
          confirmLabel="Delete"
          danger
          onCancel={() => setDialog(null)}
          onConfirm={() =>
            void act(
              () => del(`/api/files?path=${encodeURIComponent(joinPath(path, dialog.entry.name))}`),
              `"${dialog.entry.name}" deleted`,
            )
          }
        >
          {dialog.entry.type === 'dir'
            ? 'The folder and everything in it will be deleted. This cannot be undone.'
            : 'The file will be deleted. This cannot be undone.'}
        </ConfirmDialog>
      )}
      {dialog?.kind === 'submit' && (
        <SubmitDialog
          script={joinPath(path, dialog.entry.name)}
          clusters={dialog.clusters}
          onCancel={() => setDialog(null)}
        />
      )}
    </div>
  );
}

function here(info: RootsAnswer, cluster: string): boolean {
  return info.clusters.find((c) => c.name === cluster)?.filesHere ?? false;
}

/** The address of a running terminal: a terminal session, or a session's extra terminal. */
function terminalOf(running: SessionView[]): string | null {
  for (const s of running) {
    if (s.app === 'terminal') return s.url;
    const extra = s.apps.find((a) => a.id === 'terminal');
    if (extra) return extra.url;
  }
  return null;
}

function SortHead({
  label,
  k,
  order,
  onSort,
  num,
}: {
  label: string;
  k: SortKey;
  order: SortOrder;
  onSort(k: SortKey): void;
  num?: boolean;
}) {
  const active = order.key === k;
  return (
    <th
      scope="col"
      className={num ? 'num' : undefined}
      aria-sort={active ? (order.dir === 'asc' ? 'ascending' : 'descending') : undefined}
    >
      <button type="button" className="sort" onClick={() => onSort(k)}>
        {label}
        <span aria-hidden="true">{active ? (order.dir === 'asc' ? ' ▲' : ' ▼') : ''}</span>
      </button>
    </th>
  );
}

function EntryRow({
  dir,
  entry: e,
  info,
  jupyter,
  onDialog,
  onSubmit,
}: {
  dir: string;
  entry: FileEntry;
  info: RootsAnswer;
  jupyter: SessionView | undefined;
  onDialog(d: Dialog): void;
  onSubmit(): void;
}) {
  const full = joinPath(dir, e.name);
  const target = e.type === 'link' && e.target ? linkTarget(dir, e.target) : null;
  const targetInRoots = target ? rootOf(target, info.roots) : undefined;
  const inJupyter =
    jupyter && info.home && e.type !== 'other' && e.type !== 'link'
      ? jupyterPath(jupyter.url, info.home, full, e.type === 'dir')
      : null;
  let name: ReactNode;
  if (e.type === 'dir') name = <Link href={filesUrl(full)}>{e.name}/</Link>;
  else if (e.type === 'file' && looksLikeText(e.name) && e.size <= (info.limits?.maxEditBytes ?? 0))
    name = <Link href={editUrl(full)}>{e.name}</Link>;
  else if (e.type === 'file')
    name = (
      <a href={downloadUrl(full)} download>
        {e.name}
      </a>
    );
  else name = <span>{e.name}</span>;
  return (
    <tr data-entry={e.name} data-type={e.type}>
      <th scope="row" className="file-name">
        <FileIcon type={e.type} />
        {name}
        {e.type === 'link' && (
          <span className="sub">
            link to{' '}
            {targetInRoots && target ? (
              <Link href={filesUrl(parentOf(target))}>{e.target}</Link>
            ) : (
              <code>{e.target}</code>
            )}
            {!targetInRoots && ' (outside your folders: not followed)'}
          </span>
        )}
      </th>
      <td className="num" data-label="Size">
        {e.type === 'file' ? formatBytes(e.size) : '—'}
      </td>
      <td className="nowrap" data-label="Modified">
        {e.mtime ? formatWhen(e.mtime) : '—'}
      </td>
      <td className="actions">
        {e.type === 'file' && (
          <a className="btn btn-small" href={downloadUrl(full)} download aria-label={`Download ${e.name}`}>
            Download
          </a>
        )}
        {e.type === 'dir' && (
          <a
            className="btn btn-small"
            href={downloadUrl(full)}
            download
            aria-label={`Download ${e.name} as an archive`}
          >
            Download
          </a>
        )}
        {e.type === 'file' && looksLikeText(e.name) && e.size <= (info.limits?.maxEditBytes ?? 0) && (
          <Link className="btn btn-small" href={editUrl(full)} aria-label={`Edit ${e.name}`}>
            Edit
          </Link>
        )}
        {e.type === 'file' && isBatchScript(e.name) && (
          <RowButton label={`Submit ${e.name} as a batch job`} onClick={onSubmit}>
            Submit as a job
          </RowButton>
        )}
        {inJupyter && (
          <a
            className="btn btn-small"
            href={inJupyter}
            target="_blank"
            rel="noopener"
            aria-label={`Open ${e.name} in Jupyter`}
          >
            Jupyter
          </a>
        )}
        <RowButton label={`Rename ${e.name}`} onClick={() => onDialog({ kind: 'rename', entry: e })}>
          Rename
        </RowButton>
        <RowButton label={`Move ${e.name}`} onClick={() => onDialog({ kind: 'move', entry: e })}>
          Move
        </RowButton>
        <RowButton danger label={`Delete ${e.name}`} onClick={() => onDialog({ kind: 'delete', entry: e })}>
          Delete
        </RowButton>
      </td>
    </tr>
  );
}

const ICONS: Record<FileEntry['type'], string> = {
  dir: 'M1.5 3.5h5l1.5 1.5h6.5v8.5h-13z',
  file: 'M3.5 1.5h6l3 3v10h-9z M9.5 1.5v3h3',
  link: 'M6.5 9.5l3-3 M5 7.5l-1.5 1.5a2.1 2.1 0 0 0 3 3l1.5-1.5 M11 8.5l1.5-1.5a2.1 2.1 0 0 0-3-3l-1.5 1.5',
  other: 'M4 8h8',
};

/** A small outline icon (drawn, not an emoji: not every system has an emoji font). */
function FileIcon({ type }: { type: FileEntry['type'] }) {
  return (
    <svg className={`ficon ficon-${type}`} viewBox="0 0 16 16" aria-hidden="true">
      <path d={ICONS[type]} fill="none" stroke="currentColor" strokeWidth="1.3" strokeLinejoin="round" />
    </svg>
  );
}

/** A modal with one text field (new folder, rename, move). */
function NameDialog({
  title,
  label,
  confirm,
  initial,
  onSubmit,
  onCancel,
}: {
  title: string;
  label: string;
  confirm: string;
  initial: string;
  onSubmit(value: string): Promise<void>;
  onCancel(): void;
}) {
  const id = useId();
  const [value, setValue] = useState(initial);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    try {
      await onSubmit(value);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal labelledBy={`${id}-t`} onCancel={onCancel}>
      <form onSubmit={(e) => void submit(e)}>
        <h2 id={`${id}-t`}>{title}</h2>
        <div className="field">
          <label htmlFor={`${id}-v`}>{label}</label>
          {/* biome-ignore lint/a11y/noAutofocus: the dialog's one field; it opened to ask for this name */}
          <input id={`${id}-v`} value={value} onChange={(e) => setValue(e.target.value)} autoFocus required />
        </div>
        <div className="dialog-actions">
          <button type="button" className="btn" onClick={onCancel}>
            Cancel
          </button>
          <button type="submit" className="btn btn-primary" disabled={busy || value === ''}>
            {confirm}
          </button>
        </div>
      </form>
    </Modal>
  );
}

/** Submits a script file as a batch job (on a cluster that sees these folders), then shows the job. */
function SubmitDialog({
  script,
  clusters,
  onCancel,
}: {
  script: string;
  clusters: BatchClusterView[];
  onCancel(): void;
}) {
  const { notify } = useToasts();
  const [cluster, setCluster] = useState(clusters[0]!.name);
  const submit = async () => {
    try {
      const r = await post<{ job: { cluster: string; jobId: string } }>('/api/jobs', {
        cluster,
        source: 'path',
        scriptPath: script,
        workDir: parentOf(script),
      });
      notify({ tone: 'ok', title: `Job ${r.job.jobId} submitted`, message: script });
      navigate(`/jobs/${encodeURIComponent(r.job.cluster)}/${encodeURIComponent(r.job.jobId)}`);
    } catch (e) {
      notify({ tone: 'bad', title: 'The job was not submitted', message: errorText(e) });
    }
  };
  return (
    <ConfirmDialog
      title={`Submit "${baseName(script)}" as a batch job?`}
      confirmLabel="Submit"
      onConfirm={() => void submit()}
      onCancel={onCancel}
    >
      <p>
        It runs in <code>{parentOf(script)}</code> with the resources its <code>#SBATCH</code> lines ask for.
      </p>
      {clusters.length > 1 && (
        <div className="field">
          <label htmlFor="submit-cluster">Cluster</label>
          <select id="submit-cluster" value={cluster} onChange={(e) => setCluster(e.target.value)}>
            <ClusterOptions clusters={clusters} />
          </select>
        </div>
      )}
    </ConfirmDialog>
  );
}

// ---- the editor ------------------------------------------------------------------------------------

interface TextAnswer {
  path: string;
  content: string;
  entry: FileEntry;
}

type EditorModule = typeof import('../files/codemirror.ts');

function EditorPanel({ info, path }: { info: RootsAnswer; path: string }) {
  const { notify } = useToasts();
  const host = useRef<HTMLDivElement>(null);
  const editor = useRef<ReturnType<EditorModule['createEditor']> | null>(null);
  const etag = useRef<string | null>(null);
  const [loaded, setLoaded] = useState<TextAnswer | null>(null);
  const [dirty, setDirty] = useState(false);
  const [conflict, setConflict] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const [language, setLanguage] = useState<string | null>(null);
  const [submitting, setSubmitting] = useState<BatchClusterView[] | null>(null);
  const dir = parentOf(path);

  const { error, reload: load } = useLoader(
    useCallback(async () => {
      const t = await get<TextAnswer>(`/api/files/text?path=${encodeURIComponent(path)}`);
      etag.current = t.entry.etag;
      setLoaded(t);
      setConflict(null);
      setDirty(false);
      if (editor.current) editor.current.setText(t.content);
      setDirty(false);
    }, [path]),
  );

  // The editor is made once the text is here; CodeMirror comes in its own chunk.
  useEffect(() => {
    if (!loaded || editor.current || !host.current) return;
    let cancelled = false;
    void import('../files/codemirror.ts').then((m: EditorModule) => {
      if (cancelled || !host.current) return;
      editor.current = m.createEditor(host.current, {
        text: loaded.content,
        name: baseName(path),
        label: `Contents of ${baseName(path)}`,
        onChange: () => setDirty(true),
        onSave: () => saveRef.current(),
      });
      setLanguage(m.languageFor(baseName(path), loaded.content.split('\n', 1)[0])?.label ?? 'Plain text');
    });
    return () => {
      cancelled = true;
    };
  }, [loaded, path]);

  useEffect(
    () => () => {
      editor.current?.destroy();
      editor.current = null;
    },
    [],
  );

  // Leaving with unsaved changes asks first.
  useEffect(() => {
    if (!dirty) return;
    const warn = (e: BeforeUnloadEvent) => e.preventDefault();
    window.addEventListener('beforeunload', warn);
    return () => window.removeEventListener('beforeunload', warn);
  }, [dirty]);

  const save = async (force = false) => {
    if (!editor.current) return;
    setSaving(true);
    try {
      let tag = etag.current;
      if (force) {
        tag = (await get<{ entry: FileEntry }>(`/api/files/stat?path=${encodeURIComponent(path)}`)).entry
          .etag;
      }
      const res = await fetch(
        `/api/files/text?path=${encodeURIComponent(path)}${tag ? `&etag=${encodeURIComponent(tag)}` : ''}`,
        {
          method: 'PUT',
          headers: { ...csrfHeaders(), 'content-type': 'application/octet-stream' },
          body: new TextEncoder().encode(editor.current.text()),
          credentials: 'same-origin',
        },
      );
      const body = (await res.json().catch(() => ({}))) as { entry?: FileEntry; error?: string };
      if (res.status === 409 && body.error) {
        setConflict(sentence(body.error));
        return;
      }
      if (!res.ok) throw new ApiError(res.status, body.error ?? `HTTP ${res.status}`);
      etag.current = body.entry?.etag ?? null;
      setDirty(false);
      setConflict(null);
      notify({ tone: 'ok', title: `Saved ${baseName(path)}` });
    } catch (e) {
      notify({ tone: 'bad', title: 'Not saved', message: errorText(e) });
    } finally {
      setSaving(false);
    }
  };

  // Ctrl+S in the editor saves (the editor is made once; the latest save is called through this).
  const saveRef = useRef(() => {});
  saveRef.current = () => void save();

  const submit = async () => {
    const here = new Set(info.clusters.filter((c) => c.filesHere).map((c) => c.name));
    try {
      const clusters = (await get<{ clusters: BatchClusterView[] }>('/api/jobs/clusters')).clusters.filter(
        (c) => here.has(c.name),
      );
      if (clusters.length === 0)
        notify({ tone: 'bad', title: 'No cluster takes batch jobs from these folders' });
      else setSubmitting(clusters);
    } catch (e) {
      notify({ tone: 'bad', title: 'Not done', message: errorText(e) });
    }
  };

  return (
    <div className="files">
      <section className="card editor-card" aria-labelledby="editor-title">
        <div className="card-head files-head">
          <h1 id="editor-title" className="crumbs">
            <Link href={filesUrl(dir)}>{dir}</Link>
            <span className="sep">/</span>
            <span aria-current="location">{baseName(path)}</span>
          </h1>
          <span className="muted">
            {language ?? ''}
            {dirty ? ' · unsaved changes' : loaded ? ' · saved' : ''}
          </span>
        </div>
        {error && (
          <p className="alert alert-bad" role="alert">
            {error} <a href={downloadUrl(path)}>Download it</a>
          </p>
        )}
        {conflict && (
          <div className="alert alert-warn" role="alert">
            <p>{conflict}</p>
            <div className="toolbar">
              <button type="button" className="btn btn-small" onClick={() => void load()}>
                Reload from disk (drop my changes)
              </button>
              <button
                type="button"
                className="btn btn-small btn-danger-outline"
                onClick={() => void save(true)}
              >
                Save mine anyway
              </button>
            </div>
          </div>
        )}
        <div className="toolbar">
          <button
            type="button"
            className="btn btn-small btn-primary"
            disabled={!loaded || saving || !dirty}
            onClick={() => void save()}
          >
            {saving ? 'Saving…' : 'Save'}
          </button>
          <Link className="btn btn-small" href={filesUrl(dir)}>
            Close
          </Link>
          <a className="btn btn-small" href={downloadUrl(path)} download>
            Download
          </a>
          {isBatchScript(path) && (
            <button type="button" className="btn btn-small" disabled={dirty} onClick={() => void submit()}>
              Submit as a batch job
            </button>
          )}
        </div>
        {!loaded && !error && <p className="muted">Loading…</p>}
        <div ref={host} className="editor" hidden={!loaded} />
      </section>
      {submitting && (
        <SubmitDialog script={path} clusters={submitting} onCancel={() => setSubmitting(null)} />
      )}
    </div>
  );
}
