// The Ansible deployment against this machine (connection local): deploy/ansible/site.yml installs
// the gateway (service user, /opt/atrium, /etc/atrium, /var/lib/atrium, sudo rules, Slurm operator,
// the fallback service script since this machine has no systemd) and an interactive partition on the
// CI test cluster; a second run changes nothing; then a smoke test signs in through the deployed
// gateway (running as the service user) and starts Jupyter on the test cluster via sudo sbatch.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, type SessionView, waitForState } from '../helpers/client.ts';
import { freePort, ROOT } from '../helpers/gateway.ts';
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
const runs: { seconds: number; recap: string }[] = [];

function inventory(): string {
  const c = cluster!;
  // JSON is YAML: the inventory is written as JSON so no value needs quoting rules.
  return JSON.stringify(
    {
      all: {
        hosts: { localhost: { ansible_connection: 'local', ansible_python_interpreter: '/usr/bin/python3' } },
        children: {
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
            hosts: { localhost: {} },
            vars: {
              // This checkout is installed and built already: ship it as it is (docs/deploy.md).
              atrium_install_mode: 'copy',
              atrium_source_dir: source,
              atrium_port: port,
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
  const recap = /^localhost\s+:.*$/m.exec(out)?.[0] ?? '';
  runs.push({ seconds: (Date.now() - t0) / 1000, recap });
  return { rc: r.status, out, recap };
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
    // Everything the playbook started is stopped; the test partition is taken out again.
    spawnSync('/usr/local/sbin/atrium-service', ['stop'], { stdio: 'inherit' });
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
    // The play ends by asking the gateway itself, not the service manager, whether it runs.
    expect(first.out).toMatch(/TASK \[atrium_gateway : The gateway answers its health check\][^\n]*\nok: /);
    const second = playbook('run2');
    expect(second.rc, second.out.slice(-4000)).toBe(0);
    expect(changedTasks(second.out), second.recap).toEqual([]);
    expect(second.recap).toMatch(/\bchanged=0\b/);
  }, 600_000);

  it('installed what docs/deploy.md says, with the right owners and modes', () => {
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
    const url = `http://127.0.0.1:${port}`;
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
    // /metrics on loopback counts it.
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/^atrium_sessions\{state="running",cluster="test"\} 1$/m);
    await alice.del(`/api/sessions/${id}`);
    expect((await waitForState(alice, id, ['ended'], 60_000)).reason).toBe('stopped by you');
    // JSON log lines in the fallback script's log.
    const log = fs.readFileSync('/var/log/atrium/atrium.log', 'utf8');
    expect(log).toMatch(new RegExp(`"session":"${id}".*"to":"running"`));
  });
});
