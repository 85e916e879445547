// System packages that sessions need on this host. The run command installs what is missing when it
// runs as root, with a progress line; otherwise it names exactly what to install.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

export interface PackageNeed {
  /** Debian package names. */
  packages: string[];
  /** Why, in one line. */
  why: string;
  present: () => boolean;
}

export const JUPYTER_NEED: PackageNeed = {
  packages: ['jupyter-notebook', 'python3-notebook', 'python3-ipykernel', 'jupyter-client'],
  why: 'Jupyter sessions',
  present: () =>
    fs.existsSync('/usr/bin/jupyter-notebook') &&
    spawnSync('/usr/bin/python3', ['-c', 'import ipykernel'], { stdio: 'ignore' }).status === 0,
};

export function ensurePackages(needs: PackageNeed[], print: (line: string) => void): boolean {
  const missing = needs.filter((n) => !n.present());
  if (missing.length === 0) return true;
  const pkgs = [...new Set(missing.flatMap((n) => n.packages))];
  const why = missing.map((n) => n.why).join(', ');
  if (process.getuid?.() !== 0 || !fs.existsSync('/usr/bin/apt-get')) {
    print(`atrium: ${why} need these Debian packages, which are missing: ${pkgs.join(' ')}`);
    print(`atrium: install them with: sudo apt-get install -y --no-install-recommends ${pkgs.join(' ')}`);
    return false;
  }
  print(`atrium: installing ${pkgs.join(' ')} (needed by ${why}); this takes about a minute...`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const opts = { stdio: ['ignore', 'ignore', 'inherit'] as ('ignore' | 'inherit')[], env };
  let r = spawnSync(
    'apt-get',
    ['-o', 'DPkg::Lock::Timeout=900', 'install', '-y', '--no-install-recommends', ...pkgs],
    opts,
  );
  if (r.status !== 0) {
    print('atrium: updating the package lists first...');
    spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=900', 'update', '-q'], opts);
    r = spawnSync(
      'apt-get',
      ['-o', 'DPkg::Lock::Timeout=900', 'install', '-y', '--no-install-recommends', ...pkgs],
      opts,
    );
  }
  if (r.status !== 0) {
    print(`atrium: could not install ${pkgs.join(' ')}; install them by hand and start again`);
    return false;
  }
  print(`atrium: installed ${pkgs.join(' ')}`);
  return true;
}
