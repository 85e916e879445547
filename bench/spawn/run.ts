// npm run bench:spawn — click-to-kernel: from the new-session form's submit to the first kernel reply
// (a kernel created and print(6*7) answered through the proxy), in one run on this machine, for our
// gateway on SQLite and on PostgreSQL side by side (+pg: a second gateway whose database is PostgreSQL),
// and:
//   atrium/slurm   our gateway, Slurm backend, on the test cluster of scripts/cluster.sh, split into
//                  gateway time (submit until sbatch returned + agent callback until running with its
//                  route), time in Slurm (submitted until the agent started in the job; Slurm's own
//                  StartTime - SubmitTime beside it) and app start (agent start until Jupyter answered);
//   atrium/local   our gateway, `local` backend (processes on this machine, as the user);
//   jupyterhub     Debian 12's JupyterHub 3.0 with LocalProcessSpawner and configurable-http-proxy, the
//                  reference for the local backend (same user, same Jupyter server: Notebook 6).
// Every target runs the same Jupyter (Notebook 6.4 from Debian) as the same Unix user. Each round runs
// every target once, in a rotating order; the first round is a warm-up and not counted. Figures are
// medians [min-max] over the counted rounds. Sessions are stopped after each sample, and the next one
// starts when the user's processes that it started are gone.
//
// Needs root (sessions run as the user; JupyterHub's LocalProcessSpawner too). Installs the Debian
// packages it needs when missing (jupyterhub, Jupyter for the sessions, postgresql for a throwaway
// server; scripts/cluster.sh installs Slurm's). Uses the cluster at $ATRIUM_TEST_CLUSTER_BASE (default
// /tmp/atrium-slurm-atrium); when it is not up, starts one with scripts/cluster.sh (CLUSTER_NAME,
// CLUSTER_PORT as for that script) and takes it down at the end. PostgreSQL: the server of
// $ATRIUM_TEST_POSTGRES_URL, else a throwaway one started with scripts/postgres.sh and stopped at the end.
// Env: BENCH_RUNS (5), BENCH_WARMUP (1), BENCH_TARGETS (slurm,local,jupyterhub), BENCH_DBS
//      (sqlite,postgres), BENCH_USER (carol), BENCH_NO_SAVE=1.
// Output: tables, bench/results/spawn-<date>T<time>.json and spawn-latest.json, and as the last line a JSON
// summary with the ratios (of the medians, and per round: ours over JupyterHub's in the same round) and
// the goals (gateway time under 150 ms on both engines; local click to kernel at most 0.8x
// JupyterHub's; Slurm click to kernel under 2.5 s at the median, on both engines).
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensurePackages, JUPYTER_NEED } from '../../src/system/packages.ts';
import { CLUSTER_BASE, CLUSTER_SCRIPT, loadCluster } from '../../test/helpers/cluster.ts';
import { createTestDatabase, ensurePostgres, POSTGRES_NEED } from '../../test/helpers/postgres.ts';
import { type AtriumGateway, type AtriumSample, atriumSample, startAtrium, stopAtrium } from './atrium.ts';
import { type Hub, type HubSample, hubSample, JUPYTERHUB_NEED, startHub, stopHub } from './jupyterhub.ts';
import { freePort, log, median, processesOf, ROOT, type Stat, settle, stat, stopAll } from './lib.ts';

const num = (v: string | undefined, d: number) => (v === undefined || v === '' ? d : Number(v));
const RUNS = num(process.env.BENCH_RUNS, 5);
const WARMUP = num(process.env.BENCH_WARMUP, 1);
const USER = process.env.BENCH_USER ?? 'carol';
type Db = 'sqlite' | 'postgres';
const list = (v: string) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
const DBS = list(process.env.BENCH_DBS ?? 'sqlite,postgres') as Db[];
type AtriumTarget = 'slurm' | 'local' | 'slurm+pg' | 'local+pg';
type Target = AtriumTarget | 'jupyterhub';
// Every Atrium target once per engine, side by side.
const TARGETS: Target[] = list(process.env.BENCH_TARGETS ?? 'slurm,local,jupyterhub').flatMap((t) =>
  t === 'jupyterhub' ? ['jupyterhub' as const] : DBS.map((d) => (d === 'sqlite' ? t : `${t}+pg`) as Target),
);
const LABEL: Record<Target, string> = {
  slurm: 'atrium/slurm',
  local: 'atrium/local',
  'slurm+pg': 'atrium/slurm+pg',
  'local+pg': 'atrium/local+pg',
  jupyterhub: 'jupyterhub 3.0',
};
const usesSlurm = TARGETS.some((t) => t.startsWith('slurm'));

function clusterScript(sub: 'up' | 'down'): void {
  execFileSync('bash', [CLUSTER_SCRIPT, sub], {
    env: { ...process.env, CLUSTER_BASE },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
}

function ensureUser(user: string): void {
  if (spawnSync('id', [user]).status === 0) return;
  execFileSync('useradd', ['-m', '-s', '/bin/bash', user]);
}

function machine() {
  const jupyter = spawnSync('jupyter-notebook', ['--version'], { encoding: 'utf8' }).stdout.trim();
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? '',
    memoryGb: Math.round(os.totalmem() / 1024 ** 3),
    node: process.version,
    notebook: jupyter,
    load1: Math.round(os.loadavg()[0]! * 100) / 100,
  };
}

const pad = (s: string, n: number) => s.padEnd(n);
const fmt = (s: Stat | undefined) => (s ? `${s.median} [${s.min}-${s.max}]` : '-');

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root (sessions run as the user)');
  ensureUser(USER);
  const uid = Number(execFileSync('id', ['-u', USER], { encoding: 'utf8' }).trim());
  let startedCluster = false;
  let cluster = usesSlurm ? loadCluster().cluster : undefined;
  if (usesSlurm && !cluster) {
    log(`no test cluster at ${CLUSTER_BASE}: starting one (scripts/cluster.sh up)`);
    clusterScript('up');
    startedCluster = true;
    cluster = loadCluster().cluster;
    if (!cluster) throw new Error('the test cluster did not come up');
  }
  // Debian packages: installed here (as root, the only way this benchmark runs) when missing.
  const needs = [JUPYTER_NEED, ...(TARGETS.includes('jupyterhub') ? [JUPYTERHUB_NEED] : [])];
  if (DBS.includes('postgres') && !process.env.ATRIUM_TEST_POSTGRES_URL) needs.push(POSTGRES_NEED);
  if (!ensurePackages(needs, log)) throw new Error('missing Debian packages (see above)');

  const samples: Record<AtriumTarget, AtriumSample[]> & { jupyterhub: HubSample[] } = {
    slurm: [],
    local: [],
    'slurm+pg': [],
    'local+pg': [],
    jupyterhub: [],
  };
  const gws: Partial<Record<Db, AtriumGateway>> = {};
  let hub: Hub | undefined;
  let stopPostgres: () => void = () => undefined;
  const info = machine();
  try {
    if (TARGETS.some((t) => t !== 'jupyterhub')) {
      for (const db of DBS) {
        if (db === 'postgres')
          stopPostgres = ensurePostgres('/tmp/atrium-postgres-bench', await freePort(), log);
        const databaseUrl = db === 'postgres' ? await createTestDatabase('bench') : undefined;
        const gw = await startAtrium({ user: USER, slurmConf: cluster?.slurmConf, databaseUrl });
        gws[db] = gw;
        log(`atrium gateway on ${db} at ${gw.url} (data ${gw.dir})`);
      }
    }
    if (TARGETS.includes('jupyterhub')) {
      hub = await startHub(USER);
      log(`JupyterHub ${hub.version} at ${hub.url} (${hub.proxy}; dir ${hub.dir})`);
    }
    for (let round = 0; round < WARMUP + RUNS; round++) {
      const order = TARGETS.map((_, i) => TARGETS[(i + round) % TARGETS.length]!);
      const warm = round < WARMUP;
      for (const t of order) {
        const before = processesOf(uid);
        if (t === 'jupyterhub') {
          const s = await hubSample(hub!);
          if (!warm) samples.jupyterhub.push(s);
          log(
            `${warm ? 'warm-up' : `run ${round - WARMUP + 1}`} ${pad(LABEL[t], 15)} total ${s.total} ms (spawn ${s.spawn}, kernel ${s.kernel})`,
          );
        } else {
          const gw = gws[t.endsWith('+pg') ? 'postgres' : 'sqlite']!;
          const s = await atriumSample(gw, t.startsWith('slurm') ? 'hpc' : 'local');
          if (!warm) samples[t].push(s);
          log(
            `${warm ? 'warm-up' : `run ${round - WARMUP + 1}`} ${pad(LABEL[t], 15)} total ${s.total} ms (gateway ${s.gateway}: submit ${s.submit} + callback ${s.callback}; scheduler ${s.scheduler}; app ${s.app}; notify ${s.notify}; kernel ${s.kernel})`,
          );
        }
        const waited = await settle(uid, before);
        if (waited > 200) log(`  (${LABEL[t]}'s processes took ${waited} ms more to go)`);
      }
    }
  } finally {
    for (const gw of Object.values(gws)) await stopAtrium(gw);
    if (hub) await stopHub(hub);
    await stopAll();
    stopPostgres();
    if (startedCluster) clusterScript('down');
  }

  const keys: (keyof AtriumSample)[] = [
    'total',
    'gateway',
    'submit',
    'callback',
    'scheduler',
    'app',
    'notify',
    'kernel',
    'post',
  ];
  const summarise = (xs: AtriumSample[]) => {
    if (xs.length === 0) return undefined;
    const out: Record<string, Stat> = {};
    for (const k of keys) out[k] = stat(xs.map((x) => x[k] as number));
    const q = xs.map((x) => x.slurmQueueSeconds).filter((x): x is number => x !== undefined);
    if (q.length > 0) out.slurmQueueSeconds = stat(q);
    return out;
  };
  const slurm = summarise(samples.slurm);
  const local = summarise(samples.local);
  const slurmPg = summarise(samples['slurm+pg']);
  const localPg = summarise(samples['local+pg']);
  const jh =
    samples.jupyterhub.length > 0
      ? {
          total: stat(samples.jupyterhub.map((x) => x.total)),
          spawn: stat(samples.jupyterhub.map((x) => x.spawn)),
          kernel: stat(samples.jupyterhub.map((x) => x.kernel)),
        }
      : undefined;

  log('');
  log(
    `Spawn: form submit -> first kernel reply, ms, median [min-max] of ${RUNS} runs (${info.cpus} CPUs, ${info.notebook ? `Notebook ${info.notebook}` : ''})`,
  );
  log('');
  log(
    `${pad('target', 15)} ${pad('total', 18)} ${pad('gateway', 15)} ${pad('scheduler', 18)} ${pad('app start', 18)} ${pad('notify', 12)} kernel`,
  );
  for (const [t, s] of [
    ['slurm', slurm],
    ['slurm+pg', slurmPg],
    ['local', local],
    ['local+pg', localPg],
  ] as const) {
    if (!s) continue;
    log(
      `${pad(LABEL[t], 15)} ${pad(fmt(s.total), 18)} ${pad(fmt(s.gateway), 15)} ${pad(fmt(s.scheduler), 18)} ${pad(fmt(s.app), 18)} ${pad(fmt(s.notify), 12)} ${fmt(s.kernel)}`,
    );
  }
  if (jh)
    log(
      `${pad(LABEL.jupyterhub, 15)} ${pad(fmt(jh.total), 18)} (spawn until ready ${fmt(jh.spawn)}, kernel ${fmt(jh.kernel)})`,
    );
  log('');
  for (const [t, s] of [
    ['slurm', slurm],
    ['slurm+pg', slurmPg],
  ] as const) {
    if (!s) continue;
    log(
      `${LABEL[t]} gateway time = submit until sbatch returned ${fmt(s.submit)} + agent callback until running with its route ${fmt(s.callback)}; Slurm's own StartTime - SubmitTime: ${fmt(s.slurmQueueSeconds)} s`,
    );
  }
  log(
    `gateway-added time, SQLite | PostgreSQL: slurm ${fmt(slurm?.gateway)} | ${fmt(slurmPg?.gateway)}; local ${fmt(local?.gateway)} | ${fmt(localPg?.gateway)}`,
  );

  const ratio = local && jh ? Math.round((local.total!.median / jh.total.median) * 100) / 100 : null;
  // The same rounds, so the same load: one ratio per round.
  const perRound =
    samples.local.length === samples.jupyterhub.length
      ? samples.local.map((s, i) => s.total / samples.jupyterhub[i]!.total)
      : [];
  const r2 = (x: number) => Math.round(x * 100) / 100;
  const perRoundRatio =
    perRound.length > 0
      ? { median: r2(median(perRound)), min: r2(Math.min(...perRound)), max: r2(Math.max(...perRound)) }
      : null;
  if (ratio !== null)
    log(
      `atrium/local / jupyterhub click to kernel: ${ratio} (medians); per round ${perRoundRatio ? `${perRoundRatio.median} [${perRoundRatio.min}-${perRoundRatio.max}]` : '-'}`,
    );
  const slurmSummary = (s: typeof slurm) =>
    s
      ? {
          total_ms: s.total!.median,
          gateway_ms: s.gateway!.median,
          submit_ms: s.submit!.median,
          callback_ms: s.callback!.median,
          scheduler_ms: s.scheduler!.median,
          slurm_queue_s: s.slurmQueueSeconds?.median ?? null,
          app_start_ms: s.app!.median,
          kernel_ms: s.kernel!.median,
        }
      : null;
  const localSummary = (s: typeof local) =>
    s ? { total_ms: s.total!.median, gateway_ms: s.gateway!.median, app_start_ms: s.app!.median } : null;
  const under150 = (s: typeof slurm) => (s ? s.gateway!.median < 150 : null);
  const under2500 = (s: typeof slurm) => (s ? s.total!.median < 2500 : null);
  const summary = {
    bench: 'spawn',
    runs: RUNS,
    atrium_slurm: slurmSummary(slurm),
    atrium_slurm_pg: slurmSummary(slurmPg),
    atrium_local: localSummary(local),
    atrium_local_pg: localSummary(localPg),
    jupyterhub: jh
      ? { total_ms: jh.total.median, spawn_ms: jh.spawn.median, kernel_ms: jh.kernel.median }
      : null,
    ratios: { local_vs_jupyterhub: ratio, local_vs_jupyterhub_per_round: perRoundRatio },
    goals: {
      gateway_under_150ms: { sqlite: under150(slurm), postgres: under150(slurmPg) },
      local_at_most_0_8_of_jupyterhub: ratio === null ? null : ratio <= 0.8,
      slurm_click_to_kernel_under_2500ms: { sqlite: under2500(slurm), postgres: under2500(slurmPg) },
    },
  };
  if (!process.env.BENCH_NO_SAVE) {
    const dir = path.join(ROOT, 'bench', 'results');
    fs.mkdirSync(dir, { recursive: true });
    const full = {
      ...summary,
      date: new Date().toISOString(),
      machine: { ...info, load1End: Math.round(os.loadavg()[0]! * 100) / 100 },
      jupyterhub: hub
        ? { version: hub.version, proxy: hub.proxy, ...summary.jupyterhub }
        : summary.jupyterhub,
      stats: {
        atrium_slurm: slurm,
        atrium_slurm_pg: slurmPg,
        atrium_local: local,
        atrium_local_pg: localPg,
        jupyterhub: jh,
      },
      samples,
    };
    const text = `${JSON.stringify(full, null, 2)}\n`;
    const stamp = new Date().toISOString().slice(0, 19).replace(/:/g, '-');
    const file = path.join(dir, `spawn-${stamp}.json`);
    fs.writeFileSync(file, text);
    fs.writeFileSync(path.join(dir, 'spawn-latest.json'), text);
    log(`\nsaved ${path.relative(ROOT, file)} and bench/results/spawn-latest.json`);
  }
  log(JSON.stringify(summary));
}

main().catch(async (e: Error) => {
  await stopAll().catch(() => undefined);
  process.stderr.write(`bench:spawn failed: ${e.stack ?? e.message}\n`);
  process.exit(1);
});
