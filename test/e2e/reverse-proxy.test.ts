// TLS in front of the gateway: the Ansible role's nginx template (rendered by Ansible itself) on free
// ports with a throwaway certificate, a gateway with server.trustProxy and an https publicUrl; sign-in
// and a Jupyter kernel over wss:// through nginx; /metrics hidden; http redirects to https.
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, type SessionView, waitForState } from '../helpers/client.ts';
import { createTestGateway, freePort, ROOT, type TestGateway } from '../helpers/gateway.ts';
import { kernelRoundTrip } from '../helpers/jupyter.ts';

const TEMPLATE = path.join(
  ROOT,
  'deploy',
  'ansible',
  'roles',
  'atrium_gateway',
  'templates',
  'nginx-atrium.conf.j2',
);

function missing(): string | null {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'must run as root';
  if (!fs.existsSync('/usr/sbin/nginx')) return 'nginx is missing (apt-get install nginx-light)';
  if (spawnSync('ansible', ['--version']).status !== 0) return 'ansible is missing';
  return null;
}
const why = missing();
if (why) console.warn(`[reverse-proxy e2e] SKIPPED: ${why}`);

let dir: string;
let gw: TestGateway;
let nginx: ChildProcess;
let httpsPort: number;
let httpPort: number;
let alice: Client;

let untrust: (() => void) | undefined;

/**
 * This test's fetch() trusts its self-signed certificate, and only it: fetch's dispatcher (undici, in
 * Node) is swapped for one with that `ca`, instead of turning verification off for the whole process
 * (NODE_TLS_REJECT_UNAUTHORIZED=0, which every child would inherit and Node warns about).
 */
function trustOnly(ca: Buffer): void {
  const key = Symbol.for('undici.globalDispatcher.1');
  const g = globalThis as unknown as Record<symbol, object | undefined>;
  const previous = g[key];
  if (!previous) throw new Error("fetch's dispatcher is not set up yet");
  const Agent = previous.constructor as new (opts: { connect: { ca: Buffer } }) => object;
  g[key] = new Agent({ connect: { ca } });
  untrust = () => {
    g[key] = previous;
  };
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

describe.skipIf(why !== null)('nginx in front (the role template)', () => {
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-nginx-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        path.join(dir, 'key.pem'),
        '-out',
        path.join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    httpsPort = await freePort();
    httpPort = await freePort();
    gw = await createTestGateway({ name: 'nginx', users: [{ name: 'alice' }] });
    // Behind the proxy: the public URL is nginx's, and X-Forwarded-* from it are trusted. Agents call
    // back on the gateway's own address (server.agentUrl), as nodes inside the site would.
    fs.writeFileSync(
      gw.configFile,
      fs
        .readFileSync(gw.configFile, 'utf8')
        .replace(
          'server:\n',
          `server:\n  publicUrl: https://127.0.0.1:${httpsPort}\n  agentUrl: ${gw.url}\n  trustProxy: true\n`,
        ),
    );
    const vars = {
      atrium_nginx_server_name: '127.0.0.1',
      atrium_tls_certificate: path.join(dir, 'cert.pem'),
      atrium_tls_certificate_key: path.join(dir, 'key.pem'),
      atrium_listen_host: '127.0.0.1',
      atrium_port: gw.port,
      atrium_nginx_http_port: httpPort,
      atrium_nginx_https_port: httpsPort,
    };
    fs.writeFileSync(path.join(dir, 'vars.json'), JSON.stringify(vars));
    execFileSync(
      'ansible',
      [
        'localhost',
        '-c',
        'local',
        '-m',
        'ansible.builtin.template',
        '-a',
        `src=${TEMPLATE} dest=${dir}/atrium.conf`,
        '-e',
        `@${dir}/vars.json`,
      ],
      { stdio: 'ignore', env: { ...process.env, ANSIBLE_LOCALHOST_WARNING: 'False' } },
    );
    fs.writeFileSync(
      path.join(dir, 'nginx.conf'),
      [
        `pid ${dir}/nginx.pid;`,
        `error_log ${dir}/error.log;`,
        'worker_processes 1;',
        'events {}',
        'http {',
        '  access_log off;',
        `  client_body_temp_path ${dir}/body;`,
        `  proxy_temp_path ${dir}/proxy;`,
        `  include ${dir}/atrium.conf;`,
        '}',
        '',
      ].join('\n'),
    );
    await gw.start();
    nginx = spawn('/usr/sbin/nginx', ['-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;'], {
      stdio: 'ignore',
    });
    const deadline = Date.now() + 15_000;
    while (!(await portOpen(httpsPort))) {
      if (nginx.exitCode !== null || Date.now() > deadline) {
        const log = fs.existsSync(`${dir}/error.log`) ? fs.readFileSync(`${dir}/error.log`, 'utf8') : '';
        throw new Error(`nginx did not start (exit ${nginx.exitCode}): ${log}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    alice = new Client(`https://127.0.0.1:${httpsPort}`);
    trustOnly(fs.readFileSync(path.join(dir, 'cert.pem')));
  });

  afterAll(async () => {
    if (alice) {
      const list = ((await alice.get('/api/sessions')).body as { sessions?: SessionView[] }).sessions ?? [];
      for (const s of list)
        if (s.state !== 'ended' && s.state !== 'failed') await alice.del(`/api/sessions/${s.id}`);
      await new Promise((r) => setTimeout(r, 1500));
    }
    if (nginx && nginx.exitCode === null) {
      const exited = new Promise((r) => nginx.once('exit', r));
      nginx.kill('SIGQUIT');
      await exited;
    }
    await gw?.stop();
    if (untrust) untrust();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('signs in over https (Secure cookie, HSTS) and reaches a Jupyter kernel over wss through nginx', async () => {
    const login = await alice.login('alice', gw.passwords.alice!);
    expect(login.status).toBe(200);
    expect(login.headers.get('set-cookie')).toMatch(/; Secure/);
    expect(login.headers.get('strict-transport-security')).toMatch(/max-age=/);
    const r = await alice.post('/api/sessions', {
      cluster: 'local',
      app: 'jupyter',
      cores: 1,
      memoryGb: 1,
      hours: 1,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const s = await waitForState(alice, (r.body as { session: SessionView }).session.id, ['running'], 90_000);
    const rt = await kernelRoundTrip(`https://127.0.0.1:${httpsPort}${s.url}`, alice.cookie, 'print(6*7)', {
      ca: fs.readFileSync(path.join(dir, 'cert.pem')),
    });
    expect(rt.stdout.trim()).toBe('42');
    await alice.del(`/api/sessions/${s.id}`);
    await waitForState(alice, s.id, ['ended'], 30_000);
  });

  it('hides /metrics and redirects plain http to https', async () => {
    expect((await fetch(`https://127.0.0.1:${httpsPort}/metrics`)).status).toBe(404);
    const plain = await fetch(`http://127.0.0.1:${httpPort}/some/page`, { redirect: 'manual' });
    expect(plain.status).toBe(301);
    expect(plain.headers.get('location')).toBe(`https://127.0.0.1:${httpsPort}/some/page`);
  });
});
