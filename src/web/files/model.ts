// What the Files page computes without the DOM: sorting, hidden files, breadcrumbs, which links an entry
// gets (open in Jupyter, open a terminal here, submit as a batch job). Pure, so it is unit-tested.

export interface FileRoot {
  id: string;
  name: string;
  path: string;
  ok: boolean;
  error?: string;
}

export interface FileEntry {
  name: string;
  type: 'file' | 'dir' | 'link' | 'other';
  size: number;
  mtime: number;
  mode: number;
  etag: string;
  /** Where a symbolic link points (links are shown, never followed). */
  target?: string;
}

export type SortKey = 'name' | 'size' | 'mtime';

export interface SortOrder {
  key: SortKey;
  dir: 'asc' | 'desc';
}

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

/** Folders first, then by the chosen column (names in natural order: file2 before file10). */
export function sortEntries(entries: FileEntry[], order: SortOrder, showHidden: boolean): FileEntry[] {
  const sign = order.dir === 'asc' ? 1 : -1;
  return entries
    .filter((e) => showHidden || !e.name.startsWith('.'))
    .sort((a, b) => {
      const fa = a.type === 'dir' ? 0 : 1;
      const fb = b.type === 'dir' ? 0 : 1;
      if (fa !== fb) return fa - fb;
      let c = 0;
      if (order.key === 'size') c = a.size - b.size;
      else if (order.key === 'mtime') c = a.mtime - b.mtime;
      if (c === 0) c = collator.compare(a.name, b.name);
      return c * sign;
    });
}

export function joinPath(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** The root a path is in (the longest that contains it). */
export function rootOf(path: string, roots: FileRoot[]): FileRoot | undefined {
  return roots
    .filter((r) => path === r.path || path.startsWith(r.path === '/' ? '/' : `${r.path}/`))
    .sort((a, b) => b.path.length - a.path.length)[0];
}

/** Breadcrumbs from the root to the path: the root by its name, then each folder. */
export function crumbs(path: string, root: FileRoot): { label: string; path: string }[] {
  const out = [{ label: root.name, path: root.path }];
  const rest = path === root.path ? '' : path.slice(root.path === '/' ? 1 : root.path.length + 1);
  let cur = root.path;
  for (const seg of rest ? rest.split('/') : []) {
    cur = joinPath(cur, seg);
    out.push({ label: seg, path: cur });
  }
  return out;
}

/** Where a link's target is when it is absolute or relative to its folder (normalised, or null). */
export function linkTarget(dir: string, target: string): string | null {
  const abs = target.startsWith('/') ? target : joinPath(dir, target);
  const out: string[] = [];
  for (const seg of abs.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  return `/${out.join('/')}`;
}

const SCRIPT_EXT = /\.(sh|bash|sbatch|slurm|job|pbs)$/i;

/** Scripts the page offers to submit as a batch job. */
export function isBatchScript(name: string): boolean {
  return SCRIPT_EXT.test(name);
}

/** Files the editor opens by default (the server refuses binary and oversized ones anyway). */
export function looksLikeText(name: string): boolean {
  const lower = name.toLowerCase();
  if (!lower.includes('.') || lower.startsWith('.')) return true;
  return /\.(txt|md|rst|csv|tsv|log|out|err|sh|bash|zsh|sbatch|slurm|job|pbs|py|pyw|ipynb|r|jl|m|c|h|cc|cpp|hpp|f|f90|f95|for|java|js|ts|json|yaml|yml|toml|ini|cfg|conf|xml|html|css|tex|bib|sql|mk|cmake|dat|in)$/.test(
    lower,
  );
}

/**
 * The address that opens `path` in a running Jupyter session (its root is the home folder): a folder in
 * the file browser, a notebook in the notebook page, another file in the text editor. Null outside home.
 */
export function jupyterPath(sessionUrl: string, home: string, path: string, isDir: boolean): string | null {
  if (path !== home && !path.startsWith(`${home}/`)) return null;
  const rel = path === home ? '' : path.slice(home.length + 1);
  const enc = rel.split('/').map(encodeURIComponent).join('/');
  if (isDir) return `${sessionUrl}tree${enc ? `/${enc}` : ''}`;
  return `${sessionUrl}${rel.endsWith('.ipynb') ? 'notebooks' : 'edit'}/${enc}`;
}

/** The address of a terminal that starts in `dir` (the terminal app reads `cwd` from it). */
export function terminalHere(terminalUrl: string, dir: string): string {
  return `${terminalUrl}?cwd=${encodeURIComponent(dir)}`;
}
