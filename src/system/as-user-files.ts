// Reads a byte range of a file as a Unix user (runuser/sudo, like the scheduler commands), never with
// the gateway's own rights: the user's permissions decide what can be read, and a path the user chose
// (e.g. `#SBATCH -o /etc/shadow`) gives them nothing they could not read anyway.
//   size and type: runuser -u alice -- stat -L -c '%s %f' PATH
//   the bytes:     runuser -u alice -- dd if=PATH iflag=skip_bytes,count_bytes,fullblock skip=N count=M bs=64K status=none
import { type OutputPage, type PageRequest, pageRange, toPage } from '../jobs/output.ts';
import { asUser, type RunAs } from '../scheduler/slurm/commands.ts';
import { type CommandRunner, describeFailure, succeeded } from '../scheduler/slurm/runner.ts';

export type FileReadProblem = 'invalid' | 'missing' | 'denied' | 'not_a_file' | 'failed';

export class FileReadError extends Error {
  constructor(
    readonly problem: FileReadProblem,
    message: string,
  ) {
    super(message);
    this.name = 'FileReadError';
  }
}

export interface AsUserFiles {
  runner: CommandRunner;
  runAs: RunAs;
  /** Timeout of each command (ms). dd on a FIFO would block: the timeout ends it. */
  timeoutMs?: number;
  /** Directory of stat and dd; PATH when absent. */
  binDir?: string;
}

const USER_RE = /^[a-z_][a-z0-9_.-]{0,31}\$?$/i;
// Control characters (C0, DEL, C1) and Unicode line/paragraph separators.
const CONTROL_RE = /[\p{Cc}\u2028\u2029]/u;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;

function checkPath(p: string): void {
  if (typeof p !== 'string' || !p.startsWith('/') || p.length > 4096 || CONTROL_RE.test(p))
    throw new FileReadError('invalid', 'not an absolute path');
}

function classify(stderr: string): FileReadProblem {
  if (/No such file or directory|Not a directory/i.test(stderr)) return 'missing';
  if (/Permission denied|Operation not permitted/i.test(stderr)) return 'denied';
  return 'failed';
}

const bin = (name: string, dir?: string) => (dir ? `${dir.replace(/\/+$/, '')}/${name}` : name);

/** Size of a regular file, as the user. */
export async function fileSizeAsUser(files: AsUserFiles, user: string, path: string): Promise<number> {
  if (!USER_RE.test(user) || user === 'root') throw new FileReadError('invalid', 'invalid user');
  checkPath(path);
  const r = await files.runner.run(
    asUser([bin('stat', files.binDir), '-L', '-c', '%s %f', '--', path], user, files.runAs),
    { label: 'stat', timeoutMs: files.timeoutMs ?? 10_000 },
  );
  if (!succeeded(r)) {
    const problem = r.code !== null && !r.timedOut ? classify(r.stderr) : 'failed';
    const msg =
      problem === 'missing'
        ? 'the file does not exist (yet)'
        : problem === 'denied'
          ? 'you may not read this file'
          : describeFailure(r);
    throw new FileReadError(problem, msg);
  }
  const m = /^(\d+) ([0-9a-f]+)\s*$/.exec(r.stdout.trim());
  if (!m) throw new FileReadError('failed', 'unexpected answer from stat');
  if ((Number.parseInt(m[2]!, 16) & S_IFMT) !== S_IFREG)
    throw new FileReadError('not_a_file', 'not a regular file');
  return Number(m[1]);
}

/**
 * One page of a file, read as `user`. `offset` past the end gives an empty page at the end (a file
 * that did not grow). Bytes are read as they are; the page never splits a UTF-8 character.
 */
export async function readPageAsUser(
  files: AsUserFiles,
  user: string,
  path: string,
  req: PageRequest,
): Promise<OutputPage> {
  const size = await fileSizeAsUser(files, user, path);
  const { start, count } = pageRange(req, size);
  if (count <= 0) return { data: '', offset: start, nextOffset: start, size, eof: true };
  const r = await files.runner.run(
    asUser(
      [
        bin('dd', files.binDir),
        `if=${path}`,
        'iflag=skip_bytes,count_bytes,fullblock',
        `skip=${start}`,
        `count=${count}`,
        'bs=65536',
        'status=none',
      ],
      user,
      files.runAs,
    ),
    { label: 'dd', timeoutMs: files.timeoutMs ?? 10_000, stdoutEncoding: 'latin1' },
  );
  if (!succeeded(r)) {
    const problem = r.code !== null && !r.timedOut ? classify(r.stderr) : 'failed';
    throw new FileReadError(
      problem,
      problem === 'denied' ? 'you may not read this file' : describeFailure(r),
    );
  }
  const raw = Buffer.from(r.stdout, 'latin1');
  return toPage(raw, start, size, { fromEnd: req.fromEnd === true || req.offset < 0 });
}
