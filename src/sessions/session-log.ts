// A session's log, as its owner has it: the job's output (~/.atrium/logs/session-<id>.log, written by
// the job as the user on every backend: setup lines, Node.js, the agent before its own log opens) and
// the agent's log with the main app's output (~/.atrium/sessions/<id>/app.log). Read as the user
// (runuser/sudo with argv, like Slurm's commands), never with the gateway's own rights.
import path from 'node:path';
import { tellingLine } from '../core/telling-line.ts';
import type { SessionRow } from '../db/sessions.ts';
import { DEFAULT_PAGE_BYTES } from '../jobs/output.ts';
import type { RunAs } from '../scheduler/slurm/commands.ts';
import { type CommandRunner, ExecRunner } from '../scheduler/slurm/runner.ts';
import type { UnixIdentity } from '../scheduler/types.ts';
import { FileReadError, readPageAsUser } from '../system/as-user-files.ts';
import type { SessionServiceDeps } from './deps.ts';
import type { SessionOwners } from './owners.ts';

export interface SessionLogPart {
  /** Path on the node, with ~ for the home. */
  name: string;
  path: string;
  text: string;
  /** The file was cut to its last bytes. */
  truncated: boolean;
  /** Why nothing could be read (missing, denied...). */
  problem?: string;
}

export function sessionLogFiles(home: string, sessionId: string): { name: string; path: string }[] {
  return [
    {
      name: `~/.atrium/logs/session-${sessionId}.log`,
      path: path.posix.join(home, '.atrium', 'logs', `session-${sessionId}.log`),
    },
    {
      name: `~/.atrium/sessions/${sessionId}/app.log`,
      path: path.posix.join(home, '.atrium', 'sessions', sessionId, 'app.log'),
    },
  ];
}

export interface SessionLogReader {
  runner: CommandRunner;
  runAs: RunAs;
}

/** The last `limit` bytes of each of the session's log files, read as `user`. */
export async function readSessionLog(
  reader: SessionLogReader,
  user: string,
  home: string,
  sessionId: string,
  limit = 1024 * 1024,
): Promise<SessionLogPart[]> {
  return Promise.all(
    sessionLogFiles(home, sessionId).map(async (f) => {
      try {
        const page = await readPageAsUser(
          { runner: reader.runner, runAs: reader.runAs, timeoutMs: 10_000 },
          user,
          f.path,
          { offset: -1, limit, fromEnd: true },
        );
        return { ...f, text: page.data, truncated: page.offset > 0 };
      } catch (e) {
        const problem =
          e instanceof FileReadError && e.problem === 'missing' ? 'not there (yet)' : (e as Error).message;
        return { ...f, text: '', truncated: false, problem };
      }
    }),
  );
}

/** The line of the job's output (else of the app's log) that says why the session failed. */
export async function tellingLineOfSession(
  reader: SessionLogReader,
  user: string,
  home: string,
  sessionId: string,
): Promise<string | undefined> {
  const parts = await readSessionLog(reader, user, home, sessionId, DEFAULT_PAGE_BYTES);
  for (const p of parts) {
    const line = tellingLine(p.text);
    if (line) return line;
  }
  return undefined;
}

/** The whole log as one text: each file under a header naming it. */
export function sessionLogText(parts: SessionLogPart[]): string {
  return parts
    .map((p) => {
      const head = `==> ${p.name} <==`;
      if (p.problem) return `${head}\n(${p.problem})\n`;
      const cut = p.truncated ? '(only its end is shown)\n' : '';
      return `${head}\n${cut}${p.text}${p.text.endsWith('\n') || p.text === '' ? '' : '\n'}`;
    })
    .join('\n');
}

export interface SessionLogsDeps extends Pick<SessionServiceDeps, 'clusters'> {
  owners: SessionOwners;
}

/** A session's log as the gateway reaches it: on its cluster, read as its owner. */
export class SessionLogs {
  private readonly runner = new ExecRunner({ timeoutMs: 10_000 });

  constructor(private readonly deps: SessionLogsDeps) {}

  /** How the gateway reads files as the owner on this session's cluster; null where it cannot (ssh). */
  private readerOf(row: SessionRow): SessionLogReader | null {
    const c = this.deps.clusters.get(row.cluster);
    if (!c) return null;
    if (c.cfg.backend === 'local')
      return { runner: this.runner, runAs: process.getuid?.() === 0 ? 'runuser' : 'none' };
    if (c.cfg.slurm) return { runner: this.runner, runAs: c.cfg.slurm.runAs };
    // Other backends' nodes are other hosts: their files are not here.
    return null;
  }

  /** The session's log files (job output, agent and app), read as its owner; null where they are out of reach. */
  async read(row: SessionRow): Promise<SessionLogPart[] | null> {
    const to = await this.reach(row);
    return to && readSessionLog(to.reader, to.identity.user, to.identity.home, row.id);
  }

  /** The line of the session's log that says why it failed; undefined where there is none or no reach. */
  async tellingLine(row: SessionRow): Promise<string | undefined> {
    const to = await this.reach(row);
    return to ? tellingLineOfSession(to.reader, to.identity.user, to.identity.home, row.id) : undefined;
  }

  private async reach(row: SessionRow): Promise<{ reader: SessionLogReader; identity: UnixIdentity } | null> {
    const reader = this.readerOf(row);
    const identity = await this.deps.owners.identity(row.user_id);
    return reader && identity ? { reader, identity } : null;
  }
}
