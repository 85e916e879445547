// Batch jobs on Slurm: validation of a BatchSubmission, the sbatch argv, and sbatch's refusals mapped
// to form fields. Pure (no I/O): the adapter runs the command, unit tests check the rules.
import path from 'node:path';
import { MAX_JOB_NAME, MAX_PATH, MAX_SCRIPT_BYTES } from '../../core/batch-request.ts';
import { type BatchSubmission, SchedulerError } from '../types.ts';
import { slurmBin } from './commands.ts';
import { classifySbatchError } from './parse.ts';

export { MAX_JOB_NAME, MAX_PATH, MAX_SCRIPT_BYTES };

/** Slurm --mail-type values the gateway may ask for. */
export const MAIL_TYPES = ['BEGIN', 'END', 'FAIL', 'REQUEUE', 'TIME_LIMIT', 'TIME_LIMIT_90'] as const;

const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$/;
const MAIL_RE = /^[^\s@,;:'"`\\<>()[\]]{1,64}@[A-Za-z0-9.-]{1,189}$/;
// Control characters (C0, DEL, C1) and Unicode line/paragraph separators.
const CONTROL_RE = /[\p{Cc}\u2028\u2029]/u;

/** The field of a batch form a problem is about. */
export type BatchField =
  | 'scriptPath'
  | 'script'
  | 'workDir'
  | 'jobName'
  | 'partition'
  | 'account'
  | 'cores'
  | 'memory'
  | 'gpus'
  | 'hours'
  | 'mail';

/** An absolute path without NUL, newlines or other control characters. */
export function checkAbsolutePath(p: string, what: string, field: BatchField): void {
  if (typeof p !== 'string' || p.length === 0) throw new SchedulerError(`${what} is empty`, field);
  if (p.length > MAX_PATH) throw new SchedulerError(`${what} is too long`, field);
  if (!p.startsWith('/')) throw new SchedulerError(`${what} must be an absolute path (start with /)`, field);
  if (CONTROL_RE.test(p)) throw new SchedulerError(`${what} must not contain control characters`, field);
}

/** Checks everything sbatch will be given; throws SchedulerError(message, field) on the first problem. */
export function validateBatch(sub: BatchSubmission): void {
  const byPath = sub.scriptPath !== undefined;
  const byText = sub.script !== undefined;
  if (byPath === byText)
    throw new SchedulerError(
      'give either the path of a script or its text',
      byPath ? 'script' : 'scriptPath',
    );
  if (byPath) checkAbsolutePath(sub.scriptPath!, 'the script path', 'scriptPath');
  if (byText) {
    const s = sub.script!;
    const bytes = Buffer.byteLength(s, 'utf8');
    if (bytes === 0 || s.trim() === '') throw new SchedulerError('the script is empty', 'script');
    if (bytes > MAX_SCRIPT_BYTES)
      throw new SchedulerError(
        `the script is too large (${Math.ceil(bytes / 1024)} KiB; at most ${MAX_SCRIPT_BYTES / 1024} KiB)`,
        'script',
      );
    if (s.includes('\0')) throw new SchedulerError('the script contains a NUL byte', 'script');
    if (!s.startsWith('#!'))
      throw new SchedulerError(
        'the script must start with "#!" and the path of an interpreter, e.g. #!/bin/bash',
        'script',
      );
    if (s.includes('\r\n'))
      throw new SchedulerError(
        'the script has Windows line breaks (\\r\\n); save it with Unix line breaks (\\n)',
        'script',
      );
  }
  if (sub.workDir !== undefined) checkAbsolutePath(sub.workDir, 'the working directory', 'workDir');
  if (sub.defaultDir !== undefined) checkAbsolutePath(sub.defaultDir, 'the default directory', 'workDir');
  if (sub.jobName !== undefined) {
    const n = sub.jobName;
    if (n.trim() === '' || n.length > MAX_JOB_NAME || CONTROL_RE.test(n) || n.trim() !== n)
      throw new SchedulerError(
        `the job name must be 1 to ${MAX_JOB_NAME} printable characters, without leading or trailing spaces`,
        'jobName',
      );
  }
  for (const [field, v] of [
    ['partition', sub.partition],
    ['account', sub.account],
  ] as const) {
    if (v !== undefined && !NAME_RE.test(v)) throw new SchedulerError(`invalid ${field} name`, field);
  }
  const whole = (v: number | undefined, min: number) =>
    v === undefined || (Number.isInteger(v) && v >= min && v <= 1_000_000_000);
  if (!whole(sub.cores, 1)) throw new SchedulerError('cores must be a whole number >= 1', 'cores');
  if (!whole(sub.memoryMb, 1)) throw new SchedulerError('memory must be a whole number of MB >= 1', 'memory');
  if (!whole(sub.gpus, 0)) throw new SchedulerError('GPUs must be a whole number >= 0', 'gpus');
  if (!whole(sub.minutes, 1)) throw new SchedulerError('the time limit must be at least one minute', 'hours');
  if (sub.mailTypes !== undefined && sub.mailTypes.length > 0) {
    for (const t of sub.mailTypes)
      if (!(MAIL_TYPES as readonly string[]).includes(t))
        throw new SchedulerError(`unknown mail type ${t}`, 'mail');
    if (!sub.mailUser || sub.mailUser.length > 254 || !MAIL_RE.test(sub.mailUser))
      throw new SchedulerError('a valid e-mail address is needed for e-mail notifications', 'mail');
  }
  if (sub.tag !== undefined && (sub.tag.length === 0 || sub.tag.length > 200 || /[\s\p{Cc}]/u.test(sub.tag)))
    throw new SchedulerError('invalid tag');
}

/**
 * sbatch argv of a batch job: options only where the submission gives them (so the script's #SBATCH
 * lines apply elsewhere), then the script's path (sbatch opens it as the user) or nothing (the text
 * goes to stdin). --export=NONE: the job starts from the user's login environment on the node, not
 * from the gateway's (as Open OnDemand does).
 */
export function sbatchBatchArgv(sub: BatchSubmission, opts: { binDir?: string } = {}): string[] {
  const argv = [slurmBin('sbatch', opts.binDir), '--parsable', '--export=NONE'];
  if (sub.jobName !== undefined) argv.push(`--job-name=${sub.jobName}`);
  if (sub.tag !== undefined) argv.push(`--comment=${sub.tag}`);
  if (sub.workDir !== undefined) argv.push(`--chdir=${sub.workDir}`);
  if (sub.partition !== undefined) argv.push(`--partition=${sub.partition}`);
  if (sub.account !== undefined) argv.push(`--account=${sub.account}`);
  if (sub.cores !== undefined) argv.push(`--cpus-per-task=${sub.cores}`);
  if (sub.memoryMb !== undefined) argv.push(`--mem=${sub.memoryMb}M`);
  if (sub.gpus !== undefined && sub.gpus > 0) argv.push(`--gres=gpu:${sub.gpus}`);
  if (sub.minutes !== undefined) argv.push(`--time=${sub.minutes}`);
  if (sub.mailTypes && sub.mailTypes.length > 0 && sub.mailUser) {
    argv.push(`--mail-type=${sub.mailTypes.join(',')}`, `--mail-user=${sub.mailUser}`);
  }
  if (sub.scriptPath !== undefined) argv.push(sub.scriptPath);
  return argv;
}

/** Where sbatch runs when the form names no working directory: the script's directory, else the home. */
export function defaultDirOf(sub: BatchSubmission): string {
  if (sub.defaultDir) return sub.defaultDir;
  if (sub.scriptPath) return path.posix.dirname(sub.scriptPath);
  return sub.identity.home;
}

export interface BatchFailure {
  message: string;
  field?: BatchField;
  /** true when Slurm refused the job for sure; false when it may exist (look for it by its tag). */
  definite: boolean;
}

const SCRIPT_RULES: RegExp[] = [
  /Unable to open file/i,
  /Batch script is empty/i,
  /does not look like a batch script/i,
  /DOS line breaks/i,
  /unrecognized option|invalid option|option .* requires an argument/i,
  /Invalid directive/i,
  /script size .* exceeds/i,
];

/** Form options that may also come from #SBATCH lines: blamed on the script when the form left them empty. */
const OPTION_FIELDS: Record<string, (s: BatchSubmission) => boolean> = {
  partition: (s) => s.partition !== undefined,
  account: (s) => s.account !== undefined,
  cores: (s) => s.cores !== undefined,
  memory: (s) => s.memoryMb !== undefined,
  gpus: (s) => s.gpus !== undefined && s.gpus > 0,
  hours: (s) => s.minutes !== undefined,
};

/**
 * sbatch's stderr as a field error. Messages are sbatch's own (e.g. "Unable to open file /home/bob/x.sh"
 * when the user may not read the script): the user's rights decided, and they should see why.
 */
export function classifyBatchError(stderr: string, sub: BatchSubmission): BatchFailure {
  const scriptField: BatchField = sub.scriptPath !== undefined ? 'scriptPath' : 'script';
  const lines = stderr
    .split('\n')
    .map((l) => l.replace(/^sbatch:\s*(error|fatal):\s*/i, '').trim())
    .filter((l) => l && !/^Try "sbatch --help"/.test(l));
  const message = lines.join(' ').replace(/\s+/g, ' ').trim() || 'sbatch failed';
  if (SCRIPT_RULES.some((re) => re.test(stderr))) return { message, field: scriptField, definite: true };
  const f = classifySbatchError(stderr, { gpus: sub.gpus ?? 0 });
  if (!f.definite) return { message: f.message, definite: false };
  if (f.field === undefined || f.field === 'reservation') return { message: f.message, definite: true };
  const given = OPTION_FIELDS[f.field];
  return { message: f.message, field: given && !given(sub) ? scriptField : f.field, definite: true };
}

/** `scontrol show config` → PrivateData values, e.g. ["jobs"], ["accounts", "jobs", "usage"]; [] for none. */
export function parsePrivateData(configOut: string): string[] | undefined {
  const m = /^PrivateData\s*=\s*(.*)$/m.exec(configOut);
  if (!m) return undefined;
  return (m[1] ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s && s !== 'none' && s !== '(null)');
}

/** `scontrol show config` → ClusterName (as slurmdbd knows the cluster), or undefined. */
export function parseClusterName(configOut: string): string | undefined {
  const m = /^ClusterName\s*=\s*(\S+)\s*$/m.exec(configOut);
  return m?.[1];
}

export function showConfigArgv(opts: { binDir?: string } = {}): string[] {
  return [slurmBin('scontrol', opts.binDir), 'show', 'config'];
}
