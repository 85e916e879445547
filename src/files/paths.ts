// What a path of the Files page may be, checked before anything runs: an absolute path inside one of
// the user's roots, with no "." or ".." segment, no empty segment, no NUL or control character (a
// newline is the one allowed: it is a legal, if rare, character of a file name), no segment longer
// than a file system allows, and no percent-encoded "." "/" "\" or "%" (the query string is decoded
// once; what is left encoded is a traversal attempt through double encoding, not a name). The helper
// that runs as the user (src/files/helper.ts) checks the segments again and opens them one by one
// without following links, so this is the first of two fences, and the one that names the problem.
// Pure: no I/O.

export interface FileRoot {
  /** Stable id used by the page ("home", "project", ...). */
  id: string;
  /** What the page shows ("Home", "Project"). */
  name: string;
  /** Absolute, expanded, without a trailing slash ("/home/alice"). */
  path: string;
}

export interface RootConfig {
  name: string;
  path: string;
}

/** A refusal that names its field and the HTTP status it becomes. */
export class PathProblem extends Error {
  constructor(
    readonly status: number,
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'PathProblem';
  }
}

export const MAX_PATH = 4096;
export const MAX_NAME_BYTES = 255;

/** C0 controls but the newline, DEL, C1 controls, and Unicode line/paragraph separators. */
function hasControl(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if ((c < 0x20 && c !== 0x0a) || (c >= 0x7f && c <= 0x9f) || c === 0x2028 || c === 0x2029) return true;
  }
  return false;
}
const ENCODED_RE = /%(2e|2f|5c|25|00)/i;

/** Expands `~`, `$HOME`, `$USER` (and `${USER}`) in a configured root and normalises it. */
export function expandRoot(path: string, user: { name: string; home: string }): string | null {
  let p = path.trim();
  if (p === '~' || p.startsWith('~/')) p = user.home + p.slice(1);
  p = p.replace(/\$\{HOME\}|\$HOME\b/g, () => user.home).replace(/\$\{USER\}|\$USER\b/g, () => user.name);
  if (!p.startsWith('/')) return null;
  const parts = p.split('/').filter((s) => s !== '' && s !== '.');
  if (parts.includes('..')) return null;
  return `/${parts.join('/')}`;
}

function slug(name: string, taken: Set<string>): string {
  const base =
    name
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '') || 'root';
  let id = base;
  for (let i = 2; taken.has(id); i++) id = `${base}-${i}`;
  taken.add(id);
  return id;
}

/** The user's roots, in the configured order; entries that do not expand to an absolute path are left out. */
export function rootsFor(config: RootConfig[], user: { name: string; home: string }): FileRoot[] {
  const taken = new Set<string>();
  const out: FileRoot[] = [];
  for (const r of config) {
    const path = expandRoot(r.path, user);
    if (!path || out.some((o) => o.path === path)) continue;
    out.push({ id: slug(r.name, taken), name: r.name, path });
  }
  return out;
}

function checkSegment(seg: string, field: string): void {
  if (seg === '') throw new PathProblem(400, field, 'an empty name (a name of 0 bytes)');
  if (seg === '.' || seg === '..') throw new PathProblem(400, field, `a "${seg}" segment is not allowed`);
  if (Buffer.byteLength(seg) > MAX_NAME_BYTES)
    throw new PathProblem(400, field, `a name longer than ${MAX_NAME_BYTES} bytes`);
  if (ENCODED_RE.test(seg))
    throw new PathProblem(
      400,
      field,
      'holds a percent-encoded ".", "/", "\\", "%" or NUL (an encoded traversal is not a name)',
    );
}

function checkText(v: unknown, field: string): string {
  if (typeof v !== 'string') throw new PathProblem(400, field, 'must be text');
  if (v.includes('\0')) throw new PathProblem(400, field, 'holds a NUL byte');
  if (hasControl(v)) throw new PathProblem(400, field, 'holds a control character');
  return v;
}

/** A checked path: the root it is in and its segments below that root. */
export interface ResolvedPath {
  root: FileRoot;
  /** Segments below the root ([] for the root itself). */
  rel: string[];
  /** The absolute path, normalised. */
  path: string;
}

/** Checks an absolute path and finds its root (the longest that contains it). */
export function resolvePath(input: unknown, roots: FileRoot[], field = 'path'): ResolvedPath {
  const raw = checkText(input, field);
  if (raw.length === 0) throw new PathProblem(400, field, 'empty');
  if (raw.length > MAX_PATH) throw new PathProblem(400, field, `longer than ${MAX_PATH} characters`);
  if (!raw.startsWith('/')) throw new PathProblem(400, field, 'must be an absolute path (starting with /)');
  const trimmed = raw.length > 1 && raw.endsWith('/') ? raw.slice(0, -1) : raw;
  const segs = trimmed === '/' ? [] : trimmed.slice(1).split('/');
  for (const s of segs) {
    if (s === '') throw new PathProblem(400, field, 'an empty segment (//)');
    checkSegment(s, field);
  }
  const path = `/${segs.join('/')}`;
  const root = roots
    .filter((r) => path === r.path || path.startsWith(r.path === '/' ? '/' : `${r.path}/`))
    .sort((a, b) => b.path.length - a.path.length)[0];
  if (!root)
    throw new PathProblem(
      403,
      field,
      `outside your folders (${roots.map((r) => `${r.name}: ${r.path}`).join(', ') || 'none'})`,
    );
  const rootSegs = root.path === '/' ? 0 : root.path.slice(1).split('/').length;
  return { root, rel: segs.slice(rootSegs), path };
}

/** Checks the name of a new entry (folder, upload, rename target): one segment. */
export function checkName(input: unknown, field = 'name'): string {
  const name = checkText(input, field);
  if (name.includes('/')) throw new PathProblem(400, field, 'may not contain "/"');
  checkSegment(name, field);
  return name;
}

/** The path of `name` inside the folder `dir`. */
export function childPath(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

/** A Content-Disposition value that survives any name (quotes, newlines, unicode). */
export function contentDisposition(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16)}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}
