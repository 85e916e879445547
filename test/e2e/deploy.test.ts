// The Ansible deployment against this machine (connection local), in the topology with several
// gateways: deploy/ansible/site.yml makes a PostgreSQL cluster and database, installs two gateways on
// it (service user, /opt/atrium, /etc/atrium and /etc/atrium-gw2, /var/lib/atrium, sudo rules, Slurm
// operator, the fallback service scripts since this machine has no systemd), HAProxy in front of them
// and an interactive partition on the CI test cluster; a second run changes nothing; then a smoke test
// signs in through HAProxy and starts Jupyter on the test cluster via sudo sbatch.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, type SessionView, waitForState } from '../helpers/client.ts';
import { freePort, ROOT } from '../helpers/gateway.ts';
import { SHIPPED_CONFIG } from '../helpers/haproxy.ts';
import { kernelRoundTrip } from '../helpers/jupyter.ts';

const BASE = process.env.ATRIUM_TEST_CLUSTER_BASE ?? '/tmp/atrium-slurm-atrium';
const ANSIBLE_DIR = path.join(ROOT, 'deploy', 'ansible');
const PARTITION = 'atrium_deploy_test';

interface ClusterJson {
  name: string;
  slurmConf: string;
  nodePrefix: string;
  withDbd: boolean;
}

function prerequisites(): { c?: ClusterJson; why?: string } {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return { why: 'must run as root' };
  if (spawnSync('ansible-playbook', ['--version']).status !== 0)
    return { why: 'ansible-playbook is missing (apt-get install ansible)' };
  const file = path.join(BASE, 'cluster.json');
  if (!fs.existsSync(file)) return { why: `no ${file} (bash scripts/cluster.sh up)` };
  const c = JSON.parse(fs.readFileSync(file, 'utf8')) as ClusterJson;
  if (!c.withDbd)
    return { why: 'the test cluster has no slurmdbd (the service user is made a Slurm operator)' };
  const ping = spawnSync('scontrol', ['ping'], {
    env: { ...process.env, SLURM_CONF: c.slurmConf },
    encoding: 'utf8',
  });
  if (!/is UP/.test(ping.stdout)) return { why: `slurmctld of ${c.name} does not answer` };
  if (!fs.existsSync(path.join(ROOT, 'dist', 'web', 'index.html')))
    return { why: 'not built (npm run build): copy mode ships dist/' };
  return { c };
}

const { c: cluster, why } = prerequisites();
if (why) console.warn(`[deploy e2e] SKIPPED: ${why}`);

let work: string;
let source: string;
let port: number;
let port2: number;
let lbPort: number;
let pgPort: number;
const pgPassword = `pw-${Math.random().toString(36).slice(2, 14)}`;
const PG_CLUSTER = 'atrium_deploy_test';
const HAPROXY_CFG = '/etc/haproxy/haproxy.cfg';
let haproxyCfgBefore: string | null = null;
const runs: { seconds: number; recap: string }[] = [];

function inventory(): string {
  const c = cluster!;
  // JSON is YAML: the inventory is written as JSON so no value needs quoting rules.
  const local = { ansible_connection: 'local', ansible_python_interpreter: '/usr/bin/python3' };
  const lb = `http://127.0.0.1:${lbPort}`;
  return JSON.stringify(
    {
      all: {
        // One machine plays every host: the database, two gateways, HAProxy.
        hosts: { localhost: local, gw2: local, pgdb: local, lb: local },
        children: {
          atrium_database: {
            hosts: { pgdb: {} },
            vars: { atrium_pg_cluster: PG_CLUSTER, atrium_pg_port: pgPort, atrium_pg_password: pgPassword },
          },
          atrium_haproxy: { hosts: { lb: {} }, vars: { atrium_haproxy_port: lbPort } },
          slurm_controller: {
            hosts: { localhost: {} },
            vars: {
              slurm_conf: c.slurmConf,
              slurm_interactive_partition: PARTITION,
              slurm_interactive_nodes: `${c.nodePrefix}3`,
              slurm_interactive_max_time: '8:00:00',
            },
          },
          atrium_gateway: {
            hosts: {
              localhost: { atrium_port: port },
              // The second gateway of this host shares the application, user and data directory; a
              // site's gateways are on hosts of their own.
              gw2: {
                atrium_port: port2,
                atrium_service_name: 'atrium-gw2',
                atrium_config_dir: '/etc/atrium-gw2',
                atrium_run_dir: '/run/atrium-gw2',
                atrium_cli_command: '/usr/local/bin/atrium-gw2',
              },
            },
            vars: {
              // This checkout is installed and built already: ship it as it is (docs/deploy.md).
              atrium_install_mode: 'copy',
              atrium_source_dir: source,
              atrium_database_url: `postgres://atrium:${pgPassword}@127.0.0.1:${pgPort}/atrium`,
              atrium_public_url: lb,
              atrium_agent_url: lb,
              atrium_trust_proxy: true,
              atrium_haproxy_address: '127.0.0.1',
              atrium_slurm_operator: true,
              atrium_slurm_operator_account: 'research',
              atrium_clusters: [
                {
                  name: 'test',
                  title: 'Test cluster',
                  backend: 'slurm',
                  slurm: { conf: c.slurmConf, runAs: 'sudo', partition: 'interactive', pollSeconds: 1 },
                },
              ],
            },
          },
        },
      },
    },
    null,
    2,
  );
}

function playbook(label: string): { rc: number | null; out: string; recap: string } {
  const t0 = Date.now();
  const r = spawnSync('ansible-playbook', ['-i', path.join(work, 'inventory.yml'), 'site.yml'], {
    cwd: ANSIBLE_DIR,
    encoding: 'utf8',
    timeout: 300_000,
    env: { ...process.env, ANSIBLE_NOCOLOR: '1', ANSIBLE_FORCE_COLOR: '0' },
  });
  const out = `${r.stdout}\n${r.stderr}`;
  fs.writeFileSync(path.join(work, `${label}.log`), out);
  // Every host's line of the play recap.
  const recap = (out.match(/^\S+\s+: ok=.*$/gm) ?? []).join('\n');
  runs.push({ seconds: (Date.now() - t0) / 1000, recap });
  return { rc: r.status, out, recap };
}

/** HAProxy's settings in a file: no comments, binds, servers, socket path or redirecting frontend. */
function haproxySettings(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(
      (l) =>
        l !== '' &&
        !l.startsWith('#') &&
        !/^(bind|server|stats socket) /.test(l) &&
        l !== 'frontend atrium_http' &&
        !l.startsWith('http-request redirect'),
    );
}

function changedTasks(out: string): string[] {
  const names: string[] = [];
  let task = '';
  for (const line of out.split('\n')) {
    const t = /^(?:TASK|RUNNING HANDLER) \[(.*)\]/.exec(line);
    if (t) task = t[1]!;
    if (/^changed:/.test(line)) names.push(task);
  }
  return names;
}

function removeTestPartition(): void {
  const conf = cluster!.slurmConf;
  const text = fs.readFileSync(conf, 'utf8');
  const kept = text
    .split('\n')
    .filter((l) => !l.startsWith(`PartitionName=${PARTITION} `))
    .join('\n');
  if (kept !== text) {
    fs.writeFileSync(conf, kept);
    spawnSync('scontrol', ['reconfigure'], { env: { ...process.env, SLURM_CONF: conf } });
  }
}

describe.skipIf(!cluster)('Ansible deployment on this machine', () => {
  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-deploy-'));
    port = await freePort();
    port2 = await freePort();
    lbPort = await freePort();
    pgPort = await freePort();
    haproxyCfgBefore = fs.existsSync(HAPROXY_CFG) ? fs.readFileSync(HAPROXY_CFG, 'utf8') : null;
    // A cluster of that name left by an interrupted run would keep its old role and password.
    spawnSync('pg_dropcluster', ['--stop', '15', PG_CLUSTER]);
    // A snapshot of the checkout (node_modules hard-linked), so nothing that rebuilds the checkout
    // meanwhile (another developer's build) can make the second run differ from the first.
    source = path.join(work, 'source');
    fs.mkdirSync(source);
    const linked = spawnSync('cp', ['-al', path.join(ROOT, 'node_modules'), source]);
    // Another file system: a real copy (slower).
    if (linked.status !== 0) {
      fs.rmSync(path.join(source, 'node_modules'), { recursive: true, force: true });
      execFileSync('cp', ['-a', path.join(ROOT, 'node_modules'), source]);
    }
    execFileSync('rsync', [
      '-a',
      ...[
        'bin',
        'src',
        'share',
        'dist',
        'package.json',
        'package-lock.json',
        'tsconfig.json',
        'vite.config.ts',
      ].map((p) => path.join(ROOT, p)),
      `${source}/`,
    ]);
    fs.mkdirSync(path.join(source, 'scripts'));
    fs.copyFileSync(path.join(ROOT, 'scripts', 'build.mjs'), path.join(source, 'scripts', 'build.mjs'));
    fs.writeFileSync(path.join(work, 'inventory.yml'), inventory());
  });

  afterAll(() => {
    // Everything the playbook started is stopped (gateways, HAProxy by its pid file, the PostgreSQL
    // cluster it made is dropped); Debian's HAProxy configuration and the test partition are put back.
    spawnSync('/usr/local/sbin/atrium-service', ['stop'], { stdio: 'inherit' });
    spawnSync('/usr/local/sbin/atrium-gw2-service', ['stop'], { stdio: 'inherit' });
    const lbPid = fs.existsSync('/run/haproxy.pid') ? Number(fs.readFileSync('/run/haproxy.pid', 'utf8')) : 0;
    if (
      lbPid > 0 &&
      fs.existsSync(`/proc/${lbPid}/comm`) &&
      fs.readFileSync(`/proc/${lbPid}/comm`, 'utf8').includes('haproxy')
    )
      process.kill(lbPid, 'SIGTERM');
    if (haproxyCfgBefore !== null) fs.writeFileSync(HAPROXY_CFG, haproxyCfgBefore);
    spawnSync('pg_dropcluster', ['--stop', '15', PG_CLUSTER]);
    if (cluster) removeTestPartition();
    if (work) fs.rmSync(work, { recursive: true, force: true });
    console.info(
      `[deploy e2e] playbook runs: ${runs.map((r) => `${r.seconds.toFixed(1)} s (${r.recap.replace(/\s+/g, ' ')})`).join('; ')}`,
    );
  });

  it('the playbook runs, and a second run reports no change', () => {
    const first = playbook('run1');
    expect(first.rc, first.out.slice(-4000)).toBe(0);
    expect(first.recap).toMatch(/failed=0/);
    expect(first.recap).not.toMatch(/(failed|unreachable)=[1-9]/);
    // The play ends by asking the gateway itself, not the service manager, whether it runs.
    expect(first.out).toMatch(/TASK \[atrium_gateway : The gateway answers its health check\][^\n]*\nok: /);
    const second = playbook('run2');
    expect(second.rc, second.out.slice(-4000)).toBe(0);
    expect(changedTasks(second.out), second.recap).toEqual([]);
    expect(second.recap).toMatch(/\bchanged=0\b/);
    expect(second.recap).not.toMatch(/changed=[1-9]/);
  }, 600_000);

  it('installed what docs/deploy.md says, with the right owners and modes', async () => {
    const mode = (p: string) => {
      const st = fs.statSync(p);
      const owner = execFileSync('stat', ['-c', '%U:%G', p], { encoding: 'utf8' }).trim();
      return `${(st.mode & 0o777).toString(8)} ${owner}`;
    };
    expect(mode('/etc/atrium/atrium.yaml')).toBe('640 root:atrium');
    expect(mode('/var/lib/atrium')).toBe('700 atrium:atrium');
    expect(mode('/etc/sudoers.d/atrium')).toBe('440 root:root');
    expect(mode('/opt/atrium/dist/agent/atrium-agent.mjs')).toBe('644 root:root');
    expect(execFileSync('getent', ['passwd', 'atrium'], { encoding: 'utf8' })).toMatch(
      /:\/var\/lib\/atrium:\/usr\/sbin\/nologin$/m,
    );
    // The config passes the same check the role validated it with.
    expect(execFileSync('/usr/local/bin/atrium', ['config', 'check'], { encoding: 'utf8' })).toMatch(
      /OK \(1 cluster/,
    );
    // The second gateway: its own configuration and service, the same database.
    expect(mode('/etc/atrium-gw2/atrium.yaml')).toBe('640 root:atrium');
    for (const cli of ['/usr/local/bin/atrium', '/usr/local/bin/atrium-gw2']) {
      expect(execFileSync(cli, ['config', 'check'], { encoding: 'utf8' })).toMatch(
        new RegExp(`PostgreSQL at 127\\.0\\.0\\.1:${pgPort}/atrium`),
      );
    }
    expect(execFileSync('/usr/local/sbin/atrium-gw2-service', ['status'], { encoding: 'utf8' })).toMatch(
      /running \(pid \d+\)/,
    );
    // PostgreSQL: the gateways' tables, and both gateways alive in them.
    const alive = execFileSync(
      'runuser',
      [
        '-u',
        'postgres',
        '--',
        'psql',
        '-X',
        '-At',
        '-p',
        String(pgPort),
        '-d',
        'atrium',
        '-c',
        'select count(*) from gateways where seen_at > (extract(epoch from clock_timestamp()) * 1000) - 5000',
      ],
      { encoding: 'utf8' },
    );
    expect(alive.trim()).toBe('2');
    // HAProxy runs the shipped settings with this inventory's gateways, both up.
    const rendered = fs.readFileSync(HAPROXY_CFG, 'utf8');
    expect(haproxySettings(rendered)).toEqual(haproxySettings(fs.readFileSync(SHIPPED_CONFIG, 'utf8')));
    expect(rendered).toMatch(new RegExp(`^\\s+server localhost 127\\.0\\.0\\.1:${port} check$`, 'm'));
    expect(rendered).toMatch(new RegExp(`^\\s+server gw2 127\\.0\\.0\\.1:${port2} check$`, 'm'));
    const stat = await new Promise<string>((resolve, reject) => {
      let out = '';
      const sock = net.connect('/run/haproxy/admin.sock');
      sock.on('data', (d) => {
        out += d.toString();
      });
      sock.on('end', () => resolve(out));
      sock.on('error', reject);
      sock.end('show stat\n');
    });
    const up = stat
      .split('\n')
      .map((l) => l.split(','))
      .filter((f) => f[0] === 'atrium_gateways' && (f[1] === 'localhost' || f[1] === 'gw2'))
      .map((f) => `${f[1]} ${f[17]}`);
    expect(up.sort()).toEqual(['gw2 UP', 'localhost UP']);
    // The partition is in slurmctld as configured.
    const part = execFileSync('scontrol', ['-o', 'show', 'partition', PARTITION], {
      env: { ...process.env, SLURM_CONF: cluster!.slurmConf },
      encoding: 'utf8',
    });
    expect(part).toMatch(/OverSubscribe=FORCE:5/);
    expect(part).toMatch(/MaxTime=08:00:00/);
    // The gateway runs as the service user under the fallback script.
    const status = execFileSync('/usr/local/sbin/atrium-service', ['status'], { encoding: 'utf8' });
    const pid = /pid (\d+)/.exec(status)?.[1];
    expect(pid).toBeDefined();
    expect(fs.readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(
      new RegExp(`^Uid:\\s+${execFileSync('id', ['-u', 'atrium'], { encoding: 'utf8' }).trim()}\\s`, 'm'),
    );
  });

  it('sudo lets the service user run exactly the Slurm and file commands as users, nothing else', () => {
    const asAtrium = (args: string[]) =>
      spawnSync('runuser', ['-u', 'atrium', '--', 'sudo', '-n', ...args], { encoding: 'utf8' });
    const conf = `SLURM_CONF=${cluster!.slurmConf}`;
    expect(asAtrium(['-u', 'alice', conf, '--', '/usr/bin/sbatch', '--version']).status).toBe(0);
    expect(asAtrium(['-u', 'alice', '--', '/usr/bin/stat', '-c', '%U', '/home/alice']).stdout.trim()).toBe(
      'alice',
    );
    expect(asAtrium(['-u', 'alice', '--', '/bin/sh', '-c', 'id']).status).not.toBe(0);
    expect(asAtrium(['-u', 'root', '--', '/usr/bin/sbatch', '--version']).status).not.toBe(0);
    expect(
      asAtrium(['-u', 'alice', 'LD_PRELOAD=/tmp/x.so', '--', '/usr/bin/sbatch', '--version']).status,
    ).not.toBe(0);
  });

  it('smoke: sign in through the deployed gateway and start Jupyter on the test cluster', async () => {
    const password = `deploy-${Math.random().toString(36).slice(2, 12)}`;
    // Accounts are added with the installed `atrium` command (it runs as the service user).
    const add = spawnSync('/usr/local/bin/atrium', ['user', 'add', 'alice', '--password-stdin'], {
      input: password,
      encoding: 'utf8',
    });
    if (add.status !== 0) {
      expect(add.stderr).toMatch(/exists already/);
      execFileSync('/usr/local/bin/atrium', ['user', 'passwd', 'alice', '--password-stdin'], {
        input: password,
      });
    }
    // Through HAProxy, which sends each request to either gateway.
    const url = `http://127.0.0.1:${lbPort}`;
    const alice = new Client(url);
    expect((await alice.login('alice', password)).status).toBe(200);
    const r = await alice.post('/api/sessions', {
      cluster: 'test',
      app: 'jupyter',
      cores: 1,
      memoryGb: 1,
      hours: 1,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const id = (r.body as { session: SessionView }).session.id;
    const s = await waitForState(alice, id, ['running'], 120_000);
    expect((await kernelRoundTrip(url + s.url, alice.cookie)).stdout.trim()).toBe('42');
    // Each gateway has its route.
    for (const p of [port, port2])
      expect((await kernelRoundTrip(`http://127.0.0.1:${p}${s.url}`, alice.cookie)).stdout.trim()).toBe('42');
    // /metrics on loopback counts it (from the database: the same on either gateway).
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(/^atrium_sessions\{state="running",cluster="test"\} 1$/m);
    await alice.del(`/api/sessions/${id}`);
    expect((await waitForState(alice, id, ['ended'], 60_000)).reason).toBe('stopped by you');
    // JSON log lines in the fallback scripts' logs (the gateway that took the agent's call logs it).
    const log = ['atrium.log', 'atrium-gw2.log']
      .map((f) => fs.readFileSync(`/var/log/atrium/${f}`, 'utf8'))
      .join('\n');
    expect(log).toMatch(new RegExp(`"session":"${id}".*"to":"running"`));
  });
});
