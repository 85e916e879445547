// The files sessions run as their users: used where Atrium is when every user can read them there,
// else copied into runtimeDir (root's, 755/644, one directory per content), else a refusal that names
// the path in the way. On temporary trees with real modes (the unit tests run as root in CI).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import {
  prepareSessionRuntime,
  RuntimeDirError,
  type RuntimeOptions,
  whyOthersCannot,
} from '../../src/system/runtime-dir.ts';

const base = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-runtime-unit-'));
fs.chmodSync(base, 0o755);
afterAll(() => fs.rmSync(base, { recursive: true, force: true }));

let n = 0;
/** A minimal Atrium directory: agent, session CLI, a share helper, node-pty's JavaScript and binary. */
function fakeAtrium(parentMode: number): string {
  const parent = path.join(base, `p${n++}`);
  fs.mkdirSync(parent, { mode: parentMode });
  fs.chmodSync(parent, parentMode);
  const root = path.join(parent, 'atrium');
  const put = (rel: string, text: string, mode = 0o644) => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true, mode: 0o755 });
    fs.writeFileSync(path.join(root, rel), text, { mode });
    fs.chmodSync(path.join(root, rel), mode);
  };
  put('dist/agent/atrium-agent.mjs', '// agent\n');
  put('dist/agent/atrium-cli.mjs', '// cli\n');
  put('dist/apps/terminal/server.mjs', '// terminal\n');
  put('share/jupyter/atrium-jupyter', '#!/bin/sh\n', 0o700);
  put('share/jupyter/atrium_jupyter_auth.py', '# auth\n', 0o600);
  put('node_modules/node-pty/package.json', '{}\n');
  put('node_modules/node-pty/lib/index.js', '// pty\n');
  put('node_modules/node-pty/lib/index.test.js', '// not shipped\n');
  put('node_modules/node-pty/build/Release/pty.node', 'ELF\n', 0o755);
  put('node_modules/node-pty/src/unix/pty.cc', '// not shipped\n');
  return root;
}

let runtimeDir: string;
beforeEach(() => {
  runtimeDir = path.join(base, `rt${n++}`);
});
const opts = (root: string, more: Partial<RuntimeOptions> = {}): RuntimeOptions => ({
  root,
  runtimeDir,
  node: '/usr/bin/node',
  keepHours: 9,
  othersMustRead: true,
  ...more,
});
const modeOf = (p: string) => fs.statSync(p).mode & 0o7777;

describe('whyOthersCannot', () => {
  it('names the directory in the way, or the file, and its mode', () => {
    const root = fakeAtrium(0o700);
    const agent = path.join(root, 'dist/agent/atrium-agent.mjs');
    expect(whyOthersCannot(agent)).toBe(`${path.dirname(root)} is mode 700: other users cannot enter it`);
    const open = fakeAtrium(0o755);
    expect(whyOthersCannot(path.join(open, 'dist/agent/atrium-agent.mjs'))).toBeNull();
    const auth = path.join(open, 'share/jupyter/atrium_jupyter_auth.py');
    expect(whyOthersCannot(auth)).toBe(`${auth} is mode 600: other users cannot read it`);
    fs.chmodSync(auth, 0o644);
    expect(whyOthersCannot(auth, true)).toBe(`${auth} is mode 644: other users cannot run it`);
    expect(whyOthersCannot(path.join(open, 'nope'))).toBe(`${path.join(open, 'nope')} does not exist`);
  });
});

describe('prepareSessionRuntime', () => {
  it('uses the files where they are when every user can read them', () => {
    const root = fakeAtrium(0o755);
    for (const f of ['share/jupyter/atrium-jupyter', 'share/jupyter/atrium_jupyter_auth.py'])
      fs.chmodSync(path.join(root, f), 0o755);
    // In place, sessions also run bin/atrium (tsx from node_modules).
    fs.mkdirSync(path.join(root, 'bin'));
    fs.writeFileSync(path.join(root, 'bin/atrium'), '#!/bin/sh\n', { mode: 0o755 });
    fs.mkdirSync(path.join(root, 'src/cli'), { recursive: true });
    fs.writeFileSync(path.join(root, 'src/cli/main.ts'), '', { mode: 0o644 });
    fs.mkdirSync(path.join(root, 'node_modules/tsx/dist/esm'), { recursive: true });
    fs.writeFileSync(path.join(root, 'node_modules/tsx/dist/esm/index.mjs'), '', { mode: 0o644 });
    const rt = prepareSessionRuntime(opts(root));
    expect(rt).toMatchObject({
      placed: false,
      root,
      agentScript: path.join(root, 'dist/agent/atrium-agent.mjs'),
    });
    expect(fs.existsSync(runtimeDir)).toBe(false);
  });

  it('places a copy every user can read in runtimeDir, one directory per content', () => {
    const root = fakeAtrium(0o700);
    const rt = prepareSessionRuntime(opts(root));
    rt.close();
    expect(rt.placed).toBe(true);
    expect(rt.why).toContain('is mode 700');
    expect(path.dirname(rt.root)).toBe(runtimeDir);
    expect(path.basename(rt.root)).toMatch(/^[0-9a-f]{16}$/);
    expect(rt.agentScript).toBe(path.join(rt.root, 'dist/agent/atrium-agent.mjs'));
    expect(modeOf(runtimeDir)).toBe(0o755);
    expect(modeOf(rt.root)).toBe(0o755);
    expect(modeOf(path.join(rt.root, 'share/jupyter'))).toBe(0o755);
    expect(modeOf(rt.agentScript)).toBe(0o644);
    expect(modeOf(path.join(rt.root, 'share/jupyter/atrium-jupyter'))).toBe(0o755);
    expect(modeOf(path.join(rt.root, 'share/jupyter/atrium_jupyter_auth.py'))).toBe(0o644);
    expect(modeOf(path.join(rt.root, 'node_modules/node-pty/build/Release/pty.node'))).toBe(0o755);
    expect(fs.statSync(rt.agentScript).uid).toBe(process.getuid!());
    for (const f of [
      'dist/agent/atrium-agent.mjs',
      'share/jupyter/atrium-jupyter',
      'node_modules/node-pty/lib/index.js',
    ])
      expect(whyOthersCannot(path.join(rt.root, f))).toBeNull();
    // Sources and tests of node-pty stay behind.
    expect(fs.existsSync(path.join(rt.root, 'node_modules/node-pty/src'))).toBe(false);
    expect(fs.existsSync(path.join(rt.root, 'node_modules/node-pty/lib/index.test.js'))).toBe(false);
    // The `atrium` command of sessions runs the bundled CLI with the agent's Node.js.
    const wrapper = fs.readFileSync(path.join(rt.root, 'bin/atrium'), 'utf8');
    expect(wrapper).toContain(
      `exec '/usr/bin/node' '${path.join(rt.root, 'dist/agent/atrium-cli.mjs')}' "$@"`,
    );
    expect(modeOf(path.join(rt.root, 'bin/atrium'))).toBe(0o755);

    // The same content again: the same directory, untouched.
    const before = fs.statSync(rt.agentScript).ino;
    const again = prepareSessionRuntime(opts(root));
    again.close();
    expect(again.root).toBe(rt.root);
    expect(fs.statSync(again.agentScript).ino).toBe(before);

    // A new version goes next to it: sessions started from the old one keep their files.
    fs.writeFileSync(path.join(root, 'dist/agent/atrium-agent.mjs'), '// agent v2\n');
    const v2 = prepareSessionRuntime(opts(root));
    v2.close();
    expect(v2.root).not.toBe(rt.root);
    expect(fs.readFileSync(rt.agentScript, 'utf8')).toBe('// agent\n');
    // Once no gateway has used the old one for longer than any session lasts, it goes.
    const old = new Date(Date.now() - 10 * 3600_000);
    fs.utimesSync(path.join(rt.root, '.last-used'), old, old);
    prepareSessionRuntime(opts(root)).close();
    expect(fs.existsSync(rt.root)).toBe(false);
    expect(fs.existsSync(v2.root)).toBe(true);
  });

  it('refuses a runtimeDir others may write or cannot enter, naming it and the fix', () => {
    const root = fakeAtrium(0o700);
    fs.mkdirSync(runtimeDir, { mode: 0o777 });
    fs.chmodSync(runtimeDir, 0o777);
    expect(() => prepareSessionRuntime(opts(root))).toThrow(RuntimeDirError);
    expect(() => prepareSessionRuntime(opts(root))).toThrow(
      new RegExp(`runtimeDir ${runtimeDir}: it is mode 777: others could change its files`),
    );
    const hidden = path.join(path.dirname(root), 'runtime');
    expect(() => prepareSessionRuntime(opts(root, { runtimeDir: hidden }))).toThrow(
      /is mode 700: other users cannot enter it.*set runtimeDir to a directory/,
    );
  });

  it('asks nothing of other users when every session runs as the gateway itself', () => {
    const root = fakeAtrium(0o700);
    expect(prepareSessionRuntime(opts(root, { othersMustRead: false })).placed).toBe(false);
  });
});
