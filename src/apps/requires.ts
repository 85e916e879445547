// "Is this app installed here?": the `requires` entries of an app, checked on the gateway host (when a
// cluster's nodes have the same software) and again by the agent on the node. Node built-ins only.
import fs from 'node:fs';
import path from 'node:path';

/** PATH the check searches: the one sessions start with, not the gateway's own (no pyenv shims...). */
export const SESSION_PATH = '/usr/local/bin:/usr/bin:/bin';

function executable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Where a command is: an absolute path as is, else the first match on `searchPath`. */
export function findExecutable(name: string, searchPath = SESSION_PATH): string | null {
  if (name.includes('/')) return path.isAbsolute(name) && executable(name) ? name : null;
  for (const dir of searchPath.split(':')) {
    if (!dir) continue;
    const p = path.join(dir, name);
    if (executable(p)) return p;
  }
  return null;
}

/** The entries of `requires` that are not satisfied ("a|b" is satisfied by either). */
export function missingRequirements(
  requires: readonly string[] | undefined,
  searchPath = SESSION_PATH,
): string[] {
  if (!requires) return [];
  return requires.filter(
    (entry) =>
      !entry
        .split('|')
        .map((s) => s.trim())
        .filter(Boolean)
        .some((alt) => findExecutable(alt, searchPath) !== null),
  );
}
