// A batch-job submission as the form and the API send it, and its checks. Pure and browser-safe: the
// web form runs the same checks, so messages match word for word. Every error names its form field.
import type { BatchLimits } from '../api/jobs.ts';
import type { FieldError } from './request.ts';

export type BatchSource = 'path' | 'text';

export interface BatchRequest {
  cluster: string;
  /** A script on the cluster (by path) or pasted text. */
  source: BatchSource;
  scriptPath?: string;
  script?: string;
  jobName?: string;
  partition?: string;
  account?: string;
  cores?: number;
  memoryGb?: number;
  gpus?: number;
  /** Time limit in hours (decimals allowed). */
  hours?: number;
  /** Working directory (--chdir); default: the script's directory, or the home for pasted text. */
  workDir?: string;
}

// What the form may offer on a cluster: a type of the API contract (the submit form gets it).
export type { BatchLimits };

/** Largest pasted script (bytes). */
export const MAX_SCRIPT_BYTES = 256 * 1024;
export const MAX_JOB_NAME = 64;
export const MAX_PATH = 4096;

export const BATCH_FIELD_LABELS: Record<string, string> = {
  cluster: 'Cluster',
  source: 'Script',
  scriptPath: 'Script path',
  script: 'Script',
  jobName: 'Job name',
  partition: 'Partition',
  account: 'Account',
  cores: 'Cores',
  memoryGb: 'Memory',
  gpus: 'GPUs',
  hours: 'Time limit',
  workDir: 'Working directory',
  mail: 'E-mail',
};

const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}$/;
// Control characters (C0, DEL, C1) and Unicode line/paragraph separators.
const CONTROL_RE = /[\p{Cc}\u2028\u2029]/u;

function err(field: string, message: string): FieldError {
  return { field, message: `${BATCH_FIELD_LABELS[field] ?? field}: ${message}` };
}

export function utf8Length(s: string): number {
  return new TextEncoder().encode(s).length;
}

/** Problem with an absolute path, or undefined when it is fine. */
export function pathProblem(p: string): string | undefined {
  if (p.length > MAX_PATH) return `at most ${MAX_PATH} characters`;
  if (!p.startsWith('/')) return 'an absolute path, starting with /';
  if (CONTROL_RE.test(p)) return 'no control characters (tabs, newlines...)';
  return undefined;
}

/** Problem with a pasted script, or undefined. */
export function scriptProblem(s: string): string | undefined {
  if (s.trim() === '') return 'paste the script';
  const bytes = utf8Length(s);
  if (bytes > MAX_SCRIPT_BYTES)
    return `too large (${Math.ceil(bytes / 1024)} KiB; at most ${MAX_SCRIPT_BYTES / 1024} KiB)`;
  if (s.includes('\0')) return 'contains a NUL byte';
  if (!s.startsWith('#!')) return 'the first line must be "#!" and an interpreter, e.g. #!/bin/bash';
  if (s.includes('\r\n')) return 'has Windows line breaks (\\r\\n); use Unix line breaks';
  return undefined;
}

/** Checks a request; returns every problem at once. Options left empty are not checked (the script decides). */
export function validateBatchRequest(req: BatchRequest, limits: BatchLimits = {}): FieldError[] {
  const errors: FieldError[] = [];
  if (req.source !== 'path' && req.source !== 'text') {
    errors.push(err('source', 'choose a script file or paste a script'));
  } else if (req.source === 'path') {
    if (typeof req.scriptPath !== 'string' || req.scriptPath.trim() === '')
      errors.push(err('scriptPath', 'the path of a script on the cluster, e.g. /home/you/job.sh'));
    else {
      const p = pathProblem(req.scriptPath);
      if (p) errors.push(err('scriptPath', p));
    }
  } else {
    const p = typeof req.script === 'string' ? scriptProblem(req.script) : 'paste the script';
    if (p) errors.push(err('script', p));
  }
  if (req.workDir !== undefined && req.workDir !== '') {
    const p = typeof req.workDir === 'string' ? pathProblem(req.workDir) : 'a path';
    if (p) errors.push(err('workDir', p));
  }
  if (req.jobName !== undefined && req.jobName !== '') {
    const n = req.jobName;
    if (typeof n !== 'string' || n.length > MAX_JOB_NAME || CONTROL_RE.test(n) || n.trim() !== n)
      errors.push(
        err('jobName', `at most ${MAX_JOB_NAME} printable characters, no leading or trailing spaces`),
      );
  }
  let { maxCores, maxMemoryGb, maxGpus } = limits;
  for (const field of ['partition', 'account'] as const) {
    const v = req[field];
    if (v === undefined || v === '') continue;
    if (typeof v !== 'string' || !NAME_RE.test(v)) {
      errors.push(err(field, 'only letters, digits, ".", "_", "+" and "-" (at most 64)'));
      continue;
    }
    if (field === 'partition') {
      if (limits.partitions && !limits.partitions.includes(v))
        errors.push(err('partition', `"${v}" is not a partition you can submit to here`));
      const p = limits.perPartition?.[v];
      if (p) ({ maxCores, maxMemoryGb, maxGpus } = p);
    } else if (limits.accounts !== undefined && !limits.accounts.includes(v)) {
      errors.push(
        err('account', `"${v}" is not one of your accounts (${limits.accounts.join(', ') || 'none'})`),
      );
    }
  }
  if (req.cores !== undefined) {
    if (!Number.isInteger(req.cores) || req.cores < 1)
      errors.push(err('cores', 'a whole number, at least 1'));
    else if (maxCores !== undefined && req.cores > maxCores)
      errors.push(err('cores', `at most ${maxCores} per node here`));
  }
  if (req.memoryGb !== undefined) {
    if (typeof req.memoryGb !== 'number' || !Number.isFinite(req.memoryGb) || req.memoryGb <= 0)
      errors.push(err('memoryGb', 'a number of GB above 0'));
    else if (maxMemoryGb !== undefined && req.memoryGb > maxMemoryGb)
      errors.push(err('memoryGb', `at most ${maxMemoryGb} GB per node here`));
  }
  if (req.gpus !== undefined) {
    if (!Number.isInteger(req.gpus) || req.gpus < 0) errors.push(err('gpus', 'a whole number, 0 or more'));
    else if (maxGpus !== undefined && req.gpus > maxGpus)
      errors.push(err('gpus', maxGpus === 0 ? 'no GPUs here' : `at most ${maxGpus} per node here`));
  }
  if (req.hours !== undefined) {
    if (typeof req.hours !== 'number' || !Number.isFinite(req.hours) || req.hours <= 0)
      errors.push(err('hours', 'a number of hours above 0'));
    else if (Math.round(req.hours * 60) < 1) errors.push(err('hours', 'at least one minute'));
    else if (req.hours > 24 * 365) errors.push(err('hours', 'at most a year'));
  }
  return errors;
}

function str(v: unknown): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  return typeof v === 'string' ? v : String(v);
}

function optNum(v: unknown): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v))) return Number(v);
  return Number.NaN;
}

/** A posted body (strings or numbers) as a request; empty fields are left out. Checks come after. */
export function parseBatchRequest(body: unknown): BatchRequest {
  const b = (body ?? {}) as Record<string, unknown>;
  const source =
    b.source === 'text' || (b.source === undefined && typeof b.script === 'string')
      ? 'text'
      : b.source === 'path' || b.source === undefined
        ? 'path'
        : (String(b.source) as BatchSource);
  const req: BatchRequest = { cluster: str(b.cluster) ?? '', source };
  const set = <K extends keyof BatchRequest>(k: K, v: BatchRequest[K] | undefined) => {
    if (v !== undefined) req[k] = v;
  };
  if (source === 'path') set('scriptPath', str(b.scriptPath)?.trim());
  // The script is taken as typed (no trimming: the first line must be #!).
  else set('script', typeof b.script === 'string' ? b.script : undefined);
  set('jobName', str(b.jobName)?.trim() || undefined);
  set('partition', str(b.partition));
  set('account', str(b.account));
  set('cores', optNum(b.cores));
  set('memoryGb', optNum(b.memoryGb));
  set('gpus', optNum(b.gpus));
  set('hours', optNum(b.hours));
  set('workDir', str(b.workDir)?.trim() || undefined);
  return req;
}
