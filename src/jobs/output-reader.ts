// Reading a job's stdout or stderr for the output viewer: a page at a time, as the job's owner, with the
// reason in words when there is nothing to read (yet). The paging itself is output.ts's.
import type { JobOutputPage } from '../api/jobs.ts';
import type { User } from '../db/users.ts';
import type { ExecRunner } from '../scheduler/slurm/runner.ts';
import type { Cluster } from '../sessions/clusters.ts';
import { FileReadError, readPageAsUser } from '../system/as-user-files.ts';
import { JobsHttpError } from './errors.ts';
import type { JobRow } from './view.ts';

export interface JobOutputReaderDeps {
  clusters: Map<string, Cluster>;
  /** File reads run as the user through their own runner: not scheduler calls. */
  fileRunner: ExecRunner;
}

export class JobOutputReader {
  constructor(private readonly deps: JobOutputReaderDeps) {}

  /** A page of the job's stdout or stderr, read as the job's owner. */
  async output(
    user: User,
    row: JobRow,
    stream: 'stdout' | 'stderr',
    req: { offset: number; limit: number; fromEnd: boolean },
  ): Promise<JobOutputPage> {
    const c = this.deps.clusters.get(row.cluster);
    const p = stream === 'stderr' ? row.stderr_path : row.stdout_path;
    const empty = (message: string, exists = false) => ({
      data: '',
      offset: 0,
      nextOffset: 0,
      size: 0,
      eof: true,
      path: p,
      exists,
      message,
    });
    if (!c) throw new JobsHttpError(404, 'no such cluster');
    if (!p) {
      return empty(
        row.state === 'pending'
          ? 'the output file is known once the scheduler has the job'
          : 'the output path is not known (a pattern like %N or an array task id that cannot be resolved)',
      );
    }
    if (p === '/dev/null') return empty('the output goes to /dev/null', true);
    try {
      const page = await readPageAsUser(
        { runner: this.deps.fileRunner, runAs: c.cfg.slurm?.runAs ?? 'none', timeoutMs: 10_000 },
        user.unixUser,
        p,
        req,
      );
      return { ...page, path: p, exists: true };
    } catch (e) {
      if (e instanceof FileReadError) {
        if (e.problem === 'missing')
          return empty(
            row.state === 'pending' ? 'the job has not started yet' : 'the file does not exist (yet)',
          );
        if (e.problem === 'denied') throw new JobsHttpError(403, `${p}: you may not read this file`);
        if (e.problem === 'not_a_file') throw new JobsHttpError(409, `${p} is not a regular file`);
        if (e.problem === 'invalid') throw new JobsHttpError(409, `${p}: ${e.message}`);
      }
      throw new JobsHttpError(502, `the output could not be read: ${(e as Error).message}`);
    }
  }
}
