import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { UnixIdentity } from '../scheduler/types.ts';

const run = promisify(execFile);
const UNIX_NAME_RE = /^[a-z_][a-z0-9_.-]{0,31}\$?$/i;

export function isValidUnixName(name: string): boolean {
  return UNIX_NAME_RE.test(name);
}

/** Looks a user up through NSS (so LDAP/SSSD users work too). Null when unknown. */
export async function lookupUnixUser(name: string): Promise<UnixIdentity | null> {
  if (!isValidUnixName(name)) return null;
  try {
    const { stdout } = await run('getent', ['passwd', name], { timeout: 5000 });
    const f = stdout.trim().split(':');
    if (f.length < 7) return null;
    return { user: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5]!, shell: f[6]! };
  } catch {
    return null;
  }
}

export async function groupsOf(name: string): Promise<string[]> {
  if (!isValidUnixName(name)) return [];
  try {
    const { stdout } = await run('id', ['-nG', name], { timeout: 5000 });
    return stdout.trim().split(/\s+/).filter(Boolean);
  } catch {
    return [];
  }
}
