// Pure helpers for a job's output files: Slurm's filename patterns (%j, %x, %u, ...) and paging through
// a file by byte ranges without cutting a UTF-8 character in two.

export const DEFAULT_PAGE_BYTES = 64 * 1024;
export const MAX_PAGE_BYTES = 1024 * 1024;

export interface PatternJob {
  jobId: string;
  name: string;
  user: string;
  /** First node of the job (for %N), when known. */
  firstNode?: string;
}

/**
 * Expands Slurm's filename pattern of --output/--error as the job will use it: %% %A %a %j %J %N %n %s
 * %t %u %x, with optional zero padding ("%4j"). squeue prints paths given with patterns unexpanded in
 * 22.05 (`out-%j-%x.txt`), and expands only the default (slurm-%j.out). Returns undefined when the path
 * cannot be resolved (e.g. %N of a job that has not started), so the caller refuses to read it.
 * A path holding "\\" is taken literally, as Slurm does.
 */
export function expandOutputPattern(p: string, job: PatternJob): string | undefined {
  if (p.includes('\\')) return p.replaceAll('\\', '');
  const array = /^(\d+)_(\d+)$/.exec(job.jobId);
  let failed = false;
  const out = p.replace(/%(\d{0,2})([%AaJjNnstux])/g, (_m, pad: string, c: string) => {
    const width = pad ? Math.min(Number(pad), 10) : 0;
    const num = (v: string) => (width > 0 ? v.padStart(width, '0') : v);
    switch (c) {
      case '%':
        return '%';
      case 'A':
        return num(array ? array[1]! : job.jobId);
      case 'a':
        // 4294967294 (NO_VAL) is what Slurm writes for a job that is not part of an array.
        return num(array ? array[2]! : '4294967294');
      case 'j':
      case 'J':
        // An array task's own job id is not in squeue's JobID ("123_4"): it cannot be resolved here.
        if (array) {
          failed = true;
          return '';
        }
        return num(job.jobId);
      case 'N':
        if (!job.firstNode) {
          failed = true;
          return '';
        }
        return job.firstNode;
      case 'n':
      case 't':
        return num('0');
      case 's':
        return 'batch';
      case 'u':
        return job.user;
      case 'x':
        return job.name;
      default:
        return _m;
    }
  });
  return failed ? undefined : out;
}

/**
 * How many bytes of `buf` end on a whole UTF-8 character: a sequence cut at the end is left for the
 * next page (at most 3 bytes), so a page never ends in the middle of a character.
 */
export function completeUtf8Length(buf: Uint8Array): number {
  const n = buf.length;
  // Walk back over at most 3 continuation bytes to the lead byte of the last character.
  for (let back = 1; back <= Math.min(4, n); back++) {
    const b = buf[n - back]!;
    if ((b & 0xc0) === 0x80) continue; // continuation byte
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? n - back : n;
  }
  return n;
}

/** Bytes to skip at the start of a page that begins inside a character (continuation bytes). */
export function leadingContinuationBytes(buf: Uint8Array): number {
  let i = 0;
  while (i < Math.min(3, buf.length) && (buf[i]! & 0xc0) === 0x80) i++;
  return i;
}

export interface PageRequest {
  /** Byte offset; a negative value or `fromEnd` reads the last `limit` bytes. */
  offset: number;
  limit: number;
  fromEnd?: boolean;
}

/** Where a read starts and how much it takes, for a file of `size` bytes. */
export function pageRange(req: PageRequest, size: number): { start: number; count: number } {
  // At least 4 bytes (the longest UTF-8 character), so a page from a character boundary always holds one.
  const limit = Math.max(4, Math.min(MAX_PAGE_BYTES, Math.floor(req.limit) || DEFAULT_PAGE_BYTES));
  let start = req.fromEnd || req.offset < 0 ? size - limit : Math.floor(req.offset) || 0;
  start = Math.max(0, Math.min(start, size));
  return { start, count: Math.min(limit, size - start) };
}

export interface OutputPage {
  /** The text (UTF-8; invalid bytes become U+FFFD). */
  data: string;
  /** Byte offset of `data`'s first byte. */
  offset: number;
  /** Offset to ask for next (follows the file as it grows). */
  nextOffset: number;
  /** Size of the file when it was read. */
  size: number;
  /** nextOffset reached the end of the file (as of this read). */
  eof: boolean;
}

/**
 * Turns the raw bytes read at `start` into a page. A partial character at the start (when reading from
 * the end) is dropped and one at the end is held back for the next page, so `nextOffset` stays on a
 * character boundary; a page that would be empty that way takes the bytes as they are (progress).
 */
export function toPage(
  raw: Uint8Array,
  start: number,
  size: number,
  opts: { fromEnd?: boolean } = {},
): OutputPage {
  const skip = opts.fromEnd && start > 0 ? leadingContinuationBytes(raw) : 0;
  const body = raw.subarray(skip);
  let used = completeUtf8Length(body);
  if (used === 0) used = body.length;
  const data = Buffer.from(body.subarray(0, used)).toString('utf8');
  const nextOffset = start + skip + used;
  return {
    data,
    offset: start + skip,
    nextOffset,
    size: Math.max(size, nextOffset),
    eof: nextOffset >= size,
  };
}
