// The files a session runs or reads as its user (the agent bundle, share/ with the apps' helpers and
// Jupyter's sign-in module, the web terminal's server and its node-pty, the `atrium` command of
// sessions) must be readable by every user. A checkout under /root (mode 700 on Debian) or made with
// umask 077 is not: there the gateway places a copy in `runtimeDir`, root's, dirs 755 and files
// 644/755, in a directory named after its content, so a new version never changes files that running
// sessions use. When it cannot, it refuses to start and says which path is in the way.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** Why an unprivileged user cannot read `p` (or run it, with `exec`); null when they can. */
export function whyOthersCannot(p: string, exec = false): string | null {
  const abs = path.resolve(p);
  let real = abs;
  try {
    real = fs.realpathSync.native(abs);
  } catch {
    return `${abs} does not exist`;
  }
  // Others' permission bits only: group membership and ACLs are not counted (an unknown user has none).
  for (const chain of new Set([abs, real])) {
    let dir = '/';
    for (const part of chain.split('/').filter(Boolean)) {
      const st = fs.statSync(dir);
      if ((st.mode & 0o001) === 0) return `${dir} is mode ${modeOf(st)}: other users cannot enter it`;
      dir = path.join(dir, part);
    }
  }
  const st = fs.statSync(real);
  if (st.isDirectory()) {
    if ((st.mode & 0o005) !== 0o005) return `${abs} is mode ${modeOf(st)}: other users cannot list it`;
    return null;
  }
  if ((st.mode & 0o004) === 0) return `${abs} is mode ${modeOf(st)}: other users cannot read it`;
  if (exec && (st.mode & 0o001) === 0) return `${abs} is mode ${modeOf(st)}: other users cannot run it`;
  return null;
}

function modeOf(st: fs.Stats): string {
  return (st.mode & 0o7777).toString(8).padStart(3, '0');
}

/** One file that sessions need: where it is and whether it is a program. */
interface SourceFile {
  rel: string;
  abs: string;
  exec: boolean;
}

/** Every file under `dir` (following no symlinks out of it), as paths relative to `root`. */
function filesUnder(root: string, dir: string, skip: (rel: string) => boolean = () => false): SourceFile[] {
  const out: SourceFile[] = [];
  const abs = path.join(root, dir);
  if (!fs.existsSync(abs)) return out;
  for (const name of (fs.readdirSync(abs, { recursive: true }) as string[]).sort()) {
    const rel = path.join(dir, name);
    if (skip(rel)) continue;
    const st = fs.statSync(path.join(root, rel));
    if (st.isFile()) out.push({ rel, abs: path.join(root, rel), exec: (st.mode & 0o100) !== 0 });
  }
  return out;
}

/** The files sessions run or read, relative to the Atrium directory (`root`). */
export function sessionFiles(root: string): SourceFile[] {
  const one = (rel: string): SourceFile[] => {
    const abs = path.join(root, rel);
    return fs.existsSync(abs) ? [{ rel, abs, exec: false }] : [];
  };
  const pty = path.join('node_modules', 'node-pty');
  return [
    ...one(path.join('dist', 'agent', 'atrium-agent.mjs')),
    ...one(path.join('dist', 'agent', 'atrium-cli.mjs')),
    // The Files page's helper, run as each user (src/files/helper.ts).
    ...one(path.join('dist', 'files', 'atrium-files.mjs')),
    ...filesUnder(root, path.join('dist', 'apps', 'terminal')),
    ...filesUnder(root, 'share'),
    // The terminal server loads node-pty (native) from the node_modules next to dist/: its compiled
    // module and JavaScript, not its sources or other platforms' prebuilt binaries.
    ...one(path.join(pty, 'package.json')),
    ...filesUnder(root, path.join(pty, 'lib'), (rel) => /\.(test\.js|map)$/.test(rel)),
    ...filesUnder(root, path.join(pty, 'build', 'Release'), (rel) => !/(\.node|spawn-helper)$/.test(rel)),
  ];
}

/** The first file of `files` (or the directory they are in) that other users cannot read, and why. */
export function firstUnreadable(root: string, files: SourceFile[], extra: string[] = []): string | null {
  for (const f of files) {
    const why = whyOthersCannot(f.abs, f.exec);
    if (why) return why;
  }
  for (const p of extra) {
    const why = whyOthersCannot(path.join(root, p));
    if (why) return why;
  }
  return null;
}

export class RuntimeDirError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RuntimeDirError';
  }
}

export interface SessionRuntime {
  /** The Atrium directory sessions see (its dist/ and share/). */
  root: string;
  agentScript: string;
  /** true when `root` is a copy in runtimeDir. */
  placed: boolean;
  /** Why the checkout itself would not do, when placed. */
  why?: string;
  /** Stops the hourly "still in use" mark of a placed copy. */
  close(): void;
}

export interface RuntimeOptions {
  /** The Atrium directory (the checkout). */
  root: string;
  runtimeDir: string;
  /** Node.js that runs the agent (and the `atrium` command in sessions). */
  node: string;
  /** Hours a copy no gateway uses any more is kept (running sessions may still use it). */
  keepHours: number;
  /** false when every session runs as the gateway's own user (a non-root gateway, local backend only). */
  othersMustRead: boolean;
}

const VERSION_RE = /^[0-9a-f]{16}$/;
const STAMP = '.last-used';

/**
 * Where sessions find Atrium's files: the checkout itself when every user can read what they need
 * there, else a copy in `runtimeDir` (made now, unless an identical one is there). Throws
 * RuntimeDirError naming the path and the fix when neither works.
 */
export function prepareSessionRuntime(o: RuntimeOptions): SessionRuntime {
  const files = sessionFiles(o.root);
  const agentRel = path.join('dist', 'agent', 'atrium-agent.mjs');
  if (!files.some((f) => f.rel === agentRel))
    throw new RuntimeDirError(`${path.join(o.root, agentRel)} is missing: build it with npm run build`);
  const inPlace: SessionRuntime = {
    root: o.root,
    agentScript: path.join(o.root, agentRel),
    placed: false,
    close() {},
  };
  if (!o.othersMustRead) return inPlace;
  // In place, sessions also run bin/atrium, which runs the sources with tsx from node_modules.
  const why = firstUnreadable(o.root, files, [
    path.join('bin', 'atrium'),
    path.join('src', 'cli', 'main.ts'),
    path.join('node_modules', 'tsx', 'dist', 'esm', 'index.mjs'),
  ]);
  if (!why) return inPlace;
  return place(o, files, why);
}

function fail(o: RuntimeOptions, why: string, problem: string): never {
  const root = process.getuid?.() === 0;
  throw new RuntimeDirError(
    `sessions run as their users, who cannot read Atrium's files in ${o.root} (${why}), ` +
      `and no copy can be placed in runtimeDir ${o.runtimeDir}: ${problem}. Fix one of: ` +
      (root ? '' : 'run the gateway as root (it then places the copy), ') +
      `set runtimeDir to a directory ${root ? 'only root' : 'only the gateway'} may write and every user can enter, ` +
      'or put Atrium where every user can read it (e.g. /opt/atrium).',
  );
}

function place(o: RuntimeOptions, files: SourceFile[], why: string): SessionRuntime {
  if (!path.isAbsolute(o.runtimeDir)) fail(o, why, 'it must be an absolute path');
  try {
    fs.mkdirSync(o.runtimeDir, { recursive: true, mode: 0o755 });
  } catch (e) {
    fail(o, why, (e as Error).message);
  }
  const st = fs.statSync(o.runtimeDir);
  const me = process.getuid?.() ?? 0;
  // Users run these files: nobody but the gateway may be able to change them.
  if (st.uid !== me) fail(o, why, `it belongs to uid ${st.uid}, not to the gateway's uid ${me}`);
  if ((st.mode & 0o022) !== 0) fail(o, why, `it is mode ${modeOf(st)}: others could change its files`);
  fs.chmodSync(o.runtimeDir, 0o755);
  const blocked = whyOthersCannot(o.runtimeDir);
  if (blocked) fail(o, why, blocked);

  const hash = crypto.createHash('sha256');
  hash.update(`node ${o.node}\n`);
  for (const f of files) {
    hash.update(`${f.rel} ${f.exec ? 755 : 644}\n`);
    hash.update(fs.readFileSync(f.abs));
  }
  const version = hash.digest('hex').slice(0, 16);
  const target = path.join(o.runtimeDir, version);
  if (!fs.existsSync(path.join(target, STAMP))) {
    const tmp = path.join(
      o.runtimeDir,
      `.tmp-${version}-${process.pid}-${crypto.randomBytes(4).toString('hex')}`,
    );
    try {
      copyInto(tmp, files, target, o.node);
      fs.writeFileSync(path.join(tmp, STAMP), '', { mode: 0o644 });
      fs.renameSync(tmp, target);
    } catch (e) {
      fs.rmSync(tmp, { recursive: true, force: true });
      // Another gateway placed the same version in the meantime: use theirs.
      if (!fs.existsSync(path.join(target, STAMP))) fail(o, why, (e as Error).message);
    }
  }
  const touch = () => {
    try {
      const now = new Date();
      fs.utimesSync(path.join(target, STAMP), now, now);
    } catch {
      // removed by hand: the next start places it again
    }
  };
  touch();
  prune(o.runtimeDir, version, o.keepHours);
  // While this gateway runs, its copy stays recent, so another gateway's prune leaves it alone.
  const timer = setInterval(touch, 3600_000);
  timer.unref();
  return {
    root: target,
    agentScript: path.join(target, 'dist', 'agent', 'atrium-agent.mjs'),
    placed: true,
    why,
    close: () => clearInterval(timer),
  };
}

function copyInto(dir: string, files: SourceFile[], finalDir: string, node: string): void {
  fs.mkdirSync(dir, { mode: 0o755 });
  fs.chmodSync(dir, 0o755);
  const mkdirs = (d: string) => {
    if (fs.existsSync(d)) return;
    mkdirs(path.dirname(d));
    fs.mkdirSync(d, { mode: 0o755 });
    fs.chmodSync(d, 0o755);
  };
  for (const f of files) {
    const to = path.join(dir, f.rel);
    mkdirs(path.dirname(to));
    fs.copyFileSync(f.abs, to);
    fs.chmodSync(to, f.exec ? 0o755 : 0o644);
  }
  // The `atrium` command of sessions (`atrium kernel add`): the agent puts <dir>/bin on the apps' PATH.
  if (files.some((f) => f.rel === path.join('dist', 'agent', 'atrium-cli.mjs'))) {
    mkdirs(path.join(dir, 'bin'));
    const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
    const cli = path.join(finalDir, 'dist', 'agent', 'atrium-cli.mjs');
    fs.writeFileSync(
      path.join(dir, 'bin', 'atrium'),
      `#!/bin/sh\n# The atrium command in sessions (placed by the gateway; do not edit).\nexec ${q(node)} ${q(cli)} "$@"\n`,
    );
    fs.chmodSync(path.join(dir, 'bin', 'atrium'), 0o755);
  }
}

/** Removes copies no gateway has used for `keepHours`, and leftovers of interrupted placements. */
function prune(dir: string, current: string, keepHours: number): void {
  const now = Date.now();
  for (const name of fs.readdirSync(dir)) {
    const p = path.join(dir, name);
    try {
      if (VERSION_RE.test(name) && name !== current) {
        const used = fs.statSync(path.join(p, STAMP)).mtimeMs;
        if (now - used > keepHours * 3600_000) fs.rmSync(p, { recursive: true, force: true });
      } else if (name.startsWith('.tmp-') && now - fs.statSync(p).mtimeMs > 3600_000) {
        fs.rmSync(p, { recursive: true, force: true });
      }
    } catch {
      // not ours, or gone already
    }
  }
}
