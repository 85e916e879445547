// The README's run command on this machine: the embedded default starts, the first start creates an
// admin account and prints how to sign in, and that account works.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Client } from '../helpers/client.ts';
import { freePort, ROOT } from '../helpers/gateway.ts';

let proc: ChildProcess | null = null;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-run-'));

afterAll(async () => {
  if (proc && proc.exitCode === null) {
    const exited = new Promise((r) => proc!.once('exit', r));
    proc.kill('SIGTERM');
    await exited;
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('the run command (bash scripts/run.sh)', () => {
  it('starts the embedded default, creates the first admin and prints how to sign in', async () => {
    const port = await freePort();
    let out = '';
    proc = spawn('bash', ['scripts/run.sh', '--port', String(port), '--data-dir', path.join(dir, 'data')], {
      cwd: ROOT,
      env: { ...process.env, ATRIUM_ADMIN_UNIX_USER: 'alice' },
    });
    proc.stdout!.on('data', (d) => {
      out += String(d);
    });
    proc.stderr!.on('data', (d) => {
      out += String(d);
    });
    const deadline = Date.now() + 90_000;
    while (!/serving on http:\/\/127\.0\.0\.1:\d+/.test(out)) {
      if (proc.exitCode !== null) throw new Error(`run.sh exited ${proc.exitCode}:\n${out}`);
      if (Date.now() > deadline) throw new Error(`run.sh did not start:\n${out}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const pw = /sign in as "admin" with the password: (\S+)/.exec(out)?.[1];
    expect(pw, out).toBeTruthy();
    expect(out).toContain(`http://127.0.0.1:${port}/login`);
    expect(fs.readFileSync(path.join(dir, 'data', 'initial-admin-password'), 'utf8').trim()).toBe(pw);
    expect(fs.statSync(path.join(dir, 'data', 'atrium.db')).mode & 0o777).toBe(0o600);
    const c = new Client(`http://127.0.0.1:${port}`);
    expect((await c.login('admin', pw!)).status).toBe(200);
    const me = await c.get('/api/me');
    expect(me.body).toMatchObject({ user: { username: 'admin', isAdmin: true, unixUser: 'alice' } });
    // The embedded default: one local cluster, Jupyter offered.
    const clusters = (await c.get('/api/clusters')).body as {
      clusters: { backend: string; apps: { id: string }[] }[];
    };
    expect(clusters.clusters.map((x) => x.backend)).toEqual(['local']);
    expect(clusters.clusters[0]!.apps.map((a) => a.id)).toContain('jupyter');
    // The UI is served.
    const page = await fetch(`http://127.0.0.1:${port}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<div id="root">');
    // None of our warnings (framework deprecations, insecure TLS...) on the way.
    expect(out).not.toMatch(/Warning|DEP\d|deprecated/i);
  });

  it('with an unsupported Node.js (Debian 12 has 18), says how to get a supported one', () => {
    const bin = path.join(dir, 'old-node');
    fs.mkdirSync(bin);
    // Answers like Node 18: its version, and a failed check of it.
    fs.writeFileSync(
      path.join(bin, 'node'),
      '#!/bin/sh\ncase "$1" in --version) echo v18.19.0 ;; *) exit 1 ;; esac\n',
      {
        mode: 0o755,
      },
    );
    const r = spawnSync('bash', ['scripts/run.sh'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, PATH: `${bin}:/usr/bin:/bin` },
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('Node.js v18.19.0');
    expect(r.stderr).toContain('https://deb.nodesource.com/setup_22.x');
    expect(r.stderr).toContain('https://nodejs.org/');
  });
});
