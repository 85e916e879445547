// The Files page's hands: a small program the gateway runs as the signed-in user (setpriv, sudo: the
// way sessions start), one operation per run. The request is one JSON argument; file contents come on
// stdin (uploads, saves) or go to stdout (downloads) after a first line of JSON that says how it went.
//   node atrium-files.mjs '{"op":"list","root":"/home/alice","rel":["data"]}'
//
// Paths are never resolved as strings. The root is opened (the site configured it, links and all),
// then every segment below it is opened relative to the directory before it, with O_NOFOLLOW, through
// /proc/self/fd/N/<name> (Node has no openat(); the kernel resolves the magic link to the directory
// the descriptor holds, so this is openat()). A symbolic link anywhere below a root is refused, not
// followed; "..", "." and "/" never reach this far (the gateway refuses them, and so does this file).
// Every change is made relative to a directory descriptor, so swapping a folder for a link to /etc
// while an upload runs cannot move the write there; writes also check, just before they land, that
// the folder is still where it was, and refuse (leaving nothing behind) when it is not.
// Bundled by src/files/bundle.ts into dist/files/atrium-files.mjs (no dependencies).
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';

const C = fs.constants;
const DIR_FLAGS = C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW;
const MAX_ENTRIES = 20_000;

interface Request {
  op: string;
  root: string;
  rel: string[];
  name?: string;
  size?: number;
  overwrite?: boolean;
  etag?: string | null;
  maxBytes?: number;
  to?: { root: string; rel: string[] };
  roots?: string[];
}

class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field = 'path',
  ) {
    super(message);
  }
}

const at = (fd: number, name?: string) =>
  name === undefined ? `/proc/self/fd/${fd}` : `/proc/self/fd/${fd}/${name}`;

function send(obj: Record<string, unknown>): void {
  fs.writeSync(1, `${JSON.stringify(obj)}\n`);
}

function errno(e: unknown): string {
  return (e as NodeJS.ErrnoException)?.code ?? '';
}

function show(root: string, rel: string[]): string {
  return rel.length === 0 ? root : `${root === '/' ? '' : root}/${rel.join('/')}`;
}

function validSegment(s: unknown): s is string {
  return (
    typeof s === 'string' &&
    s !== '' &&
    s !== '.' &&
    s !== '..' &&
    !s.includes('/') &&
    !s.includes('\0') &&
    Buffer.byteLength(s) <= 255
  );
}

/** Turns a failed system call on `shown` into a refusal that says what is wrong. */
function refusal(e: unknown, shown: string, field = 'path'): Refusal {
  switch (errno(e)) {
    case 'ENOENT':
      return new Refusal(404, `${shown}: no such file or folder`, field);
    case 'EACCES':
    case 'EPERM':
      return new Refusal(403, `${shown}: permission denied`, field);
    case 'ENOTDIR':
      return new Refusal(400, `${shown}: not a folder`, field);
    case 'EISDIR':
      return new Refusal(400, `${shown}: a folder`, field);
    case 'EEXIST':
    case 'ENOTEMPTY':
      return new Refusal(409, `${shown}: already exists`, field);
    case 'EXDEV':
      return new Refusal(409, `${shown}: cannot be moved to another file system (copy it instead)`, field);
    case 'EINVAL':
      return new Refusal(400, `${shown}: cannot be moved into itself`, field);
    case 'ENAMETOOLONG':
      return new Refusal(400, `${shown}: name too long`, field);
    case 'ENOSPC':
    case 'EDQUOT':
      return new Refusal(507, `${shown}: no space left (disk full or quota reached)`, field);
    case 'EROFS':
      return new Refusal(403, `${shown}: read-only file system`, field);
    default:
      return new Refusal(500, `${shown}: ${(e as Error)?.message ?? String(e)}`, field);
  }
}

/** Why `name` in the directory `fd` could not be opened as a folder or file without following links. */
function openRefusal(e: unknown, fd: number, name: string, shown: string, field: string): Refusal {
  if (errno(e) === 'ELOOP' || (errno(e) === 'ENOTDIR' && isLink(fd, name))) {
    let target = '';
    try {
      target = fs.readlinkSync(at(fd, name));
    } catch {
      // gone meanwhile
    }
    return new Refusal(
      403,
      `${shown} is a symbolic link${target ? ` (to ${target})` : ''}: links are not followed`,
      field,
    );
  }
  return refusal(e, shown, field);
}

function isLink(fd: number, name: string): boolean {
  try {
    return fs.lstatSync(at(fd, name)).isSymbolicLink();
  } catch {
    return false;
  }
}

interface Walked {
  fd: number;
  /** Where the kernel says the directory is, as the walk found it. */
  real: string;
}

/** Opens the root, then each segment of `rel` below it as a folder, never following a link. */
function walk(root: string, rel: string[], field = 'path'): Walked {
  if (typeof root !== 'string' || !root.startsWith('/')) throw new Refusal(400, 'invalid root', field);
  let fd: number;
  try {
    fd = fs.openSync(root, C.O_RDONLY | C.O_DIRECTORY);
  } catch (e) {
    throw refusal(e, root, field);
  }
  for (let i = 0; i < rel.length; i++) {
    const seg = rel[i];
    if (!validSegment(seg)) {
      fs.closeSync(fd);
      throw new Refusal(400, `invalid name in ${show(root, rel)}`, field);
    }
    let next: number;
    try {
      next = fs.openSync(at(fd, seg), DIR_FLAGS);
    } catch (e) {
      const r = openRefusal(e, fd, seg, show(root, rel.slice(0, i + 1)), field);
      fs.closeSync(fd);
      throw r;
    }
    fs.closeSync(fd);
    fd = next;
  }
  return { fd, real: fs.readlinkSync(at(fd)) };
}

/** Refuses when the folder a descriptor holds is no longer where the walk found it (moved, or swapped for a link). */
function stillThere(w: Walked, shown: string, field = 'path'): void {
  let now = '';
  try {
    now = fs.readlinkSync(at(w.fd));
  } catch {
    // unreadable: treated as moved
  }
  if (now !== w.real)
    throw new Refusal(
      409,
      `${shown}: the folder was moved, removed or replaced (e.g. by a symbolic link) during the operation; nothing was changed`,
      field,
    );
}

function parentAndName(req: { root: string; rel: string[] }, field = 'path'): { dir: Walked; name: string } {
  if (req.rel.length === 0)
    throw new Refusal(403, `${req.root}: a root folder itself cannot be changed this way`, field);
  const name = req.rel[req.rel.length - 1]!;
  if (!validSegment(name)) throw new Refusal(400, `invalid name in ${show(req.root, req.rel)}`, field);
  return { dir: walk(req.root, req.rel.slice(0, -1), field), name };
}

function typeOf(st: fs.Stats | fs.BigIntStats): string {
  if (st.isSymbolicLink()) return 'link';
  if (st.isDirectory()) return 'dir';
  if (st.isFile()) return 'file';
  return 'other';
}

function etagOf(st: fs.BigIntStats): string {
  return `${st.ino.toString(36)}-${st.size.toString(36)}-${st.mtimeNs.toString(36)}`;
}

function describe(st: fs.BigIntStats): Record<string, unknown> {
  return {
    type: typeOf(st),
    size: Number(st.size),
    mtime: Number(st.mtimeMs),
    mode: Number(st.mode) & 0o7777,
    etag: etagOf(st),
  };
}

/** Opens a regular file below a directory, never following a link and never blocking on a FIFO. */
function openFile(dir: Walked, name: string, shown: string): { fd: number; st: fs.BigIntStats } {
  let fd: number;
  try {
    fd = fs.openSync(at(dir.fd, name), C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK);
  } catch (e) {
    throw openRefusal(e, dir.fd, name, shown, 'path');
  }
  const st = fs.fstatSync(fd, { bigint: true });
  if (!st.isFile() && !st.isDirectory()) {
    fs.closeSync(fd);
    throw new Refusal(400, `${shown}: not a regular file or folder`);
  }
  return { fd, st };
}

// ---- operations --------------------------------------------------------------------------------

function opRoots(req: Request): void {
  const roots = (req.roots ?? []).map((p) => {
    try {
      const fd = fs.openSync(p, C.O_RDONLY | C.O_DIRECTORY);
      fs.closeSync(fd);
      return { path: p, ok: true };
    } catch (e) {
      return { path: p, ok: false, error: refusal(e, p).message };
    }
  });
  send({ ok: true, roots });
}

function opList(req: Request): void {
  const dir = walk(req.root, req.rel);
  const names = fs.readdirSync(at(dir.fd));
  const entries: Record<string, unknown>[] = [];
  for (const name of names.slice(0, MAX_ENTRIES)) {
    try {
      const st = fs.lstatSync(at(dir.fd, name), { bigint: true });
      const e: Record<string, unknown> = { name, ...describe(st) };
      if (st.isSymbolicLink()) e.target = fs.readlinkSync(at(dir.fd, name));
      entries.push(e);
    } catch {
      entries.push({ name, type: 'other', size: 0, mtime: 0, mode: 0, etag: '' });
    }
  }
  send({ ok: true, entries, truncated: names.length > MAX_ENTRIES });
}

function opStat(req: Request): void {
  if (req.rel.length === 0) {
    const dir = walk(req.root, []);
    send({ ok: true, entry: { name: '', ...describe(fs.fstatSync(dir.fd, { bigint: true })) } });
    return;
  }
  const { dir, name } = parentAndName(req);
  try {
    const st = fs.lstatSync(at(dir.fd, name), { bigint: true });
    const e: Record<string, unknown> = { name, ...describe(st) };
    if (st.isSymbolicLink()) e.target = fs.readlinkSync(at(dir.fd, name));
    send({ ok: true, entry: e });
  } catch (err) {
    throw refusal(err, show(req.root, req.rel));
  }
}

/** A text file for the editor, whole, in the JSON line: refused when too large, binary or not UTF-8. */
function opReadText(req: Request): void {
  const shown = show(req.root, req.rel);
  const { dir, name } = parentAndName(req);
  const { fd, st } = openFile(dir, name, shown);
  if (st.isDirectory()) throw new Refusal(400, `${shown}: a folder`);
  const max = req.maxBytes ?? 0;
  if (Number(st.size) > max)
    throw new Refusal(
      413,
      `${shown}: ${Number(st.size)} bytes, larger than the ${max} bytes the editor opens (download it instead)`,
    );
  const buf = Buffer.alloc(Number(st.size));
  let off = 0;
  while (off < buf.length) {
    const n = fs.readSync(fd, buf, off, buf.length - off, off);
    if (n === 0) break;
    off += n;
  }
  const bytes = buf.subarray(0, off);
  if (bytes.includes(0)) throw new Refusal(415, `${shown}: a binary file (download it instead)`);
  let content: string;
  try {
    content = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new Refusal(415, `${shown}: not UTF-8 text (download it instead)`);
  }
  send({ ok: true, content, entry: { name, ...describe(st) } });
}

/** A file's bytes, or a folder as a gzipped tar made by `tar` as the user, after the first line. */
async function opDownload(req: Request): Promise<void> {
  const shown = show(req.root, req.rel);
  let dirFd: number;
  let member: string;
  let name: string;
  if (req.rel.length === 0) {
    const root = walk(req.root, []);
    dirFd = root.fd;
    member = '.';
    name = req.root.split('/').filter(Boolean).pop() ?? 'root';
  } else {
    const p = parentAndName(req);
    const { fd, st } = openFile(p.dir, p.name, shown);
    if (st.isFile()) {
      send({ ok: true, kind: 'file', name: p.name, size: Number(st.size) });
      await new Promise<void>((resolve, reject) => {
        const rs = fs.createReadStream('', { fd, autoClose: true, highWaterMark: 256 * 1024 });
        rs.on('error', reject);
        process.stdout.on('error', reject);
        rs.pipe(process.stdout);
        rs.on('end', () => resolve());
      });
      return;
    }
    fs.closeSync(fd);
    dirFd = p.dir.fd;
    member = p.name;
    name = p.name;
  }
  send({ ok: true, kind: 'archive', name: `${name}.tar.gz` });
  // tar runs in the folder this process holds open (not a path someone could swap), stores links as
  // links (no -h), and writes straight to our stdout.
  const code = await new Promise<number>((resolve) => {
    const tar = spawn('tar', ['--create', '--gzip', '--file=-', '--', member], {
      cwd: `/proc/${process.pid}/fd/${dirFd}`,
      stdio: ['ignore', 1, 'pipe'],
    });
    tar.stderr?.on('data', (d: Buffer) => process.stderr.write(d));
    tar.on('error', () => resolve(127));
    tar.on('close', (c) => resolve(c ?? 1));
  });
  // 1: "some files changed while being read": the archive is complete.
  if (code > 1) process.exitCode = 1;
}

let pendingTemp: { fd: number; name: string } | null = null;

function dropTemp(): void {
  if (!pendingTemp) return;
  try {
    fs.unlinkSync(at(pendingTemp.fd, pendingTemp.name));
  } catch {
    // already gone
  }
  pendingTemp = null;
}

for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGPIPE'] as const) {
  process.on(sig, () => {
    dropTemp();
    process.exit(1);
  });
}

/** Reads exactly `size` bytes from stdin into a new hidden file in `dir`; returns its name. */
async function receive(dir: Walked, size: number, shown: string, mode: number): Promise<string> {
  const temp = `.atrium-upload-${crypto.randomBytes(8).toString('hex')}`;
  let fd: number;
  try {
    fd = fs.openSync(at(dir.fd, temp), C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, mode);
  } catch (e) {
    throw refusal(e, shown);
  }
  pendingTemp = { fd: dir.fd, name: temp };
  let got = 0;
  try {
    for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
      got += chunk.length;
      if (got > size)
        throw new Refusal(
          413,
          `${shown}: more bytes arrived than the ${size} announced; nothing was kept`,
          'file',
        );
      let off = 0;
      while (off < chunk.length) off += fs.writeSync(fd, chunk, off, chunk.length - off);
    }
    if (got !== size)
      throw new Refusal(
        400,
        `${shown}: the upload was cut off (${got} of ${size} bytes arrived); nothing was kept`,
        'file',
      );
    fs.fchmodSync(fd, mode);
  } catch (e) {
    fs.closeSync(fd);
    dropTemp();
    if (e instanceof Refusal) throw e;
    throw refusal(e, shown);
  }
  fs.closeSync(fd);
  return temp;
}

/** Gives the received file its name: without replacing anything, or replacing a file (not a folder). */
function land(dir: Walked, temp: string, name: string, replace: boolean, shown: string): void {
  try {
    stillThere(dir, shown);
    if (replace) {
      fs.renameSync(at(dir.fd, temp), at(dir.fd, name));
    } else {
      try {
        // link() never replaces: a name taken meanwhile fails with EEXIST.
        fs.linkSync(at(dir.fd, temp), at(dir.fd, name));
        fs.unlinkSync(at(dir.fd, temp));
      } catch (e) {
        if (errno(e) !== 'EPERM' && errno(e) !== 'ENOTSUP' && errno(e) !== 'EOPNOTSUPP') throw e;
        // File systems without hard links: a check, then rename (the gap is the user's own).
        if (exists(dir, name)) throw Object.assign(new Error('exists'), { code: 'EEXIST' });
        fs.renameSync(at(dir.fd, temp), at(dir.fd, name));
      }
    }
    pendingTemp = null;
  } catch (e) {
    dropTemp();
    if (e instanceof Refusal) throw e;
    throw refusal(e, shown, errno(e) === 'EEXIST' ? 'name' : 'path');
  }
}

function exists(dir: Walked, name: string): boolean {
  try {
    fs.lstatSync(at(dir.fd, name));
    return true;
  } catch {
    return false;
  }
}

async function opUpload(req: Request): Promise<void> {
  const dir = walk(req.root, req.rel);
  const name = req.name;
  if (!validSegment(name)) throw new Refusal(400, 'invalid name', 'name');
  const shown = show(req.root, [...req.rel, name]);
  const size = req.size ?? -1;
  if (!Number.isSafeInteger(size) || size < 0)
    throw new Refusal(411, 'the size of the upload is needed', 'file');
  let replace = false;
  if (exists(dir, name)) {
    const st = fs.lstatSync(at(dir.fd, name));
    if (!req.overwrite) throw new Refusal(409, `${shown}: already exists`, 'name');
    if (!st.isFile()) throw new Refusal(409, `${shown}: exists and is not a file`, 'name');
    replace = true;
  }
  const temp = await receive(dir, size, shown, 0o644);
  land(dir, temp, name, replace, shown);
  const st = fs.lstatSync(at(dir.fd, name), { bigint: true });
  send({ ok: true, entry: { name, ...describe(st) } });
}

/** The editor's save: refused (409) when the file changed on disk since it was loaded (its etag). */
async function opSave(req: Request): Promise<void> {
  const shown = show(req.root, req.rel);
  const { dir, name } = parentAndName(req);
  const size = req.size ?? -1;
  if (!Number.isSafeInteger(size) || size < 0)
    throw new Refusal(411, 'the size of the text is needed', 'content');
  let mode = 0o644;
  if (req.etag) {
    const { fd, st } = openFile(dir, name, shown);
    fs.closeSync(fd);
    if (!st.isFile()) throw new Refusal(400, `${shown}: not a file`);
    if (etagOf(st) !== req.etag)
      throw new Refusal(
        409,
        `${shown}: changed on disk since you opened it (modified ${new Date(Number(st.mtimeMs)).toISOString()}); reload it, or save under another name`,
        'etag',
      );
    mode = Number(st.mode) & 0o7777;
  } else if (exists(dir, name)) {
    throw new Refusal(409, `${shown}: already exists`, 'name');
  }
  const temp = await receive(dir, size, shown, mode);
  land(dir, temp, name, !!req.etag, shown);
  const st = fs.lstatSync(at(dir.fd, name), { bigint: true });
  send({ ok: true, entry: { name, ...describe(st) } });
}

function opMkdir(req: Request): void {
  const dir = walk(req.root, req.rel);
  const name = req.name;
  if (!validSegment(name)) throw new Refusal(400, 'invalid name', 'name');
  const shown = show(req.root, [...req.rel, name]);
  stillThere(dir, shown);
  try {
    fs.mkdirSync(at(dir.fd, name), 0o755);
  } catch (e) {
    throw refusal(e, shown, errno(e) === 'EEXIST' ? 'name' : 'path');
  }
  send({ ok: true, entry: { name, ...describe(fs.lstatSync(at(dir.fd, name), { bigint: true })) } });
}

/** Renames or moves an entry (a link is moved as a link) into a folder, never over an existing name. */
function opMove(req: Request): void {
  const from = parentAndName(req);
  if (!req.to) throw new Refusal(400, 'where to?', 'to');
  const to = walk(req.to.root, req.to.rel, 'to');
  const name = req.name ?? from.name;
  if (!validSegment(name)) throw new Refusal(400, 'invalid name', 'name');
  const shownFrom = show(req.root, req.rel);
  const shownTo = show(req.to.root, [...req.to.rel, name]);
  if (!exists(from.dir, from.name)) throw new Refusal(404, `${shownFrom}: no such file or folder`);
  if (exists(to, name)) throw new Refusal(409, `${shownTo}: already exists`, 'name');
  stillThere(from.dir, shownFrom);
  stillThere(to, shownTo, 'to');
  try {
    fs.renameSync(at(from.dir.fd, from.name), at(to.fd, name));
  } catch (e) {
    throw refusal(e, errno(e) === 'EEXIST' || errno(e) === 'ENOTEMPTY' ? shownTo : shownFrom);
  }
  send({ ok: true, entry: { name, ...describe(fs.lstatSync(at(to.fd, name), { bigint: true })) } });
}

/** Removes a folder's contents depth first, each level through its own descriptor (no link is followed). */
function removeTree(parentFd: number, name: string): void {
  const fd = fs.openSync(at(parentFd, name), DIR_FLAGS);
  try {
    for (const e of fs.readdirSync(at(fd))) {
      const st = fs.lstatSync(at(fd, e));
      if (st.isDirectory()) removeTree(fd, e);
      else fs.unlinkSync(at(fd, e));
    }
  } finally {
    fs.closeSync(fd);
  }
  fs.rmdirSync(at(parentFd, name));
}

function opDelete(req: Request): void {
  const shown = show(req.root, req.rel);
  const { dir, name } = parentAndName(req);
  stillThere(dir, shown);
  try {
    const st = fs.lstatSync(at(dir.fd, name));
    if (st.isDirectory()) removeTree(dir.fd, name);
    else fs.unlinkSync(at(dir.fd, name));
  } catch (e) {
    throw refusal(e, shown);
  }
  send({ ok: true });
}

const OPS: Record<string, (req: Request) => void | Promise<void>> = {
  roots: opRoots,
  list: opList,
  stat: opStat,
  text: opReadText,
  download: opDownload,
  upload: opUpload,
  save: opSave,
  mkdir: opMkdir,
  move: opMove,
  delete: opDelete,
};

async function main(): Promise<void> {
  process.umask(0o022);
  let req: Request;
  try {
    req = JSON.parse(process.argv[2] ?? '') as Request;
  } catch {
    send({ ok: false, status: 400, error: 'atrium-files: the request is not JSON' });
    process.exitCode = 2;
    return;
  }
  const op = OPS[req.op];
  try {
    if (!op) throw new Refusal(400, `unknown operation "${String(req.op).slice(0, 20)}"`, 'op');
    if (!Array.isArray(req.rel)) throw new Refusal(400, 'invalid path');
    await op(req);
  } catch (e) {
    dropTemp();
    const r = e instanceof Refusal ? e : refusal(e, show(req.root, req.rel ?? []));
    send({ ok: false, status: r.status, error: r.message, field: r.field });
  }
}

void main();
