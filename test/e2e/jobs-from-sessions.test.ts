// Jobs submitted from inside a session (issue 17, point 5), on the real Slurm test cluster: sbatch run by
// a Python subprocess in the session's Jupyter kernel submits to the batch partition; the jobs appear in
// My jobs within one poll as submitted from a session, with their live state; the short one notifies on
// its end and its output (including an srun step, which the session's own job variables must not break)
// is readable there; the long one is cancelled from there.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, type SessionView, waitForState } from '../helpers/client.ts';
import { type ClusterJson, cancelAll, testCluster } from '../helpers/cluster.ts';
import { createTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { gatewayYaml } from '../helpers/jobs-cluster.ts';
import { createKernel, runInKernel } from '../helpers/jupyter.ts';
import { until } from '../helpers/wait.ts';

const cluster = testCluster('jobs-from-sessions', { up: 'nodes' });

interface JobView {
  jobId: string;
  name: string;
  state: string;
  partition: string | null;
  source: string;
  exitCode: number | null;
}

/** What the kernel runs: two jobs sbatch'ed to the batch partition, their ids printed. */
const SUBMIT = String.raw`
import os, subprocess
def sbatch(name, script):
    r = subprocess.run(['sbatch', '--parsable', '-p', 'batch', '-J', name, '-D', os.path.expanduser('~')],
                       input=script, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit('sbatch failed: ' + r.stderr)
    return r.stdout.strip().split(';')[0]
short = sbatch('from-session-short', '#!/bin/bash\nsleep 2\nsrun --ntasks=1 echo "step of $SLURM_JOB_ID"\necho "done $SLURM_JOB_ID in $SLURM_JOB_PARTITION"\n')
long = sbatch('from-session-long', '#!/bin/bash\nsleep 600\n')
print(short, long)
`;

describe.skipIf(!cluster)('jobs submitted from inside a session', () => {
  const c = cluster as ClusterJson;
  let gw: TestGateway;
  let alice: Client;
  let session: SessionView | undefined;

  const polls = async () => {
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    return Number(/^atrium_scheduler_polls_total\{cluster="hpc"\} (\d+)/m.exec(text)?.[1] ?? Number.NaN);
  };
  const jobOf = async (id: string) =>
    ((await alice.get('/api/jobs')).body as { jobs: JobView[] }).jobs.find((j) => j.jobId === id);

  beforeAll(async () => {
    await cancelAll(c);
    gw = await createTestGateway({
      name: 'jobs-from-sessions',
      users: [{ name: 'alice' }],
      yaml: gatewayYaml(c),
    });
    await gw.start();
    alice = new Client(gw.url);
    expect((await alice.login('alice', gw.passwords.alice!)).status).toBe(200);
  });

  afterAll(async () => {
    if (session) await alice.del(`/api/sessions/${session.id}`);
    await gw?.stop();
    await cancelAll(c);
  });

  it('sbatch in the Jupyter kernel: in My jobs within one poll, notified at its end, output readable, cancellable', async () => {
    const r = await alice.post('/api/sessions', {
      cluster: 'hpc',
      app: 'jupyter',
      cores: 1,
      memoryGb: 1,
      hours: 1,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    session = await waitForState(alice, (r.body as { session: SessionView }).session.id, ['running'], 45_000);
    const url = gw.url + session.url;
    const kernel = await createKernel(url, alice.cookie);

    const out = (await runInKernel(url, alice.cookie, kernel, SUBMIT, 30_000)).trim();
    const before = await polls();
    const [short, long] = out.split(/\s+/);
    expect(short, out).toMatch(/^\d+$/);
    expect(long, out).toMatch(/^\d+$/);

    // Listed at the first poll that started after the submit (the one under way may have missed it).
    const seen = await until(
      'both jobs in My jobs',
      async () => {
        const p = await polls();
        const jobs = [await jobOf(short!), await jobOf(long!)];
        return jobs.every(Boolean) ? { p, jobs: jobs as JobView[] } : undefined;
      },
      20_000,
      100,
    );
    expect(seen.p - before).toBeLessThanOrEqual(2);
    for (const j of seen.jobs) expect(j).toMatchObject({ source: 'session', partition: 'batch' });
    expect(seen.jobs[0]!.name).toBe('from-session-short');

    // The short one ends: its state, a notification, and its output, srun step included.
    const done = await until(
      'the short job completed',
      async () => {
        const j = await jobOf(short!);
        return j?.state === 'completed' ? j : undefined;
      },
      30_000,
      200,
    );
    expect(done.exitCode).toBe(0);
    await until(
      'its notification',
      async () => {
        const notes = JSON.stringify((await alice.get('/api/notifications')).body);
        return notes.includes(`/jobs/hpc/${short}`) && notes.includes('completed') ? true : undefined;
      },
      10_000,
      200,
    );
    const page = await until(
      'its output',
      async () => {
        const o = (await alice.get(`/api/jobs/hpc/${short}/output?stream=stdout`)).body as { data?: string };
        return o.data?.includes(`done ${short}`) ? o.data : undefined;
      },
      10_000,
      200,
    );
    expect(page).toContain(`step of ${short}`);
    expect(page).toContain('in batch');

    // The long one: running or pending, cancelled from My jobs.
    expect(['pending', 'running']).toContain((await jobOf(long!))?.state);
    expect((await alice.del(`/api/jobs/hpc/${long}`)).status).toBeLessThan(300);
    await until(
      'the long job cancelled, and notified',
      async () => {
        const j = await jobOf(long!);
        const notes = JSON.stringify((await alice.get('/api/notifications')).body);
        return j?.state === 'cancelled' && notes.includes(`/jobs/hpc/${long}`) ? true : undefined;
      },
      20_000,
      200,
    );
  });
});
