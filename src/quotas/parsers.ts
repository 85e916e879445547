// Parsers of storage quota commands' output, found by name (`usage.storage[].parser`): pure functions
// from the command's stdout to one record per file system. Built in: `quota-w` (quota-tools' `quota -w`,
// with or without -s) and `lfs-quota` (Lustre's `lfs quota -u`, with or without -h). A site adds its own
// with registerQuotaParser() (docs/admin.md#usage-and-quotas). Output a parser cannot read is an error,
// never a guess: the page then says "quota unavailable".

export interface StorageQuota {
  filesystem: string;
  usedBytes: number;
  softBytes?: number;
  hardBytes?: number;
  files?: number;
  filesSoft?: number;
  filesHard?: number;
  /** Grace time left, as printed, when over the soft limit. */
  grace?: string;
  /** The command marked the line as over a limit (`*`). */
  over: boolean;
}

export type QuotaParser = (stdout: string) => StorageQuota[];

export class QuotaParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QuotaParseError';
  }
}

const parsers = new Map<string, QuotaParser>();

/** Adds (or replaces) a parser under `name`, the value of `usage.storage[].parser` that selects it. */
export function registerQuotaParser(name: string, parse: QuotaParser): void {
  parsers.set(name, parse);
}

export function quotaParser(name: string): QuotaParser | undefined {
  return parsers.get(name);
}

export function quotaParserNames(): string[] {
  return [...parsers.keys()];
}

// A size: digits, maybe a fraction and a unit (K M G T P, powers of 1024), maybe `*` (over a limit).
const SIZE_RE = /^(\d+(?:\.\d+)?)([KMGTPkmgtp])?\*?$/;
const POW: Record<string, number> = { k: 1, m: 2, g: 3, t: 4, p: 5 };

/** A space figure in bytes: bare numbers are in `unitBytes` (1 KiB blocks for both built-ins). */
function sizeBytes(tok: string, unitBytes: number): number {
  const m = SIZE_RE.exec(tok);
  if (!m) throw new QuotaParseError(`not a size: ${tok}`);
  const n = Number(m[1]);
  return m[2] ? Math.round(n * 1024 ** POW[m[2].toLowerCase()]!) : Math.round(n * unitBytes);
}

/** A file count: unit suffixes are powers of 1000 (quota -s prints 12k). */
function count(tok: string): number {
  const m = SIZE_RE.exec(tok);
  if (!m) throw new QuotaParseError(`not a number of files: ${tok}`);
  const n = Number(m[1]);
  return m[2] ? Math.round(n * 1000 ** POW[m[2].toLowerCase()]!) : n;
}

const isFigure = (tok: string) => SIZE_RE.test(tok);
/** 0 means "no limit" for both built-ins. */
const limit = (v: number) => (v > 0 ? v : undefined);

/**
 * The table both built-ins print under "Disk quotas for user|usr|group|grp NAME (uid N):": a header line
 * (Filesystem blocks|kbytes|used quota limit grace files quota limit grace), then per file system its
 * name and the eight figures, where a grace column is either absent (quota) or `-` (lfs) when not over.
 * A long file system name may stand alone on its line, its figures on the next.
 */
function parseQuotaTable(stdout: string, what: string): StorageQuota[] {
  const lines = stdout.split('\n').map((l) => l.trim());
  let seenTitle = false;
  let seenHeader = false;
  let pendingName: string | null = null;
  const out: StorageQuota[] = [];
  for (const line of lines) {
    if (line === '') continue;
    if (/^Disk quotas for (user|usr|group|grp|project|prj) /i.test(line)) {
      seenTitle = true;
      seenHeader = false;
      // quota-tools: "Disk quotas for user alice (uid 1001): none"
      continue;
    }
    if (!seenTitle)
      throw new QuotaParseError(`${what}: unexpected line before the title: ${line.slice(0, 120)}`);
    if (/^Filesystem\s/i.test(line)) {
      seenHeader = true;
      continue;
    }
    // Lustre's totals and notes after the table.
    if (/^(Total allocated|uid \d+ is using default|Some errors happened)/i.test(line)) {
      if (/^Some errors happened/i.test(line)) throw new QuotaParseError(`${what}: ${line}`);
      continue;
    }
    if (!seenHeader) throw new QuotaParseError(`${what}: unexpected line: ${line.slice(0, 120)}`);
    let toks = line.split(/\s+/);
    if (pendingName !== null) {
      toks = [pendingName, ...toks];
      pendingName = null;
    } else if (toks.length === 1) {
      pendingName = toks[0]!;
      continue;
    }
    const [filesystem, ...rest] = toks;
    // blocks quota limit [grace] files quota limit [grace]
    const fig: string[] = [];
    const graces: (string | undefined)[] = [];
    let i = 0;
    for (let part = 0; part < 2; part++) {
      for (let k = 0; k < 3; k++) {
        const tok = rest[i++];
        if (tok === undefined || !isFigure(tok))
          throw new QuotaParseError(`${what}: unreadable line: ${line.slice(0, 120)}`);
        fig.push(tok);
      }
      const next = rest[i];
      if (next !== undefined && !isFigure(next)) {
        graces.push(next === '-' || /^none$/i.test(next) ? undefined : next);
        i++;
      } else graces.push(undefined);
    }
    if (i !== rest.length) throw new QuotaParseError(`${what}: unreadable line: ${line.slice(0, 120)}`);
    const q: StorageQuota = {
      filesystem: filesystem!,
      usedBytes: sizeBytes(fig[0]!, 1024),
      over: fig[0]!.endsWith('*') || fig[3]!.endsWith('*'),
    };
    const soft = limit(sizeBytes(fig[1]!, 1024));
    const hard = limit(sizeBytes(fig[2]!, 1024));
    if (soft !== undefined) q.softBytes = soft;
    if (hard !== undefined) q.hardBytes = hard;
    q.files = count(fig[3]!);
    const fSoft = limit(count(fig[4]!));
    const fHard = limit(count(fig[5]!));
    if (fSoft !== undefined) q.filesSoft = fSoft;
    if (fHard !== undefined) q.filesHard = fHard;
    const grace = graces[0] ?? graces[1];
    if (grace !== undefined) q.grace = grace;
    out.push(q);
  }
  if (!seenTitle) throw new QuotaParseError(`${what}: no "Disk quotas for" line in the output`);
  if (pendingName !== null) throw new QuotaParseError(`${what}: ${pendingName} has no figures`);
  return out;
}

registerQuotaParser('quota-w', (stdout) => parseQuotaTable(stdout, 'quota'));
registerQuotaParser('lfs-quota', (stdout) => parseQuotaTable(stdout, 'lfs quota'));
