// `atrium kernel add|list|remove`: turns a user's own Python environment (a venv, a conda env, any
// python with ipykernel) into a Jupyter kernel that their next session lists. It writes the user's own
// kernelspec dir (~/.local/share/jupyter/kernels/<name>/) as the user who runs it: the home comes from
// the password database for the real uid, never from an option or $HOME, so it cannot write elsewhere.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';

export const KERNEL_NAME_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export type EnvKind = 'venv' | 'conda' | 'python';

export interface KernelSource {
  kind: EnvKind;
  /** The interpreter the kernel runs (a venv's bin/python is kept as is: that is how it is a venv). */
  python: string;
  /** The environment's prefix (venv or conda dir); undefined for a bare python. */
  prefix?: string;
}

export interface KernelSpec {
  argv: string[];
  display_name: string;
  language: 'python';
  env?: Record<string, string>;
  metadata: { atrium: { kind: EnvKind; python: string; created: string } };
}

/** The per-user kernels directory Jupyter searches (JUPYTER_DATA_DIR unset). */
export function userKernelsDir(home: string): string {
  return path.join(home, '.local', 'share', 'jupyter', 'kernels');
}

export class KernelError extends Error {}

/** Which python an option set names, with the checks that need no process. */
export function resolveSource(opts: { python?: string; venv?: string; conda?: string }): KernelSource {
  const given = [opts.python, opts.venv, opts.conda].filter((v) => v !== undefined);
  if (given.length !== 1) throw new KernelError('give exactly one of --python, --venv or --conda');
  if (opts.venv !== undefined) {
    const prefix = path.resolve(opts.venv);
    if (!fs.existsSync(path.join(prefix, 'pyvenv.cfg')))
      throw new KernelError(
        `${prefix} is not a venv (no pyvenv.cfg); create one with: python3 -m venv ${prefix}`,
      );
    return { kind: 'venv', python: path.join(prefix, 'bin', 'python'), prefix };
  }
  if (opts.conda !== undefined) {
    const prefix = path.resolve(opts.conda);
    if (!fs.existsSync(path.join(prefix, 'conda-meta')))
      throw new KernelError(`${prefix} is not a conda environment (no conda-meta directory)`);
    return { kind: 'conda', python: path.join(prefix, 'bin', 'python'), prefix };
  }
  return { kind: 'python', python: path.resolve(opts.python!) };
}

/** Runs the interpreter once: it must exist, and have ipykernel (else: how to install it). */
export function probePython(src: KernelSource): { version: string; ipykernel: string } {
  try {
    fs.accessSync(src.python, fs.constants.X_OK);
  } catch {
    throw new KernelError(`${src.python} is not an executable python`);
  }
  const env = { ...process.env };
  delete env.PYTHONPATH;
  delete env.PYTHONHOME;
  const r = spawnSync(
    src.python,
    ['-c', 'import sys, ipykernel; print(sys.version.split()[0]); print(ipykernel.__version__)'],
    { encoding: 'utf8', env, timeout: 60_000 },
  );
  if (r.status !== 0) {
    const how =
      src.kind === 'conda'
        ? `conda install -p ${src.prefix} ipykernel`
        : `${src.python} -m pip install ipykernel`;
    const why = /No module named '?ipykernel/.test(r.stderr ?? '')
      ? 'ipykernel is not installed there'
      : `it does not run (${(r.stderr || r.error?.message || '').trim().split('\n').pop()})`;
    throw new KernelError(`${src.python}: ${why}; install it with: ${how}`);
  }
  const [version = '?', ipykernel = '?'] = r.stdout.trim().split('\n');
  return { version, ipykernel };
}

/** The kernelspec: the environment's bin first on PATH, as activating it would do. */
export function kernelSpec(
  src: KernelSource,
  displayName: string,
  extraEnv: Record<string, string> = {},
): KernelSpec {
  const env: Record<string, string> = {};
  if (src.prefix) {
    // ${PATH} is filled in by Jupyter (jupyter_client 7+) from the server's environment.
    env.PATH = `${path.join(src.prefix, 'bin')}:\${PATH}`;
    if (src.kind === 'venv') env.VIRTUAL_ENV = src.prefix;
    if (src.kind === 'conda') {
      env.CONDA_PREFIX = src.prefix;
      env.CONDA_DEFAULT_ENV = path.basename(src.prefix);
    }
  }
  Object.assign(env, extraEnv);
  return {
    argv: [src.python, '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
    display_name: displayName,
    language: 'python',
    ...(Object.keys(env).length > 0 ? { env } : {}),
    metadata: { atrium: { kind: src.kind, python: src.python, created: new Date().toISOString() } },
  };
}

/** The invoking user's home, from the password database (not $HOME). */
export function invokingHome(): string {
  const me = os.userInfo();
  if (process.geteuid && process.getuid && process.geteuid() !== process.getuid())
    throw new KernelError('refusing to run set-uid: run it as yourself');
  return me.homedir;
}

export function writeKernel(dir: string, name: string, spec: KernelSpec, force: boolean): string {
  if (!KERNEL_NAME_RE.test(name))
    throw new KernelError('--name: lower-case letters, digits, ".", "_" and "-" (at most 64)');
  const target = path.join(dir, name);
  if (fs.existsSync(target) && !force)
    throw new KernelError(`a kernel "${name}" exists already (${target}); use --force to replace it`);
  fs.mkdirSync(target, { recursive: true, mode: 0o755 });
  const tmp = path.join(target, `.kernel.json.${process.pid}`);
  fs.writeFileSync(tmp, `${JSON.stringify(spec, null, 2)}\n`, { mode: 0o644 });
  fs.renameSync(tmp, path.join(target, 'kernel.json'));
  return target;
}

export interface ListedKernel {
  name: string;
  displayName: string;
  python: string;
  byAtrium: boolean;
  /** false when its interpreter is gone (the environment was deleted). */
  ok: boolean;
}

export function listKernels(dir: string): ListedKernel[] {
  if (!fs.existsSync(dir)) return [];
  const out: ListedKernel[] = [];
  for (const name of fs.readdirSync(dir).sort()) {
    try {
      const spec = JSON.parse(
        fs.readFileSync(path.join(dir, name, 'kernel.json'), 'utf8'),
      ) as Partial<KernelSpec>;
      const python = spec.argv?.[0] ?? '';
      out.push({
        name,
        displayName: spec.display_name ?? name,
        python,
        byAtrium: spec.metadata?.atrium !== undefined,
        ok: python.startsWith('/') ? fs.existsSync(python) : true,
      });
    } catch {
      // not a kernelspec
    }
  }
  return out;
}

export function removeKernel(dir: string, name: string): string {
  if (!KERNEL_NAME_RE.test(name)) throw new KernelError(`no kernel "${name}"`);
  const target = path.join(dir, name);
  let st: fs.Stats;
  try {
    st = fs.lstatSync(target);
  } catch {
    throw new KernelError(`no kernel "${name}" in ${dir}`);
  }
  if (st.isSymbolicLink()) fs.unlinkSync(target);
  else if (st.isDirectory() && fs.existsSync(path.join(target, 'kernel.json')))
    fs.rmSync(target, { recursive: true });
  else throw new KernelError(`${target} is not a kernelspec`);
  return target;
}

function parseEnvPairs(pairs: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const p of pairs) {
    const i = p.indexOf('=');
    if (i < 1 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(p.slice(0, i)))
      throw new KernelError(`--env: "${p}" is not NAME=VALUE`);
    env[p.slice(0, i)] = p.slice(i + 1);
  }
  return env;
}

function run(f: () => void): void {
  try {
    f();
  } catch (e) {
    if (e instanceof KernelError) {
      process.stderr.write(`atrium kernel: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
}

export function registerKernelCommands(program: Command): void {
  const kernel = program
    .command('kernel')
    .description('Jupyter kernels from your own Python environments (listed by your next Jupyter session)');

  kernel
    .command('add')
    .description('make a venv, a conda env or a python with ipykernel a Jupyter kernel of yours')
    .requiredOption('--name <name>', 'kernel name: lower-case letters, digits, . _ -')
    .option('--venv <dir>', 'a Python venv (python3 -m venv DIR)')
    .option('--conda <dir>', 'a conda environment (its prefix directory)')
    .option('--python <path>', 'any python interpreter that has ipykernel')
    .option('--display-name <text>', 'name shown in Jupyter (default: "Python (<name>)")')
    .option('--env <NAME=VALUE...>', 'environment variables for the kernel', [])
    .option('--force', 'replace a kernel of the same name')
    .action(
      (opts: {
        name: string;
        venv?: string;
        conda?: string;
        python?: string;
        displayName?: string;
        env: string[];
        force?: boolean;
      }) =>
        run(() => {
          if (!KERNEL_NAME_RE.test(opts.name))
            throw new KernelError('--name: lower-case letters, digits, ".", "_" and "-" (at most 64)');
          const src = resolveSource(opts);
          const probe = probePython(src);
          const spec = kernelSpec(src, opts.displayName ?? `Python (${opts.name})`, parseEnvPairs(opts.env));
          const dir = writeKernel(userKernelsDir(invokingHome()), opts.name, spec, !!opts.force);
          process.stdout.write(
            `kernel "${opts.name}" (${spec.display_name}): Python ${probe.version}, ipykernel ${probe.ipykernel}\n` +
              `  written to ${dir}/kernel.json; new Jupyter sessions list it\n`,
          );
        }),
    );

  kernel
    .command('list')
    .description('your kernels')
    .option('--json', 'as JSON')
    .action((opts: { json?: boolean }) =>
      run(() => {
        const dir = userKernelsDir(invokingHome());
        const ks = listKernels(dir);
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(ks, null, 2)}\n`);
          return;
        }
        if (ks.length === 0) process.stdout.write(`no kernels of yours in ${dir}\n`);
        for (const k of ks) {
          process.stdout.write(
            `${k.name}\t${k.displayName}\t${k.python}${k.ok ? '' : '\t(its python is gone)'}${k.byAtrium ? '' : '\t(not made by atrium)'}\n`,
          );
        }
      }),
    );

  kernel
    .command('remove')
    .description('remove one of your kernels (its environment is left alone)')
    .argument('<name>')
    .action((name: string) =>
      run(() => {
        const gone = removeKernel(userKernelsDir(invokingHome()), name);
        process.stdout.write(`removed ${gone}\n`);
      }),
    );
}
