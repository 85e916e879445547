// Batch jobs through the gateway's API against the real Slurm test cluster: submit by path and by
// text (as the user: file permissions decide), my jobs from the shared poll (pending with its reason,
// running, completed/failed with exit codes), cancel, the output viewer (live and paged, read as the
// user), notifications, the queue with PrivateData, isolation between users, and one squeue per poll
// with 100 jobs in the queue.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '../helpers/client.ts';
import { type ClusterJson, cancelAll, slurm, testCluster } from '../helpers/cluster.ts';
import { createTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { gatewayYaml, homeOf, openEvents, sbatchAs, writeAs } from '../helpers/jobs-cluster.ts';
import { until } from '../helpers/wait.ts';

const cluster = testCluster('jobs', { up: 'nodes' });

interface JobView {
  cluster: string;
  jobId: string;
  name: string;
  user: string;
  state: string;
  displayState: string;
  finished: boolean;
  reason: string | null;
  partition: string | null;
  nodes: string | null;
  exitCode: number | null;
  exitSource: string | null;
  source: string;
  workDir: string | null;
  stdoutPath: string | null;
  stderrPath: string | null;
  timeLimitMinutes: number | null;
  elapsedSeconds: number | null;
  queue: { position: number | null; pendingInPartition: number | null; expectedStart: number | null } | null;
  links?: { browse: unknown; newSession: string; why: string | null };
}

interface Page {
  data: string;
  offset: number;
  nextOffset: number;
  size: number;
  eof: boolean;
  exists: boolean;
}

const tag = () => randomBytes(3).toString('hex');
const DIR = 'atrium-jobs-e2e';

describe.skipIf(!cluster)('batch jobs on the Slurm test cluster', () => {
  const c = cluster as ClusterJson;
  let gw: TestGateway;
  let alice: Client;
  let bob: Client;
  const aliceDir = path.join(homeOf('alice'), DIR);
  const bobDir = path.join(homeOf('bob'), DIR);

  const jobOf = async (cl: Client, jobId: string): Promise<JobView | undefined> => {
    const r = await cl.get('/api/jobs');
    return (r.body as { jobs: JobView[] }).jobs.find((j) => j.jobId === jobId);
  };
  const waitJob = (cl: Client, jobId: string, pred: (j: JobView) => boolean, what: string, ms = 60_000) =>
    until(
      `job ${jobId} ${what}`,
      async () => {
        const j = await jobOf(cl, jobId);
        return j && pred(j) ? j : undefined;
      },
      ms,
      200,
    );
  const submit = async (cl: Client, body: Record<string, unknown>) => {
    const r = await cl.post('/api/jobs', { cluster: 'hpc', ...body });
    return r as {
      status: number;
      body: { job: JobView; error?: string; field?: string; errors?: unknown[] };
    };
  };
  const squeueIds = (user: string) =>
    slurm(c, 'squeue', ['-h', '-a', '-t', 'all', '-u', user, '-o', '%i'])
      .split('\n')
      .map((s) => s.trim())
      .filter(Boolean);

  beforeAll(async () => {
    await cancelAll(c);
    gw = await createTestGateway({
      name: 'jobs',
      users: [{ name: 'alice' }, { name: 'bob' }],
      // The page-view storm below measures scheduler calls, not the API rate limit (tested elsewhere).
      yaml: `${gatewayYaml(c)}\nauth:\n  apiRequestsPerMinute: 1000000\n`,
    });
    await gw.start();
    alice = new Client(gw.url);
    bob = new Client(gw.url);
    expect((await alice.login('alice', gw.passwords.alice!)).status).toBe(200);
    expect((await bob.login('bob', gw.passwords.bob!)).status).toBe(200);
    fs.rmSync(aliceDir, { recursive: true, force: true });
    fs.rmSync(bobDir, { recursive: true, force: true });
    // Jobs write their output there: it must exist before they start (Slurm does not create it).
    writeAs('alice', path.join(aliceDir, '.keep'), '');
    writeAs('bob', path.join(bobDir, '.keep'), '');
  });

  afterEach(async () => {
    await cancelAll(c);
  });

  afterAll(async () => {
    await gw?.stop();
    if (gw) fs.rmSync(gw.dir, { recursive: true, force: true });
    fs.rmSync(aliceDir, { recursive: true, force: true });
    fs.rmSync(bobDir, { recursive: true, force: true });
  });

  it("submits alice's own script by path; it runs as alice and completes with exit code 0", async () => {
    const script = path.join(aliceDir, 'by-path.sh');
    writeAs(
      'alice',
      script,
      '#!/bin/bash\n#SBATCH --job-name=by-path\n#SBATCH --time=5\nid -un\necho ok\n',
      0o700,
    );
    const r = await submit(alice, { source: 'path', scriptPath: script });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const { jobId } = r.body.job;
    expect(r.body.job.source).toBe('path');
    expect(slurm(c, 'squeue', ['-h', '-a', '-t', 'all', '-j', jobId, '-o', '%u|%j']).trim()).toBe(
      'alice|by-path',
    );
    const done = await waitJob(alice, jobId, (j) => j.state === 'completed', 'completed');
    expect(done).toMatchObject({ exitCode: 0, name: 'by-path', workDir: aliceDir, user: 'alice' });
    // Without a working directory on the form, the job ran in the script's directory (slurm-%j.out there).
    expect(done.stdoutPath).toBe(path.join(aliceDir, `slurm-${jobId}.out`));
    const out = (await alice.get(`/api/jobs/hpc/${jobId}/output?stream=stdout`)).body as unknown as Page;
    expect(out.data).toBe('alice\nok\n');
  });

  it("refuses bob's script that alice cannot read, with sbatch's own message, and submits nothing", async () => {
    const secret = path.join(bobDir, 'secret.sh');
    writeAs('bob', secret, '#!/bin/bash\n#SBATCH --job-name=bobs-secret\necho secret\n', 0o600);
    const before = squeueIds('alice');
    const r = await submit(alice, { source: 'path', scriptPath: secret });
    expect(r.status).toBe(400);
    expect(r.body.field).toBe('scriptPath');
    expect(r.body.error).toContain(`Unable to open file ${secret}`);
    // As root: no job of alice's appeared, none with that name at all.
    expect(squeueIds('alice')).toEqual(before);
    expect(slurm(c, 'squeue', ['-h', '-a', '-t', 'all', '-o', '%j'])).not.toContain('bobs-secret');
    expect(
      ((await alice.get('/api/jobs')).body as { jobs: JobView[] }).jobs.map((j) => j.name),
    ).not.toContain('bobs-secret');
    // The gateway never read the file with its own rights: a missing file gets the same refusal.
    const r2 = await submit(alice, { source: 'path', scriptPath: path.join(bobDir, 'nope.sh') });
    expect(r2.status).toBe(400);
    expect(r2.body.field).toBe('scriptPath');
    // Validation before anything runs.
    const rel = await submit(alice, { source: 'path', scriptPath: 'job.sh' });
    expect(rel.status).toBe(400);
    expect(rel.body.field).toBe('scriptPath');
    const noShebang = await submit(alice, { source: 'text', script: 'echo hi\n' });
    expect(noShebang.status).toBe(400);
    expect(noShebang.body.field).toBe('script');
    const big = await submit(alice, { source: 'text', script: `#!/bin/bash\n#${'x'.repeat(300 * 1024)}\n` });
    expect(big.status).toBe(400);
    expect(big.body.field).toBe('script');
    expect(squeueIds('alice')).toEqual(before);
  });

  it('submits pasted text whose #SBATCH directives are honoured (name, time, partition); cancel works', async () => {
    const name = `text-${tag()}`;
    const script = `#!/bin/bash\n#SBATCH --job-name=${name}\n#SBATCH --time=7\n#SBATCH --partition=batch\nsleep 120\n`;
    const r = await submit(alice, { source: 'text', script });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const { jobId } = r.body.job;
    const [qName, qLimit, qPart, qUser] = slurm(c, 'squeue', [
      '-h',
      '-a',
      '-t',
      'all',
      '-j',
      jobId,
      '-o',
      '%j|%l|%P|%u',
    ])
      .trim()
      .split('|');
    expect({ qName, qLimit, qPart, qUser }).toEqual({
      qName: name,
      qLimit: '7:00',
      qPart: 'batch',
      qUser: 'alice',
    });
    const running = await waitJob(alice, jobId, (j) => j.state === 'running', 'running');
    expect(running).toMatchObject({ name, partition: 'batch', timeLimitMinutes: 7, source: 'text' });
    expect(running.nodes).toBeTruthy();
    // The home is the default working directory of pasted scripts.
    expect(running.workDir).toBe(homeOf('alice'));
    // Bob cannot cancel (or see) it.
    expect((await bob.del(`/api/jobs/hpc/${jobId}`)).status).toBe(404);
    const del = await alice.del(`/api/jobs/hpc/${jobId}`);
    expect(del.status).toBe(200);
    await waitJob(alice, jobId, (j) => j.state === 'cancelled', 'cancelled');
    expect(slurm(c, 'squeue', ['-h', '-a', '-t', 'all', '-j', jobId, '-o', '%T']).trim()).toBe('CANCELLED');
    fs.rmSync(path.join(homeOf('alice'), `slurm-${jobId}.out`), { force: true });
  });

  it('form options override the script and appear in squeue; sbatch refusals name their field', async () => {
    const r = await submit(alice, {
      source: 'text',
      script: '#!/bin/bash\n#SBATCH --time=3\nsleep 60\n',
      jobName: 'form-options',
      partition: 'batch',
      cores: 2,
      memoryGb: 1,
      hours: 0.5,
      workDir: aliceDir,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const id = r.body.job.jobId;
    expect(slurm(c, 'squeue', ['-h', '-a', '-t', 'all', '-j', id, '-o', '%j|%l|%P|%C|%Z']).trim()).toBe(
      `form-options|30:00|batch|2|${aliceDir}`,
    );
    await alice.del(`/api/jobs/hpc/${id}`);
    const acct = await submit(alice, { source: 'text', script: '#!/bin/bash\necho\n', account: 'physics' });
    expect(acct.status).toBe(400);
    expect(acct.body.field).toBe('account');
    const badTime = await submit(alice, {
      source: 'text',
      script: '#!/bin/bash\n#SBATCH --time=abc\necho\n',
    });
    expect(badTime.status).toBe(400);
    // The time came from the script, so the script is at fault.
    expect(badTime.body.field).toBe('script');
    expect(badTime.body.error).toContain('Invalid --time specification');
  });

  it('shows a job pending with its reason, then running, then completed with exit code 0; exit 3 is failed with 3', async () => {
    const first = await submit(alice, {
      source: 'text',
      script: '#!/bin/bash\nsleep 5\n',
      jobName: 'first',
      workDir: aliceDir,
    });
    expect(first.status).toBe(201);
    const a = first.body.job.jobId;
    const second = await submit(alice, {
      source: 'text',
      jobName: 'second',
      script: `#!/bin/bash\n#SBATCH --dependency=afterok:${a}\n#SBATCH -o ${aliceDir}/second-%j.out\nsleep 4\necho second done\n`,
    });
    expect(second.status).toBe(201);
    const b = second.body.job.jobId;
    const pending = await waitJob(
      alice,
      b,
      (j) => j.state === 'pending' && j.reason !== null,
      'pending with a reason',
    );
    expect(pending.reason).toBe('Dependency');
    expect(pending.queue?.position).toBeGreaterThanOrEqual(1);
    const detail = (await alice.get(`/api/jobs/hpc/${b}`)).body as { job: JobView };
    expect(detail.job).toMatchObject({ state: 'pending', reason: 'Dependency' });
    expect(detail.job.links?.newSession).toBe('/?cluster=hpc&app=jupyter');
    await waitJob(alice, b, (j) => j.state === 'running' || j.state === 'completing', 'running', 60_000);
    const done = await waitJob(alice, b, (j) => j.state === 'completed', 'completed');
    expect(done.exitCode).toBe(0);
    expect(done.stdoutPath).toBe(`${aliceDir}/second-${b}.out`);
    expect(done.elapsedSeconds).not.toBeNull();

    const fail = await submit(alice, {
      source: 'text',
      script: '#!/bin/bash\necho failing >&2\nexit 3\n',
      jobName: 'exit3',
      workDir: aliceDir,
    });
    expect(fail.status).toBe(201);
    const f = fail.body.job.jobId;
    const failed = await waitJob(alice, f, (j) => j.state === 'failed', 'failed');
    expect(failed.exitCode).toBe(3);
    if (c.withDbd) {
      // Confirmed by accounting (one sacct call per poll batch).
      const confirmed = await waitJob(
        alice,
        f,
        (j) => j.exitSource === 'sacct',
        'exit code from sacct',
        30_000,
      );
      expect(confirmed.exitCode).toBe(3);
    }
    const err = (await alice.get(`/api/jobs/hpc/${f}/output?stream=stderr`)).body as unknown as Page;
    expect(err.data).toContain('failing');
  });

  it('the output viewer shows lines as a running job writes them, follows with nextOffset, and pages', async () => {
    const name = `follow-${tag()}`;
    const script = [
      '#!/bin/bash',
      `#SBATCH --job-name=${name}`,
      `#SBATCH --output=${aliceDir}/out-%j-%x-%u.txt`,
      'for i in $(seq 1 8); do echo "line-$i é€😀"; sleep 1; done',
      // Then a large burst for paging.
      'python3 -c "import sys; [sys.stdout.write(\'%06d ü€\\n\' % i) for i in range(20000)]"',
      'echo the-end',
      '',
    ].join('\n');
    const r = await submit(alice, { source: 'text', script, workDir: aliceDir });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const id = r.body.job.jobId;
    let text = '';
    let offset = 0;
    const seenWhileRunning: string[] = [];
    await until(
      'line-3 while running',
      async () => {
        const p = (await alice.get(`/api/jobs/hpc/${id}/output?stream=stdout&offset=${offset}`))
          .body as unknown as Page;
        text += p.data;
        offset = p.nextOffset;
        const j = await jobOf(alice, id);
        if (j?.state === 'running' && p.data) seenWhileRunning.push(p.data);
        return text.includes('line-3') && !text.includes('line-8') ? true : undefined;
      },
      60_000,
      500,
    );
    expect(seenWhileRunning.length).toBeGreaterThanOrEqual(1);
    expect(text.startsWith('line-1 é€😀\n')).toBe(true);
    const done = await waitJob(alice, id, (j) => j.finished === true, 'finished', 90_000);
    expect(done.state).toBe('completed');
    // The pattern was expanded: %j, %x and %u.
    const file = `${aliceDir}/out-${id}-${name}-alice.txt`;
    expect(done.stdoutPath).toBe(file);
    const whole = fs.readFileSync(file, 'utf8');
    // Follow to the end in pages of 64 KiB; small pages never cut a character.
    for (;;) {
      const p = (await alice.get(`/api/jobs/hpc/${id}/output?offset=${offset}`)).body as unknown as Page;
      text += p.data;
      offset = p.nextOffset;
      if (p.eof) break;
    }
    expect(text).toBe(whole);
    let small = '';
    let o = 0;
    for (let n = 0; n < 40; n++) {
      const p = (await alice.get(`/api/jobs/hpc/${id}/output?offset=${o}&limit=7`)).body as unknown as Page;
      small += p.data;
      o = p.nextOffset;
    }
    expect(whole.startsWith(small)).toBe(true);
    expect(small).not.toContain('\ufffd');
    const tail = (await alice.get(`/api/jobs/hpc/${id}/output?from=end&limit=100`)).body as unknown as Page;
    expect(tail.eof).toBe(true);
    expect(tail.data.endsWith('the-end\n')).toBe(true);
    expect(tail.size).toBe(Buffer.byteLength(whole));
  });

  it("alice never sees bob's jobs, outputs or notifications; the queue honours PrivateData; output is read as the user", async () => {
    const aliceEvents = openEvents(gw.url, alice.cookie);
    const bobEvents = openEvents(gw.url, bob.cookie);
    try {
      const b = await submit(bob, {
        source: 'text',
        jobName: 'bobs-job',
        script: '#!/bin/bash\necho bob-secret-output\nsleep 2\n',
        workDir: bobDir,
      });
      expect(b.status).toBe(201);
      const bid = b.body.job.jobId;
      const a = await submit(alice, {
        source: 'text',
        jobName: 'alices-job',
        script: '#!/bin/bash\necho alice-output\n',
        workDir: aliceDir,
      });
      expect(a.status).toBe(201);
      const aid = a.body.job.jobId;
      await waitJob(bob, bid, (j) => j.state === 'completed', 'completed');
      await waitJob(alice, aid, (j) => j.state === 'completed', 'completed');
      // A notification for alice's job, live and stored.
      const note = await until('alice notification', async () =>
        aliceEvents.events.find(
          (e) =>
            e.type === 'notification' &&
            (e.data as { link?: string; kind?: string }).link === `/jobs/hpc/${aid}` &&
            (e.data as { kind?: string }).kind === 'job.completed',
        ),
      );
      expect(note.data).toMatchObject({ kind: 'job.completed', title: 'Job completed' });
      expect((note.data as { body: string }).body).toContain('exit code 0');

      // Bob's job: not in alice's list, 404 on every job URL, not in her queue rows, no events or notifications.
      const aliceJobs = ((await alice.get('/api/jobs?state=all')).body as { jobs: JobView[] }).jobs;
      expect(aliceJobs.every((j) => j.user === 'alice')).toBe(true);
      expect(aliceJobs.map((j) => j.jobId)).not.toContain(bid);
      for (const p of [
        `/api/jobs/hpc/${bid}`,
        `/api/jobs/hpc/${bid}/output`,
        `/api/jobs/hpc/${bid}/output?stream=stderr`,
      ]) {
        expect((await alice.get(p)).status, p).toBe(404);
      }
      expect((await alice.del(`/api/jobs/hpc/${bid}`)).status).toBe(404);
      const notes = JSON.stringify((await alice.get('/api/notifications')).body);
      expect(notes).not.toContain(`/jobs/hpc/${bid}`);
      expect(notes).not.toContain('bobs-job');
      const seenByAlice = JSON.stringify(aliceEvents.events);
      expect(seenByAlice).not.toContain('bobs-job');
      expect(seenByAlice).not.toContain(`"jobId":"${bid}"`);
      expect(JSON.stringify(bobEvents.events)).not.toContain('alices-job');

      // The queue: PrivateData=jobs, so alice gets her own rows only, but counts of everybody's.
      const held = sbatchAs(c, 'bob', ['-H', '-p', 'batch', '-J', 'bobs-held', '--wrap', 'sleep 1']);
      await until('bob held job in the poll', async () => {
        const q = (await bob.get('/api/queue?cluster=hpc')).body as { jobs: { jobId: string }[] };
        return q.jobs.some((j) => j.jobId === held);
      });
      const qa = (await alice.get('/api/queue?cluster=hpc&state=all')).body as {
        privateJobs: boolean;
        jobs: { user: string; name: string }[];
        partitions: { partition: string; pending: number }[];
      };
      expect(qa.privateJobs).toBe(true);
      expect(qa.jobs.every((j) => j.user === 'alice')).toBe(true);
      expect(JSON.stringify(qa)).not.toContain('bobs-held');
      expect(qa.partitions.find((p) => p.partition === 'batch')?.pending).toBeGreaterThanOrEqual(1);
      const qUser = (await alice.get('/api/queue?cluster=hpc&user=bob&state=all')).body as {
        jobs: unknown[];
      };
      expect(qUser.jobs).toEqual([]);
      const status = (await alice.get('/api/clusters/hpc/status')).body as {
        nodesByState: Record<string, number>;
        totals: { nodes: number; gpus: number };
        partitions: { name: string; cpus: number }[];
      };
      expect(Object.values(status.nodesByState).reduce((x, y) => x + y, 0)).toBe(c.nodes.length);
      expect(status.totals.gpus).toBe(c.nodes.reduce((x, n) => x + n.gpus, 0));
      expect(status.partitions.map((p) => p.name).sort()).toEqual(['batch', 'interactive']);

      // Output is read as the job's owner: bob's job writing into alice's (0700) home cannot be read by bob.
      const sneaky = await submit(bob, {
        source: 'text',
        jobName: 'sneaky',
        script: `#!/bin/bash\n#SBATCH -o ${aliceDir}/slurm-${aid}.out\necho x\n`,
        workDir: bobDir,
      });
      expect(sneaky.status).toBe(201);
      const sid = sneaky.body.job.jobId;
      await waitJob(bob, sid, (j) => j.finished, 'finished');
      const so = await bob.get(`/api/jobs/hpc/${sid}/output`);
      expect(so.status).toBe(403);
      expect(JSON.stringify(so.body)).not.toContain('alice-output');
    } finally {
      aliceEvents.close();
      bobEvents.close();
    }
  });

  it("links a job's working directory to the user's running Jupyter session", async () => {
    const r = await submit(alice, {
      source: 'text',
      jobName: 'for-jupyter',
      script: '#!/bin/bash\necho result > result.txt\n',
      workDir: aliceDir,
    });
    expect(r.status).toBe(201);
    const id = r.body.job.jobId;
    await waitJob(alice, id, (j) => j.state === 'completed', 'completed');
    const before = ((await alice.get(`/api/jobs/hpc/${id}`)).body as { job: JobView }).job;
    expect(before.links?.browse).toBeNull();
    expect(before.links?.why).toContain('no running Jupyter session');
    const s = await alice.post('/api/sessions', {
      cluster: 'hpc',
      app: 'jupyter',
      cores: 1,
      memoryGb: 1,
      hours: 1,
    });
    expect(s.status, JSON.stringify(s.body)).toBe(201);
    const session = (s.body as { session: { id: string; url: string } }).session;
    try {
      await until(
        'the Jupyter session to run',
        async () => {
          const v = (await alice.get(`/api/sessions/${session.id}`)).body as {
            session: { state: string; reason: string };
          };
          if (v.session.state === 'failed' || v.session.state === 'ended') throw new Error(v.session.reason);
          return v.session.state === 'running';
        },
        120_000,
        500,
      );
      const after = ((await alice.get(`/api/jobs/hpc/${id}`)).body as { job: JobView }).job;
      const browse = after.links?.browse as { url: string; sessionId: string };
      expect(browse.sessionId).toBe(session.id);
      expect(browse.url).toBe(`${session.url}tree/${DIR}`);
      // The same directory, seen through Jupyter (as alice, through the gateway): the job's result is there.
      const listing = await alice.get(`${session.url}api/contents/${DIR}`);
      expect(listing.status).toBe(200);
      expect(JSON.stringify(listing.body)).toContain('result.txt');
      // Bob gets no link into alice's session, nor the job.
      expect((await bob.get(`/api/jobs/hpc/${id}`)).status).toBe(404);
    } finally {
      await alice.del(`/api/sessions/${session.id}`);
    }
  });

  it('with 100 jobs of several users in the queue, every page view still shares one squeue per poll', async () => {
    const ids: string[] = [];
    // Unique names: jobs of earlier runs stay in squeue's recent history for MinJobAge.
    const prefix = `many-${tag()}-`;
    for (const [user, n] of [
      ['alice', 40],
      ['bob', 35],
      ['carol', 30],
    ] as const) {
      for (let i = 0; i < n; i++)
        ids.push(sbatchAs(c, user, ['-H', '-p', 'batch', '-J', `${prefix}${i}`, '--wrap', 'sleep 1']));
    }
    expect(ids.length).toBe(105);
    await until(
      'the poll to see all of them',
      async () => {
        const q = (await bob.get('/api/queue?cluster=hpc')).body as {
          partitions: { partition: string; pending: number }[];
        };
        return (q.partitions.find((p) => p.partition === 'batch')?.pending ?? 0) >= 105;
        // Generous: on a loaded machine the first poll that records 105 new jobs can take a while.
      },
      180_000,
    );
    const metrics = async () => {
      const text = await (await fetch(`${gw.url}/metrics`)).text();
      const val = (re: RegExp) => Number(re.exec(text)?.[1] ?? Number.NaN);
      return {
        polls: val(/^atrium_scheduler_polls_total\{cluster="hpc"\} (\d+)/m),
        squeue: val(/^atrium_scheduler_commands_total\{cluster="hpc",command="squeue"\} (\d+)/m),
        sacct: val(/^atrium_scheduler_commands_total\{cluster="hpc",command="sacct"\} (\d+)/m),
      };
    };
    const m1 = await metrics();
    // Many viewers, many pages, for a few poll intervals.
    const t0 = Date.now();
    let views = 0;
    while (Date.now() - t0 < 4000) {
      await Promise.all([
        alice.get('/api/jobs'),
        bob.get('/api/jobs?state=all'),
        alice.get('/api/queue?cluster=hpc&state=all'),
        bob.get('/api/queue?cluster=hpc'),
        alice.get('/api/clusters/hpc/status'),
        bob.get(`/api/jobs/hpc/${ids[45]}`),
      ]);
      views += 6;
    }
    const m2 = await metrics();
    const polls = m2.polls - m1.polls;
    console.info(`[jobs e2e] ${views} page views over ${polls} polls: ${m2.squeue - m1.squeue} squeue calls`);
    expect(views).toBeGreaterThan(60);
    expect(polls).toBeGreaterThanOrEqual(2);
    // One squeue per poll, whatever the number of viewers (±1: a poll may be under way at a read).
    expect(Math.abs(m2.squeue - m1.squeue - polls)).toBeLessThanOrEqual(1);
    // Nothing finished meanwhile, so no sacct call either.
    expect(m2.sacct).toBe(m1.sacct);
    // Every one of them is in its owner's list (jobs of the gateway's users submitted elsewhere).
    const bobs = ((await bob.get('/api/jobs?limit=1000')).body as { jobs: JobView[] }).jobs;
    expect(bobs.filter((j) => j.name.startsWith(prefix)).length).toBe(35);
    expect(bobs.every((j) => j.user === 'bob')).toBe(true);
  });
});
