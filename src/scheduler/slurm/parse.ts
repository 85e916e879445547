// Pure parsers for the text output of Slurm 22.05 commands (squeue -O, sinfo -O, scontrol -o,
// sacctmgr -nP, sacct -P, sbatch --parsable). No I/O here: unit tests feed captured outputs.
import type { JobUsage } from '../../core/efficiency.ts';
import { type AssociationRow, activeAccountsByUser } from '../../core/project-access.ts';
import type { JobInfo, JobState, NodeInfo, PartitionInfo, ReservationInfo } from '../types.ts';

// ---------------------------------------------------------------------------------------------
// Field lists shared with commands.ts. Order is the column order of the output.

/** squeue -O fields, one per JobInfo column. Free-text, user-controlled fields come last. */
export const SQUEUE_FIELDS = [
  'JobID',
  'UserName',
  'State',
  'Reason',
  'Partition',
  'Account',
  'Reservation',
  'NodeList',
  'NumCPUs',
  'NumNodes',
  'MinMemory',
  'tres-alloc',
  'tres-per-node',
  'tres-per-job',
  'SubmitTime',
  'StartTime',
  'EndTime',
  'TimeLimit',
  'exit_code',
  'PriorityLong',
  'RestartCnt',
  'Comment',
  'WorkDir',
  'STDOUT',
  'STDERR',
  'Name',
] as const;

/** sinfo -N -O fields (one line per node and partition). */
export const SINFO_FIELDS = [
  'NodeList',
  'NodeAddr',
  'StateLong',
  'Partition',
  'CPUs',
  'CPUsState',
  'Memory',
  'AllocMem',
  'Gres',
  'GresUsed',
] as const;

/** sacct -o fields (no free-text fields, so '|' from -P is a safe delimiter). */
export const SACCT_FIELDS = [
  'JobID',
  'User',
  'State',
  'ExitCode',
  'Submit',
  'Start',
  'End',
  'ElapsedRaw',
  'NodeList',
  'AllocTRES',
] as const;

/**
 * Separators for squeue/sinfo -O output. Job names, comments and paths are chosen by users and may
 * hold any byte, newlines and \x1f included (tested). A random nonce per call is appended to the
 * separators so a user cannot forge a field or record boundary.
 */
export interface Separators {
  field: string;
  record: string;
}

export function separatorsFor(nonce: string): Separators {
  return { field: `\x1f${nonce}`, record: `\x1e${nonce}` };
}

/** Split -O output made with `separatorsFor(nonce)`: records end with record+"\n". */
export function splitRecords(
  out: string,
  sep: Separators,
  fieldCount: number,
): { rows: string[][]; bad: number } {
  const rows: string[][] = [];
  let bad = 0;
  const chunks = out.split(`${sep.record}\n`);
  for (let i = 0; i < chunks.length; i++) {
    let chunk = chunks[i] ?? '';
    if (i === chunks.length - 1) {
      // Text after the last record terminator: normally empty (or just a newline).
      if (chunk.trim() === '') continue;
      if (chunk.endsWith(sep.record)) chunk = chunk.slice(0, -sep.record.length);
    }
    // Between records squeue prints nothing else; tolerate a stray leading newline.
    if (chunk.startsWith('\n')) chunk = chunk.slice(1);
    const fields = chunk.split(sep.field);
    if (fields.length !== fieldCount) {
      bad += 1;
      continue;
    }
    rows.push(fields);
  }
  return { rows, bad };
}

// ---------------------------------------------------------------------------------------------
// Scalars

const NULLISH = new Set(['', 'n/a', 'none', '(null)', 'null', 'unknown', 'not_set', '(none)', 'invalid']);

/** undefined for Slurm's empty markers (N/A, None, (null), Unknown, ...), else the trimmed value. */
export function nullable(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const t = v.trim();
  return NULLISH.has(t.toLowerCase()) ? undefined : t;
}

export function parseIntOr(v: string | undefined): number | undefined {
  const t = nullable(v);
  if (t === undefined || !/^-?\d+$/.test(t)) return undefined;
  const n = Number(t);
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * Epoch seconds from a Slurm time stamp: epoch digits (SLURM_TIME_FORMAT=%s, what the adapter asks
 * for) or the standard "YYYY-MM-DDTHH:MM:SS" (read as UTC: the runner sets TZ=UTC). 0 and the
 * empty markers give undefined.
 */
export function parseTime(v: string | undefined): number | undefined {
  const t = nullable(v);
  if (t === undefined) return undefined;
  if (/^\d+$/.test(t)) {
    const n = Number(t);
    return n > 0 ? n : undefined;
  }
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})$/.exec(t);
  if (!m) return undefined;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000);
}

/**
 * Minutes from a Slurm duration: "[days-]hours:minutes:seconds", "minutes:seconds", "days-hours",
 * "days-hours:minutes", plain minutes. UNLIMITED/INFINITE/NONE give undefined. Seconds round up.
 */
export function parseDurationMinutes(v: string | undefined): number | undefined {
  const t = nullable(v);
  if (t === undefined) return undefined;
  const up = t.toUpperCase();
  if (up === 'UNLIMITED' || up === 'INFINITE' || up === 'NOT_SET' || up === 'PARTITION_LIMIT')
    return undefined;
  const m = /^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$/.exec(t);
  if (!m) return undefined;
  const days = m[1] !== undefined ? Number(m[1]) : 0;
  const a = Number(m[2]);
  const b = m[3] !== undefined ? Number(m[3]) : undefined;
  const c = m[4] !== undefined ? Number(m[4]) : undefined;
  let seconds: number;
  if (m[1] !== undefined) {
    // days-hours[:minutes[:seconds]]
    seconds = days * 86400 + a * 3600 + (b ?? 0) * 60 + (c ?? 0);
  } else if (c !== undefined) {
    seconds = a * 3600 + (b ?? 0) * 60 + c; // h:m:s
  } else if (b !== undefined) {
    seconds = a * 60 + b; // m:s
  } else {
    seconds = a * 60; // minutes
  }
  return Math.ceil(seconds / 60);
}

/** MB from "4G", "512M", "1.50G", "2T", "1024K", "4096" (MB when no unit). */
export function parseMemoryMb(v: string | undefined): number | undefined {
  const t = nullable(v);
  if (t === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)([KMGTP]?)(?:B)?$/i.exec(t);
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = (m[2] ?? '').toUpperCase();
  const factor: Record<string, number> = { K: 1 / 1024, '': 1, M: 1, G: 1024, T: 1024 * 1024, P: 1024 ** 3 };
  return Math.round(n * (factor[unit] ?? 1));
}

/** "cpu=2,mem=512M,node=1,billing=2,gres/gpu=1" -> { cpu: "2", mem: "512M", ... } */
export function parseTres(v: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  const t = nullable(v);
  if (t === undefined) return out;
  for (const part of t.split(',')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}

export interface GresCount {
  count: number;
  /** GPU types seen ("a100"), in order. */
  types: string[];
}

/**
 * Number of GPUs in a GRES/TRES string: "gpu:2", "gpu:a100:2(IDX:0-1)", "gres:gpu:1",
 * "gres/gpu=1", "gres/gpu:a100=2", "gpu:a100:1(IDX:0),mps:0(IDX:N/A)", "gpu" (= 1), "(null)" (= 0).
 * Only entries named gpu count (mps, shard, nic are not GPUs).
 */
export function parseGpuGres(v: string | undefined, name = 'gpu'): GresCount {
  const res: GresCount = { count: 0, types: [] };
  const t = nullable(v);
  if (t === undefined) return res;
  // Split on commas outside parentheses: "gpu:2(S:0-1),mps:100".
  const items: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of t) {
    if (ch === '(') depth++;
    else if (ch === ')') depth = Math.max(0, depth - 1);
    if (ch === ',' && depth === 0) {
      items.push(cur);
      cur = '';
    } else cur += ch;
  }
  items.push(cur);
  for (let item of items) {
    item = item.trim().replace(/\(.*\)$/, ''); // drop (IDX:0-1) / (S:0-1)
    item = item.replace(/^gres[:/]/, '');
    let count: number | undefined;
    const eq = item.indexOf('=');
    if (eq >= 0) {
      count = Number(item.slice(eq + 1));
      item = item.slice(0, eq);
    }
    const parts = item.split(':');
    if (parts[0] !== name) continue;
    let type: string | undefined;
    if (count === undefined) {
      const last = parts[parts.length - 1] ?? '';
      if (parts.length >= 2 && /^\d+$/.test(last)) {
        count = Number(last);
        if (parts.length >= 3) type = parts[1];
      } else {
        count = 1;
        if (parts.length >= 2) type = last;
      }
    } else if (parts.length >= 2) {
      type = parts[1];
    }
    if (!Number.isFinite(count)) continue;
    res.count += count;
    if (type && type !== '(null)' && !res.types.includes(type)) res.types.push(type);
  }
  return res;
}

/** Expand a Slurm hostlist: "node[1-3,5]", "gpu[01-02]", "a[1-2]b[3-4]", "n1,n2". */
export function expandHostlist(v: string | undefined): string[] {
  const t = nullable(v);
  if (t === undefined) return [];
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of t) {
    if (ch === '[') depth++;
    else if (ch === ']') depth = Math.max(0, depth - 1);
    if (ch === ',' && depth === 0) {
      if (cur) out.push(...expandOne(cur));
      cur = '';
    } else cur += ch;
  }
  if (cur) out.push(...expandOne(cur));
  return out;
}

function expandOne(expr: string): string[] {
  const open = expr.indexOf('[');
  if (open < 0) return [expr];
  const close = expr.indexOf(']', open);
  if (close < 0) return [expr];
  const prefix = expr.slice(0, open);
  const body = expr.slice(open + 1, close);
  const rest = expandOne(expr.slice(close + 1));
  const out: string[] = [];
  for (const range of body.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(range.trim());
    if (!m) {
      for (const r of rest) out.push(`${prefix}${range}${r}`);
      continue;
    }
    const a = m[1] ?? '0';
    const b = m[2] ?? a;
    const width = a.length;
    const lo = Number(a);
    const hi = Number(b);
    for (let i = lo; i <= hi && out.length < 100_000; i++) {
      const num = String(i).padStart(width, '0');
      for (const r of rest) out.push(`${prefix}${num}${r}`);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Job states

const STATE_MAP: Record<string, JobState> = {
  PENDING: 'pending',
  CONFIGURING: 'pending',
  REQUEUED: 'pending',
  REQUEUE_FED: 'pending',
  REQUEUE_HOLD: 'pending',
  RESV_DEL_HOLD: 'pending',
  RUNNING: 'running',
  RESIZING: 'running',
  SIGNALING: 'running',
  STAGE_OUT: 'completing',
  COMPLETING: 'completing',
  COMPLETED: 'completed',
  CANCELLED: 'cancelled',
  REVOKED: 'cancelled',
  FAILED: 'failed',
  BOOT_FAIL: 'failed',
  SPECIAL_EXIT: 'failed',
  TIMEOUT: 'timeout',
  DEADLINE: 'timeout',
  NODE_FAIL: 'node_fail',
  OUT_OF_MEMORY: 'out_of_memory',
  PREEMPTED: 'preempted',
  SUSPENDED: 'suspended',
  STOPPED: 'suspended',
};

const COMPACT_STATES: Record<string, string> = {
  PD: 'PENDING',
  R: 'RUNNING',
  CG: 'COMPLETING',
  CD: 'COMPLETED',
  CA: 'CANCELLED',
  F: 'FAILED',
  TO: 'TIMEOUT',
  NF: 'NODE_FAIL',
  OOM: 'OUT_OF_MEMORY',
  PR: 'PREEMPTED',
  S: 'SUSPENDED',
  ST: 'STOPPED',
  CF: 'CONFIGURING',
  BF: 'BOOT_FAIL',
  DL: 'DEADLINE',
  RQ: 'REQUEUED',
  RH: 'REQUEUE_HOLD',
  RS: 'RESIZING',
  RV: 'REVOKED',
  SI: 'SIGNALING',
  SE: 'SPECIAL_EXIT',
  SO: 'STAGE_OUT',
  RF: 'REQUEUE_FED',
  RD: 'RESV_DEL_HOLD',
};

/** The state word alone: "CANCELLED by 1001" -> "CANCELLED", "R" -> "RUNNING", "COMPLETING+" -> "COMPLETING". */
export function normalizeRawState(raw: string): string {
  const word = (raw.trim().split(/[\s+]/)[0] ?? '').toUpperCase();
  return COMPACT_STATES[word] ?? word;
}

export function parseJobState(raw: string | undefined): JobState {
  if (raw === undefined) return 'unknown';
  return STATE_MAP[normalizeRawState(raw)] ?? 'unknown';
}

/**
 * Exit code from squeue's exit_code (a raw wait status, e.g. 768 = exit 3) or sacct's "3:0"
 * (exit:signal). A signal gives 128+signal, as a shell reports it.
 */
export function parseExitCode(v: string | undefined): number | undefined {
  const t = nullable(v);
  if (t === undefined) return undefined;
  const pair = /^(\d+):(\d+)$/.exec(t);
  if (pair) {
    const code = Number(pair[1]);
    const sig = Number(pair[2]);
    return sig > 0 && code === 0 ? 128 + sig : code;
  }
  if (!/^\d+$/.test(t)) return undefined;
  const status = Number(t);
  const sig = status & 0x7f;
  if (sig !== 0 && sig !== 0x7f) return 128 + sig;
  return (status >> 8) & 0xff;
}

// ---------------------------------------------------------------------------------------------
// squeue

export interface ParsedJobs {
  jobs: JobInfo[];
  /** Records that did not have the expected number of fields. */
  bad: number;
}

export function parseSqueue(out: string, sep: Separators): ParsedJobs {
  const { rows, bad } = splitRecords(out, sep, SQUEUE_FIELDS.length);
  const jobs: JobInfo[] = [];
  let invalid = 0;
  for (const row of rows) {
    const f = Object.fromEntries(SQUEUE_FIELDS.map((k, i) => [k, row[i] ?? ''])) as Record<
      (typeof SQUEUE_FIELDS)[number],
      string
    >;
    const jobId = f.JobID.trim();
    if (!/^\d+(?:_\d+|_\[[^\]]*\]|\+\d+)?$/.test(jobId)) {
      invalid += 1;
      continue;
    }
    const rawState = normalizeRawState(f.State);
    const state = parseJobState(rawState);
    const tres = parseTres(f['tres-alloc']);
    const numNodes = parseIntOr(f.NumNodes) ?? 1;
    let gpus: number | undefined;
    if (tres['gres/gpu'] !== undefined) gpus = Number(tres['gres/gpu']);
    else {
      const perNode = parseGpuGres(f['tres-per-node']);
      const perJob = parseGpuGres(f['tres-per-job']);
      gpus = perNode.count * numNodes + perJob.count;
    }
    const reason = nullable(f.Reason);
    const finished =
      state === 'completed' ||
      state === 'failed' ||
      state === 'cancelled' ||
      state === 'timeout' ||
      state === 'node_fail' ||
      state === 'out_of_memory' ||
      state === 'preempted';
    const job: JobInfo = {
      jobId,
      name: f.Name,
      user: f.UserName.trim(),
      state,
      rawState,
    };
    setIf(job, 'reason', reason);
    setIf(job, 'partition', nullable(f.Partition));
    setIf(job, 'account', nullable(f.Account));
    setIf(job, 'reservation', nullable(f.Reservation));
    setIf(job, 'comment', f.Comment === '(null)' ? undefined : f.Comment || undefined);
    setIf(job, 'nodes', nullable(f.NodeList));
    setIf(job, 'cpus', parseIntOr(f.NumCPUs));
    setIf(job, 'memoryMb', parseMemoryMb(tres.mem) ?? parseMemoryMb(f.MinMemory));
    setIf(job, 'gpus', gpus);
    setIf(job, 'submitTime', parseTime(f.SubmitTime));
    setIf(job, 'startTime', parseTime(f.StartTime));
    setIf(job, 'endTime', parseTime(f.EndTime));
    setIf(job, 'timeLimitMinutes', parseDurationMinutes(f.TimeLimit));
    if (finished) setIf(job, 'exitCode', parseExitCode(f.exit_code));
    setIf(job, 'workDir', nullable(f.WorkDir));
    setIf(job, 'stdoutPath', nullable(f.STDOUT));
    setIf(job, 'stderrPath', nullable(f.STDERR));
    setIf(job, 'priority', parseIntOr(f.PriorityLong));
    const restarts = parseIntOr(f.RestartCnt);
    if (restarts !== undefined && restarts > 0) job.restarts = restarts;
    jobs.push(job);
  }
  return { jobs, bad: bad + invalid };
}

function setIf<T extends object, K extends keyof T>(obj: T, key: K, value: T[K] | undefined): void {
  if (value !== undefined && !(typeof value === 'number' && Number.isNaN(value))) obj[key] = value;
}

// ---------------------------------------------------------------------------------------------
// sinfo

export interface ParsedNodes {
  nodes: NodeInfo[];
  bad: number;
}

/** sinfo -N prints a node once per partition: lines are merged per node, partitions collected. */
export function parseSinfoNodes(out: string, sep: Separators): ParsedNodes {
  const { rows, bad } = splitRecords(out, sep, SINFO_FIELDS.length);
  const byName = new Map<string, NodeInfo>();
  for (const row of rows) {
    const f = Object.fromEntries(SINFO_FIELDS.map((k, i) => [k, (row[i] ?? '').trim()])) as Record<
      (typeof SINFO_FIELDS)[number],
      string
    >;
    const name = f.NodeList;
    if (!name) continue;
    const partition = nullable(f.Partition)?.replace(/\*$/, '');
    const existing = byName.get(name);
    if (existing) {
      if (partition && !existing.partitions.includes(partition)) existing.partitions.push(partition);
      continue;
    }
    const [alloc, , , total] = f.CPUsState.split('/').map((x) => Number(x));
    const gres = parseGpuGres(f.Gres);
    const used = parseGpuGres(f.GresUsed);
    const node: NodeInfo = {
      name,
      address: nullable(f.NodeAddr) ?? name,
      state: f.StateLong.toLowerCase(),
      partitions: partition ? [partition] : [],
      cpus: parseIntOr(f.CPUs) ?? (Number.isFinite(total) ? (total as number) : 0),
      allocCpus: Number.isFinite(alloc) ? (alloc as number) : 0,
      memoryMb: parseMemoryMb(f.Memory) ?? 0,
      allocMemoryMb: parseMemoryMb(f.AllocMem) ?? 0,
      gpus: gres.count,
      allocGpus: used.count,
    };
    if (gres.types[0]) node.gpuType = gres.types[0];
    byName.set(name, node);
  }
  return { nodes: [...byName.values()], bad };
}

// ---------------------------------------------------------------------------------------------
// scontrol show ... -o (one "Key=Value Key=Value" line per object)

/**
 * Parse one `scontrol -o` line. Values may contain spaces (Reason=Not responding [slurm@...]):
 * a word without "=" belongs to the value before it.
 */
export function parseKeyValueLine(line: string): Record<string, string> {
  const out: Record<string, string> = {};
  let lastKey: string | undefined;
  for (const word of line.trim().split(/\s+/)) {
    if (!word) continue;
    const eq = word.indexOf('=');
    if (eq > 0 && /^[A-Za-z][A-Za-z0-9_/:.]*$/.test(word.slice(0, eq))) {
      lastKey = word.slice(0, eq);
      // Repeated keys (e.g. NodeName= in a core reservation) keep the first value.
      if (!(lastKey in out)) out[lastKey] = word.slice(eq + 1);
      else lastKey = undefined;
    } else if (lastKey !== undefined) {
      out[lastKey] = `${out[lastKey]} ${word}`;
    }
  }
  return out;
}

function listOf(v: string | undefined): string[] {
  const t = nullable(v);
  if (t === undefined || t.toUpperCase() === 'ALL') return [];
  return t
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

export function parsePartitions(out: string): PartitionInfo[] {
  const res: PartitionInfo[] = [];
  for (const line of out.split('\n')) {
    if (!line.includes('PartitionName=')) continue;
    const kv = parseKeyValueLine(line);
    const name = kv.PartitionName;
    if (!name) continue;
    const p: PartitionInfo = {
      name,
      isDefault: kv.Default === 'YES',
      nodes: expandHostlist(kv.Nodes),
      state: kv.State ?? 'UNKNOWN',
    };
    const max = parseDurationMinutes(kv.MaxTime);
    if (max !== undefined) p.maxTimeMinutes = max;
    if (kv.OverSubscribe) p.overSubscribe = kv.OverSubscribe;
    res.push(p);
  }
  return res;
}

/** Reservations; "No reservations in the system" gives []. Users/accounts starting with "-" are excluded ones. */
export function parseReservations(out: string): ReservationInfo[] {
  const res: ReservationInfo[] = [];
  for (const line of out.split('\n')) {
    if (!line.startsWith('ReservationName=')) continue;
    const kv = parseKeyValueLine(line);
    const r: ReservationInfo = {
      name: kv.ReservationName ?? '',
      users: listOf(kv.Users),
      accounts: listOf(kv.Accounts),
      nodes: expandHostlist(kv.Nodes),
      state: kv.State ?? 'UNKNOWN',
    };
    const start = parseTime(kv.StartTime);
    const end = parseTime(kv.EndTime);
    if (start !== undefined) r.startTime = start;
    if (end !== undefined) r.endTime = end;
    const flags = listOf(kv.Flags).map((f) => f.toUpperCase());
    if (flags.length > 0) r.flags = flags;
    const partition = nullable(kv.PartitionName);
    if (partition !== undefined) r.partition = partition;
    res.push(r);
  }
  return res;
}

// ---------------------------------------------------------------------------------------------
// sacctmgr / sacct

/**
 * `sacctmgr -nP show assoc format=User,Account,GrpJobs,GrpSubmit,MaxJobs,MaxSubmit,Cluster`: lines
 * "user|account|...|cluster" (the account's own association has no user); missing limit columns count
 * as unset. With `cluster`, only that cluster's rows (Slurm's ClusterName; slurmdbd may serve several).
 */
export function parseAssociationRows(out: string, cluster?: string): AssociationRow[] {
  const res: AssociationRow[] = [];
  const limit = (v: string | undefined): number | undefined =>
    v !== undefined && /^\d+$/.test(v.trim()) ? Number(v.trim()) : undefined;
  const want = cluster?.toLowerCase();
  for (const line of out.split('\n')) {
    const [user = '', account = '', grpJobs, grpSubmit, maxJobs, maxSubmit, on] = line.trim().split('|');
    if (!account) continue;
    if (want !== undefined && on?.trim().toLowerCase() !== want) continue;
    const row: AssociationRow = { user, account };
    for (const [k, v] of [
      ['grpJobs', grpJobs],
      ['grpSubmit', grpSubmit],
      ['maxJobs', maxJobs],
      ['maxSubmit', maxSubmit],
    ] as const) {
      const n = limit(v);
      if (n !== undefined) row[k] = n;
    }
    res.push(row);
  }
  return res;
}

/** Each user's active accounts (removed and expired associations count as none), sorted; see parseAssociationRows. */
export function parseAssociations(out: string, cluster?: string): Record<string, string[]> {
  return activeAccountsByUser(parseAssociationRows(out, cluster));
}

export interface SacctRecord {
  jobId: string;
  user: string;
  state: JobState;
  rawState: string;
  exitCode?: number;
  submitTime?: number;
  startTime?: number;
  endTime?: number;
  elapsedSeconds?: number;
  nodes?: string;
  cpus?: number;
  memoryMb?: number;
  gpus?: number;
}

/** `sacct -a -X -P -n -o <SACCT_FIELDS>`. */
export function parseSacct(out: string): SacctRecord[] {
  const res: SacctRecord[] = [];
  for (const line of out.split('\n')) {
    if (!line.trim()) continue;
    const cols = line.split('|');
    if (cols.length < SACCT_FIELDS.length) continue;
    const f = Object.fromEntries(SACCT_FIELDS.map((k, i) => [k, cols[i] ?? ''])) as Record<
      (typeof SACCT_FIELDS)[number],
      string
    >;
    const jobId = f.JobID.trim();
    if (!/^\d/.test(jobId)) continue;
    const tres = parseTres(f.AllocTRES);
    const rec: SacctRecord = {
      jobId,
      user: f.User.trim(),
      state: parseJobState(f.State),
      rawState: normalizeRawState(f.State),
    };
    setIf(rec, 'exitCode', parseExitCode(f.ExitCode));
    setIf(rec, 'submitTime', parseTime(f.Submit));
    setIf(rec, 'startTime', parseTime(f.Start));
    setIf(rec, 'endTime', parseTime(f.End));
    setIf(rec, 'elapsedSeconds', parseIntOr(f.ElapsedRaw));
    setIf(rec, 'nodes', nullable(f.NodeList) === 'None assigned' ? undefined : nullable(f.NodeList));
    setIf(rec, 'cpus', parseIntOr(tres.cpu));
    setIf(rec, 'memoryMb', parseMemoryMb(tres.mem));
    if (tres['gres/gpu'] !== undefined) setIf(rec, 'gpus', Number(tres['gres/gpu']));
    res.push(rec);
  }
  return res;
}

/**
 * sacct -o fields of the history's usage read (steps included, no -X): again no free-text fields.
 * MaxRSS is only on step lines; TotalCPU is on both (the job line's is the steps' sum).
 */
export const SACCT_USAGE_FIELDS = [
  'JobID',
  'State',
  'ElapsedRaw',
  'TotalCPU',
  'MaxRSS',
  'ReqMem',
  'AllocTRES',
  'NCPUS',
  'TimelimitRaw',
] as const;

/** sacct's TotalCPU: "[D-][HH:]MM:SS[.mmm]" -> ms. */
export function parseCpuTimeMs(v: string | undefined): number | undefined {
  const t = nullable(v);
  if (t === undefined) return undefined;
  const m = /^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)(?:\.(\d+))?$/.exec(t);
  if (!m) return undefined;
  const [days, hours, minutes, seconds] = [m[1], m[2], m[3], m[4]].map((x) => Number(x ?? 0)) as [
    number,
    number,
    number,
    number,
  ];
  const frac = m[5] !== undefined ? Math.round(Number(`0.${m[5]}`) * 1000) : 0;
  return ((days * 24 + hours) * 60 + minutes) * 60_000 + seconds * 1000 + frac;
}

/** sacct's MaxRSS ("204800K", "200M", "1.5G", "0") -> KiB. */
export function parseRssKb(v: string | undefined): number | undefined {
  const t = nullable(v);
  if (t === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)([KMGTP]?)$/i.exec(t);
  if (!m) return undefined;
  const factor: Record<string, number> = {
    '': 1 / 1024,
    K: 1,
    M: 1024,
    G: 1024 ** 2,
    T: 1024 ** 3,
    P: 1024 ** 4,
  };
  return Math.round(Number(m[1]) * (factor[(m[2] ?? '').toUpperCase()] ?? 1));
}

/**
 * `sacct -a -P -n -o <SACCT_USAGE_FIELDS>` (steps included): one JobUsage per job, MaxRSS the max over
 * its steps. ReqMem's old per-CPU form ("500Mc", before 21.08) is multiplied out; "n" is per node.
 */
export function parseSacctUsage(out: string): Map<string, JobUsage> {
  const jobs = new Map<string, JobUsage>();
  const stepCpu = new Map<string, number>();
  const stepRss = new Map<string, number>();
  for (const line of out.split('\n')) {
    if (!line.trim()) continue;
    const cols = line.split('|');
    if (cols.length < SACCT_USAGE_FIELDS.length) continue;
    const f = Object.fromEntries(SACCT_USAGE_FIELDS.map((k, i) => [k, cols[i] ?? ''])) as Record<
      (typeof SACCT_USAGE_FIELDS)[number],
      string
    >;
    const id = f.JobID.trim();
    const m = /^(\d+(?:_\d+)?)(?:\.(.+))?$/.exec(id);
    if (!m?.[1]) continue;
    const jobId = m[1];
    if (m[2] !== undefined) {
      const rss = parseRssKb(f.MaxRSS);
      if (rss !== undefined) stepRss.set(jobId, Math.max(stepRss.get(jobId) ?? 0, rss));
      const cpu = parseCpuTimeMs(f.TotalCPU);
      if (cpu !== undefined) stepCpu.set(jobId, (stepCpu.get(jobId) ?? 0) + cpu);
      continue;
    }
    const u: JobUsage = { jobId, state: parseJobState(f.State) };
    const cores = parseIntOr(f.NCPUS) ?? parseIntOr(parseTres(f.AllocTRES).cpu);
    setIf(u, 'cores', cores);
    setIf(u, 'elapsedSeconds', parseIntOr(f.ElapsedRaw));
    setIf(u, 'totalCpuMs', parseCpuTimeMs(f.TotalCPU));
    const rm = /^(\d+(?:\.\d+)?[KMGTP]?)([nc]?)$/i.exec(f.ReqMem.trim());
    let reqMem = rm?.[1] !== undefined ? parseMemoryMb(rm[1]) : undefined;
    if (reqMem !== undefined && rm?.[2]?.toLowerCase() === 'c' && cores !== undefined) reqMem *= cores;
    setIf(u, 'reqMemMb', reqMem || parseMemoryMb(parseTres(f.AllocTRES).mem));
    setIf(u, 'limitMinutes', parseIntOr(f.TimelimitRaw));
    jobs.set(jobId, u);
  }
  for (const [jobId, u] of jobs) {
    const rss = stepRss.get(jobId);
    if (rss !== undefined) u.maxRssKb = rss;
    // The job line's TotalCPU already sums its steps; a Slurm that leaves it empty gets the sum here.
    const cpu = stepCpu.get(jobId);
    if (cpu !== undefined && cpu > (u.totalCpuMs ?? 0)) u.totalCpuMs = cpu;
  }
  return jobs;
}

// ---------------------------------------------------------------------------------------------
// sbatch

/** Job id from `sbatch --parsable` ("123" or "123;cluster"). */
export function parseSbatchJobId(out: string): string | undefined {
  const lines = out.trim().split('\n').reverse();
  for (const line of lines) {
    const m = /^(\d+)(?:;\S+)?$/.exec(line.trim());
    if (m) return m[1];
  }
  return undefined;
}

export interface SbatchFailure {
  message: string;
  /** Form field the error is about. */
  field?: 'account' | 'partition' | 'reservation' | 'cores' | 'gpus' | 'memory' | 'hours';
  /** true when Slurm refused the job for sure (no job to adopt); false when the outcome is unknown. */
  definite: boolean;
}

const SBATCH_RULES: Array<{ re: RegExp; field?: SbatchFailure['field'] | 'node-config' }> = [
  { re: /Invalid account or account\/partition combination/i, field: 'account' },
  { re: /Invalid account/i, field: 'account' },
  {
    re: /account.*not permitted|not allowed to use (this )?account|Job's account not permitted/i,
    field: 'account',
  },
  { re: /Invalid partition (name )?specified|invalid partition specified/i, field: 'partition' },
  {
    re: /partition configuration not available|not allowed to use this partition|PartitionConfig/i,
    field: 'partition',
  },
  { re: /Access denied to requested reservation/i, field: 'reservation' },
  { re: /Requested reservation is invalid|reservation.*(expired|not usable|invalid)/i, field: 'reservation' },
  {
    re: /Memory specification can not be satisfied|Memory required by task is not available/i,
    field: 'memory',
  },
  {
    re: /Invalid generic resource \(gres\) specification|gres.*can not be satisfied|Invalid GRES/i,
    field: 'gpus',
  },
  { re: /CPU count per node can not be satisfied|More processors requested than permitted/i, field: 'cores' },
  { re: /Requested time limit is invalid|Invalid --time specification|time limit.*exceeds/i, field: 'hours' },
  { re: /QOSMaxWallDuration|MaxWallDuration/i, field: 'hours' },
  { re: /Requested node configuration is not available/i, field: 'node-config' },
  { re: /Job violates accounting\/QOS policy/i },
  { re: /Invalid qos specification/i },
  { re: /Batch job submission failed: /i },
];

/** Messages that mean "we do not know if the job was created": adopt-by-tag must be tried. */
const UNCERTAIN = [
  /Socket timed out/i,
  /Unable to contact slurm controller/i,
  /Zero Bytes were transmitted or received/i,
  /Connection (refused|reset|timed out)/i,
  /Slurm temporarily unable to accept job/i,
  /Communication connection failure/i,
  /Protocol authentication error/i,
  /Slurm backup controller in standby mode/i,
];

/**
 * Classify sbatch's stderr. `hint` resolves "Requested node configuration is not available" (the
 * same message for too many cores, too many GPUs or a GPU on a GPU-less node) to 'gpus' or 'cores'.
 */
export function classifySbatchError(
  stderr: string,
  hint: { gpus?: number; guess?: 'cores' | 'gpus' } = {},
): SbatchFailure {
  const lines = stderr
    .split('\n')
    .map((l) => l.replace(/^sbatch:\s*(error|fatal):\s*/i, '').trim())
    .filter(Boolean);
  const message = lines.join('; ') || 'sbatch failed';
  if (UNCERTAIN.some((re) => re.test(stderr))) return { message, definite: false };
  for (const rule of SBATCH_RULES) {
    if (!rule.re.test(stderr)) continue;
    if (rule.field === 'node-config') {
      const field = hint.guess ?? ((hint.gpus ?? 0) > 0 ? 'gpus' : 'cores');
      return { message, field, definite: true };
    }
    return rule.field ? { message, field: rule.field, definite: true } : { message, definite: true };
  }
  return { message, definite: false };
}
