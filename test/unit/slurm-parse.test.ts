// Parsers and argv builders of the Slurm adapter, on outputs captured from the project's own test
// cluster (test/fixtures/slurm/capture.sh) plus crafted edge cases (squeue-crafted.txt).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SlurmAdapter } from '../../src/scheduler/slurm/adapter.ts';
import {
  asUser,
  buildBatchScript,
  sacctUsageArgv,
  sbatchArgv,
  sessionLogPath,
  shellQuote,
  sinfoNodesArgv,
  squeueArgv,
} from '../../src/scheduler/slurm/commands.ts';
import {
  classifySbatchError,
  expandHostlist,
  normalizeRawState,
  parseAssociations,
  parseCpuTimeMs,
  parseDurationMinutes,
  parseExitCode,
  parseGpuGres,
  parseJobState,
  parseKeyValueLine,
  parseMemoryMb,
  parsePartitions,
  parseReservations,
  parseRssKb,
  parseSacct,
  parseSacctUsage,
  parseSbatchJobId,
  parseSinfoNodes,
  parseSqueue,
  parseTime,
  SQUEUE_FIELDS,
  separatorsFor,
} from '../../src/scheduler/slurm/parse.ts';
import { type CommandRunner, ExecRunner } from '../../src/scheduler/slurm/runner.ts';
import { type JobInfo, SchedulerError, type SessionSubmission } from '../../src/scheduler/types.ts';
import { FakeRunner } from '../helpers/fake-runner.ts';

const FIX = path.join(import.meta.dirname, '..', 'fixtures', 'slurm');
const fixture = (name: string): string => readFileSync(path.join(FIX, name), 'utf8');
const NONCE = 'fixture0nonce000';
const SEP = separatorsFor(NONCE);

const byId = (jobs: JobInfo[], id: string): JobInfo => {
  const j = jobs.find((x) => x.jobId === id);
  if (!j) throw new Error(`job ${id} not in fixture`);
  return j;
};

describe('squeue -O (captured, cluster with slurmdbd)', () => {
  const { jobs, bad } = parseSqueue(fixture('squeue-dbd.txt'), SEP);

  it('reads every record, including a job name holding a newline and a unit separator', () => {
    expect(bad).toBe(0);
    expect(jobs.map((j) => j.jobId).sort((a, b) => Number(a) - Number(b))).toEqual([
      '1',
      '2',
      '3',
      '4',
      '5',
      '6',
      '7',
      '8',
      '9',
      '10',
      '11',
    ]);
    const odd = byId(jobs, '3');
    expect(odd.name).toBe('my job | with spaces\x1fand\nnewline');
    expect(odd.comment).toBe('a comment, with spaces');
    expect(odd.user).toBe('bob');
    expect(odd.state).toBe('running');
  });

  it('reads a running GPU session job', () => {
    expect(byId(jobs, '2')).toEqual({
      jobId: '2',
      name: 'atrium-s1',
      user: 'alice',
      state: 'running',
      rawState: 'RUNNING',
      partition: 'interactive',
      account: 'research',
      comment: 'tag-s1',
      nodes: 'node1',
      cpus: 2,
      memoryMb: 2048,
      gpus: 1,
      submitTime: 1795617073,
      startTime: 1795617073,
      endTime: 1795620673,
      timeLimitMinutes: 60,
      workDir: '/home/alice',
      stdoutPath: '/dev/null',
      stderrPath: '/dev/null',
      priority: 4294901758,
    });
  });

  it('gives pending jobs their reason and the expected start time', () => {
    const res = byId(jobs, '5');
    expect(res.state).toBe('pending');
    expect(res.reason).toBe('Resources');
    expect(res.startTime).toBeGreaterThan(res.submitTime ?? Infinity);
    expect(res.nodes).toBeUndefined();
    const dep = byId(jobs, '10');
    expect(dep.reason).toBe('Dependency');
    expect(dep.startTime).toBeUndefined();
    expect(byId(jobs, '11').reason).toBe('JobHeldUser');
  });

  it('reads finished jobs with exit codes', () => {
    const failed = byId(jobs, '6');
    expect(failed.state).toBe('failed');
    expect(failed.exitCode).toBe(3);
    expect(failed.reason).toBe('NonZeroExitCode');
    expect(byId(jobs, '7')).toMatchObject({ state: 'completed', exitCode: 0 });
    // Cancelled while running: killed by SIGTERM.
    expect(byId(jobs, '1')).toMatchObject({ state: 'cancelled', exitCode: 143, gpus: 1 });
    // Cancelled while pending: never had a node.
    expect(byId(jobs, '8')).toMatchObject({ state: 'cancelled', reason: 'JobHeldUser' });
    expect(byId(jobs, '8').nodes).toBeUndefined();
    // Running jobs carry no exit code.
    expect(byId(jobs, '2').exitCode).toBeUndefined();
  });

  it('reads the reservation of a job', () => {
    expect(byId(jobs, '9').reservation).toBe('alice_res');
    expect(byId(jobs, '2').reservation).toBeUndefined();
  });

  it('refuses records made with another nonce (a forged separator cannot split a record)', () => {
    const other = parseSqueue(fixture('squeue-dbd.txt'), separatorsFor('someothernonce00'));
    expect(other.jobs).toEqual([]);
    expect(other.bad).toBeGreaterThan(0);
  });

  it('cannot be fooled by a job name that imitates separators without the nonce', () => {
    const fields = SQUEUE_FIELDS.map(() => 'x');
    fields[0] = '42';
    fields[1] = 'mallory';
    fields[2] = 'RUNNING';
    fields[SQUEUE_FIELDS.indexOf('Name')] = `evil\x1f\x1e\n999\x1fbob\x1fRUNNING\x1e\n`;
    const out = `${fields.join(SEP.field)}${SEP.record}\n`;
    const { jobs: parsed, bad: b } = parseSqueue(out, SEP);
    expect(b).toBe(0);
    expect(parsed).toHaveLength(1);
    expect(parsed[0]?.user).toBe('mallory');
  });

  it('is empty, not an error, for an empty queue', () => {
    expect(parseSqueue('', SEP)).toEqual({ jobs: [], bad: 0 });
  });
});

describe('squeue -O (captured, cluster without accounting)', () => {
  const { jobs, bad } = parseSqueue(fixture('squeue-nodbd.txt'), SEP);
  it('counts GPUs from tres-per-node when tres-alloc has no gres/gpu', () => {
    expect(bad).toBe(0);
    const s1 = jobs.find((j) => j.name === 'atrium-s1');
    expect(s1).toMatchObject({ gpus: 1, cpus: 2, memoryMb: 2048, nodes: 'cn1', state: 'running' });
    expect(s1?.account).toBeUndefined();
  });
});

describe('squeue -O (crafted edge cases)', () => {
  const { jobs, bad } = parseSqueue(fixture('squeue-crafted.txt'), SEP);
  it('parses all crafted records', () => {
    expect(bad).toBe(0);
    expect(jobs).toHaveLength(7);
  });
  it('array task pending on unavailable nodes, null times, unlimited limit, typed GPUs', () => {
    const j = byId(jobs, '12_3');
    expect(j).toMatchObject({
      state: 'pending',
      reason: 'ReqNodeNotAvail, UnavailableNodes:gpu[01-02]',
      gpus: 2,
      memoryMb: 16384,
      name: 'train run #3',
      stdoutPath: '/home/dave/slurm-12_3.out',
    });
    expect(j.startTime).toBeUndefined();
    expect(j.endTime).toBeUndefined();
    expect(j.timeLimitMinutes).toBeUndefined();
  });
  it('standard time stamps, two nodes, per-job GPUs, timeout, names kept verbatim', () => {
    const j = byId(jobs, '13');
    expect(j).toMatchObject({
      state: 'timeout',
      exitCode: 143,
      gpus: 4,
      memoryMb: 8000,
      submitTime: 1700000000,
      startTime: 1700000100,
      endTime: 1700086500,
      timeLimitMinutes: 1440,
      workDir: '/scratch/erin/run dir',
      name: '  leading and trailing spaces  ',
      comment: 'atrium:tag-13',
      reservation: 'maint_w',
    });
    expect(j.stderrPath).toBeUndefined();
  });
  it('completing job with Unknown end, empty name; OOM; pending with priority reason', () => {
    expect(byId(jobs, '14')).toMatchObject({ state: 'completing', name: '', timeLimitMinutes: 45 });
    expect(byId(jobs, '14').endTime).toBeUndefined();
    expect(byId(jobs, '15')).toMatchObject({
      state: 'out_of_memory',
      exitCode: 137,
      name: 'it\'s "quoted" – ünïcødé',
    });
    expect(byId(jobs, '16')).toMatchObject({
      state: 'pending',
      reason: 'Priority',
      gpus: 1,
      startTime: 1700003600,
    });
    expect(byId(jobs, '17').state).toBe('suspended');
    expect(byId(jobs, '18').state).toBe('preempted');
  });
});

describe('sinfo -N -O (captured)', () => {
  it('merges the per-partition lines of a node and reads CPUs, memory and GPUs in use', () => {
    const { nodes, bad } = parseSinfoNodes(fixture('sinfo-dbd.txt'), SEP);
    expect(bad).toBe(0);
    expect(nodes.map((n) => n.name)).toEqual(['node1', 'node2', 'node3', 'node4']);
    expect(nodes[0]).toEqual({
      name: 'node1',
      address: '127.0.0.1',
      state: 'mixed',
      partitions: ['interactive', 'batch'],
      cpus: 16,
      allocCpus: 2,
      memoryMb: 65536,
      allocMemoryMb: 2048,
      gpus: 2,
      allocGpus: 1,
    });
    expect(nodes[1]).toMatchObject({
      state: 'allocated',
      allocCpus: 16,
      allocMemoryMb: 4096,
      gpus: 2,
      allocGpus: 0,
    });
    expect(nodes[2]).toMatchObject({ cpus: 8, memoryMb: 32768, gpus: 0, allocGpus: 0 });
  });
  it('reads the cluster without accounting the same way', () => {
    const { nodes } = parseSinfoNodes(fixture('sinfo-nodbd.txt'), SEP);
    expect(nodes.map((n) => n.name)).toEqual(['cn1', 'cn2', 'cn3', 'cn4']);
    expect(nodes[0]?.allocGpus).toBe(1);
  });
});

describe('scontrol -o, sacctmgr, sacct (captured)', () => {
  it('partitions', () => {
    const parts = parsePartitions(fixture('scontrol-partitions-dbd.txt'));
    expect(parts).toEqual([
      {
        name: 'interactive',
        isDefault: true,
        nodes: ['node1', 'node2', 'node3', 'node4'],
        state: 'UP',
        maxTimeMinutes: 7 * 24 * 60,
        overSubscribe: 'FORCE:5',
      },
      {
        name: 'batch',
        isDefault: false,
        nodes: ['node1', 'node2', 'node3', 'node4'],
        state: 'UP',
        overSubscribe: 'NO',
      },
    ]);
  });
  it('reservations, and none', () => {
    const res = parseReservations(fixture('scontrol-reservations-dbd.txt'));
    expect(res).toEqual([
      {
        name: 'alice_res',
        users: ['alice'],
        accounts: [],
        nodes: ['node3'],
        state: 'ACTIVE',
        startTime: 1795616830,
        endTime: 1827152830,
        flags: ['SPEC_NODES'],
        partition: 'interactive',
      },
      {
        name: 'bob_res',
        users: ['bob'],
        accounts: [],
        nodes: ['node4'],
        state: 'ACTIVE',
        startTime: 1795616830,
        endTime: 1827152830,
        flags: ['SPEC_NODES'],
        partition: 'interactive',
      },
    ]);
    expect(parseReservations(fixture('scontrol-reservations-none.txt'))).toEqual([]);
  });
  it('a maintenance reservation: its flags, all nodes, no partition', () => {
    expect(parseReservations(fixture('scontrol-reservations-maint.txt'))).toEqual([
      {
        name: 'tmaint',
        users: ['root'],
        accounts: [],
        nodes: ['extn1', 'extn2', 'extn3', 'extn4'],
        state: 'INACTIVE',
        startTime: 1796559859,
        endTime: 1796563459,
        flags: ['MAINT', 'SPEC_NODES', 'ALL_NODES'],
      },
    ]);
  });
  it('associations', () => {
    expect(parseAssociations(fixture('sacctmgr-assoc-dbd.txt'))).toEqual({
      root: ['root'],
      bob: ['physics'],
      alice: ['research'],
      carol: ['research'],
    });
    // Without slurmdbd sacctmgr prints an error (the adapter checks the exit status first).
    expect(parseAssociations(fixture('sacctmgr-assoc-nodbd.txt'))).toEqual({});
  });
  it('sacct exit codes and states', () => {
    const recs = parseSacct(fixture('sacct-dbd.txt'));
    expect(recs).toHaveLength(10);
    const r = (id: string) => recs.find((x) => x.jobId === id);
    expect(r('6')).toMatchObject({ user: 'bob', state: 'failed', exitCode: 3, nodes: 'node3' });
    expect(r('8')).toMatchObject({ state: 'cancelled', rawState: 'CANCELLED', exitCode: 0 });
    expect(r('8')?.nodes).toBeUndefined();
    expect(r('2')).toMatchObject({ state: 'running', gpus: 1, cpus: 2, memoryMb: 2048 });
    expect(r('2')?.endTime).toBeUndefined();
    expect(r('5')).toMatchObject({ state: 'pending' });
    expect(r('5')?.startTime).toBeUndefined();
  });
});

describe('sbatch errors (captured) map to form fields', () => {
  const cases: Array<[string, string | undefined, { gpus?: number; guess?: 'cores' | 'gpus' }]> = [
    ['invalid-account', 'account', {}],
    ['invalid-partition', 'partition', {}],
    ['no-such-reservation', 'reservation', {}],
    ['reservation-denied', 'reservation', {}],
    ['too-many-cores', 'cores', {}],
    ['too-many-gpus', 'gpus', { gpus: 3 }],
    ['gpu-on-cpu-node', 'gpus', { gpus: 1 }],
    ['too-much-memory', 'memory', {}],
    ['time-over-partition-limit', 'hours', {}],
  ];
  for (const [name, field, hint] of cases) {
    it(`${name} -> ${field}`, () => {
      const f = classifySbatchError(fixture(`sbatch-${name}.stderr.txt`), hint);
      expect(f.field).toBe(field);
      expect(f.definite).toBe(true);
      expect(f.message).not.toMatch(/^sbatch:/);
    });
  }
  it('"node configuration" uses the guess from the node list when there is one', () => {
    expect(
      classifySbatchError(fixture('sbatch-too-many-gpus.stderr.txt'), { gpus: 1, guess: 'cores' }).field,
    ).toBe('cores');
  });
  it('controller trouble is not definite (the job may exist: adopt by tag)', () => {
    expect(classifySbatchError(fixture('squeue-ctld-down.stderr.txt')).definite).toBe(false);
    expect(
      classifySbatchError(
        'sbatch: error: Batch job submission failed: Socket timed out on send/recv operation',
      ).definite,
    ).toBe(false);
  });
});

describe('scalars', () => {
  it('times', () => {
    for (const v of ['N/A', 'Unknown', 'None', '(null)', '0', '', undefined, 'garbage'])
      expect(parseTime(v)).toBeUndefined();
    expect(parseTime('1795617073')).toBe(1795617073);
    expect(parseTime('2023-11-14T22:13:20')).toBe(1700000000);
  });
  it('durations in minutes', () => {
    expect(parseDurationMinutes('UNLIMITED')).toBeUndefined();
    expect(parseDurationMinutes('INFINITE')).toBeUndefined();
    expect(parseDurationMinutes('N/A')).toBeUndefined();
    expect(parseDurationMinutes('30:00')).toBe(30);
    expect(parseDurationMinutes('0:30')).toBe(1);
    expect(parseDurationMinutes('1:00:00')).toBe(60);
    expect(parseDurationMinutes('7-00:00:00')).toBe(10080);
    expect(parseDurationMinutes('2-12')).toBe(3600);
    expect(parseDurationMinutes('1-02:03')).toBe(1563);
    expect(parseDurationMinutes('45')).toBe(45);
  });
  it('memory', () => {
    expect(parseMemoryMb('4G')).toBe(4096);
    expect(parseMemoryMb('512M')).toBe(512);
    expect(parseMemoryMb('1.50G')).toBe(1536);
    expect(parseMemoryMb('2T')).toBe(2 * 1024 * 1024);
    expect(parseMemoryMb('1024K')).toBe(1);
    expect(parseMemoryMb('4096')).toBe(4096);
    expect(parseMemoryMb('N/A')).toBeUndefined();
    expect(parseMemoryMb('lots')).toBeUndefined();
  });
  it('GRES and TRES GPU strings', () => {
    expect(parseGpuGres('gpu:2')).toEqual({ count: 2, types: [] });
    expect(parseGpuGres('gpu:a100:2(IDX:0-1)')).toEqual({ count: 2, types: ['a100'] });
    expect(parseGpuGres('gres/gpu=1')).toEqual({ count: 1, types: [] });
    expect(parseGpuGres('gres/gpu:a100=2')).toEqual({ count: 2, types: ['a100'] });
    expect(parseGpuGres('gres:gpu:1')).toEqual({ count: 1, types: [] });
    expect(parseGpuGres('gpu')).toEqual({ count: 1, types: [] });
    expect(parseGpuGres('gpu:a100:1(IDX:0),mps:0(IDX:N/A)')).toEqual({ count: 1, types: ['a100'] });
    expect(parseGpuGres('gpu:a100:2(S:0-1),gpu:v100:1(S:0)')).toEqual({ count: 3, types: ['a100', 'v100'] });
    expect(parseGpuGres('gpu:(null):0')).toEqual({ count: 0, types: [] });
    expect(parseGpuGres('mps:100')).toEqual({ count: 0, types: [] });
    expect(parseGpuGres('(null)')).toEqual({ count: 0, types: [] });
    expect(parseGpuGres('N/A')).toEqual({ count: 0, types: [] });
  });
  it('hostlists', () => {
    expect(expandHostlist('node[1-3,5]')).toEqual(['node1', 'node2', 'node3', 'node5']);
    expect(expandHostlist('gpu[08-10]')).toEqual(['gpu08', 'gpu09', 'gpu10']);
    expect(expandHostlist('a[1-2]b[3-4]')).toEqual(['a1b3', 'a1b4', 'a2b3', 'a2b4']);
    expect(expandHostlist('n1,n[3-4],login')).toEqual(['n1', 'n3', 'n4', 'login']);
    expect(expandHostlist('(null)')).toEqual([]);
    expect(expandHostlist('')).toEqual([]);
  });
  it('job states', () => {
    expect(parseJobState('PENDING')).toBe('pending');
    expect(parseJobState('CONFIGURING')).toBe('pending');
    expect(parseJobState('R')).toBe('running');
    expect(parseJobState('CG')).toBe('completing');
    expect(parseJobState('CANCELLED by 1003')).toBe('cancelled');
    expect(normalizeRawState('CANCELLED by 1003')).toBe('CANCELLED');
    expect(parseJobState('OUT_OF_MEMORY')).toBe('out_of_memory');
    expect(parseJobState('NODE_FAIL')).toBe('node_fail');
    expect(parseJobState('BOOT_FAIL')).toBe('failed');
    expect(parseJobState('DEADLINE')).toBe('timeout');
    expect(parseJobState('REQUEUED')).toBe('pending');
    expect(parseJobState('SOMETHING_NEW')).toBe('unknown');
  });
  it('exit codes: squeue wait status and sacct code:signal', () => {
    expect(parseExitCode('768')).toBe(3);
    expect(parseExitCode('0')).toBe(0);
    expect(parseExitCode('15')).toBe(143);
    expect(parseExitCode('9')).toBe(137);
    expect(parseExitCode('3:0')).toBe(3);
    expect(parseExitCode('0:15')).toBe(143);
    expect(parseExitCode('0:0')).toBe(0);
    expect(parseExitCode('N/A')).toBeUndefined();
  });
  it('key=value lines with spaces in values', () => {
    expect(
      parseKeyValueLine(
        'NodeName=n1 State=DOWN Reason=Not responding [slurm@2024-01-01T00:00:00] Comment=(null)',
      ),
    ).toEqual({
      NodeName: 'n1',
      State: 'DOWN',
      Reason: 'Not responding [slurm@2024-01-01T00:00:00]',
      Comment: '(null)',
    });
  });
  it('sbatch --parsable output', () => {
    expect(parseSbatchJobId('123\n')).toBe('123');
    expect(parseSbatchJobId('123;atrium\n')).toBe('123');
    expect(parseSbatchJobId('sbatch: warning: something\n77\n')).toBe('77');
    expect(parseSbatchJobId('')).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------

const identity = { user: 'alice', uid: 1001, gid: 1001, home: '/home/alice', shell: '/bin/bash' };
const baseSub = (over: Partial<SessionSubmission> = {}): SessionSubmission => ({
  sessionId: 's-1',
  tag: 'atrium:s-1:1',
  identity,
  cores: 2,
  memoryMb: 1024,
  gpus: 0,
  minutes: 60,
  agentArgv: ['/opt/atrium/agent', '--port', '0'],
  agentEnv: { ATRIUM_TOKEN: 'tok-secret-123' },
  ...over,
});

describe('argv builders', () => {
  /** sbatch of a session runs in this environment and nothing else (loginEnvironment: shell). */
  const EMPTIED_ENV = [
    'env',
    '-i',
    'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    'HOME=/home/alice',
    'USER=alice',
    'LOGNAME=alice',
    'SHELL=/bin/bash',
  ];
  it('squeue lists all jobs of all users in all states with -O, never --json', () => {
    const argv = squeueArgv(SEP, { binDir: '/opt/slurm/bin' });
    expect(argv.slice(0, 5)).toEqual(['/opt/slurm/bin/squeue', '-h', '-a', '-t', 'all']);
    expect(argv).not.toContain('--json');
    expect(argv[argv.length - 2]).toBe('-O');
    expect(argv[argv.length - 1]).toContain(`JobID:${SEP.field}`);
    expect(argv[argv.length - 1]?.endsWith(`Name:${SEP.record}`)).toBe(true);
    expect(sinfoNodesArgv(SEP)).toContain('-N');
  });
  it('sbatch argv carries resources and the tag but no environment values', () => {
    const argv = sbatchArgv(
      baseSub({ gpus: 1, account: 'research', reservation: 'alice_res', partition: 'gpu' }),
    );
    expect(argv).toEqual([
      ...EMPTIED_ENV,
      'sbatch',
      '--parsable',
      '--export=ALL',
      '--job-name=atrium-s-1',
      '--comment=atrium:s-1:1',
      '--nodes=1',
      '--ntasks=1',
      '--cpus-per-task=2',
      '--mem=1024M',
      '--time=60',
      '--chdir=/home/alice',
      '--output=/dev/null',
      '--error=/dev/null',
      '--no-requeue',
      '--partition=gpu',
      '--account=research',
      '--reservation=alice_res',
      '--gres=gpu:1',
    ]);
    expect(argv.join(' ')).not.toContain('tok-secret-123');
    expect(sbatchArgv(baseSub(), { defaultPartition: 'interactive' })).toContain('--partition=interactive');
    expect(sbatchArgv(baseSub({ nodelist: 'node2' }))).toContain('--nodelist=node2');
  });
  it('sbatch of a session: an emptied environment and a login shell, or slurmd loading it (--export=NONE)', () => {
    const shell = sbatchArgv(baseSub(), { slurmConf: '/etc/s.conf', binDir: '/opt/slurm/bin' });
    expect(shell.slice(0, 10)).toEqual([
      ...EMPTIED_ENV,
      'SLURM_CONF=/etc/s.conf',
      '/opt/slurm/bin/sbatch',
      '--parsable',
    ]);
    expect(buildBatchScript(baseSub()).split('\n')[0]).toBe('#!/bin/bash -l');
    const slurm = sbatchArgv(baseSub(), { slurmConf: '/etc/s.conf', loginEnvironment: 'slurm' });
    expect(slurm.slice(0, 3)).toEqual(['sbatch', '--parsable', '--export=NONE']);
    // Under sudo (which resets the environment itself, and whose rule must not admit env) no env -i.
    expect(sbatchArgv(baseSub(), { emptyEnv: false }).slice(0, 3)).toEqual([
      'sbatch',
      '--parsable',
      '--export=ALL',
    ]);
    expect(buildBatchScript(baseSub(), { loginEnvironment: 'slurm' }).split('\n')[0]).toBe('#!/bin/bash');
  });
  it('runs as the user through runuser, sudo (SLURM_CONF on its command line) or directly', () => {
    expect(asUser(['sbatch', 'x'], 'alice', 'runuser', '/etc/s.conf')).toEqual([
      'runuser',
      '-u',
      'alice',
      '--',
      'sbatch',
      'x',
    ]);
    expect(asUser(['sbatch'], 'alice', 'sudo', '/etc/s.conf')).toEqual([
      'sudo',
      '-n',
      '-u',
      'alice',
      'SLURM_CONF=/etc/s.conf',
      '--',
      'sbatch',
    ]);
    expect(asUser(['sbatch'], 'alice', 'none')).toEqual(['sbatch']);
  });
  it('session log path', () => {
    expect(sessionLogPath('/home/alice', 's-1')).toBe('/home/alice/.atrium/logs/session-s-1.log');
  });
});

describe('batch script', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'atrium-script-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('shell-quotes any value', () => {
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    expect(() => shellQuote('a\0b')).toThrow();
  });

  it('exports hostile values verbatim, runs setup, execs the agent, logs to ~/.atrium/logs (run by bash)', () => {
    const nasty = `it's "q" $HOME \`id\` $(id) \\ \n line2 ; rm -rf / # ünï`;
    const script = buildBatchScript(
      baseSub({
        identity: { ...identity, home: tmp },
        agentEnv: { NASTY: nasty, EMPTY: '' },
        setup: ['export FROM_SETUP=yes'],
        agentArgv: [
          '/bin/sh',
          '-c',
          'printf "%s|%s|%s|%s" "$NASTY" "$EMPTY" "$FROM_SETUP" "$1" > "$HOME/out"',
          'sh',
          `arg with 'quote'`,
        ],
      }),
    );
    expect(script.startsWith('#!/bin/bash -l\n')).toBe(true);
    const r = spawnSync('/bin/bash', ['-s'], { input: script, env: { SLURM_JOB_ID: '7' }, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(readFileSync(path.join(tmp, 'out'), 'utf8')).toBe(`${nasty}||yes|arg with 'quote'`);
    const log = readFileSync(path.join(tmp, '.atrium', 'logs', 'session-s-1.log'), 'utf8');
    expect(log).toMatch(/^atrium: job 7 on/);
  });
});

// ---------------------------------------------------------------------------------------------
// The adapter on a fake runner that answers with the captured outputs.

/** The nonce the adapter drew for a call: the -O spec ends with "\x1e<nonce>". */
const nonceOf = (argv: readonly string[]): string => {
  const spec = argv[argv.length - 1] ?? '';
  return spec.slice(spec.lastIndexOf('\x1e') + 1);
};

/** Captured -O output re-keyed to the nonce the adapter drew for this call. */
const withNonce = (file: string) => (argv: readonly string[]) => ({
  stdout: fixture(file).replaceAll(NONCE, nonceOf(argv)),
});

const mkAdapter = (runner: CommandRunner) =>
  new SlurmAdapter(
    { name: 'test', slurmConf: '/x/slurm.conf', runAs: 'runuser', commandTimeoutMs: 5000 },
    runner,
  );

describe('SlurmAdapter on captured outputs', () => {
  it('poll: one squeue and one sinfo, node addresses on running jobs, SLURM_CONF and epoch times', async () => {
    const runner = new FakeRunner({ squeue: withNonce('squeue-dbd.txt'), sinfo: withNonce('sinfo-dbd.txt') });
    const snap = await mkAdapter(runner).poll();
    expect(snap.ok).toBe(true);
    expect(snap.calls).toBe(2);
    expect(runner.calls).toBe(2);
    expect(snap.jobs).toHaveLength(11);
    expect(snap.nodes).toHaveLength(4);
    expect(snap.jobs.find((j) => j.jobId === '2')?.nodeAddress).toBe('127.0.0.1');
    expect(snap.jobs.find((j) => j.jobId === '5')?.nodeAddress).toBeUndefined();
    expect(runner.log[0]?.opts.env).toMatchObject({
      SLURM_CONF: '/x/slurm.conf',
      SLURM_TIME_FORMAT: '%s',
      TZ: 'UTC',
    });
  });

  it('poll: controller unreachable or timed out -> ok:false, never an empty job list', async () => {
    const down = new FakeRunner({
      squeue: { code: 1, stderr: fixture('squeue-ctld-down.stderr.txt') },
      sinfo: withNonce('sinfo-dbd.txt'),
    });
    const snap = await mkAdapter(down).poll();
    expect(snap).toMatchObject({ ok: false, jobs: [], calls: 2 });
    expect(snap.error).toContain('Unable to contact slurm controller');
    const slow = new FakeRunner({
      squeue: { code: null, signal: 'SIGTERM', timedOut: true },
      sinfo: withNonce('sinfo-dbd.txt'),
    });
    expect((await mkAdapter(slow).poll()).ok).toBe(false);
    const garbled = new FakeRunner({
      squeue: { stdout: 'garbage without separators\n' },
      sinfo: withNonce('sinfo-dbd.txt'),
    });
    expect((await mkAdapter(garbled).poll()).ok).toBe(false);
  });

  it('submit: the script goes to stdin as the user; secrets stay out of argv', async () => {
    const runner = new FakeRunner({ squeue: { stdout: '' }, sbatch: { stdout: '4242\n' } });
    const res = await mkAdapter(runner).submitSession(baseSub());
    expect(res).toEqual({ jobId: '4242' });
    const sb = runner.log.find((c) => c.opts.label === 'sbatch');
    expect(sb?.argv.slice(0, 4)).toEqual(['runuser', '-u', 'alice', '--']);
    expect(sb?.argv.slice(4, 6)).toEqual(['env', '-i']);
    expect(sb?.argv).toContain('sbatch');
    expect(sb?.argv.join('\n')).not.toContain('tok-secret-123');
    expect(sb?.opts.input).toContain(`export ATRIUM_TOKEN='tok-secret-123'`);
    expect(sb?.opts.input).toContain(`exec '/opt/atrium/agent' '--port' '0'`);
  });

  it('submit: a refused job maps to its form field; a timed-out one is adopted by its tag', async () => {
    const refused = new FakeRunner({
      squeue: { stdout: '' },
      sbatch: { code: 1, stderr: fixture('sbatch-invalid-account.stderr.txt') },
    });
    const err = await mkAdapter(refused)
      .submitSession(baseSub({ account: 'physics' }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SchedulerError);
    expect((err as SchedulerError).field).toBe('account');
    expect(refused.callsOf('squeue')).toBe(1); // the pre-submit lookup only

    const line = (jobId: string, state: string, comment: string) => {
      const f: string[] = SQUEUE_FIELDS.map(() => 'N/A');
      const set = (k: (typeof SQUEUE_FIELDS)[number], v: string) => {
        f[SQUEUE_FIELDS.indexOf(k)] = v;
      };
      set('JobID', jobId);
      set('UserName', 'alice');
      set('State', state);
      set('Comment', comment);
      set('Name', 'atrium-s-1');
      set('NodeList', '');
      return f;
    };
    const answer = (rows: string[][]) => (argv: readonly string[]) => {
      const s = separatorsFor(nonceOf(argv));
      return { stdout: rows.map((r) => `${r.join(s.field)}${s.record}\n`).join('') };
    };
    const timedOut = new FakeRunner({
      squeue: [
        answer([line('90', 'FAILED', 'atrium:s-1:1')]), // refused earlier (BadConstraints): not adoptable
        answer([
          line('90', 'FAILED', 'atrium:s-1:1'),
          line('91', 'PENDING', 'atrium:s-1:1'),
          line('92', 'RUNNING', 'other'),
        ]),
      ],
      sbatch: { code: null, signal: 'SIGTERM', timedOut: true },
    });
    const adopted = await mkAdapter(timedOut).submitSession(baseSub());
    expect(adopted).toEqual({ jobId: '91', adopted: true });
    expect(timedOut.callsOf('sbatch')).toBe(1);
    expect(timedOut.callsOf('squeue')).toBe(2);
  });

  it('refuses root, bad names and bad numbers before running anything', async () => {
    const runner = new FakeRunner({});
    const a = mkAdapter(runner);
    const bad: Array<[Partial<SessionSubmission>, string | undefined]> = [
      [{ identity: { ...identity, user: 'root', uid: 0 } }, undefined],
      [{ identity: { ...identity, user: '-alice' } }, undefined],
      [{ sessionId: '../x' }, undefined],
      [{ cores: 0 }, 'cores'],
      [{ memoryMb: 1.5 }, 'memory'],
      [{ gpus: -1 }, 'gpus'],
      [{ minutes: 0 }, 'hours'],
      [{ account: '--uid=0' }, 'account'],
      [{ partition: 'a b' }, 'partition'],
      [{ reservation: 'x;y' }, 'reservation'],
      [{ agentEnv: { 'BAD-NAME': 'x' } }, undefined],
      [{ tag: 'has space' }, undefined],
    ];
    for (const [over, field] of bad) {
      const e = await a.submitSession(baseSub(over)).catch((x: unknown) => x);
      expect(e, JSON.stringify(over)).toBeInstanceOf(SchedulerError);
      expect((e as SchedulerError).field).toBe(field);
    }
    expect(runner.calls).toBe(0);
  });

  it('clusterInfo: without accounting, hasAccounting false and no accounts', async () => {
    const runner = new FakeRunner({
      scontrol: [
        { stdout: fixture('scontrol-partitions-nodbd.txt') },
        { stdout: fixture('scontrol-reservations-none.txt') },
      ],
      sacctmgr: { code: 1, stderr: fixture('sacctmgr-assoc-nodbd.txt') },
    });
    const info = await mkAdapter(runner).clusterInfo();
    expect(info.hasAccounting).toBe(false);
    expect(info.accountsByUser).toBeUndefined();
    expect(info.reservations).toEqual([]);
    expect(info.partitions.map((p) => p.name)).toEqual(['interactive', 'batch']);
  });
});

describe('ExecRunner', () => {
  it('passes stdin, a clean environment, and counts calls per label', async () => {
    const r = new ExecRunner({ env: { PATH: '/usr/bin:/bin', ONLY: 'this' } });
    const cat = await r.run(['cat'], { input: 'hello\nworld' });
    expect(cat).toMatchObject({ code: 0, stdout: 'hello\nworld', timedOut: false, label: 'cat' });
    const env = await r.run(['/usr/bin/env'], { env: { EXTRA: '1' }, label: 'env' });
    expect(env.stdout.trim().split('\n').sort()).toEqual(['EXTRA=1', 'ONLY=this', 'PATH=/usr/bin:/bin']);
    expect(r.calls).toBe(2);
    expect(r.callsOf('cat')).toBe(1);
    expect(r.callsOf('env')).toBe(1);
  });

  it('kills the whole process group on timeout', async () => {
    const r = new ExecRunner();
    const t0 = Date.now();
    const res = await r.run(['/bin/sh', '-c', 'sleep 30 & echo $!; wait'], { timeoutMs: 300 });
    expect(res.timedOut).toBe(true);
    expect(Date.now() - t0).toBeLessThan(5000);
    const pid = Number(res.stdout.trim());
    expect(pid).toBeGreaterThan(0);
    await new Promise((ok) => setTimeout(ok, 200));
    const alive = existsSync(`/proc/${pid}`) && !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    expect(alive).toBe(false);
  });

  it('reports commands that cannot start instead of throwing', async () => {
    const r = new ExecRunner();
    const missing = await r.run(['/nonexistent/squeue']);
    expect(missing.code).toBeNull();
    expect(missing.error).toMatch(/ENOENT/);
    const nul = await r.run(['/bin/echo', 'a\0b']);
    expect(nul.error).toBeDefined();
    const fail = await r.run(['/bin/sh', '-c', 'echo oops >&2; exit 3']);
    expect(fail).toMatchObject({ code: 3, stderr: 'oops\n' });
  });
});

// sacct-usage.txt: captured by hand on the test cluster (`sacct -a -P -n -j 1,2 -o <SACCT_USAGE_FIELDS>`):
// job 1 touched 200 MB of 1 GB in its batch step; job 2 (2 cores) ran an srun step touching 100 MB.
describe('sacct usage (history efficiency)', () => {
  it('folds steps into one record per job: MaxRSS the max over steps, TotalCPU the job line', () => {
    const u = parseSacctUsage(fixture('sacct-usage.txt'));
    expect([...u.keys()]).toEqual(['1', '2']);
    expect(u.get('1')).toEqual({
      jobId: '1',
      state: 'completed',
      cores: 1,
      elapsedSeconds: 5,
      totalCpuMs: 638,
      maxRssKb: 217040,
      reqMemMb: 1024,
      limitMinutes: 10,
    });
    expect(u.get('2')).toMatchObject({
      cores: 2,
      totalCpuMs: 2211,
      maxRssKb: 111452,
      reqMemMb: 512,
      limitMinutes: 5,
    });
  });

  it('takes the extern step and array tasks into account, and sums steps when the job line has no TotalCPU', () => {
    const out = [
      '7_3|TIMEOUT|3600|||4Gn|billing=4,cpu=4,mem=4G,node=1|4|60',
      '7_3.batch|CANCELLED|3600|10:00.500|1.5G||cpu=4,mem=4G,node=1|4|',
      '7_3.extern|COMPLETED|3600|00:00.001|1024K||cpu=4,mem=4G,node=1|4|',
      '7_3.0|CANCELLED|3590|1-02:03:04|3G||cpu=4,mem=4G,node=1|4|',
      '8|CANCELLED by 1000|0|00:00:00||500Mc|billing=2,cpu=2,node=1|2|UNLIMITED',
      'garbage line',
      '',
    ].join('\n');
    const u = parseSacctUsage(out);
    expect(u.get('7_3')).toMatchObject({
      state: 'timeout',
      cores: 4,
      reqMemMb: 4096,
      maxRssKb: 3 * 1024 * 1024,
      totalCpuMs: 600_500 + 1 + (26 * 3600 + 3 * 60 + 4) * 1000,
    });
    // Per-CPU ReqMem (before 21.08) is multiplied out; an unlimited time limit is no limit.
    expect(u.get('8')).toMatchObject({ state: 'cancelled', reqMemMb: 1000, elapsedSeconds: 0 });
    expect(u.get('8')?.limitMinutes).toBeUndefined();
    expect(u.get('8')?.maxRssKb).toBeUndefined();
  });

  it('reads TotalCPU and MaxRSS units', () => {
    expect(parseCpuTimeMs('00:00.638')).toBe(638);
    expect(parseCpuTimeMs('01:02:03')).toBe(3723_000);
    expect(parseCpuTimeMs('2-00:00:01')).toBe(172_801_000);
    expect(parseCpuTimeMs('')).toBeUndefined();
    expect(parseCpuTimeMs('soon')).toBeUndefined();
    expect(parseRssKb('217040K')).toBe(217040);
    expect(parseRssKb('200M')).toBe(204800);
    expect(parseRssKb('1.5G')).toBe(1572864);
    expect(parseRssKb('0')).toBe(0);
    expect(parseRssKb('')).toBeUndefined();
  });

  it('asks for steps (no -X) of every user, parsable', () => {
    const argv = sacctUsageArgv(['1', '2_3'], { binDir: '/opt/slurm/bin' });
    expect(argv.slice(0, 6)).toEqual(['/opt/slurm/bin/sacct', '-a', '-P', '-n', '-j', '1,2_3']);
    expect(argv).not.toContain('-X');
  });

  it('the adapter makes one sacct call, and says null when the cluster keeps no accounting', async () => {
    const ok = new FakeRunner({ sacct: { stdout: fixture('sacct-usage.txt') } });
    const a = new SlurmAdapter({ name: 'c', runAs: 'none', commandTimeoutMs: 1000 }, ok);
    expect((await a.jobUsage(['1', '2']))?.get('1')?.maxRssKb).toBe(217040);
    expect(ok.callsOf('sacct')).toBe(1);
    const none = new FakeRunner({ sacct: { code: 1, stderr: fixture('sacct-nodbd.stderr.txt') } });
    const b = new SlurmAdapter({ name: 'c', runAs: 'none', commandTimeoutMs: 1000 }, none);
    expect(await b.jobUsage(['1'])).toBeNull();
    await expect(b.jobUsage(['1; rm'])).rejects.toThrow(SchedulerError);
  });
});
