// The app catalogue, its files, the Jupyter front-end choice, `requires`, sub-app paths, user kernels
// and the agent relay: everything of issue 6 that needs no session.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BUILTIN_APPS } from '../../src/apps/builtin.ts';
import { buildCatalogue } from '../../src/apps/catalogue.ts';
import { missingRequirements } from '../../src/apps/requires.ts';
import { containerArgv, extraAppBase } from '../../src/apps/types.ts';
import {
  KernelError,
  kernelSpec,
  listKernels,
  removeKernel,
  resolveSource,
  writeKernel,
} from '../../src/cli/kernel.ts';
import { ConfigError, parseConfig } from '../../src/config/load.ts';
import { validateRequest } from '../../src/core/request.ts';
import { parseUserPath } from '../../src/proxy/routes.ts';
import { socketAppsOf } from '../../src/sessions/service.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-apps-unit-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const p = path.join(tmp, name);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, text);
  return p;
}

describe('catalogue', () => {
  const entry = (app: Record<string, unknown>, key = 'apps[0]') => ({
    app: app as never,
    key,
    lineOf: () => 3,
    file: 'site.yaml',
  });

  it('ships every app of issue 6, each valid on its own', () => {
    const { apps, problems } = buildCatalogue(BUILTIN_APPS, []);
    expect(problems).toEqual([]);
    expect(apps.map((a) => a.id)).toEqual(['jupyter', 'vscode', 'desktop', 'terminal', 'shiny', 'rstudio']);
    expect(apps.find((a) => a.id === 'rstudio')?.requires).toEqual(['/usr/lib/rstudio-server/bin/rserver']);
  });

  it('changes only the given keys of a built-in, removes a disabled one, adds a new one with defaults', () => {
    const { apps, problems } = buildCatalogue(BUILTIN_APPS, [
      entry({ id: 'vscode', clusters: ['gpu'], ready: { timeoutSeconds: 30 } }),
      entry({ id: 'desktop', disabled: true }, 'apps[1]'),
      entry({
        id: 'mlflow',
        name: 'MLflow',
        command: ['mlflow', 'ui', '--port', '{port}'],
        ready: { http: '/' },
      }),
    ]);
    expect(problems).toEqual([]);
    const vscode = apps.find((a) => a.id === 'vscode')!;
    expect(vscode.clusters).toEqual(['gpu']);
    expect(vscode.prefix).toBe('strip');
    expect(vscode.ready).toEqual({ http: '/healthz', timeoutSeconds: 30 });
    expect(apps.some((a) => a.id === 'desktop')).toBe(false);
    expect(apps.find((a) => a.id === 'mlflow')).toMatchObject({
      prefix: 'keep',
      description: '',
      ready: { http: '/', timeoutSeconds: 120 },
    });
  });

  it('names what is wrong with an entry', () => {
    const { problems } = buildCatalogue(BUILTIN_APPS, [
      entry({ id: 'half', name: 'Half' }),
      entry(
        { id: 'leaky', name: 'L', command: ['x', '{port}', '--token={token}'], ready: { tcp: true } },
        'apps[1]',
      ),
      entry(
        { id: 'sock', name: 'S', command: ['x', '{port}'], unixSocket: true, ready: { tcp: true } },
        'apps[2]',
      ),
      entry({ id: 'two', name: 'T', command: ['x', '{port}'], ready: { http: '/', tcp: true } }, 'apps[3]'),
      entry({ id: 'nowhere', name: 'N', command: ['x'], ready: { tcp: true } }, 'apps[4]'),
      entry({ id: 'half', name: 'again' }, 'apps[5]'),
    ]);
    const byKey = Object.fromEntries(problems.map((p) => [p.key, p.message]));
    expect(byKey.apps_0).toBeUndefined();
    expect(byKey['apps[0]']).toMatch(/missing required key "command, ready"/);
    expect(byKey['apps[1].command']).toMatch(/must not contain \{token\}/);
    expect(byKey['apps[2].command']).toMatch(/unixSocket is set: pass \{socket\}/);
    expect(byKey['apps[3].ready']).toMatch(/one of http, rfb or tcp/);
    expect(byKey['apps[4].command']).toMatch(/must listen on \{port\}/);
    expect(byKey['apps[5].id']).toMatch(/duplicate app id "half"/);
  });

  it('reads appsFile and environmentsFile, with errors naming the file, key and line', () => {
    write(
      'apps.yaml',
      [
        'apps:',
        '  - id: shiny',
        '    description: Our Shiny',
        '  - id: hello',
        '    name: Hello',
        '    command: [python3, -m, http.server, "{port}"]',
        '    ready: {http: /}',
      ].join('\n'),
    );
    write('envs.yaml', '- id: torch\n  name: PyTorch\n  setup: [module load pytorch]\n');
    const cfg = parseConfig(
      `appsFile: apps.yaml\nenvironmentsFile: envs.yaml\n`,
      path.join(tmp, 'a.yaml'),
      tmp,
    );
    expect(cfg.appCatalogue.find((a) => a.id === 'shiny')?.description).toBe('Our Shiny');
    expect(cfg.appCatalogue.find((a) => a.id === 'hello')?.ready.http).toBe('/');
    // The file's list replaces the default one (which only has "system")...
    expect(cfg.environments.map((e) => e.id)).toEqual(['torch']);
    // Inline entries win over the file's.
    const inline = parseConfig(
      'appsFile: apps.yaml\napps:\n  - id: shiny\n    description: Inline\n',
      path.join(tmp, 'b.yaml'),
      tmp,
    );
    expect(inline.appCatalogue.find((a) => a.id === 'shiny')?.description).toBe('Inline');

    const bad = write(
      'bad-apps.yaml',
      '- id: x\n  name: X\n  prefix: sideways\n  command: [a, "{port}"]\n  ready: {tcp: true}\n',
    );
    try {
      parseConfig('appsFile: bad-apps.yaml\n', path.join(tmp, 'c.yaml'), tmp);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).file).toBe(bad);
      expect((e as Error).message).toMatch(/apps\[0\]\.prefix \(line 3\)/);
    }
    // ...and adds to an inline list, where an id may appear once.
    write('dup-envs.yaml', '- id: system\n  name: Again\n');
    const inlineEnv = 'environments:\n  - {id: system, name: System}\nenvironmentsFile: dup-envs.yaml\n';
    expect(() => parseConfig(inlineEnv, path.join(tmp, 'd.yaml'), tmp)).toThrow(
      /environments\[0\]\.id \(line 1\): duplicate environment id "system"/,
    );
    expect(() => parseConfig('appsFile: missing.yaml\n', path.join(tmp, 'e.yaml'), tmp)).toThrow(
      /cannot read/,
    );
    expect(() =>
      parseConfig('apps:\n  - id: vscode\n    clusters: [nope]\n', path.join(tmp, 'f.yaml'), tmp),
    ).toThrow(/apps\[0\]\.clusters \(line 3\): unknown cluster "nope"/);
  });

  it('parses the shipped example files', () => {
    const cfg = parseConfig(
      [
        'clusters:',
        '  - {name: local, backend: local}',
        '  - {name: hpc, backend: slurm, slurm: {}}',
        'appsFile: apps.yaml',
        'environmentsFile: environments.yaml',
      ].join('\n'),
      path.join(ROOT, 'deploy', 'examples', 'atrium.yaml'),
      path.join(ROOT, 'deploy', 'examples'),
    );
    expect(cfg.appCatalogue.length).toBeGreaterThan(BUILTIN_APPS.length);
    expect(cfg.environments.length).toBeGreaterThan(1);
  });
});

describe('requires', () => {
  it('finds commands on a PATH, absolute paths, and either of "a|b"', () => {
    const bin = path.join(tmp, 'bin');
    write('bin/tool-a', '#!/bin/sh\n');
    fs.chmodSync(path.join(bin, 'tool-a'), 0o755);
    write('bin/not-exec', '');
    expect(missingRequirements(['tool-a', `${bin}/tool-a`, 'nope|tool-a'], bin)).toEqual([]);
    expect(missingRequirements(['not-exec', 'nope|nada', '/no/such'], bin)).toEqual([
      'not-exec',
      'nope|nada',
      '/no/such',
    ]);
    expect(missingRequirements(undefined, bin)).toEqual([]);
  });
});

describe('Jupyter front end choice (share/jupyter/atrium-jupyter)', () => {
  const wrapper = path.join(ROOT, 'share', 'jupyter', 'atrium-jupyter');
  function stubs(dir: string, names: Record<string, string>): string {
    const d = path.join(tmp, dir);
    fs.mkdirSync(d, { recursive: true });
    for (const [n, version] of Object.entries(names)) {
      fs.writeFileSync(path.join(d, n), `#!/bin/sh\necho ${version}\n`, { mode: 0o755 });
    }
    return d;
  }
  const TCP = ['--ip=127.0.0.1', '--port=9999', '--base-url=/user/a/s1/', '--root-dir=/home/a'];
  function choose(pathDir: string, ui?: string, args = TCP): string[] {
    const r = spawnSync(wrapper, args, {
      encoding: 'utf8',
      env: {
        PATH: `${pathDir}:/usr/bin:/bin`,
        ATRIUM_JUPYTER_DRY_RUN: '1',
        ...(ui ? { ATRIUM_JUPYTER_UI: ui } : {}),
      },
    });
    if (r.status !== 0) return [`exit ${r.status}: ${r.stderr.trim()}`];
    return r.stdout.trim().split('\n');
  }

  it('prefers JupyterLab, with Jupyter Server flags and its sign-in class', () => {
    const d = stubs('lab', { 'jupyter-lab': '4.2.0', 'jupyter-notebook': '6.4.12' });
    const argv = choose(d);
    expect(argv[0]).toBe('jupyter-lab');
    expect(argv).toContain('--ServerApp.base_url=/user/a/s1/');
    expect(argv).toContain('--ServerApp.login_handler_class=atrium_jupyter_auth.ServerLoginHandler');
    expect(argv).toContain('--ServerApp.token=');
    expect(argv).toContain('--ServerApp.root_dir=/home/a');
    expect(argv).toContain('--ServerApp.kernel_manager_class=atrium_jupyter_kernels.ServerKernelManager');
  });

  it('falls back to Notebook 6 (its own server) as on Debian 12', () => {
    const d = stubs('nb6', { 'jupyter-notebook': '6.4.12', 'jupyter-nbclassic': '0.3.2' });
    const argv = choose(d);
    expect(argv[0]).toBe('jupyter-notebook');
    expect(argv).toContain('--NotebookApp.base_url=/user/a/s1/');
    expect(argv).toContain('--NotebookApp.login_handler_class=atrium_jupyter_auth.NotebookLoginHandler');
    expect(argv).toContain('--NotebookApp.notebook_dir=/home/a');
    expect(argv).toContain('--NotebookApp.port_retries=0');
    expect(argv).toContain('--NotebookApp.kernel_manager_class=atrium_jupyter_kernels.NotebookKernelManager');
    expect(argv.join(' ')).not.toContain('ServerApp');
  });

  it('ATRIUM_JUPYTER_SPARE_KERNEL=0 leaves Jupyter its own kernel manager (no spare kernel)', () => {
    const d = stubs('nospare', { 'jupyter-lab': '4.2.0' });
    const r = spawnSync(wrapper, TCP, {
      encoding: 'utf8',
      env: { PATH: `${d}:/usr/bin:/bin`, ATRIUM_JUPYTER_DRY_RUN: '1', ATRIUM_JUPYTER_SPARE_KERNEL: '0' },
    });
    expect(r.status).toBe(0);
    expect(r.stdout).not.toContain('kernel_manager_class');
  });

  it("tells Notebook 7 from 6 by the script's own Python reading _version.py, without running the script", () => {
    const chosen = (shebang: string, version: string) => {
      const d = path.join(tmp, `nbv-${version}-${shebang.length}`);
      fs.mkdirSync(path.join(d, 'site', 'notebook'), { recursive: true });
      // Neither the script nor the package may run: only their files are read.
      fs.writeFileSync(path.join(d, 'jupyter-notebook'), `${shebang}\nraise SystemExit(3)\n`, {
        mode: 0o755,
      });
      fs.writeFileSync(path.join(d, 'site', 'notebook', '__init__.py'), 'raise ImportError("imported")\n');
      fs.writeFileSync(path.join(d, 'site', 'notebook', '_version.py'), `__version__ = "${version}"\n`);
      const r = spawnSync(wrapper, TCP, {
        encoding: 'utf8',
        env: {
          PATH: `${d}:/usr/bin:/bin`,
          PYTHONPATH: path.join(d, 'site'),
          PYTHONDONTWRITEBYTECODE: '1',
          ATRIUM_JUPYTER_DRY_RUN: '1',
        },
      });
      return r.stdout;
    };
    for (const shebang of ['#!/usr/bin/python3', '#!/usr/bin/env python3']) {
      expect(chosen(shebang, '7.2.2')).toContain('--ServerApp.base_url=/user/a/s1/');
      expect(chosen(shebang, '6.5.7')).toContain('--NotebookApp.base_url=/user/a/s1/');
    }
    // Notebook 6 on a Python with its own distutils (Debian 12's 3.11) starts on it, not setuptools'.
    const py311 = spawnSync('/usr/bin/python3', ['-c', 'import sys; print(sys.version_info < (3, 12))'], {
      encoding: 'utf8',
    }).stdout.trim();
    expect(chosen('#!/usr/bin/python3', '6.5.7').includes('SETUPTOOLS_USE_DISTUTILS=stdlib')).toBe(
      py311 === 'True',
    );
    expect(chosen('#!/usr/bin/python3', '7.2.2')).not.toContain('SETUPTOOLS_USE_DISTUTILS');
  });

  it('the sign-in module takes the distutils setting back before any kernel starts', () => {
    const r = spawnSync(
      '/usr/bin/python3',
      ['-c', 'import os, atrium_jupyter_auth\nprint(os.environ.get("SETUPTOOLS_USE_DISTUTILS"))'],
      {
        encoding: 'utf8',
        env: {
          PYTHONPATH: path.join(ROOT, 'share', 'jupyter'),
          SETUPTOOLS_USE_DISTUTILS: 'stdlib',
          ATRIUM_JUPYTER_UNSET_DISTUTILS: '1',
        },
      },
    );
    expect(r.stdout.trim()).toBe('None');
  });

  it('listens on a Unix socket of mode 600 with --sock, and on no port', () => {
    const sock = [
      '--sock=/home/a/.atrium/sessions/s1/app.sock',
      '--base-url=/user/a/s1/',
      '--root-dir=/home/a',
    ];
    const nb6 = choose(stubs('nb6', { 'jupyter-notebook': '6.4.12' }), undefined, sock);
    expect(nb6).toContain('--NotebookApp.sock=/home/a/.atrium/sessions/s1/app.sock');
    expect(nb6).toContain('--NotebookApp.sock_mode=0600');
    expect(nb6.join(' ')).not.toMatch(/\.(port|ip|port_retries)=/);
    const lab = choose(stubs('lab', { 'jupyter-lab': '4.2.0' }), undefined, sock);
    expect(lab).toContain('--ServerApp.sock=/home/a/.atrium/sessions/s1/app.sock');
    expect(lab).toContain('--ServerApp.sock_mode=0600');
    expect(lab).toContain('--ServerApp.login_handler_class=atrium_jupyter_auth.ServerLoginHandler');
    expect(lab.join(' ')).not.toMatch(/\.(port|ip)=/);
    // One or the other, and an absolute path.
    expect(choose(stubs('lab', {}), undefined, [...sock, '--port=1'])[0]).toMatch(/^exit 2: .*not both/);
    expect(choose(stubs('lab', {}), undefined, ['--sock=app.sock'])[0]).toMatch(/^exit 2: .*absolute/);
  });

  it('the sign-in module refuses a Jupyter that would not listen on the socket asked for', () => {
    const check = (env: Record<string, string>, sock: string | null) =>
      spawnSync(
        '/usr/bin/python3',
        [
          '-c',
          `import atrium_jupyter_auth as a\nclass App: sock = ${sock === null ? 'None' : JSON.stringify(sock)}\na._validate(App())\nprint("ok")`,
        ],
        {
          encoding: 'utf8',
          env: {
            PATH: '/usr/bin:/bin',
            PYTHONPATH: path.join(ROOT, 'share', 'jupyter'),
            PYTHONDONTWRITEBYTECODE: '1',
            ...env,
          },
        },
      );
    const want = { ATRIUM_JUPYTER_TOKEN: 't', ATRIUM_JUPYTER_SOCK: '/s/app.sock' };
    expect(check(want, '/s/app.sock').stdout.trim()).toBe('ok');
    // A Jupyter that does not know `sock` has none: it would listen on TCP.
    const old = check(want, null);
    expect(old.status).toBe(1);
    expect(old.stderr).toContain('cannot listen on a Unix socket');
    expect(check(want, '/elsewhere.sock').status).toBe(1);
    // TCP mode (no socket asked for) and the token check as before.
    expect(check({ ATRIUM_JUPYTER_TOKEN: 't' }, '').stdout.trim()).toBe('ok');
    expect(check({ ATRIUM_JUPYTER_SOCK: '/s/app.sock' }, '/s/app.sock').stderr).toContain(
      'ATRIUM_JUPYTER_TOKEN is not set',
    );
    // Several Python starts (Jupyter's imports): seconds each on a loaded machine, so a roomier limit.
  }, 60_000);

  it('with ATRIUM_JUPYTER_KERNELS=ipc, ipykernel kernels start through atrium_ipc_kernel, others as they are', () => {
    const dry = (name: string, version: string) =>
      spawnSync(wrapper, TCP, {
        encoding: 'utf8',
        env: {
          PATH: `${stubs(name, { [name]: version })}:/usr/bin:/bin`,
          ATRIUM_JUPYTER_DRY_RUN: '1',
          ATRIUM_JUPYTER_KERNELS: 'ipc',
        },
      }).stdout.split('\n');
    for (const [name, app] of [
      ['jupyter-notebook', 'NotebookApp'],
      ['jupyter-lab', 'ServerApp'],
    ] as const) {
      const argv = dry(name, name === 'jupyter-lab' ? '4.2.0' : '6.4.12');
      expect(argv).toContain('--KernelManager.transport=ipc');
      expect(argv).toContain(`--${app}.kernel_spec_manager_class=atrium_ipc_kernel.KernelSpecManager`);
    }
    expect(choose(stubs('nb6', { 'jupyter-notebook': '6.4.12' })).join(' ')).not.toMatch(/ipc/);
    // Not the `kernels` folder of the kernelspec test below, which lists what it finds there.
    const kernels = path.join(tmp, 'ipc-kernels');
    const spec = (name: string, argv: string[]) => {
      fs.mkdirSync(path.join(kernels, name), { recursive: true });
      fs.writeFileSync(path.join(kernels, name, 'kernel.json'), JSON.stringify({ argv, display_name: name }));
    };
    spec('py', [
      '/opt/env/bin/python',
      '-Xfrozen_modules=off',
      '-m',
      'ipykernel_launcher',
      '-f',
      '{connection_file}',
    ]);
    spec('r', ['R', '--slave', '-e', 'IRkernel::main()', '--args', '{connection_file}']);
    const r = spawnSync(
      '/usr/bin/python3',
      [
        '-c',
        'import json, sys, atrium_ipc_kernel as k\nm = k.KernelSpecManager(kernel_dirs=[sys.argv[1]], ensure_native_kernel=False)\nprint(json.dumps({n: m.get_kernel_spec(n).argv for n in ("py", "r")}))',
        kernels,
      ],
      {
        encoding: 'utf8',
        env: {
          PATH: '/usr/bin:/bin',
          PYTHONPATH: path.join(ROOT, 'share', 'jupyter'),
          PYTHONDONTWRITEBYTECODE: '1',
        },
      },
    );
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({
      py: [
        '/opt/env/bin/python',
        '-Xfrozen_modules=off',
        path.join(ROOT, 'share', 'jupyter', 'atrium_ipc_kernel.py'),
        '-f',
        '{connection_file}',
      ],
      r: ['R', '--slave', '-e', 'IRkernel::main()', '--args', '{connection_file}'],
    });
  }, 60_000);

  it('reads a python3 kernel.json as jupyter_client does, without importing IPython or ipykernel into the server', () => {
    const kernels = path.join(tmp, 'fast-kernels');
    fs.mkdirSync(path.join(kernels, 'python3'), { recursive: true });
    const argv = ['/opt/env/bin/python', '-m', 'ipykernel_launcher', '-f', '{connection_file}'];
    fs.writeFileSync(
      path.join(kernels, 'python3', 'kernel.json'),
      JSON.stringify({ argv, display_name: 'Env', metadata: { debugger: true } }),
    );
    const r = spawnSync(
      '/usr/bin/python3',
      [
        '-c',
        [
          'import json, sys, atrium_jupyter_kernels as k',
          'from jupyter_client.kernelspec import KernelSpecManager as Own',
          'm = k.KernelSpecManager(kernel_dirs=[sys.argv[1]])',
          'ours = m.get_kernel_spec("python3").to_dict()',
          'loaded = sorted(n for n in ("IPython", "ipykernel") if n in sys.modules)',
          // Jupyter's own lookup of the same directory (it imports both) gives the same spec.
          'theirs = Own(kernel_dirs=[sys.argv[1]]).get_kernel_spec("python3").to_dict()',
          'dirs = k.KernelSpecManager().kernel_dirs == Own().kernel_dirs',
          'print(json.dumps({"spec": ours, "same": ours == theirs, "loaded": loaded, "dirs": dirs}))',
        ].join('\n'),
        kernels,
      ],
      {
        encoding: 'utf8',
        env: {
          PATH: '/usr/bin:/bin',
          HOME: tmp,
          PYTHONPATH: path.join(ROOT, 'share', 'jupyter'),
          PYTHONDONTWRITEBYTECODE: '1',
          // Jupyter's own lookup imports debugpy, which warns on stderr otherwise.
          PYDEVD_DISABLE_FILE_VALIDATION: '1',
        },
      },
    );
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as {
      spec: { argv: string[] };
      same: boolean;
      loaded: string[];
      dirs: boolean;
    };
    expect(out).toMatchObject({ same: true, loaded: [], dirs: true });
    expect(out.spec.argv).toEqual(argv);
  }, 60_000);

  it('the built-in Jupyter runs on its socket', () => {
    const jupyter = BUILTIN_APPS.find((a) => a.id === 'jupyter')!;
    expect(jupyter.unixSocket).toBe(true);
    expect(jupyter.command).toContain('--sock={socket}');
    expect(jupyter.command.join(' ')).not.toContain('{port}');
    expect(jupyter.upstreamHeaders).toEqual({ Authorization: 'token {token}' });
  });

  it('runs Notebook 7 on Jupyter Server flags, and obeys ATRIUM_JUPYTER_UI', () => {
    const d = stubs('nb7', { 'jupyter-notebook': '7.2.1', 'jupyter-nbclassic': '1.0.0' });
    expect(choose(d)).toContain('--ServerApp.base_url=/user/a/s1/');
    expect(choose(d, 'nbclassic')[0]).toBe('jupyter-nbclassic');
    expect(choose(d, 'lab')[0]).toMatch(/^exit 127: .*no Jupyter found/);
    expect(choose(d, 'bogus')[0]).toMatch(/^exit 2/);
  });
});

describe('paths of several apps in one session', () => {
  it('addresses an extra app as /user/<name>/<session>.<app>/', () => {
    expect(extraAppBase('/user/alice/abc123/', 'terminal')).toBe('/user/alice/abc123.terminal/');
    expect(parseUserPath('/user/alice/abc123.terminal/pty?x=1')).toEqual({
      username: 'alice',
      sessionId: 'abc123',
      app: 'terminal',
      rest: '/pty?x=1',
      bare: false,
    });
    expect(parseUserPath('/user/alice/abc123.my.app')).toMatchObject({ app: 'my.app', bare: true });
    expect(parseUserPath('/user/alice/abc123/x')?.app).toBeUndefined();
    for (const p of [
      '/user/alice/abc123./',
      '/user/alice/abc123..x/',
      '/user/alice/abc123.-x/',
      '/user/alice/ab.x/',
    ])
      expect(parseUserPath(p), p).toBeNull();
  });

  it('validates extra apps of a request', () => {
    const limits = {
      maxCores: 4,
      maxMemoryGb: 8,
      maxGpus: 0,
      maxHours: 8,
      apps: ['jupyter', 'terminal', 'rstudio'],
      extraApps: ['jupyter', 'terminal'],
      environments: [],
    };
    const req = { cluster: 'c', app: 'jupyter', cores: 1, memoryGb: 1, gpus: 0, hours: 1 };
    expect(validateRequest({ ...req, extraApps: ['terminal'] }, limits)).toEqual([]);
    const fields = (extraApps: unknown) =>
      validateRequest({ ...req, extraApps: extraApps as string[] }, limits).map((e) => e.message);
    expect(fields(['rstudio'])).toEqual(['Extra apps: unknown choice "rstudio"']);
    expect(fields(['jupyter'])).toEqual(['Extra apps: "jupyter" is already in the session']);
    expect(fields('terminal')).toEqual(['Extra apps: a list of app names']);
    expect(fields(['terminal', 'a', 'b', 'c', 'd'])).toEqual(['Extra apps: at most 4']);
  });
});

describe('environments in containers', () => {
  it('puts the app after the runtime, its arguments and the image', () => {
    expect(containerArgv(undefined, ['app', '-x'])).toEqual(['app', '-x']);
    expect(
      containerArgv({ runtime: 'apptainer', image: '/images/torch.sif', args: ['--nv'] }, ['app', '-x']),
    ).toEqual(['apptainer', 'exec', '--nv', '/images/torch.sif', 'app', '-x']);
  });
});

describe('atrium kernel', () => {
  it('makes a kernelspec of a venv, lists it, replaces it only with --force, removes it', () => {
    const venv = path.join(tmp, 'venv');
    write('venv/pyvenv.cfg', 'home = /usr/bin\n');
    const src = resolveSource({ venv });
    expect(src).toEqual({ kind: 'venv', python: `${venv}/bin/python`, prefix: venv });
    const spec = kernelSpec(src, 'Python (mine)', { OMP_NUM_THREADS: '4' });
    expect(spec.argv).toEqual([`${venv}/bin/python`, '-m', 'ipykernel_launcher', '-f', '{connection_file}']);
    expect(spec.env).toEqual({ PATH: `${venv}/bin:\${PATH}`, VIRTUAL_ENV: venv, OMP_NUM_THREADS: '4' });
    const dir = path.join(tmp, 'kernels');
    writeKernel(dir, 'mine', spec, false);
    expect(() => writeKernel(dir, 'mine', spec, false)).toThrow(/exists already/);
    writeKernel(dir, 'mine', spec, true);
    expect(() => writeKernel(dir, '../evil', spec, false)).toThrow(KernelError);
    expect(listKernels(dir)).toEqual([
      { name: 'mine', displayName: 'Python (mine)', python: `${venv}/bin/python`, byAtrium: true, ok: false },
    ]);
    expect(() => removeKernel(dir, '..')).toThrow(KernelError);
    removeKernel(dir, 'mine');
    expect(listKernels(dir)).toEqual([]);
  });

  it('checks what it is given', () => {
    expect(() => resolveSource({})).toThrow(/exactly one of/);
    expect(() => resolveSource({ venv: tmp })).toThrow(/is not a venv/);
    expect(() => resolveSource({ conda: tmp })).toThrow(/not a conda environment/);
    write('conda/conda-meta/history', '');
    const c = resolveSource({ conda: path.join(tmp, 'conda') });
    expect(kernelSpec(c, 'C').env).toMatchObject({
      CONDA_PREFIX: path.join(tmp, 'conda'),
      CONDA_DEFAULT_ENV: 'conda',
    });
  });
});

describe('agent relay (the handshake: relay.test.ts)', () => {
  it('treats a reported port as a relay only for apps the session started on a socket', () => {
    const app = (id: string) => BUILTIN_APPS.find((a) => a.id === id);
    const request = JSON.stringify({ extraApps: ['terminal'] });
    // Recorded at creation: what the agent was told, whatever the catalogue says later.
    expect(socketAppsOf({ app: 'jupyter', request, socket_apps: '["jupyter","terminal"]' }, app)).toEqual(
      new Set(['jupyter', 'terminal']),
    );
    expect(socketAppsOf({ app: 'jupyter', request, socket_apps: '[]' }, app)).toEqual(new Set());
    // Sessions from before the record: the catalogue, but Jupyter was on TCP then.
    expect(socketAppsOf({ app: 'jupyter', request, socket_apps: null }, app)).toEqual(new Set(['terminal']));
    expect(socketAppsOf({ app: 'vscode', request: '{}', socket_apps: null }, app)).toEqual(
      new Set(['vscode']),
    );
  });
});
