// Batch jobs, pure parts: request validation, sbatch argv and refusals, output patterns and paging,
// queue privacy, notifications, mail types, the link to Jupyter; the adapter's submitBatch on a fake runner.
import { describe, expect, it } from 'vitest';
import { MAX_SCRIPT_BYTES, parseBatchRequest, validateBatchRequest } from '../../src/core/batch-request.ts';
import { DEFAULT_PAGE_BYTES, expandOutputPattern, pageRange, toPage } from '../../src/jobs/output.ts';
import { clusterStatus, nodeStateWord, queueView } from '../../src/jobs/queue.ts';
import {
  browseLink,
  isSessionJob,
  mailTypesFor,
  notificationFor,
  outputPaths,
  signatureOf,
} from '../../src/jobs/view.ts';
import { SlurmAdapter } from '../../src/scheduler/slurm/adapter.ts';
import {
  classifyBatchError,
  parsePrivateData,
  sbatchBatchArgv,
  validateBatch,
} from '../../src/scheduler/slurm/batch.ts';
import type { CommandRunner } from '../../src/scheduler/slurm/runner.ts';
import {
  type BatchSubmission,
  type JobInfo,
  type NodeInfo,
  type PollSnapshot,
  SchedulerError,
  type UnixIdentity,
} from '../../src/scheduler/types.ts';
import { FakeRunner } from '../helpers/fake-runner.ts';

const alice: UnixIdentity = { user: 'alice', uid: 1001, gid: 1001, home: '/home/alice', shell: '/bin/bash' };

describe('batch request validation (form and API)', () => {
  const ok = { cluster: 'hpc', source: 'text' as const, script: '#!/bin/bash\necho hi\n' };

  it('accepts a minimal script and leaves unset options out', () => {
    expect(validateBatchRequest(ok)).toEqual([]);
    expect(parseBatchRequest({ cluster: 'hpc', script: '#!/bin/sh\n', cores: '', hours: '2' })).toEqual({
      cluster: 'hpc',
      source: 'text',
      script: '#!/bin/sh\n',
      hours: 2,
    });
  });

  it('names the field of every problem', () => {
    const fields = (r: Parameters<typeof validateBatchRequest>[0], l = {}) =>
      validateBatchRequest(r, l).map((e) => e.field);
    expect(fields({ cluster: 'hpc', source: 'path', scriptPath: 'job.sh' })).toEqual(['scriptPath']);
    expect(fields({ cluster: 'hpc', source: 'path', scriptPath: '/a\nb' })).toEqual(['scriptPath']);
    expect(fields({ cluster: 'hpc', source: 'path' })).toEqual(['scriptPath']);
    expect(fields({ ...ok, script: 'echo hi' })).toEqual(['script']);
    expect(fields({ ...ok, script: '#!/bin/bash\r\necho\r\n' })).toEqual(['script']);
    expect(fields({ ...ok, script: `#!/bin/bash\n#${'x'.repeat(MAX_SCRIPT_BYTES)}` })).toEqual(['script']);
    expect(fields({ ...ok, jobName: 'a\tb' })).toEqual(['jobName']);
    expect(fields({ ...ok, jobName: 'x'.repeat(65) })).toEqual(['jobName']);
    expect(fields({ ...ok, workDir: 'rel/dir' })).toEqual(['workDir']);
    expect(fields({ ...ok, partition: '--wrap=id' })).toEqual(['partition']);
    expect(fields({ ...ok, partition: 'gpu' }, { partitions: ['batch'] })).toEqual(['partition']);
    expect(fields({ ...ok, account: 'physics' }, { accounts: ['research'] })).toEqual(['account']);
    expect(fields({ ...ok, account: 'any' }, {})).toEqual([]);
    expect(fields({ ...ok, cores: 1.5 })).toEqual(['cores']);
    expect(fields({ ...ok, cores: 64 }, { maxCores: 16 })).toEqual(['cores']);
    expect(
      fields(
        { ...ok, partition: 'small', cores: 12 },
        { maxCores: 16, perPartition: { small: { maxCores: 8, maxMemoryGb: 32, maxGpus: 0 } } },
      ),
    ).toEqual(['cores']);
    expect(fields({ ...ok, memoryGb: 0 })).toEqual(['memoryGb']);
    expect(fields({ ...ok, gpus: 1 }, { maxGpus: 0 })).toEqual(['gpus']);
    expect(fields({ ...ok, hours: Number.NaN })).toEqual(['hours']);
    expect(validateBatchRequest({ ...ok, cores: 0 })[0]?.message).toBe('Cores: a whole number, at least 1');
  });
});

describe('sbatch for batch jobs', () => {
  const sub = (over: Partial<BatchSubmission> = {}): BatchSubmission => ({
    identity: alice,
    script: '#!/bin/bash\n',
    ...over,
  });

  it('passes options only when given, so #SBATCH lines apply elsewhere', () => {
    expect(sbatchBatchArgv(sub())).toEqual(['sbatch', '--parsable', '--export=NONE']);
    expect(
      sbatchBatchArgv(
        sub({
          script: undefined,
          scriptPath: '/home/alice/job.sh',
          jobName: 'my job',
          partition: 'batch',
          account: 'research',
          cores: 4,
          memoryMb: 2048,
          gpus: 1,
          minutes: 90,
          workDir: '/scratch/alice',
          mailTypes: ['BEGIN', 'END'],
          mailUser: 'alice@example.org',
          tag: 'atrium-job-x',
        }),
        { binDir: '/opt/slurm/bin' },
      ),
    ).toEqual([
      '/opt/slurm/bin/sbatch',
      '--parsable',
      '--export=NONE',
      '--job-name=my job',
      '--comment=atrium-job-x',
      '--chdir=/scratch/alice',
      '--partition=batch',
      '--account=research',
      '--cpus-per-task=4',
      '--mem=2048M',
      '--gres=gpu:1',
      '--time=90',
      '--mail-type=BEGIN,END',
      '--mail-user=alice@example.org',
      '/home/alice/job.sh',
    ]);
  });

  it('validates everything before anything runs', () => {
    const field = (s: BatchSubmission) => {
      try {
        validateBatch(s);
        return 'ok';
      } catch (e) {
        return (e as SchedulerError).field ?? 'none';
      }
    };
    expect(field(sub())).toBe('ok');
    expect(field(sub({ scriptPath: '/x.sh' }))).toBe('script');
    expect(field({ identity: alice })).toBe('scriptPath');
    expect(field(sub({ script: undefined, scriptPath: '/a\0b' }))).toBe('scriptPath');
    expect(field(sub({ script: '#!/bin/bash\n\0' }))).toBe('script');
    expect(field(sub({ jobName: 'a\nb' }))).toBe('jobName');
    expect(field(sub({ partition: '-p' }))).toBe('partition');
    expect(field(sub({ workDir: 'tmp' }))).toBe('workDir');
    expect(field(sub({ mailTypes: ['ALL'], mailUser: 'a@b.c' }))).toBe('mail');
    expect(field(sub({ mailTypes: ['END'], mailUser: 'not an address' }))).toBe('mail');
  });

  it("maps sbatch's refusals to fields, keeping sbatch's own words", () => {
    const byPath = sub({ script: undefined, scriptPath: '/home/bob/secret.sh' });
    expect(classifyBatchError('sbatch: error: Unable to open file /home/bob/secret.sh\n', byPath)).toEqual({
      message: 'Unable to open file /home/bob/secret.sh',
      field: 'scriptPath',
      definite: true,
    });
    expect(classifyBatchError('sbatch: error: Batch script is empty!\n', byPath).field).toBe('scriptPath');
    expect(
      classifyBatchError(
        'sbatch: unrecognized option \'--bogus=1\'\nTry "sbatch --help" for more information\n',
        sub(),
      ),
    ).toMatchObject({ field: 'script', message: "sbatch: unrecognized option '--bogus=1'" });
    // Given on the form: the form's field; from the script: the script.
    const timeErr = 'sbatch: error: Invalid --time specification\n';
    expect(classifyBatchError(timeErr, sub({ minutes: 5 })).field).toBe('hours');
    expect(classifyBatchError(timeErr, sub()).field).toBe('script');
    const part =
      'sbatch: error: invalid partition specified: nope\nsbatch: error: Batch job submission failed: Invalid partition name specified\n';
    expect(classifyBatchError(part, sub({ partition: 'nope' })).field).toBe('partition');
    expect(classifyBatchError(part, sub()).field).toBe('script');
    expect(
      classifyBatchError('sbatch: error: Memory specification can not be satisfied\n', sub({ memoryMb: 9e6 }))
        .field,
    ).toBe('memory');
    expect(
      classifyBatchError(
        'sbatch: error: Batch job submission failed: Socket timed out on send/recv operation',
        sub(),
      ).definite,
    ).toBe(false);
  });

  it('reads PrivateData from scontrol show config', () => {
    expect(
      parsePrivateData('MinJobAge = 300 sec\nPrivateData             = jobs\nProctrackType = x\n'),
    ).toEqual(['jobs']);
    expect(parsePrivateData('PrivateData = accounts,jobs,usage\n')).toEqual(['accounts', 'jobs', 'usage']);
    expect(parsePrivateData('PrivateData             = none\n')).toEqual([]);
    expect(parsePrivateData('nothing here')).toBeUndefined();
  });
});

describe('SlurmAdapter.submitBatch', () => {
  const mk = (r: CommandRunner) =>
    new SlurmAdapter(
      { name: 'hpc', slurmConf: '/etc/slurm/slurm.conf', runAs: 'runuser', commandTimeoutMs: 5000 },
      r,
    );

  it('runs sbatch as the user: the path as an argument, in the script directory; text on stdin, in the home', async () => {
    const r = new FakeRunner(() => ({ stdout: '42\n' }));
    const a = mk(r);
    expect(await a.submitBatch({ identity: alice, scriptPath: '/home/alice/run/job.sh' })).toEqual({
      jobId: '42',
    });
    expect(r.log[0]!.argv).toEqual([
      'runuser',
      '-u',
      'alice',
      '--',
      'sbatch',
      '--parsable',
      '--export=NONE',
      '/home/alice/run/job.sh',
    ]);
    expect(r.log[0]!.opts.cwd).toBe('/home/alice/run');
    expect(r.log[0]!.opts.input).toBeUndefined();
    await a.submitBatch({ identity: alice, script: '#!/bin/bash\necho\n', workDir: '/tmp' });
    expect(r.log[1]!.opts.input).toBe('#!/bin/bash\necho\n');
    expect(r.log[1]!.opts.cwd).toBeUndefined();
    expect(r.log[1]!.argv).toContain('--chdir=/tmp');
    await a.submitBatch({ identity: alice, script: '#!/bin/bash\n' });
    expect(r.log[2]!.opts.cwd).toBe('/home/alice');
  });

  it('refuses root and bad input without running anything', async () => {
    const r = new FakeRunner(() => ({ stdout: '1\n' }));
    const a = mk(r);
    await expect(
      a.submitBatch({ identity: { ...alice, uid: 0, user: 'root' }, script: '#!/bin/sh\n' }),
    ).rejects.toThrow(SchedulerError);
    await expect(a.submitBatch({ identity: alice, scriptPath: 'relative.sh' })).rejects.toThrow(/absolute/);
    expect(r.calls).toBe(0);
  });

  it("an unreadable script: sbatch's message, field scriptPath, no lookup", async () => {
    const r = new FakeRunner(() => ({
      code: 1,
      stderr: 'sbatch: error: Unable to open file /home/bob/x.sh\n',
    }));
    const e = (await mk(r)
      .submitBatch({ identity: alice, scriptPath: '/home/bob/x.sh', tag: 't1' })
      .catch((x) => x)) as SchedulerError;
    expect(e).toBeInstanceOf(SchedulerError);
    expect(e.field).toBe('scriptPath');
    expect(e.message).toBe('Unable to open file /home/bob/x.sh');
    expect(r.calls).toBe(1);
  });

  it('the gateway cannot enter the directory itself: sbatch gets it as --chdir', async () => {
    let n = 0;
    const r = new FakeRunner(() =>
      n++ === 0 ? { code: null, error: 'ENOENT: spawn runuser ENOENT' } : { stdout: '7\n' },
    );
    expect(await mk(r).submitBatch({ identity: alice, scriptPath: '/nfs/alice/job.sh' })).toEqual({
      jobId: '7',
    });
    expect(r.log[1]!.argv).toContain('--chdir=/nfs/alice');
    expect(r.log[1]!.opts.cwd).toBeUndefined();
  });

  it('a timed-out sbatch adopts the job with its tag (one squeue filtered by user)', async () => {
    const r = new FakeRunner((argv) => {
      if (argv.includes('sbatch')) return { code: null, timedOut: true };
      const spec = argv[argv.length - 1] ?? '';
      const nonce = spec.slice(spec.lastIndexOf('\x1e') + 1);
      const f = `\x1f${nonce}`;
      const fields = [
        '99',
        'alice',
        'PENDING',
        'Priority',
        'batch',
        'research',
        '',
        '',
        '1',
        '1',
        '1G',
        '',
        '',
        '',
        '1',
        '',
        '',
        '60',
        '0',
        '1',
        '0',
        'atrium-job-t2',
        '/home/alice',
        '/home/alice/slurm-99.out',
        '/home/alice/slurm-99.out',
        'job',
      ];
      return { stdout: `${fields.join(f)}\x1e${nonce}\n` };
    });
    expect(await mk(r).submitBatch({ identity: alice, script: '#!/bin/sh\n', tag: 'atrium-job-t2' })).toEqual(
      { jobId: '99', adopted: true },
    );
    expect(r.log[1]!.argv).toContain('--user=alice');
  });
});

describe('output files', () => {
  const job = { jobId: '123', name: 'my job', user: 'alice', firstNode: 'node1' };

  it("expands Slurm's filename patterns as the job does", () => {
    expect(expandOutputPattern('/h/out-%j-%x-%u.txt', job)).toBe('/h/out-123-my job-alice.txt');
    expect(expandOutputPattern('/h/%N.%5j.%%.log', job)).toBe('/h/node1.00123.%.log');
    expect(expandOutputPattern('/h/a-%A_%a.out', { ...job, jobId: '55_7' })).toBe('/h/a-55_7.out');
    expect(expandOutputPattern('/h/a-%j.out', { ...job, jobId: '55_7' })).toBeUndefined();
    expect(expandOutputPattern('/h/%N.out', { jobId: '1', name: 'x', user: 'a' })).toBeUndefined();
    expect(expandOutputPattern('/h/slurm-123.out', job)).toBe('/h/slurm-123.out');
    expect(expandOutputPattern('/h/x\\%j', job)).toBe('/h/x%j');
  });

  it('paths of a job: patterns expanded, relative paths refused', () => {
    const j: JobInfo = {
      jobId: '9',
      name: 'n',
      user: 'alice',
      state: 'running',
      rawState: 'RUNNING',
      nodes: 'node[2-3]',
      stdoutPath: '/h/%N-%j.out',
      stderrPath: 'rel.err',
    };
    expect(outputPaths(j)).toEqual({ stdout: '/h/node2-9.out', stderr: null });
  });

  it('pages by byte offsets and never splits a UTF-8 character', () => {
    expect(pageRange({ offset: 0, limit: 0 }, 10)).toEqual({ start: 0, count: 10 });
    expect(pageRange({ offset: 0, limit: DEFAULT_PAGE_BYTES }, 100_000)).toEqual({
      start: 0,
      count: DEFAULT_PAGE_BYTES,
    });
    expect(pageRange({ offset: 200, limit: 10 }, 100)).toEqual({ start: 100, count: 0 });
    expect(pageRange({ offset: -1, limit: 10, fromEnd: true }, 100)).toEqual({ start: 90, count: 10 });
    const text = 'aé€😀b\n';
    const bytes = Buffer.from(text);
    // Read it in 4-byte pages (the smallest), as a follower would.
    let out = '';
    let off = 0;
    for (let i = 0; i < 20 && off < bytes.length; i++) {
      const { start, count } = pageRange({ offset: off, limit: 4 }, bytes.length);
      const p = toPage(bytes.subarray(start, start + count), start, bytes.length);
      expect(p.data).not.toContain('\ufffd');
      out += p.data;
      off = p.nextOffset;
    }
    expect(out).toBe(text);
    // From the end: a page starting inside a character drops its tail bytes.
    const tailOf = (limit: number) => {
      const { start } = pageRange({ offset: -1, limit, fromEnd: true }, bytes.length);
      return toPage(bytes.subarray(start), start, bytes.length, { fromEnd: true });
    };
    expect(tailOf(6).data).toBe('😀b\n');
    expect(tailOf(5)).toMatchObject({ data: 'b\n', offset: bytes.length - 2, eof: true });
    // A cut character at the very end of a file is held back until it is complete.
    const cut = bytes.subarray(0, 4);
    const p = toPage(cut, 0, 4);
    expect(p.data).toBe('aé');
    expect(p.nextOffset).toBe(3);
    expect(p.eof).toBe(false);
  });
});

const node = (name: string, over: Partial<NodeInfo> = {}): NodeInfo => ({
  name,
  address: '127.0.0.1',
  state: 'idle',
  partitions: ['batch'],
  cpus: 16,
  allocCpus: 0,
  memoryMb: 65536,
  allocMemoryMb: 0,
  gpus: 0,
  allocGpus: 0,
  ...over,
});
const jobInfo = (jobId: string, user: string, over: Partial<JobInfo> = {}): JobInfo => ({
  jobId,
  name: `job-${jobId}`,
  user,
  state: 'pending',
  rawState: 'PENDING',
  partition: 'batch',
  submitTime: Number(jobId),
  ...over,
});

describe('queue and cluster status', () => {
  const snap: PollSnapshot = {
    ok: true,
    at: 1000,
    calls: 2,
    nodes: [
      node('n1', {
        state: 'mixed',
        allocCpus: 8,
        gpus: 2,
        allocGpus: 1,
        partitions: ['batch', 'interactive'],
      }),
      node('n2', { state: 'down*' }),
    ],
    jobs: [
      jobInfo('1', 'alice', { state: 'running', nodes: 'n1', workDir: '/home/alice', comment: 'x' }),
      jobInfo('2', 'bob', { reason: 'Priority', priority: 10 }),
      jobInfo('3', 'alice', { reason: 'Resources', priority: 5 }),
      jobInfo('4', 'bob', { state: 'completed', rawState: 'COMPLETED' }),
    ],
  };

  it('with PrivateData=jobs: own rows only, with positions, plus everybody counted per partition', () => {
    const v = queueView('hpc', snap, true, 'alice', true);
    expect(v.jobs.map((j) => j.jobId)).toEqual(['1', '3']);
    expect(v.jobs[1]).toMatchObject({ position: 2, pendingInPartition: 2, reason: 'Resources' });
    expect(v.partitions).toEqual([{ partition: 'batch', running: 1, pending: 2, other: 0 }]);
    expect(queueView('hpc', snap, true, 'alice', true, { user: 'bob' }).jobs).toEqual([]);
    expect(JSON.stringify(v)).not.toContain('/home/alice');
  });

  it('without it: everybody, filtered by user, partition and state', () => {
    expect(queueView('hpc', snap, true, 'alice', false).jobs.map((j) => j.jobId)).toEqual(['1', '2', '3']);
    expect(
      queueView('hpc', snap, true, 'alice', false, { user: 'bob', state: 'all' }).jobs.map((j) => j.jobId),
    ).toEqual(['2', '4']);
    expect(
      queueView('hpc', snap, true, 'alice', false, { state: 'finished' }).jobs.map((j) => j.jobId),
    ).toEqual(['4']);
    expect(queueView('hpc', snap, true, 'alice', false, { partition: 'interactive' }).jobs).toEqual([]);
    expect(queueView('hpc', snap, true, 'alice', false, { limit: 1 })).toMatchObject({
      matched: 3,
      truncated: true,
    });
  });

  it('status: nodes by state, load per partition, GPUs in use; no node list when nodes are private', () => {
    const s = clusterStatus(
      'hpc',
      snap,
      true,
      [{ name: 'batch', isDefault: true, nodes: ['n1', 'n2'], state: 'UP' }],
      false,
    );
    expect(s.nodesByState).toEqual({ mixed: 1, down: 1 });
    expect(s.totals).toEqual({ nodes: 2, cpus: 32, allocCpus: 8, gpus: 2, allocGpus: 1 });
    expect(s.partitions.map((p) => [p.name, p.cpus, p.allocCpus, p.running, p.pending])).toEqual([
      ['batch', 32, 8, 1, 2],
      ['interactive', 16, 8, 0, 0],
    ]);
    expect(clusterStatus('hpc', snap, true, [], true).nodes).toBeNull();
    expect(nodeStateWord('idle~')).toBe('idle');
  });
});

describe('notifications, mail, sessions and links', () => {
  it('one notification per state change that matters, never twice, none after the end', () => {
    expect(notificationFor('pending', null)).toBeNull();
    expect(notificationFor('running', null)?.kind).toBe('job.started');
    expect(notificationFor('running', 'running')).toBeNull();
    expect(notificationFor('completed', 'running')?.kind).toBe('job.completed');
    expect(notificationFor('completed', null)?.kind).toBe('job.completed');
    expect(notificationFor('failed', 'running')?.kind).toBe('job.failed');
    expect(notificationFor('out_of_memory', 'running')?.kind).toBe('job.failed');
    expect(notificationFor('timeout', 'running')?.kind).toBe('job.timeout');
    expect(notificationFor('cancelled', 'pending')?.kind).toBe('job.cancelled');
    expect(notificationFor('failed', 'completed')).toBeNull();
  });

  it('Slurm mail types from the preferences', () => {
    const all = { kinds: {} };
    expect(mailTypesFor(all)).toEqual(['BEGIN', 'END']);
    expect(mailTypesFor({ kinds: { 'job.started': false, 'job.completed': false } })).toEqual([
      'FAIL',
      'TIME_LIMIT',
    ]);
  });

  it('sessions are not batch jobs; priority alone is not a change', () => {
    expect(isSessionJob({ name: 'atrium-abc123', comment: 'abc123' })).toBe(true);
    expect(isSessionJob({ name: 'atrium-abc123', comment: 'other' })).toBe(false);
    expect(isSessionJob({ name: 'job', comment: undefined })).toBe(false);
    const j = jobInfo('5', 'alice', { priority: 1 });
    expect(signatureOf({ ...j, priority: 99 })).toBe(signatureOf(j));
    expect(signatureOf({ ...j, state: 'running' })).not.toBe(signatureOf(j));
  });

  it("links a working directory under the home to the session's Jupyter file browser", () => {
    expect(browseLink('/user/alice/s1/', '/home/alice', '/home/alice/runs/run 1')).toBe(
      '/user/alice/s1/tree/runs/run%201',
    );
    expect(browseLink('/user/alice/s1/', '/home/alice/', '/home/alice')).toBe('/user/alice/s1/tree/');
    expect(browseLink('/user/alice/s1/', '/home/alice', '/home/alice/x', 'lab/tree/{path}')).toBe(
      '/user/alice/s1/lab/tree/x',
    );
    expect(browseLink('/user/alice/s1/', '/home/alice', '/home/alicex/y')).toBeUndefined();
    expect(browseLink('/user/alice/s1/', '/home/alice', '/scratch/alice')).toBeUndefined();
    expect(browseLink('/user/alice/s1/', '/home/alice', '/home/alice/../bob')).toBeUndefined();
  });
});

describe('web helpers for the jobs pages', () => {
  it('formats durations, limits and what a pending job waits for', async () => {
    const f = await import('../../src/web/jobs-format.ts');
    expect(f.formatDuration(45)).toBe('45 s');
    expect(f.formatDuration(3 * 3600 + 5 * 60)).toBe('3 h 05 min');
    expect(f.formatLimit(7 * 24 * 60)).toBe('7 d');
    expect(f.formatLimit(120)).toBe('2 h');
    expect(f.formatLimit(null)).toBe('no limit');
    expect(f.formatBytes(1536)).toBe('1.5 KB');
    expect(
      f.pendingDetails({
        state: 'pending',
        reason: 'Priority',
        queue: { position: 2, pendingInPartition: 5, expectedStart: null },
      }),
    ).toEqual(['waiting: Priority', 'position 2 of 5']);
  });

  it('merges live updates without undoing an end', async () => {
    const { mergeJob } = await import('../../src/web/jobs-format.ts');
    const base = { cluster: 'hpc', jobId: '1', submittedAt: 1, state: 'running', finished: false } as never;
    const done = { cluster: 'hpc', jobId: '1', submittedAt: 1, state: 'completed', finished: true } as never;
    const l1 = mergeJob([], base);
    const l2 = mergeJob(l1, done);
    expect(l2[0]).toBe(done);
    expect(mergeJob(l2, base)[0]).toBe(done);
    expect(mergeJob(l2, { cluster: 'hpc', jobId: '2', submittedAt: 2 } as never).map((j) => j.jobId)).toEqual(
      ['2', '1'],
    );
  });
});
